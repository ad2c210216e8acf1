"""Malformed label files: every one is a LabelError that names the file and the offending key."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from xrfcore.errors import LabelError
from xrfcore.labels import load_labels
from xrfcore.library import load_library

LIB = load_library()
CLASSES = list(LIB.classes)
SHAPE = (6, 8)
RECT = '{"version": 1, "regions": [{"name": "a", "shape": "rectangle", "row0": %s, "col0": 0, "row1": 2, "col1": 3, "top": ["LW"]}]}'


def _load(p):
    return load_labels(p, scan_shape=SHAPE, classes=CLASSES, library=LIB)


@pytest.mark.parametrize("value, match", [
    ("1e400", "corner .row0. must be integers.*got .inf."), ("Infinity", "not valid JSON"), ("NaN", "not valid JSON"),
    ('"abc"', "corner 'row0' must be integers"), ("null", "corner 'row0' must be integers"),
    ("2.5", "corner 'row0' must be integers"), ("1" + "0" * 5000, "not valid JSON"),
    ("-99999999999999999999", "corner 'row0' must be integers"), ("true", "corner 'row0' must be integers")])
def test_rectangle_numbers(tmp_path, value, match):
    p = tmp_path / "labels.json"
    p.write_text(RECT % value)
    with pytest.raises(LabelError, match=match) as err:
        _load(p)
    assert "labels.json" in str(err.value)


@pytest.mark.parametrize("vertices", ['[["a", "b"], [1, 2], [3, 4]]', "[[NaN, 0], [1, 2], [3, 4]]",
                                      "[[1e400, 0], [1, 2], [3, 4]]", '"abc"', "[[1, 2, 3], [1, 2], [3, 4]]"])
def test_polygon_vertices(tmp_path, vertices):
    p = tmp_path / "labels.json"
    p.write_text('{"version": 1, "regions": [{"name": "tri", "shape": "polygon", "vertices": %s, "top": ["LW"]}]}'
                 % vertices)
    with pytest.raises(LabelError, match=r"labels\.json.*(vertices|not valid JSON)"):
        _load(p)


@pytest.mark.parametrize("text, match", [("[" * 100000 + "]" * 100000, "nested too deeply"),
                                         ("[1, 2]", "expected an object"),
                                         ('{"version": 1, "regions": {"a": 1}}', "'regions' must be a list"),
                                         ('{"version": 1, "regions": [[1, 2]]}', "region 0 must be an object")])
def test_json_structure(tmp_path, text, match):
    p = tmp_path / "labels.json"
    p.write_text(text)
    with pytest.raises(LabelError, match=match):
        _load(p)


@pytest.mark.parametrize("data, match", [
    (b"x0,y0,x1,y1,top,bottom\n0,0,inf,2,LW,\n", r"line 2: x0,y0,x1,y1 must be integers"),
    (b"x0,y0,x1,y1,top,bottom\n0,0,1e400,2,LW,\n", r"line 2: x0,y0,x1,y1 must be integers"),
    (b"x0,y0,x1,y1,top,bottom,name\n0,0,3,2,LW,,caf\xe9\n", r"not UTF-8 text \(byte 0xe9"),
    (b'x0,y0,x1,y1,top,bottom\n0,0,3,2,"' + b"a" * 200000 + b'",\n', "not a readable CSV file")])
def test_csv(tmp_path, data, match):
    p = tmp_path / "labels.csv"
    p.write_bytes(data)
    with pytest.raises(LabelError, match=match):
        _load(p)


@pytest.mark.parametrize("case, match", [("labels-strings", "'labels' must be a .* of 0/1 integers, got dtype"),
                                         ("labels-group", "'labels' must be .* got a group"),
                                         ("names-group", "'label_names' must be a 1-D dataset"),
                                         ("names-bad-utf8", "not UTF-8 text"),
                                         ("mask-group", "'mask' must be a \\(6, 8\\) boolean dataset, got a group"),
                                         ("top-wrong-shape", "'labels_top' has shape \\(2, 2, 2\\)"),
                                         ("sparse-huge", "'labels' has shape \\(100000, 100000, 2\\)")])
def test_dense(tmp_path, case, match):
    p = tmp_path / "labels.h5"
    lab = np.zeros(SHAPE + (2,), np.uint8)
    with h5py.File(p, "w") as f:
        if case == "labels-strings":
            f["labels"] = np.full(SHAPE + (2,), b"x")
        elif case == "labels-group":
            f.create_group("labels")
        elif case == "sparse-huge":
            f.create_dataset("labels", shape=(100000, 100000, 2), dtype="u1", chunks=(1, 1000, 2))
        else:
            f["labels"] = lab
        if case == "names-group":
            f.create_group("label_names")
        else:
            f["label_names"] = np.array([b"\xff\xfe" if case == "names-bad-utf8" else b"LW", b"VM"])
        if case == "mask-group":
            f.create_group("mask")
        if case == "top-wrong-shape":
            f["labels_top"] = np.ones((2, 2, 2), np.uint8)
    with pytest.raises(LabelError, match=match):
        _load(p)
