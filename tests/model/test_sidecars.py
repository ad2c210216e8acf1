"""Tests of model_sidecars: the files next to a model, found by one naming rule."""

from xrfcore.model import model_sidecars, sidecar_path


def test_only_existing_sidecars(tmp_path):
    model = tmp_path / "mine.keras"
    model.write_bytes(b"x")
    assert model_sidecars(model) == {}
    (tmp_path / "mine.report.json").write_text("{}")
    (tmp_path / "mine.finetune.json").write_text("{}")
    (tmp_path / "other.metrics.csv").write_text("")
    assert model_sidecars(model) == {"report": tmp_path / "mine.report.json",
                                     "finetune": tmp_path / "mine.finetune.json"}
    (tmp_path / "mine.curves.png").write_bytes(b"png")
    (tmp_path / "mine.metrics.csv").write_text("")
    assert set(model_sidecars(str(model))) == {"report", "finetune", "curves", "metrics_csv"}
    assert sidecar_path(model, "curves") == tmp_path / "mine.curves.png"
