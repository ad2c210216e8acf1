"""Element maps: emission-line table, ROI maps, PyMca-fitted maps, automatic identification.

PyMca5 is imported only inside the fitting functions.
"""

from xrfcore.elements.fit import FitMaps, fit_scan, fitted_maps
from xrfcore.elements.evidence import EvidenceConfig, fit_evidence, fit_spectrum, scan_evidence
from xrfcore.elements.identify import element_report, identify_elements
from xrfcore.elements.lines import (
    Line,
    LineGroup,
    candidate_elements,
    emission_lines,
    line_families,
    line_groups,
    lines_in_range,
    principal_group,
)
from xrfcore.elements.roi import detector_fwhm_kev, roi_maps

__all__ = [
    "Line",
    "LineGroup",
    "emission_lines",
    "line_groups",
    "line_families",
    "lines_in_range",
    "candidate_elements",
    "principal_group",
    "roi_maps",
    "detector_fwhm_kev",
    "FitMaps",
    "fit_scan",
    "fitted_maps",
    "element_report",
    "identify_elements",
    "EvidenceConfig",
    "fit_evidence",
    "fit_spectrum",
    "scan_evidence",
]
