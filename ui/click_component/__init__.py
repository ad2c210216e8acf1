"""A plotly chart that reports clicks on heatmap cells (and box/lasso selections) to Python.

``st.plotly_chart(on_select=...)`` sends no event for a click on a ``go.Heatmap`` cell
(streamlit issue #8760). This component renders the figure with plotly.js in its own frame and
returns plotly's own ``plotly_click`` / ``plotly_selected`` event data.

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

__all__ = ["plotly_events", "new_event"]

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


def plotly_events(fig: Any, *, key: str, height: int = 420, select: bool = False) -> dict | None:
    """Show ``fig`` and return the latest event, or None before the first one.

    Returns
    -------
    dict or None
        ``{"kind": "click", "x": col, "y": row, "t": ms}`` for a click (axis coordinates of the
        clicked cell), ``{"kind": "box", "x": [x0, x1], "y": [y0, y1], ...}`` or
        ``{"kind": "lasso", "x": [...], "y": [...], ...}`` for a selection (``select=True``
        adds the box and lasso buttons).
    """
    fig = fig.to_dict() if hasattr(fig, "to_dict") else dict(fig)
    layout = fig.setdefault("layout", {})
    if "template" not in layout:
        import plotly.io as pio

        layout["template"] = pio.templates["plotly_white"]
    import plotly.utils

    return _component(figure=json.dumps(fig, cls=plotly.utils.PlotlyJSONEncoder), height=int(height), select=bool(select), key=key, default=None)


def new_event(event: dict | None, key: str, session_state: Any) -> dict | None:
    """``event`` if it was not handled before (by its timestamp), else None; marks it handled."""
    if not event:
        return None
    seen_key = f"_seen_{key}"
    if session_state.get(seen_key) == event.get("t"):
        return None
    session_state[seen_key] = event.get("t")
    return event
