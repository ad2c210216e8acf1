"""Element maps combined for one pigment (the signal a multi-element pigment needs at once)."""

from __future__ import annotations

import numpy as np

from xrfcore.errors import ConfigError

__all__ = ["percentile_scale", "combined_element_map"]


def percentile_scale(image: np.ndarray, *, percentile: float = 99.0) -> float:
    """The value an element map is divided by to bring its ``percentile`` to 1.

    The ``percentile`` of the finite pixels; when that is not above ``min(0, minimum)`` (a
    flat or empty map), that lower value + 1 so that the division stays finite.
    """
    finite = np.asarray(image, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    if finite.size == 0:
        return 1.0
    lo = float(min(0.0, finite.min()))
    hi = float(np.percentile(finite, percentile))
    return hi if hi > lo else lo + 1.0


def combined_element_map(
    maps: dict[str, np.ndarray],
    elements: list[str],
    *,
    percentile: float = 99.0,
) -> tuple[np.ndarray, str]:
    """One map for the elements of a pigment, and its axis title.

    Parameters
    ----------
    maps : dict of str -> (H, W) ndarray
        Element maps (counts), e.g. from :func:`xrfcore.elements.roi_maps`.
    elements : list of str
        The pigment's elements (at least one, all in ``maps``).
    percentile : float
        Percentile (0..100) each map is scaled to when two or more are combined.

    Returns
    -------
    (H, W) ndarray, str
        One element: its map unchanged and ``"Fe intensity (counts)"``. Two or more: the pixelwise
        minimum of the maps, each divided by its ``percentile`` (so 1 means "as strong as the
        strongest pixels" for every element at once), and a title such as
        ``"min(Cr, Pb) / 99th percentile"``.

    Raises
    ------
    ConfigError
        If ``elements`` is empty, names an element without a map, or the maps differ in shape.
    """
    if not elements:
        raise ConfigError("combined_element_map needs at least one element; pass the pigment's elements")
    missing = [e for e in elements if e not in maps]
    if missing:
        raise ConfigError(f"no element map for {', '.join(missing)}; compute maps for {', '.join(elements)} first")
    arrays = [np.asarray(maps[e]) for e in elements]
    if len({a.shape for a in arrays}) != 1:
        raise ConfigError(f"element maps differ in shape: {[a.shape for a in arrays]}")
    if len(elements) == 1:
        return arrays[0], f"{elements[0]} intensity (counts)"
    scaled = [a / percentile_scale(a, percentile=percentile) for a in arrays]
    combined = np.minimum.reduce(scaled)
    return combined, f"min({', '.join(elements)}) / {percentile:g}th percentile"
