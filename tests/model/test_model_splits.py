"""Splits of labelled pixels for finetuning: whole regions (blocks), stratified, seeded."""

from __future__ import annotations

import numpy as np
import pytest

from xrfcore.errors import LabelError
from xrfcore.model.splits import (held_out_region_counts, pixel_groups, region_blocks, split_by_region,
                                  split_pixels, split_summary)

CLASSES = ["A", "B", "C", "D"]


def _cells(n_regions=20, size=5, seed=0):
    """Regions of ``size`` pixels; region i holds pigment i % 4, plus D in every 10th region."""
    regions = np.repeat(np.arange(n_regions), size)
    lab = np.zeros((n_regions, 4), np.uint8)
    lab[np.arange(n_regions), np.arange(n_regions) % 3] = 1
    lab[::10, 3] = 1
    return regions, np.repeat(lab, size, axis=0)


@pytest.mark.parametrize("seed", range(5))
def test_region_split_keeps_regions_whole_and_stratifies(seed):
    regions, labels = _cells()
    s = split_by_region(regions, labels, train_fraction=0.2, seed=seed)
    assert not set(regions[s.train]) & set(regions[s.test])
    assert s.train.size + s.test.size == regions.size
    assert labels[s.train].any(axis=0).all(), "every pigment in training"
    assert labels[s.test].any(axis=0).all(), "test keeps one region per pigment (D has two regions)"
    assert s.n_units_train == 4 and s.n_units_test == 16


def test_region_split_is_seeded():
    regions, labels = _cells()
    a, b = split_by_region(regions, labels, seed=3), split_by_region(regions, labels, seed=3)
    c = split_by_region(regions, labels, seed=4)
    assert np.array_equal(a.train, b.train)
    assert not np.array_equal(a.train, c.train)


def test_pigment_with_one_region_goes_to_training_and_is_reported():
    regions, labels = _cells()
    labels[:, 3] = 0
    labels[regions == 7, 3] = 1
    s = split_by_region(regions, labels, train_fraction=0.2, seed=0)
    assert labels[s.train, 3].any()
    summary = split_summary(regions, labels, s, CLASSES)
    assert summary["held_out_regions"]["D"] == 0
    assert any("fewer than 3 regions held out" in w and "D 0" in w for w in summary["warnings"])


def test_too_few_regions_is_a_clear_error():
    with pytest.raises(LabelError, match="at least 2 labelled regions"):
        split_by_region(np.zeros(5, int), np.ones((5, 1)), seed=0)
    with pytest.raises(LabelError, match="--split pixels"):
        split_by_region(np.array([0, 0, 1, 1]), np.array([[1, 0], [1, 0], [0, 1], [0, 1]]), seed=0)


def test_large_regions_are_cut_into_blocks():
    idx = np.full((10, 40), -1)
    idx[:, :32] = 0  # 10 x 32 -> blocks of 8: 2 x 4 tiles
    idx[:6, 35:] = 1  # 6 x 5, smaller than a block: one unit
    blocks = region_blocks(idx, block_size=8)
    assert len(np.unique(blocks[idx == 0])) == 8
    assert len(np.unique(blocks[idx == 1])) == 1
    assert (blocks[idx < 0] == -1).all()
    assert (np.bincount(blocks[(idx == 0)]) > 0).all()


def test_pixel_groups_pools_scans_with_unique_ids():
    a = np.full((4, 4), -1)
    a[:2] = 0
    a[2:] = 1
    b = np.zeros((2, 2), int)
    regions, units = pixel_groups([a, b], [a >= 0, b >= 0], block_size=16)
    assert regions.tolist() == [0] * 8 + [1] * 8 + [2] * 4
    assert len(np.unique(units)) == 3


def test_pixel_split_and_held_out_counts():
    regions, labels = _cells()
    s = split_pixels(regions.size, 0.2, 0)
    assert s.kind == "pixels" and s.train.size == 20 and s.test.size == 80
    counts = held_out_region_counts(regions, labels, s, CLASSES)
    assert counts == {c: int(sum(labels[(regions == r), k].any() for r in set(regions[s.test]) - set(regions[s.train])))
                      for k, c in enumerate(CLASSES)}
    summary = split_summary(regions, labels, s, CLASSES)
    assert summary["n_test_pixels"] == 80 and summary["n_test_regions"] == len(set(regions[s.test]) - set(regions[s.train]))
    with pytest.raises(LabelError, match="label more pixels"):
        split_pixels(5, 0.2, 0)
