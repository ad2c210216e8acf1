"""Every page renders through ``streamlit.testing.v1.AppTest`` without an exception (real
xrfcore, the real demo scan, a tiny real Keras model)."""

from __future__ import annotations

import pytest

from app_helpers import PAGES, TITLES, run_page, texts


@pytest.mark.parametrize("page", PAGES)
def test_page_renders_without_exception(page, tiny_model, user_dir):
    at = run_page(page, model=tiny_model, user=user_dir)
    assert not at.exception, at.exception
    assert TITLES[page] in texts(at, "title")
    assert not texts(at, "error"), texts(at, "error")


