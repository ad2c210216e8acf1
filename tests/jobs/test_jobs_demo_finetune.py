"""Issue 7 'done when': finetuning the default model on 20 % of the demo mock-up's labelled
pixels raises the mean test F1 (slow: about a minute or two of training on 2 cores)."""

from __future__ import annotations

from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[2] / "xrfcore" / "data"


@pytest.mark.slow
def test_demo_finetune_raises_mean_f1(user_dir, tmp_path):
    from xrfcore.model import default_model_path
    from xrfcore.workflows import FinetuneConfig, finetune

    assert default_model_path().exists(), f"the shipped default model is missing: {default_model_path()}"
    res = finetune(model=None, scans=[str(DATA / "demo_mockup.h5")],
                   labels=[str(DATA / "demo_mockup_regions.json")], out=str(tmp_path / "demo-ft.keras"),
                   config=FinetuneConfig(train_fraction=0.2, seed=0))
    assert res["macro_f1_after"] > res["macro_f1_before"]
    assert (tmp_path / "demo-ft.keras").exists()
