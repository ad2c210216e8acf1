"""NumPy cubes: ``.npy`` (read lazily through the file's own header) and ``.npz``.

NumPy files carry no energy axis: pass ``calibration=``; without it the default axis is used
with a :class:`~xrfcore.io._lazy.CalibrationWarning` and ``calibration_from_file=False``.
A ``.npz`` may hold ``offset_keV``/``gain_keV`` (and ``quadratic_keV``) scalars, which are
used as its calibration. The channel axis is last unless ``channel_axis="first"``.
"""

from __future__ import annotations

import ast
import math
import os
import struct
import zipfile
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np

from xrfcore.errors import CalibrationError, ScanReadError
from xrfcore.io._guard import memory_budget_bytes
from xrfcore.io._lazy import RawArray, check_not_empty, make_calibration, read_head, resolve_calibration
from xrfcore.scan import EnergyCalibration, Scan, ScanMetadata

__all__ = ["guess_can_open", "open_scan", "read_npy_header", "SUFFIXES", "MAX_HEADER_BYTES"]

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
        except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError, RuntimeError):
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


#: Largest ``.npy`` header accepted (bytes); numpy itself writes well under 1 KiB.
MAX_HEADER_BYTES = 65536
_CAL_KEYS = ("offset_keV", "gain_keV", "quadratic_keV")


def read_npy_header(fh: BinaryIO, where: str) -> tuple[tuple[int, ...], bool, np.dtype, int]:
    """Parse a ``.npy`` header (format versions 1, 2 and 3) without numpy's private helpers.

    Parameters
    ----------
    fh : binary file object
        Positioned at the start of the ``.npy`` data.
    where : str
        File (and member) name for messages.

    Returns
    -------
    shape, fortran_order, dtype, header_bytes
        ``header_bytes`` is where the array data starts, relative to the start.

    Raises
    ------
    ScanReadError
        Not a ``.npy`` header, an unknown version, a malformed dictionary, a shape that is not
        a tuple of non-negative integers, or a dtype that is not integer or floating point counts.
    """
    pre = fh.read(10)
    if len(pre) < 10 or not pre.startswith(NPY_MAGIC):
        raise ScanReadError(f"{where}: not a .npy array (no NumPy signature, or the file is cut short)")
    major, minor = pre[6], pre[7]
    if major == 1:
        (hlen,) = struct.unpack("<H", pre[8:10])
        start = 10
    elif major in (2, 3):
        more = fh.read(2)
        if len(more) < 2:
            raise ScanReadError(f"{where}: the .npy header is cut short")
        (hlen,) = struct.unpack("<I", pre[8:10] + more)
        start = 12
    else:
        raise ScanReadError(f"{where}: .npy format version {major}.{minor} is not supported (versions 1-3 are)")
    if hlen > MAX_HEADER_BYTES:
        raise ScanReadError(f"{where}: the .npy header claims {hlen} bytes; a valid header is a few hundred")
    raw = fh.read(hlen)
    if len(raw) < hlen:
        raise ScanReadError(f"{where}: the .npy header is cut short ({len(raw)} of {hlen} bytes)")
    try:
        text = raw.decode("utf-8" if major == 3 else "latin-1")
        doc = ast.literal_eval(text)
    except (UnicodeDecodeError, ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        raise ScanReadError(f"{where}: damaged .npy header ({raw[:60]!r}...)") from None
    if not isinstance(doc, dict) or set(doc) != {"descr", "fortran_order", "shape"}:
        raise ScanReadError(f"{where}: damaged .npy header: expected keys descr, fortran_order, shape, got {str(doc)[:80]}")
    shape, fortran, descr = doc["shape"], doc["fortran_order"], doc["descr"]
    if not isinstance(shape, tuple) or not all(type(n) is int and n >= 0 for n in shape):
        raise ScanReadError(f"{where}: .npy shape must be a tuple of non-negative integers, got {str(shape)[:80]}")
    if not isinstance(fortran, bool):
        raise ScanReadError(f"{where}: .npy fortran_order must be True or False, got {fortran!r}")
    try:
        dtype = np.lib.format.descr_to_dtype(descr)
    except (TypeError, ValueError, KeyError, SyntaxError):
        raise ScanReadError(f"{where}: .npy descr {str(descr)[:60]!r} is not a valid dtype") from None
    if dtype.hasobject:
        raise ScanReadError(f"{where}: .npy holds Python objects; save numeric counts instead")
    if dtype.names is not None or dtype.subdtype is not None or dtype.kind not in "iuf":
        raise ScanReadError(
            f"{where}: counts must be integers or floating point, got dtype {dtype}; save the counts "
            "as e.g. uint16, uint32 or float32"
        )
    return shape, fortran, dtype, start + hlen


def _as_cube_shape(p: Path | str, shape: tuple[int, ...]) -> tuple[int, int, int]:
    if len(shape) == 1:
        shape = (1, 1, shape[0])
    if len(shape) != 3:
        raise _shape_error(Path(p), shape)
    if min(shape) < 1:
        raise ScanReadError(f"{p}: the array has an empty axis (shape {shape}); it holds no spectra")
    return shape  # type: ignore[return-value]


def _open_npy(p: Path, axis: str) -> RawArray | np.ndarray:
    try:
        with open(p, "rb") as f:
            shape, fortran, dtype, offset = read_npy_header(f, str(p))
    except OSError as exc:
        raise ScanReadError(f"{p}: cannot read the .npy file ({exc})") from exc
    shape = _as_cube_shape(p, shape)
    expected = offset + math.prod(shape) * dtype.itemsize  # Python ints: no overflow
    actual = p.stat().st_size
    if actual < expected:
        raise ScanReadError(f"{p}: file is truncated: {actual} bytes, the header needs {expected} bytes")
    if fortran:  # Fortran order of (H, W, C) is C order of (C, W, H)
        mm = np.memmap(p, dtype=dtype, mode="r", offset=offset, shape=shape[::-1])
        arr = np.transpose(mm)
        return np.moveaxis(arr, 0, -1) if axis == "first" else arr
    rows_cols_ch = shape if axis == "last" else (shape[1], shape[2], shape[0])
    return RawArray(p, offset, rows_cols_ch, dtype, "vector" if axis == "last" else "image")


def _npz_members(p: Path, z: zipfile.ZipFile) -> dict[str, tuple[zipfile.ZipInfo, tuple[int, ...], bool, np.dtype, int]]:
    """Header of every ``.npy`` member: name -> (info, shape, fortran, dtype, header bytes)."""
    out = {}
    for info in z.infolist():
        if not info.filename.endswith(".npy") or info.is_dir():
            continue
        name = info.filename[:-4]
        where = f"{p} member {info.filename!r}"
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise ScanReadError(
                f"{where}: compression method {info.compress_type} is not used by numpy (stored or deflate); "
                "the archive is damaged or was not written by numpy.savez"
            )
        with z.open(info) as fh:
            shape, fortran, dtype, hbytes = read_npy_header(fh, where)
        nbytes = math.prod(shape) * dtype.itemsize
        if info.file_size != hbytes + nbytes:
            raise ScanReadError(
                f"{where}: holds {info.file_size} bytes but its header needs {hbytes + nbytes}; "
                "the archive is truncated or damaged"
            )
        out[name] = (info, shape, fortran, dtype, hbytes)
    return out


def _read_member(p: Path, z: zipfile.ZipFile, entry: tuple) -> np.ndarray:  # noqa: ANN001
    info, shape, fortran, dtype, hbytes = entry
    nbytes = math.prod(shape) * dtype.itemsize
    budget = memory_budget_bytes()
    if nbytes > budget:
        raise ScanReadError(
            f"{p} member {info.filename!r}: {nbytes / 2**30:.2f} GiB would have to be read into memory (limit "
            f"{budget / 2**30:.2f} GiB); save the cube as .npy (read lazily) or HDF5 instead"
        )
    buf = bytearray(nbytes)
    with z.open(info) as fh:
        fh.read(hbytes)
        got = fh.readinto(buf) if nbytes else 0
    if got != nbytes:
        raise ScanReadError(f"{p} member {info.filename!r}: only {got} of {nbytes} bytes could be read; truncated")
    arr = np.frombuffer(buf, dtype=dtype)
    return arr.reshape(shape, order="F" if fortran else "C")


def _open_npz(p: Path, dataset: str | None, axis: str) -> tuple[np.ndarray, EnergyCalibration | None, str]:
    try:
        with zipfile.ZipFile(p) as z:
            members = _npz_members(p, z)
            if dataset is not None:
                if dataset not in members:
                    raise ScanReadError(f"{p}: no array {dataset!r}; arrays in the file: {', '.join(members) or 'none'}")
                name = dataset
            else:
                cubes = [k for k, v in members.items() if len(v[1]) == 3 and k not in _CAL_KEYS]
                if not cubes:
                    shapes = ", ".join(f"{k} {v[1]}" for k, v in members.items()) or "no arrays"
                    raise ScanReadError(f"{p}: no numeric 3-D array in the .npz (found {shapes}); pass dataset=")
                name = max(cubes, key=lambda k: math.prod(members[k][1]))
            _as_cube_shape(f"{p} array {name!r}", members[name][1])
            arr = _read_member(p, z, members[name])
            scalars = {}
            for key in _CAL_KEYS:
                if key in members:
                    if math.prod(members[key][1]) != 1:
                        raise CalibrationError(f"{p}: {key} must be one number (keV), got an array of shape {members[key][1]}")
                    scalars[key] = float(_read_member(p, z, members[key]).reshape(()))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, NotImplementedError, RuntimeError,
            ValueError, zlib.error) as exc:
        raise ScanReadError(f"{p}: cannot read as .npz ({type(exc).__name__}: {exc}); the file may be truncated "
                            "or damaged") from exc
    arr = arr.reshape(_as_cube_shape(p, arr.shape))
    if axis == "first":
        arr = np.ascontiguousarray(np.moveaxis(arr, 0, -1))
    cal = None
    if "offset_keV" in scalars and "gain_keV" in scalars:
        cal = make_calibration(p, scalars["offset_keV"], scalars["gain_keV"], scalars.get("quadratic_keV", 0.0))
    return arr, cal, name
