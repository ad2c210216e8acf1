"""Which model a user works with: the session's choice, the user's saved choice, the server default.

Making a finetuned model active must not change what every other user of the same server sees.
The resolution order of :func:`resolve_model` is

1. the session's choice (kept by the app in its session state, passed in here),
2. the user's saved choice (:func:`set_user_model`; one small JSON file in that user's folder
   ``<user dir>/users/<user>/active_model.json``),
3. the server default (:func:`server_default_model`): the file chosen with the explicit
   :func:`set_server_default_model` (``<user dir>/server_default_model.json``), else
   ``$XRF_DEFAULT_MODEL``, else the shipped default model.

A saved choice whose model file has gone is skipped (the next level applies). Files are written
atomically; nothing here touches a model file itself.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import re
from pathlib import Path
from typing import Any

from xrfcore.atomic import atomic_write_text
from xrfcore.errors import ModelError

__all__ = ["resolve_model", "user_model", "set_user_model", "clear_user_model", "server_default_model",
           "set_server_default_model", "user_folder"]

_USER_RE = re.compile(r"[^A-Za-z0-9._-]+")


def _base() -> Path:
    from xrfcore.registry import user_dir

    return user_dir()


def user_folder(user: str) -> Path:
    """``<user dir>/users/<user>`` (the name reduced to letters, digits, ``.``, ``_``, ``-``).

    Raises
    ------
    ModelError
        For an empty user name.
    """
    slug = _USER_RE.sub("_", str(user)).strip("._")
    if not slug:
        raise ModelError(f"user name {user!r} is empty after removing unsafe characters; give a user name")
    return _base() / "users" / slug


def _read_choice(path: Path) -> Path | None:
    if not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        chosen = Path(doc["model"])
    except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError):
        return None  # a damaged choice file falls back to the next level
    return chosen if chosen.is_file() else None


def _write_choice(path: Path, model: str | os.PathLike, **extra: Any) -> Path:
    p = Path(model).expanduser().resolve()
    if p.suffix != ".keras" or not p.is_file():
        raise ModelError(f"cannot choose {p}: not an existing .keras model file")
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {"model": str(p), "chosen": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), **extra}
    atomic_write_text(path, json.dumps(doc, indent=1) + "\n")
    return p


def server_default_model() -> Path:
    """The server-wide default model (module docstring, level 3)."""
    chosen = _read_choice(_base() / "server_default_model.json")
    if chosen is not None:
        return chosen
    from xrfcore.model import default_model_path

    return Path(default_model_path())


def set_server_default_model(model: str | os.PathLike | None) -> Path:
    """Change the default model for every user of this server (an explicit administrator action).

    ``None`` goes back to ``$XRF_DEFAULT_MODEL`` / the shipped default. Returns the new default.
    """
    f = _base() / "server_default_model.json"
    if model is None:
        f.unlink(missing_ok=True)
        return server_default_model()
    return _write_choice(f, model)


def user_model(user: str) -> Path | None:
    """The user's saved choice, or None (none saved, or its file is gone)."""
    return _read_choice(user_folder(user) / "active_model.json")


def set_user_model(model: str | os.PathLike, *, user: str) -> Path:
    """Save ``model`` as this user's choice (other users are not affected). Returns its path."""
    return _write_choice(user_folder(user) / "active_model.json", model, user=str(user))


def clear_user_model(user: str) -> None:
    """Forget the user's saved choice."""
    (user_folder(user) / "active_model.json").unlink(missing_ok=True)


def resolve_model(session_choice: str | os.PathLike | None = None, *, user: str | None = None) -> Path:
    """The model to use: session choice, else the user's saved choice, else the server default."""
    if session_choice is not None and Path(session_choice).is_file():
        return Path(session_choice).resolve()
    if user:
        chosen = user_model(user)
        if chosen is not None:
            return chosen
    return server_default_model()
