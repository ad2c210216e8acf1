"""The app in real Chromium: the demo's maps, a click on a map pixel, a box region."""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.browser


def test_opens_on_demo_and_shows_maps(app_server, page, expect):
    url, _ = app_server
    page.goto(url + "/maps")
    expect(page.get_by_role("heading", name="Pigment maps", exact=True)).to_be_visible()
    expect(page.get_by_text("demo mock-up")).to_be_visible()
    # the probability map and the element map(s) of the first pigment (chrome oxide green: Cr)
    expect(page.get_by_text(re.compile(r"of pixels at or above 50%"))).to_be_visible(timeout=120_000)
    expect(page.locator('[data-testid="stPlotlyChart"]').first).to_be_visible()
    assert page.locator('[data-testid="stPlotlyChart"]').count() >= 3
    assert page.locator('[data-testid="stException"]').count() == 0


def test_click_pixel_shows_its_spectrum_and_probabilities(app_server, page, expect):
    url, _ = app_server
    page.goto(url + "/inspector")
    expect(page.get_by_role("heading", name="Inspector", exact=True)).to_be_visible()
    frame = page.frame_locator("iframe[title*='plotly_events']")
    expect(frame.locator("body[data-ready='true']")).to_have_count(1, timeout=60_000)
    drag = frame.locator(".nsewdrag").first
    expect(page.get_by_text("pixel (row 32, col 32)")).to_be_visible()  # the default: the scan's centre
    box = drag.bounding_box()
    # 64 x 64 demo scan: a click at 20 % across and 75 % down is about column 12, row 47
    page.mouse.click(box["x"] + 0.2 * box["width"], box["y"] + 0.75 * box["height"])
    title = page.get_by_text(re.compile(r"^pixel \(row \d+, col \d+\)$"))
    expect(title).not_to_have_text("pixel (row 32, col 32)", timeout=30_000)
    row, col = map(int, re.findall(r"\d+", title.inner_text()))
    assert abs(row - 47) <= 2 and abs(col - 12) <= 2, (row, col)
    # wait for the rerun to finish: until then the caption of the previous view can stand beside the new one
    caption = page.get_by_text(re.compile(r"^Probabilities: CrG \d+%"))
    expect(caption).to_have_count(1, timeout=30_000)
    expect(caption).to_be_visible()
    expect(page.locator('[data-testid="stPlotlyChart"]').nth(1)).to_be_visible()  # spectrum + probability bars
    # a second click straight away (no mouse movement in between) must report its own position,
    # not the last hover position plotly remembers: about row 16, column 51
    page.mouse.click(box["x"] + 0.8 * box["width"], box["y"] + 0.25 * box["height"])
    expect(title).not_to_have_text(f"pixel (row {row}, col {col})", timeout=30_000)
    row2, col2 = map(int, re.findall(r"\d+", title.inner_text()))
    assert abs(row2 - 16) <= 2 and abs(col2 - 51) <= 2, (row2, col2)
    assert page.locator('[data-testid="stException"]').count() == 0


def test_box_region_shows_mean_spectrum(app_server, page, expect):
    url, _ = app_server
    page.goto(url + "/inspector")
    page.get_by_text("box / lasso region").click()
    expect(page.get_by_text("Drag a box (or pick the lasso")).to_be_visible()
    frame = page.frame_locator("iframe[title*='plotly_events']")
    # the map is redrawn with the selection tools, the box tool already chosen
    expect(frame.locator("button[data-title='Box Select'].active")).to_have_count(1)
    expect(frame.locator("body[data-ready='true']")).to_have_count(1)
    drag = frame.locator(".nsewdrag").first
    box = drag.bounding_box()
    # drag over about a quarter of each axis of the 64 x 64 scan: about 16 x 16 = 256 pixels
    x0, y0 = box["x"] + 0.10 * box["width"], box["y"] + 0.10 * box["height"]
    page.mouse.move(x0, y0)
    page.mouse.down()
    page.mouse.move(x0 + 0.125 * box["width"], y0 + 0.125 * box["height"], steps=5)
    page.mouse.move(x0 + 0.25 * box["width"], y0 + 0.25 * box["height"], steps=5)
    page.mouse.up()
    title = page.get_by_text(re.compile(r"^mean of \d+ pixels \(box\)$"))
    expect(title).to_be_visible(timeout=30_000)
    n = int(re.findall(r"\d+", title.inner_text())[0])
    assert 150 <= n <= 400, n
    # wait for the rerun to finish: until then the caption of the previous view can stand beside the new one
    caption = page.get_by_text(re.compile(r"^Probabilities: CrG \d+%"))
    expect(caption).to_have_count(1, timeout=30_000)
    expect(caption).to_be_visible()
