"""Fixtures for browser tests: a running app server (tiny real model active) and headless Chromium."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def app_server(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path):
    """``streamlit run app.py`` on a free port with its own user folder and a tiny active model.

    Yields ``(base_url, user_dir)``.
    """
    user = tmp_path_factory.mktemp("browser_user")
    (user / "active_model.txt").write_text(str(tiny_model) + "\n")
    port = _free_port()
    # the tiny model is what new sessions start with, however the installed xrfcore resolves it
    env = {**os.environ, "XRF_USER_DIR": str(user), "TF_CPP_MIN_LOG_LEVEL": "2", "XRF_DEFAULT_MODEL": str(tiny_model)}
    env.pop("XRF_DEFAULT_SCAN", None)
    log = open(user / "server.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true", "--server.port", str(port),
         "--browser.gatherUsageStats", "false"],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
                if r.read().strip() == b"ok":
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"streamlit server did not become healthy; log:\n{(user / 'server.log').read_text()}")
        time.sleep(0.3)
    try:
        yield url, user
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import expect, sync_playwright

    # the app server shares 2 cores with other work: first renders (TensorFlow start) can take a while
    expect.set_options(timeout=60_000)

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = context.new_page()
    pg.set_default_timeout(60_000)
    yield pg
    context.close()


@pytest.fixture
def expect():
    """Playwright's ``expect`` (auto-waiting assertions), imported only when a browser test runs."""
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect
