"""NumPy cubes: lazy .npy (both channel orders), .npz member choice, calibration fallback, bad arrays."""

from __future__ import annotations

import numpy as np
import pytest
from xrfio_fixtures import make_cube

from xrfcore.errors import CalibrationError, ScanReadError
from xrfcore.io import CalibrationWarning, RawArray, open_scan
from xrfcore.scan import EnergyCalibration

CAL = EnergyCalibration(-0.955, 0.01)


@pytest.mark.parametrize("dtype", [np.uint16, np.float32, ">i4"])
def test_npy_is_lazy_and_exact(tmp_path, dtype):
    cube = make_cube((4, 5, 48)).astype(dtype)
    np.save(tmp_path / "c.npy", cube)
    scan = open_scan(tmp_path / "c.npy", calibration=CAL)
    assert isinstance(scan.counts, RawArray)
    np.testing.assert_array_equal(scan.read_rows(0, 4), cube)
    assert scan.calibration == CAL and not scan.metadata.calibration_from_file
    assert scan.metadata.extra["calibration_source"] == "user"


def test_npy_channel_first(tmp_path):
    cube = make_cube((4, 5, 48))
    np.save(tmp_path / "cf.npy", np.transpose(cube, (2, 0, 1)))
    scan = open_scan(tmp_path / "cf.npy", channel_axis="first", calibration=CAL)
    assert scan.shape == (4, 5, 48)
    np.testing.assert_array_equal(scan.spectrum(3, 2), cube[3, 2])


def test_npy_without_calibration_warns(tmp_path):
    np.save(tmp_path / "n.npy", make_cube((2, 2, 16)))
    with pytest.warns(CalibrationWarning, match=r"n\.npy: no energy calibration found"):
        scan = open_scan(tmp_path / "n.npy")
    assert not scan.metadata.calibration_from_file
    assert (scan.calibration.offset_kev, scan.calibration.gain_kev) == (0.0, 0.01)


def test_npz_picks_largest_cube_and_its_calibration(tmp_path):
    big, small = make_cube((4, 4, 32)), make_cube((2, 2, 32), seed=1)
    np.savez_compressed(tmp_path / "z.npz", small=small, big=big, mask=np.ones((4, 4)),
                        offset_keV=-0.5, gain_keV=0.02)
    scan = open_scan(tmp_path / "z.npz")
    assert scan.metadata.format == "npz" and scan.metadata.extra["dataset"] == "big"
    np.testing.assert_array_equal(np.asarray(scan.counts), big)
    assert scan.calibration == EnergyCalibration(-0.5, 0.02) and scan.metadata.calibration_from_file
    assert open_scan(tmp_path / "z.npz", dataset="small").shape == (2, 2, 32)
    with pytest.raises(ScanReadError, match=r"no array 'x'; arrays in the file: small, big, mask"):
        open_scan(tmp_path / "z.npz", dataset="x")


def test_npz_gain_not_positive(tmp_path):
    np.savez(tmp_path / "g.npz", counts=make_cube((2, 2, 8)), offset_keV=0.0, gain_keV=-0.01)
    with pytest.raises(CalibrationError, match=r"g\.npz: calibration in the file is invalid.*gain must be > 0"):
        open_scan(tmp_path / "g.npz")


def test_user_gain_not_positive():
    with pytest.raises(CalibrationError, match="gain must be > 0"):
        EnergyCalibration(0.0, 0.0)


def test_two_d_array_is_an_error(tmp_path):
    np.save(tmp_path / "flat.npy", np.ones((10, 64)))
    with pytest.raises(ScanReadError, match=r"flat\.npy: expected a 3-D cube .*got shape \(10, 64\)"):
        open_scan(tmp_path / "flat.npy", calibration=CAL)
    np.savez(tmp_path / "flat.npz", spectra=np.ones((10, 64)))
    with pytest.raises(ScanReadError, match=r"no numeric 3-D array in the .npz \(found spectra \(10, 64\)\)"):
        open_scan(tmp_path / "flat.npz", calibration=CAL)


def test_one_d_array_is_one_spectrum(tmp_path):
    np.save(tmp_path / "one.npy", np.arange(32, dtype=np.uint32))
    assert open_scan(tmp_path / "one.npy", calibration=CAL).shape == (1, 1, 32)


def test_truncated_npy(tmp_path):
    np.save(tmp_path / "t.npy", make_cube((4, 4, 64)))
    p = tmp_path / "t.npy"
    data = p.read_bytes()
    p.write_bytes(data[:-64])
    with pytest.raises(ScanReadError, match=r"t\.npy: file is truncated: \d+ bytes, the header needs \d+ bytes"):
        open_scan(p, calibration=CAL)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -1.0])
def test_bad_values_are_reported_on_read(tmp_path, bad):
    cube = make_cube((3, 3, 16)).astype(np.float64)
    cube[2, 2, 5] = bad
    np.save(tmp_path / "v.npy", cube)
    scan = open_scan(tmp_path / "v.npy", calibration=CAL)
    np.testing.assert_array_equal(scan.spectrum(0, 0), cube[0, 0])
    with pytest.raises(ScanReadError, match=r"v\.npy: .*(NaN/inf|negative counts).*rows 2:3"):
        scan.read_rows(2, 3)
