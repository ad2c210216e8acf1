"""``python -m xrfcore info`` and ``convert`` on real files of every format, and bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from xrfcore.cli import main
from xrfcore.io import open_scan, write_scan_h5
from xrfcore.io.rpl import write_rpl
from xrfcore.scan import EnergyCalibration

CAL = EnergyCalibration(-0.955, 0.01)
KEYS = {"format", "shape", "offset_keV", "gain_keV", "dtype", "total_counts", "peaks_keV",
        "calibration_from_file", "source"}


def _cube(shape=(3, 4, 1280), peak_kev=6.404, seed=0):
    """Counts with one Gaussian line at ``peak_kev`` (CAL axis) on a flat background."""
    e = CAL.energies(shape[2])
    lam = 3.0 + 200.0 * np.exp(-0.5 * ((e - peak_kev) / 0.07) ** 2)
    return np.random.default_rng(seed).poisson(np.broadcast_to(lam, shape)).astype(np.uint16)


def _info(capsys, *args):
    rc = main(["info", *map(str, args), "--json"])
    out = capsys.readouterr()
    assert rc == 0, out.err
    return json.loads(out.out)


def _steel() -> Path:
    from PyMca5 import PyMcaDataDir

    return Path(PyMcaDataDir.PYMCA_DATA_DIR) / "Steel.spe"


def test_info_json_h5(tmp_path, capsys):
    cube = _cube()
    info = _info(capsys, write_scan_h5(tmp_path / "s.h5", cube, CAL))
    assert set(info) >= KEYS
    assert info["format"] == "hdf5" and info["shape"] == [3, 4, 1280] and info["dtype"] == "uint16"
    assert info["offset_keV"] == -0.955 and info["gain_keV"] == 0.01 and info["calibration_from_file"]
    assert info["total_counts"] == float(cube.sum())
    assert abs(info["peaks_keV"][0] - 6.404) <= 0.01


def test_info_json_rpl_and_npy(tmp_path, capsys):
    cube = _cube(peak_kev=10.55)
    info = _info(capsys, write_rpl(tmp_path / "m6.rpl", cube, calibration=CAL, separator="  "))
    assert info["format"] == "rpl" and abs(info["peaks_keV"][0] - 10.55) <= 0.01
    np.save(tmp_path / "c.npy", cube)
    info = _info(capsys, tmp_path / "c.npy", "--offset-kev", "-0.955", "--gain-kev", "0.01")
    assert info["format"] == "npy" and not info["calibration_from_file"]
    assert abs(info["peaks_keV"][0] - 10.55) <= 0.01


def test_info_steel_spe(capsys):
    info = _info(capsys, _steel())
    assert info["format"] == "spe" and info["shape"] == [1, 1, 2048]
    assert abs(info["peaks_keV"][0] - 6.404) <= info["gain_keV"]  # Fe K-alpha


def test_info_channel_axis_and_dataset_options(tmp_path, capsys):
    cube = _cube(shape=(5, 3, 1024))
    p = tmp_path / "maps.h5"
    with h5py.File(p, "w") as f:
        f["MAPS_RAW/data_a"] = np.transpose(cube, (2, 0, 1))
        f["other"] = np.zeros((2, 2, 2))
    info = _info(capsys, p, "--dataset", "MAPS_RAW/data_a", "--offset-kev", "-0.955", "--gain-kev", "0.01")
    assert info["shape"] == [5, 3, 1024]
    info = _info(capsys, p, "--channel-axis", "last", "--offset-kev", "0", "--gain-kev", "0.01")
    assert info["shape"] == [1024, 5, 3]


def test_info_text_output_subprocess(tmp_path):
    p = write_scan_h5(tmp_path / "t.h5", _cube(), CAL)
    res = subprocess.run([sys.executable, "-m", "xrfcore", "info", str(p)], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stderr
    assert "format:       hdf5" in res.stdout and "3 rows x 4 cols x 1280 channels" in res.stdout
    assert "offset -0.955 keV, gain 0.01 keV/channel" in res.stdout


@pytest.mark.parametrize(("name", "content", "message"), [
    ("scan.xyz", b"hello", "unknown scan format"),
    ("empty.h5", b"", "the file is empty"),
    ("cut.h5", b"\x89HDF\r\n\x1a\n" + b"\0" * 40, "cannot open as HDF5"),
])
def test_info_bad_input_exit_2(tmp_path, capsys, name, content, message):
    p = tmp_path / name
    p.write_bytes(content)
    assert main(["info", str(p)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and name in err
    assert p.read_bytes() == content


def test_info_nan_counts_exit_2(tmp_path, capsys):
    cube = _cube().astype(np.float32)
    cube[2, 3, 100] = np.nan
    np.save(tmp_path / "nan.npy", cube)
    assert main(["info", str(tmp_path / "nan.npy"), "--offset-kev", "0", "--gain-kev", "0.01"]) == 2
    assert "NaN/inf count values" in capsys.readouterr().err


def test_info_bad_calibration_options(tmp_path, capsys):
    np.save(tmp_path / "c.npy", _cube())
    assert main(["info", str(tmp_path / "c.npy"), "--offset-kev", "0", "--gain-kev", "0"]) == 2
    assert "gain must be > 0" in capsys.readouterr().err
    assert main(["info", str(tmp_path / "c.npy"), "--gain-kev", "0.01"]) == 2
    assert "give both --offset-kev and --gain-kev" in capsys.readouterr().err


def test_convert_rpl_to_h5_in_chunks(tmp_path, capsys):
    cube = _cube(shape=(7, 4, 1024))
    rpl = write_rpl(tmp_path / "in.rpl", cube, calibration=CAL, record_by="image", byte_order="big-endian")
    raw_before = rpl.with_suffix(".raw").read_bytes()
    out = tmp_path / "out.h5"
    assert main(["convert", str(rpl), str(out), "--rows-per-chunk", "2"]) == 0
    assert "wrote" in capsys.readouterr().out
    scan = open_scan(out)
    np.testing.assert_array_equal(scan.read_rows(0, 7), cube)
    assert scan.calibration == CAL
    assert rpl.with_suffix(".raw").read_bytes() == raw_before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.raw", "in.rpl", "out.h5"]


def test_convert_refuses_bad_output(tmp_path, capsys):
    p = write_scan_h5(tmp_path / "s.h5", _cube(), CAL)
    before = p.read_bytes()
    assert main(["convert", str(p), str(p)]) == 2
    assert "is the input file" in capsys.readouterr().err
    assert main(["convert", str(p), str(tmp_path / "x.txt")]) == 2
    assert "must end with .h5" in capsys.readouterr().err
    assert p.read_bytes() == before
