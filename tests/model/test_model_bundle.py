"""ModelBundle: .keras round trip with metadata, safe loading, compatibility checks."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from xrfcore.errors import CalibrationError, ModelError  # noqa: E402
from xrfcore.model.architecture import build_model  # noqa: E402
from xrfcore.model.bundle import (  # noqa: E402
    METADATA_ENTRY,
    ModelBundle,
    check_compatible,
    default_model_path,
    load_model,
    save_model,
)
from xrfcore.model.predict import predict_preprocessed, predict_spectra  # noqa: E402
from xrfcore.scan import EnergyCalibration, Scan  # noqa: E402

from model_synth import CLASSES, TINY_MODEL  # noqa: E402


@pytest.fixture()
def bundle(tiny_config):
    keras.utils.set_random_seed(3)
    model = build_model(tiny_config.grid.n_channels, len(CLASSES), **TINY_MODEL)
    model.compile(optimizer="adam", loss="binary_crossentropy")
    return ModelBundle(
        model=model,
        classes=CLASSES,
        class_names=["cobalt blue", "zinc white", "vermilion", "lead white"],
        preprocess=tiny_config,
        metadata={"training": {"n_spectra": 10, "val_loss": float("nan")}, "library_version": np.int64(1),
                  "lineage": [{"step": "pretrain"}]},
    )


def test_round_trip_metadata_and_predictions(bundle, tmp_path, sim_data):
    X = sim_data[0][:50]
    before = predict_preprocessed(bundle.model, X)
    path = save_model(bundle, tmp_path / "m.keras")
    assert list(tmp_path.iterdir()) == [path]  # one file, no temporary left
    assert bundle.sha256 and len(bundle.sha256) == 64
    loaded = load_model(path)
    assert loaded.classes == CLASSES
    assert loaded.class_names[2] == "vermilion"
    assert loaded.preprocess == bundle.preprocess
    assert loaded.metadata["lineage"] == [{"step": "pretrain"}]
    assert loaded.metadata["training"]["val_loss"] is None  # NaN stored as null, JSON stays strict
    assert loaded.metadata["library_version"] == 1
    assert "created" in loaded.metadata
    assert loaded.sha256 == bundle.sha256
    np.testing.assert_array_equal(predict_preprocessed(loaded.model, X), before)
    # the file is still a plain Keras archive
    plain = keras.saving.load_model(path, safe_mode=True, compile=False)
    np.testing.assert_allclose(np.asarray(plain(X[:5, :, None])), before[:5], atol=1e-6)
    with zipfile.ZipFile(path) as zf:
        meta = json.loads(zf.read(METADATA_ENTRY))
    assert meta["preprocess"]["grid"]["n_channels"] == 256


def test_predict_methods_agree(bundle, sim_path, tiny_config):
    import h5py

    with h5py.File(sim_path) as f:
        raw, cal = f["spectra"][:37], f["calibration"][0]
    calibration = EnergyCalibration(*map(float, cal))
    ref = predict_spectra(bundle, raw, calibration, batch_size=16, method="predict")
    for method in ("xla", "call"):
        got = predict_spectra(bundle, raw, calibration, batch_size=16, method=method)
        assert got.shape == (37, 4) and got.dtype == np.float32
        np.testing.assert_allclose(got, ref, atol=1e-5)


def test_lambda_layer_refused(tmp_path):
    inp = keras.Input((8, 1))
    out = keras.layers.Lambda(lambda t: t * 2)(inp)
    path = tmp_path / "evil.keras"
    keras.Model(inp, out).save(path)
    with pytest.raises(ModelError, match="'Lambda' layer .* can run arbitrary code"):
        load_model(path)


def test_corrupt_and_missing_refused(bundle, tmp_path):
    path = save_model(bundle, tmp_path / "m.keras")
    data = path.read_bytes()
    bad = tmp_path / "bad.keras"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelError, match="truncated or corrupt"):
        load_model(bad)
    with pytest.raises(ModelError, match="does not exist"):
        load_model(tmp_path / "nope.keras")
    with pytest.raises(ModelError, match="must end in .keras"):
        save_model(bundle, tmp_path / "m.h5")


def test_plain_keras_without_metadata_refused(tmp_path):
    path = tmp_path / "plain.keras"
    build_model(64, 2, filters=(2,), kernel_sizes=(3,), post_conv=None).save(path)
    with pytest.raises(ModelError, match="without xrf_metadata.json"):
        load_model(path)


def test_default_model_path_env(monkeypatch, tmp_path):
    monkeypatch.delenv("XRF_DEFAULT_MODEL", raising=False)
    assert default_model_path().parts[-2:] == ("models", "default.keras")
    monkeypatch.setenv("XRF_DEFAULT_MODEL", str(tmp_path / "x.keras"))
    assert default_model_path() == tmp_path / "x.keras"


def test_check_compatible(bundle):
    ok = Scan.from_array(np.zeros((1, 1, 2048), np.uint32), EnergyCalibration(-0.5, 0.015))
    check_compatible(bundle, ok, classes=CLASSES)
    short = Scan.from_array(np.zeros((1, 1, 512), np.uint32), EnergyCalibration(-0.5, 0.015))  # ends at 7.2 keV
    with pytest.raises(CalibrationError, match="the scan covers .* but the model needs 2.80-13.04 keV"):
        check_compatible(bundle, short)
    late = Scan.from_array(np.zeros((1, 1, 2048), np.uint32), EnergyCalibration(3.5, 0.015))
    with pytest.raises(CalibrationError, match="model needs"):
        check_compatible(bundle, late)
    with pytest.raises(ModelError, match="use a model trained .* for this pigment library"):
        check_compatible(bundle, ok, classes=["CB", "ZW"])


def test_bundle_shape_mismatch(tiny_config):
    model = build_model(128, 4, **TINY_MODEL)
    with pytest.raises(ModelError, match="takes 128 channels but the preprocessing grid has 256"):
        ModelBundle(model=model, classes=CLASSES, class_names=CLASSES, preprocess=tiny_config)


def test_shipped_models_carry_no_training_state():
    # optimizer slots of nested members once made default.keras three times its weights' size (23 MB)
    import io
    import zipfile

    import h5py

    for path in (default_model_path(), default_model_path().with_name("paper_cnn.keras")):
        with zipfile.ZipFile(path) as z:
            weights = h5py.File(io.BytesIO(z.read("model.weights.h5")), "r")
        found = []
        weights.visit(lambda name: found.append(name) if name.split("/")[-1] == "optimizer" else None)
        assert not found, (path.name, found[:3])
