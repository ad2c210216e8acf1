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


