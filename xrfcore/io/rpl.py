"""Bruker / Lispix ``.rpl`` header + ``.raw`` binary cube, with our own tolerant parser.

Real Bruker exports mix tab- and space-separated ``key value`` lines and add the
calibration lines ``depthscaleorigin`` (keV at channel 0) and ``depthscaleincrement``
(keV per channel); rosettasciio 0.15 and PyMca 5.9.7 reject those files. Keys are
case-insensitive; ``;`` and ``#`` start comments; unknown keys are kept in
``metadata.extra["rpl"]``. A tab-only Lispix file carries no calibration
(``calibration_from_file=False``).

Examples
--------
>>> parse_rpl_text("width 3\\nHEIGHT\\t2\\ndepth   4  ; channels\\n")["depth"]
'4'
"""

from __future__ import annotations

import math
import os
import re
import warnings
from pathlib import Path
import numpy as np

from xrfcore.errors import ScanReadError
from xrfcore.io._lazy import (
    CalibrationWarning,
    RawArray,
    check_not_empty,
    make_calibration,
    read_head,
    reject_options,
    resolve_calibration,
)
from xrfcore.scan import EnergyCalibration, Scan, ScanMetadata

__all__ = ["guess_can_open", "open_scan", "parse_rpl_text", "write_rpl", "SUFFIXES"]

SUFFIXES = (".rpl",)
_REQUIRED = ("width", "height", "depth", "data-length", "data-type")
_SEP = re.compile(r"[\t ]+")
_KEY_ALIASES = {"data_length": "data-length", "data_type": "data-type", "byte_order": "byte-order",
                "record_by": "record-by", "datalength": "data-length", "datatype": "data-type",
                "byteorder": "byte-order", "recordby": "record-by"}


def sniff(path: str | os.PathLike) -> bool:
    """True if the file is text whose keys include width, height, depth and data-length."""
    head = read_head(path, 4096)
    if not head or b"\x00" in head:
        return False
    try:
        keys = set(parse_rpl_text(head.decode("latin-1")))
    except ScanReadError:
        return False
    return {"width", "height", "depth", "data-length"} <= keys


def guess_can_open(path: str | os.PathLike) -> bool:
    """True for ``.rpl`` headers (content first, suffix second) and ``.raw`` files with one."""
    p = Path(path)
    if p.suffix.lower() == ".raw":
        return _sibling(p, ".rpl") is not None
    return sniff(p) or p.suffix.lower() in SUFFIXES


def parse_rpl_text(text: str) -> dict[str, str]:
    """Parse ``.rpl`` text into ``{lower-case key: value string}``.

    Keys and values are separated by tabs or runs of spaces; ``;``/``#`` start comments;
    a ``key value`` title line is skipped; later duplicates win.
    """
    out: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.split(";", 1)[0].split("#", 1)[0].strip()
        if not line:
            continue
        parts = _SEP.split(line, maxsplit=1)
        key = parts[0].strip().lower().rstrip(":=")
        key = _KEY_ALIASES.get(key, key)
        value = parts[1].strip().lstrip(":=").strip() if len(parts) > 1 else ""
        if key == "key" and value.lower() == "value":
            continue
        out[key] = value
    return out


def open_scan(
    path: str | os.PathLike,
    *,
    dataset: str | None = None,
    channel_axis: str | None = None,
    calibration: EnergyCalibration | None = None,
) -> Scan:
    """Open a ``.rpl`` + ``.raw`` pair lazily (``path`` may name either file).

    Parameters
    ----------
    path : str or PathLike
    dataset, channel_axis : None
        Not used by this format (the header says the layout); giving them is an error.
    calibration : EnergyCalibration, optional
        Overrides the header's ``depthscaleorigin``/``depthscaleincrement``.

    Raises
    ------
    ScanReadError
        Missing keys, unsupported values, missing ``.raw``, or a ``.raw`` whose size
        does not match the header (the message gives both sizes).
    """
    p = Path(path)
    reject_options(p, ".rpl", dataset=dataset, channel_axis=channel_axis)
    rpl = p if p.suffix.lower() != ".raw" else _sibling(p, ".rpl")
    if rpl is None:
        raise ScanReadError(f"{p}: no .rpl header next to this .raw file; it is needed for the shape and type")
    rpl = check_not_empty(rpl)
    if rpl.stat().st_size > _MAX_HEADER_BYTES:
        raise ScanReadError(f"{rpl}: {rpl.stat().st_size} bytes is far too large for a .rpl header; is it the .raw?")
    header = parse_rpl_text(rpl.read_bytes().decode("latin-1"))
    missing = [k for k in _REQUIRED if k not in header]
    if missing:
        raise ScanReadError(f"{rpl}: .rpl header lacks {', '.join(missing)}; found keys {sorted(header)}")
    h, w, c = (_int(rpl, header, k) for k in ("height", "width", "depth"))
    dtype = _dtype(rpl, header)
    record_by = _record_by(rpl, header, c)
    offset = _int(rpl, header, "offset") if "offset" in header else 0
    raw = _sibling(rpl, ".raw")
    if raw is None:
        raise ScanReadError(f"{rpl}: the binary data file {rpl.with_suffix('.raw').name} is missing")
    expected = offset + h * w * c * dtype.itemsize
    actual = raw.stat().st_size
    if actual != expected:
        raise ScanReadError(
            f"{raw}: size {actual} bytes does not match the .rpl header ({h} x {w} x {c} x "
            f"{dtype.itemsize} bytes + offset {offset} = {expected} bytes); the .raw is truncated "
            "or the header is wrong"
        )
    meta = ScanMetadata(source=str(rpl), format="rpl")
    meta.extra["raw_file"] = str(raw)
    meta.extra["rpl"] = dict(header)
    cal = resolve_calibration(rpl, _calibration(rpl, header), calibration, meta)
    return Scan(RawArray(raw, offset, (h, w, c), dtype, record_by), cal, meta)


def write_rpl(
    path: str | os.PathLike,
    counts: np.ndarray,
    *,
    calibration: EnergyCalibration | None = None,
    byte_order: str = "little-endian",
    record_by: str = "vector",
    separator: str = "\t",
) -> Path:
    """Write ``counts`` (H, W, C) as a ``.rpl`` + ``.raw`` pair (used by tests and exports).

    ``calibration`` adds Bruker's ``depthscaleorigin``/``depthscaleincrement`` lines (keV).
    Returns the ``.rpl`` path.
    """
    counts = np.asarray(counts)
    h, w, c = counts.shape
    kind = {"i": "signed", "u": "unsigned", "f": "float"}[counts.dtype.kind]
    dt = counts.dtype.newbyteorder("<" if byte_order == "little-endian" else ">")
    rpl = Path(path).with_suffix(".rpl")
    lines = [("key", "value"), ("width", w), ("height", h), ("depth", c), ("offset", 0),
             ("data-length", counts.dtype.itemsize), ("data-type", kind), ("byte-order", byte_order),
             ("record-by", record_by)]
    if calibration is not None:
        lines += [("depthscaleorigin", repr(calibration.offset_kev)),
                  ("depthscaleincrement", repr(calibration.gain_kev))]
    rpl.write_text("".join(f"{k}{separator}{v}\n" for k, v in lines), encoding="latin-1")
    data = counts if record_by == "vector" else np.transpose(counts, (2, 0, 1))
    np.ascontiguousarray(data, dtype=dt).tofile(rpl.with_suffix(".raw"))
    return rpl


# -- helpers ----------------------------------------------------------------------
def _sibling(p: Path, suffix: str) -> Path | None:
    for cand in (p.with_suffix(suffix), p.with_suffix(suffix.upper())):
        if cand.is_file():
            return cand
    return None


_MAX_HEADER_BYTES = 1 << 20
_INT_RE = re.compile(r"[+-]?[0-9]+")
_FLOAT_RE = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")
#: Largest width, height, depth or offset a header may give.
_MAX_SIZE = 2**40


def _number(p: Path, header: dict[str, str], key: str) -> float:
    """``header[key]`` as a finite float (ASCII decimal notation only), else ScanReadError naming the key."""
    text = header[key].strip()
    if not _FLOAT_RE.fullmatch(text):
        raise ScanReadError(f"{p}: {key} must be a number, got {header[key]!r}")
    value = float(text)
    if not math.isfinite(value):
        raise ScanReadError(f"{p}: {key} must be a finite number, got {header[key]!r}")
    return value


def _int(p: Path, header: dict[str, str], key: str) -> int:
    text = header[key].strip()
    if _INT_RE.fullmatch(text):
        value = int(text)
    else:
        try:
            f = _number(p, header, key)
        except ScanReadError:
            raise ScanReadError(f"{p}: {key} must be an integer, got {header[key]!r}") from None
        if f != math.floor(f) or abs(f) > _MAX_SIZE:
            raise ScanReadError(f"{p}: {key} must be an integer, got {header[key]!r}")
        value = int(f)
    if value < (0 if key == "offset" else 1):
        raise ScanReadError(f"{p}: {key} must be positive, got {value}")
    if value > _MAX_SIZE:
        raise ScanReadError(f"{p}: {key} {value} is far too large for a scan; the header is damaged")
    return value


def _dtype(p: Path, header: dict[str, str]) -> np.dtype:
    length = _int(p, header, "data-length")
    kind = header["data-type"].lower()
    order = header.get("byte-order", "dont-care").lower()
    codes = {"signed": "i", "unsigned": "u", "float": "f"}
    if kind not in codes:
        raise ScanReadError(f"{p}: data-type must be signed, unsigned or float, got {kind!r}")
    valid = {"i": (1, 2, 4, 8), "u": (1, 2, 4, 8), "f": (4, 8)}[codes[kind]]
    if length not in valid:
        raise ScanReadError(f"{p}: data-length {length} is not valid for {kind} data (use one of {valid})")
    if order in ("little-endian", "little", "l"):
        prefix = "<"
    elif order in ("big-endian", "big", "b"):
        prefix = ">"
    elif order in ("dont-care", "dontcare", ""):
        if length > 1:
            warnings.warn(f"{p}: byte-order dont-care with {length}-byte data; assuming little-endian",
                          UserWarning, stacklevel=3)
        prefix = "<"
    else:
        raise ScanReadError(f"{p}: byte-order must be little-endian, big-endian or dont-care, got {order!r}")
    return np.dtype(f"{prefix}{codes[kind]}{length}")


def _record_by(p: Path, header: dict[str, str], depth: int) -> str:
    rb = header.get("record-by", "vector").lower()
    if rb in ("vector", "image"):
        return rb
    if rb in ("dont-care", "dontcare", ""):
        return "vector"
    raise ScanReadError(f"{p}: record-by must be vector, image or dont-care, got {rb!r}")


def _calibration(p: Path, header: dict[str, str]) -> EnergyCalibration | None:
    if "depthscaleorigin" not in header and "depthscaleincrement" not in header:
        if "ev-per-chan" in header:  # Lispix extension: eV per channel, zero offset
            return make_calibration(p, 0.0, _number(p, header, "ev-per-chan") / 1000.0)
        return None
    if "depthscaleincrement" not in header:
        raise ScanReadError(f"{p}: depthscaleorigin is given without depthscaleincrement; give both (keV)")
    origin = _number(p, header, "depthscaleorigin") if "depthscaleorigin" in header else 0.0
    inc = _number(p, header, "depthscaleincrement")
    units = header.get("depthscaleunits", header.get("depthscaleunit", "")).lower()
    if units == "ev" or (not units and inc > 0.5):
        if not units:
            warnings.warn(f"{p}: depthscaleincrement {inc} looks like eV/channel; converting to keV",
                          CalibrationWarning, stacklevel=3)
        origin, inc = origin / 1000.0, inc / 1000.0
    return make_calibration(p, origin, inc)
