"""A plotly chart that reports clicks on heatmap cells (and box/lasso selections) to Python.

``st.plotly_chart(on_select=...)`` sends no event for a click on a ``go.Heatmap`` cell
(streamlit issue #8760). This component renders the figure with plotly.js in its own frame and
returns clicks (read from the pointer event with the axes' own pixel-to-data mapping) and
plotly's ``plotly_selected`` boxes and lassos, numbered so that none is lost or handled twice.

Why ``components.v1`` and not ``components.v2``: v2 components run inline in the page and can
load assets only from an installed package's declared ``asset_dir``; inline JS is resent with
every render, and plotly.js is 4.6 MB. v1 serves a folder, so plotly.js is fetched once and
cached by the browser. The folder is assembled at import time in a cache directory from our
``frontend/index.html`` and the ``plotly.min.js`` of the installed plotly package: no network,
no copy of plotly.js in the repository.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import plotly
import streamlit.components.v1 as components

__all__ = ["plotly_events", "take_events"]

_FRONTEND = Path(__file__).resolve().parent / "frontend"


def _build_folder() -> Path:
    src_js = Path(plotly.__file__).resolve().parent / "package_data" / "plotly.min.js"
    html = (_FRONTEND / "index.html").read_bytes()
    folder = Path(tempfile.gettempdir()) / f"xrf_click_component_{plotly.__version__}_{hashlib.sha1(html).hexdigest()[:10]}"
    if not (folder / "plotly.min.js").is_file() or (folder / "index.html").read_bytes() != html:
        tmp = Path(tempfile.mkdtemp(prefix="xrf_click_build_"))
        shutil.copyfile(src_js, tmp / "plotly.min.js")
        (tmp / "index.html").write_bytes(html)
        if folder.exists():
            shutil.rmtree(folder, ignore_errors=True)
        try:
            tmp.replace(folder)
        except OSError:  # another process built it at the same moment
            shutil.rmtree(tmp, ignore_errors=True)
    return folder


_component = components.declare_component("plotly_events", path=str(_build_folder()))


def _acked_key(key: str) -> str:
    return f"_ack_{key}"


def take_events(key: str, session_state: Any = None) -> list[dict]:
    """Events of the component ``key`` that Python has not handled yet, oldest first; marks them handled.

    Call it *before* drawing the figure (so a click moves the marker in the same run), then
    :func:`plotly_events` with the same key. Every event is delivered exactly once, in order:
    the frontend numbers them and keeps them until this function has acknowledged them.

    Returns
    -------
    list of dict
        ``{"kind": "click", "x": col, "y": row, "seq": n}`` (axis coordinates of the clicked
        point), ``{"kind": "box", "x": [x0, x1], "y": [y0, y1], ...}`` or
        ``{"kind": "lasso", "x": [...], "y": [...], ...}``.
    """
    if session_state is None:
        import streamlit as st

        session_state = st.session_state
    try:
        value = session_state[key]
    except (KeyError, AttributeError):
        value = None
    handled = int(session_state.get(_acked_key(key), 0))
    if not isinstance(value, dict):
        return []
    events = [e for e in value.get("events", []) if isinstance(e, dict) and int(e.get("seq", 0)) > handled]
    events.sort(key=lambda e: int(e["seq"]))
    if events:
        session_state[_acked_key(key)] = int(events[-1]["seq"])
    return events


def plotly_events(fig: Any, *, key: str, height: int = 420, select: bool = False, clicks: bool = True,
                  revision: str | None = None, session_state: Any = None) -> None:
    """Show ``fig`` in the click component; read its events with :func:`take_events`.

    ``select`` adds the box and lasso tools; ``clicks=False`` reports no clicks (selections
    only). ``revision``: the map keeps the user's zoom and chosen tool over reruns while it stays
    the same (plotly ``uirevision``); give a new one when the map shows something else.
    """
    if session_state is None:
        import streamlit as st

        session_state = st.session_state
    fig = fig.to_dict() if hasattr(fig, "to_dict") else dict(fig)
    layout = fig.setdefault("layout", {})
    if "template" not in layout:
        import plotly.io as pio

        layout["template"] = pio.templates["plotly_white"]
    layout["uirevision"] = revision or key
    import plotly.utils

    _component(figure=json.dumps(fig, cls=plotly.utils.PlotlyJSONEncoder), height=int(height), select=bool(select),
               clicks=bool(clicks), ack=int(session_state.get(_acked_key(key), 0)), key=key, default=None)
