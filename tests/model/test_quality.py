"""Tests for xrfcore.model.quality: detectable labels, the evidence rule, masked and layer scores."""

import numpy as np
import pytest

from xrfcore.model.quality import detectable, masked_scores, rule_predictions, score_heads, thin_counts


def test_detectable_needs_every_key_element_from_the_layer_that_holds_it():
    els = ("Cr", "Pb", "Zn")
    lp = np.zeros((3, 2, 3))
    lp[0, 0] = (80, 900, 0)   # CrY on top: Cr 80, Pb 900 photons -> detectable
    lp[1, 0] = (20, 900, 0)   # Cr only 20 photons: CrY not detectable, lead white still is
    lp[2, 1] = (0, 0, 49)     # zinc white under a top layer, 49 photons: not detectable
    det = detectable(lp, els, ["CrY", "LW", "ZW"])
    assert det[0, 0].tolist() == [True, True, False]
    assert det[1, 0].tolist() == [False, True, False]
    assert det[2, 1].tolist() == [False, False, False]
    assert detectable(lp, els, ["ZW"], min_photons=40)[2, 1, 0]


def test_rule_calls_a_pigment_iff_all_key_elements_are_significant():
    z = np.array([[6.0, 6.0], [6.0, 1.0], [0.0, 9.0]])  # Cu, As
    pred = rule_predictions(z, ["Cu", "As"], ["EG"], min_significance=5.0)
    assert pred[:, 0].tolist() == [1, 0, 0]


def test_masked_scores_leave_out_masked_entries():
    y = np.array([[1], [1], [0], [0]])
    p = np.array([[0.9], [0.1], [0.2], [0.8]])
    full = masked_scores(y, p, ["X"])
    assert full["per_pigment"]["X"]["f1"] == pytest.approx(0.5)
    mask = np.array([[True], [False], [True], [True]])  # the missed positive was not detectable
    part = masked_scores(y, p, ["X"], mask=mask)
    assert part["per_pigment"]["X"]["f1"] == pytest.approx(2 / 3) and part["per_pigment"]["X"]["support"] == 1
    assert 0 <= part["pooled_ece"] <= 1


def test_macro_f1_enough_leaves_out_classes_with_few_positives():
    from xrfcore.model.quality import MIN_SUPPORT

    n = 2 * MIN_SUPPORT
    y = np.zeros((n, 2), int)
    y[:MIN_SUPPORT, 0] = 1                      # class A: MIN_SUPPORT positives, all found
    y[0, 1] = 1                                 # class B: one positive, missed
    p = y.astype(float) * 0.9
    p[0, 1] = 0.1
    s = masked_scores(y, p, ["A", "B"])
    assert s["per_pigment"]["B"]["f1"] == 0.0 and s["macro_f1"] == pytest.approx(0.5)
    assert s["enough_classes"] == ["A"] and s["macro_f1_enough"] == pytest.approx(1.0)


def test_layer_scores_follow_the_surface_hidden_convention():
    classes = ["VM", "LW"]
    top = np.array([[1, 0], [1, 1]])
    bottom = np.array([[0, 1], [1, 1]])  # pixel 2: both pigments on top and below
    det = np.ones((2, 2, 2), bool)
    prob = {"any": np.ones((2, 2)), "surface": np.array([[0.9, 0.1], [0.9, 0.9]]),
            "hidden": np.array([[0.1, 0.9], [0.1, 0.1]])}
    s = score_heads(prob, top, bottom, det, classes)
    assert s["surface"]["per_pigment"]["LW"]["f1"] == 1.0  # hidden-only LW is a negative for surface
    assert s["hidden"]["per_pigment"]["LW"]["support"] == 1  # LW on top and below is not "hidden"
    assert s["hidden"]["per_pigment"]["LW"]["f1"] == 1.0


def test_thinning_keeps_the_expected_share_of_counts():
    c = np.full((50, 50, 8), 1000, np.uint16)
    t = thin_counts(c, 0.1, seed=0)
    assert t.dtype == c.dtype and abs(t.mean() - 100) < 1 and np.all(t <= c)
