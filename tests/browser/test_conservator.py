"""What a conservator meets, in real Chromium: a .rpl + .raw upload, work kept over a reload,
maps on first launch, clicks that are never lost, boxes that cover exactly their cells, and
training straight after a simulation."""

from __future__ import annotations

import re

import numpy as np
import pytest

from helpers import MapAxes, drag, map_frame, no_exception, pixel_title

pytestmark = pytest.mark.browser


@pytest.fixture
def m6_export(tmp_path):
    """A real M6-style export: painting.rpl (Bruker calibration lines) + painting.raw, 8 x 10 x 2048."""
    from xrfcore.io.rpl import write_rpl
    from xrfcore.scan import EnergyCalibration

    counts = np.random.default_rng(3).poisson(2, (8, 10, 2048)).astype(np.uint16)
    folder = tmp_path / "export"
    folder.mkdir()
    rpl = write_rpl(folder / "painting.rpl", counts, calibration=EnergyCalibration(-0.955, 0.02), separator=" ")
    return rpl, rpl.with_suffix(".raw")


def _upload(page, expect, files) -> None:
    page.get_by_role("tab", name="Upload a file").click()
    page.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files([str(f) for f in files])


def test_first_launch_shows_a_pigment_map_without_a_click(app_server, page, expect):
    url, _ = app_server
    page.goto(url)
    expect(page.get_by_role("heading", name="Pigment maps", exact=True)).to_be_visible()
    expect(page.get_by_text(re.compile(r"of pixels at or above 50%"))).to_be_visible(timeout=120_000)
    expect(page.locator('[data-testid="stPlotlyChart"]').first).to_be_visible()
    assert re.search(r"[?&]session=[0-9a-f]{16}", page.url), page.url
    no_exception(page)


def test_upload_rpl_raw_pair_then_reload_keeps_scan_and_regions(app_server, page, expect, m6_export):
    url, user = app_server
    rpl, raw = m6_export
    page.goto(url + "/scan")
    expect(page.get_by_role("heading", name="Scan", exact=True)).to_be_visible()
    # the header alone: the message names the user's files and what to do, never a server path
    _upload(page, expect, [rpl])
    alert = page.get_by_text(re.compile(r"^painting\.rpl is the header of a \.rpl \+ \.raw pair"))
    expect(alert).to_be_visible()
    assert "painting.raw" in alert.inner_text() and str(user) not in alert.inner_text()
    # both files together open as one scan
    _upload(page, expect, [rpl, raw])
    sidebar = page.get_by_test_id("stSidebar")
    expect(sidebar.get_by_text("painting.rpl + painting.raw")).to_be_visible()
    expect(page.get_by_test_id("stMetric").filter(has_text="Rows × columns")).to_contain_text("8 × 10")
    no_exception(page)

    # a region drawn on the Finetune page
    page.get_by_test_id("stSidebarNav").get_by_text("Finetune").click()
    expect(page.get_by_role("heading", name="Finetune", exact=True)).to_be_visible()
    frame = map_frame(page, expect)
    axes = MapAxes(frame)
    assert axes.x_range == [-0.5, 9.5] and axes.y_range == [7.5, -0.5]  # the map fills the plot, row 0 on top
    drag(page, axes.point(1.7, 2.7), axes.point(4.3, 6.3))
    expect(page.get_by_text("Added region 1: rows 2–4, columns 3–6 (12 pixels)", exact=False)).to_be_visible()
    expect(frame.locator(".shapelayer path")).to_have_count(1)

    # a reload (a new session on the same URL) keeps the scan and the region
    assert "session=" in page.url
    page.reload()
    expect(page.get_by_role("heading", name="Finetune", exact=True)).to_be_visible()
    expect(page.get_by_test_id("stSidebar").get_by_text("painting.rpl + painting.raw")).to_be_visible()
    frame = map_frame(page, expect)
    expect(frame.locator(".shapelayer path")).to_have_count(1)
    no_exception(page)


def test_a_click_right_after_the_map_appears_lands_on_its_cell(app_server, page, expect):
    url, _ = app_server
    page.goto(url + "/inspector")
    frame = map_frame(page, expect)
    page.mouse.click(*MapAxes(frame).point(47, 12))  # no wait: the first moment the map listens
    expect(pixel_title(page)).to_have_text("pixel (row 47, col 12)", timeout=30_000)
    expect(page.get_by_text(re.compile(r"^Probabilities: CrG \d+%"))).to_be_visible()
    no_exception(page)


def test_four_rapid_clicks_each_land_on_their_own_cell(app_server, page, expect):
    url, _ = app_server
    page.goto(url + "/inspector")
    frame = map_frame(page, expect)
    expect(pixel_title(page)).to_have_text("pixel (row 32, col 32)")
    axes = MapAxes(frame)
    cells = [(10, 10), (20, 40), (40, 20), (55, 55)]
    for r, c in cells:  # one after the other, as fast as the browser sends them
        page.mouse.click(*axes.point(r, c))
    expect(pixel_title(page)).to_have_text("pixel (row 55, col 55)", timeout=30_000)
    recent = " ← ".join(f"({r}, {c})" for r, c in reversed(cells))
    expect(page.get_by_text(f"Recent pixels: {recent}")).to_be_visible()
    no_exception(page)


def test_a_drawn_box_covers_exactly_the_cells_under_it(app_server, page, expect):
    url, _ = app_server
    page.goto(url + "/finetune")
    expect(page.get_by_role("heading", name="Finetune", exact=True)).to_be_visible()
    frame = map_frame(page, expect)
    expect(frame.locator("button[data-title='Box Select'].active")).to_have_count(1)  # chosen already
    axes = MapAxes(frame)
    # corners at (row 19.6, col 9.7) and (row 22.4, col 20.3): centres of rows 20-22, columns 10-20
    drag(page, axes.point(19.6, 9.7), axes.point(22.4, 20.3))
    expect(page.get_by_text("Added region 1: rows 20–22, columns 10–20 (33 pixels)", exact=False)).to_be_visible()
    expect(frame.locator(".shapelayer path")).to_have_count(1)
    # the box tool is still selected: a second drag adds a second region
    expect(frame.locator("button[data-title='Box Select'].active")).to_have_count(1)
    drag(page, axes.point(40.4, 40.4), axes.point(43.6, 44.6))
    expect(page.get_by_text("Added region 2: rows 41–43, columns 41–44 (12 pixels)", exact=False)).to_be_visible()
    expect(frame.locator(".shapelayer path")).to_have_count(2)
    no_exception(page)


def test_training_straight_after_a_simulation(app_server, page, expect):
    url, user = app_server
    page.goto(url + "/library")
    expect(page.get_by_role("heading", name="Library & training", exact=True)).to_be_visible()
    start_training = page.get_by_role("button", name="Start training")
    expect(start_training).to_be_disabled()  # no dataset yet
    spectra = page.get_by_label("spectra", exact=True)
    spectra.fill("24")
    spectra.press("Enter")
    name = page.get_by_label("dataset name", exact=True)
    name.fill("browser_set")
    name.press("Enter")
    expect(spectra).to_have_value("24")
    expect(name).to_have_value("browser_set")
    page.get_by_role("button", name="Start simulation").click()
    expect(page.get_by_text(re.compile(r"^Job .*simulate.* finished\.$"))).to_be_visible(timeout=240_000)
    # the set just made is chosen and training can start at once
    expect(page.get_by_role("combobox", name="dataset", exact=True)).to_have_value("browser_set.h5")
    expect(start_training).to_be_enabled()
    for label in ("epochs", "folds"):
        box = page.get_by_label(label, exact=True)
        box.fill("1")
        box.press("Enter")
    model = page.get_by_label("model name", exact=True)
    model.fill("browser-model")
    model.press("Enter")
    expect(page.get_by_label("model name", exact=True)).to_have_value("browser-model")
    start_training.click()
    expect(page.get_by_role("button", name="Make browser-model.keras the active model")).to_be_visible(timeout=300_000)
    assert (user / "models" / "browser-model.keras").is_file()
    no_exception(page)


def test_the_finetune_map_keeps_its_zoom_when_a_region_is_added(app_server, page, expect):
    url, _ = app_server
    page.goto(url + "/finetune")
    frame = map_frame(page, expect)
    frame.locator("button[data-title='Zoom']").click()
    axes = MapAxes(frame)
    drag(page, axes.point(10, 10), axes.point(40, 40))  # zoom in on rows/columns ~10-40
    plot = frame.locator("#plot")
    expect(plot).to_have_attribute("data-zoomed", "true")  # plotly has applied the new range
    zoomed = plot.evaluate("el => el._fullLayout.xaxis.range.slice()")
    assert 8 < zoomed[0] < 12 and 38 < zoomed[1] < 42, zoomed
    frame.locator("button[data-title='Box Select']").click()
    axes = MapAxes(frame)
    drag(page, axes.point(19.6, 19.6), axes.point(22.4, 24.4))
    expect(page.get_by_text("Added region 1: rows 20–22, columns 20–24 (15 pixels)", exact=False)).to_be_visible()
    expect(frame.locator(".shapelayer path")).to_have_count(1)  # the page has re-rendered the map
    assert plot.evaluate("el => el._fullLayout.xaxis.range.slice()") == zoomed
    expect(frame.locator("button[data-title='Box Select'].active")).to_have_count(1)
    no_exception(page)
