"""Files written next to a model: training report, metrics table, curves, finetune report.

For ``MODEL.keras`` they are ``MODEL.report.json``, ``MODEL.metrics.csv``, ``MODEL.curves.png``
and ``MODEL.finetune.json``; this module is the one place that spells those names.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["SIDECAR_SUFFIXES", "sidecar_path", "model_sidecars"]

#: Sidecar kind -> suffix that replaces ``.keras``.
SIDECAR_SUFFIXES: dict[str, str] = {
    "report": ".report.json",
    "metrics_csv": ".metrics.csv",
    "curves": ".curves.png",
    "finetune": ".finetune.json",
}


def sidecar_path(model_path: str | os.PathLike, kind: str) -> Path:
    """Where the sidecar ``kind`` (a key of :data:`SIDECAR_SUFFIXES`) of a model goes.

    Raises
    ------
    KeyError
        For an unknown kind (the message lists the known ones).
    """
    if kind not in SIDECAR_SUFFIXES:
        raise KeyError(f"unknown sidecar {kind!r}; known: {', '.join(SIDECAR_SUFFIXES)}")
    p = Path(model_path)
    return p.with_name(p.stem + SIDECAR_SUFFIXES[kind])


def model_sidecars(model_path: str | os.PathLike) -> dict[str, Path]:
    """The sidecar files that exist next to a model, ``{kind: path}`` (kinds of :data:`SIDECAR_SUFFIXES`)."""
    found = {kind: sidecar_path(model_path, kind) for kind in SIDECAR_SUFFIXES}
    return {kind: path for kind, path in found.items() if path.is_file()}
