"""The Finetune page in real Chromium: a region drawn with box select, a tiny finetune job to completion."""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.browser


def test_finetune_job_runs_to_completion(app_server, page, expect):
    url, user = app_server
    page.goto(url + "/finetune")
    expect(page.get_by_role("heading", name="Finetune", exact=True)).to_be_visible()
    page.get_by_role("button", name="Load the demo's regions").click()
    page.get_by_role("button", name="Save label file").click()
    expect(page.get_by_text(re.compile(r"Saved \d+ regions \(\d+ labelled pixels\)"))).to_be_visible()
    for label in ("epochs, head only", "epochs, all layers"):
        box = page.get_by_label(label)
        box.fill("1")
        box.press("Enter")
        expect(box).to_have_value("1")
    page.get_by_role("button", name="Start finetuning").click()
    expect(page.get_by_text(re.compile(r"Job .*finetune.* finished"))).to_be_visible(timeout=240_000)
    expect(page.get_by_text("mean F1 on the test pixels")).to_be_visible()
    expect(page.get_by_text(re.compile(r"^[+-]\d\.\d{3} vs before$"))).to_be_visible()
    page.get_by_role("button", name=re.compile(r"Make .*-ft\.keras the active model")).click()
    expect(page.get_by_text(re.compile(r"-ft\.keras is the active model"))).to_be_visible()
    assert list((user / "models").glob("*-ft.keras"))
    assert page.locator('[data-testid="stException"]').count() == 0
