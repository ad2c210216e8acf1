"""Shared pytest fixtures: a private user folder for app tests, and the browser requirement.

Browser tests (``@pytest.mark.browser``) need Debian's Chromium at ``/usr/bin/chromium``. They are
skipped when it is missing, unless ``XRF_REQUIRE_BROWSER=1`` (set by ``tools/test.sh`` and CI):
then they fail, so a CI run cannot pass without having run them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
REPO = Path(__file__).resolve().parents[1]


def browser_available() -> bool:
    return CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("browser") is None or browser_available():
        return
    message = f"browser test needs Chromium at {CHROMIUM} (apt-get install chromium chromium-driver)"
    if os.environ.get("XRF_REQUIRE_BROWSER") == "1":
        pytest.fail(message + "; XRF_REQUIRE_BROWSER=1 makes this a failure", pytrace=False)
    pytest.skip(message)


@pytest.fixture
def user_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh ``XRF_USER_DIR`` (uploads, labels, models, jobs) for one test."""
    path = tmp_path / "user"
    path.mkdir()
    monkeypatch.setenv("XRF_USER_DIR", str(path))
    return path


_TINY_MODEL = """
import sys
from xrfcore.library import load_library
from xrfcore.model import ModelBundle, build_model, save_model
from xrfcore.preprocess import EnergyGrid, PreprocessConfig
lib = load_library()
cfg = PreprocessConfig(grid=EnergyGrid(start_kev=2.8, step_kev=0.08, n_channels=340))
m = build_model(340, len(lib.classes), filters=(4, 4, 4, 4, 8), kernel_sizes=(5, 3, 3, 3, 3))
save_model(ModelBundle(m, list(lib.classes), list(lib.class_names), cfg, {}), sys.argv[1])
"""


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real Keras pigment model (random weights, few filters, 340-channel grid) for app tests:
    fast to load, predict and finetune. Built in a subprocess (TensorFlow start-up stays there)."""
    path = tmp_path_factory.mktemp("models") / "tiny.keras"
    subprocess.run([sys.executable, "-c", _TINY_MODEL, str(path)], check=True, cwd=REPO, capture_output=True,
                   timeout=300)
    return path
