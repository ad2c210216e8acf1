"""Augmentation of labelled spectra: binomial thinning, peak broadening, calibration jitter."""

from __future__ import annotations

import numpy as np
import pytest

from xrfcore.errors import ConfigError
from xrfcore.model.augment import (augment_labelled, broaden_counts, jitter_calibration, model_inputs, network_input,
                                   thin_counts)
from xrfcore.preprocess import EnergyGrid, PreprocessConfig
from xrfcore.scan import EnergyCalibration

CAL = EnergyCalibration(0.0, 0.01)


def _peak(n=4, total=200_000, centre_kev=6.4, sigma_kev=0.06, n_ch=1024, seed=0):
    rng = np.random.default_rng(seed)
    e = CAL.energies(n_ch)
    lam = np.exp(-0.5 * ((e - centre_kev) / sigma_kev) ** 2)
    return rng.poisson(total * lam / lam.sum(), (n, n_ch)), e


def test_thinning_keeps_the_expected_share_and_is_seeded():
    x, _ = _peak()
    a = thin_counts(x, 0.1, np.random.default_rng(1))
    b = thin_counts(x, 0.1, np.random.default_rng(1))
    assert np.array_equal(a, b) and np.all(a <= x)
    assert a.sum() / x.sum() == pytest.approx(0.1, rel=0.02)
    per = thin_counts(x, np.array([1.0, 0.5, 0.25, 0.01]), np.random.default_rng(2))
    assert np.array_equal(per[0], x[0])
    assert per[3].sum() / x[3].sum() == pytest.approx(0.01, rel=0.15)


def test_thinning_refuses_preprocessed_input():
    with pytest.raises(ConfigError, match="integer counts"):
        thin_counts(np.array([[0.5, 1.2]]), 0.5, np.random.default_rng(0))
    with pytest.raises(ConfigError, match=r"\(0, 1\]"):
        thin_counts(np.ones((1, 3), int), 1.5, np.random.default_rng(0))


def test_broadening_adds_in_quadrature_and_keeps_counts():
    x, e = _peak(sigma_kev=0.06)
    y = broaden_counts(x, 0.08, CAL.gain_kev, np.random.default_rng(0))
    assert y.sum() == x.sum()  # the peak is far from both ends of the axis

    def sd(s):
        m = (s * e).sum() / s.sum()
        return np.sqrt((s * (e - m) ** 2).sum() / s.sum())

    # Gaussian steps: sigma^2 adds (plus the channel rounding, 1/12 channel^2)
    expect = np.sqrt(0.06 ** 2 + 0.08 ** 2 + CAL.gain_kev ** 2 / 12)
    assert sd(y[0]) == pytest.approx(expect, rel=0.02)
    assert np.array_equal(broaden_counts(x, 0.0, CAL.gain_kev, np.random.default_rng(0)), x)


def test_calibration_jitter_is_small_and_seeded():
    a = jitter_calibration(CAL, np.random.default_rng(3))
    b = jitter_calibration(CAL, np.random.default_rng(3))
    assert a == b and a != CAL
    assert abs(a.offset_kev - CAL.offset_kev) < 0.03 and abs(a.gain_kev / CAL.gain_kev - 1) < 0.01


def test_augment_labelled_shapes_labels_and_determinism():
    x, _ = _peak(n=6, total=20_000)
    y = np.eye(3, dtype=np.uint8)[[0, 1, 2, 0, 1, 2]]
    cfg = PreprocessConfig(grid=EnergyGrid(start_kev=2.8, step_kev=0.04, n_channels=128))
    xa, ya = augment_labelled(x, y, CAL, cfg, copies=3, seed=5)
    xb, _ = augment_labelled(x, y, CAL, cfg, copies=3, seed=5)
    assert xa.shape == (18, 128) and xa.dtype == np.float32 and np.array_equal(xa, xb)
    assert np.array_equal(ya, np.tile(y, (3, 1)))
    plain = model_inputs(x, CAL, cfg)
    assert not np.allclose(xa[:6], plain)  # the copies differ from the originals
    xs, ys = augment_labelled(x, y, CAL, cfg, copies=2, seed=5, max_spectra=2)
    assert xs.shape == (4, 128) and ys.shape == (4, 3)
    x0, y0 = augment_labelled(x, y, CAL, cfg, copies=0)
    assert x0.shape == (0, 128) and y0.shape == (0, 3)
    assert network_input(plain).shape == (6, 128, 1)
