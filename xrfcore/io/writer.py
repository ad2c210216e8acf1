"""Write a scan in our own HDF5 layout, atomically and in row chunks.

Layout::

    /xrf/counts         (H, W, C)  chunked by rows; attrs offset_keV, gain_keV, quadratic_keV
    /xrf/energy_keV     (C,)       float64 channel-centre energies
    /xrf/labels         (H, W, K)  uint8, optional
    /xrf/label_names    (K,)       UTF-8 strings, optional
    /xrf attrs          metadata (source, format, live_time_s, tube_kv, ... when known)

The file appears under its final name only when complete (``xrfcore.atomic.atomic_path``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from xrfcore.atomic import atomic_path
from xrfcore.errors import CalibrationError, ScanReadError
from xrfcore.scan import EnergyCalibration, Scan

__all__ = ["write_scan_h5", "CHUNK_BYTES"]

#: Target size of one HDF5 chunk (bytes); a chunk holds whole rows (at least one).
CHUNK_BYTES = 1 * 2**20


def write_scan_h5(
    path: str | os.PathLike,
    counts_or_scan: Scan | np.ndarray,
    calibration: EnergyCalibration | None = None,
    *,
    labels: np.ndarray | None = None,
    label_names: Sequence[str] | None = None,
    metadata: dict[str, Any] | None = None,
    compression: str | None = "gzip",
    rows_per_chunk: int | None = None,
    extra_datasets: dict[str, np.ndarray] | None = None,
) -> Path:
    """Write counts ``(H, W, C)`` and their calibration to ``path`` (HDF5), atomically.

    Parameters
    ----------
    path : str or PathLike
        Output ``.h5`` file; replaced only when the write succeeds.
    counts_or_scan : Scan or (H, W, C) ndarray
        A Scan is copied in row blocks (``Scan.read_rows``, validated), so a lazy cube
        larger than memory can be converted.
    calibration : EnergyCalibration, optional
        Required for an array; defaults to the Scan's own.
    labels : (H, W, K) array of 0/1, optional
    label_names : sequence of K str, optional
    metadata : dict, optional
        Extra scalar/str attributes for ``/xrf`` (non-scalars are stored as JSON).
    compression : {"gzip", "lzf", None}
    rows_per_chunk : int, optional
        Rows read per block when copying a Scan; default from ``Scan.default_chunk_rows``.
    extra_datasets : dict of str -> ndarray, optional
        More datasets under ``/xrf`` (e.g. ``labels_top``, ``truth/top_um``), written as given.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    CalibrationError
        No calibration for an array.
    ScanReadError
        Counts not 3-D, NaN/negative counts, labels of the wrong shape.
    """
    import h5py

    scan = _as_scan(counts_or_scan, calibration)
    cal = calibration or scan.calibration
    h, w, c = scan.shape
    if labels is not None:
        labels = _check_labels(labels, (h, w), label_names)
    out = Path(path)
    if out.exists() and Path(scan.metadata.source).resolve() == out.resolve():
        raise ScanReadError(f"{out}: output would overwrite the input scan; choose another output name")
    dtype = scan.dtype if scan.dtype.kind in "iuf" else np.dtype(np.float32)
    chunk_rows = max(1, min(h, CHUNK_BYTES // max(1, w * c * dtype.itemsize)))
    step = rows_per_chunk or scan.default_chunk_rows()
    with atomic_path(out) as tmp:
        with h5py.File(tmp, "w") as f:
            g = f.create_group("xrf")
            ds = g.create_dataset("counts", shape=(h, w, c), dtype=dtype, chunks=(chunk_rows, w, c),
                                  compression=compression)
            for key, value in cal.to_dict().items():
                ds.attrs[key] = value
            g.create_dataset("energy_keV", data=cal.energies(c))
            for start, stop, block in scan.iter_row_chunks(step):
                ds[start:stop] = block
            if labels is not None:
                g.create_dataset("labels", data=labels, chunks=True, compression=compression)
                if label_names is not None:
                    g.create_dataset("label_names", data=np.array(list(label_names), dtype=h5py.string_dtype()))
            for key, value in (extra_datasets or {}).items():
                g.create_dataset(key, data=np.asarray(value), compression=compression)
            _write_attrs(g, scan, metadata)
    return out


def _as_scan(counts_or_scan: Scan | np.ndarray, calibration: EnergyCalibration | None) -> Scan:
    if isinstance(counts_or_scan, Scan):
        return counts_or_scan
    if calibration is None:
        raise CalibrationError("write_scan_h5 needs calibration= (offset/gain in keV) when given a plain array")
    arr = np.asarray(counts_or_scan)
    if arr.ndim != 3:
        raise ScanReadError(f"expected counts (rows, cols, channels), got shape {arr.shape}")
    return Scan(arr, calibration)


def _check_labels(labels: np.ndarray, hw: tuple[int, int], names: Sequence[str] | None) -> np.ndarray:
    lab = np.asarray(labels)
    if lab.ndim != 3 or lab.shape[:2] != hw:
        raise ScanReadError(f"labels must have shape ({hw[0]}, {hw[1]}, K), got {lab.shape}")
    if names is not None and len(names) != lab.shape[2]:
        raise ScanReadError(f"{len(names)} label names for {lab.shape[2]} label planes")
    if lab.size and (lab.min() < 0 or lab.max() > 1):
        raise ScanReadError("labels must be 0 or 1")
    return lab.astype(np.uint8)


def _write_attrs(g: Any, scan: Scan, metadata: dict[str, Any] | None) -> None:
    md = scan.metadata
    attrs: dict[str, Any] = {"source": md.source, "format": md.format,
                             "calibration_from_file": bool(md.calibration_from_file)}
    for key in ("live_time_s", "real_time_s", "tube_kv", "tube_current_ua", "pixel_size_um"):
        if getattr(md, key) is not None:
            attrs[key] = float(getattr(md, key))
    attrs.update(metadata or {})
    for key, value in attrs.items():
        if isinstance(value, (str, bool, int, float, np.integer, np.floating)):
            g.attrs[key] = value
        elif value is not None:
            g.attrs[key] = json.dumps(value, default=str)
