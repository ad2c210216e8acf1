"""per_pigment_metrics against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from xrfcore.model.metrics import metrics_table, metrics_to_csv, per_pigment_metrics

CLASSES = ["PB", "IO", "ZW"]
# 6 spectra; columns PB, IO, ZW
Y_TRUE = np.array([[1, 0, 1], [1, 0, 0], [0, 1, 0], [0, 1, 1], [1, 1, 0], [0, 0, 0]])
Y_PROB = np.array(
    [
        [0.9, 0.6, 0.8],  # PB tp, IO fp (only PB -> predicted IO), ZW tp
        [0.4, 0.1, 0.2],  # PB fn
        [0.7, 0.9, 0.1],  # PB fp (only IO -> predicted PB), IO tp
        [0.2, 0.3, 0.5],  # IO fn, ZW tp (0.5 >= threshold)
        [0.8, 0.8, 0.6],  # PB tp, IO tp, ZW fp
        [0.1, 0.1, 0.1],  # all tn
    ]
)


def test_per_pigment_hand_values():
    m = per_pigment_metrics(Y_TRUE, Y_PROB, CLASSES)
    pb = m["per_pigment"]["PB"]  # tp 2, fn 1, fp 1, tn 2
    assert (pb["tp"], pb["fp"], pb["fn"], pb["tn"]) == (2, 1, 1, 2)
    assert pb["accuracy"] == pytest.approx(4 / 6)
    assert pb["sensitivity"] == pytest.approx(2 / 3)
    assert pb["precision"] == pytest.approx(2 / 3)
    assert pb["f1"] == pytest.approx(2 / 3)
    io = m["per_pigment"]["IO"]  # tp 2, fp 1, fn 1, tn 2
    assert io["support"] == 3 and io["f1"] == pytest.approx(2 / 3)
    zw = m["per_pigment"]["ZW"]  # tp 2, fp 1, fn 0, tn 3
    assert zw["sensitivity"] == 1.0 and zw["precision"] == pytest.approx(2 / 3)
    assert zw["f1"] == pytest.approx(0.8)
    # micro: tp 6, fp 3, fn 2, tn 7
    assert m["micro"]["precision"] == pytest.approx(6 / 9)
    assert m["micro"]["sensitivity"] == pytest.approx(6 / 8)
    assert m["micro"]["accuracy"] == pytest.approx(13 / 18)
    assert m["macro"]["f1"] == pytest.approx((2 / 3 + 2 / 3 + 0.8) / 3)


def test_same_element_group_confusion():
    g = per_pigment_metrics(Y_TRUE, Y_PROB, CLASSES)["groups"]
    assert list(g) == ["PB/IO"]  # LW/RL and CrG/CrY are not in these classes
    pbio = g["PB/IO"]
    assert pbio["only_PB"] == 2 and pbio["only_PB_predicted_IO"] == 1
    assert pbio["only_PB_predicted_IO_rate"] == pytest.approx(0.5)
    assert pbio["only_IO"] == 2 and pbio["only_IO_predicted_PB"] == 1


def test_threshold_changes_result():
    m = per_pigment_metrics(Y_TRUE, Y_PROB, CLASSES, threshold=0.65)
    assert m["per_pigment"]["ZW"]["tp"] == 1  # 0.5 no longer counts


def test_table_and_csv(tmp_path):
    m = per_pigment_metrics(Y_TRUE, Y_PROB, CLASSES)
    table = metrics_table(m)
    assert "PB" in table and "macro" in table and "only PB: 1/2 predicted IO (50.0%)" in table
    text = metrics_to_csv(m, tmp_path / "m.csv")
    assert (tmp_path / "m.csv").read_text() == text
    assert text.splitlines()[1].startswith("PB,0.666667,0.666667,0.666667,0.666667,3,2,1,1,2")


def test_shape_mismatch_raises():
    with pytest.raises(ValueError, match=r"expected y_true and y_prob of shape \(n, 3\)"):
        per_pigment_metrics(Y_TRUE[:, :2], Y_PROB[:, :2], CLASSES)
