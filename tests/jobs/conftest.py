"""Fixtures for finetune and job tests: a tiny saved pigment model, a labelled HDF5 scan."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

CLASSES = ["CrG", "CrY", "CB", "EG", "IO", "LW", "PB", "RL", "CM", "VM", "ZW"]
SHAPE = (16, 16, 700)


def make_model(path, *, n_grid: int = 96, seed: int = 0):
    """A small real pigment CNN (two conv blocks), random weights, saved with its metadata."""
    import keras

    from xrfcore.library import load_library
    from xrfcore.model import ModelBundle, build_model, save_model
    from xrfcore.preprocess import EnergyGrid, PreprocessConfig

    keras.utils.set_random_seed(seed)
    model = build_model(n_grid, len(CLASSES), filters=(8, 8), kernel_sizes=(5, 3), post_conv=None)
    lib = load_library()
    pre = PreprocessConfig(grid=EnergyGrid(start_kev=2.8, step_kev=0.1, n_channels=n_grid))
    bundle = ModelBundle(model, CLASSES, [lib.get(c).name for c in CLASSES], pre, {"training": {"note": "test"}})
    save_model(bundle, path)
    return path


def make_scan(path, *, seed: int = 0):
    """Left half: Hg L lines (vermilion on top); right half: Pb L lines (lead white)."""
    from xrfcore.io import write_scan_h5
    from xrfcore.scan import EnergyCalibration

    rng = np.random.default_rng(seed)
    cal = EnergyCalibration(0.0, 0.02)
    e = cal.energies(SHAPE[2])

    def peaks(*energies):
        return sum(np.exp(-0.5 * ((e - x) / 0.08) ** 2) for x in energies)

    lam = np.full(SHAPE, 3.0)
    lam[:, :8] += 150 * peaks(9.99, 11.82)  # Hg L-alpha, L-beta
    lam[:, 8:] += 150 * peaks(10.55, 12.61)  # Pb L-alpha, L-beta
    return write_scan_h5(path, rng.poisson(lam).astype(np.uint16), cal)


def make_labels(path):
    doc = {"version": 1, "scan": "scan.h5", "regions": [
        {"name": "vermilion", "shape": "rectangle", "row0": 0, "col0": 0, "row1": 16, "col1": 8,
         "top": ["vermilion"], "bottom": []},
        {"name": "lead white", "shape": "rectangle", "row0": 0, "col0": 8, "row1": 16, "col1": 16,
         "top": ["LW"], "bottom": []},
    ]}
    path.write_text(json.dumps(doc))
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("ft")
    return {"model": make_model(d / "base.keras"), "scan": make_scan(d / "scan.h5"),
            "labels": make_labels(d / "labels.json"), "dir": d}


@pytest.fixture
def user_dir(tmp_path, monkeypatch):
    """XRF_USER_DIR in a temporary folder (jobs and the models index go there)."""
    monkeypatch.setenv("XRF_USER_DIR", str(tmp_path / "user"))
    return tmp_path / "user"


def finetune_job_params(files, out, *, epochs=2):
    """Params of a tiny finetune job on the ``files`` fixture's model, scan and labels."""
    return {"model": str(files["model"]), "scans": [str(files["scan"])], "labels": [str(files["labels"])],
            "out": str(out), "stage1_epochs": epochs, "stage2_epochs": 0, "batch_size": 16, "patience": 10_000,
            "validation_fraction": 0.0,
            # the paper's protocol without extra training data: two rectangles cannot be split by region
            "split": "pixels", "augment_copies": 0, "simulate_per_stack": 0, "rehearsal_ratio": 0.0,
            "keep_base_where_worse": False}


def wait_until_training(job_id, jobs_dir, timeout_s=60.0):
    """Wait until the worker is inside the training loop (an epoch line is in its log)."""
    from xrfcore.jobs import job_status

    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        st = job_status(job_id, jobs_dir)
        if st.state == "running" and "epoch" in st.log_tail:
            return st
        assert st.active, st.log_tail
        time.sleep(0.2)
    raise AssertionError("job did not start training in time")


@pytest.fixture
def job_params():
    """``job_params(files, out, epochs=2)``: params of a tiny finetune job."""
    return finetune_job_params


@pytest.fixture
def wait_training():
    """``wait_training(job_id, jobs_dir)``: block until the job's worker is training."""
    return wait_until_training
