"""A small server-side store of a browser session's work, keyed by an id in the page URL.

A browser reload or a new tab on the same URL starts a new Streamlit session with empty
``st.session_state``; the URL's ``?session=<id>`` names a JSON file in the user folder
(``sessions/<id>.json``) that holds what the user had open: the scan (path, label,
calibration), the labelled regions, the active model, the pixel and the jobs started. Files are
written atomically and only when something changed. Nothing here imports Streamlit.
"""

from __future__ import annotations

import json
import re
import secrets
from pathlib import Path
from typing import Any

from xrfcore.atomic import atomic_write_text

__all__ = ["new_session_id", "valid_session_id", "load_session", "save_session", "PERSISTED_KEYS"]

_ID = re.compile(r"^[0-9a-f]{16}$")

#: ``st.session_state`` keys that are saved (JSON-able values only).
PERSISTED_KEYS = ("scan", "regions", "model_path", "pixel", "ft_job", "sim_job", "train_job", "ft_labels_path",
                  "last_dataset", "threshold")


def new_session_id() -> str:
    """A fresh random id (16 hex characters)."""
    return secrets.token_hex(8)


def valid_session_id(text: Any) -> bool:
    """True for an id made by :func:`new_session_id` (so it can never name a path outside the store)."""
    return isinstance(text, str) and bool(_ID.match(text))


def _path(folder: Path, session_id: str) -> Path:
    if not valid_session_id(session_id):
        raise ValueError(f"not a session id: {session_id!r} (expected 16 hex characters)")
    return Path(folder) / f"{session_id}.json"


def load_session(folder: str | Path, session_id: str) -> dict[str, Any]:
    """The saved values of a session, ``{}`` when there are none or the file is unreadable."""
    try:
        doc = json.loads(_path(Path(folder), session_id).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in doc.items() if k in PERSISTED_KEYS} if isinstance(doc, dict) else {}


def save_session(folder: str | Path, session_id: str, values: dict[str, Any]) -> bool:
    """Write ``values`` (the persisted keys only) atomically; returns False when nothing changed."""
    doc = {k: values[k] for k in PERSISTED_KEYS if values.get(k) is not None}
    path = _path(Path(folder), session_id)
    text = json.dumps(doc, indent=1, sort_keys=True, default=str)
    try:
        if path.read_text(encoding="utf-8") == text:
            return False
    except OSError:
        pass
    atomic_write_text(path, text)
    return True
