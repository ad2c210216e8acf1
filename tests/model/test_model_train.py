"""Training, k-fold CV, seeded repeatability, finetuning, and dataset loading on synthetic spectra."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

keras = pytest.importorskip("keras")

from model_synth import CLASSES, TINY_MODEL  # noqa: E402

from xrfcore.errors import ConfigError  # noqa: E402
from xrfcore.model.data import dataset_info, load_dataset  # noqa: E402
from xrfcore.model.config import FinetuneConfig, TrainConfig  # noqa: E402
from xrfcore.model.train import finetune, positive_weights, train_model  # noqa: E402

FAST = dict(epochs=3, batch_size=32, patience=3, **TINY_MODEL)


def fast(**changes):
    """The small, quick training settings of these tests, with ``changes``."""
    return TrainConfig(**{**FAST, **changes})


def test_load_dataset_groups_calibrations(sim_path, tiny_config, sim_data):
    from xrfcore.preprocess import preprocess_spectra
    from xrfcore.scan import EnergyCalibration

    X, Y, names = sim_data
    assert X.shape == (600, 256) and X.dtype == np.float32 and Y.dtype == np.uint8
    assert names == CLASSES
    with h5py.File(sim_path) as f:
        raw, cal, lab = f["spectra"][[5, 77]], f["calibration"][[5, 77]], f["labels"][[5, 77]]
    for i, row in enumerate((5, 77)):
        ref = preprocess_spectra(raw[i : i + 1], EnergyCalibration(*map(float, cal[i])), tiny_config)
        np.testing.assert_array_equal(X[row], ref[0])
        np.testing.assert_array_equal(Y[row], lab[i])
    X2, Y2, _ = load_dataset(sim_path, tiny_config, rows=np.array([77, 5]), chunk=1)
    np.testing.assert_array_equal(X2, X[[5, 77]])
    X3, Y3, _ = load_dataset(sim_path, tiny_config, rows=np.array([500, 5, 5]))  # sparse read path
    np.testing.assert_array_equal(X3, X[[5, 500]])
    np.testing.assert_array_equal(Y3, Y[[5, 500]])
    assert dataset_info(sim_path)["n_spectra"] == 600


def test_load_dataset_errors(tmp_path, tiny_config):
    with pytest.raises(ConfigError, match="does not exist"):
        load_dataset(tmp_path / "none.h5", tiny_config)
    bad = tmp_path / "bad.h5"
    with h5py.File(bad, "w") as f:
        f["spectra"] = np.zeros((2, 8), np.uint32)
    with pytest.raises(ConfigError, match=r"lacks datasets \['calibration', 'labels', 'label_names'\]"):
        load_dataset(bad, tiny_config)


def test_smoke_fit_beats_chance_and_reports(sim_data, tiny_config, tmp_path):
    X, Y, names = sim_data
    events = []
    bundle, report = train_model(
        X, Y, classes=names, preprocess=tiny_config, config=fast(folds=1, seed=0), out_dir=tmp_path,
        progress=lambda e, logs: events.append((e, logs)),
    )
    assert (tmp_path / "fold1.keras").is_file()  # the best checkpoint
    test = report["test"]
    assert report["n_test"] == 120 and test["n_spectra"] == 120
    # chance: always "absent" gives accuracy ~0.6 and F1 0; the fit must do far better
    assert test["micro"]["accuracy"] > 0.8
    assert test["macro"]["f1"] > 0.6
    assert [e for e, logs in events] == [0, 1, 2] and events[0][1]["stage"] == "fold 1/1"
    assert "val_loss" in events[-1][1]
    assert bundle.metadata["training"]["folds"] == 1
    assert TrainConfig.from_dict(bundle.metadata["train_config"]) == fast(folds=1, seed=0)
    assert bundle.metadata["metrics"]["test"]["macro"]["f1"] == pytest.approx(test["macro"]["f1"])
    assert report["flops_per_spectrum"] > 0


def test_kfold_keeps_best_fold(sim_data, tiny_config):
    X, Y, names = sim_data
    _, report = train_model(X[:200], Y[:200], classes=names, preprocess=tiny_config,
                            config=fast(folds=2, seed=1, epochs=1))
    assert len(report["folds"]) == 2
    assert sum(f["n_validation"] for f in report["folds"]) == 160  # the non-test part, split in 2
    best = min(report["folds"], key=lambda f: f["val_loss"])
    assert report["best_fold"] == best["fold"]


def test_seeded_training_is_repeatable(sim_data, tiny_config):
    X, Y, names = sim_data
    runs = [
        train_model(X[:160], Y[:160], classes=names, preprocess=tiny_config,
                    config=fast(folds=1, seed=7, epochs=2))[0]
        for _ in range(2)
    ]
    for a, b in zip(runs[0].model.get_weights(), runs[1].model.get_weights()):
        np.testing.assert_array_equal(a, b)
    other = train_model(X[:160], Y[:160], classes=names, preprocess=tiny_config,
                        config=fast(folds=1, seed=8, epochs=2))[0]
    assert not np.array_equal(other.model.get_weights()[0], runs[0].model.get_weights()[0])


def test_positive_weights_modes():
    Y = np.array([[1, 0], [0, 0], [0, 0], [0, 0]])
    assert positive_weights(Y, "none") is None
    np.testing.assert_allclose(positive_weights(Y, "balanced"), [3.0, 1.0])  # no positives -> 1
    np.testing.assert_allclose(positive_weights(Y, "sqrt"), [np.sqrt(3.0), 1.0])
    with pytest.raises(ConfigError, match="class_weighting must be one of"):
        positive_weights(Y, "inverse")


def test_train_rejects_bad_shapes(tiny_config):
    with pytest.raises(ConfigError, match="channels but the preprocessing grid has 256"):
        train_model(np.zeros((10, 100)), np.zeros((10, 4)), classes=CLASSES, preprocess=tiny_config)
    with pytest.raises(ConfigError, match="preprocess must be a PreprocessConfig"):
        train_model(np.zeros((10, 256)), np.zeros((10, 4)), classes=CLASSES, preprocess=TrainConfig())


def test_finetune_two_stages_freezes_conv(sim_data, tiny_config):
    X, Y, names = sim_data
    base, _ = train_model(X[:200], Y[:200], classes=names, preprocess=tiny_config,
                          config=fast(folds=1, seed=0, epochs=1))
    before = {w.path: w.numpy() for w in base.model.weights}
    stages = []

    def spy(epoch, logs):
        stages.append(logs["stage"])
        # during stage 1 only the dense head may change
        if logs["stage"].startswith("finetune stage 1"):
            model = spy.model
            for layer in model.layers:
                if isinstance(layer, (keras.layers.Conv1D, keras.layers.BatchNormalization)):
                    assert not layer.trainable

    import xrfcore.model.train as train_mod

    orig = train_mod._compile

    def capture(model, lr, pw):
        spy.model = model
        spy.lrs.append((lr, [layer.name for layer in model.layers if layer.trainable_weights]))
        orig(model, lr, pw)

    spy.lrs = []
    train_mod._compile = capture
    try:
        tuned, hist = finetune(base, X[200:320], Y[200:320], progress=spy,
                               config=FinetuneConfig(stage1_epochs=2, stage2_epochs=2, batch_size=32, seed=0))
    finally:
        train_mod._compile = orig
    assert len(hist["stage1"]["loss"]) == 2 and len(hist["stage2"]["loss"]) == 2
    assert "finetune stage 1/2" in stages and "finetune stage 2/2" in stages
    (lr1, trainable1), (lr2, trainable2) = spy.lrs
    assert lr1 == 1e-3 and trainable1 == ["probabilities"]
    assert lr2 == 5e-4 and "block1_conv" in trainable2 and "block1_bn" not in trainable2
    after = {w.path: w.numpy() for w in tuned.model.weights}
    conv = [p for p in before if "conv" in p]
    bn = [p for p in before if "_bn/" in p]
    assert any(not np.array_equal(before[p], after[p]) for p in conv)  # stage 2 moved the convolutions
    assert all(np.array_equal(before[p], after[p]) for p in bn)  # BatchNorm stayed frozen (inference mode)
    # the input bundle is untouched, and lineage records the finetune step
    assert all(np.array_equal(before[w.path], w.numpy()) for w in base.model.weights)
    assert [s["step"] for s in tuned.metadata["lineage"]] == ["pretrain", "finetune"]
    assert hist["validation"]["n_spectra"] == 24
