"""HDF5 reader and writer: our layout, MAPS-style channel-first, NeXus, PyMca-style, bad files."""

from __future__ import annotations

import warnings

import h5py
import numpy as np
import pytest
from xrfio_fixtures import make_cube

from xrfcore.errors import CalibrationError, ScanReadError
from xrfcore.io import CalibrationWarning, open_scan, write_scan_h5
from xrfcore.scan import EnergyCalibration, Scan

CAL = EnergyCalibration(-0.955, 0.01, 2e-8)


def test_own_layout_round_trip(tmp_path):
    cube = make_cube((5, 4, 128))
    labels = np.zeros((5, 4, 2), np.uint8)
    labels[1:3, :, 1] = 1
    path = write_scan_h5(tmp_path / "s.h5", cube, CAL, labels=labels, label_names=["LW", "VM"],
                         metadata={"tube_kv": 40.0, "note": "mock-up"})
    with h5py.File(path) as f:
        ds = f["/xrf/counts"]
        assert ds.chunks[1:] == (4, 128) and ds.dtype == np.uint16
        np.testing.assert_allclose(f["/xrf/energy_keV"][()], CAL.energies(128))
        assert f["/xrf"].attrs["note"] == "mock-up"
    scan = open_scan(path)
    np.testing.assert_array_equal(np.asarray(scan.counts), cube)
    assert scan.calibration == CAL and scan.metadata.calibration_from_file
    assert scan.metadata.tube_kv == 40.0
    assert scan.metadata.extra["label_names"] == ["LW", "VM"]


def test_writer_copies_a_lazy_scan_in_row_chunks(tmp_path):
    cube = make_cube((7, 3, 64))
    src = open_scan(write_scan_h5(tmp_path / "src.h5", cube, CAL))
    out = write_scan_h5(tmp_path / "out.h5", src, rows_per_chunk=2)
    back = open_scan(out)
    np.testing.assert_array_equal(back.read_rows(0, 7), cube)
    assert back.calibration == CAL


def test_writer_refuses_nan_and_leaves_no_file(tmp_path):
    cube = make_cube((2, 2, 16)).astype(np.float32)
    cube[1, 1, 3] = np.nan
    with pytest.raises(ScanReadError, match="NaN"):
        write_scan_h5(tmp_path / "bad.h5", cube, CAL)
    assert list(tmp_path.iterdir()) == []


def test_writer_needs_calibration_for_arrays(tmp_path):
    with pytest.raises(CalibrationError, match="needs calibration="):
        write_scan_h5(tmp_path / "x.h5", make_cube(), None)


def test_maps_raw_channel_first_with_energy_dataset(tmp_path):
    cube = make_cube((11, 9, 2048), dtype=np.uint32)
    path = tmp_path / "maps.h5"
    e_kev = -0.02 + 0.0102 * np.arange(2048)
    with h5py.File(path, "w") as f:
        f.create_dataset("MAPS_RAW/data_a", data=np.transpose(cube, (2, 0, 1)), chunks=(2048, 1, 1))
        f.create_dataset("MAPS_RAW/energy", data=e_kev * 1000.0).attrs["units"] = "eV"
        f.create_dataset("MAPS_RAW/small", data=np.zeros((3, 3, 3)))
    scan = open_scan(path)
    assert scan.shape == (11, 9, 2048)
    assert scan.metadata.extra == {"dataset": "/MAPS_RAW/data_a", "channel_axis": "first",
                                   "calibration_source": "file"}
    np.testing.assert_array_equal(scan.spectrum(10, 8), cube[10, 8])
    np.testing.assert_array_equal(scan.read_rows(3, 5), cube[3:5])
    assert scan.calibration.offset_kev == pytest.approx(-0.02, abs=1e-9)
    assert scan.calibration.gain_kev == pytest.approx(0.0102, rel=1e-9)


def test_longest_axis_and_override_without_energy(tmp_path):
    cube = make_cube((6, 5, 64))
    path = tmp_path / "plain.h5"
    with h5py.File(path, "w") as f:
        f["cube"] = np.transpose(cube, (2, 0, 1))
    with pytest.warns(CalibrationWarning, match="no energy calibration found"):
        scan = open_scan(path)
    assert scan.shape == (6, 5, 64) and not scan.metadata.calibration_from_file
    assert (scan.calibration.offset_kev, scan.calibration.gain_kev) == (0.0, 0.01)
    given = EnergyCalibration(0.1, 0.02)
    scan = open_scan(path, channel_axis="last", calibration=given)
    assert scan.shape == (64, 6, 5) and scan.calibration == given


def test_nexus_signal_and_pymca_calibration(tmp_path):
    cube = make_cube((4, 3, 256))
    path = tmp_path / "nexus.nxs"
    with h5py.File(path, "w") as f:
        entry = f.create_group("entry")
        entry.attrs["NX_class"] = "NXentry"
        data = entry.create_group("data")
        data.attrs["NX_class"] = "NXdata"
        data.attrs["signal"] = "counts"
        data["counts"] = cube
        data["calibration"] = np.array([-0.5, 0.005, 1e-8])  # PyMca: zero, gain, quadratic
        entry["noise"] = np.ones((4, 3, 256), np.float32)  # same size: the NXdata signal wins
    scan = open_scan(path)
    assert scan.metadata.extra["dataset"] == "/entry/data/counts"
    assert scan.calibration == EnergyCalibration(-0.5, 0.005, 1e-8)
    np.testing.assert_array_equal(scan.spectrum(2, 1), cube[2, 1])


def test_named_dataset(tmp_path):
    path = tmp_path / "two.h5"
    with h5py.File(path, "w") as f:
        f["big"] = make_cube((4, 4, 32))
        f["small"] = make_cube((2, 2, 32), seed=1)
        f["flat"] = np.zeros((5, 32))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CalibrationWarning)
        assert open_scan(path).metadata.extra["dataset"] == "/big"
        assert open_scan(path, dataset="small").shape == (2, 2, 32)
    with pytest.raises(ScanReadError, match=r"no dataset 'nope'; 3-D numeric datasets in the file: /big, /small"):
        open_scan(path, dataset="nope")
    with pytest.raises(ScanReadError, match=r"dataset 'flat' is \(5, 32\), expected a numeric 3-D cube"):
        open_scan(path, dataset="flat")


def test_two_d_only_file_is_an_error(tmp_path):
    path = tmp_path / "map.h5"
    with h5py.File(path, "w") as f:
        f["spectra"] = np.ones((10, 64))
    before = path.read_bytes()
    with pytest.raises(ScanReadError, match=r"map\.h5: no numeric 3-D dataset found \(found /spectra \(10, 64\)\)"):
        open_scan(path)
    assert path.read_bytes() == before


def test_truncated_hdf5(tmp_path):
    good = write_scan_h5(tmp_path / "good.h5", make_cube((20, 10, 256)), CAL, compression=None)
    data = good.read_bytes()
    bad = tmp_path / "cut.h5"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(ScanReadError, match=r"cut\.h5: cannot open as HDF5 .*truncated"):
        open_scan(bad)
    assert bad.read_bytes() == data[: len(data) // 2]


def test_pixel_read_does_not_read_the_whole_cube(tmp_path):
    cube = make_cube((8, 4, 64))
    path = tmp_path / "c.h5"
    with h5py.File(path, "w") as f:
        ds = f.create_dataset("xrf/counts", data=cube, chunks=(1, 4, 64), compression="gzip")
        ds.attrs.update({"offset_keV": 0.0, "gain_keV": 0.01})
        info = ds.id.get_chunk_info_by_coord((4, 0, 0))  # where row 4 is stored
    raw = bytearray(path.read_bytes())
    raw[info.byte_offset : info.byte_offset + info.size] = b"\xff" * info.size  # corrupt that chunk only
    path.write_bytes(bytes(raw))
    scan = open_scan(path)
    np.testing.assert_array_equal(scan.spectrum(0, 0), cube[0, 0])  # other chunks still read
    np.testing.assert_array_equal(scan.spectrum(7, 3), cube[7, 3])
    with pytest.raises(ScanReadError, match=r"cannot read '/xrf/counts'.*truncated"):
        scan.sum_spectrum()


@pytest.mark.parametrize("bad", [np.nan, -3.0])
def test_nan_and_negative_counts(tmp_path, bad):
    cube = make_cube((3, 3, 32)).astype(np.float32)
    cube[2, 1, 7] = bad
    path = tmp_path / "v.h5"
    with h5py.File(path, "w") as f:
        ds = f.create_dataset("xrf/counts", data=cube)
        ds.attrs.update({"offset_keV": 0.0, "gain_keV": 0.01})
    scan = open_scan(path)
    with pytest.raises(ScanReadError, match=r"v\.h5: .*(NaN/inf|negative counts)"):
        scan.sum_spectrum()


@pytest.mark.parametrize("gain", [0.0, -0.01])
def test_gain_not_positive_in_file(tmp_path, gain):
    path = tmp_path / "g.h5"
    with h5py.File(path, "w") as f:
        ds = f.create_dataset("xrf/counts", data=make_cube((2, 2, 16)))
        ds.attrs.update({"offset_keV": 0.0, "gain_keV": gain})
    with pytest.raises(CalibrationError, match=r"g\.h5: calibration in the file is invalid: .*gain must be > 0"):
        open_scan(path)


def test_scan_wraps_reader(tmp_path):
    path = write_scan_h5(tmp_path / "w.h5", make_cube((2, 3, 16)), CAL)
    scan = open_scan(path)
    assert isinstance(scan, Scan) and scan.metadata.format == "hdf5"


def test_pymca_stack_export_layout(tmp_path):
    """The layout of PyMca5 ``PyMcaCore/McaStackExport.exportStack``: an NXdetector group with
    ``data`` (channels first when ``interpretation`` is "image"), ``calibration`` [a0, a1, a2]
    over the file's ``channels`` numbers (here starting at channel 100)."""
    cube = make_cube((4, 3, 50))  # fewer channels than rows: only the hint can tell
    path = tmp_path / "pymca.h5"
    with h5py.File(path, "w") as f:
        g = f.create_group("stack/mca_0")
        g.attrs["NX_class"] = "NXdetector"
        g.create_dataset("data", data=np.transpose(cube, (2, 0, 1))).attrs["interpretation"] = "image"
        g["calibration"] = np.array([-0.5, 0.01, 1e-6])
        g["channels"] = np.arange(100, 150)
    scan = open_scan(path)
    assert scan.metadata.extra["channel_axis"] == "first" and scan.shape == (4, 3, 50)
    e_pymca = -0.5 + 0.01 * np.arange(100, 150) + 1e-6 * np.arange(100, 150) ** 2
    np.testing.assert_allclose(scan.energy_kev, e_pymca, rtol=1e-12)
    np.testing.assert_array_equal(scan.spectrum(3, 2), cube[3, 2])


def test_pymca_placeholder_calibration_is_not_a_calibration(tmp_path):
    path = tmp_path / "uncal.h5"
    with h5py.File(path, "w") as f:
        f["det/data"] = make_cube((2, 2, 64))
        f["det/calibration"] = np.array([0.0, 1.0, 0.0])
    with pytest.warns(CalibrationWarning):
        assert not open_scan(path).metadata.calibration_from_file
