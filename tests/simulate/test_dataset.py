"""Training-set sampling, the HDF5 contract, determinism and the ``simulate`` command."""

import json

import h5py
import numpy as np
import pytest

from xrfcore.cli import main
from xrfcore.errors import ConfigError
from xrfcore.library import load_library
from xrfcore.simulate.dataset import SimConfig, sample_batch, simulate_dataset

SMALL = SimConfig(n_channels=2048, batch_size=16, gain_ev=(15.0, 20.0))


def test_batch_labels_follow_the_sampled_fractions():
    lib = load_library()
    b = sample_batch(SMALL, np.random.SeedSequence(5), 40, lib)
    names = [p.abbr for p in lib.pigments]
    classes = list(lib.classes)
    for i in range(40):
        for frac, lab in ((b["params/top_fractions"][i], b["labels_top"][i]),
                          (b["params/bottom_fractions"][i], b["labels_bottom"][i])):
            present = {lib.get(names[j]).label for j in np.flatnonzero(frac > 0)}
            assert {classes[k] for k in np.flatnonzero(lab)} == present - {None}
            if frac.sum() > 0:
                assert frac.sum() == pytest.approx(1.0, abs=1e-5)
                assert frac[frac > 0].min() >= SMALL.min_fraction * 0.99
    assert np.array_equal(b["labels"], b["labels_top"] | b["labels_bottom"])
    one = b["params/n_paint_layers"] == 1
    assert one.any() and (~one).any()
    assert np.all(b["labels_bottom"][one] == 0) and np.all(b["params/bottom_um"][one] == 0)
    assert b["spectra"].dtype == np.uint32
    np.testing.assert_allclose(b["spectra"].sum(axis=1), b["params/total_counts"], rtol=0.1, atol=300)
    off, gain, _ = b["calibration"][0]
    assert off + gain * SMALL.n_channels >= 30.0


def test_file_contract_and_same_content_for_any_worker_count(tmp_path):
    a = simulate_dataset(tmp_path / "a.h5", n=40, seed=11, config=SMALL, workers=1, progress=lambda d, n: None)
    b = simulate_dataset(tmp_path / "b.h5", n=40, seed=11, config=SMALL, workers=2, progress=lambda d, n: None)
    c = simulate_dataset(tmp_path / "c.h5", n=40, seed=12, config=SMALL, workers=1, progress=lambda d, n: None)
    with h5py.File(a) as fa, h5py.File(b) as fb, h5py.File(c) as fc:
        assert fa["spectra"].shape == (40, 2048) and fa["spectra"].dtype == np.uint32
        assert fa["calibration"].shape == (40, 3)
        for key in ("labels", "labels_top", "labels_bottom"):
            assert fa[key].shape == (40, 11) and fa[key].dtype == np.uint8
        assert [x.decode() for x in fa["label_names"][:]] == list(load_library().classes)
        assert fa.attrs["seed"] == 11 and fa.attrs["library_version"] >= 1
        assert json.loads(fa.attrs["config"])["n_channels"] == 2048
        assert {"top_um", "bottom_um", "ground_um", "total_counts", "tube_kv", "top_fractions"} <= set(fa["params"])
        # three calibrations (batches of 16), varied
        assert len(np.unique(fa["calibration"][:, 1])) == 3
        for key in ("spectra", "labels", "calibration", "params/top_um", "params/tube_kv"):
            np.testing.assert_array_equal(fa[key][:], fb[key][:])
        assert not np.array_equal(fa["spectra"][:], fc["spectra"][:])


@pytest.mark.parametrize("bad, match", [
    ({"top_um": [-10, 100]}, "thickness must be >= 0"),
    ({"counts": [1e5, 1e3]}, "low <= high"),
    ({"n_pigments_p": [0.5, 0.6]}, "summing to 1"),
    ({"tube_kv": [1, 2]}, "below every useful edge"),
    ({"gain_ev": [5, 6]}, "cannot reach 30"),
    ({"colour": "red"}, "unknown simulation config keys \\['colour'\\]"),
    ({"class_weights": {"LW": 0}}, "must be a number > 0"),
    ({"class_weights": {"LW": "many"}}, "must be a number > 0"),
    ({"class_weights": {}}, "non-empty mapping"),
    ({"companions": {"RL": {"LW": 1.5}}}, "probability in \\[0, 1\\]"),
    ({"companions": {"RL": {"RL": 0.5}}}, "for another class"),
    ({"companions": {"RL": {}}}, "non-empty mapping"),
    ({"companions": ["RL", "LW"]}, "mapping class"),
])
def test_bad_config(bad, match):
    with pytest.raises(ConfigError, match=match):
        SimConfig.from_dict(bad)


def test_simulate_command(tmp_path, capsys):
    cfg = tmp_path / "sim.json"
    cfg.write_text(json.dumps({"n_channels": 2048, "batch_size": 8, "gain_ev": [15, 20]}))
    out = tmp_path / "train.h5"
    assert main(["simulate", "--out", str(out), "--n", "10", "--seed", "3", "--config", str(cfg),
                 "--workers", "1"]) == 0
    with h5py.File(out) as f:
        assert f["spectra"].shape == (10, 2048)
    assert "wrote 10 spectra" in capsys.readouterr().out
    assert main(["simulate", "--out", str(tmp_path / "x.csv"), "--n", "5"]) == 2
    assert "--out must end in .h5" in capsys.readouterr().err
    (tmp_path / "bad.json").write_text("[1, 2]")
    assert main(["simulate", "--out", str(out), "--n", "5", "--config", str(tmp_path / "bad.json")]) == 2
    assert "must hold a JSON object" in capsys.readouterr().err


def test_class_weights_set_the_prior():
    lib = load_library()
    # weights only LW up: LW is drawn far more often than RL, which shares its lines
    heavy = SimConfig(n_channels=2048, batch_size=16, gain_ev=(15.0, 20.0), class_weights={"LW": 8.0})
    b = sample_batch(heavy, np.random.SeedSequence(5), 400, lib)
    classes = list(lib.classes)
    top = b["labels_top"].mean(axis=0)
    assert top[classes.index("LW")] > 2.5 * top[classes.index("RL")]
    # uniform weights given explicitly draw the same classes as often as no weights (within noise)
    flat = sample_batch(SimConfig(n_channels=2048, batch_size=16, gain_ev=(15.0, 20.0), class_weights={"LW": 1.0}),
                        np.random.SeedSequence(5), 400, lib)["labels_top"].mean(axis=0)
    assert flat.max() - flat.min() < 0.1
    # the config (weights included) round-trips through its dict and draws the same sets
    a1 = sample_batch(SMALL, np.random.SeedSequence(5), 40, lib)
    a2 = sample_batch(SimConfig.from_dict(SMALL.to_dict()), np.random.SeedSequence(5), 40, lib)
    np.testing.assert_array_equal(a1["params/top_fractions"], a2["params/top_fractions"])
    assert SimConfig.from_dict(heavy.to_dict()) == heavy


def test_class_weights_naming_an_unknown_class_fail_before_simulating(tmp_path):
    cfg = SimConfig(n_channels=2048, batch_size=16, gain_ev=(15.0, 20.0), class_weights={"Smalt": 2.0})
    with pytest.raises(ConfigError, match="Smalt.*not classes of the pigment library"):
        simulate_dataset(tmp_path / "x.h5", n=8, seed=1, config=cfg, workers=1, progress=lambda d, n: None)
    assert not (tmp_path / "x.h5").exists()



def test_config_of_earlier_training_files_still_reads():
    """Files written while the partner-twins experiment existed record ``partner_twins_p: 0``."""
    old = {**SimConfig().to_dict(), "partner_twins_p": 0.0}
    assert SimConfig.from_dict(old) == SimConfig()
    with pytest.raises(ConfigError, match="unknown simulation config keys \\['partner_twins_p'\\]"):
        SimConfig.from_dict({"partner_twins_p": 0.5})


def test_companions_join_their_class_and_keep_the_rest_of_the_draw():
    lib = load_library()
    classes = list(lib.classes)
    rl, lw = classes.index("RL"), classes.index("LW")
    base = SimConfig(n_channels=2048, batch_size=16, gain_ev=(15.0, 20.0))
    paired = SimConfig(n_channels=2048, batch_size=16, gain_ev=(15.0, 20.0), companions={"RL": {"LW": 1.0}})
    b0 = sample_batch(base, np.random.SeedSequence(8), 300, lib)
    b1 = sample_batch(paired, np.random.SeedSequence(8), 300, lib)
    for b, want in ((b1, 1.0), (b0, None)):
        for key in ("labels_top", "labels_bottom"):
            lab = b[key]
            with_rl = lab[:, rl] == 1
            assert with_rl.sum() > 20
            share = lab[with_rl, lw].mean()
            if want is None:
                assert share < 0.6  # no companions: lead white beside red lead only by chance
            else:
                assert share == want  # every layer that holds red lead also holds lead white
    # RL is drawn as often as before, and its layers' fractions still sum to 1
    assert abs(b1["labels"][:, rl].mean() - b0["labels"][:, rl].mean()) < 0.08
    frac = b1["params/top_fractions"]
    np.testing.assert_allclose(frac.sum(axis=1), 1.0, atol=1e-5)
    assert SimConfig.from_dict(paired.to_dict()) == paired
    with pytest.raises(ConfigError, match="Smalt.*not classes of the pigment library"):
        sample_batch(SimConfig(companions={"RL": {"Smalt": 0.5}}), np.random.SeedSequence(1), 4, lib)


def test_layer_photons_say_what_each_layer_delivers(tmp_path):
    from xrfcore.model.quality import detectable
    from xrfcore.physics import library_elements

    lib = load_library()
    b = sample_batch(SMALL, np.random.SeedSequence(5), 40, lib)
    lp = b["layer_photons"]
    els = list(library_elements(lib))
    assert lp.shape == (40, 2, len(els)) and lp.dtype == np.float32 and np.all(lp >= 0)
    one = b["params/n_paint_layers"] == 1
    assert np.all(lp[one, 1] == 0)  # one paint layer: nothing "below"
    # photons of one layer's elements never exceed the counts of the spectrum
    assert np.all(lp.sum(axis=(1, 2)) <= b["params/total_counts"] * 1.001)
    # an element no pigment of the upper layer holds delivers no photons from it
    from xrfcore.simulate.dataset import pigment_matrix

    _, pm, _ = pigment_matrix(lib, tuple(els))
    held = (b["params/top_fractions"] @ pm) > 0  # (n, E)
    assert np.all(lp[:, 0][~held] == 0) and np.any(lp[:, 0][held] > 0)
    # most pigments of the upper layer show their key elements
    det = detectable(lp, els, list(lib.classes), min_photons=1.0)
    assert det[:, 0][b["labels_top"] == 1].mean() > 0.8
    path = simulate_dataset(tmp_path / "s.h5", n=16, seed=3, config=SMALL, workers=1, progress=lambda d, n: None)
    with h5py.File(path) as f:
        assert f["layer_photons"].shape == (16, 2, len(els))
        assert [x.decode() for x in f["photon_elements"][:]] == els
