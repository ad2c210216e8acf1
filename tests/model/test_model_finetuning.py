"""Finetuning split by region, with augmentation, simulation and rehearsal; lineage; honest evaluate."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from model_synth import small_finetune_config

CLASSES = ["CrG", "CrY", "CB", "EG", "IO", "LW", "PB", "RL", "CM", "VM", "ZW"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A small real pigment CNN, a simulated 24 x 24 scan of six labelled bands, its labels."""
    import keras
    from model_synth import write_band_scan

    from xrfcore.library import load_library
    from xrfcore.model import ModelBundle, build_model, save_model
    from xrfcore.preprocess import EnergyGrid, PreprocessConfig

    d = tmp_path_factory.mktemp("ftr")
    keras.utils.set_random_seed(0)
    n_grid = 96
    model = build_model(n_grid, len(CLASSES), filters=(8, 8), kernel_sizes=(5, 3), post_conv=None)
    lib = load_library()
    pre = PreprocessConfig(grid=EnergyGrid(start_kev=2.8, step_kev=0.2, n_channels=n_grid))
    save_model(ModelBundle(model, CLASSES, [lib.get(c).name for c in CLASSES], pre, {"training": {}}), d / "base.keras")
    write_band_scan(d)
    return d


def _options(**kw):
    return small_finetune_config(**kw)


def _data(tiny):
    from xrfcore.io import open_scan
    from xrfcore.labels import load_labels
    from xrfcore.model import load_model
    from xrfcore.model.finetuning import labelled_scan

    bundle = load_model(tiny / "base.keras")
    scan = open_scan(tiny / "scan.h5")
    ls = load_labels(tiny / "labels.json", scan_shape=scan.shape, classes=bundle.classes)
    return bundle, scan, ls, labelled_scan(scan, ls)


def test_region_split_finetune_scores_only_held_out_regions(tiny):
    from xrfcore.model.finetuning import finetune_labelled

    bundle, scan, ls, data = _data(tiny)
    new, rep = finetune_labelled(bundle, [data], config=_options())
    train_mask = rep["train_masks"][0]
    units = (np.arange(24)[:, None] // 4) * 3 + (np.arange(24)[None, :] // 8)  # bands of 4 rows, blocks of 8 cols
    trained_units = set(units[train_mask].tolist())
    assert trained_units and not trained_units & set(units[ls.mask & ~train_mask].tolist()), "blocks stay whole"
    assert rep["split"]["n_test_pixels"] == int((ls.mask & ~train_mask).sum()) == rep["before"]["n_spectra"]
    assert rep["after"]["n_spectra"] == rep["before"]["n_spectra"]
    assert rep["n_validation_pixels"] > 0
    n = rep["n_training_spectra"]
    assert n["augmented"] == n["labelled"] and n["simulated_stacks"] > 0 and n["rehearsal"] > 0
    assert set(rep["split"]["held_out_regions"]) == set(CLASSES)
    assert any("fewer than 3 regions held out" in w for w in rep["warnings"])  # six bands cannot give three per pigment
    assert isinstance(rep["worse_than_base"], list)
    assert new.model is not bundle.model


def test_pixel_split_and_plain_recipe(tiny):
    from xrfcore.model.finetuning import finetune_labelled

    bundle, _, _, data = _data(tiny)
    _, rep = finetune_labelled(bundle, [data], config=_options(split="pixels", augment_copies=0, simulate_per_stack=0,
                                                                rehearsal_ratio=0.0, seed=1))
    assert rep["split"]["kind"] == "pixels" and rep["split"]["n_test_regions"] == 0
    assert rep["n_training_spectra"]["augmented"] == 0 and rep["n_training_spectra"]["rehearsal"] == 0


def test_output_weights_follow_the_validation_loss():
    from xrfcore.model.finetuning import choose_output_weights

    rng = np.random.default_rng(0)
    y = (rng.random((200, 3)) < 0.5).astype(np.uint8)
    good = np.where(y == 1, 0.9, 0.1)
    bad = np.where(y == 1, 0.3, 0.7)
    p_base = np.stack([bad[:, 0], good[:, 1], good[:, 2]], axis=1)
    p_ft = np.stack([good[:, 0], bad[:, 1], good[:, 2]], axis=1)
    assert choose_output_weights(y, p_base, p_ft).tolist() == [1.0, 0.0, 1.0]
    # a finetuned output that loses F1 (positives pushed below the threshold) is not taken
    shifted = np.where(y == 1, 0.45, 0.1)
    assert choose_output_weights(y, good, shifted)[:1].tolist() == [0.0]


def test_merge_outputs_takes_base_outputs_where_asked_and_saves(tiny, tmp_path):
    import keras

    from xrfcore.model import ModelBundle, load_model, save_model
    from xrfcore.model.finetuning import merge_outputs
    from xrfcore.model.predict import predict_preprocessed

    base = load_model(tiny / "base.keras")
    from xrfcore.model.train import WeightedBinaryCrossentropy

    other = keras.models.clone_model(base.model)
    other.set_weights([w + 0.05 for w in base.model.get_weights()])
    other.compile(optimizer="adam", loss=WeightedBinaryCrossentropy([2.0] * len(CLASSES)))  # as after finetuning
    use = np.zeros(len(CLASSES), bool)
    use[[2, 9]] = True
    weight = np.where(use, 0.0, 1.0)
    weight[5] = 0.25
    merged = merge_outputs(other, base.model, weight)
    x = np.random.default_rng(0).random((5, base.n_channels)).astype(np.float32)
    pm, pb, po = (predict_preprocessed(m, x, method="call") for m in (merged, base.model, other))
    assert np.allclose(pm[:, use], pb[:, use], atol=1e-6)
    rest = ~use
    rest[5] = False
    assert np.allclose(pm[:, rest], po[:, rest], atol=1e-6)
    assert np.allclose(pm[:, 5], 0.25 * po[:, 5] + 0.75 * pb[:, 5], atol=1e-6)
    assert not np.allclose(pb, po, atol=1e-4)
    out = save_model(ModelBundle(merged, base.classes, base.class_names, base.preprocess, {}), tmp_path / "m.keras")
    again = load_model(out)
    assert np.allclose(predict_preprocessed(again.model, x, method="call"), pm, atol=1e-6)


def test_lineage_mask_excludes_training_pixels_in_evaluate(tiny, tmp_path):
    from xrfcore.io import open_scan
    from xrfcore.model import ModelBundle, load_model, save_model
    from xrfcore.model.lineage import TRAINING_PIXELS_KEY, training_mask, training_record
    from xrfcore.model.metrics import evaluate_scan

    base = load_model(tiny / "base.keras")
    train = np.zeros((24, 24), bool)
    train[:4] = True
    train[10, 3:7] = True
    rec = training_record(tiny / "scan.h5", tiny / "labels.json", train)
    assert rec["n_pixels"] == 100 and rec["runs"][-1] == [10, 3, 7] and len(rec["labels_sha256"]) == 64
    b = ModelBundle(base.model, base.classes, base.class_names, base.preprocess, {TRAINING_PIXELS_KEY: [rec]})
    path = save_model(b, tmp_path / "ft.keras")
    ft = load_model(path)
    assert np.array_equal(training_mask(ft.metadata, tiny / "scan.h5", (24, 24, 1024)), train)
    copy = tmp_path / "renamed.h5"
    shutil.copy(tiny / "scan.h5", copy)
    assert np.array_equal(training_mask(ft.metadata, copy, (24, 24)), train), "a moved copy still matches"
    assert training_mask(ft.metadata, tiny / "labels.json", (24, 24)) is None, "another file does not"
    m = evaluate_scan(ft, open_scan(tiny / "scan.h5"), tiny / "labels.json")
    assert m["excluded_training_pixels"] == 100 and m["n_spectra"] == 24 * 24 - 100
    m_all = evaluate_scan(ft, open_scan(tiny / "scan.h5"), tiny / "labels.json", include_training_pixels=True)
    assert m_all["n_spectra"] == 24 * 24 and m_all["training_pixels_included"] == 100
    assert evaluate_scan(base, open_scan(tiny / "scan.h5"), tiny / "labels.json")["excluded_training_pixels"] == 0


def test_evaluate_cli_says_how_many_it_excluded(tiny, tmp_path, capsys):
    from xrfcore.cli import main
    from xrfcore.model import ModelBundle, load_model, save_model
    from xrfcore.model.lineage import TRAINING_PIXELS_KEY, training_record

    base = load_model(tiny / "base.keras")
    train = np.zeros((24, 24), bool)
    train[4:8] = True
    meta = {TRAINING_PIXELS_KEY: [training_record(tiny / "scan.h5", tiny / "labels.json", train)]}
    path = save_model(ModelBundle(base.model, base.classes, base.class_names, base.preprocess, meta), tmp_path / "e.keras")
    args = ["evaluate", "--model", str(path), "--scan", str(tiny / "scan.h5"), "--labels", str(tiny / "labels.json")]
    assert main(args) == 0
    assert "excluded 96 of 576 labelled pixels" in capsys.readouterr().out
    assert main(args + ["--include-training-pixels"]) == 0
    assert "WARNING: 96 of the scored pixels finetuned this model" in capsys.readouterr().out


def test_workflow_records_training_pixels_and_evaluate_leaves_them_out(tiny, tmp_path, monkeypatch, capsys):
    from xrfcore.commands.finetune import finetune_summary
    from xrfcore.model import load_model
    from xrfcore.model.lineage import training_mask
    from xrfcore.workflows import evaluate, finetune

    monkeypatch.setenv("XRF_USER_DIR", str(tmp_path / "user"))
    out = tmp_path / "wf.keras"
    res = finetune(model=str(tiny / "base.keras"), scans=[str(tiny / "scan.h5")], labels=[str(tiny / "labels.json")],
                   out=str(out), config=_options(block_size=32))  # one unit per band
    assert res["split"] == "regions" and res["n_test_regions"] >= 1 and res["n_test"] > 0
    assert set(res["held_out_regions"]) == set(CLASSES) and res["warnings"]
    report = json.loads((tmp_path / "wf.finetune.json").read_text())
    assert report["split_summary"]["n_test_pixels"] == res["n_test"]
    assert report["base_on_test_pixels"]["n_spectra"] == res["n_test"]
    model = load_model(out)
    mask = training_mask(model.metadata, tiny / "scan.h5", (24, 24))
    assert mask is not None and int(mask.sum()) == res["n_train"]
    rec = model.metadata["training_pixels"][0]
    assert rec["labels"] == "labels.json" and rec["n_pixels"] == res["n_train"]
    m = evaluate(tiny / "scan.h5", tiny / "labels.json", model=out)
    assert m["excluded_training_pixels"] == res["n_train"] and m["n_spectra"] == 24 * 24 - res["n_train"]
    text = finetune_summary(res)
    assert f"test: {res['n_test']} pixels in {res['n_test_regions']} regions" in text
    assert "macro F1 on the test pixels: base model" in text and "WARNING: fewer than 3 regions held out" in text


def test_job_options_carry_the_split_and_recipe():
    from xrfcore.errors import ConfigError
    from xrfcore.workflows import finetune_config_from_options

    run, cfg = finetune_config_from_options({"scans": ["s.h5"], "labels": ["l.json"], "out": "o.keras",
                                             "split": "pixels", "block_size": 8, "augment_copies": 0,
                                             "simulate_per_stack": 16, "rehearsal_ratio": 0.5,
                                             "keep_base_where_worse": False})
    assert run["out"] == "o.keras"
    assert (cfg.split, cfg.block_size, cfg.augment_copies, cfg.simulate_per_stack, cfg.rehearsal_ratio,
            cfg.keep_base_where_worse) == ("pixels", 8, 0, 16, 0.5, False)
    with pytest.raises(ConfigError, match="split must be one of regions, pixels"):
        finetune_config_from_options({"split": "cells"})
