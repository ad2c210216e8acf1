"""Automatic element identification, built on the element-evidence fit (:mod:`xrfcore.elements.evidence`).

An element is identified when its lines are significant in the fit of the scan's pixels or of its
sum spectrum. Every artefact the fit models is explained rather than reported: the anode's
Rayleigh and Compton peaks, Si escape peaks (inside each line template), sum peaks (the pile-up
template) and the smooth background. Overlaps are resolved by the joint fit (Pb La on As Ka: As
needs its own Kb; Fe Kb next to Co Ka; Hg Lb next to Br Ka).

Two tests are combined:

* pixels: the share of (up to ``max_pixels``) pixels where the element's significance is at least
  ``pixel_significance`` (the threshold of the pigment model's evidence gate, so a pigment is only
  called where its key elements count as identified); an element present in few pixels is found
  this way. A single spectrum is its own pixel (share 0 or 1);
* sum spectrum: its significance with a larger systematic model error (:data:`SUM_SYSTEMATIC`):
  with millions of counts, peak-shape mismatch, not Poisson noise, limits what the fit can claim.

The detector resolution is estimated from the sum spectrum first
(:func:`~xrfcore.elements.evidence.estimate_resolution`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from xrfcore.elements.evidence import EVIDENCE_ELEMENTS, EvidenceConfig, estimate_resolution, fit_evidence
from xrfcore.scan import EnergyCalibration, Scan

__all__ = ["PAINTING_ELEMENTS", "ElementReport", "element_report", "identify_elements"]

#: Relative model error assumed for the sum spectrum (:attr:`EvidenceConfig.systematic`).
SUM_SYSTEMATIC = 0.01
#: Significance that identifies an element in a single spectrum: the evidence gate of the pigment model
#: (:mod:`xrfcore.model.evidence_model`), whose sigmas already include the Birge ratio.
SINGLE_SPECTRUM_SIGNIFICANCE = 3.0
#: Default candidates (kept as the old name for callers): see :data:`EVIDENCE_ELEMENTS`.
PAINTING_ELEMENTS: tuple[str, ...] = EVIDENCE_ELEMENTS


@dataclass(frozen=True)
class ElementReport:
    """What identification found for one element.

    Attributes
    ----------
    element : str
    found : bool
    pixel_fraction : float
        Share of the examined pixels where the element is significant.
    sum_significance : float
        Significance in the sum spectrum, after the chi-square inflation.
    net_counts : float
        Photons of its principal family in the sum spectrum.
    """

    element: str
    found: bool
    pixel_fraction: float
    sum_significance: float
    net_counts: float


def _spectra(scan_or_spectrum, calibration, max_pixels: int):
    """(sum spectrum, pixel sample (n, C) or None, calibration, tube kV from the file or None)."""
    if isinstance(scan_or_spectrum, Scan):
        scan = scan_or_spectrum
        n_px = scan.n_rows * scan.n_cols
        total = scan.sum_spectrum()
        sample = None
        if n_px > 1:
            step = max(1, int(np.ceil(n_px / max_pixels)))
            parts = []
            for start, _, block in scan.iter_row_chunks():
                first = (-start * scan.n_cols) % step  # keep every step-th pixel of the whole scan
                parts.append(block.reshape(-1, block.shape[-1])[first::step])
            sample = np.concatenate(parts)
        return total, sample, scan.calibration, scan.metadata.tube_kv
    if calibration is None:
        raise ValueError("identify_elements needs the calibration of an array; pass calibration=")
    arr = np.asarray(scan_or_spectrum, dtype=np.float64)
    flat = arr.reshape(-1, arr.shape[-1])
    sample = flat[:: max(1, int(np.ceil(flat.shape[0] / max_pixels)))] if flat.shape[0] > 1 else None
    return flat.sum(axis=0), sample, calibration, None


def element_report(
    scan_or_spectrum: Scan | np.ndarray,
    calibration: EnergyCalibration | None = None,
    *,
    tube_kv: float | None = None,
    anode: str | None = "Rh",
    candidates: tuple[str, ...] | None = PAINTING_ELEMENTS,
    pixel_significance: float = 4.0,
    min_pixel_fraction: float = 0.05,
    sum_significance: float = 5.0,
    max_pixels: int = 8192,
    config: EvidenceConfig | None = None,
) -> tuple[list[ElementReport], EvidenceConfig]:
    """Per-element identification details and the fit configuration used (resolution estimated).

    Parameters are those of :func:`identify_elements`. ``config`` skips the resolution estimate.
    """
    total, sample, cal, file_kv = _spectra(scan_or_spectrum, calibration, max_pixels)
    kv = float(tube_kv if tube_kv is not None else (file_kv or 40.0))
    if config is None:
        elements = tuple(candidates) if candidates is not None else _all_elements()
        base = EvidenceConfig(elements=tuple(e for e in elements if e != anode), tube_kv=kv, anode=anode)
        config = estimate_resolution(total, cal, base)
    # the sum spectrum holds millions of counts: peak-shape mismatch, not Poisson noise, limits it
    ev_sum = fit_evidence(total, cal, replace(config, systematic=max(config.systematic, SUM_SYSTEMATIC)))
    z_sum = ev_sum.significance[0]
    # pixels (a single spectrum is its own pixel, tested at the pigment model's gate threshold, so that a
    # pigment is never called in a spectrum whose key elements were not identified in it)
    ev_px = fit_evidence(sample if sample is not None else total, cal, config)
    threshold = pixel_significance if sample is not None else min(pixel_significance, SINGLE_SPECTRUM_SIGNIFICANCE)
    frac = (ev_px.significance >= threshold).mean(axis=0)
    out = []
    for i, el in enumerate(ev_sum.elements):
        found = bool(frac[i] >= min_pixel_fraction or z_sum[i] >= sum_significance)
        out.append(ElementReport(el, found, float(frac[i]), float(z_sum[i]), float(ev_sum.net_counts[0, i])))
    return out, config


def _all_elements() -> tuple[str, ...]:
    from xrfcore.elements.lines import ELEMENT_RANGE, element_symbol

    return tuple(element_symbol(z) for z in range(max(ELEMENT_RANGE[0], 15), ELEMENT_RANGE[1] + 1))


def identify_elements(
    scan_or_spectrum: Scan | np.ndarray,
    calibration: EnergyCalibration | None = None,
    *,
    tube_kv: float | None = None,
    anode: str | None = "Rh",
    candidates: tuple[str, ...] | None = PAINTING_ELEMENTS,
    pixel_significance: float = 4.0,
    min_pixel_fraction: float = 0.05,
    sum_significance: float = 5.0,
    max_pixels: int = 8192,
) -> list[str]:
    """Elements present in a scan (or in spectra), strongest evidence first.

    Parameters
    ----------
    scan_or_spectrum : Scan or (n_channels,) / (..., n_channels) ndarray
        A scan, or spectra (one spectrum, or many that are summed and examined one by one).
    calibration : EnergyCalibration, optional
        Needed for arrays; taken from the scan otherwise.
    tube_kv : float, optional
        Tube voltage (kV); default the scan's, else 40.
    anode : str or None
        Tube anode: its scattered lines are modelled and it is never reported.
    candidates : tuple of str or None
        Elements considered (default :data:`PAINTING_ELEMENTS`); None = every element from P to U.
    pixel_significance, min_pixel_fraction : float
        An element is found if it is this significant in at least this share of the pixels.
    sum_significance : float
        ... or this significant in the sum spectrum (after chi-square inflation).
    max_pixels : int
        Pixels examined (an even sample of the scan).

    Returns
    -------
    list of str
        Element symbols, ordered by their evidence (pixel share, then sum significance).
    """
    reports, _ = element_report(scan_or_spectrum, calibration, tube_kv=tube_kv, anode=anode, candidates=candidates,
                                pixel_significance=pixel_significance, min_pixel_fraction=min_pixel_fraction,
                                sum_significance=sum_significance, max_pixels=max_pixels)
    found = [r for r in reports if r.found]
    return [r.element for r in sorted(found, key=lambda r: (-r.pixel_fraction, -r.sum_significance))]
