"""Single spectra (``.mca``, ``.spe``) through PyMca5's readers, as ``(1, 1, C)`` scans.

PyMca's ``specfilewrapper.Specfile`` reads SPEC ``.mca`` files, one- or multi-column
text, Amptek ``.mca`` and QXAS ``.spe``. The calibration comes, in order, from
``calibration=`` (the caller), the file (``#@CALIB``, ``$MCA_CAL``, Amptek calibration
points), or a PyMca fit configuration with the same stem next to it (``Steel.cfg`` for
``Steel.spe``: its ``[detector]`` ``zero`` and ``gain``, which is where PyMca's own tests take
the calibration of that file). Otherwise the default axis is used with a warning.

PyMca's ``XRFSpectrum.mca`` is a bare column of counts; PyMca's tests calibrate it with
``zero = -0.492773``, ``gain = 0.00502883`` keV (``PyMca5/tests/XrfTest.py``): pass that as
``calibration=``.
"""

from __future__ import annotations

import configparser
import math
import os
import re
from pathlib import Path

import numpy as np

from xrfcore.errors import CalibrationError, ScanReadError
from xrfcore.io._guard import run_guarded
from xrfcore.io._lazy import check_not_empty, make_calibration, read_head, reject_options, resolve_calibration
from xrfcore.scan import EnergyCalibration, Scan, ScanMetadata

__all__ = ["guess_can_open", "open_scan", "check_spectrum_text", "SUFFIXES"]

SUFFIXES = (".mca", ".spe")
_MAGICS = (b"$SPEC_ID", b"$DATE_MEA", b"$MEAS_TIM", b"<<PMCA SPECTRUM>>", b"#F ", b"#S ")


def sniff(path: str | os.PathLike) -> bool:
    """True for QXAS ``.spe`` and Amptek ``.mca`` headers, and SPEC files (``#F``/``#S``)."""
    head = read_head(path, 64).lstrip()
    return any(head.startswith(m) for m in _MAGICS)


def guess_can_open(path: str | os.PathLike) -> bool:
    """True if ``path`` looks like a single-spectrum file (magic first, suffix second)."""
    return sniff(path) or Path(path).suffix.lower() in SUFFIXES


def open_scan(
    path: str | os.PathLike,
    *,
    dataset: str | None = None,
    channel_axis: str | None = None,
    calibration: EnergyCalibration | None = None,
) -> Scan:
    """Read one spectrum as a ``(1, 1, n_channels)`` scan.

    Parameters
    ----------
    path : str or PathLike
    dataset, channel_axis : None
        Not used by this format; giving them is an error.
    calibration : EnergyCalibration, optional
        Overrides the file's calibration.

    Raises
    ------
    ScanReadError
        Empty file, no spectrum found, or PyMca cannot parse the file.
    """
    p = check_not_empty(path)
    reject_options(p, "single-spectrum", dataset=dataset, channel_axis=channel_axis)
    size = p.stat().st_size
    if size > MAX_TEXT_BYTES:
        raise ScanReadError(f"{p}: {size} bytes is far too large for a single-spectrum text file")
    declared = check_spectrum_text(p)
    # PyMca's readers can loop forever or crash on damaged files: run them in a guarded child.
    counts, calib_lines, live = run_guarded(_read_with_pymca, p, path=p, what="PyMca's spectrum reader")
    if declared is not None and counts.size != declared:
        raise ScanReadError(f"{p}: the header declares {declared} channels but {counts.size} were read; "
                            "the file is truncated or damaged")
    if not np.all(np.isfinite(counts)):
        raise ScanReadError(f"{p}: the spectrum holds NaN or infinite values; counts must be finite")
    if counts.size and counts.min() < 0:
        raise ScanReadError(f"{p}: the spectrum holds negative counts (min {counts.min():g}); photon counts "
                            "cannot be negative: load the raw spectrum")
    fmt = p.suffix.lower().lstrip(".") or "mca"
    meta = ScanMetadata(source=str(p), format=fmt, live_time_s=live)
    file_cal = _calibration_from_header(p, calib_lines)
    if file_cal is None:
        file_cal = _calibration_from_cfg(p, meta)
    cal = resolve_calibration(p, file_cal, calibration, meta)
    return Scan(counts.reshape(1, 1, -1), cal, meta)


#: Largest single-spectrum text file accepted (bytes).
MAX_TEXT_BYTES = 64 << 20
_NUM = re.compile(rb"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")


def check_spectrum_text(p: Path) -> int | None:
    """Validate the declared layout of a QXAS ``.spe`` or SPEC ``.mca`` before PyMca reads it.

    Returns the number of channels the header declares (``$DATA:`` first/last channel,
    ``#@CHANN``), or None when it declares none. Raises ScanReadError for a QXAS file without a
    ``$DATA:`` section, with a malformed channel range, or with fewer values than declared.
    """
    data = p.read_bytes()
    head = data[:64].lstrip()
    if head.startswith((b"$SPEC_ID", b"$DATE_MEA", b"$MEAS_TIM", b"$DATA")) or b"\n$DATA:" in data:
        i = data.find(b"$DATA:")
        if i < 0:
            raise ScanReadError(f"{p}: the .spe has no $DATA: section; the file is truncated or not a spectrum")
        lines = data[i:].split(b"\n", 2)
        rng = lines[1].split() if len(lines) > 1 else []
        if len(rng) != 2 or not all(re.fullmatch(rb"[0-9]{1,9}", v) for v in rng) or int(rng[1]) < int(rng[0]):
            raise ScanReadError(f"{p}: the .spe $DATA: line must give the first and last channel, got "
                                f"{b' '.join(rng).decode('latin-1')[:40]!r}")
        n = int(rng[1]) - int(rng[0]) + 1
        body = lines[2] if len(lines) > 2 else b""
        end = body.find(b"$")
        values = (body if end < 0 else body[:end]).split()
        if len(values) < n:
            raise ScanReadError(f"{p}: the .spe declares {n} channels but holds {len(values)} values; the file is "
                                "truncated: copy it again")
        bad = next((v for v in values[:n] if not _NUM.fullmatch(v)), None)
        if bad is not None:
            raise ScanReadError(f"{p}: the .spe $DATA: section holds {bad[:20].decode('latin-1')!r}, not a count")
        return n
    m = re.search(rb"^#@CHANN[ \t]+(\S+)", data, re.MULTILINE)
    if m is not None:
        if not re.fullmatch(rb"[0-9]{1,9}", m.group(1)):
            raise ScanReadError(f"{p}: #@CHANN must start with the number of channels, got {m.group(1)[:20]!r}")
        return int(m.group(1))
    return None


def _read_with_pymca(p: Path) -> tuple[np.ndarray, list[str], float | None]:
    from PyMca5.PyMcaIO import specfilewrapper

    try:
        sf = specfilewrapper.Specfile(str(p))
        for i in range(len(sf)):
            scan = sf[i]
            if scan.nbmca() < 1:
                continue
            y = np.asarray(scan.mca(1), dtype=np.float64).ravel()
            calib = list(scan.header("@CALIB") or [])
            live = _live_time(scan)
            break
        else:
            raise ScanReadError(f"{p}: PyMca found no spectrum (MCA) in this file; is it a spectrum file?")
    except ScanReadError:
        raise
    except Exception as exc:  # PyMca raises bare exceptions on malformed files
        raise ScanReadError(f"{p}: PyMca cannot read this file as a spectrum ({type(exc).__name__}: {exc})") from exc
    if y.size < 2:
        raise ScanReadError(f"{p}: spectrum has {y.size} channel(s); expected a full spectrum")
    if np.all(y == np.round(y)) and y.min(initial=0) >= 0 and y.max(initial=0) < 2**31:
        y = y.astype(np.int32)
    return y, calib, live


def _live_time(scan) -> float | None:  # noqa: ANN001 - PyMca scan object
    try:
        lines = scan.header("@CTIME") or []
        if lines:
            values = [float(v) for v in str(lines[0]).split()[1:]]
            return values[1] if len(values) > 1 else values[0]
    except Exception:  # header layouts vary between PyMca readers
        return None
    return None


def _calibration_from_header(p: Path, lines: list[str]) -> EnergyCalibration | None:
    for line in lines:
        try:
            values = [float(v) for v in str(line).split()[1:4]]
        except ValueError:
            raise CalibrationError(f"{p}: #@CALIB must hold numbers (zero, gain, quadratic in keV), got "
                                   f"{str(line)[:60]!r}; fix the file or pass the calibration") from None
        if not all(math.isfinite(v) for v in values):
            raise CalibrationError(f"{p}: #@CALIB values must be finite, got {str(line)[:60]!r}")
        if len(values) >= 2 and values[1] != 0:
            return make_calibration(p, values[0], values[1], values[2] if len(values) > 2 else 0.0)
    return None


def _calibration_from_cfg(p: Path, meta: ScanMetadata) -> EnergyCalibration | None:
    """``[detector]`` zero/gain (keV) from a PyMca fit configuration with the same stem."""
    for cfg in (p.with_suffix(".cfg"), p.with_suffix(".CFG")):
        if not cfg.is_file():
            continue
        parser = configparser.ConfigParser(strict=False, interpolation=None)
        try:
            parser.read(cfg, encoding="latin-1")
            zero = parser.getfloat("detector", "zero")
            gain = parser.getfloat("detector", "gain")
        except (configparser.Error, ValueError):
            return None
        meta.extra["calibration_source"] = f"PyMca fit configuration {cfg.name}"
        return make_calibration(p, zero, gain)
    return None
