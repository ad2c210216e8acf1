"""LabelSet.region_index: which region each labelled pixel came from."""

from __future__ import annotations

import json

import h5py
import numpy as np

from xrfcore.labels import label_patches, load_labels

CLASSES = ["CrG", "CrY", "CB", "EG", "IO", "LW", "PB", "RL", "CM", "VM", "ZW"]


def test_region_index_follows_the_drawn_regions(tmp_path):
    doc = {"version": 1, "regions": [
        {"name": "a", "shape": "rectangle", "row0": 0, "col0": 0, "row1": 2, "col1": 3, "top": ["VM"], "bottom": []},
        {"name": "b", "shape": "mask", "pixels": [[4, 4], [5, 5]], "top": ["LW"], "bottom": ["ZW"]},
        {"name": "c", "shape": "rectangle", "row0": 1, "col0": 2, "row1": 3, "col1": 4, "top": ["VM"], "bottom": []},
    ]}
    p = tmp_path / "l.json"
    p.write_text(json.dumps(doc))
    ls = load_labels(p, scan_shape=(6, 6), classes=CLASSES)
    assert ls.region_names == ["a", "b", "c"]
    assert ls.region_index.dtype == np.int32 and ls.region_index.shape == (6, 6)
    assert (ls.region_index >= 0).sum() == ls.n_labelled
    assert np.array_equal(ls.region_index >= 0, ls.mask)
    assert ls.region_index[0, 0] == 0 and ls.region_index[4, 4] == 1 and ls.region_index[5, 5] == 1
    assert ls.region_index[1, 2] == 2  # overlap with equal labels: the later region owns it
    assert ls.region_index[3, 0] == -1


def test_dense_labels_get_one_region_per_connected_patch(tmp_path):
    lab = np.zeros((4, 6, len(CLASSES)), np.uint8)
    lab[:, :2, CLASSES.index("VM")] = 1
    lab[:, 4:, CLASSES.index("VM")] = 1  # same labels, not touching: a second region
    lab[:, 2:4, CLASSES.index("LW")] = 1
    p = tmp_path / "d.h5"
    with h5py.File(p, "w") as f:
        f["labels"] = lab
        f["label_names"] = np.array(CLASSES, dtype=h5py.string_dtype())
    ls = load_labels(p, scan_shape=(4, 6), classes=CLASSES)
    assert ls.n_regions == 3
    assert len({ls.region_index[0, 0], ls.region_index[0, 2], ls.region_index[0, 5]}) == 3
    assert (ls.region_index[:, :2] == ls.region_index[0, 0]).all()


def test_label_patches_respects_mask():
    top = np.zeros((3, 3, 1), np.uint8)
    mask = np.zeros((3, 3), bool)
    mask[0, 0] = mask[2, 2] = True
    idx, names = label_patches(top, top, mask)
    assert idx[1, 1] == -1 and idx[0, 0] != idx[2, 2] and len(names) == 2
