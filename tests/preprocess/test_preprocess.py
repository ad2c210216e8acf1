"""Tests for xrfcore.preprocess: grid rebinning, SNIP (against PyMca5 snip1d), config, pipeline."""

import json
import os

import numpy as np
import pytest

from xrfcore.errors import CalibrationError, ConfigError
from xrfcore.preprocess import (
    EnergyGrid,
    PreprocessConfig,
    load_background,
    log_log_sqrt,
    mean_background,
    normalise,
    preprocess_scan_rows,
    preprocess_spectra,
    rebin_to_grid,
    save_background,
    snip_background,
)
from xrfcore.scan import EnergyCalibration, Scan


def _pymca_data(name):
    from PyMca5 import PyMcaDataDir

    return os.path.join(PyMcaDataDir.PYMCA_DATA_DIR, name)


def _real_spectra():
    from PyMca5.PyMcaIO import specfilewrapper

    steel = np.asarray(specfilewrapper.Specfile(_pymca_data("Steel.spe"))[0].mca(1), dtype=np.float64)
    xrf = np.asarray(specfilewrapper.Specfile(_pymca_data("XRFSpectrum.mca"))[0].data()[1], dtype=np.float64)
    return {"Steel.spe": steel, "XRFSpectrum.mca": xrf}


@pytest.mark.parametrize("name", ["Steel.spe", "XRFSpectrum.mca"])
@pytest.mark.parametrize("width,smooth,lls", [(30, 0, 0), (15, 3, 0), (40, 2, 1), (8, 0, 1)])
def test_snip_equals_pymca_snip1d(name, width, smooth, lls):
    from PyMca5.PyMcaMath.fitting import SpecfitFuns

    y = _real_spectra()[name]
    ref = SpecfitFuns.snip1d(y, width, smooth, lls)
    ours = snip_background(y, width, smooth=smooth, llsqrt=bool(lls))
    np.testing.assert_allclose(ours, ref, rtol=1e-6, atol=0)
    # a 2-D batch gives the same rows
    batch = snip_background(np.stack([y, y[::-1]]), width, smooth=smooth, llsqrt=bool(lls))
    np.testing.assert_allclose(batch[1], SpecfitFuns.snip1d(y[::-1], width, smooth, lls), rtol=1e-6)


@pytest.mark.parametrize("dtype,expected", [(np.float32, np.float32), (np.float64, np.float64), (np.uint16, np.float64)])
@pytest.mark.parametrize("shape", [(64,), (3, 64), (2, 3, 64)])
def test_snip_flat_background_zero_residual(dtype, expected, shape):
    y = np.full(shape, 20, dtype=dtype)
    y[..., 30] = 500  # a peak is clipped away
    bg = snip_background(y, 6)
    assert bg.dtype == expected and bg.shape == shape
    np.testing.assert_allclose(np.asarray(y, dtype=np.float64)[..., :30] - bg[..., :30], 0.0)
    assert np.allclose(bg[..., 30], 20.0)
    assert y[..., 30].max() == 500  # input unchanged


def test_snip_rejects_negative_width():
    with pytest.raises(ValueError, match="must be >= 0"):
        snip_background(np.ones(10), -1)


@pytest.mark.parametrize("offset,gain,quad", [(0.0, 0.01, 0.0), (-0.955, 0.01, 0.0), (0.13, 0.0207, 0.0), (0.0, 0.009, 1e-7)])
def test_rebin_conserves_counts_and_moves_peak(offset, gain, quad):
    cal = EnergyCalibration(offset, gain, quad)
    n = 4096
    e = cal.energies(n)
    y = 5.0 + 1000.0 * np.exp(-0.5 * ((e - 6.40) / 0.07) ** 2)
    grid = EnergyGrid(2.8, 0.02, 1000)
    out = rebin_to_grid(y, cal, grid)
    assert out.dtype == np.float32 and out.shape == (1000,)
    # a grid wider than the scan keeps every count (zero-padded outside)
    wide = rebin_to_grid(y, cal, EnergyGrid(-1.5, 0.05, 3500))
    assert wide.sum() == pytest.approx(y.sum(), rel=1e-6)
    inside = (e > grid.start_kev + 2 * gain) & (e < grid.stop_kev - 2 * gain)
    assert out.sum() == pytest.approx(y[inside].sum(), abs=6 * 5.0)  # partial channels at the ends
    assert abs(grid.energies()[np.argmax(out)] - 6.40) <= 0.011


@pytest.mark.parametrize("shape", [(7,), (4, 7), (2, 3, 7)])
def test_rebin_shapes_and_identity(shape):
    cal = EnergyCalibration(0.0, 0.5)
    rng = np.random.default_rng(0)
    y = rng.poisson(10, shape + (40,)).astype(np.float64)
    # grid equal to the channels (edges at +-half gain) returns the input
    out = rebin_to_grid(y, cal, EnergyGrid(-0.25, 0.5, 40))
    assert out.shape == shape + (40,)
    np.testing.assert_allclose(out, y, rtol=1e-6)


def test_rebin_pad_error_names_missing_range(caplog):
    cal = EnergyCalibration(3.0, 0.01)  # starts above the 2.8 keV grid start
    y = np.ones(2048)
    with pytest.raises(CalibrationError, match=r"missing 2\.800-2\.995 keV.*pad='zero'"):
        rebin_to_grid(y, cal, EnergyGrid(), pad="error")
    with caplog.at_level("WARNING"):
        out = rebin_to_grid(y, cal, EnergyGrid(), pad="zero")
    assert "zero-padded" in caplog.text
    assert out[:9].sum() == 0 and out[20] > 0


def test_config_json_round_trip_and_unknown_keys():
    cfg = PreprocessConfig(grid=EnergyGrid(2.8, 0.01, 2000), snip=True, snip_width_kev=0.25, normalise="sum", pad="error")
    again = PreprocessConfig.from_json(cfg.to_json())
    assert again == cfg and again.to_json() == cfg.to_json()
    assert json.loads(cfg.to_json())["grid"]["n_channels"] == 2000
    assert "SNIP" in cfg.describe() and "2000" in cfg.describe()
    d = cfg.to_dict()
    d["snip_widht_kev"] = 1
    with pytest.raises(ConfigError, match=r"unknown preprocessing config keys \['snip_widht_kev'\]"):
        PreprocessConfig.from_dict(d)
    with pytest.raises(ConfigError, match="normalise must be one of"):
        PreprocessConfig(normalise="l2")


def test_transform_and_normalise():
    x = np.array([[0.0, 3.0, 8.0], [0.0, 0.0, 0.0]], dtype=np.float32)
    t = log_log_sqrt(x)
    assert t.dtype == np.float32
    np.testing.assert_allclose(t[0], np.log(1 + np.log(1 + np.sqrt(x[0]))), rtol=1e-6)
    np.testing.assert_allclose(normalise(x, "max")[0], x[0] / 8)
    np.testing.assert_allclose(normalise(x, "sum")[0], x[0] / 11)
    assert np.all(normalise(x, "max")[1] == 0)
    with pytest.raises(ConfigError, match="normalise method"):
        normalise(x, "median")


def test_preprocess_pipeline_matches_steps_and_leaves_input():
    cal = EnergyCalibration(-0.955, 0.01)
    rng = np.random.default_rng(0)
    cube = rng.poisson(30, (2, 3, 4096)).astype(np.uint16)
    before = cube.copy()
    cfg = PreprocessConfig(snip=True)
    out = preprocess_spectra(cube, cal, cfg)
    assert out.shape == (2, 3, 1360) and out.dtype == np.float32
    assert np.array_equal(cube, before)
    x = rebin_to_grid(cube, cal, cfg.grid).astype(np.float32)
    x = np.maximum(x - snip_background(x, cfg.snip_width_channels), 0)
    ref = normalise(log_log_sqrt(x), "max")
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out.max(axis=-1), 1.0, rtol=1e-6)
    scan = Scan.from_array(cube, cal)
    np.testing.assert_array_equal(preprocess_scan_rows(scan, 1, 2, cfg), out[1:2])


def test_mean_background_save_load(tmp_path):
    cal = EnergyCalibration(0.0, 0.02)
    rng = np.random.default_rng(1)
    e = cal.energies(1024)
    cube = rng.poisson(50 * np.exp(-e / 10) + 400 * np.exp(-0.5 * ((e - 8.0) / 0.08) ** 2), (4, 4, 1024))
    grid = EnergyGrid(2.8, 0.02, 500)
    bg = mean_background(Scan.from_array(cube, cal), None, grid, 0.4)
    assert bg.shape == (500,)
    at_peak = np.argmin(np.abs(grid.energies() - 8.0))
    assert bg[at_peak] < 0.2 * cube.mean(axis=(0, 1))[np.argmin(np.abs(e - 8.0))]
    save_background(tmp_path / "bg.npz", grid.energies(), bg)
    e2, bg2 = load_background(tmp_path / "bg.npz")
    np.testing.assert_array_equal(bg2, bg)
    np.testing.assert_array_equal(e2, grid.energies())
    with pytest.raises(ConfigError, match="not a background file"):
        load_background(tmp_path / "missing.npz")


@pytest.mark.parametrize("name", ["Steel.spe", "XRFSpectrum.mca"])
@pytest.mark.parametrize("width,smooth,lls", [(30, 0, 0), (40, 2, 1)])
def test_snip_float32_close_to_pymca(name, width, smooth, lls):
    from PyMca5.PyMcaMath.fitting import SpecfitFuns

    y = _real_spectra()[name]
    ours = snip_background(y.astype(np.float32), width, smooth=smooth, llsqrt=bool(lls))
    assert ours.dtype == np.float32
    np.testing.assert_allclose(ours, SpecfitFuns.snip1d(y, width, smooth, lls), rtol=1e-6)


def test_snip_chunking_does_not_change_result():
    rng = np.random.default_rng(2)
    y = rng.poisson(40, (37, 300)).astype(np.float64)
    np.testing.assert_array_equal(snip_background(y, 12, chunk_spectra=5), snip_background(y, 12, chunk_spectra=64))


def test_preprocess_pad_error_from_config():
    cal = EnergyCalibration(0.0, 0.005)  # 2048 channels reach only 10.24 keV
    with pytest.raises(CalibrationError, match=r"missing 10\.2\d\d-30\.000 keV"):
        preprocess_spectra(np.ones((2, 2048)), cal, PreprocessConfig(pad="error"))
    out = preprocess_spectra(np.ones((2, 2048)), cal, PreprocessConfig(pad="zero", transform=False, normalise="none"))
    grid = EnergyGrid()
    assert np.all(out[:, grid.energies() > 10.3] == 0)
    np.testing.assert_allclose(out[:, 5], 4.0, rtol=1e-6)  # 20 eV bin = 4 channels of 5 eV


def test_mean_background_of_array_on_native_channels():
    cal = EnergyCalibration(0.0, 0.01)
    spectra = np.full((3, 5, 400), 7.0)
    spectra[..., 200] = 900.0
    bg = mean_background(spectra, cal, None, 0.2)
    assert bg.shape == (400,)
    np.testing.assert_allclose(bg, 7.0)
    with pytest.raises(ConfigError, match="needs the calibration"):
        mean_background(spectra, None, None, 0.2)


@pytest.mark.parametrize("offset,gain,quad", [(-0.955, 0.01, 0.0), (-0.9553, 0.01, 0.0), (0.13, 0.0207, 0.0),
                                              (0.0, 0.009, 1e-7)])
def test_regrid_from_the_fit_grid_equals_rebinning_the_raw_counts(offset, gain, quad):
    from xrfcore.preprocess.grid import regrid

    cal = EnergyCalibration(offset, gain, quad)
    rng = np.random.default_rng(1)
    e = cal.energies(4096)
    y = rng.poisson(3.0 + 500.0 * np.exp(-0.5 * ((e - 10.55) / 0.08) ** 2), (5, 4096)).astype(np.uint16)
    fine = EnergyGrid(0.0, 0.02, 1500)
    on_fine = rebin_to_grid(y, cal, fine, warn=False)
    for dst in (EnergyGrid(2.8, 0.04, 680), EnergyGrid(2.8, 0.02, 1360), EnergyGrid(1.0, 0.1, 50)):
        direct = rebin_to_grid(y, cal, dst, warn=False)
        np.testing.assert_allclose(regrid(on_fine, fine, dst), direct, rtol=1e-5, atol=1e-3)
    # bins that are not whole fine bins, or a grid reaching past the fine one: not summed
    for dst in (EnergyGrid(2.81, 0.04, 680), EnergyGrid(2.8, 0.03, 100), EnergyGrid(2.8, 0.04, 700)):
        assert regrid(on_fine, fine, dst) is None
    with pytest.raises(ValueError, match="1500 channels"):
        regrid(on_fine[:, :-1], fine, EnergyGrid(2.8, 0.04, 680))


def test_preprocess_from_rebinned_spectra_keeps_its_range_check_and_result():
    cal = EnergyCalibration(3.0, 0.01)  # starts above the model grid's 2.8 keV
    rng = np.random.default_rng(2)
    y = rng.poisson(20.0, (3, 2048)).astype(np.float64)
    fine = EnergyGrid(0.0, 0.02, 1500)
    on_fine = rebin_to_grid(y, cal, fine, warn=False)
    strict = PreprocessConfig(grid=EnergyGrid(2.8, 0.04, 680), pad="error")
    with pytest.raises(CalibrationError, match="2.800-2.995 keV"):
        preprocess_spectra(y, cal, strict, rebinned=(fine, on_fine))
    lenient = PreprocessConfig(grid=EnergyGrid(2.8, 0.04, 680))
    np.testing.assert_allclose(preprocess_spectra(y, cal, lenient, rebinned=(fine, on_fine)),
                               preprocess_spectra(y, cal, lenient), rtol=1e-5, atol=1e-6)
    # the same spectra on another grid that cannot be summed: the raw counts are rebinned
    other = EnergyGrid(0.005, 0.02, 1500)
    np.testing.assert_allclose(preprocess_spectra(y, cal, lenient, rebinned=(other, on_fine)),
                               preprocess_spectra(y, cal, lenient), rtol=1e-6)
    with pytest.raises(ValueError, match="do not match"):
        preprocess_spectra(y, cal, lenient, rebinned=(fine, on_fine[:2]))


def test_bin_sums_and_a_short_scan_warned_once_on_the_summed_path(caplog):
    import logging

    from xrfcore.preprocess.grid import bin_sums

    y = np.arange(10, dtype=np.uint16).reshape(2, 5)
    np.testing.assert_array_equal(bin_sums(y, 2), [[1, 5, 4], [11, 15, 9]])  # the last group is one bin
    assert bin_sums(y, 2).dtype == np.float32
    np.testing.assert_array_equal(bin_sums(y, 1), y)
    cal = EnergyCalibration(3.0, 0.01)  # starts above the model grid's 2.8 keV: zero-padded with a warning
    spectra = np.random.default_rng(3).poisson(20.0, (2, 2048)).astype(np.float64)
    fine = EnergyGrid(0.0, 0.02, 1500)
    on_fine = rebin_to_grid(spectra, cal, fine, warn=False)
    for other in (fine, EnergyGrid(0.005, 0.02, 1500)):  # summed from the fit grid, or rebinned from the raw counts
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="xrfcore.preprocess.grid"):
            preprocess_spectra(spectra, cal, PreprocessConfig(grid=EnergyGrid(2.8, 0.04, 680)), rebinned=(other, on_fine))
        assert sum("zero-padded" in r.getMessage() for r in caplog.records) == 1
