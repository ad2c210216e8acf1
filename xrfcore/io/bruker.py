"""Bruker ``.bcf`` (spectrum images) and ``.spx`` (single spectra) through rosettasciio.

rosettasciio's ``rsciio.bruker.file_reader`` returns signal dictionaries whose energy axis
has ``offset``, ``scale`` and ``units``; we convert eV to keV. It files instrument metadata
under ``Acquisition_instrument.SEM``/``TEM`` (an electron-microscopy heritage); the tube
voltage (``beam_energy``, kV) and live/real times are taken from there. A ``.bcf`` is a
compressed container and is decoded into memory by rosettasciio.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from xrfcore.errors import ScanReadError
from xrfcore.io._lazy import check_not_empty, make_calibration, read_head, reject_options, resolve_calibration
from xrfcore.scan import EnergyCalibration, Scan, ScanMetadata

__all__ = ["guess_can_open", "open_scan", "SUFFIXES"]

SUFFIXES = (".bcf", ".spx")
BCF_MAGIC = b"AAMVHFSS"


def sniff(path: str | os.PathLike) -> bool:
    """True for the Bruker SFS container signature or an XML ``TRTSpectrum`` document."""
    head = read_head(path, 2048)
    return head.startswith(BCF_MAGIC) or (b"<?xml" in head[:64] and b"TRTSpectrum" in head)


def guess_can_open(path: str | os.PathLike) -> bool:
    """True if ``path`` looks like a Bruker file (magic first, suffix second)."""
    return sniff(path) or Path(path).suffix.lower() in SUFFIXES


def open_scan(
    path: str | os.PathLike,
    *,
    dataset: str | None = None,
    channel_axis: str | None = None,
    calibration: EnergyCalibration | None = None,
) -> Scan:
    """Read a ``.bcf`` spectrum image ``(H, W, C)`` or a ``.spx`` spectrum ``(1, 1, C)``.

    Parameters
    ----------
    path : str or PathLike
    dataset : str, optional
        For ``.bcf`` files holding several hypermaps: the index (``"0"``, ``"1"``...).
    channel_axis : None
        Not used (rosettasciio puts the energy axis last); giving it is an error.
    calibration : EnergyCalibration, optional
        Overrides the file's calibration.

    Raises
    ------
    ScanReadError
        rosettasciio cannot parse the file, or it holds no spectrum.
    """
    p = check_not_empty(path)
    reject_options(p, "Bruker", channel_axis=channel_axis)
    kind = "bcf" if read_head(p, 8).startswith(BCF_MAGIC) or p.suffix.lower() == ".bcf" else "spx"
    signal = _read_signal(p, kind, dataset)
    data = np.asarray(signal["data"])
    axes = signal["axes"]
    energy_axis = _energy_axis(p, axes)
    if data.ndim == 1:
        data = data.reshape(1, 1, -1)
    elif data.ndim == 2:
        data = data[None]
    if data.ndim != 3:
        raise ScanReadError(f"{p}: expected a spectrum or spectrum image, got data of shape {data.shape}")
    meta = ScanMetadata(source=str(p), format=kind)
    _fill_metadata(signal, meta)
    file_cal = _calibration(p, energy_axis)
    cal = resolve_calibration(p, file_cal, calibration, meta)
    return Scan(data, cal, meta)


def _read_signal(p: Path, kind: str, dataset: str | None) -> dict[str, Any]:
    from rsciio.bruker import file_reader

    # rosettasciio chooses the parser from the suffix; the magic decides what we expect.
    if p.suffix.lower() != f".{kind}":
        raise ScanReadError(f"{p}: content is a Bruker .{kind} file; rename it to end with .{kind}")
    index: int | None = None
    if dataset is not None:
        if kind != "bcf" or not str(dataset).isdigit():
            raise ScanReadError(f"{p}: dataset= selects a hypermap index (0, 1, ...) in .bcf files only")
        index = int(dataset)
    try:
        if kind == "bcf":
            signals = file_reader(str(p), select_type="spectrum_image", index=index, lazy=False)
        else:
            signals = file_reader(str(p), lazy=False)
    except Exception as exc:  # rosettasciio raises many kinds on malformed files
        raise ScanReadError(f"{p}: rosettasciio cannot read this Bruker file ({type(exc).__name__}: {exc})") from exc
    spectra = [s for s in signals if any(not a.get("navigate", True) for a in s.get("axes", []))]
    if not spectra:
        raise ScanReadError(f"{p}: no spectrum or spectrum image found in the file")
    return spectra[0]


def _energy_axis(p: Path, axes: list[dict[str, Any]]) -> dict[str, Any]:
    signal_axes = [a for a in axes if not a.get("navigate", True)]
    if len(signal_axes) != 1:
        raise ScanReadError(f"{p}: expected one energy axis, found {len(signal_axes)}")
    return signal_axes[0]


def _calibration(p: Path, axis: dict[str, Any]) -> EnergyCalibration | None:
    if "offset" not in axis or "scale" not in axis:
        return None
    units = str(axis.get("units", "keV")).strip().lower()
    factor = {"kev": 1.0, "ev": 1e-3}.get(units)
    if factor is None:
        raise ScanReadError(f"{p}: energy axis units {axis.get('units')!r}; expected eV or keV")
    return make_calibration(p, float(axis["offset"]) * factor, float(axis["scale"]) * factor)


def _fill_metadata(signal: dict[str, Any], meta: ScanMetadata) -> None:
    md = signal.get("metadata", {})
    for inst in md.get("Acquisition_instrument", {}).values():
        hv = inst.get("beam_energy")
        if hv is not None:
            meta.tube_kv = float(hv)
        eds = inst.get("Detector", {}).get("EDS", {})
        if eds.get("live_time") is not None:
            meta.live_time_s = float(eds["live_time"])
        if eds.get("real_time") is not None:
            meta.real_time_s = float(eds["real_time"])
    pixel_axes = [a for a in signal.get("axes", []) if a.get("navigate", False)]
    to_um = {"µm": 1.0, "um": 1.0, "mm": 1000.0, "nm": 1e-3}
    if pixel_axes and str(pixel_axes[0].get("units", "")).lower() in to_um:
        scale = abs(float(pixel_axes[0].get("scale", 0.0)))
        meta.pixel_size_um = scale * to_um[str(pixel_axes[0]["units"]).lower()] or None
    meta.extra["title"] = md.get("General", {}).get("title", "")
