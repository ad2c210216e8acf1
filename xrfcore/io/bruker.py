"""Bruker ``.bcf`` (spectrum images) and ``.spx`` (single spectra) through rosettasciio.

rosettasciio's ``rsciio.bruker.file_reader`` returns signal dictionaries whose energy axis
has ``offset``, ``scale`` and ``units``; we convert eV to keV. It files instrument metadata
under ``Acquisition_instrument.SEM``/``TEM`` (an electron-microscopy heritage); the tube
voltage (``beam_energy``, kV) and live/real times are taken from there. A ``.bcf`` is a
compressed container and is decoded into memory by rosettasciio.
"""

from __future__ import annotations

import math
import os
import re
import struct
from pathlib import Path
from typing import Any

import numpy as np

from xrfcore.errors import ScanReadError
from xrfcore.io._guard import run_guarded
from xrfcore.io._lazy import check_not_empty, make_calibration, read_head, reject_options, resolve_calibration
from xrfcore.scan import EnergyCalibration, Scan, ScanMetadata

__all__ = ["guess_can_open", "open_scan", "check_sfs", "check_spx", "SUFFIXES"]

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
    if p.suffix.lower() != f".{kind}":
        raise ScanReadError(f"{p}: content is a Bruker .{kind} file; rename it to end with .{kind}")
    if kind == "bcf":
        check_sfs(p)
    else:
        check_spx(p)
    # rosettasciio's parsers can crash or loop on damaged files: run them in a guarded child.
    signal = run_guarded(_read_signal, p, kind, dataset, path=p, what="rosettasciio's Bruker reader")
    data = np.asarray(signal["data"])
    if data.dtype.kind not in "iuf":
        raise ScanReadError(f"{p}: the spectrum data have dtype {data.dtype}; expected counts")
    if data.dtype.kind == "u" and data.size and int(data.max()) >= 2**63:
        raise ScanReadError(f"{p}: channel values wrap around (negative counts stored as unsigned); "
                            "photon counts cannot be negative: export the raw spectrum again")
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
    out = spectra[0]
    return {"data": np.asarray(out["data"]), "axes": out.get("axes", []), "metadata": out.get("metadata", {})}


#: Limits for Bruker containers: largest chunk (bytes) and number of tree items accepted.
_SFS_MAX_CHUNK = 1 << 24
_SFS_MAX_ITEMS = 100000
_SPX_MAX_BYTES = 64 << 20


def check_sfs(p: Path) -> None:
    """Validate a Bruker SFS container (``.bcf``) before rosettasciio parses it.

    Checks the header (chunk size, file tree address, item and chunk counts) against the file
    size, walks the file tree and every file's chunk pointer table, and refuses a container
    whose chunks point outside the file (truncated) or whose tree has loops.

    Raises
    ------
    ScanReadError
    """
    size = p.stat().st_size
    with open(p, "rb") as fh:
        head = fh.read(0x14C)
        if len(head) < 0x14C or not head.startswith(BCF_MAGIC):
            raise ScanReadError(f"{p}: the Bruker container header is cut short ({size} bytes); the file is truncated")
        _version, chunk = struct.unpack_from("<fI", head, 0x124)
        tree, n_items, n_chunks = struct.unpack_from("<III", head, 0x140)
        usable = chunk - 32
        if not 0x220 <= chunk <= _SFS_MAX_CHUNK or not 1 <= n_items <= _SFS_MAX_ITEMS or n_chunks < 1:
            raise ScanReadError(f"{p}: damaged Bruker container header (chunk size {chunk}, {n_items} items, "
                                f"{n_chunks} chunks)")
        needed = 0x138 + n_chunks * chunk
        if size + chunk < needed:
            raise ScanReadError(f"{p}: the Bruker container needs {needed} bytes ({n_chunks} chunks) but the file has "
                                f"{size}; it is truncated: copy it again from the instrument")

        def chunk_bytes(index: int, n: int, *, header: bool = False) -> bytes:
            if not 0 <= index < n_chunks:
                raise ScanReadError(f"{p}: the Bruker container points to chunk {index} of {n_chunks}; it is damaged")
            fh.seek(chunk * index + (0x118 if header else 0x138))
            data = fh.read(n)
            if len(data) < n:
                raise ScanReadError(f"{p}: a Bruker container chunk is cut short; the file is truncated")
            return data

        def chain(first: int, n_chunk_list: int, take: int = usable) -> bytes:
            """Data of a linked list of chunks (``take`` bytes of each)."""
            out, addr = [], first
            for i in range(n_chunk_list):
                if n_chunk_list == 1:
                    return chunk_bytes(addr, take)
                nxt = struct.unpack("<I", chunk_bytes(addr, 4, header=True))[0]
                out.append(chunk_bytes(addr, take))
                addr = nxt
            return b"".join(out)

        per_chunk = usable // 0x200
        tree_chunks = -(-n_items // max(per_chunk, 1))
        if tree_chunks > n_chunks:
            raise ScanReadError(f"{p}: damaged Bruker container file tree ({n_items} items)")
        raw = chain(tree, tree_chunks, min(usable, per_chunk * 0x200) if tree_chunks > 1 else n_items * 0x200)
        if len(raw) < n_items * 0x200:
            raise ScanReadError(f"{p}: the Bruker container file tree is cut short; the file is truncated")
        parents = []
        for i in range(n_items):
            item = struct.unpack_from("<iQQQQIi176s?3s256s32s", raw, i * 0x200)
            table, fsize, parent, is_dir = item[0], item[1], item[6], item[8]
            if not -1 <= parent < n_items or parent == i:
                raise ScanReadError(f"{p}: damaged Bruker container file tree (item {i} has parent {parent})")
            parents.append(parent)
            if is_dir:
                continue
            n_file_chunks = -(-fsize // usable)
            if n_file_chunks > n_chunks:
                raise ScanReadError(f"{p}: a file in the Bruker container claims {fsize} bytes, more than the "
                                    "container holds; it is truncated or damaged")
            table_chunks = -(-n_file_chunks // (usable // 4)) if n_file_chunks else 0
            if table_chunks:
                ptr = np.frombuffer(chain(table, table_chunks, usable if table_chunks > 1 else n_file_chunks * 4)
                                    [: n_file_chunks * 4], dtype="<u4")
                if ptr.size < n_file_chunks or (ptr.size and int(ptr.max()) >= n_chunks):
                    raise ScanReadError(f"{p}: a file in the Bruker container points outside the file; the "
                                        "container is truncated or damaged")
                # every chunk of the file must be in the file, the last one as far as it is used
                ends = ptr.astype(np.int64) * chunk + 0x138 + usable
                ends[-1] -= n_file_chunks * usable - fsize
                if int(ends.max()) > size:
                    raise ScanReadError(
                        f"{p}: the Bruker container holds {size} bytes but its data need {int(ends.max())}; the "
                        "file is truncated: copy it again from the instrument"
                    )
        for i in range(n_items):  # parent links must reach the root without a loop
            seen, j = 0, i
            while j != -1:
                j = parents[j]
                seen += 1
                if seen > n_items:
                    raise ScanReadError(f"{p}: damaged Bruker container file tree (a loop of folders)")


_SPX_TAG = {k: re.compile(rf"<{k}>([^<]*)</{k}>".encode()) for k in ("ChannelCount", "CalibAbs", "CalibLin", "Channels")}


def check_spx(p: Path) -> None:
    """Validate a Bruker ``.spx`` spectrum before rosettasciio parses it.

    ``ChannelCount`` must be a positive integer and ``Channels`` that many non-negative
    integers; ``CalibAbs``/``CalibLin`` must be finite numbers; XML entity declarations are refused.

    Raises
    ------
    ScanReadError
    """
    size = p.stat().st_size
    if size > _SPX_MAX_BYTES:
        raise ScanReadError(f"{p}: {size} bytes is far too large for a single .spx spectrum")
    data = p.read_bytes()
    if b"<!ENTITY" in data or b"<!DOCTYPE" in data:
        raise ScanReadError(f"{p}: the .spx declares XML entities, which Bruker spectra never use; refusing it")
    found = {}
    for key, rx in _SPX_TAG.items():
        m = rx.search(data)
        if m is None:
            raise ScanReadError(f"{p}: the .spx has no <{key}> element; the file is truncated or not a Bruker spectrum")
        found[key] = m.group(1).decode("latin-1").strip()
    for key in ("CalibAbs", "CalibLin"):
        try:
            value = float(found[key])
        except ValueError:
            value = float("nan")
        if not math.isfinite(value):
            raise ScanReadError(f"{p}: <{key}> must be a finite number (keV), got {found[key][:40]!r}")
    n_text = found["ChannelCount"]
    if not re.fullmatch(r"[0-9]{1,9}", n_text) or int(n_text) < 1:
        raise ScanReadError(f"{p}: <ChannelCount> must be a positive integer, got {n_text[:40]!r}")
    values = [v.strip() for v in found["Channels"].split(",")] if found["Channels"] else []
    if any(v.startswith("-") and v[1:].isdigit() for v in values):
        raise ScanReadError(f"{p}: <Channels> holds negative counts; photon counts cannot be negative")
    if not all(re.fullmatch(r"[0-9]{1,18}", v) for v in values):
        bad = next(v for v in values if not re.fullmatch(r"[0-9]{1,18}", v))
        raise ScanReadError(f"{p}: <Channels> must be non-negative integer counts, got {bad[:30]!r}")
    if len(values) < int(n_text):
        raise ScanReadError(f"{p}: <ChannelCount> says {n_text} channels but <Channels> holds {len(values)}; "
                            "the spectrum is truncated")


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
    try:
        offset, scale = float(axis["offset"]) * factor, float(axis["scale"]) * factor
    except (TypeError, ValueError, OverflowError):
        raise ScanReadError(f"{p}: the energy axis offset/scale are not numbers ({axis.get('offset')!r}, "
                            f"{axis.get('scale')!r})") from None
    return make_calibration(p, offset, scale)


def _fill_metadata(signal: dict[str, Any], meta: ScanMetadata) -> None:
    try:
        _fill_metadata_unchecked(signal, meta)
    except (TypeError, ValueError, AttributeError, OverflowError):
        pass  # instrument metadata are informative; a malformed entry is left out


def _fill_metadata_unchecked(signal: dict[str, Any], meta: ScanMetadata) -> None:
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
