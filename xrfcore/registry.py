"""The models directory and its ``index.json``: which models exist, where from, how good.

User models live in ``<user dir>/models`` (the user dir is ``$XRF_USER_DIR`` or
``<repo>/user_data``). ``index.json`` there lists every registered model::

    {"version": 1, "models": [{"name": ..., "path": ..., "created": ISO-8601 UTC,
      "sha256": ..., "base_sha256": ..., "lineage": {...}, "metrics": {...}}]}

The shipped default model (``models/`` in the repository) is always listed first, flagged
``read_only``; nothing here ever writes or overwrites it.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from xrfcore.atomic import atomic_write_text, file_lock
from xrfcore.common import sha256_file, utc_now
from xrfcore.errors import ModelError
from xrfcore.paths import default_model_path, models_dir, repo_root, shipped_models_dir, user_dir

__all__ = [
    "ModelEntry",
    "user_dir",
    "models_dir",
    "repo_root",
    "shipped_models_dir",
    "default_model_file",
    "is_protected_model",
    "sha256_file",
    "list_models",
    "register_model",
    "new_model_path",
]

INDEX_NAME = "index.json"


@dataclass
class ModelEntry:
    """One model of the index."""

    name: str
    path: str
    created: str = ""
    sha256: str = ""
    base_sha256: str | None = None
    lineage: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    read_only: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def default_model_file() -> Path | None:
    """Path of the shipped default model, or None when there is none yet."""
    p = default_model_path()
    return p if p.exists() else None


def is_protected_model(path: str | os.PathLike) -> bool:
    """True for the shipped default model and anything in the repository's ``models/`` folder."""
    p = Path(path).expanduser().resolve()
    shipped = shipped_models_dir().resolve()
    if p == shipped or shipped in p.parents:
        return True
    default = default_model_file()
    return default is not None and p == default.resolve()


def _locked(directory: Path):
    """Exclusive lock over the models index in ``directory``."""
    return file_lock(directory / ".index.lock")


def _read_index(directory: Path) -> list[dict[str, Any]]:
    p = directory / INDEX_NAME
    if not p.exists():
        return []
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ModelError(f"model index {p} is not valid JSON ({exc}); repair or delete it") from exc
    return list(doc.get("models", []))


def list_models(*, directory: str | os.PathLike | None = None, include_default: bool = True) -> list[ModelEntry]:
    """Models of the index (those whose file still exists), the shipped default first.

    Parameters
    ----------
    directory : path-like, optional
        Models folder; :func:`models_dir` by default.
    include_default : bool
        List the shipped default model (``read_only=True``).
    """
    d = Path(directory) if directory else models_dir()
    out: list[ModelEntry] = []
    if include_default:
        default = default_model_file()
        if default is not None:
            out.append(ModelEntry(name=f"default ({default.name})", path=str(default), read_only=True))
    known = {f.name for f in ModelEntry.__dataclass_fields__.values()}
    for item in _read_index(d):
        entry = ModelEntry(**{k: v for k, v in item.items() if k in known})
        if Path(entry.path).exists():
            out.append(entry)
    return out


def register_model(
    path: str | os.PathLike,
    *,
    name: str | None = None,
    base_sha256: str | None = None,
    lineage: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    directory: str | os.PathLike | None = None,
) -> ModelEntry:
    """Add (or update, same path) a model in the index; returns its entry.

    Raises
    ------
    ModelError
        If the model file does not exist or is the shipped default.
    """
    p = Path(path).expanduser().resolve()
    if not p.is_file():
        raise ModelError(f"cannot register {p}: no such model file")
    if is_protected_model(p):
        raise ModelError(f"{p} is the shipped default model; it is listed automatically and cannot be registered")
    d = Path(directory) if directory else models_dir()
    entry = ModelEntry(
        name=name or p.stem,
        path=str(p),
        created=utc_now(),
        sha256=sha256_file(p),
        base_sha256=base_sha256,
        lineage=dict(lineage or {}),
        metrics=dict(metrics or {}),
    )
    with _locked(d):
        items = [m for m in _read_index(d) if Path(m.get("path", "")).resolve() != p]
        items.append(entry.to_dict())
        atomic_write_text(d / INDEX_NAME, json.dumps({"version": 1, "models": items}, indent=1) + "\n")
    return entry


def new_model_path(name: str, *, directory: str | os.PathLike | None = None, suffix: str = ".keras") -> Path:
    """A path ``<models dir>/<name>.keras`` that collides with no existing file.

    The name is reduced to letters, digits, ``-``, ``_`` and ``.``; ``-2``, ``-3``... are
    appended while the model or its sidecar (``.json``) exists.
    """
    d = Path(directory) if directory else models_dir()
    d.mkdir(parents=True, exist_ok=True)
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(name).stem).strip("._") or "model"
    n = 1
    while True:
        cand = d / (f"{stem}{suffix}" if n == 1 else f"{stem}-{n}{suffix}")
        siblings = list(d.glob(glob_escape(cand.stem) + ".*"))
        if not cand.exists() and not siblings:
            return cand
        n += 1


def glob_escape(text: str) -> str:
    """Escape glob metacharacters in ``text``."""
    return re.sub(r"([*?\[])", r"[\1]", text)
