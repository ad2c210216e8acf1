"""The detectability analysis of a mock-up and the F1 ceiling it implies."""

import json
import math

import h5py
import numpy as np
import pytest

from xrfcore.scan import EnergyCalibration
from xrfcore.simulate.identifiability import analyse_mockup, f1_ceiling, main
from xrfcore.simulate.mockup import make_mockup, write_mockup

CAL = EnergyCalibration(-0.5, 0.03)


@pytest.fixture(scope="module")
def mockup(tmp_path_factory):
    d = tmp_path_factory.mktemp("ident")
    counts, labels = make_mockup(seed=3, calibration=CAL, n_channels=1024, count_level=1e5, shape=(16, 6), bare_cols=2)
    path = write_mockup(d / "m.h5", counts, labels, CAL, regions_out=d / "m_regions.json",
                        attrs={"physics_variant": "measured", "count_level": 1e5})
    return path, d / "m_regions.json", analyse_mockup(path, d / "m_regions.json")


def _cell(res, name):
    return next(c for c in res["cells"] if c["name"] == name)


def test_every_labelled_class_of_every_cell_is_scored(mockup):
    path, regions, res = mockup
    doc = json.loads(regions.read_text())
    assert len(res["cells"]) == len(doc["regions"]) == 16 * 5
    for c, r in zip(res["cells"], doc["regions"]):
        assert set(c["delta_chi2"]) == set(r["top"]) | set(r["bottom"])
        assert all(v >= 0 and math.isfinite(v) for v in c["delta_chi2"].values())
    assert res["variant"] == "measured" and res["count_level"] == 1e5


def test_physics_of_the_verdicts(mockup):
    _, _, res = mockup
    # a pigment on the surface with its own element: unmistakable
    assert _cell(res, "bare / 3B")["delta_chi2"]["CB"] > 1e3
    assert _cell(res, "Top 4 / 2A")["delta_chi2"]["VM"] > 1e3
    # chromium oxide under a layer of vermilion: Cr K (5.4 keV) does not get out
    assert _cell(res, "Top 4 / 3A")["delta_chi2"]["CrG"] < 25
    # the same pigment is easier to see bare than under vermilion
    assert _cell(res, "bare / 3A")["delta_chi2"]["CrG"] > 100 * _cell(res, "Top 4 / 3A")["delta_chi2"]["CrG"]


def test_f1_ceiling_arithmetic(mockup):
    _, _, res = mockup
    classes = ["CB", "CrG", "RL"]
    lo = f1_ceiling(res, classes, threshold=0.0)
    hi = f1_ceiling(res, classes, threshold=float("inf"))
    mid = f1_ceiling(res, classes, threshold=25.0)
    for c in classes:
        assert lo[c]["f1_ceiling"] == pytest.approx(1.0) and hi[c]["f1_ceiling"] == 0.0
        r = mid[c]["recall_ceiling"]
        assert mid[c]["f1_ceiling"] == pytest.approx(2 * r / (1 + r))
        assert mid[c]["positives"] == sum(x["n_pixels"] for x in res["cells"] if c in x["classes"])
    assert mid["CrG"]["f1_ceiling"] < 1.0  # hidden under some tops


def test_command_writes_json_and_refuses_a_plain_scan(mockup, tmp_path, capsys):
    path, regions, _ = mockup
    out = tmp_path / "ceil.json"
    assert main([str(path), str(regions), "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert set(doc["ceilings"]) == {"9", "25"} and "CrG" in doc["ceilings"]["25"]
    assert "F1 ceil" in capsys.readouterr().out
    plain = tmp_path / "plain.h5"
    with h5py.File(plain, "w") as f:
        f.create_dataset("xrf/counts", data=np.zeros((4, 4, 64), np.uint16))
    assert main([str(plain), str(regions)]) == 2
    assert "not written by xrfcore.simulate.mockup" in capsys.readouterr().err
