"""The models directory and index: default listed read-only, registration, unique new paths."""

from __future__ import annotations

import json

import pytest

from xrfcore.errors import ModelError
from xrfcore.registry import (is_protected_model, list_models, models_dir, new_model_path, register_model,
                              sha256_file)


def test_user_dir_from_env(user_dir):
    assert models_dir() == user_dir / "models"


def test_register_and_list(files, user_dir, monkeypatch):
    monkeypatch.setenv("XRF_DEFAULT_MODEL", str(files["model"]))
    p = new_model_path("my model!")
    assert p.parent == user_dir / "models" and p.name == "my_model.keras"
    p.write_bytes(files["model"].read_bytes() + b"")
    entry = register_model(p, name="mine", base_sha256="abc", lineage={"scans": ["s.h5"]}, metrics={"f1": 0.9})
    assert entry.sha256 == sha256_file(p)
    models = list_models()
    assert models[0].read_only and models[0].path == str(files["model"])
    assert [m.name for m in models[1:]] == ["mine"]
    index = json.loads((user_dir / "models" / "index.json").read_text())
    assert index["models"][0]["lineage"] == {"scans": ["s.h5"]} and index["models"][0]["base_sha256"] == "abc"
    # registering the same path again updates the entry instead of duplicating it
    register_model(p, name="renamed")
    assert [m.name for m in list_models(include_default=False)] == ["renamed"]
    # a deleted model disappears from the list
    p.unlink()
    assert list_models(include_default=False) == []


def test_new_model_path_never_collides(user_dir):
    a = new_model_path("ft")
    a.write_bytes(b"1")
    b = new_model_path("ft")
    assert b.name == "ft-2.keras"
    (user_dir / "models" / "ft-2.finetune.json").write_text("{}")  # a sidecar also blocks the name
    assert new_model_path("ft").name == "ft-3.keras"


def test_default_model_is_protected(files, user_dir, monkeypatch):
    monkeypatch.setenv("XRF_DEFAULT_MODEL", str(files["model"]))
    assert is_protected_model(files["model"])
    with pytest.raises(ModelError, match="is the shipped default model"):
        register_model(files["model"])
    with pytest.raises(ModelError, match="no such model file"):
        register_model(user_dir / "missing.keras")
