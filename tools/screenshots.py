"""Take PNG screenshots of the app's main pages for the README (docs/screenshots/*.png).

Starts ``streamlit run app.py`` on a free port with a private user folder, opens each page in
headless Chromium (Debian's ``/usr/bin/chromium``) and saves a screenshot. The app opens on the
pigment maps of the built-in demo scan; the model is ``--model`` (default: the shipped default model).

Example::

    python3 tools/screenshots.py --out docs/screenshots
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
#: (url path, file name, text that shows the page is ready)
PAGES = [
    ("", "maps", "of pixels at or above"),
    ("scan", "scan", "Elements found:"),
    ("preprocess", "preprocess", "Pipeline:"),
    ("inspector", "inspector", "Probabilities:"),
    ("finetune", "finetune", "1. Labelled regions"),
    ("library", "library", "Pigment library"),
    ("export", "export", "XRF Pigment Explorer report"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_server(user: Path, model: Path | None = None) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    env = {**os.environ, "XRF_USER_DIR": str(user), "TF_CPP_MIN_LOG_LEVEL": "2"}
    if model is not None:
        env["XRF_DEFAULT_MODEL"] = str(Path(model).resolve())
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
                             "--server.port", str(port)], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
                if r.read().strip() == b"ok":
                    return proc, url
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise SystemExit("the streamlit server did not start")


def take(out: Path, model: Path | None) -> list[Path]:
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    written = []
    with tempfile.TemporaryDirectory() as d:
        user = Path(d)
        if model is not None:
            (user / "active_model.txt").write_text(str(Path(model).resolve()) + "\n")
        proc, url = _start_server(user, model)
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
                page = browser.new_page(viewport={"width": 1400, "height": 950})
                page.set_default_timeout(180_000)
                for path, name, ready in PAGES:
                    page.goto(f"{url}/{path}")
                    page.get_by_text(re.compile(re.escape(ready))).first.wait_for()
                    if name == "inspector":
                        frame = page.frame_locator("iframe[title*='plotly_events']")
                        frame.locator("body[data-ready='true']").wait_for(state="attached")
                        drag = frame.locator(".nsewdrag").first
                        box = drag.bounding_box()
                        page.mouse.click(box["x"] + 0.3 * box["width"], box["y"] + 0.2 * box["height"])
                        page.get_by_text("Each pigment beside the evidence").first.wait_for()
                        page.mouse.move(5, 5)  # no hover label in the picture
                    if name == "finetune":
                        page.get_by_role("button", name="Load the demo's regions").click()
                        page.wait_for_timeout(2000)
                    page.wait_for_timeout(2500)  # let plotly finish drawing
                    target = out / f"{name}.png"
                    page.screenshot(path=str(target), full_page=True)
                    written.append(target)
                    print(target)
                browser.close()
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    return written


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "screenshots")
    ap.add_argument("--model", type=Path, default=None, help="model file to make active (default: the shipped one)")
    args = ap.parse_args(argv)
    take(args.out, args.model)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
