"""Tests of the Scan object, its calibration, atomic writes and the CLI dispatcher."""

import pickle

import numpy as np
import pytest

from xrfcore.atomic import atomic_path
from xrfcore.cli import main
from xrfcore.errors import CalibrationError, ScanReadError
from xrfcore.scan import EnergyCalibration, Scan


def test_calibration_linear_and_inverse():
    cal = EnergyCalibration(-0.955, 0.010)
    e = cal.energies(4096)
    assert e[0] == pytest.approx(-0.955)
    assert e[100] == pytest.approx(0.045)
    assert cal.channel(6.404) == pytest.approx((6.404 + 0.955) / 0.010)


def test_calibration_quadratic_inverse():
    cal = EnergyCalibration(0.1, 0.01, 1e-7)
    ch = np.array([10.0, 1000.0, 3000.0])
    e = cal.offset_kev + cal.gain_kev * ch + cal.quadratic_kev * ch**2
    np.testing.assert_allclose(cal.channel(e), ch, rtol=1e-10)


@pytest.mark.parametrize("gain", [0.0, -0.01, float("nan")])
def test_calibration_rejects_bad_gain(gain):
    with pytest.raises(CalibrationError, match="gain|finite"):
        EnergyCalibration(0.0, gain)


def test_calibration_rejects_decreasing_axis():
    with pytest.raises(CalibrationError, match="not increasing"):
        EnergyCalibration(0.0, 0.01, -1e-5).energies(2048)


def test_calibration_dict_roundtrip():
    cal = EnergyCalibration(-0.5, 0.005, 2e-9)
    assert EnergyCalibration.from_dict(cal.to_dict()) == cal


@pytest.mark.parametrize("dtype", [np.uint16, np.int32, np.float32, np.float64])
def test_scan_reads_chunks_and_sums(dtype):
    rng = np.random.default_rng(0)
    cube = rng.poisson(5.0, size=(7, 5, 64)).astype(dtype)
    scan = Scan.from_array(cube, EnergyCalibration(0.0, 0.01))
    assert scan.shape == (7, 5, 64)
    blocks = list(scan.iter_row_chunks(3))
    assert [(a, b) for a, b, _ in blocks] == [(0, 3), (3, 6), (6, 7)]
    np.testing.assert_array_equal(np.concatenate([b for _, _, b in blocks]), cube)
    np.testing.assert_allclose(scan.sum_spectrum(), cube.sum(axis=(0, 1)))
    np.testing.assert_allclose(scan.max_pixel_spectrum(), cube.max(axis=(0, 1)))
    np.testing.assert_allclose(scan.total_counts_map(), cube.sum(axis=-1))
    np.testing.assert_array_equal(scan.spectrum(2, 4), cube[2, 4])


def test_scan_single_spectrum_is_1x1xC():
    scan = Scan.from_array(np.arange(10), EnergyCalibration(0.0, 0.01))
    assert scan.shape == (1, 1, 10)


def test_scan_rejects_2d_and_strings():
    with pytest.raises(ScanReadError, match="3-D cube"):
        Scan(np.zeros((4, 4)), EnergyCalibration(0.0, 0.01))
    with pytest.raises(ScanReadError, match="numeric"):
        Scan(np.array([[["a"]]]), EnergyCalibration(0.0, 0.01))


def test_scan_rejects_nan_and_negative_on_read():
    cube = np.ones((2, 2, 8), dtype=np.float32)
    cube[1, 0, 3] = np.nan
    scan = Scan.from_array(cube, EnergyCalibration(0.0, 0.01), source="x.npy")
    with pytest.raises(ScanReadError, match="x.npy: 1 NaN"):
        scan.read_rows(0, 2)
    cube[1, 0, 3] = -2
    with pytest.raises(ScanReadError, match="negative counts"):
        scan.sum_spectrum()


def test_scan_pickles():
    scan = Scan.from_array(np.ones((2, 3, 4)), EnergyCalibration(0.0, 0.02))
    again = pickle.loads(pickle.dumps(scan))
    assert again.shape == scan.shape and again.calibration == scan.calibration


def test_atomic_path_keeps_old_file_on_error(tmp_path):
    target = tmp_path / "result.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("boom")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["result.txt"]


def test_cli_without_command_prints_help(capsys):
    assert main([]) == 2
    assert "COMMAND" in capsys.readouterr().out


def test_file_lock_excludes_a_second_process(tmp_path):
    """While one process holds file_lock, another cannot take the same lock."""
    import subprocess
    import sys

    from xrfcore.atomic import file_lock

    lock = tmp_path / "sub" / ".lock"
    probe = (
        "import fcntl, sys\n"
        "f = open(sys.argv[1], 'a+')\n"
        "try:\n    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB); print('free')\n"
        "except BlockingIOError:\n    print('held')\n"
    )
    with file_lock(lock):
        held = subprocess.run([sys.executable, "-c", probe, str(lock)], capture_output=True, text=True).stdout
    free = subprocess.run([sys.executable, "-c", probe, str(lock)], capture_output=True, text=True).stdout
    assert (held.strip(), free.strip()) == ("held", "free")
