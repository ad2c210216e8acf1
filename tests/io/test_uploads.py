"""Uploaded files: .rpl + .raw paired by stem (also from a .zip), messages naming the user's files."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest

from xrfcore.io import open_scan
from xrfcore.io.rpl import write_rpl
from xrfcore.io.uploads import public_message, safe_name, stage_uploads
from xrfcore.scan import EnergyCalibration


@pytest.fixture
def pair(tmp_path):
    """A real 3 x 4 x 64 .rpl + .raw export (Bruker calibration lines) as bytes."""
    counts = np.random.default_rng(0).poisson(5, (3, 4, 64)).astype(np.uint16)
    (tmp_path / "export").mkdir()
    rpl = write_rpl(tmp_path / "export" / "painting.rpl", counts, calibration=EnergyCalibration(-0.955, 0.01))
    return counts, rpl.read_bytes(), rpl.with_suffix(".raw").read_bytes()


def test_rpl_and_raw_uploaded_together_open_as_one_scan(tmp_path, pair):
    counts, rpl, raw = pair
    staged = stage_uploads([("painting.rpl", io.BytesIO(rpl)), ("painting.raw", io.BytesIO(raw))],
                           tmp_path / "uploads")
    assert staged.problems == []
    assert [s.label for s in staged.scans] == ["painting.rpl + painting.raw"]
    scan = open_scan(staged.scans[0].path)
    assert scan.shape == counts.shape
    np.testing.assert_array_equal(scan.read_rows(0, 3), counts)
    assert scan.calibration.offset_kev == pytest.approx(-0.955)


def test_a_zip_holding_both_files_in_a_folder(tmp_path, pair):
    counts, rpl, raw = pair
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("M6 export/Painting.RPL", rpl)
        z.writestr("M6 export/Painting.raw", raw)
        z.writestr("__MACOSX/M6 export/._Painting.raw", b"junk")
    buf.seek(0)
    staged = stage_uploads([("export.zip", buf)], tmp_path / "uploads")
    assert staged.problems == []
    assert len(staged.scans) == 1 and "Painting.RPL (in export.zip)" in staged.scans[0].label
    np.testing.assert_array_equal(open_scan(staged.scans[0].path).read_rows(0, 3), counts)
    assert not list(staged.folder.glob("*.zip-part"))


def test_a_lone_rpl_or_raw_is_explained_with_the_users_names_only(tmp_path, pair):
    _, rpl, raw = pair
    dest = tmp_path / "uploads"
    alone = stage_uploads([("scan_17.rpl", io.BytesIO(rpl))], dest)
    assert alone.scans == [] and len(alone.problems) == 1
    msg = alone.problems[0]
    assert "scan_17.rpl" in msg and "scan_17.raw" in msg and "Upload both files together" in msg
    assert str(dest) not in msg
    raw_only = stage_uploads([("scan_17.raw", io.BytesIO(raw))], dest)
    assert raw_only.scans == [] and "scan_17.raw" in raw_only.problems[0] and "scan_17.rpl" in raw_only.problems[0]


def test_one_rpl_and_one_raw_with_different_stems_are_still_paired(tmp_path, pair):
    counts, rpl, raw = pair
    staged = stage_uploads([("a.rpl", io.BytesIO(rpl)), ("a (1).raw", io.BytesIO(raw))], tmp_path / "u")
    assert staged.problems == [] and staged.scans[0].label == "a.rpl + a (1).raw"
    assert open_scan(staged.scans[0].path).shape == counts.shape


def test_unknown_suffix_damaged_zip_and_duplicate_names(tmp_path):
    staged = stage_uploads([("notes.docx", io.BytesIO(b"x")), ("bad.zip", io.BytesIO(b"PK not a zip")),
                            ("s.npy", io.BytesIO(b"1")), ("S.NPY", io.BytesIO(b"2"))], tmp_path / "u")
    text = "\n".join(staged.problems)
    assert "notes.docx" in text and "'.docx'" in text and "Supported:" in text
    assert "bad.zip is not a readable zip file" in text
    assert "two files are named 'S.NPY'" in text
    assert [s.label for s in staged.scans] == ["s.npy"]


def test_same_upload_is_stored_once_and_names_cannot_escape(tmp_path):
    dest = tmp_path / "u"
    a = stage_uploads([("../../x.npy", io.BytesIO(b"abc"))], dest)
    b = stage_uploads([("../../x.npy", io.BytesIO(b"abc"))], dest)
    assert a.folder == b.folder and a.folder.parent == dest
    assert [p.name for p in a.folder.iterdir()] == ["x.npy"]
    assert sorted(p.name for p in dest.iterdir()) == [a.folder.name]  # no staging folder left
    c = stage_uploads([("x.npy", io.BytesIO(b"abd"))], dest)
    assert c.folder != a.folder


def test_total_size_limit_leaves_nothing_behind(tmp_path):
    dest = tmp_path / "u"
    with pytest.raises(ValueError, match="larger than the limit"):
        stage_uploads([("big.npy", io.BytesIO(b"0" * 1000))], dest, max_bytes=100)
    assert list(dest.iterdir()) == []


def test_safe_name_and_public_message(tmp_path):
    assert safe_name("..\\..\\evil.rpl") == "evil.rpl"
    assert safe_name("") == "upload"
    folder = tmp_path / "uploads" / "abc"
    assert public_message(f"{folder}/scan.rpl: the binary data file scan.raw is missing", [folder]) == \
        "scan.rpl: the binary data file scan.raw is missing"
