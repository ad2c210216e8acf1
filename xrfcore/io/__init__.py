"""Scan readers: one module per format, a registry, and :func:`open_scan`.

Every reader module has ``guess_can_open(path) -> bool`` (magic bytes first, suffix second)
and ``open_scan(path, *, dataset=None, channel_axis=None, calibration=None) -> Scan``.
:func:`open_scan` picks the reader from the file's content, then its suffix, unless
``format=`` names one. Heavy libraries (h5py, PyMca5, rosettasciio) are imported by the
readers only when a file is opened.

Examples
--------
>>> sorted(FORMATS)
['bruker', 'hdf5', 'mca', 'numpy', 'rpl']
>>> supported_suffixes()[:3]
['.bcf', '.h5', '.hdf']
"""

from __future__ import annotations

import os
from pathlib import Path
from types import ModuleType

from xrfcore.errors import ScanReadError
from xrfcore.io import bruker, hdf5, numpy_files, rpl, spectra
from xrfcore.io._guard import memory_budget_bytes, run_guarded
from xrfcore.io._lazy import CalibrationWarning, H5Array, RawArray, check_not_empty
from xrfcore.io.writer import write_scan_h5
from xrfcore.scan import EnergyCalibration, Scan

__all__ = [
    "FORMATS",
    "open_scan",
    "guess_format",
    "supported_suffixes",
    "write_scan_h5",
    "H5Array",
    "RawArray",
    "CalibrationWarning",
    "run_guarded",
    "memory_budget_bytes",
]

#: Format name -> reader module. Checked in this order when sniffing content.
FORMATS: dict[str, ModuleType] = {
    "hdf5": hdf5,
    "numpy": numpy_files,
    "bruker": bruker,
    "mca": spectra,
    "rpl": rpl,
}

_ALIASES = {"h5": "hdf5", "nexus": "hdf5", "npy": "numpy", "npz": "numpy", "bcf": "bruker", "spx": "bruker",
            "spe": "mca", "spectrum": "mca", "raw": "rpl", "lispix": "rpl"}


def supported_suffixes() -> list[str]:
    """All file suffixes the readers accept (``.raw`` needs its ``.rpl``)."""
    return sorted({s for mod in FORMATS.values() for s in mod.SUFFIXES} | {".raw"})


def _canonical(format: str) -> str:
    name = format.strip().lower().lstrip(".")
    name = _ALIASES.get(name, name)
    if name not in FORMATS:
        known = ", ".join(sorted(set(FORMATS) | set(_ALIASES)))
        raise ScanReadError(f"unknown format {format!r}; known formats: {known}")
    return name


def guess_format(path: str | os.PathLike) -> str:
    """Name of the reader for ``path``: content (magic bytes) first, suffix second.

    Raises
    ------
    ScanReadError
        Missing or empty file, or neither content nor suffix is recognised (the message
        lists the supported suffixes).
    """
    p = check_not_empty(path)
    for name, mod in FORMATS.items():
        if mod.sniff(p):
            return name
    for name, mod in FORMATS.items():
        if mod.guess_can_open(p):
            return name
    raise ScanReadError(
        f"{p}: unknown scan format (suffix {p.suffix or 'none'!r}, content not recognised); "
        f"supported: {', '.join(supported_suffixes())}; pass format= to choose a reader"
    )


def open_scan(
    path: str | os.PathLike,
    *,
    format: str | None = None,
    dataset: str | None = None,
    channel_axis: str | None = None,
    calibration: EnergyCalibration | None = None,
) -> Scan:
    """Open any supported scan file.

    Parameters
    ----------
    path : str or PathLike
    format : str, optional
        Reader name (``hdf5``, ``rpl``, ``bruker``, ``mca``, ``numpy`` or an alias such as
        ``npy``, ``spe``, ``bcf``); default: :func:`guess_format`.
    dataset : str, optional
        HDF5 dataset / ``.npz`` member / ``.bcf`` index.
    channel_axis : {"first", "last"}, optional
        Where the channel axis is (HDF5, NumPy); default: detected.
    calibration : EnergyCalibration, optional
        Overrides the file's energy calibration; needed for files without one.

    Returns
    -------
    Scan
        Counts ``(n_rows, n_cols, n_channels)``, lazily read where the format allows.

    Raises
    ------
    ScanReadError, CalibrationError
    """
    p = Path(path)
    name = _canonical(format) if format else guess_format(p)
    return FORMATS[name].open_scan(p, dataset=dataset, channel_axis=channel_axis, calibration=calibration)
