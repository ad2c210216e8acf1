"""Single spectra: PyMca5's real Steel.spe and XRFSpectrum.mca, SPEC .mca, and Bruker .spx."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from xrfio_fixtures import make_cube, pymca_data_dir, write_spx

from xrfcore.commands.info import strongest_peaks
from xrfcore.errors import ScanReadError
from xrfcore.io import CalibrationWarning, open_scan
from xrfcore.scan import EnergyCalibration

# PyMca5 5.9.7 tests/XrfTest.py calibrates XRFSpectrum.mca with zero/gain (keV):
XRF_SPECTRUM_CAL = EnergyCalibration(-0.492773, 0.00502883)
# Line energies (keV), xraylib 4.3 / PyMca Elements: K-alpha1 (K-alpha2 is within 2 channels).
FE_KA, CO_KA, NI_KA = 6.404, 6.930, 7.478


def test_steel_spe_strongest_peak_is_fe_kalpha():
    scan = open_scan(pymca_data_dir() / "Steel.spe")
    assert scan.shape == (1, 1, 2048) and scan.metadata.format == "spe"
    # calibration from PyMca's own Steel.cfg next to the file ([detector] zero, gain)
    assert scan.calibration.offset_kev == pytest.approx(-0.0061, abs=1e-4)
    assert scan.calibration.gain_kev == pytest.approx(0.011928, rel=1e-4)
    peaks = strongest_peaks(scan.sum_spectrum(), scan.energy_kev, n=8)
    assert abs(peaks[0] - FE_KA) <= scan.calibration.gain_kev


def test_spe_without_cfg_falls_back_with_warning(tmp_path):
    spe = tmp_path / "Steel.spe"
    shutil.copy(pymca_data_dir() / "Steel.spe", spe)
    with pytest.warns(CalibrationWarning, match="no energy calibration found"):
        scan = open_scan(spe)
    assert not scan.metadata.calibration_from_file and scan.calibration.gain_kev == 0.01


def test_xrfspectrum_mca_known_lines():
    with pytest.warns(CalibrationWarning):
        bare = open_scan(pymca_data_dir() / "XRFSpectrum.mca")
    assert bare.shape == (1, 1, 4096) and not bare.metadata.calibration_from_file
    scan = open_scan(pymca_data_dir() / "XRFSpectrum.mca", calibration=XRF_SPECTRUM_CAL)
    np.testing.assert_array_equal(scan.spectrum(0, 0), bare.spectrum(0, 0))
    peaks = np.array(strongest_peaks(scan.sum_spectrum(), scan.energy_kev, n=16))
    for line in (CO_KA, NI_KA):  # the 500 ppm Co of the standard, and Ni
        assert np.min(np.abs(peaks - line)) <= 2 * XRF_SPECTRUM_CAL.gain_kev, (line, peaks)


def test_spec_mca_with_calib_header(tmp_path):
    counts = make_cube((1, 1, 64))[0, 0]
    body = "\n".join(" ".join(str(v) for v in counts[i : i + 16]) for i in range(0, 64, 16))
    p = tmp_path / "spec.mca"
    p.write_text(f"#F spec.mca\n\n#S 1 point 1\n#@MCA 16C\n#@CHANN 64 0 63 1\n#@CALIB 0.1 0.02 0\n"
                 f"#@CTIME 10 9.5 10\n@A {body.replace(chr(10), ' ' + chr(92) + chr(10))}\n")
    scan = open_scan(p)
    np.testing.assert_array_equal(scan.spectrum(0, 0), counts)
    assert scan.calibration == EnergyCalibration(0.1, 0.02) and scan.metadata.calibration_from_file
    assert scan.metadata.live_time_s == 9.5


def test_not_a_spectrum(tmp_path):
    p = tmp_path / "words.mca"
    p.write_text("this is\nnot a spectrum\n")
    with pytest.raises(ScanReadError, match=r"words\.mca: (PyMca found no spectrum|PyMca cannot read|spectrum has)"):
        open_scan(p)


def test_bruker_spx(tmp_path):
    counts = make_cube((1, 1, 512))[0, 0]
    p = write_spx(tmp_path / "spot.spx", counts, offset_kev=-0.955, gain_kev=0.01, voltage_kv=50.0)
    scan = open_scan(p)
    assert scan.shape == (1, 1, 512) and scan.metadata.format == "spx"
    np.testing.assert_array_equal(scan.spectrum(0, 0), counts)
    assert scan.calibration == EnergyCalibration(-0.955, 0.01)
    assert scan.metadata.tube_kv == 50.0
    assert scan.metadata.live_time_s == 9.5 and scan.metadata.real_time_s == 10.0


def test_bruker_spx_damaged(tmp_path):
    p = write_spx(tmp_path / "cut.spx", make_cube((1, 1, 64))[0, 0], offset_kev=0.0, gain_kev=0.01)
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(ScanReadError, match=r"cut\.spx: the \.spx has no <\w+> element; the file is truncated"):
        open_scan(p)


@pytest.mark.parametrize("content", [b"AAMVHFSS" + b"\x00" * 300, b"garbage bytes"])
def test_damaged_bcf(tmp_path, content):
    # No real .bcf is available here (rosettasciio's PyPI package ships no test data), so only
    # the error path of the .bcf reader is tested: a damaged container is a ScanReadError.
    p = tmp_path / "map.bcf"
    p.write_bytes(content)
    with pytest.raises(ScanReadError, match=r"map\.bcf: (the Bruker container header is cut short|damaged Bruker "
                       r"container header)"):
        open_scan(p)
    assert p.read_bytes() == content
