"""Label files: region JSON, spreadsheet CSV, dense HDF5, and every bad-label error."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from xrfcore.errors import LabelError
from xrfcore.labels import SCHEMA_VERSION, LabelSet, Region, load_labels, save_labels
from xrfcore.library import load_library

LIB = load_library()
CLASSES = list(LIB.classes)
SHAPE = (20, 30)


def idx(abbr: str) -> int:
    return CLASSES.index(abbr)


def write_json(tmp_path, regions, name="labels.json", version=SCHEMA_VERSION):
    p = tmp_path / name
    p.write_text(json.dumps({"version": version, "scan": "mock.h5", "regions": regions}))
    return p


def test_json_rectangle_polygon_mask(tmp_path):
    p = write_json(tmp_path, [
        {"name": "r", "shape": "rectangle", "row0": 0, "col0": 0, "row1": 4, "col1": 5,
         "top": ["vermilion", "cb"], "bottom": ["Lead White"]},
        {"name": "tri", "shape": "polygon", "vertices": [[10, 10], [10, 20], [20, 10]], "top": ["ZW"], "bottom": []},
        {"name": "runs", "shape": "mask", "runs": [[5, 0, 3], [6, 1, 2]], "top": [], "bottom": ["PB"]},
        {"name": "dots", "shape": "mask", "pixels": [[19, 29], [0, 29]], "top": ["verdigris"], "bottom": ["SA"]},
    ])
    ls = load_labels(p, scan_shape=SHAPE + (1024,), classes=CLASSES)
    assert isinstance(ls, LabelSet)
    assert ls.labels.shape == SHAPE + (len(CLASSES),) and ls.labels.dtype == np.uint8
    # rectangle: half-open, 4 x 5 pixels
    assert ls.mask[:4, :5].all() and not ls.mask[4, 0] and not ls.mask[0, 5]
    assert set(np.flatnonzero(ls.labels_top[0, 0])) == {idx("VM"), idx("CB")}
    assert ls.layers_stated
    assert set(np.flatnonzero(ls.labels_bottom[0, 0])) == {idx("LW")}
    assert set(np.flatnonzero(ls.labels[0, 0])) == {idx("VM"), idx("CB"), idx("LW")}
    # polygon: right triangle with legs of 10 pixels -> pixel centres strictly inside: 45 + ...
    tri = ls.mask[10:20, 10:20]
    assert tri.sum() == 45 and tri[0, 0] and not tri[9, 9]
    # masks
    assert ls.mask[5, :3].all() and ls.mask[6, 1] and not ls.mask[6, 0]
    assert ls.labels_bottom[6, 1, idx("PB")] == 1 and ls.labels_top[6, 1].sum() == 0
    # verdigris and sodium arsenite count as emerald green
    assert ls.labels_top[19, 29, idx("EG")] == 1 and ls.labels_bottom[0, 29, idx("EG")] == 1
    # unlabelled pixels are not negatives: outside the mask labels are 0 but mask is False
    assert not ls.mask[15, 2] and ls.labels[15, 2].sum() == 0
    assert ls.n_labelled == 20 + 45 + 4 + 2
    assert ls.pixel_labels().shape == (ls.n_labelled, len(CLASSES))


def test_polygon_equals_rectangle(tmp_path):
    a = write_json(tmp_path, [{"name": "a", "shape": "rectangle", "row0": 2, "col0": 3, "row1": 7, "col1": 9,
                                "top": ["VM"], "bottom": []}], "a.json")
    b = write_json(tmp_path, [{"name": "b", "shape": "polygon", "vertices": [[2, 3], [2, 9], [7, 9], [7, 3]],
                                "top": ["VM"], "bottom": []}], "b.json")
    la = load_labels(a, scan_shape=SHAPE, classes=CLASSES)
    lb = load_labels(b, scan_shape=SHAPE, classes=CLASSES)
    np.testing.assert_array_equal(la.mask, lb.mask)
    np.testing.assert_array_equal(la.labels, lb.labels)


def test_csv_spreadsheet_form(tmp_path):
    p = tmp_path / "labels.csv"
    p.write_text("x0,y0,x1,y1,top,bottom\n0,0,10,2,VM;CB,LW+ZW\n10,5,12,20,carmine,\n")
    ls = load_labels(p, scan_shape=SHAPE, classes=CLASSES)
    # x = column, y = row
    assert ls.mask[0:2, 0:10].all() and not ls.mask[2, 0]
    assert ls.mask[5:20, 10:12].all() and ls.n_labelled == 20 + 30
    assert set(np.flatnonzero(ls.labels_top[1, 9])) == {idx("VM"), idx("CB")}
    assert set(np.flatnonzero(ls.labels_bottom[1, 9])) == {idx("LW"), idx("ZW")}
    assert set(np.flatnonzero(ls.labels[19, 11])) == {idx("CM")}


def test_dense_hdf5_form(tmp_path):
    p = tmp_path / "dense.h5"
    lab = np.zeros(SHAPE + (3,), np.uint8)
    lab[:5, :, 0] = 1  # vermilion
    lab[:, :4, 2] = 1  # verdigris -> EG
    with h5py.File(p, "w") as f:
        f["labels"] = lab
        f["label_names"] = np.array(["vermilion", "LW", "VG"], dtype=object)
    ls = load_labels(p, scan_shape=SHAPE, classes=CLASSES)
    assert ls.mask.all()  # dense labels without a mask label every pixel
    assert ls.labels[0, 10, idx("VM")] == 1 and ls.labels[10, 10, idx("VM")] == 0
    assert ls.labels[10, 0, idx("EG")] == 1 and ls.labels[..., idx("LW")].sum() == 0
    assert not ls.layers_stated  # no labels_top: which layer holds what is not known
    with h5py.File(p, "a") as f:
        f["labels_top"] = lab
    assert load_labels(p, scan_shape=SHAPE, classes=CLASSES).layers_stated


def test_dense_hdf5_written_by_write_scan_h5(tmp_path):
    from xrfcore.io import write_scan_h5
    from xrfcore.scan import EnergyCalibration

    lab = np.zeros((4, 5, 2), np.uint8)
    lab[1, 2] = [1, 1]
    path = write_scan_h5(tmp_path / "scan.h5", np.ones((4, 5, 64), np.uint16), EnergyCalibration(0, 0.02),
                         labels=lab, label_names=["PB", "ZW"])
    ls = load_labels(path, scan_shape=(4, 5), classes=CLASSES)
    assert ls.labels[1, 2, idx("PB")] == 1 and ls.labels[1, 2, idx("ZW")] == 1 and ls.labels.sum() == 2


def test_save_labels_round_trip(tmp_path):
    regions = [Region.rectangle("strip", 1, 2, 3, 4, top=["VM"], bottom=["lead white"]),
               {"name": "tri", "shape": "polygon", "vertices": [[5, 5], [5, 9], [9, 5]], "top": ["PB"], "bottom": []}]
    p = save_labels(tmp_path / "out.json", regions, scan="mock.h5")
    doc = json.loads(p.read_text())
    assert doc["version"] == SCHEMA_VERSION and doc["scan"] == "mock.h5" and len(doc["regions"]) == 2
    ls = load_labels(p, scan_shape=SHAPE, classes=CLASSES)
    assert ls.n_labelled == 4 + 6  # 2x2 rectangle + 6 pixel centres inside the triangle
    assert [r.name for r in ls.regions] == ["strip", "tri"]
    assert [q.name for q in tmp_path.iterdir()] == ["out.json"]


def test_same_labels_may_overlap(tmp_path):
    p = write_json(tmp_path, [
        {"name": "a", "row0": 0, "col0": 0, "row1": 5, "col1": 5, "top": ["VM"], "bottom": ["LW"]},
        {"name": "b", "row0": 3, "col0": 3, "row1": 8, "col1": 8, "top": ["vermilion"], "bottom": ["lw"]},
    ])
    assert load_labels(p, scan_shape=SHAPE, classes=CLASSES).n_labelled == 25 + 25 - 4


# -- errors -----------------------------------------------------------------------------------
def test_unknown_pigment_names_listed(tmp_path):
    p = write_json(tmp_path, [{"name": "a", "row0": 0, "col0": 0, "row1": 2, "col1": 2,
                                "top": ["VM", "unobtainium"], "bottom": ["Smalt"]}])
    with pytest.raises(LabelError, match=r"unknown pigment name\(s\) 'Smalt', 'unobtainium'; known pigments are .*VM \(vermilion\)"):
        load_labels(p, scan_shape=SHAPE, classes=CLASSES)


def test_pigment_not_a_model_class(tmp_path):
    p = write_json(tmp_path, [{"name": "a", "row0": 0, "col0": 0, "row1": 2, "col1": 2, "top": ["ZW"], "bottom": []}])
    with pytest.raises(LabelError, match=r"unknown pigment name\(s\) 'ZW'"):
        load_labels(p, scan_shape=SHAPE, classes=["VM", "LW"])


def test_unknown_name_in_dense_file(tmp_path):
    p = tmp_path / "dense.h5"
    with h5py.File(p, "w") as f:
        f["labels"] = np.ones(SHAPE + (1,), np.uint8)
        f["label_names"] = np.array(["mauve"], dtype=object)
    with pytest.raises(LabelError, match=r"unknown pigment name\(s\) 'mauve'"):
        load_labels(p, scan_shape=SHAPE, classes=CLASSES)


@pytest.mark.parametrize("region", [
    {"name": "far", "row0": 15, "col0": 25, "row1": 21, "col1": 30},
    {"name": "neg", "row0": -1, "col0": 0, "row1": 3, "col1": 3},
    {"name": "far", "shape": "polygon", "vertices": [[0, 0], [0, 31], [5, 0]]},
    {"name": "far", "shape": "mask", "pixels": [[20, 0]]},
    {"name": "far", "shape": "mask", "runs": [[3, 25, 31]]},
])
def test_region_outside_scan(tmp_path, region):
    p = write_json(tmp_path, [{**region, "top": ["VM"], "bottom": []}])
    with pytest.raises(LabelError, match=r"lies outside the scan of 20 rows x 30 cols"):
        load_labels(p, scan_shape=SHAPE, classes=CLASSES)


def test_csv_region_outside_scan(tmp_path):
    p = tmp_path / "l.csv"
    p.write_text("x0,y0,x1,y1,top,bottom\n0,0,31,2,VM,\n")  # x1 = 31 columns > 30
    with pytest.raises(LabelError, match=r"'line 2' \(rows 0:2, cols 0:31\) lies outside the scan"):
        load_labels(p, scan_shape=SHAPE, classes=CLASSES)


def test_conflicting_overlap(tmp_path):
    p = write_json(tmp_path, [
        {"name": "top 4", "row0": 0, "col0": 0, "row1": 5, "col1": 5, "top": ["VM"], "bottom": []},
        {"name": "top 2", "row0": 4, "col0": 4, "row1": 8, "col1": 8, "top": ["VM", "CM"], "bottom": []},
    ])
    with pytest.raises(LabelError, match=r"region 'top 2' overlaps region\(s\) \['top 4'\] on 1 pixel\(s\) with different pigments"):
        load_labels(p, scan_shape=SHAPE, classes=CLASSES)


@pytest.mark.parametrize("content", [
    {"version": 1, "regions": []},
])
def test_empty_label_set(tmp_path, content):
    p = tmp_path / "e.json"
    p.write_text(json.dumps(content))
    with pytest.raises(LabelError, match="the label set is empty"):
        load_labels(p, scan_shape=SHAPE, classes=CLASSES)


def test_empty_csv_and_dense(tmp_path):
    c = tmp_path / "e.csv"
    c.write_text("x0,y0,x1,y1,top,bottom\n")
    with pytest.raises(LabelError, match="the label set is empty"):
        load_labels(c, scan_shape=SHAPE, classes=CLASSES)
    d = tmp_path / "e.h5"
    with h5py.File(d, "w") as f:
        f["labels"] = np.zeros(SHAPE + (1,), np.uint8)
        f["label_names"] = np.array(["VM"], dtype=object)
        f["mask"] = np.zeros(SHAPE, bool)
    with pytest.raises(LabelError, match="the label set is empty"):
        load_labels(d, scan_shape=SHAPE, classes=CLASSES)


@pytest.mark.parametrize("region,match", [
    ({"name": "z", "row0": 3, "col0": 3, "row1": 3, "col1": 9}, "is empty: row1/col1 must exceed"),
    ({"name": "z", "shape": "circle"}, "unknown shape 'circle'"),
    ({"name": "z", "row0": 0, "col0": 0, "row1": 2}, r"missing \['col1'\]"),
    ({"name": "z", "shape": "polygon", "vertices": [[0, 0], [1, 1]]}, "polygon needs 'vertices'"),
    ({"name": "z", "shape": "mask"}, "mask needs 'runs'"),
    ({"name": "z", "row0": 0.5, "col0": 0, "row1": 2, "col1": 2}, "must be integers"),
])
def test_bad_region_geometry(tmp_path, region, match):
    p = write_json(tmp_path, [{**region, "top": ["VM"], "bottom": []}])
    with pytest.raises(LabelError, match=match):
        load_labels(p, scan_shape=SHAPE, classes=CLASSES)


def test_bad_files(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(LabelError, match="is not valid JSON"):
        load_labels(bad, scan_shape=SHAPE, classes=CLASSES)
    v2 = write_json(tmp_path, [], "v2.json", version=2)
    with pytest.raises(LabelError, match="schema version 2 is not supported"):
        load_labels(v2, scan_shape=SHAPE, classes=CLASSES)
    with pytest.raises(LabelError, match="does not exist"):
        load_labels(tmp_path / "missing.json", scan_shape=SHAPE, classes=CLASSES)
    txt = tmp_path / "l.txt"
    txt.write_text("x")
    with pytest.raises(LabelError, match=r"unknown suffix '.txt'"):
        load_labels(txt, scan_shape=SHAPE, classes=CLASSES)
    wrong = tmp_path / "w.h5"
    with h5py.File(wrong, "w") as f:
        f["labels"] = np.zeros((3, 3, 1), np.uint8)
        f["label_names"] = np.array(["VM"], dtype=object)
    with pytest.raises(LabelError, match=r"'labels' has shape \(3, 3, 1\), expected \(20, 30, 1\)"):
        load_labels(wrong, scan_shape=SHAPE, classes=CLASSES)


def test_save_labels_validates(tmp_path):
    with pytest.raises(LabelError, match="unknown shape"):
        save_labels(tmp_path / "x.json", [{"name": "q", "shape": "blob", "top": [], "bottom": []}])
    assert not (tmp_path / "x.json").exists()


def test_demo_mockup_regions_match_its_dense_labels():
    """The shipped demo's region JSON and the dense labels inside the scan file agree."""
    from pathlib import Path

    from xrfcore.io import open_scan

    data = Path(__file__).resolve().parents[2] / "xrfcore" / "data"
    scan = open_scan(data / "demo_mockup.h5")
    regions = load_labels(data / "demo_mockup_regions.json", scan_shape=scan.shape, classes=CLASSES)
    dense = load_labels(data / "demo_mockup.h5", scan_shape=scan.shape, classes=CLASSES)
    assert regions.n_labelled > 0.5 * scan.n_rows * scan.n_cols
    np.testing.assert_array_equal(regions.labels[regions.mask], dense.labels[regions.mask])
    # extra keys of a region survive a save/load round trip
    assert all(isinstance(r.extra, dict) for r in regions.regions)
