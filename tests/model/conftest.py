"""Fixtures for the model tests (data helpers live in model_synth.py)."""

from __future__ import annotations

import pytest
from model_synth import write_dataset


@pytest.fixture(scope="session")
def tiny_config():
    from xrfcore.preprocess import EnergyGrid, PreprocessConfig

    return PreprocessConfig(grid=EnergyGrid(start_kev=2.8, step_kev=0.04, n_channels=256))


@pytest.fixture(scope="session")
def sim_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("sim") / "sim.h5"
    write_dataset(path, 600, seed=1)
    return path


@pytest.fixture(scope="session")
def sim_data(sim_path, tiny_config):
    from xrfcore.model.data import load_dataset

    return load_dataset(sim_path, tiny_config, chunk=256)
