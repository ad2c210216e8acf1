"""Readers decide before they allocate, parse numbers strictly and refuse truncated data."""

from __future__ import annotations

import io
import struct
import zipfile

import h5py
import numpy as np
import pytest
from xrfio_fixtures import make_cube, pymca_data_dir, write_spx

from xrfcore.errors import CalibrationError, ScanReadError
from xrfcore.io import open_scan, write_scan_h5
from xrfcore.io.rpl import write_rpl
from xrfcore.scan import EnergyCalibration, Scan

CAL = EnergyCalibration(0.0, 0.02)


def _npy(shape_txt: str, descr: str = "'<u2'", version=(1, 0)) -> bytes:
    header = ("{'descr': %s, 'fortran_order': False, 'shape': %s, }" % (descr, shape_txt)).encode()
    fmt = "<H" if version[0] == 1 else "<I"
    pad = (-(8 + struct.calcsize(fmt) + len(header) + 1)) % 64
    header += b" " * pad + b"\n"
    return b"\x93NUMPY" + bytes(version) + struct.pack(fmt, len(header)) + header


def test_npy_header_whose_size_overflows_is_truncation(tmp_path):
    p = tmp_path / "c.npy"
    p.write_bytes(_npy("(1000000000, 1000000000, 1000000000)"))
    with pytest.raises(ScanReadError, match=r"c\.npy: file is truncated: 128 bytes, the header needs \d{20,} bytes"):
        open_scan(p)


@pytest.mark.parametrize("descr, match", [("'<m8[s]'", "integers or floating point"), ("'|O'", "Python objects"),
                                          ("[('a', '<u2')]", "integers or floating point"), ("'zz'", "not a valid dtype")])
def test_npy_dtypes_that_are_not_counts(tmp_path, descr, match):
    p = tmp_path / "c.npy"
    p.write_bytes(_npy("(2, 2, 16)", descr) + b"\0" * 1024)
    with pytest.raises(ScanReadError, match=match):
        open_scan(p)


def test_npy_version_3_header_is_read(tmp_path):
    cube = make_cube((2, 3, 32))
    p = tmp_path / "c.npy"
    p.write_bytes(_npy("(2, 3, 32)", version=(3, 0)) + cube.astype("<u2").tobytes())
    scan = open_scan(p, calibration=CAL)
    np.testing.assert_array_equal(scan.read_rows(0, 2), cube)


def test_npz_members_are_checked_before_they_are_read(tmp_path):
    bio = io.BytesIO()
    with zipfile.ZipFile(bio, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("counts.npy", _npy("(4000, 4000, 4096)", "'|u1'") + b"\0" * 1000)
    p = tmp_path / "c.npz"
    p.write_bytes(bio.getvalue())
    with pytest.raises(ScanReadError, match=r"member 'counts\.npy': holds \d+ bytes but its header needs \d+"):
        open_scan(p)
    np.savez(p, counts=make_cube(), offset_keV=np.float64(0.0), gain_keV=np.array("abc"))
    with pytest.raises(ScanReadError, match="gain_keV.npy"):
        open_scan(p)
    np.savez(p, counts=make_cube(), offset_keV=np.float64(0.0), gain_keV=np.array([0.01, 0.02]))
    with pytest.raises(CalibrationError, match=r"gain_keV must be one number"):
        open_scan(p)


@pytest.mark.parametrize("value", ["inf", "1e400", "nan", "abc", "1_0", "-3"])
def test_rpl_sizes_are_strict(tmp_path, value):
    rpl = write_rpl(tmp_path / "s.rpl", make_cube((2, 3, 32)))
    rpl.write_text(rpl.read_text().replace("width\t3", f"width\t{value}"))
    with pytest.raises(ScanReadError, match=r"s\.rpl: width must be (an integer|positive)"):
        open_scan(rpl)


def test_rpl_calibration_strings_name_the_key(tmp_path):
    rpl = write_rpl(tmp_path / "s.rpl", make_cube((2, 3, 32)))
    rpl.write_text(rpl.read_text() + "ev-per-chan\tabc\n")
    with pytest.raises(ScanReadError, match=r"s\.rpl: ev-per-chan must be a number, got 'abc'"):
        open_scan(rpl)


def test_hdf5_without_counts_lists_the_datasets(tmp_path):
    p = tmp_path / "labels_only.h5"
    with h5py.File(p, "w") as f:
        f["xrf/labels"] = np.ones((48, 64, 11), np.uint8)
        f["xrf/mask"] = np.ones((48, 64), bool)
    with pytest.raises(ScanReadError, match=r"no numeric 3-D dataset found \(found /xrf/labels \(48, 64, 11\), "
                                            r"/xrf/mask \(48, 64\)\)"):
        open_scan(p)
    with h5py.File(p, "a") as f:
        f["xrf/few"] = np.ones((8, 64, 11), np.uint16)
    with pytest.raises(ScanReadError, match=r"has 11 channels, too few for a spectrum .* datasets in the file"):
        open_scan(p)


@pytest.mark.parametrize("shape", [(100000, 100000, 4096), (2, 2000000, 4096)])
def test_sparse_hdf5_with_a_huge_declared_shape(tmp_path, shape):
    p = tmp_path / "sparse.h5"
    with h5py.File(p, "w") as f:
        f.create_dataset("xrf/counts", shape=shape, dtype="u4", chunks=(1, 1, 4096))
    with pytest.raises(ScanReadError, match=r"sparse\.h5: dataset /xrf/counts declares .* GiB"):
        open_scan(p)


def test_hdf5_whose_writer_stopped_early(tmp_path):
    p = tmp_path / "partial.h5"
    with h5py.File(p, "w") as f:
        ds = f.create_dataset("xrf/counts", shape=(8, 5, 64), dtype="u2", chunks=(1, 5, 64))
        ds[:2] = make_cube((2, 5, 64))
    with pytest.raises(ScanReadError, match=r"has only 2 of its 8 chunks written; the scan is incomplete"):
        open_scan(p)


@pytest.mark.parametrize("attrs, match", [({"offset_keV": "abc", "gain_keV": 0.01}, "'offset_keV' of /xrf/counts"),
                                          ({"calibration": "0 0.01 0"}, "'calibration' of /xrf/counts")])
def test_hdf5_calibration_strings_name_the_key(tmp_path, attrs, match):
    p = write_scan_h5(tmp_path / "s.h5", make_cube(), CAL)
    with h5py.File(p, "a") as f:
        for k in ("offset_keV", "gain_keV", "quadratic_keV"):
            del f["xrf/counts"].attrs[k]
        f["xrf/counts"].attrs.update(attrs)
    with pytest.raises(CalibrationError, match=match):
        open_scan(p)


def test_spx_negative_channels_and_truncated_channel_list(tmp_path):
    counts = make_cube((1, 1, 64))[0, 0].astype(np.int64)
    counts[5] = -3
    p = write_spx(tmp_path / "neg.spx", counts, offset_kev=0.0, gain_kev=0.01)
    with pytest.raises(ScanReadError, match=r"neg\.spx: <Channels> holds negative counts"):
        open_scan(p)
    p = write_spx(tmp_path / "cal.spx", np.abs(counts), offset_kev=0.0, gain_kev=0.01)
    p.write_bytes(p.read_bytes().replace(b"<CalibLin>0.01<", b"<CalibLin>abc<"))
    with pytest.raises(ScanReadError, match=r"<CalibLin> must be a finite number"):
        open_scan(p)


@pytest.mark.parametrize("cut", [5000, 12000, 20000])
def test_spe_cut_short_is_refused(tmp_path, cut):
    p = tmp_path / "Steel.spe"
    p.write_bytes((pymca_data_dir() / "Steel.spe").read_bytes()[:cut])
    with pytest.raises(ScanReadError, match=r"Steel\.spe: the \.spe declares 2048 channels but holds \d+ values"):
        open_scan(p)


@pytest.mark.parametrize("content", [b"$SPEC_ID", b"$SPEC_ID:\n"])
def test_spe_header_only_does_not_hang(tmp_path, content):
    p = tmp_path / "x.spe"
    p.write_bytes(content)
    with pytest.raises(ScanReadError, match=r"x\.spe: the \.spe has no \$DATA: section"):
        open_scan(p)


def test_spec_calibration_strings(tmp_path):
    p = tmp_path / "s.mca"
    vals = " ".join(str(v) for v in make_cube((1, 1, 32))[0, 0])
    p.write_text(f"#F s\n#S 1 s\n#@MCA %16C\n#@CHANN 32 0 31 1\n#@CALIB abc def ghi\n@A {vals}\n")
    with pytest.raises(CalibrationError, match=r"s\.mca: #@CALIB must hold numbers"):
        open_scan(p)


def test_float_counts_beyond_any_photon_count(tmp_path):
    p = tmp_path / "big.h5"
    with h5py.File(p, "w") as f:
        f["xrf/counts"] = np.full((2, 2, 32), 1e308)
        f["xrf/counts"].attrs.update({"offset_keV": 0.0, "gain_keV": 0.02})
    with pytest.raises(ScanReadError, match=r"big\.h5: count values up to 1e\+308"):
        open_scan(p).sum_spectrum()


def test_reductions_read_pieces_of_a_row_when_a_row_is_too_large():
    cube = make_cube((3, 7, 64)).astype(np.float32)
    scan = Scan(cube, CAL)
    blocks = list(scan.iter_blocks(chunk_bytes=64 * 4 * 3))
    assert all(b[-1].shape[1] <= 3 for b in blocks) and len(blocks) == 9
    total = np.zeros(64)
    for r0, r1, c0, c1, block in blocks:
        np.testing.assert_array_equal(block, cube[r0:r1, c0:c1])
        total += block.sum(axis=(0, 1))
    np.testing.assert_allclose(total, scan.sum_spectrum())
