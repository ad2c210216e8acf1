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
        set_server_default(model, user)
    at.switch_page(f"pages/{page}.py")
    return at.run()


def set_server_default(model: Path, user: Path) -> None:
    """Make ``model`` the model new sessions of the user folder ``user`` start with."""
    (user / "active_model.txt").write_text(str(model) + "\n")
    try:
        from xrfcore.active_model import set_server_default_model
    except ImportError:
        return
    set_server_default_model(model)


def default_model_of(user: Path) -> Path:
    """The model new sessions start with (as the app's sidebar resolves it)."""
    try:
        from xrfcore.active_model import server_default_model
    except ImportError:
        return Path((user / "active_model.txt").read_text().strip())
    return Path(server_default_model())


def texts(at: AppTest, kind: str) -> list[str]:
    """String values of all elements of one kind (``"error"``, ``"caption"``, ...)."""
    return [str(e.value) for e in getattr(at, kind)]
