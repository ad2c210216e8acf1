"""Train/test splits of labelled pixels for finetuning: by region (default) or by random pixel.

Why by region: the pixels of one labelled region share their paint, thickness and neighbourhood.
A random-pixel split (the protocol of Xu et al. 2022) puts pixels of the same region in training
and test, so the test score partly measures memory of the regions. :func:`split_by_region` sends
each region wholly to training or to test; regions larger than ``block_size`` pixels in rows or
columns are first cut into ``block_size x block_size`` tiles (relative to the region's bounding
box), which become the units of the split.

Stratification (:func:`split_by_region`): units are first chosen so that every labelled pigment
is in training, rarest pigment first, but never taking the last remaining test unit of a pigment
that has at least two units (test keeps at least one region per pigment where possible); a
pigment with a single unit goes to training (it cannot be learned otherwise; it is then not
scored, and :func:`held_out_region_counts` says so). The remaining training budget
(``round(train_fraction * n_units)``) is then filled in seeded random order under the same
constraint. All arrays are flat over the labelled pixels (row-major order of
:meth:`xrfcore.labels.LabelSet.pixel_index`), so several scans can be pooled by offsetting their
region ids (:func:`pixel_groups`).

No TensorFlow here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from xrfcore.errors import LabelError
from xrfcore.model.config import FINETUNE_SPLITS

__all__ = [
    "SPLITS",
    "MIN_HELD_OUT_REGIONS",
    "Split",
    "region_blocks",
    "pixel_groups",
    "split_by_region",
    "split_pixels",
    "held_out_region_counts",
    "split_summary",
]

#: Accepted values of the ``split`` option of finetuning.
SPLITS = FINETUNE_SPLITS
#: Fewer wholly held-out regions than this per pigment make its test score a warning.
MIN_HELD_OUT_REGIONS = 3


@dataclass(frozen=True)
class Split:
    """Indices (into the flat labelled-pixel arrays) of the training and test pixels.

    Attributes
    ----------
    train, test : (n_train,), (n_test,) int64, sorted
    kind : {"regions", "pixels"}
    n_units_train, n_units_test : int
        Units (regions or blocks) on each side; for a pixel split, pixels.
    """

    train: np.ndarray
    test: np.ndarray
    kind: str
    n_units_train: int
    n_units_test: int

    def masks(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Boolean ``(n,)`` masks of the training and test pixels."""
        tr = np.zeros(n, bool)
        te = np.zeros(n, bool)
        tr[self.train] = True
        te[self.test] = True
        return tr, te


def region_blocks(region_index: np.ndarray, *, block_size: int = 16) -> np.ndarray:
    """Cut regions larger than ``block_size`` into tiles: unit index ``(H, W)`` int32, -1 unlabelled.

    Parameters
    ----------
    region_index : (H, W) int array
        Region of each pixel, -1 where unlabelled (:attr:`xrfcore.labels.LabelSet.region_index`).
    block_size : int
        Tile side in pixels; a region whose bounding box exceeds it in rows or columns is cut on a
        ``block_size`` grid anchored at its bounding box's top-left corner.

    Returns
    -------
    (H, W) int32
        Unit ids ``0..n_units-1`` (regions in order, tiles in row-major order within a region).

    Examples
    --------
    >>> idx = np.full((2, 5), -1); idx[:, :4] = 0
    >>> region_blocks(idx, block_size=2).tolist()
    [[0, 0, 1, 1, -1], [0, 0, 1, 1, -1]]
    """
    if block_size < 1:
        raise LabelError(f"block_size must be >= 1 pixel, got {block_size}")
    region_index = np.asarray(region_index)
    out = np.full(region_index.shape, -1, dtype=np.int32)
    n = 0
    for r in np.unique(region_index[region_index >= 0]):
        rows, cols = np.nonzero(region_index == r)
        tile_r = (rows - rows.min()) // block_size
        tile_c = (cols - cols.min()) // block_size
        key = tile_r * (int(tile_c.max()) + 1) + tile_c
        _, inv = np.unique(key, return_inverse=True)
        out[rows, cols] = n + inv.reshape(-1)
        n += int(inv.max()) + 1
    return out


def pixel_groups(region_indices: Sequence[np.ndarray], masks: Sequence[np.ndarray], *,
                 block_size: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """Region and unit id of every labelled pixel, pooled over scans (ids unique across scans).

    Parameters
    ----------
    region_indices : sequence of (H, W) int arrays
        One per scan (:attr:`~xrfcore.labels.LabelSet.region_index`).
    masks : sequence of (H, W) bool
        Labelled pixels of each scan; pixels are taken in row-major order, scan after scan.
    block_size : int
        See :func:`region_blocks`.

    Returns
    -------
    regions, units : (n,) int64
    """
    regions, units = [], []
    r_off = u_off = 0
    for idx, mask in zip(region_indices, masks):
        idx = np.asarray(idx)
        mask = np.asarray(mask, dtype=bool)
        if np.any(idx[mask] < 0):
            raise LabelError("a labelled pixel has no region (region_index -1 inside the mask)")
        blocks = region_blocks(np.where(mask, idx, -1), block_size=block_size)
        r, u = idx[mask].astype(np.int64), blocks[mask].astype(np.int64)
        regions.append(r + r_off)
        units.append(u + u_off)
        r_off += int(r.max(initial=-1)) + 1
        u_off += int(u.max(initial=-1)) + 1
    if not regions:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(regions), np.concatenate(units)


def _unit_labels(units: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ids, inv = np.unique(units, return_inverse=True)
    out = np.zeros((ids.size, labels.shape[1]), bool)
    np.logical_or.at(out, inv.reshape(-1), labels.astype(bool))
    return ids, out


def _assign_units(unit_labels: np.ndarray, n_target: int, rng: np.random.Generator) -> np.ndarray:
    """Boolean (U,) training assignment; see the module docstring for the rules."""
    n_units, _ = unit_labels.shape
    order = rng.permutation(n_units)
    in_train = np.zeros(n_units, bool)
    n_with = unit_labels.sum(axis=0)
    n_train_with = np.zeros_like(n_with)

    def can_take(u: int) -> bool:
        ks = unit_labels[u]
        left = n_with[ks] - n_train_with[ks] - 1  # test units left per pigment of u after taking it
        return bool(np.all((left >= 1) | (n_with[ks] < 2)))

    def take(u: int) -> None:
        in_train[u] = True
        n_train_with[unit_labels[u]] += 1

    skipped: set[int] = set()
    while True:
        uncovered = [k for k in np.argsort(n_with, kind="stable") if n_with[k] > 0 and n_train_with[k] == 0
                     and k not in skipped]
        if not uncovered:
            break
        k = int(uncovered[0])
        cands = [int(u) for u in order if not in_train[u] and unit_labels[u, k] and can_take(int(u))]
        if not cands:
            if n_with[k] == 1:
                take(int(np.flatnonzero(unit_labels[:, k])[0]))
            else:
                skipped.add(k)
            continue
        gain = [int(np.sum(unit_labels[u] & (n_train_with == 0))) for u in cands]
        take(cands[int(np.argmax(gain))])
    for u in order:
        if in_train.sum() >= n_target:
            break
        if not in_train[u] and can_take(int(u)):
            take(int(u))
    return in_train


def split_by_region(regions: np.ndarray, labels: np.ndarray, *, units: np.ndarray | None = None,
                    train_fraction: float = 0.2, seed: int = 0) -> Split:
    """Seeded, stratified split of labelled pixels by whole regions (or blocks of regions).

    Parameters
    ----------
    regions : (n,) int array
        Region id of each labelled pixel (unique across scans, see :func:`pixel_groups`).
    labels : (n, K) array of {0, 1}
        Presence labels of each pixel.
    units : (n,) int array, optional
        Unit of the split (regions cut into blocks, :func:`pixel_groups`); default ``regions``.
    train_fraction : float
        Share of the units that go to training (at least one unit stays on each side).
    seed : int

    Returns
    -------
    Split

    Raises
    ------
    LabelError
        If there are fewer than two units, or ``train_fraction`` is not in (0, 1).

    Examples
    --------
    >>> regions = np.repeat(np.arange(6), 3)
    >>> labels = np.repeat(np.eye(2, dtype=np.uint8)[[0, 0, 0, 1, 1, 1]], 3, axis=0)
    >>> s = split_by_region(regions, labels, train_fraction=0.3, seed=0)
    >>> sorted(set(regions[s.train]) & set(regions[s.test]))  # no region on both sides
    []
    >>> bool(labels[s.train].any(axis=0).all() and labels[s.test].any(axis=0).all())
    True
    """
    regions = np.asarray(regions).reshape(-1)
    labels = np.asarray(labels)
    units = regions if units is None else np.asarray(units).reshape(-1)
    if labels.ndim != 2 or labels.shape[0] != regions.size or units.size != regions.size:
        raise LabelError(f"expected regions (n,), units (n,) and labels (n, K), got {regions.shape}, "
                         f"{units.shape} and {labels.shape}")
    if not 0.0 < train_fraction < 1.0:
        raise LabelError(f"train fraction must be between 0 and 1 (exclusive), got {train_fraction}")
    ids, ulab = _unit_labels(units, labels)
    if ids.size < 2:
        raise LabelError(
            f"a region split needs at least 2 labelled regions (or blocks), got {ids.size}; draw more regions, "
            "lower the block size, or use --split pixels"
        )
    n_target = int(min(ids.size - 1, max(1, round(train_fraction * ids.size))))
    in_train = _assign_units(ulab, n_target, np.random.default_rng(seed))
    if in_train.all():
        raise LabelError(
            f"every one of the {ids.size} labelled regions is needed for training to cover each pigment, so none "
            "is left for testing; draw more regions (at least two per pigment) or use --split pixels"
        )
    train_units = ids[in_train]
    is_train = np.isin(units, train_units)
    return Split(np.flatnonzero(is_train), np.flatnonzero(~is_train), "regions", int(in_train.sum()),
                 int((~in_train).sum()))


def split_pixels(n: int, train_fraction: float, seed: int) -> Split:
    """Seeded random split of ``n`` labelled pixels (the protocol of Xu et al. 2022).

    Raises
    ------
    LabelError
        If either part would be empty or training would get fewer than 2 pixels.

    Examples
    --------
    >>> s = split_pixels(10, 0.2, 0)
    >>> s.train.size, s.test.size
    (2, 8)
    """
    if not 0.0 < train_fraction < 1.0:
        raise LabelError(f"train fraction must be between 0 and 1 (exclusive), got {train_fraction}")
    perm = np.random.default_rng(seed).permutation(n)
    n_train = int(round(n * train_fraction))
    if n_train < 2 or n - n_train < 1:
        raise LabelError(
            f"{n} labelled pixels give {n_train} training and {n - n_train} test pixels with train fraction "
            f"{train_fraction}; label more pixels (at least ~20) or change --train-fraction"
        )
    train, test = np.sort(perm[:n_train]), np.sort(perm[n_train:])
    return Split(train, test, "pixels", int(train.size), int(test.size))


def held_out_region_counts(regions: np.ndarray, labels: np.ndarray, split: Split,
                           classes: Sequence[str]) -> dict[str, int]:
    """Per pigment: how many regions holding it are *wholly* in the test part.

    A region with any training pixel (a random-pixel split, or a region cut into blocks that
    landed on both sides) does not count.

    Examples
    --------
    >>> regions = np.array([0, 0, 1, 1, 2]); labels = np.array([[1], [1], [1], [1], [0]])
    >>> held_out_region_counts(regions, labels, Split(np.array([0]), np.array([1, 2, 3, 4]), "pixels", 1, 4), ["VM"])
    {'VM': 1}
    """
    regions = np.asarray(regions).reshape(-1)
    labels = np.asarray(labels).astype(bool)
    trained = set(np.unique(regions[split.train]).tolist())
    test_regions = sorted(set(np.unique(regions[split.test]).tolist()) - trained)
    out = {}
    for k, c in enumerate(classes):
        out[str(c)] = int(sum(bool(labels[regions == r, k].any()) for r in test_regions))
    return out


def split_summary(regions: np.ndarray, labels: np.ndarray, split: Split, classes: Sequence[str], *,
                  minimum: int = MIN_HELD_OUT_REGIONS) -> dict[str, Any]:
    """What a report says about a split: sizes, held-out regions per pigment, warnings.

    Returns
    -------
    dict
        ``kind``, ``n_train_pixels``, ``n_test_pixels``, ``n_train_regions`` (regions with a training
        pixel), ``n_test_regions`` (regions wholly in test), ``held_out_regions`` (pigment -> count,
        :func:`held_out_region_counts`), ``trained_pigments`` (pigments with a training pixel) and
        ``warnings`` (list of str; one per pigment with fewer than ``minimum`` held-out regions,
        and one per labelled pigment absent from training).
    """
    regions = np.asarray(regions).reshape(-1)
    labels = np.asarray(labels).astype(bool)
    counts = held_out_region_counts(regions, labels, split, classes)
    trained_regions = set(np.unique(regions[split.train]).tolist())
    test_regions = set(np.unique(regions[split.test]).tolist()) - trained_regions
    present = labels.any(axis=0)
    in_train = labels[split.train].any(axis=0) if split.train.size else np.zeros(len(classes), bool)
    warnings = []
    few = [c for k, c in enumerate(classes) if present[k] and counts[str(c)] < minimum]
    if few:
        warnings.append(
            "fewer than {m} regions held out for {p}: their test scores rest on {n} and say little about other "
            "regions; label more regions of these pigments".format(
                m=minimum, p=", ".join(few), n=", ".join(f"{c} {counts[c]}" for c in few))
        )
    missing = [c for k, c in enumerate(classes) if present[k] and not in_train[k]]
    if missing:
        warnings.append(f"labelled but not in any training region: {', '.join(missing)} (finetuning cannot learn them)")
    return {
        "kind": split.kind,
        "n_train_pixels": int(split.train.size),
        "n_test_pixels": int(split.test.size),
        "n_train_regions": len(trained_regions),
        "n_test_regions": len(test_regions),
        "held_out_regions": counts,
        "trained_pigments": [str(c) for k, c in enumerate(classes) if in_train[k]],
        "warnings": warnings,
    }
