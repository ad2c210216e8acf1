"""Which pixels of which scan trained a model: records for the model file, and their lookup.

A finetuned model's metadata holds ``metadata["training_pixels"]``, one record per scan::

    {"scan": "mockup.h5", "scan_fingerprint": "<sha256 of size + first and last MiB>",
     "shape": [n_rows, n_cols], "labels": "regions.json", "labels_sha256": "<sha256 of the label file>",
     "n_pixels": 816, "runs": [[row, col0, col1], ...]}

``runs`` is the training mask, run-length encoded in the ``mask`` region form of
:mod:`xrfcore.labels` (half-open ``[col0, col1)`` runs per row). :func:`training_mask` finds the
record of a scan (by fingerprint, so a moved or renamed copy still matches) and returns the
mask, so that :func:`xrfcore.model.metrics.evaluate_scan` scores only pixels the model never
trained on.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np

from xrfcore.errors import ModelError

__all__ = ["mask_to_runs", "runs_to_mask", "file_sha256", "scan_fingerprint", "training_record", "training_mask",
           "TRAINING_PIXELS_KEY"]

#: Key of the training-pixel records in a model's metadata.
TRAINING_PIXELS_KEY = "training_pixels"
_EDGE = 1 << 20


def mask_to_runs(mask: np.ndarray) -> list[list[int]]:
    """Run-length encode a ``(H, W)`` bool mask as ``[[row, col0, col1], ...]`` (half-open).

    Examples
    --------
    >>> mask_to_runs(np.array([[0, 1, 1, 0], [1, 0, 0, 1]], bool))
    [[0, 1, 3], [1, 0, 1], [1, 3, 4]]
    """
    m = np.asarray(mask, dtype=bool)
    if m.ndim != 2:
        raise ModelError(f"expected a (rows, cols) mask, got shape {m.shape}")
    padded = np.zeros((m.shape[0], m.shape[1] + 2), np.int8)
    padded[:, 1:-1] = m
    d = np.diff(padded, axis=1)
    rows_s, starts = np.nonzero(d == 1)
    _, stops = np.nonzero(d == -1)
    return [[int(r), int(a), int(b)] for r, a, b in zip(rows_s, starts, stops)]


def runs_to_mask(runs: list[list[int]], shape: tuple[int, int]) -> np.ndarray:
    """Inverse of :func:`mask_to_runs`.

    Raises
    ------
    ModelError
        If a run lies outside ``shape``.
    """
    m = np.zeros(tuple(int(s) for s in shape), bool)
    for r, a, b in runs:
        if not (0 <= r < m.shape[0] and 0 <= a <= b <= m.shape[1]):
            raise ModelError(f"training-pixel run {[r, a, b]} lies outside a scan of shape {m.shape}")
        m[r, a:b] = True
    return m


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 hex digest of a whole file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_EDGE), b""):
            h.update(block)
    return h.hexdigest()


def scan_fingerprint(path: str | os.PathLike) -> str:
    """Cheap identity of a scan file: SHA-256 of its size, first MiB and last MiB.

    Reading a whole multi-gigabyte scan to hash it would cost more than evaluating it; two
    different scans with equal size and equal first and last MiB are not expected.
    For a two-file format (``.rpl`` + ``.raw``) pass the file that was opened.
    """
    p = Path(path)
    size = p.stat().st_size
    h = hashlib.sha256(str(size).encode())
    with open(p, "rb") as f:
        h.update(f.read(_EDGE))
        if size > 2 * _EDGE:
            f.seek(size - _EDGE)
            h.update(f.read(_EDGE))
    return h.hexdigest()


def training_record(scan_path: str | os.PathLike, labels_path: str | os.PathLike, train_mask: np.ndarray) -> dict[str, Any]:
    """The lineage record of one scan's training pixels (module docstring)."""
    m = np.asarray(train_mask, dtype=bool)
    return {"scan": Path(scan_path).name, "scan_fingerprint": scan_fingerprint(scan_path),
            "shape": [int(m.shape[0]), int(m.shape[1])], "labels": Path(labels_path).name,
            "labels_sha256": file_sha256(labels_path), "n_pixels": int(m.sum()), "runs": mask_to_runs(m)}


def training_mask(metadata: dict[str, Any], scan_path: str | os.PathLike | None,
                  shape: tuple[int, ...]) -> np.ndarray | None:
    """Pixels of this scan that trained the model (union over its records), or None if none did.

    Parameters
    ----------
    metadata : dict
        The model's metadata (:attr:`xrfcore.model.ModelBundle.metadata`).
    scan_path : path-like or None
        The scan file (None: no match possible).
    shape : (n_rows, n_cols, ...)
    """
    records = metadata.get(TRAINING_PIXELS_KEY) or []
    if not records or scan_path is None or not Path(scan_path).is_file():
        return None
    fp = scan_fingerprint(scan_path)
    hw = (int(shape[0]), int(shape[1]))
    out = None
    for rec in records:
        if rec.get("scan_fingerprint") != fp or tuple(rec.get("shape", ())) != hw:
            continue
        m = runs_to_mask(rec.get("runs", []), hw)
        out = m if out is None else out | m
    return out
