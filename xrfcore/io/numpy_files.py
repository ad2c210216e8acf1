"""NumPy cubes: ``.npy`` (read lazily through the file's own header) and ``.npz``.

NumPy files carry no energy axis: pass ``calibration=``; without it the default axis is used
with a :class:`~xrfcore.io._lazy.CalibrationWarning` and ``calibration_from_file=False``.
A ``.npz`` may hold ``offset_keV``/``gain_keV`` (and ``quadratic_keV``) scalars, which are
used as its calibration. The channel axis is last unless ``channel_axis="first"``.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np

from xrfcore.errors import ScanReadError
from xrfcore.io._lazy import RawArray, check_not_empty, make_calibration, read_head, resolve_calibration
from xrfcore.scan import EnergyCalibration, Scan, ScanMetadata

__all__ = ["guess_can_open", "open_scan", "SUFFIXES"]

SUFFIXES = (".npy", ".npz")
NPY_MAGIC = b"\x93NUMPY"
ZIP_MAGIC = b"PK\x03\x04"


def sniff(path: str | os.PathLike) -> bool:
    """True for the ``.npy`` signature, or a zip archive whose members are ``.npy`` files."""
    head = read_head(path, 8)
    if head.startswith(NPY_MAGIC):
        return True
    if head.startswith(ZIP_MAGIC):
        try:
            with zipfile.ZipFile(path) as z:
                names = z.namelist()
            return bool(names) and all(n.endswith(".npy") for n in names)
        except (zipfile.BadZipFile, OSError):
            return False
    return False


def guess_can_open(path: str | os.PathLike) -> bool:
    """True if ``path`` looks like a NumPy file (magic first, suffix second)."""
    return sniff(path) or Path(path).suffix.lower() in SUFFIXES


def open_scan(
    path: str | os.PathLike,
    *,
    dataset: str | None = None,
    channel_axis: str | None = None,
    calibration: EnergyCalibration | None = None,
) -> Scan:
    """Open a NumPy cube.

    Parameters
    ----------
    path : str or PathLike
    dataset : str, optional
        ``.npz`` member to use; default: the largest numeric 3-D array.
    channel_axis : {"first", "last"}, optional
        Default ``"last"`` (``(H, W, C)``); ``"first"`` means ``(C, H, W)``.
    calibration : EnergyCalibration, optional
        The scanner's calibration (NumPy files carry none).

    Raises
    ------
    ScanReadError
        Not a NumPy file, not 3-D (a 1-D array is read as one spectrum), object arrays.
    """
    p = check_not_empty(path)
    axis = channel_axis or "last"
    if axis not in ("first", "last"):
        raise ScanReadError(f"channel_axis must be 'first' or 'last', got {channel_axis!r}")
    head = read_head(p, 8)
    meta = ScanMetadata(source=str(p), format="npy")
    file_cal = None
    if head.startswith(NPY_MAGIC):
        if dataset is not None:
            raise ScanReadError(f"{p}: dataset= applies to .npz archives, not .npy files; leave it out")
        counts = _open_npy(p, axis)
    elif head.startswith(ZIP_MAGIC):
        meta.format = "npz"
        counts, file_cal, name = _open_npz(p, dataset, axis)
        meta.extra["dataset"] = name
    else:
        raise ScanReadError(f"{p}: not a NumPy .npy/.npz file (no NumPy or zip signature)")
    meta.extra["channel_axis"] = axis
    cal = resolve_calibration(p, file_cal, calibration, meta)
    return Scan(counts, cal, meta)


def _shape_error(p: Path, shape: tuple[int, ...]) -> ScanReadError:
    return ScanReadError(
        f"{p}: expected a 3-D cube (rows, cols, channels), got shape {shape}; reshape a batch of "
        "spectra (n, channels) to (1, n, channels) or a map to (rows, cols, channels) before saving"
    )


def _open_npy(p: Path, axis: str) -> RawArray | np.ndarray:
    try:
        with open(p, "rb") as f:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
            elif version == (2, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
            else:  # version 3 (utf-8 field names) has no public reader
                shape, fortran, dtype = np.lib.format._read_array_header(f, version)  # noqa: SLF001
            offset = f.tell()
    except (ValueError, OSError) as exc:
        raise ScanReadError(f"{p}: damaged .npy header ({exc})") from exc
    if dtype.hasobject:
        raise ScanReadError(f"{p}: .npy holds Python objects; save numeric counts instead")
    if len(shape) == 1:
        shape = (1, 1, shape[0])
    if len(shape) != 3:
        raise _shape_error(p, shape)
    expected = offset + int(np.prod(shape)) * dtype.itemsize
    actual = p.stat().st_size
    if actual < expected:
        raise ScanReadError(f"{p}: file is truncated: {actual} bytes, the header needs {expected} bytes")
    if fortran:  # rare; np.load's memmap handles the order
        arr = np.load(p, mmap_mode="r").reshape(shape)
        return np.moveaxis(arr, 0, -1) if axis == "first" else arr
    rows_cols_ch = shape if axis == "last" else (shape[1], shape[2], shape[0])
    return RawArray(p, offset, rows_cols_ch, dtype, "vector" if axis == "last" else "image")


def _open_npz(p: Path, dataset: str | None, axis: str) -> tuple[np.ndarray, EnergyCalibration | None, str]:
    try:
        z = np.load(p, allow_pickle=False)
    except (ValueError, OSError, zipfile.BadZipFile) as exc:
        raise ScanReadError(f"{p}: cannot read as .npz ({exc}); the file may be truncated") from exc
    with z:
        try:
            arrays = {k: z[k] for k in z.files}
        except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
            raise ScanReadError(f"{p}: cannot read the .npz members ({exc}); the file may be truncated") from exc
    if dataset is not None:
        if dataset not in arrays:
            raise ScanReadError(f"{p}: no array {dataset!r}; arrays in the file: {', '.join(arrays)}")
        name = dataset
    else:
        cubes = [k for k, v in arrays.items() if v.ndim == 3 and v.dtype.kind in "iuf"]
        if not cubes:
            shapes = ", ".join(f"{k} {v.shape}" for k, v in arrays.items())
            raise ScanReadError(f"{p}: no numeric 3-D array in the .npz (found {shapes}); pass dataset=")
        name = max(cubes, key=lambda k: arrays[k].size)
    arr = arrays[name]
    if arr.ndim == 1:
        arr = arr.reshape(1, 1, -1)
    if arr.ndim != 3:
        raise _shape_error(p, arr.shape)
    if axis == "first":
        arr = np.ascontiguousarray(np.moveaxis(arr, 0, -1))
    cal = None
    if "offset_keV" in arrays and "gain_keV" in arrays:
        quad = float(arrays["quadratic_keV"]) if "quadratic_keV" in arrays else 0.0
        cal = make_calibration(p, float(arrays["offset_keV"]), float(arrays["gain_keV"]), quad)
    return arr, cal, name
