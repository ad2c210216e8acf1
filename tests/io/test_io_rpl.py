"""Bruker/Lispix .rpl + .raw: our tolerant parser, every data layout, calibration lines, bad files."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from xrfio_fixtures import make_cube

from xrfcore.errors import CalibrationError, ScanReadError
from xrfcore.io import CalibrationWarning, open_scan
from xrfcore.io.rpl import parse_rpl_text, write_rpl
from xrfcore.scan import EnergyCalibration

# A header as Bruker's M6 software exports it: tab-separated keys, space-separated calibration.
BRUKER_RPL = """key\tvalue
width\t{w}
height\t{h}
depth\t{c}
offset\t0
data-length\t2
data-type\tunsigned
byte-order\tlittle-endian
record-by\tvector
depthscaleorigin   -0.956
depthscaleincrement   0.01
"""

DTYPES = ["u1", "i1", "u2", "i2", "u4", "i4", "f4", "u8"]


@pytest.mark.parametrize(("dtype", "order", "record_by"),
                         list(itertools.product(DTYPES, ["little-endian", "big-endian"], ["vector", "image"])))
def test_round_trip_every_layout(tmp_path, dtype, order, record_by):
    cube = make_cube((3, 5, 40), dtype=np.dtype(dtype))
    if np.dtype(dtype).kind in "if":
        cube[0, 0, 0] = 127 if dtype.endswith("1") else 40000 if dtype != "i2" else 30000
    cal = EnergyCalibration(-0.956, 0.0101)
    rpl = write_rpl(tmp_path / "s.rpl", cube, calibration=cal, byte_order=order, record_by=record_by, separator="   ")
    scan = open_scan(rpl)
    assert scan.shape == (3, 5, 40)
    assert scan.dtype == np.dtype(dtype)
    assert scan.calibration == cal and scan.metadata.calibration_from_file
    np.testing.assert_array_equal(scan.read_rows(0, 3), cube)
    np.testing.assert_array_equal(scan.spectrum(2, 4), cube[2, 4])
    assert scan.metadata.format == "rpl"


def test_bruker_mixed_separators_and_calibration(tmp_path):
    cube = make_cube((4, 6, 128))
    (tmp_path / "m6.rpl").write_text(BRUKER_RPL.format(w=6, h=4, c=128))
    cube.astype("<u2").tofile(tmp_path / "m6.raw")
    scan = open_scan(tmp_path / "m6.rpl")
    np.testing.assert_array_equal(np.asarray(scan.counts), cube)
    assert scan.calibration.offset_kev == -0.956 and scan.calibration.gain_kev == 0.01
    assert scan.metadata.extra["rpl"]["depthscaleorigin"] == "-0.956"


def test_tab_only_file_has_no_calibration(tmp_path):
    cube = make_cube((2, 3, 32))
    rpl = write_rpl(tmp_path / "lispix.rpl", cube)  # tabs, no depthscale lines
    with pytest.warns(CalibrationWarning, match="no energy calibration"):
        scan = open_scan(rpl)
    assert not scan.metadata.calibration_from_file
    given = EnergyCalibration(0.0, 0.02)
    assert open_scan(rpl, calibration=given).calibration == given


def test_parser_is_tolerant():
    text = "; exported by hand\nWIDTH 3\nHeight:\t2\n  depth   4   ; channels\n# comment\nData-Length 1\n"
    assert parse_rpl_text(text) == {"width": "3", "height": "2", "depth": "4", "data-length": "1"}


def test_calibration_in_ev_with_units_key(tmp_path):
    cube = make_cube((2, 2, 16), dtype=np.uint8)
    rpl = write_rpl(tmp_path / "ev.rpl", cube)
    rpl.write_text(rpl.read_text() + "depthscaleorigin\t-956\ndepthscaleincrement\t10\ndepthscaleunits\teV\n")
    scan = open_scan(rpl)
    assert scan.calibration.offset_kev == pytest.approx(-0.956)
    assert scan.calibration.gain_kev == pytest.approx(0.01)


def test_raw_size_mismatch_names_both_sizes(tmp_path):
    cube = make_cube((3, 4, 64))
    rpl = write_rpl(tmp_path / "t.rpl", cube)
    raw = rpl.with_suffix(".raw")
    data = raw.read_bytes()
    raw.write_bytes(data[:-100])
    with pytest.raises(ScanReadError, match=r"t\.raw: size 1436 bytes does not match the \.rpl header .*= 1536 bytes"):
        open_scan(rpl)
    assert raw.read_bytes() == data[:-100]


def test_missing_raw_and_missing_keys(tmp_path):
    rpl = write_rpl(tmp_path / "n.rpl", make_cube((2, 2, 8)))
    rpl.with_suffix(".raw").unlink()
    with pytest.raises(ScanReadError, match=r"n\.raw is missing"):
        open_scan(rpl)
    bad = tmp_path / "k.rpl"
    bad.write_text("width 2\nheight 2\ndepth 8\ndata-length 2\n")
    with pytest.raises(ScanReadError, match="header lacks data-type"):
        open_scan(bad)


@pytest.mark.parametrize(("line", "message"), [
    ("data-length\t3", "data-length 3 is not valid for unsigned data"),
    ("data-type\tcomplex", "data-type must be signed, unsigned or float"),
    ("byte-order\tmiddle", "byte-order must be little-endian, big-endian or dont-care"),
    ("record-by\tcolumn", "record-by must be vector, image or dont-care"),
    ("width\tabc", "width must be an integer"),
])
def test_bad_header_values(tmp_path, line, message):
    rpl = write_rpl(tmp_path / "b.rpl", make_cube((2, 2, 8)))
    rpl.write_text(rpl.read_text() + line + "\n")
    with pytest.raises(ScanReadError, match=message):
        open_scan(rpl)


def test_gain_not_positive(tmp_path):
    rpl = write_rpl(tmp_path / "g.rpl", make_cube((2, 2, 8)))
    rpl.write_text(rpl.read_text() + "depthscaleorigin 0\ndepthscaleincrement 0\n")
    with pytest.raises(CalibrationError, match=r"g\.rpl: calibration in the file is invalid.*gain must be > 0"):
        open_scan(rpl)


def test_negative_counts_in_signed_raw(tmp_path):
    cube = make_cube((2, 2, 8), dtype=np.int16)
    cube[1, 0, 2] = -5
    scan = open_scan(write_rpl(tmp_path / "neg.rpl", cube, calibration=EnergyCalibration(0, 0.01)))
    with pytest.raises(ScanReadError, match=r"neg\.rpl: negative counts \(min -5\)"):
        scan.sum_spectrum()
