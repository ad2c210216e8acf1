"""Tests of region and plot-selection masks (labels.region_mask, selection_mask, box_to_rectangle)."""

import numpy as np
import pytest

from xrfcore.errors import LabelError
from xrfcore.labels import Region, box_to_rectangle, region_mask, regions_from_dicts, selection_mask


def test_region_mask_every_shape():
    rect, poly, runs, pixels = regions_from_dicts([
        {"name": "r", "shape": "rectangle", "row0": 1, "col0": 2, "row1": 3, "col1": 5},
        {"name": "p", "shape": "polygon", "vertices": [[1, 2], [1, 5], [3, 5], [3, 2]]},
        {"name": "m", "shape": "mask", "runs": [[1, 2, 5], [2, 2, 5]]},
        {"name": "d", "shape": "mask", "pixels": [[0, 0], [3, 1]]},
    ])
    expected = np.zeros((4, 6), bool)
    expected[1:3, 2:5] = True
    for region in (rect, poly, runs):
        np.testing.assert_array_equal(region_mask(region, (4, 6)), expected)
    dots = region_mask(pixels, (4, 6))
    assert dots.sum() == 2 and dots[0, 0] and dots[3, 1]
    tri = region_mask(Region("t", "polygon", {"vertices": [[0, 0], [0, 4], [4, 0]]}), (4, 4))
    # centres (r + .5, c + .5) with r + c + 1 < 4
    np.testing.assert_array_equal(tri, np.add.outer(np.arange(4), np.arange(4)) < 3)


def test_region_mask_outside_the_scan():
    with pytest.raises(LabelError, match="outside the scan"):
        region_mask(Region.rectangle("big", 0, 0, 5, 5), (4, 4))


def test_box_selection_uses_pixel_centres():
    m = selection_mask("box", [0.6, 3.4], [-0.2, 1.0], (4, 5))
    expected = np.zeros((4, 5), bool)
    expected[0:2, 1:4] = True
    np.testing.assert_array_equal(m, expected)
    assert box_to_rectangle([3.4, 0.6], [1.0, -0.2], (4, 5)) == (0, 1, 2, 4)
    # clipped to the scan
    assert box_to_rectangle([-3, 99], [2.5, 99], (4, 5)) == (3, 0, 4, 5)


def test_box_without_pixel_centre():
    with pytest.raises(LabelError, match="no pixel centre"):
        box_to_rectangle([0.2, 0.8], [0.2, 0.8], (4, 4))
    with pytest.raises(LabelError, match="no pixel centre"):
        box_to_rectangle([10, 12], [0, 1], (4, 4))


def test_lasso_selection():
    # triangle through the centres (0, 0), (0, 4), (4, 0) in (col, row) axis coordinates
    m = selection_mask("lasso", [-0.5, 4.5, -0.5], [-0.5, -0.5, 4.5], (5, 5))
    np.testing.assert_array_equal(m, np.add.outer(np.arange(5), np.arange(5)) < 4)
    assert not selection_mask("lasso", [10, 11, 10], [0, 0, 1], (5, 5)).any()


def test_selection_errors():
    with pytest.raises(LabelError, match="unknown selection kind"):
        selection_mask("circle", [0, 1], [0, 1], (3, 3))
    with pytest.raises(LabelError, match="at least 3"):
        selection_mask("lasso", [0, 1], [0, 1], (3, 3))
    with pytest.raises(LabelError, match="as many"):
        selection_mask("box", [0, 1], [0], (3, 3))
