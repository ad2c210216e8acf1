"""HDF5 scans: our own layout, NeXus (NXdata ``signal``), PyMca-style and generic files.

The cube is the dataset named by ``dataset=`` or else the largest numeric 3-D dataset
(our ``/xrf/counts`` and a NeXus ``signal`` win ties). The channel axis is ``channel_axis=``,
else the axis whose length matches a 1-D energy dataset, else the longest axis. The energy
calibration comes from attributes (``offset_keV``/``gain_keV``/``quadratic_keV``, a
PyMca-style ``calibration`` of ``[zero, gain(, quadratic)]``) or from a 1-D energy dataset
(fitted), in that order.

Examples
--------
>>> from xrfcore.io import hdf5
>>> hdf5.SUFFIXES
('.h5', '.hdf5', '.hdf', '.he5', '.nxs', '.nx5')
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from xrfcore.errors import CalibrationError, ScanReadError
from xrfcore.io._guard import run_guarded
from xrfcore.io._lazy import H5Array, check_not_empty, make_calibration, read_head, resolve_calibration
from xrfcore.scan import EnergyCalibration, Scan, ScanMetadata

__all__ = ["guess_can_open", "open_scan", "SUFFIXES", "MAGIC"]

SUFFIXES = (".h5", ".hdf5", ".hdf", ".he5", ".nxs", ".nx5")
MAGIC = b"\x89HDF\r\n\x1a\n"
_ENERGY_NAME = re.compile(r"energ|channel_energy|kev", re.IGNORECASE)
#: Fewest channels a cube may have to be taken for a scan when no dataset is named.
MIN_CHANNELS = 16
#: Declared (uncompressed) size of a chunked dataset over the file size beyond which the file
#: cannot hold it (gzip and lzf stay far below).
MAX_COMPRESSION_RATIO = 4096
#: Names of our non-spectral cubes (labels, masks), never picked as the scan.
_NOT_COUNTS = re.compile(r"^(labels(_top|_bottom)?|mask|probabilities\w*|unexplained)$", re.IGNORECASE)
_META_ATTRS = ("live_time_s", "real_time_s", "tube_kv", "tube_current_ua", "pixel_size_um")


def sniff(path: str | os.PathLike) -> bool:
    """True if the file starts with the HDF5 signature (also after a 512..2048-byte user block)."""
    head = read_head(path, 2048 + 8)
    return any(head[o : o + 8] == MAGIC for o in (0, 512, 1024, 2048))


def guess_can_open(path: str | os.PathLike) -> bool:
    """True if ``path`` looks like HDF5: magic bytes first, suffix second."""
    return sniff(path) or Path(path).suffix.lower() in SUFFIXES


def open_scan(
    path: str | os.PathLike,
    *,
    dataset: str | None = None,
    channel_axis: str | None = None,
    calibration: EnergyCalibration | None = None,
) -> Scan:
    """Open an HDF5 scan lazily.

    Parameters
    ----------
    path : str or PathLike
    dataset : str, optional
        3-D dataset to use; default: the largest numeric 3-D dataset.
    channel_axis : {"first", "last"}, optional
        Override the detected channel axis.
    calibration : EnergyCalibration, optional
        Overrides the file's calibration (and the default when the file has none).

    Returns
    -------
    Scan
        Counts as an :class:`~xrfcore.io._lazy.H5Array` ``(n_rows, n_cols, n_channels)``.

    Raises
    ------
    ScanReadError
        Not HDF5, truncated, no 3-D numeric dataset, unknown ``dataset``.
    CalibrationError
        Calibration in the file with gain <= 0.
    """
    p = check_not_empty(path)
    if channel_axis not in (None, "first", "last"):
        raise ScanReadError(f"channel_axis must be 'first' or 'last', got {channel_axis!r}")
    if dataset is not None and not isinstance(dataset, str):
        raise ScanReadError(f"dataset must be a dataset name, got {dataset!r}")
    # HDF5's own parsing of a damaged file can crash the process: discover and probe in a child.
    plan = run_guarded(_inspect, str(p), dataset, channel_axis, path=p, what="the HDF5 library")
    meta = plan["meta"]
    try:
        counts = H5Array(p, plan["name"], plan["axis"])
    except (OSError, RuntimeError, KeyError, ValueError) as exc:
        raise ScanReadError(f"{p}: cannot open dataset {plan['name']!r} ({exc}); the file may be damaged") from exc
    cal = resolve_calibration(p, plan["calibration"], calibration, meta)
    return Scan(counts, cal, meta)


def _inspect(path: str, dataset: str | None, channel_axis: str | None) -> dict[str, Any]:
    """Everything :func:`open_scan` needs from the file (runs in a guarded child process)."""
    import h5py

    p = Path(path)
    try:
        f = h5py.File(p, "r")
    except (OSError, RuntimeError, ValueError) as exc:
        raise ScanReadError(
            f"{p}: cannot open as HDF5 ({exc}); the file is truncated, still being copied or not HDF5"
        ) from exc
    try:
        with f:
            name = _choose_dataset(p, f, dataset)
            ds = f[name]
            _check_storage(p, ds)
            energy, energy_units = _find_energy_dataset(f, ds)
            axis = channel_axis or _detect_channel_axis(ds, energy)
            n_channels = ds.shape[0] if axis == "first" else ds.shape[2]
            if dataset is None and channel_axis is None and n_channels < MIN_CHANNELS:
                raise ScanReadError(
                    f"{p}: the largest 3-D dataset {name} {ds.shape} has {n_channels} channels, too few for a "
                    f"spectrum (at least {MIN_CHANNELS}); datasets in the file: {_dataset_summary(f)}; "
                    "is the counts dataset missing? Name it with dataset= if it is there"
                )
            cal = _calibration_from_attrs(p, ds)
            if cal is None and energy is not None and energy.size == n_channels:
                cal = _fit_energy(p, energy, energy_units)
            meta = ScanMetadata(source=str(p), format="hdf5")
            meta.extra["dataset"] = name
            meta.extra["channel_axis"] = axis
            _read_metadata_attrs(ds, meta)
            parent = ds.parent
            if isinstance(parent.get("labels", getlink=False), h5py.Dataset):
                meta.extra["labels_dataset"] = parent["labels"].name
                names = parent.get("label_names")
                if isinstance(names, h5py.Dataset) and names.ndim == 1 and names.dtype.kind in "SUO":
                    meta.extra["label_names"] = [_as_str(v) for v in names[()]]
        counts = H5Array(p, name, axis)
        _probe(counts)
    except (OSError, RuntimeError, KeyError, ValueError, TypeError, IndexError) as exc:
        raise ScanReadError(
            f"{p}: the HDF5 file is damaged or not laid out as a scan ({type(exc).__name__}: {str(exc)[:200]}); "
            "copy it again from the scanner"
        ) from exc
    return {"name": name, "axis": axis, "calibration": cal, "meta": meta}


def _dataset_summary(f: Any) -> str:
    items = [f"{d.name} {d.shape} {d.dtype}" for d in _list_datasets(f)[:12]]
    return ", ".join(items) or "none"


def _check_storage(p: Path, ds: Any) -> None:
    """Refuse a dataset whose data were never written, or whose declared size the file cannot hold."""
    shape = tuple(int(s) for s in ds.shape)
    if min(shape) < 1:
        raise ScanReadError(f"{p}: dataset {ds.name} has an empty axis (shape {shape}); it holds no spectra")
    declared = math.prod(shape) * int(ds.dtype.itemsize)
    file_size = p.stat().st_size
    if ds.is_virtual or ds.external:
        raise ScanReadError(
            f"{p}: dataset {ds.name} keeps its data in other files (virtual or external storage); "
            "copy the scan into one HDF5 file (e.g. with h5py or `python -m xrfcore convert`)"
        )
    if ds.chunks is None:
        stored = int(ds.id.get_storage_size())
        offset = ds.id.get_offset()
        if stored < declared or (offset is not None and int(offset) + declared > file_size):
            raise ScanReadError(
                f"{p}: dataset {ds.name} {shape} needs {declared} bytes but only {min(stored, file_size)} are "
                "in the file; it is truncated or was never written: copy it again from the scanner"
            )
        return
    chunks = tuple(int(c) for c in ds.chunks)
    total = math.prod(-(-s // c) for s, c in zip(shape, chunks))
    if declared > MAX_COMPRESSION_RATIO * max(file_size, 1):
        raise ScanReadError(
            f"{p}: dataset {ds.name} declares {shape} ({declared / 2**30:.3g} GiB) but the file has "
            f"{file_size} bytes; no compression gets that far: the file is damaged or incomplete"
        )
    written = int(ds.id.get_num_chunks())
    if written < total:
        raise ScanReadError(
            f"{p}: dataset {ds.name} {shape} has only {written} of its {total} chunks written; the scan is "
            "incomplete (acquisition or copy stopped early): copy or export it again"
        )


# -- dataset discovery ----------------------------------------------------------------
def _numeric(ds: Any) -> bool:
    return np.issubdtype(ds.dtype, np.integer) or np.issubdtype(ds.dtype, np.floating)


def _list_datasets(f: Any) -> list[Any]:
    import h5py

    found: list[Any] = []

    def visit(_name: str, obj: Any) -> None:
        if isinstance(obj, h5py.Dataset):
            found.append(obj)

    try:
        f.visititems(visit)
    except (OSError, RuntimeError, KeyError) as exc:
        raise ScanReadError(f"{f.filename}: cannot list the datasets ({exc}); the file looks truncated") from exc
    return found


def _nexus_signals(f: Any) -> set[str]:
    """Full names of NXdata ``signal`` datasets."""
    out: set[str] = set()
    for ds in _list_datasets(f):
        sig = ds.parent.attrs.get("signal")
        if sig is not None and _as_str(sig) == ds.name.rsplit("/", 1)[-1]:
            out.add(ds.name)
    return out


def _choose_dataset(p: Path, f: Any, dataset: str | None) -> str:
    cubes = [d for d in _list_datasets(f) if d.ndim == 3 and _numeric(d)]
    if dataset is None:
        cubes = [d for d in cubes if not _NOT_COUNTS.match(d.name.rsplit("/", 1)[-1])]
    if dataset is not None:
        key = dataset if dataset.startswith("/") else "/" + dataset
        if key not in f:
            names = ", ".join(d.name for d in cubes) or "none"
            raise ScanReadError(f"{p}: no dataset {dataset!r}; 3-D numeric datasets in the file: {names}")
        ds = f[key]
        if not hasattr(ds, "shape") or ds.ndim != 3 or not _numeric(ds):
            shape = getattr(ds, "shape", "a group")
            raise ScanReadError(
                f"{p}: dataset {dataset!r} is {shape}, expected a numeric 3-D cube (rows, cols, channels) "
                "or (channels, rows, cols)"
            )
        return ds.name
    if not cubes:
        shapes = ", ".join(f"{d.name} {d.shape}" for d in _list_datasets(f)[:12]) or "no datasets"
        raise ScanReadError(
            f"{p}: no numeric 3-D dataset found (found {shapes}); a scan must be a cube "
            "(rows, cols, channels) of counts; name the dataset with dataset= if it is stored differently"
        )
    preferred = _nexus_signals(f) | {"/xrf/counts"}
    cubes.sort(key=lambda d: (math.prod(int(s) for s in d.shape), d.name in preferred), reverse=True)
    return cubes[0].name


def _find_energy_dataset(f: Any, ds: Any) -> tuple[np.ndarray | None, str]:
    """A 1-D energy axis matching the first or last axis of ``ds`` (values, units)."""
    lengths = {ds.shape[0], ds.shape[2]}
    candidates: list[Any] = []
    axes = ds.parent.attrs.get("axes")
    if axes is not None:
        if isinstance(axes, (str, bytes)):
            names = [axes]
        elif isinstance(axes, np.ndarray) and axes.ndim == 1:
            names = list(axes)
        else:
            names = []  # a malformed NeXus ``axes`` attribute is ignored
        for n in names:
            n = _as_str(n)
            if not n or n == ".":
                continue
            obj = ds.parent.get(n)
            if obj is not None and getattr(obj, "ndim", 0) == 1:
                candidates.append(obj)
    for d in _list_datasets(f):
        if d.ndim == 1 and _numeric(d) and _ENERGY_NAME.search(d.name.rsplit("/", 1)[-1]):
            candidates.append(d)
    for d in candidates:
        if d.shape[0] in lengths and _numeric(d):
            units = _as_str(d.attrs.get("units", d.attrs.get("unit", "")))
            values = np.asarray(d[()], dtype=np.float64)
            if np.all(np.isfinite(values)):
                return values, units
    return None, ""


def _detect_channel_axis(ds: Any, energy: np.ndarray | None) -> str:
    """Energy dataset length, else PyMca's ``interpretation`` hint, else the longest axis."""
    shape = ds.shape
    if energy is not None:
        if energy.size == shape[2] and energy.size != shape[0]:
            return "last"
        if energy.size == shape[0] and energy.size != shape[2]:
            return "first"
    interpretation = _as_str(ds.attrs.get("interpretation", "")).lower()
    if interpretation in ("image", "spectrum"):  # PyMca: a stack of images = channels first
        return "first" if interpretation == "image" else "last"
    return "first" if shape[0] > shape[2] else "last"


# -- calibration ------------------------------------------------------------------
def _calibration_from_attrs(p: Path, ds: Any) -> EnergyCalibration | None:
    """``offset_keV``/``gain_keV`` attributes, or a PyMca-style ``calibration`` attribute/dataset."""
    import h5py

    for obj in (ds, ds.parent, ds.file):
        a = obj.attrs
        where = obj.name or "/"
        if "offset_keV" in a and "gain_keV" in a:
            return make_calibration(p, _number(p, where, "offset_keV", a["offset_keV"]),
                                    _number(p, where, "gain_keV", a["gain_keV"]),
                                    _number(p, where, "quadratic_keV", a.get("quadratic_keV", 0.0)))
        cal = a.get("calibration")
        first_channel = 0.0
        if cal is None and isinstance(obj, h5py.Group) and isinstance(obj.get("calibration"), h5py.Dataset):
            if obj["calibration"].size > 16:
                continue
            cal = obj["calibration"][()]
            channels = obj.get("channels")
            if isinstance(channels, h5py.Dataset) and channels.size:
                first_channel = _number(p, where, "channels", channels[tuple(0 for _ in channels.shape)])
        if cal is None:
            continue
        try:
            values = np.ravel(np.asarray(cal, dtype=np.float64))
        except (TypeError, ValueError):
            raise CalibrationError(
                f"{p}: the 'calibration' of {where} must be numbers [zero, gain(, quadratic)] in keV, got "
                f"{str(cal)[:60]!r}; fix it or pass the calibration (offset and gain in keV)"
            ) from None
        if values.size not in (2, 3):
            continue
        a0, a1, a2 = (list(values) + [0.0])[:3]
        if (a0, a1, a2) == (0.0, 1.0, 0.0):  # PyMca's placeholder for "not calibrated"
            return None
        # PyMca: E = a0 + a1*ch + a2*ch**2 with ch the file's channel numbers; ours start at 0.
        c0 = first_channel
        return make_calibration(p, a0 + a1 * c0 + a2 * c0 * c0, a1 + 2 * a2 * c0, a2)
    return None


def _number(p: Path, where: str, key: str, value: Any) -> float:
    """``value`` as a finite float, else CalibrationError naming ``key``."""
    try:
        arr = np.asarray(value)
        if arr.size != 1 or arr.dtype.kind not in "iuf":
            raise TypeError
        out = float(arr.reshape(()))
    except (TypeError, ValueError, OverflowError):
        out = None
    if out is None or not math.isfinite(out):
        raise CalibrationError(
            f"{p}: attribute {key!r} of {where} must be one finite number, got {str(value)[:60]!r}; "
            "fix the file or pass the calibration (offset and gain in keV)"
        )
    return out


def _fit_energy(p: Path, energy: np.ndarray, units: str) -> EnergyCalibration:
    e = energy.astype(np.float64)
    if units.strip().lower() == "ev" or (not units and np.nanmax(np.abs(e)) > 500):
        e = e / 1000.0
    ch = np.arange(e.size, dtype=np.float64)
    if e.size < 3:
        gain = e[1] - e[0] if e.size == 2 else 0.01
        return make_calibration(p, e[0], gain)
    q, g, o = np.polyfit(ch, e, 2)
    if abs(q) * e.size**2 < 1e-6:  # below a micro-keV over the axis: linear
        g, o = np.polyfit(ch, e, 1)
        q = 0.0
    return make_calibration(p, o, g, q)


def _read_metadata_attrs(ds: Any, meta: ScanMetadata) -> None:
    for obj in (ds.file, ds.parent, ds):
        for key in _META_ATTRS:
            if key in obj.attrs:
                try:
                    value = float(obj.attrs[key])
                except (TypeError, ValueError, OverflowError):
                    continue
                if math.isfinite(value):
                    setattr(meta, key, value)


def _probe(counts: H5Array) -> None:
    """Read the first and last pixel so a truncated file fails at open, not later."""
    h, w, _ = counts.shape
    counts[0, 0, :1]
    counts[h - 1, w - 1, :]


def _as_str(v: Any) -> str:
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    if isinstance(v, np.ndarray) and v.ndim == 0:
        return _as_str(v[()])
    return str(v)
