"""Finetuning from label files: split, before/after metrics, lineage, index, no overwrites."""

from __future__ import annotations

import json

import numpy as np
import pytest

from xrfcore.errors import LabelError, ModelError
from xrfcore.model import sidecar_path
from xrfcore.workflows import FinetuneConfig, finetune, split_pixels


def test_split_is_seeded_and_disjoint():
    tr, te = split_pixels(100, 0.2, 3)
    assert tr.size == 20 and te.size == 80
    assert not set(tr) & set(te) and set(tr) | set(te) == set(range(100))
    np.testing.assert_array_equal(tr, split_pixels(100, 0.2, 3)[0])
    assert not np.array_equal(tr, split_pixels(100, 0.2, 4)[0])
    with pytest.raises(LabelError, match=r"5 labelled pixels give 1 training and 4 test pixels"):
        split_pixels(5, 0.2, 0)
    with pytest.raises(LabelError, match="train fraction must be between 0 and 1"):
        split_pixels(100, 1.0, 0)


def test_finetune_improves_and_records_lineage(files, user_dir, tmp_path):
    from xrfcore.model import load_model
    from xrfcore.registry import list_models

    out = tmp_path / "ft.keras"
    config = FinetuneConfig(train_fraction=0.2, seed=1, stage1_epochs=60, stage2_epochs=60, batch_size=16,
                            patience=10)
    res = finetune(model=str(files["model"]), scans=[str(files["scan"])] * 2, labels=[str(files["labels"])] * 2,
                   out=str(out), config=config)
    assert res["n_train"] + res["n_test"] == 2 * 256 and res["n_train"] == round(0.2 * 512)
    assert res["macro_f1_after"] > res["macro_f1_before"]
    # vermilion and lead white are told apart after finetuning
    assert res["per_pigment_f1"]["VM"][1] > 0.9 and res["per_pigment_f1"]["LW"][1] > 0.9
    report = json.loads(sidecar_path(out, "finetune").read_text())
    assert FinetuneConfig.from_dict(report["config"]) == config
    assert set(report["before"]["per_pigment"]) == set(report["after"]["per_pigment"])
    bundle = load_model(out)
    base = load_model(files["model"])
    assert bundle.metadata["finetune"]["base_sha256"] == base.sha256
    assert bundle.metadata["finetune"]["scans"][0]["labels"] == str(files["labels"].resolve())
    assert bundle.metadata["lineage"][-1]["step"] == "finetune"
    assert bundle.metadata["finetune"]["metrics_after"]["macro"]["f1"] == pytest.approx(res["macro_f1_after"])
    assert FinetuneConfig.from_dict(bundle.metadata["finetune"]["config"]) == config
    entries = [m for m in list_models(include_default=False) if m.path == str(out.resolve())]
    assert len(entries) == 1 and entries[0].base_sha256 == base.sha256 and entries[0].sha256 == bundle.sha256


def test_refuses_to_overwrite(files, user_dir, tmp_path, monkeypatch):
    kw = dict(scans=[str(files["scan"])], labels=[str(files["labels"])],
              config=FinetuneConfig(stage1_epochs=1, stage2_epochs=0))
    before = files["model"].read_bytes()
    with pytest.raises(ModelError, match="never overwrites the base model"):
        finetune(model=str(files["model"]), out=str(files["model"]), **kw)
    monkeypatch.setenv("XRF_DEFAULT_MODEL", str(files["model"]))
    copy = tmp_path / "copy.keras"
    copy.write_bytes(before)
    with pytest.raises(ModelError, match="is the shipped default model"):
        finetune(model=str(copy), out=str(files["model"]), **kw)
    other = tmp_path / "exists.keras"
    other.write_bytes(b"x")
    with pytest.raises(ModelError, match="already exists"):
        finetune(model=str(files["model"]), out=str(other), **kw)
    assert files["model"].read_bytes() == before
    with pytest.raises(LabelError, match=r"one label file per scan: got 2 scan\(s\) and 1"):
        finetune(model=str(files["model"]), out=str(tmp_path / "n.keras"),
                 scans=[str(files["scan"])] * 2, labels=[str(files["labels"])])


def test_cli_finetune(files, user_dir, tmp_path, capsys):
    from xrfcore.cli import main

    out = tmp_path / "cli.keras"
    code = main(["finetune", "--model", str(files["model"]), "--scan", str(files["scan"]), "--labels",
                 str(files["labels"]), "--out", str(out), "--stage1-epochs", "2", "--stage2-epochs", "1",
                 "--seed", "2"])
    text = capsys.readouterr().out
    assert code == 0 and out.exists()
    assert "BEFORE finetuning" in text and "AFTER finetuning" in text and "VM" in text
    assert "test pixels: 205, training pixels: 51" in text
    code = main(["finetune", "--model", str(files["model"]), "--scan", str(files["scan"]), "--labels",
                 str(files["labels"]), "--out", str(out)])
    assert code == 2 and "already exists" in capsys.readouterr().err
