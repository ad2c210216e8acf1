"""Shared AppTest helpers for the app tests."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

REPO = Path(__file__).resolve().parents[2]
PAGES = ["scan", "preprocess", "maps", "inspector", "finetune", "library", "export"]
TITLES = {"scan": "Scan", "preprocess": "Preprocess", "maps": "Pigment maps", "inspector": "Inspector",
          "finetune": "Finetune", "library": "Library & training", "export": "Export"}


def run_page(page: str, *, model: Path | None, user: Path) -> AppTest:
    """Run ``app.py`` on ``page`` with ``model`` as the active model (written to the user folder)."""
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=120)
    if model is not None:
        (user / "active_model.txt").write_text(str(model) + "\n")
    at.switch_page(f"pages/{page}.py")
    return at.run()


def texts(at: AppTest, kind: str) -> list[str]:
    """String values of all elements of one kind (``"error"``, ``"caption"``, ...)."""
    return [str(e.value) for e in getattr(at, kind)]
