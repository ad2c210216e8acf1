"""Lazy, picklable, thread-safe cube arrays and helpers shared by the readers.

A lazy array holds the *path* of its file, never an open handle, so it can be pickled
(Dask, worker processes) and read from several threads. Every ``__getitem__`` opens the
file, reads only the requested block and returns numpy in ``(rows, cols, channels)`` order.
"""

from __future__ import annotations

import os
import threading
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from xrfcore.errors import CalibrationError, ScanReadError
from xrfcore.scan import EnergyCalibration, ScanMetadata

__all__ = [
    "H5Array",
    "RawArray",
    "CalibrationWarning",
    "DEFAULT_CALIBRATION",
    "resolve_calibration",
    "read_head",
    "check_not_empty",
    "reject_options",
]

#: Used when neither the file nor the caller gives an energy calibration (keV).
DEFAULT_CALIBRATION = EnergyCalibration(0.0, 0.01)

# h5py is thread-safe through its own global lock; this lock also serialises our
# open/read/close so that many threads do not each hold the file open.
_H5_LOCK = threading.RLock()


class CalibrationWarning(UserWarning):
    """The energy calibration was not found in the file and a default was used."""


# -- key handling -------------------------------------------------------------------
def _normalise_key(key: Any, shape: tuple[int, ...]) -> tuple[list[slice], list[int]]:
    """Turn ``key`` into one slice per axis and the list of axes indexed by an integer."""
    if not isinstance(key, tuple):
        key = (key,)
    if any(k is Ellipsis for k in key):
        i = next(j for j, k in enumerate(key) if k is Ellipsis)
        fill = (slice(None),) * (len(shape) - len(key) + 1)
        key = key[:i] + fill + key[i + 1 :]
    if len(key) > len(shape):
        raise IndexError(f"too many indices for a {len(shape)}-D array: {key!r}")
    key = key + (slice(None),) * (len(shape) - len(key))
    slices: list[slice] = []
    dropped: list[int] = []
    for axis, (k, n) in enumerate(zip(key, shape)):
        if isinstance(k, (int, np.integer)):
            k = int(k)
            if not -n <= k < n:
                raise IndexError(f"index {k} out of range for axis {axis} with size {n}")
            k = k % n
            slices.append(slice(k, k + 1))
            dropped.append(axis)
        elif isinstance(k, slice):
            start, stop, step = k.indices(n)
            if step < 1:
                raise IndexError("lazy scan arrays support only positive slice steps")
            slices.append(slice(start, max(start, stop), step))
        else:
            raise TypeError(f"lazy scan arrays accept integers and slices, got {type(k).__name__}")
    return slices, dropped


def _finish(block: np.ndarray, dropped: list[int]) -> np.ndarray:
    return block.squeeze(axis=tuple(dropped)) if dropped else block


class _LazyBase:
    """Shared ``shape``/``dtype``/``ndim`` and numpy conversion."""

    shape: tuple[int, int, int]
    dtype: np.dtype

    @property
    def ndim(self) -> int:
        return 3

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    def __len__(self) -> int:
        return self.shape[0]

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        out = self[:, :, :]
        return out.astype(dtype) if dtype is not None else out

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r}, shape={self.shape}, dtype={self.dtype})"


class H5Array(_LazyBase):
    """A 3-D HDF5 dataset read lazily in ``(rows, cols, channels)`` order.

    Parameters
    ----------
    path : str or PathLike
        HDF5 file.
    dataset : str
        Name of the 3-D dataset inside the file.
    channel_axis : {"first", "last"}
        Where the channel axis is in the file: ``"first"`` is ``(C, H, W)``, ``"last"``
        ``(H, W, C)``.

    Notes
    -----
    Each read opens the file, reads the hyperslab and closes it again under a lock, so
    the object is picklable and thread-safe. A pixel read touches only the chunks that
    hold it.
    """

    def __init__(self, path: str | os.PathLike, dataset: str, channel_axis: str = "last"):
        if channel_axis not in ("first", "last"):
            raise ValueError(f"channel_axis must be 'first' or 'last', got {channel_axis!r}")
        self.path = Path(path)
        self.dataset = dataset
        self.channel_axis = channel_axis
        import h5py

        with _H5_LOCK, h5py.File(self.path, "r") as f:
            ds = f[dataset]
            file_shape = tuple(int(s) for s in ds.shape)
            self.dtype = np.dtype(ds.dtype)
            self.chunks = ds.chunks
        if len(file_shape) != 3:
            raise ScanReadError(f"{self.path}: dataset {dataset!r} has shape {file_shape}, expected 3-D")
        self.file_shape = file_shape
        if channel_axis == "first":
            c, h, w = file_shape
            self.shape = (h, w, c)
        else:
            self.shape = file_shape  # type: ignore[assignment]

    def __getitem__(self, key: Any) -> np.ndarray:
        import h5py

        slices, dropped = _normalise_key(key, self.shape)
        if any(s.start == s.stop for s in slices):
            return _finish(np.zeros([len(range(s.start, s.stop, s.step)) for s in slices], self.dtype), dropped)
        file_key = (slices[2], slices[0], slices[1]) if self.channel_axis == "first" else tuple(slices)
        try:
            with _H5_LOCK, h5py.File(self.path, "r") as f:
                block = f[self.dataset][file_key]
        except (OSError, KeyError, RuntimeError, ValueError) as exc:
            raise ScanReadError(
                f"{self.path}: cannot read {self.dataset!r} ({exc}); the file may be truncated "
                "or was changed after it was opened: copy it again from the scanner"
            ) from exc
        if self.channel_axis == "first":
            block = np.transpose(block, (1, 2, 0))
        return _finish(np.ascontiguousarray(block), dropped)


class RawArray(_LazyBase):
    """A raw binary cube (Lispix ``.raw``, ``.npy`` payload) read through ``np.memmap``.

    Parameters
    ----------
    path : str or PathLike
        Binary file.
    offset : int
        Bytes to skip before the first value.
    shape : (n_rows, n_cols, n_channels) tuple of int
        Logical shape.
    dtype : numpy dtype (with byte order)
    record_by : {"vector", "image"}
        ``"vector"``: one spectrum after another, file order ``(H, W, C)``;
        ``"image"``: one channel image after another, file order ``(C, H, W)``.

    Notes
    -----
    A fresh read-only memmap is made for every read (cheap: no data is read until
    sliced), so the object holds only the path and is picklable and thread-safe.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        offset: int,
        shape: tuple[int, int, int],
        dtype: Any,
        record_by: str = "vector",
    ):
        if record_by not in ("vector", "image"):
            raise ValueError(f"record_by must be 'vector' or 'image', got {record_by!r}")
        self.path = Path(path)
        self.offset = int(offset)
        self.shape = tuple(int(s) for s in shape)  # type: ignore[assignment]
        self.file_dtype = np.dtype(dtype)
        self.dtype = self.file_dtype.newbyteorder("=")  # what reads return
        self.record_by = record_by

    def _memmap(self) -> np.memmap:
        h, w, c = self.shape
        file_shape = (h, w, c) if self.record_by == "vector" else (c, h, w)
        try:
            return np.memmap(self.path, dtype=self.file_dtype, mode="r", offset=self.offset, shape=file_shape)
        except (OSError, ValueError) as exc:
            raise ScanReadError(f"{self.path}: cannot map the raw data ({exc}); is the file truncated?") from exc

    def __getitem__(self, key: Any) -> np.ndarray:
        slices, dropped = _normalise_key(key, self.shape)
        mm = self._memmap()
        if self.record_by == "vector":
            block = mm[tuple(slices)]
        else:
            block = np.transpose(mm[slices[2], slices[0], slices[1]], (1, 2, 0))
        out = np.array(block, dtype=self.dtype, copy=True)
        del mm
        return _finish(out, dropped)


# -- helpers shared by readers ------------------------------------------------------
def read_head(path: str | os.PathLike, n: int = 4096) -> bytes:
    """First ``n`` bytes of a file, or ``b""`` if it cannot be read."""
    try:
        with open(path, "rb") as f:
            return f.read(n)
    except OSError:
        return b""


def check_not_empty(path: str | os.PathLike) -> Path:
    """Return ``Path(path)``; raise ScanReadError if it is missing, a folder or empty."""
    p = Path(path)
    if not p.exists():
        raise ScanReadError(f"{p}: file not found; check the path")
    if p.is_dir():
        raise ScanReadError(f"{p}: is a folder, expected a scan file")
    if p.stat().st_size == 0:
        raise ScanReadError(f"{p}: the file is empty (0 bytes); copy it again from the scanner")
    return p


def reject_options(path: Path, fmt: str, **options: Any) -> None:
    """Raise ScanReadError naming any option that does not apply to format ``fmt``."""
    given = [k for k, v in options.items() if v is not None]
    if given:
        raise ScanReadError(f"{path}: option(s) {', '.join(given)} do not apply to {fmt} files; leave them out")


def resolve_calibration(
    path: Path,
    from_file: EnergyCalibration | None,
    given: EnergyCalibration | None,
    meta: ScanMetadata,
) -> EnergyCalibration:
    """Choose the calibration: the caller's, else the file's, else the default with a warning.

    Sets ``meta.calibration_from_file`` and ``meta.extra["calibration_source"]``
    (``"file"``, ``"user"`` or ``"default"``).
    """
    if given is not None:
        if not isinstance(given, EnergyCalibration):
            raise CalibrationError(f"calibration must be an EnergyCalibration, got {type(given).__name__}")
        meta.calibration_from_file = False
        meta.extra["calibration_source"] = "user"
        if from_file is not None:
            meta.extra["file_calibration"] = from_file.to_dict()
        return given
    if from_file is not None:
        meta.calibration_from_file = True
        meta.extra.setdefault("calibration_source", "file")
        return from_file
    meta.calibration_from_file = False
    meta.extra["calibration_source"] = "default"
    warnings.warn(
        f"{path}: no energy calibration found in the file; using offset "
        f"{DEFAULT_CALIBRATION.offset_kev} keV and gain {DEFAULT_CALIBRATION.gain_kev} keV/channel. "
        "Pass the scanner's calibration (offset and gain in keV) to get correct energies",
        CalibrationWarning,
        stacklevel=3,
    )
    return DEFAULT_CALIBRATION


def make_calibration(path: Path, offset_kev: float, gain_kev: float, quadratic_kev: float = 0.0) -> EnergyCalibration:
    """EnergyCalibration whose error message names the file it came from."""
    try:
        return EnergyCalibration(float(offset_kev), float(gain_kev), float(quadratic_kev))
    except CalibrationError as exc:
        raise CalibrationError(f"{path}: calibration in the file is invalid: {exc}") from exc
    except (TypeError, ValueError) as exc:
        raise CalibrationError(f"{path}: calibration values are not numbers: {exc}") from exc
