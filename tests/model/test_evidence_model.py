"""Tests for the evidence-backed model: features, gate, calibration, layout, training, file round trip."""

from __future__ import annotations

import numpy as np
import pytest

from xrfcore.model.evidence_model import (FEATURE_ELEMENTS, OutputLayout, apply_gate, apply_isotonic,
                                          default_layout, expected_calibration_error, feature_names, fit_isotonic,
                                          gate_matrix, layout_targets, reliability_table)


def test_layout_targets_surface_hidden_and_groups():
    classes = ["PB", "IO", "LW", "RL", "CrG", "CrY", "VM"]
    top = np.array([[1, 0, 0, 0, 0, 0, 1], [0, 0, 1, 0, 0, 0, 0]], np.uint8)
    bottom = np.array([[0, 1, 0, 0, 0, 0, 1], [0, 0, 1, 1, 0, 0, 0]], np.uint8)
    y = layout_targets(top | bottom, top, bottom, classes)
    lay = default_layout(classes)
    sl = lay.slices()
    assert y.shape == (2, lay.n_outputs) == (2, 3 * 7 + 3)
    assert y[0, sl["groups"]].tolist() == [1, 0, 0] and y[1, sl["groups"]].tolist() == [0, 1, 0]
    # VM on top and below: not hidden (vermilion under vermilion cannot be told from thicker vermilion)
    assert y[0, sl["hidden"]].tolist() == [0, 1, 0, 0, 0, 0, 0]
    assert y[1, sl["hidden"]].tolist() == [0, 0, 0, 1, 0, 0, 0]
    assert OutputLayout.from_dict(lay.to_dict()) == lay


def test_gate_zeroes_outputs_without_their_key_elements_and_passes_unknown_ones():
    classes = ["EG", "CB"]
    lay = default_layout(classes)
    gate = gate_matrix(lay, ("Co", "Cu", "As"))
    scores = np.full((3, lay.n_outputs), 0.9, np.float32)
    z = np.array([[10, 10, 10], [10, 10, 0.5], [0.0, 10, 0.0]], np.float32)  # Co, Cu, As
    known = np.array([[1, 1, 1], [1, 1, 1], [0, 1, 0]], bool)  # row 3: Co and As outside the scan's range
    out = apply_gate(scores, z, known, gate, 3.0)
    k_eg, k_cb = lay.slices()["any"].start, lay.slices()["any"].start + 1
    assert out[0, k_eg] == pytest.approx(0.9) and out[0, k_cb] == pytest.approx(0.9)
    assert out[1, k_eg] == 0.0 and out[1, k_cb] == pytest.approx(0.9)  # EG needs As too
    assert out[2, k_eg] == pytest.approx(0.9) and out[2, k_cb] == pytest.approx(0.9)  # unknown is not absent
    from xrfcore.model.evidence_model import gate_open

    np.testing.assert_array_equal(gate_open(z, known, gate, 3.0), out > 0)


def test_isotonic_calibration_lowers_the_ece_of_overconfident_scores():
    rng = np.random.default_rng(0)
    true_p = rng.uniform(0, 1, (4000, 2))
    y = (rng.random(true_p.shape) < true_p).astype(np.uint8)
    scores = true_p ** 0.4  # overconfident for "present"
    maps = fit_isotonic(scores[:2000], y[:2000])
    cal = apply_isotonic(scores[2000:], maps)
    before = expected_calibration_error(scores[2000:], y[2000:])
    after = expected_calibration_error(cal, y[2000:])
    assert before > 0.1 and after < 0.03
    assert all(np.all(np.diff(m["y"]) >= 0) for m in maps)  # monotone
    rows = reliability_table(cal, y[2000:])
    assert sum(r["n"] for r in rows) == cal.size


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny paper CNN (untrained trunk) and an evidence head trained on 400 real simulated spectra."""
    from xrfcore.library import load_library
    from xrfcore.model.architecture import build_model
    from xrfcore.model.bundle import ModelBundle, save_model
    from xrfcore.model.evidence_training import train_evidence_model
    from xrfcore.preprocess import EnergyGrid, PreprocessConfig
    from xrfcore.simulate.dataset import SimConfig, simulate_dataset

    d = tmp_path_factory.mktemp("ev")
    data = simulate_dataset(d / "sim.h5", n=400, seed=3, workers=1, config=SimConfig(batch_size=200),
                            progress=lambda a, b: None)
    lib = load_library()
    pre = PreprocessConfig(grid=EnergyGrid(start_kev=2.8, step_kev=0.08, n_channels=340))
    cnn = build_model(340, len(lib.classes), filters=(8, 8), kernel_sizes=(5, 3), post_conv=(8, 3))
    base = ModelBundle(model=cnn, classes=list(lib.classes), class_names=list(lib.class_names), preprocess=pre)
    save_model(base, d / "base.keras")
    bundle, report = train_evidence_model(base, data, seed=1, epochs=3, log=lambda m: None)
    path = save_model(bundle, d / "evidence.keras")
    return path, report, data


def test_trained_model_round_trips_and_gives_every_head(trained):
    import h5py

    from xrfcore.model import load_model, predict_layers, predict_spectra
    from xrfcore.scan import EnergyCalibration

    import warnings

    path, report, data = trained
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        bundle = load_model(path)  # Keras safe mode: only standard layers
    # the file carries no training state (a compiled nested head made every load warn about its optimizer)
    assert not [w for w in caught if "optimizer" in str(w.message)], [str(w.message) for w in caught]
    assert set(report["test"]) == {"any", "groups", "surface", "hidden"}
    assert 0 <= report["calibration"]["any"]["ece"] < 0.2
    with h5py.File(data) as f:
        spectra, cal = f["spectra"][:64], f["calibration"][0]
    calibration = EnergyCalibration(*map(float, cal))
    heads = predict_layers(bundle, spectra, calibration)
    k = len(bundle.classes)
    assert heads["any"].shape == heads["surface"].shape == heads["hidden"].shape == (64, k)
    assert heads["groups"].shape == (64, 3)
    assert all(np.all((v >= 0) & (v <= 1)) for v in heads.values())
    np.testing.assert_allclose(predict_spectra(bundle, spectra, calibration), heads["any"])


def test_distilled_head_is_one_member_that_follows_the_ensemble(trained):
    from xrfcore.model import load_model
    from xrfcore.model.evidence_training import train_evidence_model

    path, _, data = trained
    base = load_model(path.parent / "base.keras")
    bundle, report = train_evidence_model(base, data, seed=1, epochs=3, n_heads=2, distill=True, log=lambda m: None)
    head = bundle.model.get_layer("evidence_head")
    # one member, no averaging layer: the cost of a single head at inference
    assert [layer.name for layer in head.layers if layer.name.startswith("member_")] == ["member_0"]
    assert "mean_of_heads" not in [layer.name for layer in head.layers]
    d = report["settings"]["distilled"]
    assert d["epochs_run"] >= 1
    # the student is trained on the ensemble's outputs and stays near them (0.08 after these 3 epochs)
    assert 0 <= d["test_mean_abs_diff"] < 0.15, d


def test_low_rank_heads_are_exact_where_the_features_have_that_rank_and_approximate_below():
    from xrfcore.model.evidence_training import _ensemble, _head, low_rank_members

    rng = np.random.default_rng(0)
    d, k, n_ev, n_out = 40, 6, 5, 7
    # trunk features that span a k-dimensional affine subspace of the d dimensions
    t = (rng.normal(size=(600, k)) @ rng.normal(size=(k, d)) + rng.normal(size=d)).astype(np.float32)
    e = rng.normal(size=(600, n_ev)).astype(np.float32)
    members = [_head(d, n_ev, n_out, seed=s) for s in (1, 2)]
    full = _ensemble(members, d, n_ev)
    ref = full.predict([t, e], verbose=0)
    proj, low, info = low_rank_members(members, t, k)
    assert proj.shape == (d, k) and info["rank"] == k and info["retained_variance"] == pytest.approx(1.0, abs=1e-9)
    head = _ensemble(low, d, n_ev, projection=proj)
    assert "shared_projection" in [layer.name for layer in head.layers]
    np.testing.assert_allclose(head.predict([t, e], verbose=0), ref, atol=2e-5)
    # below the features' rank the projection loses variance and the outputs move
    proj2, low2, info2 = low_rank_members(members, t, 2)
    assert info2["retained_variance"] < 0.999
    assert np.abs(_ensemble(low2, d, n_ev, projection=proj2).predict([t, e], verbose=0) - ref).max() > 1e-3
    with pytest.raises(Exception, match="head rank"):
        low_rank_members(members, t, 0)


def test_training_with_a_head_rank_saves_the_compressed_head(trained, tmp_path):
    from xrfcore.model import load_model, predict_layers
    from xrfcore.model.bundle import save_model
    from xrfcore.model.evidence_training import train_evidence_model
    from xrfcore.scan import EnergyCalibration
    import h5py

    path, _, data = trained
    base = load_model(path.parent / "base.keras")
    bundle, report = train_evidence_model(base, data, seed=1, epochs=2, n_heads=2, head_rank=8, log=lambda m: None)
    c = report["settings"]["head_compression"]
    assert c["rank"] == 8 and 0 < c["retained_variance"] <= 1 and c["test_max_abs_diff"] >= 0
    loaded = load_model(save_model(bundle, tmp_path / "low.keras"))
    head = loaded.model.get_layer("evidence_head")
    assert head.get_layer("shared_projection").get_weights()[0].shape[1] == 8
    with h5py.File(data) as f:
        spectra, cal = f["spectra"][:16], f["calibration"][0]
    heads = predict_layers(loaded, spectra, EnergyCalibration(*map(float, cal)))
    assert heads["any"].shape == (16, len(loaded.classes)) and np.all((heads["any"] >= 0) & (heads["any"] <= 1))


def test_heads_from_a_trained_model_are_compressed_without_retraining(trained):
    from xrfcore.errors import ConfigError
    from xrfcore.model import load_model
    from xrfcore.model.evidence_training import train_evidence_model

    path, _, data = trained
    base, trained_bundle = load_model(path.parent / "base.keras"), load_model(path)
    bundle, report = train_evidence_model(base, data, seed=1, heads_from=trained_bundle, head_rank=6, log=lambda m: None)
    old, new = trained_bundle.model.get_layer("evidence_head"), bundle.model.get_layer("evidence_head")
    # the trained heads' later layers are kept as they were; only their first layer now reads the projection
    for name in ("member_0", "member_1"):
        for layer in ("head_hidden", "outputs", "head_evidence"):
            for a, b in zip(old.get_layer(name).get_layer(layer).get_weights(),
                            new.get_layer(name).get_layer(layer).get_weights()):
                np.testing.assert_array_equal(a, b)
    assert report["settings"]["heads_from_sha256"] == trained_bundle.sha256
    assert report["settings"]["head_compression"]["rank"] == 6
    # another split (seed) means other training spectra: refused, not silently miscalibrated
    with pytest.raises(ConfigError, match="another training set or split"):
        train_evidence_model(base, data, seed=2, heads_from=trained_bundle, head_rank=6, log=lambda m: None)
    with pytest.raises(ConfigError, match="already read a shared projection"):
        train_evidence_model(base, data, seed=1, heads_from=bundle, head_rank=4, log=lambda m: None)


def test_compressed_heads_are_kept_whole_and_only_the_trees_outputs_change(trained):
    """--heads-from a compressed model: its head is taken as it is; without trees every output is the source's."""
    import h5py

    from xrfcore.model import load_model, predict_layers
    from xrfcore.model.evidence_model import spec_of
    from xrfcore.model.evidence_training import train_evidence_model
    from xrfcore.scan import EnergyCalibration

    path, _, data = trained
    base = load_model(path.parent / "base.keras")
    low, _ = train_evidence_model(base, data, seed=1, epochs=2, n_heads=2, head_rank=8, layer_trees=False,
                                  log=lambda m: None)
    kept, rep_kept = train_evidence_model(base, data, seed=1, heads_from=low, layer_trees=False, log=lambda m: None)
    treed, rep_treed = train_evidence_model(base, data, seed=1, heads_from=low, log=lambda m: None)
    assert rep_kept["settings"]["head_rank"] == 8 and rep_kept["settings"]["layer_trees"] is None
    assert rep_treed["settings"]["layer_trees"]["n_trees"] >= 1
    with h5py.File(data) as f:
        spectra, cal = f["spectra"][:48], f["calibration"][0]
    calibration = EnergyCalibration(*map(float, cal))
    a, b, c = (predict_layers(m, spectra, calibration) for m in (low, kept, treed))
    heads = ("any", "groups", "surface", "hidden")
    for head in heads:
        np.testing.assert_array_equal(a[head], b[head])
    # same network, same validation part: same calibration wherever the trees did not take over
    cols = list(spec_of(treed).tree_columns)
    flat_a, flat_c = (np.concatenate([p[h] for h in heads], axis=1) for p in (a, c))
    other = np.setdiff1d(np.arange(flat_a.shape[1]), cols)
    np.testing.assert_array_equal(flat_a[:, other], flat_c[:, other])
    assert np.abs(flat_a[:, cols] - flat_c[:, cols]).max() > 0
    # trees that also learned from thinned copies (short dwells): other trees, the network's outputs unchanged
    thin, rep_thin = train_evidence_model(base, data, seed=1, heads_from=low, tree_thinning=(0.1, 0.5),
                                          log=lambda m: None)
    assert rep_thin["settings"]["layer_trees"]["thinned_copies"] == [0.1, 0.5]
    d = predict_layers(thin, spectra, calibration)
    np.testing.assert_array_equal(a["any"], d["any"])
    assert not np.array_equal(spec_of(thin).trees.leaf, spec_of(treed).trees.leaf)
    # trees that also learned from a second simulated set: more rows for the trees only
    from xrfcore.simulate.dataset import SimConfig, simulate_dataset

    more = simulate_dataset(path.parent / "more.h5", n=200, seed=4, workers=1, config=SimConfig(batch_size=200),
                            progress=lambda a, b: None)
    wide, rep_wide = train_evidence_model(base, data, seed=1, heads_from=low, tree_data=(more,), log=lambda m: None)
    trees_wide = rep_wide["settings"]["layer_trees"]
    assert trees_wide["extra_spectra"] == 200 and trees_wide["extra_data"] == ["more.h5"]
    assert wide.metadata["lineage"][-2]["tree_data"] == ["more.h5"]
    e = predict_layers(wide, spectra, calibration)
    np.testing.assert_array_equal(a["any"], e["any"])
    assert not np.array_equal(spec_of(wide).trees.leaf, spec_of(treed).trees.leaf)


def test_trees_give_the_layer_outputs_they_rank_better_and_travel_in_the_model_file(trained):
    from dataclasses import replace

    import h5py

    from xrfcore.model import load_model
    from xrfcore.model.evidence_model import gated_probabilities, model_inputs, spec_of
    from xrfcore.model.predict import predict_preprocessed
    from xrfcore.scan import EnergyCalibration

    path, report, data = trained
    bundle = load_model(path)
    spec = spec_of(bundle)
    info = report["settings"]["layer_trees"]
    sls = spec.layout.slices()
    assert spec.trees is not None and spec.trees.feature.shape[0] == info["n_trees"]
    # the trees take exactly the layer outputs where they ranked the validation part clearly better
    gain = info["min_gain"]
    better = [name for name, ap in info["validation_average_precision"].items()
              if ap["trees"] >= ap["network"] + gain]
    assert info["outputs"] == better and len(spec.tree_columns) == len(better) >= 1
    assert set(info["validation_average_precision"]) == {f"{h} {c}" for h in ("surface", "hidden")
                                                         for c in bundle.classes}
    names = {sls[h].start + k: f"{h} {c}" for h in ("surface", "hidden") for k, c in enumerate(bundle.classes)}
    assert [names[c] for c in spec.tree_columns] == better
    with h5py.File(data) as f:
        spectra, cal = f["spectra"][:40], f["calibration"][0]
    inputs, extras = model_inputs(bundle, spectra, EnergyCalibration(*map(float, cal)))
    raw = predict_preprocessed(bundle.model, inputs)
    sl = list(spec.tree_columns)
    ungated = replace(spec, calibration=None)
    with_trees = gated_probabilities(ungated, raw, extras["z"], extras["known"], features=extras["features"])
    without = gated_probabilities(replace(ungated, trees=None), raw, extras["z"], extras["known"])
    # the trees' columns are the trees' outputs, alone or averaged with the network's (gated); the others the network's
    w = np.asarray(spec.tree_weights)
    assert len(w) == len(sl) and set(w) <= {1.0, 0.5}
    assert [float(v) for v in w] == info["weights"]
    mixed = w * spec.trees.predict_proba(extras["features"]) + (1 - w) * raw[:, sl]
    expect = np.where(with_trees[:, sl] > 0, mixed, 0.0)
    np.testing.assert_allclose(with_trees[:, sl], expect, atol=1e-6)
    other = np.ones(spec.layout.n_outputs, bool)
    other[sl] = False
    np.testing.assert_array_equal(with_trees[:, other], without[:, other])
    with pytest.raises(Exception, match="need the evidence features"):
        gated_probabilities(ungated, raw, extras["z"], extras["known"])


def test_gated_outputs_sit_at_the_calibrated_not_seen_level(trained):
    """A spectrum without Co lines cannot carry a cobalt-blue call: its CB output is the calibrated value of 0."""
    from xrfcore.elements.evidence import EvidenceConfig, fit_evidence
    from xrfcore.model import load_model, predict_layers
    from xrfcore.model.evidence_model import spec_of
    from xrfcore.scan import EnergyCalibration

    path, _, _ = trained
    bundle = load_model(path)
    spec = spec_of(bundle)
    cal = EnergyCalibration(-0.5, 0.0075)
    e = cal.energies(4096)
    rng = np.random.default_rng(2)
    lam = 30 * np.exp(-e / 9) + 4000 * np.exp(-0.5 * ((e - 8.64) / 0.07) ** 2)  # zinc only
    spectra = rng.poisson(np.tile(lam, (5, 1))).astype(float)
    ev = fit_evidence(spectra, cal, EvidenceConfig())
    assert np.all(ev.significance[:, ev.column("Co")] < spec.gate_significance)
    assert np.all(ev.significance[:, ev.column("Zn")] > 5)
    heads = predict_layers(bundle, spectra, cal)
    k = list(bundle.classes).index("CB")
    level = apply_isotonic(np.zeros((1, spec.layout.n_outputs), np.float32), spec.calibration)[0]
    np.testing.assert_allclose(heads["any"][:, k], level[spec.layout.slices()["any"].start + k], atol=1e-6)


def test_feature_names_match_the_feature_vector():
    from xrfcore.elements.evidence import fit_evidence
    from xrfcore.model.evidence_model import evidence_features
    from xrfcore.scan import EnergyCalibration

    cal = EnergyCalibration(0.0, 0.01)
    spectra = np.random.default_rng(1).poisson(20.0, (4, 2000)).astype(float)  # stops at 20 keV
    feats, known = evidence_features(fit_evidence(spectra, cal))
    assert feats.shape == (4, len(feature_names()))
    assert known[:, FEATURE_ELEMENTS.index("Fe")].all()
    assert np.isfinite(feats).all()


def test_evaluate_scores_surface_and_hidden_layers(trained, tmp_path, capsys):
    from xrfcore.io import open_scan
    from xrfcore.model import load_model
    from xrfcore.model.metrics import evaluate_scan
    from xrfcore.simulate.mockup import make_mockup, write_mockup
    from xrfcore.scan import EnergyCalibration

    path, _, _ = trained
    cal = EnergyCalibration(-0.96, 0.02)
    counts, labels = make_mockup(seed=4, shape=(16, 8), calibration=cal)
    scan_path = write_mockup(tmp_path / "m.h5", counts, labels, cal, regions_out=tmp_path / "m_regions.json")
    metrics = evaluate_scan(load_model(path), open_scan(scan_path), tmp_path / "m_regions.json")
    assert {"surface", "hidden"} <= set(metrics)
    vm = metrics["hidden"]["per_pigment"]["VM"]
    # vermilion under a top layer that holds no vermilion is a hidden positive; on top it is a negative
    assert vm["support"] > 0 and metrics["surface"]["per_pigment"]["VM"]["support"] > vm["support"]
    blind = metrics["hidden_cannot_tell"]
    assert blind["VM"]["labelled_hidden"] == vm["support"] and 0 <= blind["VM"]["share_not_seen"] <= 1
    zw = blind["ZW"]  # zinc white lies under every top of the mock-up; under vermilion no Zn line gets out
    assert zw["labelled_hidden"] > 0 and zw["share_not_seen"] > 0
    from xrfcore.cli import main

    assert main(["evaluate", "--model", str(path), "--scan", str(scan_path), "--labels",
                 str(tmp_path / "m_regions.json")]) == 0
    out = capsys.readouterr().out
    assert "hidden labels where the spectrum shows no line of the pigment" in out
    assert f"ZW {100 * zw['share_not_seen']:.0f} % of {zw['labelled_hidden']}" in out


def test_layer_outputs_leave_out_undetectable_positives_only():
    from xrfcore.model.evidence_model import layout_scored

    classes = ["LW", "VM", "ZW"]
    top = np.array([[0, 1, 0], [1, 0, 0]], np.uint8)      # VM on top / LW alone
    bottom = np.array([[1, 0, 1], [0, 0, 0]], np.uint8)   # LW and ZW under the VM
    det = np.zeros((2, 2, 3), bool)
    det[0, 0, 1] = True   # the VM is seen
    det[0, 1, 0] = True   # the LW under it is seen, the ZW is not
    scored = layout_scored(top, bottom, det, classes)
    sl = default_layout(classes).slices()
    # any and groups: every entry; surface: the unseen top LW of row 2 left out; hidden: only the unseen ZW
    assert scored[:, sl["any"]].all() and scored[:, sl["groups"]].all()
    assert scored[0, sl["surface"]].tolist() == [True, True, True]
    assert scored[1, sl["surface"]].tolist() == [False, True, True]
    assert scored[0, sl["hidden"]].tolist() == [True, True, False]
    assert scored[1, sl["hidden"]].all()


def test_masked_loss_ignores_left_out_entries():
    import keras

    from xrfcore.model.evidence_training import masked_binary_crossentropy

    y = np.array([[1.0, -1.0], [0.0, -1.0]], np.float32)
    p1 = np.array([[0.9, 0.01], [0.1, 0.99]], np.float32)
    p2 = np.array([[0.9, 0.99], [0.1, 0.01]], np.float32)  # differs only in the left-out column
    l1 = keras.ops.convert_to_numpy(masked_binary_crossentropy(y, p1))
    l2 = keras.ops.convert_to_numpy(masked_binary_crossentropy(y, p2))
    np.testing.assert_allclose(l1, l2, rtol=1e-6)
    np.testing.assert_allclose(l1, -np.log(0.9) / 2, rtol=1e-5)


def test_models_saved_before_the_new_line_ratios_keep_their_features():
    from xrfcore.elements.evidence import EvidenceConfig
    from xrfcore.model.evidence_model import LEGACY_RATIOS, EvidenceModelSpec

    lay = default_layout(["LW", "VM"])
    spec = EvidenceModelSpec(evidence=EvidenceConfig(), layout=lay, feature_elements=FEATURE_ELEMENTS,
                             feature_mean=np.zeros(len(feature_names())), feature_std=np.ones(len(feature_names())),
                             gate_significance=3.0, calibration=None)
    d = spec.to_dict()
    back_new = EvidenceModelSpec.from_dict(d)
    assert back_new.ratios == spec.ratios and back_new.evidence == spec.evidence
    old = {k: v for k, v in d.items() if k != "ratio_features"}
    old["evidence"] = {k: v for k, v in d["evidence"].items() if k != "split_k"}
    n_old = len(feature_names(FEATURE_ELEMENTS, LEGACY_RATIOS))
    old["feature_mean"], old["feature_std"] = [0.0] * n_old, [1.0] * n_old
    back = EvidenceModelSpec.from_dict(old)
    assert back.ratios == LEGACY_RATIOS and back.evidence.split_k == ()
    with pytest.raises(Exception, match="feature means"):
        EvidenceModelSpec.from_dict({**old, "ratio_features": list(spec.ratios)})


def test_the_evidence_settings_of_training_are_saved_in_the_model(trained):
    """A larger systematic model error: the model's spec carries it, so a scan's evidence is fitted the same way."""
    from xrfcore.elements.evidence import EvidenceConfig
    from xrfcore.model import load_model
    from xrfcore.model.evidence_model import spec_of
    from xrfcore.model.evidence_training import train_evidence_model

    path, _, data = trained
    base = load_model(path.parent / "base.keras")
    bundle, _ = train_evidence_model(base, data, seed=1, epochs=1, n_heads=1, layer_trees=False,
                                     evidence=EvidenceConfig(systematic=0.02), log=lambda m: None)
    spec, shipped = spec_of(bundle), spec_of(load_model(path))
    assert spec.evidence.systematic == 0.02 and shipped.evidence.systematic == EvidenceConfig().systematic
    assert not np.allclose(spec.feature_mean, shipped.feature_mean)   # the significances are smaller


def test_train_evidence_refuses_to_write_over_any_of_its_inputs(tmp_path):
    from xrfcore.errors import ConfigError
    from xrfcore.workflows import train_evidence

    data = tmp_path / "sim.h5"
    data.write_bytes(b"")  # only its existence is checked before the refusal
    heads = tmp_path / "full.keras"
    with pytest.raises(ConfigError, match=r"--out .*full\.keras is the --heads-from file"):
        train_evidence(data, heads, heads_from=heads)
    with pytest.raises(ConfigError, match="is the --base file"):
        train_evidence(data, heads, base=heads)
    with pytest.raises(ConfigError, match=r"--tree-data .*nope\.h5 does not exist"):
        train_evidence(data, tmp_path / "new.keras", tree_data=[tmp_path / "nope.h5"])
    extra = tmp_path / "extra.keras"
    extra.write_bytes(b"")
    with pytest.raises(ConfigError, match="is the --tree-data file"):
        train_evidence(data, extra, tree_data=[extra])


def test_model_input_summed_from_the_fit_grid_equals_preprocessing_the_raw_counts(trained):
    import h5py

    from xrfcore.elements.evidence import fit_evidence
    from xrfcore.model import load_model
    from xrfcore.model.evidence_model import model_inputs, spec_of
    from xrfcore.preprocess import preprocess_spectra
    from xrfcore.preprocess.grid import regrid
    from xrfcore.scan import EnergyCalibration

    path, _, data = trained
    bundle = load_model(path)
    with h5py.File(data) as f:
        spectra = f["spectra"][:32]
    for calibration in (EnergyCalibration(-0.955, 0.01), EnergyCalibration(-0.9553, 0.01)):
        fine, counts = fit_evidence(spectra, calibration, spec_of(bundle).evidence, keep_rebinned=True).rebinned
        assert regrid(counts, fine, bundle.preprocess.grid) is not None  # the summed path is the one taken
        (x, feats), extras = model_inputs(bundle, spectra, calibration)
        np.testing.assert_allclose(x[..., 0], preprocess_spectra(spectra, calibration, bundle.preprocess),
                                   rtol=1e-5, atol=1e-6)
        assert extras["evidence"].rebinned is None  # the fit-grid copy is not carried into the maps


def test_thinned_evidence_is_that_of_a_shorter_dwell(trained):
    """dataset_evidence(thin=): each spectrum keeps a seeded share of its photons; photons per layer scale with it."""
    from xrfcore.model.evidence_model import feature_names
    from xrfcore.model.evidence_training import dataset_evidence

    _, _, data = trained
    full = dataset_evidence(data)
    thin = dataset_evidence(data, thin=(0.05, 0.2), seed=3)
    again = dataset_evidence(data, thin=(0.05, 0.2), seed=3)
    keep = thin["keep"]
    assert keep.shape == (full["features"].shape[0],) and keep.min() >= 0.05 and keep.max() <= 0.2
    np.testing.assert_array_equal(thin["features"], again["features"])  # seeded
    np.testing.assert_allclose(thin["layer_photons"], full["layer_photons"] * keep[:, None, None])
    col = feature_names().index("log10 total counts")
    # the fit's total counts of a thinned spectrum: the full one's times the share kept, within binomial scatter
    n_full, n_thin = 10.0 ** full["features"][:, col].astype(np.float64), 10.0 ** thin["features"][:, col]
    z = (n_thin - keep * n_full) / np.sqrt(keep * (1 - keep) * n_full)
    assert np.abs(z).max() < 5, np.abs(z).max()
    for k in ("labels", "labels_top", "labels_bottom"):
        np.testing.assert_array_equal(thin[k], full[k])
    with pytest.raises(Exception, match="thinning shares"):
        dataset_evidence(data, thin=(0.5, 0.1))


def test_the_spec_is_parsed_once_per_metadata_dict(trained):
    from dataclasses import replace

    from xrfcore.model import load_model
    from xrfcore.model.evidence_model import spec_of

    path, _, _ = trained
    bundle = load_model(path)
    spec = spec_of(bundle)
    assert spec_of(bundle) is spec  # the maps ask for it once per block
    bundle.metadata["evidence_model"] = replace(spec, gate_significance=5.0).to_dict()
    assert spec_of(bundle).gate_significance == 5.0 and spec.gate_significance == 3.0
