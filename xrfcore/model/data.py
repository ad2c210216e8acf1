"""Read a simulated training dataset (HDF5) and preprocess it into model inputs.

Layout (written by :mod:`xrfcore.simulate`): ``spectra`` (N, C) uint32 counts, ``calibration``
(N, 3) ``[offset_keV, gain_keV, quadratic_keV]``, ``labels`` (N, K) uint8 (pigment in any
layer), ``labels_top``/``labels_bottom``, ``label_names`` (K,) class abbreviations, group
``params/``, attributes ``seed`` and ``library_version``.
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from xrfcore.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from xrfcore.preprocess import PreprocessConfig

__all__ = ["load_dataset", "dataset_info"]

_REQUIRED = ("spectra", "calibration", "labels", "label_names")
_logger = logging.getLogger(__name__)


class _CountPadding(logging.Filter):
    """Swallow the per-calibration zero-padding warnings of the rebinning; count them instead."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0
        self.example = ""

    def filter(self, record: logging.LogRecord) -> bool:
        if "zero-padded" in record.getMessage():
            self.count += 1
            self.example = self.example or record.getMessage()
            return False
        return True


@contextlib.contextmanager
def _one_padding_warning():
    grid_logger = logging.getLogger("xrfcore.preprocess.grid")
    f = _CountPadding()
    grid_logger.addFilter(f)
    try:
        yield
    finally:
        grid_logger.removeFilter(f)
        if f.count:
            _logger.warning("%d calibration groups did not cover the grid, e.g.: %s", f.count, f.example)


def _names(ds: Any) -> list[str]:
    return [v.decode() if isinstance(v, bytes) else str(v) for v in ds[()]]


def _open(path: str | os.PathLike):
    import h5py

    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"training data {p} does not exist; make one with `python -m xrfcore simulate`")
    try:
        f = h5py.File(p, "r")
    except OSError as exc:
        raise ConfigError(f"{p} is not a readable HDF5 file ({exc})") from exc
    missing = [k for k in _REQUIRED if k not in f]
    if missing:
        f.close()
        raise ConfigError(f"{p} lacks datasets {missing}; expected a simulated training set with {list(_REQUIRED)}")
    n, c = f["spectra"].shape
    if f["calibration"].shape != (n, 3) or f["labels"].shape[0] != n or f["labels"].shape[1] != len(f["label_names"]):
        shapes = {k: f[k].shape for k in _REQUIRED}
        f.close()
        raise ConfigError(f"{p} has inconsistent shapes {shapes}; expected spectra (N, C), calibration (N, 3), labels (N, K)")
    return f


def dataset_info(path: str | os.PathLike) -> dict[str, Any]:
    """Description of a training set for model metadata: path, size, classes, seed, library version."""
    with _open(path) as f:
        attrs = {k: (v.item() if hasattr(v, "item") else v) for k, v in f.attrs.items()}
        attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in attrs.items()}
        return {
            "path": str(Path(path).resolve()),
            "n_spectra": int(f["spectra"].shape[0]),
            "n_source_channels": int(f["spectra"].shape[1]),
            "label_names": _names(f["label_names"]),
            "attrs": {k: v for k, v in attrs.items() if isinstance(v, (int, float, str, bool))},
        }


def _preprocess_block(spectra: np.ndarray, calib: np.ndarray, config: "PreprocessConfig") -> np.ndarray:
    """Preprocess rows grouped by identical calibration (one rebin plan per group)."""
    from xrfcore.preprocess import preprocess_spectra
    from xrfcore.scan import EnergyCalibration

    out = np.empty((spectra.shape[0], config.grid.n_channels), dtype=np.float32)
    uniq, inverse = np.unique(calib, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    for g, row in enumerate(uniq):
        idx = np.flatnonzero(inverse == g)
        cal = EnergyCalibration(float(row[0]), float(row[1]), float(row[2]))
        out[idx] = preprocess_spectra(spectra[idx], cal, config)
    return out


def load_dataset(
    path: str | os.PathLike,
    config: "PreprocessConfig",
    *,
    rows: int | slice | np.ndarray | None = None,
    chunk: int = 4096,
    label_key: str = "labels",
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Read and preprocess a simulated dataset.

    Parameters
    ----------
    path : path-like
        HDF5 training set (layout in the module docstring).
    config : PreprocessConfig
        Preprocessing, applied to each spectrum with its own calibration.
    rows : int, slice or index array, optional
        ``int n``: the first n spectra; a slice or sorted index array: those spectra.
    chunk : int
        Spectra read per HDF5 block (memory: chunk x C x 4 bytes).
    label_key : str
        ``"labels"`` (any layer), ``"labels_top"`` or ``"labels_bottom"``.

    Returns
    -------
    X : (n, grid.n_channels) ndarray, float32
    Y : (n, K) ndarray, uint8
    label_names : list of str
        K class abbreviations.

    Raises
    ------
    ConfigError
        If the file is missing or lacks the expected datasets.
    """
    with _open(path) as f:
        n_total = f["spectra"].shape[0]
        if rows is None:
            index = np.arange(n_total)
        elif isinstance(rows, (int, np.integer)):
            index = np.arange(min(int(rows), n_total))
        elif isinstance(rows, slice):
            index = np.arange(n_total)[rows]
        else:
            index = np.unique(np.asarray(rows, dtype=np.int64))
        if label_key not in f:
            raise ConfigError(f"{path} has no {label_key!r} dataset; use 'labels', 'labels_top' or 'labels_bottom'")
        names = _names(f["label_names"])
        X = np.empty((index.size, config.grid.n_channels), dtype=np.float32)
        Y = np.empty((index.size, len(names)), dtype=np.uint8)
        with _one_padding_warning():
            _read_chunks(f, index, chunk, config, label_key, X, Y)
    return X, Y, names


def _read_chunks(f: Any, index: np.ndarray, chunk: int, config: "PreprocessConfig", label_key: str,
                 X: np.ndarray, Y: np.ndarray) -> None:
    for a in range(0, index.size, chunk):
        sel = index[a : a + chunk]
        lo, hi = int(sel[0]), int(sel[-1]) + 1
        if hi - lo <= 4 * sel.size:  # dense selection: read the span, then pick
            spectra, calib, labels = (f[k][lo:hi][sel - lo] for k in ("spectra", "calibration", label_key))
        else:  # sparse selection: h5py point selection (indices are sorted and unique)
            spectra, calib, labels = (f[k][sel] for k in ("spectra", "calibration", label_key))
        X[a : a + sel.size] = _preprocess_block(spectra, calib.astype(np.float64), config)
        Y[a : a + sel.size] = labels
