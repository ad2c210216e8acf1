"""Finetuning an evidence-backed model: only its head, gate and layer outputs kept, scored on held-out regions."""

from __future__ import annotations

import numpy as np
import pytest
from model_synth import small_finetune_config


@pytest.fixture(scope="module")
def evidence_setup(tmp_path_factory):
    """A tiny evidence model (small CNN trunk + a head trained on 400 simulated spectra), a 24 x 24 scan of six
    labelled bands and their labels."""
    import keras
    from model_synth import write_band_scan

    from xrfcore.library import load_library
    from xrfcore.model.architecture import build_model
    from xrfcore.model.bundle import ModelBundle, save_model
    from xrfcore.model.evidence_training import train_evidence_model
    from xrfcore.preprocess import EnergyGrid, PreprocessConfig
    from xrfcore.simulate.dataset import SimConfig, simulate_dataset

    d = tmp_path_factory.mktemp("evft")
    keras.utils.set_random_seed(0)
    lib = load_library()
    data = simulate_dataset(d / "sim.h5", n=400, seed=5, workers=1, config=SimConfig(batch_size=200),
                            progress=lambda a, b: None)
    pre = PreprocessConfig(grid=EnergyGrid(start_kev=2.8, step_kev=0.08, n_channels=340))
    cnn = build_model(340, len(lib.classes), filters=(8, 8), kernel_sizes=(5, 3), post_conv=(8, 3))
    base = ModelBundle(model=cnn, classes=list(lib.classes), class_names=list(lib.class_names), preprocess=pre)
    bundle, _ = train_evidence_model(base, data, seed=1, epochs=2, n_heads=2, log=lambda m: None)
    save_model(bundle, d / "evidence.keras")
    write_band_scan(d)
    return d


def _config(**kw):
    return small_finetune_config(**{"stage1_epochs": 3, "stage2_epochs": 0, "patience": 2, **kw})


def test_evidence_model_finetunes_its_head_and_keeps_gate_and_layers(evidence_setup):
    from xrfcore.io import open_scan
    from xrfcore.labels import load_labels
    from xrfcore.model import load_model
    from xrfcore.model.evidence_finetuning import finetune_evidence_labelled
    from xrfcore.model.evidence_model import run_model, spec_of
    from xrfcore.model.finetuning import labelled_scan

    d = evidence_setup
    bundle = load_model(d / "evidence.keras")
    scan = open_scan(d / "scan.h5")
    ls = load_labels(d / "labels.json", scan_shape=scan.shape, classes=bundle.classes)
    new, rep = finetune_evidence_labelled(bundle, [labelled_scan(scan, ls)], config=_config())
    # scored only on pixels it never trained on, base and finetuned on the same ones
    train_mask = rep["train_masks"][0]
    assert train_mask.any() and (ls.mask & ~train_mask).any()
    assert rep["before"]["n_spectra"] == rep["after"]["n_spectra"] == int((ls.mask & ~train_mask).sum())
    assert rep["finetuned"] == "evidence head" and rep["n_training_spectra"]["simulated_stacks"] > 0
    assert set(rep["kept_base_outputs"]) == {c for c, w in rep["finetuned_weight"].items() if w == 0.0}
    # the saved model is still an evidence model and loads in safe mode
    path = d / "finetuned.keras"
    from xrfcore.model.bundle import save_model

    save_model(new, path)
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        again = load_model(path)
    assert not [w for w in caught if "optimizer" in str(w.message)], [str(w.message) for w in caught]
    spec = spec_of(again)
    assert spec is not None and spec.layout == spec_of(bundle).layout
    x = scan.read_rows(0, 24).reshape(-1, scan.n_channels)[:96]
    before, after = run_model(bundle, x, scan.calibration), run_model(again, x, scan.calibration)
    # layer outputs are the base model's unless recalibrated; the gate still closes where the key elements are absent
    layers = rep["layers"]
    assert layers["n_fit_pixels"] > 0 and layers["n_validation_pixels"] > 0 and layers["n_test_pixels"] > 0
    assert set(layers["recalibrated"]) <= set(layers["maps"])
    assert set(layers["macro_f1"]) == {"surface", "hidden"} and all(len(v) == 2 for v in layers["macro_f1"].values())
    for h in ("surface", "hidden"):
        assert set(layers["test_after"][h]["per_pigment"]) == set(bundle.classes)
        for k, c in enumerate(bundle.classes):
            if f"{h} {c}" not in layers["recalibrated"]:
                np.testing.assert_allclose(after[h][:, k], before[h][:, k], atol=1e-5)
    from xrfcore.elements.evidence import fit_evidence
    from xrfcore.model.evidence_model import element_significance

    z, _ = element_significance(fit_evidence(x, scan.calibration, spec.evidence), spec.feature_elements)
    k_cr = list(again.classes).index("CrG")
    no_cr = z[:, list(spec.feature_elements).index("Cr")] < spec.gate_significance
    assert no_cr.any()
    not_seen = float(np.interp(0.0, spec.calibration[spec.layout.slices()["any"].start + k_cr]["x"],
                               spec.calibration[spec.layout.slices()["any"].start + k_cr]["y"]))
    np.testing.assert_allclose(after["any"][no_cr, k_cr], not_seen, atol=1e-6)
    assert np.all((after["any"] >= 0) & (after["any"] <= 1))


def test_finetune_workflow_keeps_an_evidence_model_an_evidence_model(evidence_setup, tmp_path):
    from xrfcore.model import load_model
    from xrfcore.model.evidence_model import spec_of
    from xrfcore.workflows import finetune

    d = evidence_setup
    messages = []
    res = finetune(model=d / "evidence.keras", scans=[d / "scan.h5"], labels=[d / "labels.json"],
                   out=tmp_path / "ft.keras", config=_config(), register=False, log=messages.append)
    assert spec_of(load_model(res["model"])) is not None
    assert any("evidence-backed model" in m for m in messages)
    assert res["n_test"] > 0 and set(res["per_pigment_f1"]) == set(load_model(res["model"]).classes)
    # the layer outputs are scored on the same test pixels; the summary says so and names what was recalibrated
    from xrfcore.commands.finetune import finetune_summary

    assert set(res["layer_macro_f1"]) == {"surface", "hidden"}
    assert load_model(res["model"]).metadata["finetune"]["layers_recalibrated"] == res["layers_recalibrated"]
    assert "layer outputs on the test pixels (mean F1, base -> finetuned): surface" in finetune_summary(res)


def test_recalibrated_map_keeps_the_not_seen_level_and_stays_increasing():
    from xrfcore.model.evidence_finetuning import recalibrated_map

    m = {"x": [0.0, 1e-6, 0.5, 1.0], "y": [0.07, 0.02, 0.4, 0.98]}
    up = recalibrated_map(m, 1.0, 1.5)                    # this scan holds the pigment more often
    x, y = np.asarray(up["x"]), np.asarray(up["y"])
    assert y[0] == pytest.approx(0.07) and np.all(np.diff(y) >= 0)
    assert np.interp(0.5, x, y) > 0.4 + 0.2
    same = recalibrated_map(m, 1.0, 0.0)                  # the identity map changes nothing
    np.testing.assert_allclose(np.interp([0.25, 0.5, 0.9], same["x"], same["y"]),
                               np.interp([0.25, 0.5, 0.9], m["x"], m["y"]), atol=1e-9)


def test_layer_outputs_are_recalibrated_only_where_the_validation_regions_gain():
    """Output 0 ranks right but calls nothing (0.4 where present, 0.1 where not): recalibrating helps; output 1
    is right already."""
    from xrfcore.model.evidence_finetuning import layer_recalibration
    from xrfcore.model.evidence_model import OutputLayout

    layout = OutputLayout(classes=("A",), groups=(), heads=("surface", "hidden"))
    rng = np.random.default_rng(0)
    n = 400
    y0 = (rng.random(n) < 0.5).astype(np.uint8)           # surface A
    y1 = (rng.random(n) < 0.5).astype(np.uint8)           # hidden A
    raw = np.column_stack([np.where(y0 == 1, 0.4, 0.1), np.where(y1 == 1, 0.9, 0.1)])
    targets = np.column_stack([y0, y1])
    passes = np.ones((n, 2), bool)
    identity = ({"x": [0.0, 1.0], "y": [0.0, 1.0]},) * 2

    def probabilities(cal, idx):
        return np.column_stack([np.interp(raw[idx, c], cal[c]["x"], cal[c]["y"]) for c in range(2)])

    fit_idx, val_idx = np.arange(0, 200), np.arange(200, n)
    cal, info = layer_recalibration(layout, ["A"], identity, targets, passes, fit_idx, val_idx, probabilities)
    assert info["recalibrated"] == ["surface A"] and set(info["maps"]) == {"surface A", "hidden A"}
    p = probabilities(cal, val_idx)[:, 0]
    assert p[y0[val_idx] == 1].min() >= 0.5 > p[y0[val_idx] == 0].max() and cal[1] == identity[1]
    # nothing to learn where the key elements were never significant: the maps stay
    cal2, info2 = layer_recalibration(layout, ["A"], identity, targets, np.zeros((n, 2), bool), fit_idx, val_idx,
                                      probabilities)
    assert cal2 == identity and info2["recalibrated"] == [] and info2["maps"] == {}


def test_finetuned_output_is_kept_only_where_it_calls_validation_regions_better():
    from xrfcore.model.evidence_finetuning import choose_finetuned

    y = np.array([[1, 0, 0, 1, 1], [0, 1, 0, 0, 0], [1, 0, 0, 1, 0], [0, 0, 0, 0, 1]])
    base = np.array([[0.9, 0.1, 0.3, 0.6, 0.2], [0.1, 0.4, 0.3, 0.2, 0.1], [0.8, 0.2, 0.2, 0.7, 0.1],
                     [0.1, 0.1, 0.1, 0.1, 0.2]])
    ft = np.array([[0.95, 0.2, 0.1, 0.99, 0.9], [0.05, 0.8, 0.1, 0.01, 0.9], [0.9, 0.1, 0.05, 0.4, 0.1],
                   [0.1, 0.1, 0.1, 0.1, 0.9]])
    keep = choose_finetuned(y, base, ft)
    # 0: same F1, lower loss -> base (a tie); 1: F1 0 -> 1 -> finetuned; 2: neither calls -> base;
    # 3: F1 1.0 -> 0.67 -> base; 4: F1 0 -> 0.8, but one new false call -> base
    assert keep.tolist() == [False, True, False, False, False]


def test_labelled_pixels_are_fitted_with_the_scans_tube_voltage(evidence_setup):
    # inference takes the tube voltage from the scan's file (config_for_scan); finetuning must fit the
    # labelled pixels' evidence with the same, or its inputs differ from the ones the model later sees
    from dataclasses import replace

    from xrfcore.elements.evidence import config_for_scan
    from xrfcore.io import open_scan
    from xrfcore.labels import load_labels
    from xrfcore.model import load_model
    from xrfcore.model.evidence_finetuning import _scan_evidence_config
    from xrfcore.model.evidence_model import spec_of
    from xrfcore.model.finetuning import labelled_scan

    d = evidence_setup
    bundle = load_model(d / "evidence.keras")
    scan = open_scan(d / "scan.h5")
    scan.metadata = replace(scan.metadata, tube_kv=35.0)
    ls = labelled_scan(scan, load_labels(d / "labels.json", scan_shape=scan.shape, classes=bundle.classes))
    base = spec_of(bundle).evidence
    assert base.tube_kv != 35.0
    assert _scan_evidence_config(base, ls).tube_kv == 35.0 == config_for_scan(scan, base).tube_kv
    # a scan whose file records no tube voltage keeps the model's
    scan.metadata = replace(scan.metadata, tube_kv=None)
    assert _scan_evidence_config(base, labelled_scan(scan, ls.labelset)).tube_kv == base.tube_kv


def test_a_model_with_compressed_heads_finetunes_like_any_evidence_model(evidence_setup):
    from xrfcore.io import open_scan
    from xrfcore.labels import load_labels
    from xrfcore.model import load_model
    from xrfcore.model.bundle import save_model
    from xrfcore.model.evidence_finetuning import finetune_evidence_labelled
    from xrfcore.model.evidence_model import run_model
    from xrfcore.model.evidence_training import train_evidence_model
    from xrfcore.model.finetuning import labelled_scan

    d = evidence_setup
    bundle = load_model(d / "evidence.keras")
    # the evidence model's own trunk is the base; its two heads are kept and read a rank-4 projection
    low, _ = train_evidence_model(bundle, d / "sim.h5", seed=1, heads_from=bundle, head_rank=4, log=lambda m: None)
    low = load_model(save_model(low, d / "low.keras"))
    scan = open_scan(d / "scan.h5")
    ls = load_labels(d / "labels.json", scan_shape=scan.shape, classes=low.classes)
    new, rep = finetune_evidence_labelled(low, [labelled_scan(scan, ls)], config=_config())
    assert rep["finetuned"] == "evidence head"
    again = load_model(save_model(new, d / "low_finetuned.keras"))
    x = scan.read_rows(0, 24).reshape(-1, scan.n_channels)[:64]
    before, after = run_model(low, x, scan.calibration), run_model(again, x, scan.calibration)
    np.testing.assert_allclose(after["hidden"], before["hidden"], atol=1e-5)
    assert after["any"].shape == before["any"].shape and np.all((after["any"] >= 0) & (after["any"] <= 1))
