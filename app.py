"""XRF Pigment Explorer: the Streamlit app (router and shared sidebar).

Run with ``python3 -m streamlit run app.py``. Every page is listed here explicitly
(``st.navigation`` + ``st.Page``); the page modules live in ``pages/`` and hold no science:
they call :mod:`xrfcore`.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from ui import state
from xrfcore.errors import XRFError
from xrfcore.registry import list_models

st.set_page_config(page_title="XRF Pigment Explorer", page_icon=":material/palette:", layout="wide")

PAGES = [
    st.Page("pages/maps.py", title="Pigment maps", icon=":material/layers:", default=True),
    st.Page("pages/scan.py", title="Scan", icon=":material/image_search:"),
    st.Page("pages/preprocess.py", title="Preprocess", icon=":material/tune:"),
    st.Page("pages/inspector.py", title="Inspector", icon=":material/ads_click:"),
    st.Page("pages/finetune.py", title="Finetune", icon=":material/model_training:"),
    st.Page("pages/library.py", title="Library & training", icon=":material/science:"),
    st.Page("pages/export.py", title="Export", icon=":material/download:"),
]


def sidebar() -> None:
    """Active scan and active model, shown on every page."""
    with st.sidebar:
        if note := st.session_state.pop("restore_note", None):
            st.warning(note)
        ref = state.scan_ref()
        st.caption("Scan")
        st.markdown(f"**{ref.label}**" if ref else "_none open_")
        st.caption("Model (this session)")
        path = state.active_model_path()
        if path is not None and path.is_file():
            st.markdown(f"**{path.name}**")
        else:
            st.markdown("_no model file yet_")
        with st.expander("Choose a model file"):
            choices = _model_choices()
            if choices:
                labels = [str(p) for p in choices]
                current = str(path) if path is not None else None
                idx = labels.index(current) if current in labels else 0
                picked = st.selectbox("model", labels, index=idx, key="sidebar_model",
                                      format_func=lambda s: Path(s).name, label_visibility="collapsed")
                if picked != current and st.button("Use this model", key="sidebar_use_model",
                                                   help="In this browser session only; other sessions keep theirs."):
                    state.set_active_model(picked)
                    st.rerun()
                default = state.default_model_choice()
                if path is not None and path.is_file() and path.resolve() != default.resolve():
                    st.caption(f"New sessions start with {default.name}.")
                    if st.button(f"Start new sessions with {path.name}", key="sidebar_set_default",
                                 help="Changes the default model for every new session that uses this user folder."):
                        state.set_default_model(path)
                        st.rerun()
            else:
                st.caption("No model files found in models/ or your user folder.")


def _model_choices() -> list[Path]:
    found = sorted((state.REPO_ROOT / "models").glob("*.keras"))
    found += sorted(state.user_subdir("models").glob("*.keras"))
    try:
        entries = list_models()
    except XRFError:  # a broken index: the Library page shows its error; the picker lists files
        entries = []
    for entry in entries:
        p = Path(entry.path)
        if p.suffix == ".keras" and p.is_file() and p not in found:
            found.append(p)
    return found


state.restore_session()
page = st.navigation(PAGES)
sidebar()
try:
    page.run()
finally:  # also after st.stop() / st.rerun() in a page: the work survives a reload
    state.save_session()
