"""Tests of preprocess_steps: each intermediate of the pipeline, the last equal to preprocess_spectra."""

import numpy as np
import pytest

from xrfcore.errors import ConfigError
from xrfcore.preprocess import (EnergyGrid, PreprocessConfig, log_log_sqrt, preprocess_spectra, preprocess_steps,
                                rebin_to_grid, snip_background)
from xrfcore.scan import EnergyCalibration

CAL = EnergyCalibration(-0.96, 0.02)


def _spectra(n=3, seed=0):
    rng = np.random.default_rng(seed)
    e = CAL.energies(2048)
    peak = 400 * np.exp(-0.5 * ((e - 6.4) / 0.08) ** 2) + 50 * np.exp(-e / 8)
    return rng.poisson(peak, size=(n, 2048)).astype(np.float64)


@pytest.mark.parametrize("snip", [True, False])
def test_steps_end_in_the_model_input(snip):
    cfg = PreprocessConfig(grid=EnergyGrid(2.8, 0.04, 256), snip=snip)
    x = _spectra()
    steps = preprocess_steps(x, CAL, cfg)
    for key in ("rebinned", "background", "subtracted", "transformed", "model_input"):
        assert steps[key].shape == (3, 256)
    np.testing.assert_array_equal(steps["model_input"], preprocess_spectra(x, CAL, cfg))
    np.testing.assert_array_equal(steps["rebinned"], rebin_to_grid(x, CAL, cfg.grid))
    if snip:
        bg = snip_background(steps["rebinned"], cfg.snip_width_channels, iterations=cfg.snip_iterations,
                             smooth=cfg.snip_smooth, llsqrt=cfg.snip_llsqrt)
        np.testing.assert_allclose(steps["background"], bg, rtol=1e-6)
        assert steps["background"].max() > 0
    else:
        assert not steps["background"].any()
    np.testing.assert_allclose(steps["subtracted"], np.maximum(steps["rebinned"] - steps["background"], 0),
                               rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(steps["transformed"], log_log_sqrt(steps["subtracted"]), rtol=1e-6)
    assert steps["covered_fraction"] == pytest.approx(1.0)


def test_steps_of_one_spectrum_and_the_covered_fraction():
    # the scan covers -0.96 .. 40 keV; a grid 30 .. 50 keV is half outside
    cfg = PreprocessConfig(grid=EnergyGrid(30.0, 0.1, 200), snip=False, transform=False, normalise="none")
    steps = preprocess_steps(_spectra(1)[0], CAL, cfg)
    assert steps["model_input"].shape == (1, 200)
    assert steps["covered_fraction"] == pytest.approx((-0.97 + 0.02 * 2048 - 30.0) / 20.0, abs=1e-9)
    assert not steps["model_input"][0, 100:].any()


def test_config_is_required():
    with pytest.raises(TypeError):
        preprocess_spectra(_spectra(), CAL)  # noqa: the config is required
    with pytest.raises(ConfigError, match="PreprocessConfig"):
        preprocess_steps(_spectra(), CAL, {"snip": True})
