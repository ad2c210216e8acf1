"""The Inspector as evidence: the pixel's element fit and residual, each pigment's probability
beside its key elements' net counts and significance."""

from __future__ import annotations

from app_helpers import run_page, texts


def test_inspector_shows_fit_and_key_element_evidence(tiny_model, user_dir):
    at = run_page("inspector", model=tiny_model, user=user_dir)
    assert not at.exception, at.exception
    assert "**Each pigment beside the evidence for its key elements**" in texts(at, "markdown")
    table = at.dataframe[-1].value
    assert len(table) == 11
    assert "P present (%)" in table.columns and "P surface (%)" not in table.columns  # the tiny model has no layers
    crg = table[table["pigment"].str.startswith("CrG")].iloc[0]
    assert crg["key elements: net counts ± σ (significance)"].startswith("Cr ")
    assert "σ)" in crg["key elements: net counts ± σ (significance)"]
    # the probabilities in the table are the ones in the caption
    caption = [c for c in texts(at, "caption") if c.startswith("Probabilities:")][0]
    assert f"CrG {crg['P present (%)'] / 100:.0%}" in caption


def test_inspector_pixel_inputs_move_the_evidence(tiny_model, user_dir):
    at = run_page("inspector", model=tiny_model, user=user_dir)
    before = at.dataframe[-1].value.copy()
    row = [n for n in at.number_input if n.label == "row"][0]
    row.set_value(5).run()
    assert "**pixel (row 5, col 32)**" in texts(at, "markdown")
    after = at.dataframe[-1].value
    assert not before.equals(after)
