"""Fixture writers for the reader tests: small files in the formats' real layouts."""

from __future__ import annotations

import base64
import zlib
from pathlib import Path

import numpy as np


def pymca_data_dir() -> Path:
    from PyMca5 import PyMcaDataDir

    return Path(PyMcaDataDir.PYMCA_DATA_DIR)


def make_cube(shape=(3, 4, 64), *, seed=0, dtype=np.uint16) -> np.ndarray:
    """Poisson counts with one Gaussian peak per pixel at a pixel-dependent channel."""
    rng = np.random.default_rng(seed)
    h, w, c = shape
    ch = np.arange(c)
    centre = (np.arange(h * w).reshape(h, w, 1) % (c // 2)) + c // 4
    lam = 2.0 + 50.0 * np.exp(-0.5 * ((ch - centre) / 2.0) ** 2)
    return rng.poisson(lam).astype(dtype)


def write_spx(path: Path, counts: np.ndarray, *, offset_kev: float, gain_kev: float, voltage_kv: float = 50.0,
              real_time_ms: int = 10000, live_time_ms: int = 9500) -> Path:
    """A Bruker ``.spx`` (XML) as Bruker ESPRIT / M4-M6 software writes it, reduced to the nodes
    rosettasciio 0.15 reads: TRTSpectrum > TRTHeaderedClass (hardware, detector with the
    base64-zlib ``DetLayers`` block, XRF header), TRTSpectrumHeader (CalibAbs/CalibLin in keV)
    and the comma-separated ``Channels``."""
    layers = b'<DetLayers><Layer0 Atom="5" Thickness="0.008"/><Layer1 Atom="14" Thickness="0.45"/></DetLayers>'
    det_layers = base64.b64encode(zlib.compress(layers)).decode("ascii")
    channels = ",".join(str(int(v)) for v in counts)
    xml = f"""<?xml version="1.0" encoding="WINDOWS-1252" standalone="yes"?>
<TRTSpectrum>
<RTHeader/>
<ClassInstance Type="TRTSpectrum" Name="Mockup spot 1">
<TRTHeaderedClass>
<ClassInstance Type="TRTSpectrumHardwareHeader">
<RealTime>{real_time_ms}</RealTime>
<LifeTime>{live_time_ms}</LifeTime>
<DeadTime>5</DeadTime>
<ZeroPeakPosition>95</ZeroPeakPosition>
<ZeroPeakFrequency>800</ZeroPeakFrequency>
<PulseDensity>70000</PulseDensity>
<Amplification>40000</Amplification>
<ShapingTime>130000</ShapingTime>
</ClassInstance>
<ClassInstance Type="TRTDetectorHeader">
<Type>XFlash 6|30</Type>
<DetectorThickness>0.45</DetectorThickness>
<SiDeadLayerThickness>0.029</SiDeadLayerThickness>
<DetLayers>{det_layers}</DetLayers>
</ClassInstance>
<ClassInstance Type="TRTXrfHeader">
<Voltage>{voltage_kv}</Voltage>
<Current>600</Current>
<ExcitationAngle>50</ExcitationAngle>
<Anode>42</Anode>
</ClassInstance>
</TRTHeaderedClass>
<ClassInstance Type="TRTSpectrumHeader">
<Date>24.11.2026</Date>
<Time>12:30:00</Time>
<ChannelCount>{counts.size}</ChannelCount>
<CalibAbs>{offset_kev!r}</CalibAbs>
<CalibLin>{gain_kev!r}</CalibLin>
<SigmaAbs>0.0005</SigmaAbs>
<SigmaLin>0.0003</SigmaLin>
</ClassInstance>
<Channels>{channels}</Channels>
</ClassInstance>
</TRTSpectrum>
"""
    path.write_bytes(xml.encode("cp1252"))
    return path




def write_sfs(path: Path, files: dict[str, bytes], *, chunk_size: int = 0x1000, version: float = 2.6) -> Path:
    """A Bruker/AidAim SFS container (the ``.bcf`` wrapper) holding ``files`` uncompressed.

    ``files`` maps ``"folder/name"`` to contents; folders are created as tree items. Layout as
    rosettasciio's SFS reader reads it: header chunk 0 (signature, version and chunk size at
    0x124, tree address / item count / chunk count at 0x140); chunk ``i`` starts at
    ``chunk_size * i + 0x118`` with a 32-byte chunk header (next-chunk link first) and
    ``chunk_size - 32`` data bytes; 512-byte tree items; one uint32 pointer per data chunk.
    """
    import math
    import struct

    usable = chunk_size - 32
    chunks: list[bytes] = []  # index 1.. (0 is the header chunk)

    def new_chunks(data: bytes, *, linked: bool) -> int:
        n = max(1, math.ceil(len(data) / usable))
        first = len(chunks) + 1
        for i in range(n):
            nxt = first + i + 1 if linked and i < n - 1 else 0
            body = data[i * usable:(i + 1) * usable].ljust(usable, b"\0")
            chunks.append(struct.pack("<I", nxt) + b"\0" * 28 + body)
        return first

    items: list[tuple[str, int, bool]] = []  # (name, parent, is_dir)
    index: dict[str, int] = {}
    for name in files:
        parts = name.split("/")
        parent = -1
        for depth, part in enumerate(parts):
            key = "/".join(parts[: depth + 1])
            if key not in index:
                index[key] = len(items)
                items.append((part, parent, depth < len(parts) - 1))
            parent = index[key]
    records = []
    for key, i in sorted(index.items(), key=lambda kv: kv[1]):
        name, parent, is_dir = items[i]
        table, size = 0, 0
        if not is_dir:
            data = files[key]
            size = len(data)
            first = new_chunks(data, linked=False) if data else 0
            n = math.ceil(size / usable)
            pointers = struct.pack(f"<{n}I", *range(first, first + n))
            table = new_chunks(pointers, linked=True)
        records.append(struct.pack("<iQQQQIi176s?3s256s32s", table, size, 0, 0, 0, 0, parent, b"", is_dir, b"",
                                   name.encode(), b""))
    per_chunk = usable // 0x200  # tree items never straddle chunks
    tree_data = b"".join(b"".join(records[i:i + per_chunk]).ljust(usable, b"\0")
                         for i in range(0, len(records), per_chunk))
    tree = new_chunks(tree_data, linked=True)
    n_chunks = len(chunks) + 1
    head = bytearray(chunk_size + 0x118)
    head[:8] = b"AAMVHFSS"
    struct.pack_into("<fI", head, 0x124, version, chunk_size)
    struct.pack_into("<III", head, 0x140, tree, len(records), n_chunks)
    path.write_bytes(bytes(head) + b"".join(chunks))
    return path
