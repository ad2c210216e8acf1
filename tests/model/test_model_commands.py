"""`python -m xrfcore train` and `evaluate` end to end on tiny synthetic data."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

pytest.importorskip("keras")

from model_synth import CALIBRATIONS, CLASSES, synthetic_spectra  # noqa: E402

from xrfcore.cli import main  # noqa: E402

TINY_ARGS = ["--filters", "8,8", "--kernel-sizes", "5,3", "--post-conv", "8,3", "--grid-step-kev", "0.04",
             "--grid-channels", "256", "--batch-size", "16", "--bn-momentum", "0.8", "--quiet"]


@pytest.fixture(scope="module")
def trained(sim_path, tmp_path_factory):
    out = tmp_path_factory.mktemp("model") / "tiny.keras"
    rc = main(["train", "--data", str(sim_path), "--out", str(out), "--folds", "2", "--epochs", "4",
               "--max-spectra", "400", "--seed", "0", *TINY_ARGS])
    assert rc == 0
    return out


def test_train_writes_model_report_curves(trained, sim_path, capsys):
    report = json.loads(trained.with_suffix(".report.json").read_text())
    assert len(report["folds"]) == 2 and report["best_fold"] in (1, 2)
    assert report["data"]["n_used"] == 400 and report["n_test"] == 80
    assert set(report["test"]["per_pigment"]) == set(CLASSES)
    assert report["preprocess"]["grid"] == {"start_kev": 2.8, "step_kev": 0.04, "n_channels": 256}
    png = trained.with_suffix(".curves.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert trained.with_suffix(".metrics.csv").read_text().startswith("pigment,accuracy")
    from xrfcore.model.bundle import load_model

    bundle = load_model(trained)
    assert bundle.metadata["training"]["data"]["n_spectra"] == 600
    assert bundle.metadata["library_version"] == 1


def test_train_rejects_bad_out(sim_path, tmp_path, capsys):
    assert main(["train", "--data", str(sim_path), "--out", str(tmp_path / "m.h5")]) == 2
    assert "--out must end in .keras" in capsys.readouterr().err
    assert main(["train", "--data", str(tmp_path / "none.h5"), "--out", str(tmp_path / "m.keras")]) == 2
    assert "does not exist" in capsys.readouterr().err


def _labelled_scan(tmp_path, rows=6, cols=10, seed=5):
    from xrfcore.io.writer import write_scan_h5
    from xrfcore.scan import EnergyCalibration

    rng = np.random.default_rng(seed)
    labels = (rng.random((rows * cols, len(CLASSES))) < 0.4).astype(np.uint8)
    counts = synthetic_spectra(labels, CALIBRATIONS[0], rng).reshape(rows, cols, -1)
    scan_path = write_scan_h5(tmp_path / "scan.h5", counts, EnergyCalibration(*CALIBRATIONS[0]))
    lab_path = tmp_path / "labels.h5"
    with h5py.File(lab_path, "w") as f:
        f["labels"] = labels.reshape(rows, cols, -1)[:, :, ::-1]  # stored in another order ...
        f["label_names"] = np.array([c.lower() for c in CLASSES[::-1]], dtype="S")  # ... and case
    return scan_path, lab_path, labels


def test_evaluate_prints_table_and_json(trained, tmp_path, capsys):
    scan_path, lab_path, _ = _labelled_scan(tmp_path)
    out_json = tmp_path / "eval.json"
    rc = main(["evaluate", "--model", str(trained), "--scan", str(scan_path), "--labels", str(lab_path),
               "--json", str(out_json)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "sensitivity" in text and "macro" in text
    metrics = json.loads(out_json.read_text())
    assert metrics["n_spectra"] == 60
    assert metrics["classes"] == CLASSES
    assert metrics["micro"]["accuracy"] > 0.75  # the labels were matched to the right columns


def test_evaluate_unknown_label_name(trained, tmp_path, capsys):
    scan_path, _, labels = _labelled_scan(tmp_path)
    bad = tmp_path / "bad_labels.h5"
    with h5py.File(bad, "w") as f:
        f["labels"] = labels.reshape(6, 10, -1)
        f["label_names"] = np.array(["CB", "ZW", "VM", "unobtainium"], dtype="S")
    rc = main(["evaluate", "--model", str(trained), "--scan", str(scan_path), "--labels", str(bad)])
    assert rc == 2
    assert "unobtainium" in capsys.readouterr().err


def test_train_workflow_and_train_job_are_one_path(sim_path, tmp_path):
    """The train job's option dict and a direct call of workflows.train give the same model."""
    from xrfcore.jobs.tasks import run_task
    from xrfcore.model.bundle import load_model
    from xrfcore.model.config import TrainConfig
    from xrfcore.workflows import train, train_configs_from_options

    options = {"epochs": 2, "folds": 1, "seed": 3, "max_spectra": 200, "grid_step_kev": 0.04, "grid_channels": 256,
               "batch_size": 16, "filters": [8, 8], "kernel_sizes": [5, 3], "post_conv": [8, 3], "bn_momentum": 0.8}
    seen = []
    preprocess, config = train_configs_from_options(options)
    direct = train(sim_path, tmp_path / "direct.keras", preprocess=preprocess, config=config,
                   progress=lambda f, m: seen.append((f, m)))
    job = run_task("train", {"data": str(sim_path), "out": str(tmp_path / "job.keras"), **options},
                   log=lambda line: None)
    assert job["out"] == str((tmp_path / "job.keras").resolve()) and job["best_fold"] == 1
    a, b = load_model(direct.model), load_model(tmp_path / "job.keras")
    for wa, wb in zip(a.model.get_weights(), b.model.get_weights()):
        np.testing.assert_array_equal(wa, wb)
    assert TrainConfig.from_dict(b.metadata["train_config"]) == config
    assert direct.report_path.is_file() and direct.curves.is_file() and direct.metrics_csv.is_file()
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert any("fold 1/1 epoch 2/2" in m for _, m in seen)
