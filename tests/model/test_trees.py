"""Tests for the boosted oblivious trees (xrfcore.model.trees): learning, exact vectorised prediction, file format."""

from __future__ import annotations

import json

import numpy as np
import pytest

from xrfcore.errors import ModelError
from xrfcore.model.trees import ObliviousForest, fit_forest


def _data(n=4000, seed=1):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 6)).astype(np.float32)
    # what the hidden outputs need: a ratio that matters only where enough photons carry it (an interaction
    # no single threshold or linear score gets), and an output that is pure noise
    y_inter = ((X[:, 0] > 0) & (X[:, 1] > X[:, 2])).astype(np.uint8)
    y_noise = (rng.random(n) < 0.3).astype(np.uint8)
    return X, np.stack([y_inter, y_noise], axis=1)


def _walk(forest: ObliviousForest, x: np.ndarray) -> np.ndarray:
    """Log-odds of one pixel, tree by tree and level by level (the definition the vectorised code must match)."""
    m = forest.bias.astype(np.float64).copy()
    for t in range(forest.feature.shape[0]):
        leaf = sum(int(x[forest.feature[t, d]] > forest.threshold[t, d]) << d for d in range(forest.depth))
        m[forest.output[t]] += forest.leaf[t, leaf]
    return m


@pytest.fixture(scope="module")
def forest():
    X, Y = _data()
    f, info = fit_forest(X[:3000], Y[:3000], X_val=X[3000:], Y_val=Y[3000:], n_rounds=120, depth=4,
                         learning_rate=0.3, patience=10)
    return f, info, X, Y


def test_trees_learn_an_interaction_and_stop_early_on_noise(forest):
    f, info, X, Y = forest
    p = f.predict_proba(X[3000:])
    assert ((p[:, 0] > 0.5) == Y[3000:, 0]).mean() > 0.95
    # noise: validation loss stops improving almost at once and the predictions stay near the base rate
    assert info["rounds"][1] < 30 < info["rounds"][0] <= 120, info["rounds"]
    assert abs(p[:, 1].mean() - Y[:3000, 1].mean()) < 0.05
    assert f.n_outputs == 2 and f.feature.shape[0] == sum(info["rounds"])


def test_vectorised_prediction_equals_the_tree_by_tree_walk(forest):
    f, _, X, _ = forest
    x = X[:37]
    ref = np.stack([_walk(f, row) for row in x])
    for chunk in (1, 5, 2048):
        np.testing.assert_allclose(f.predict_margin(x, chunk=chunk), ref, rtol=0, atol=2e-5)


def test_fitting_is_deterministic_and_masked_rows_are_left_out():
    X, Y = _data(1500, seed=4)
    mask = np.ones(Y.shape, bool)
    mask[::3, 0] = False
    a, _ = fit_forest(X, Y, mask=mask, n_rounds=15, depth=3)
    b, _ = fit_forest(X, Y, mask=mask, n_rounds=15, depth=3)
    np.testing.assert_array_equal(a.leaf, b.leaf)
    np.testing.assert_array_equal(a.threshold, b.threshold)
    # a masked row's label does not matter: flipping it changes nothing
    Y2 = Y.copy()
    Y2[::3, 0] ^= 1
    c, _ = fit_forest(X, Y2, mask=mask, n_rounds=15, depth=3)
    np.testing.assert_array_equal(a.predict_margin(X), c.predict_margin(X))
    # ... but an unmasked one does
    d, _ = fit_forest(X, Y2, n_rounds=15, depth=3)
    assert np.abs(d.predict_margin(X)[:, 0] - a.predict_margin(X)[:, 0]).max() > 0.1


def test_the_model_file_form_is_json_and_reads_back_exactly(forest):
    f, _, X, _ = forest
    text = json.dumps(f.to_dict())
    g = ObliviousForest.from_dict(json.loads(text))
    np.testing.assert_array_equal(g.predict_margin(X), f.predict_margin(X))
    assert len(text) < 60 * f.leaf.size  # short decimals, not 17-digit ones


def test_bad_trees_and_bad_inputs_are_refused_with_a_model_error(forest):
    f, _, X, _ = forest
    d = f.to_dict()
    with pytest.raises(ModelError, match="unknown tree kind"):
        ObliviousForest.from_dict({**d, "kind": "pickle"})
    with pytest.raises(ModelError, match="index features or outputs"):
        ObliviousForest.from_dict({**d, "n_features": 2})
    with pytest.raises(ModelError, match="invalid tree ensemble"):
        ObliviousForest.from_dict({k: v for k, v in d.items() if k != "leaf"})
    with pytest.raises(ModelError, match="read 6 features"):
        f.predict_margin(X[:, :5])
