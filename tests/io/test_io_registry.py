"""Registry, format guessing, lazy arrays (pickle, threads, partial reads) and common bad input."""

from __future__ import annotations

import pickle
import threading
from pathlib import Path

import numpy as np
import pytest
from xrfio_fixtures import make_cube, pymca_data_dir, write_spx

from xrfcore.errors import ScanReadError
from xrfcore.io import FORMATS, H5Array, RawArray, guess_format, open_scan, write_scan_h5
from xrfcore.io import bruker, hdf5, numpy_files, rpl, spectra
from xrfcore.io.rpl import write_rpl
from xrfcore.scan import EnergyCalibration

CAL = EnergyCalibration(-0.955, 0.01)


def _fixtures(tmp_path: Path) -> dict[str, Path]:
    cube = make_cube()
    files = {
        "hdf5": write_scan_h5(tmp_path / "a.h5", cube, CAL),
        "rpl": write_rpl(tmp_path / "b.rpl", cube, calibration=CAL),
        "bruker": write_spx(tmp_path / "c.spx", cube[0, 0], offset_kev=-0.955, gain_kev=0.01),
        "mca": pymca_data_dir() / "Steel.spe",
        "numpy": tmp_path / "d.npy",
    }
    np.save(files["numpy"], cube)
    return files


def test_guess_format_by_content_and_suffix(tmp_path):
    files = _fixtures(tmp_path)
    for name, path in files.items():
        assert guess_format(path) == name
    # content wins over a misleading suffix
    renamed = tmp_path / "scan.dat"
    renamed.write_bytes(files["hdf5"].read_bytes())
    assert guess_format(renamed) == "hdf5"
    npy_named_h5 = tmp_path / "cube.h5"
    npy_named_h5.write_bytes(files["numpy"].read_bytes())
    assert guess_format(npy_named_h5) == "numpy"


@pytest.mark.parametrize("mod", [hdf5, rpl, bruker, spectra, numpy_files])
def test_guess_can_open_true_and_false(tmp_path, mod):
    files = _fixtures(tmp_path)
    own = {hdf5: "hdf5", rpl: "rpl", bruker: "bruker", spectra: "mca", numpy_files: "numpy"}[mod]
    assert mod.guess_can_open(files[own])
    text = tmp_path / "notes.txt"
    text.write_text("hello\n")
    assert not mod.guess_can_open(text)
    for other, path in files.items():
        if other != own:
            assert not mod.guess_can_open(path), (mod.__name__, path)


def test_raw_file_is_opened_through_its_rpl(tmp_path):
    files = _fixtures(tmp_path)
    raw = files["rpl"].with_suffix(".raw")
    assert rpl.guess_can_open(raw)
    scan = open_scan(raw)
    assert scan.metadata.format == "rpl" and scan.shape == (3, 4, 64)


def test_registry_lists_every_reader():
    assert set(FORMATS) == {"hdf5", "rpl", "bruker", "mca", "numpy"}
    for mod in FORMATS.values():
        assert callable(mod.guess_can_open) and callable(mod.open_scan)


def test_unknown_extension_lists_supported(tmp_path):
    p = tmp_path / "scan.xyz"
    p.write_text("not a scan\n")
    with pytest.raises(ScanReadError, match=r"scan\.xyz: unknown scan format.*\.h5.*\.rpl.*\.spe"):
        open_scan(p)


def test_unknown_format_name(tmp_path):
    files = _fixtures(tmp_path)
    with pytest.raises(ScanReadError, match="unknown format 'tiff'; known formats"):
        open_scan(files["hdf5"], format="tiff")


@pytest.mark.parametrize("suffix", [".h5", ".rpl", ".spe", ".mca", ".npy", ".spx", ".xyz"])
def test_empty_file(tmp_path, suffix):
    p = tmp_path / f"empty{suffix}"
    p.write_bytes(b"")
    with pytest.raises(ScanReadError, match=r"empty.*: the file is empty \(0 bytes\)"):
        open_scan(p)
    assert p.read_bytes() == b""


def test_missing_file(tmp_path):
    with pytest.raises(ScanReadError, match="file not found"):
        open_scan(tmp_path / "nope.h5")


def test_format_override_uses_that_reader(tmp_path):
    files = _fixtures(tmp_path)
    with pytest.raises(ScanReadError, match="cannot open as HDF5"):
        open_scan(files["numpy"], format="hdf5")
    assert open_scan(files["hdf5"], format="h5").metadata.format == "hdf5"


def test_options_that_do_not_apply_are_errors(tmp_path):
    files = _fixtures(tmp_path)
    with pytest.raises(ScanReadError, match="option.*dataset do not apply to .rpl"):
        open_scan(files["rpl"], dataset="x")


def _lazy_arrays(tmp_path):
    cube = make_cube((5, 6, 32))
    h5 = write_scan_h5(tmp_path / "l.h5", cube, CAL)
    rplp = write_rpl(tmp_path / "l.rpl", cube, byte_order="big-endian", record_by="image")
    return cube, [H5Array(h5, "/xrf/counts", "last"), RawArray(rplp.with_suffix(".raw"), 0, cube.shape,
                                                              ">u2", "image")]


def test_lazy_arrays_pickle_round_trip(tmp_path):
    cube, arrays = _lazy_arrays(tmp_path)
    for arr in arrays:
        clone = pickle.loads(pickle.dumps(arr))
        assert clone.shape == cube.shape and clone.ndim == 3
        np.testing.assert_array_equal(clone[1:4, 2, ::3], cube[1:4, 2, ::3])
        np.testing.assert_array_equal(clone[-1, -2], cube[-1, -2])
        np.testing.assert_array_equal(np.asarray(clone), cube)
        assert len(pickle.dumps(arr)) < 1000  # the path, not the data


def test_lazy_arrays_thread_safe(tmp_path):
    cube, arrays = _lazy_arrays(tmp_path)
    errors: list[str] = []

    def work(arr, r):
        for _ in range(20):
            for c in range(cube.shape[1]):
                if not np.array_equal(arr[r, c], cube[r, c]):
                    errors.append(f"{arr} {r} {c}")

    threads = [threading.Thread(target=work, args=(a, r)) for a in arrays for r in range(cube.shape[0])]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def test_lazy_indexing_errors(tmp_path):
    _, arrays = _lazy_arrays(tmp_path)
    with pytest.raises(IndexError, match="out of range"):
        arrays[0][5, 0]
    with pytest.raises(TypeError, match="integers and slices"):
        arrays[1][[0, 1]]
