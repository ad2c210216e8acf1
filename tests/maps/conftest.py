"""Fixtures for the maps tests: a tiny real Keras pigment model and small scans."""

from __future__ import annotations

import numpy as np
import pytest

from xrfcore.scan import EnergyCalibration, Scan

CLASSES = ["CrG", "CrY", "CB", "EG", "IO", "LW", "PB", "RL", "CM", "VM", "ZW"]


def make_bundle(tmp_path, *, n_grid: int = 96, seed: int = 0):
    """A small pigment CNN (2 conv blocks) with random weights, saved to a .keras file."""
    import keras

    from xrfcore.library import load_library
    from xrfcore.model import ModelBundle, build_model, save_model
    from xrfcore.preprocess import EnergyGrid, PreprocessConfig

    keras.utils.set_random_seed(seed)
    model = build_model(n_grid, len(CLASSES), filters=(8, 8), kernel_sizes=(5, 3), post_conv=None)
    lib = load_library()
    pre = PreprocessConfig(grid=EnergyGrid(start_kev=2.8, step_kev=0.1, n_channels=n_grid))
    bundle = ModelBundle(model, CLASSES, [lib.get(c).name for c in CLASSES], pre, {"note": "test"})
    save_model(bundle, tmp_path / "tiny.keras")
    return bundle


def make_scan(n_rows: int = 12, n_cols: int = 9, n_channels: int = 700, *, seed: int = 0) -> Scan:
    """Poisson counts on a 0-14 keV axis with a Fe-like peak whose height varies per pixel."""
    rng = np.random.default_rng(seed)
    cal = EnergyCalibration(0.0, 0.02)
    e = cal.energies(n_channels)
    peak = np.exp(-0.5 * ((e - 6.4) / 0.07) ** 2)
    amp = rng.uniform(0, 200, size=(n_rows, n_cols, 1))
    lam = 5.0 + amp * peak
    return Scan.from_array(rng.poisson(lam).astype(np.uint16), cal, source="synthetic")


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return make_bundle(tmp_path_factory.mktemp("model"))


@pytest.fixture(scope="module")
def scan():
    return make_scan()
