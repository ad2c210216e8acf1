"""The crossed-strip demo mock-up: layout, labels, regions, file layout and the shipped demo."""

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

import xrfcore
from xrfcore.errors import SimulationError
from xrfcore.library import load_library
from xrfcore.scan import EnergyCalibration
from xrfcore.simulate.mockup import BOTTOM_MIXTURES, TOP_MIXTURES, main, make_mockup, write_mockup

CAL = EnergyCalibration(-0.96, 0.02)
DATA = Path(xrfcore.__file__).parent / "data"


@pytest.fixture(scope="module")
def small():
    return make_mockup(seed=1, calibration=CAL, n_channels=1024, count_level=5e3, shape=(16, 8), bare_cols=4)


def test_mixtures_sum_to_one():
    for mix in list(TOP_MIXTURES.values()) + list(BOTTOM_MIXTURES.values()):
        assert sum(mix.values()) == pytest.approx(1.0, abs=1e-9)
    assert len(BOTTOM_MIXTURES) == 16 and len(TOP_MIXTURES) == 4


def test_regions_tile_the_scan_and_match_the_labels(small):
    counts, lab = small
    assert counts.shape == (16, 8, 1024) and counts.dtype == np.uint16
    classes = list(lab["label_names"])
    cover = np.zeros((16, 8), int)
    for r in lab["regions"]:
        cover[r["row0"]:r["row1"], r["col0"]:r["col1"]] += 1
        top = lab["labels_top"][r["row0"]:r["row1"], r["col0"]:r["col1"]]
        bot = lab["labels_bottom"][r["row0"]:r["row1"], r["col0"]:r["col1"]]
        want_top = np.isin(classes, r["top"]).astype(np.uint8)
        want_bot = np.isin(classes, r["bottom"]).astype(np.uint8)
        assert np.all(top == want_top) and np.all(bot == want_bot), r["name"]
    assert np.all(cover == 1)
    names = {r["name"] for r in lab["regions"]}
    assert "Top 3 / 4C" in names and "bare / 6" in names
    # Top 3 holds VG + SA, which count as emerald green
    r = next(r for r in lab["regions"] if r["name"].startswith("Top 3"))
    assert "EG" in r["top"] and {"VG", "SA"} <= set(r["top_pigments"])


def test_spectra_show_the_region_elements(small):
    counts, lab = small
    en = CAL.energies(1024)
    hg = np.abs(en - 9.99) < 0.15
    zn = np.abs(en - 8.64) < 0.15
    bare6 = next(r for r in lab["regions"] if r["name"] == "bare / 6")  # pure vermilion, no top
    bare5b = next(r for r in lab["regions"] if r["name"] == "bare / 5B")  # 78 % zinc white
    s6 = counts[bare6["row0"]:bare6["row1"], bare6["col0"]:bare6["col1"]].sum(axis=(0, 1)).astype(float)
    s5 = counts[bare5b["row0"]:bare5b["row1"], bare5b["col0"]:bare5b["col1"]].sum(axis=(0, 1)).astype(float)
    assert s6[hg].sum() > 5 * s6[zn].sum()
    assert s5[zn].sum() > 2 * s6[zn].sum()


def test_variants_differ_and_bad_variant_raises():
    a, _ = make_mockup(seed=2, calibration=CAL, n_channels=512, shape=(16, 6), bare_cols=2, count_level=2e4)
    b, _ = make_mockup(seed=2, calibration=CAL, n_channels=512, shape=(16, 6), bare_cols=2, count_level=2e4,
                       physics_variant="training")
    assert not np.array_equal(a, b)
    with pytest.raises(SimulationError, match="physics_variant must be"):
        make_mockup(seed=2, physics_variant="ideal")
    with pytest.raises(SimulationError, match="at least 16 rows"):
        make_mockup(seed=2, shape=(8, 20))


def test_write_layout_and_command(tmp_path, small):
    counts, lab = small
    out = write_mockup(tmp_path / "m.h5", counts, lab, CAL, regions_out=tmp_path / "m_regions.json")
    with h5py.File(out) as f:
        assert f["xrf/counts"].shape == counts.shape and f["xrf/counts"].dtype == np.uint16
        # the scan layout of xrfcore.io.write_scan_h5: chunks of whole rows, ground truth alongside
        assert f["xrf/counts"].chunks[1:] == counts.shape[1:]
        np.testing.assert_array_equal(f["xrf/labels_top"][:], lab["labels_top"])
        np.testing.assert_array_equal(f["xrf/truth/top_um"][:], lab["top_um"])
        assert f["xrf/counts"].attrs["offset_keV"] == pytest.approx(-0.96)
        np.testing.assert_allclose(f["xrf/energy_keV"][:], CAL.energies(1024))
        np.testing.assert_array_equal(f["xrf/labels"][:], lab["labels"])
    doc = json.loads((tmp_path / "m_regions.json").read_text())
    assert doc["version"] == 1 and doc["scan"] == "m.h5" and len(doc["regions"]) == 16 * 5
    assert main(["--out", str(tmp_path / "cli.h5"), "--seed", "3", "--rows", "16", "--cols", "6",
                 "--channels", "512"]) == 0
    assert (tmp_path / "cli_regions.json").exists()


def test_shipped_demo_scan():
    path = DATA / "demo_mockup.h5"
    assert path.stat().st_size < 8e6
    with h5py.File(path) as f:
        c = f["xrf/counts"]
        assert c.shape == (64, 64, 2048) and c.dtype == np.uint16
        assert [x.decode() for x in f["xrf/label_names"][:]] == list(load_library().classes)
        assert f["xrf/labels"].shape == (64, 64, 11)
        assert -1.0 < f["xrf/counts"].attrs["offset_keV"] < -0.9
    regions = json.loads((DATA / "demo_mockup_regions.json").read_text())
    assert regions["scan"] == "demo_mockup.h5" and len(regions["regions"]) == 80
