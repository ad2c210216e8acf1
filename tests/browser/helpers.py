"""Shared helpers for the browser tests: the click component's frame, cell positions on a map."""

from __future__ import annotations

import re

FRAME = "iframe[title*='plotly_events']"


def map_frame(page, expect, *, timeout: float = 60_000):
    """The click component's frame, once its map is drawn and listening (it reports ready)."""
    frame = page.frame_locator(FRAME)
    expect(frame.locator("body[data-ready='true']")).to_have_count(1, timeout=timeout)
    return frame


class MapAxes:
    """Screen position of axis coordinates on the component's map, from plotly's own axis ranges."""

    def __init__(self, frame) -> None:
        self.box = frame.locator(".nsewdrag").first.bounding_box()
        self.x_range, self.y_range = frame.locator("#plot").evaluate(
            "el => [el._fullLayout.xaxis.range, el._fullLayout.yaxis.range]")

    def point(self, row: float, col: float) -> tuple[float, float]:
        """(x, y) on the screen of the axis point (col, row); pixel centres are at integers."""
        (x0, x1), (y_bottom, y_top) = self.x_range, self.y_range  # plotly: range[0] at the bottom
        return (self.box["x"] + (col - x0) / (x1 - x0) * self.box["width"],
                self.box["y"] + (row - y_top) / (y_bottom - y_top) * self.box["height"])


def drag(page, start: tuple[float, float], end: tuple[float, float]) -> None:
    page.mouse.move(*start)
    page.mouse.down()
    page.mouse.move((start[0] + end[0]) / 2, (start[1] + end[1]) / 2, steps=5)
    page.mouse.move(*end, steps=5)
    page.mouse.up()


def pixel_title(page):
    """The Inspector's "pixel (row r, col c)" heading (not the plot legend)."""
    return page.get_by_test_id("stMainBlockContainer").locator("strong").filter(
        has_text=re.compile(r"^pixel \(row \d+, col \d+\)$"))


def no_exception(page) -> None:
    assert page.locator('[data-testid="stException"]').count() == 0
