"""Lines the pigment library cannot explain: elements significant in a spectrum that no pigment of the
library, the ground, the binder, the air, the tube (its anode's scattered lines) or the detector
(escape and sum peaks, both inside the evidence fit) accounts for.

A real painting holds pigments no library has (titanium or barium white, cadmium yellow, Naples
yellow ...), and a scan holds things that are not paint (a nail, a stamp, a restoration). Where such an
element is significant, the pigment probabilities of that pixel were computed by a model that never
saw it: the maps say so rather than stay silent.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

__all__ = ["AIR_ELEMENTS", "explained_elements", "unexplained_candidates", "unexplained_flags", "scan_unexplained",
           "UNEXPLAINED_SIGNIFICANCE", "summarise_unexplained"]

#: Elements of air that a scanner in air always shows (Ar K at 2.96 keV).
AIR_ELEMENTS: tuple[str, ...] = ("Ar",)
#: Significance (sigma) an unexplained element needs to be flagged at a pixel. Higher than the
#: identification threshold: a flag is a warning about a pixel, and must not cry wolf.
UNEXPLAINED_SIGNIFICANCE = 6.0


def explained_elements(library=None, *, anode: str | None = "Rh") -> frozenset[str]:
    """Elements a library's pigments (ground and binder included), the air and the tube anode account for."""
    from xrfcore.library import load_library, parse_formula

    lib = library if library is not None else load_library()
    els = {el for p in lib.pigments for el in parse_formula(p.formula)}
    return frozenset(els | set(AIR_ELEMENTS) | ({anode} if anode else set()))


def unexplained_candidates(fitted: Sequence[str], explained: Iterable[str]) -> list[str]:
    """The fitted elements that the library does not explain, in fitted order."""
    ex = set(explained)
    return [el for el in fitted if el not in ex]


def unexplained_flags(evidence, candidates: Sequence[str], *,
                      min_significance: float = UNEXPLAINED_SIGNIFICANCE) -> np.ndarray:
    """``(n, len(candidates))`` bool: candidate significant in that spectrum (False if not fitted)."""
    out = np.zeros((evidence.significance.shape[0], len(candidates)), dtype=bool)
    for i, el in enumerate(candidates):
        if el in evidence.elements:
            out[:, i] = evidence.significance[:, evidence.elements.index(el)] >= min_significance
    return out


def summarise_unexplained(elements: Sequence[str], flags: np.ndarray) -> str:
    """One line for the CLI and the app, e.g. "Sr lines in 100 % of pixels are not explained by the library (...)"."""
    if len(elements) == 0:
        return "every significant line is explained by the pigment library, the ground, the air and the tube"
    flat = np.asarray(flags).reshape(-1, len(elements)).astype(bool)
    parts = [f"{el} lines in {100 * flat[:, i].mean():.3g} % of pixels" for i, el in enumerate(elements)]
    return (", ".join(parts) + " are not explained by the library (a pigment it lacks, or not paint: "
            "add the pigment on the Library page and retrain, or read those pixels' pigment maps with care)")


def scan_unexplained(scan, library=None, *, anode: str | None = "Rh") -> list[tuple[str, float]]:
    """Identified elements of a scan that the library does not explain, with the share of pixels where
    each is significant (for the Scan page's banner, before any prediction)."""
    from xrfcore.elements.identify import element_report

    reports, _ = element_report(scan, anode=anode)
    ex = explained_elements(library, anode=anode)
    return [(r.element, r.pixel_fraction) for r in reports if r.found and r.element not in ex]
