"""Tests of combined_element_map: one element as is, several as the minimum of percentile-scaled maps."""

import numpy as np
import pytest

from xrfcore.errors import ConfigError
from xrfcore.maps import combined_element_map


def test_one_element_is_returned_unchanged():
    fe = np.arange(12, dtype=np.float32).reshape(3, 4)
    image, title = combined_element_map({"Fe": fe, "Pb": fe * 2}, ["Fe"])
    assert image is fe or np.array_equal(image, fe)
    assert title == "Fe intensity (counts)"


def test_two_elements_minimum_of_scaled_maps():
    rng = np.random.default_rng(1)
    cr = rng.uniform(0, 100, (8, 8))
    pb = rng.uniform(0, 1000, (8, 8))
    image, title = combined_element_map({"Cr": cr, "Pb": pb}, ["Cr", "Pb"])
    expected = np.minimum(cr / np.percentile(cr, 99), pb / np.percentile(pb, 99))
    np.testing.assert_allclose(image, expected)
    assert title == "min(Cr, Pb) / 99th percentile"
    _, title = combined_element_map({"Cr": cr, "Pb": pb}, ["Cr", "Pb"], percentile=95)
    assert title == "min(Cr, Pb) / 95th percentile"


def test_flat_map_does_not_divide_by_zero():
    image, _ = combined_element_map({"Cu": np.zeros((2, 2)), "As": np.ones((2, 2))}, ["Cu", "As"])
    assert np.isfinite(image).all() and not image.any()


def test_errors():
    with pytest.raises(ConfigError, match="no element map for Zn"):
        combined_element_map({"Fe": np.ones((2, 2))}, ["Fe", "Zn"])
    with pytest.raises(ConfigError, match="at least one"):
        combined_element_map({}, [])
