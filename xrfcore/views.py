"""The numbers the app shows about maps and regions, computed here so pages stay layout only.

Display copies of large maps (block means that keep full-resolution coordinates), colour
limits, the share of pixels above a probability threshold, and the mean spectrum and mean
probabilities of a selected region. Nothing here imports Streamlit or plotly.

Examples
--------
>>> import numpy as np
>>> cube = np.array([[[0.9, 0.1], [0.2, 0.6]]])            # (1, 2, K=2) probabilities
>>> share_above(cube, 0.5).tolist()
[0.5, 0.5]
>>> block_centres(5, 2).tolist()
[0.5, 2.5, 4.0]
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "display_factor",
    "downsample",
    "block_centres",
    "to_full_res",
    "percentile_limits",
    "share_above",
    "mean_probability",
    "region_mean",
    "pixel_view",
    "grid_channels_for",
    "PixelEvidence",
    "pixel_evidence",
]


def display_factor(shape: tuple[int, int], max_px: int = 600) -> int:
    """Integer block size so that a display copy of a ``(H, W)`` map has at most ``max_px`` cells a side."""
    return max(1, math.ceil(max(int(shape[0]), int(shape[1])) / max_px))


def downsample(image: np.ndarray, factor: int) -> np.ndarray:
    """Block mean of a ``(H, W)`` map by ``factor`` (edge blocks average only the pixels that exist).

    Returns a float32 ``(ceil(H / factor), ceil(W / factor))`` array; ``factor <= 1`` returns
    the map as float32.
    """
    image = np.asarray(image, dtype=np.float32)
    if factor <= 1:
        return image
    h, w = image.shape
    hp, wp = -(-h // factor) * factor, -(-w // factor) * factor
    padded = np.full((hp, wp), np.nan, dtype=np.float32)
    padded[:h, :w] = image
    blocks = padded.reshape(hp // factor, factor, wp // factor, factor)
    with np.errstate(invalid="ignore"):
        return np.nanmean(blocks, axis=(1, 3))


def block_centres(n: int, factor: int) -> np.ndarray:
    """Full-resolution coordinate of each display cell's centre (a partial last block: of its pixels)."""
    starts = np.arange(0, n, factor, dtype=np.float64)
    ends = np.minimum(starts + factor, n) - 1
    return (starts + ends) / 2.0


def to_full_res(value: float, n: int) -> int:
    """A clicked axis coordinate (pixel centres at integers) -> a pixel index in ``[0, n)``."""
    return int(min(max(round(float(value)), 0), n - 1))


def percentile_limits(image: np.ndarray, upper: float = 99.0) -> tuple[float, float]:
    """Colour limits ``(min(0, minimum), upper percentile)`` of a map's finite pixels (``(0, 1)`` if none)."""
    arr = np.asarray(image)
    finite = arr[np.isfinite(arr)]
    if finite.size == 0:
        return 0.0, 1.0
    lo = float(min(0.0, finite.min()))
    hi = float(np.percentile(finite, upper))
    return lo, hi if hi > lo else lo + 1.0


def share_above(cube: np.ndarray, threshold: float) -> np.ndarray:
    """Fraction of pixels (0..1) whose probability is at or above ``threshold``, per class.

    Parameters
    ----------
    cube : (H, W, K) array, probabilities 0..1
    threshold : float, 0..1
    """
    return (np.asarray(cube) >= threshold).mean(axis=(0, 1))


def mean_probability(cube: np.ndarray) -> np.ndarray:
    """Mean probability (0..1) over all pixels, per class: ``(K,)``."""
    return np.asarray(cube, dtype=np.float64).mean(axis=(0, 1))


def region_mean(scan: Any, mask: np.ndarray, *, bundle: Any = None) -> tuple[np.ndarray, np.ndarray | None, int]:
    """Mean spectrum of a region's pixels and, with a model, their mean probabilities.

    Parameters
    ----------
    scan : Scan
    mask : (n_rows, n_cols) bool array
    bundle : ModelBundle, optional

    Returns
    -------
    spectrum : (n_channels,) float64, mean counts per pixel
    probabilities : (K,) float64 or None
        Mean of the per-pixel probabilities (None without a model or an empty region).
    n : int
        Number of pixels in the region.
    """
    from xrfcore.model.predict import pixel_spectra

    spectra = pixel_spectra(scan, mask).astype(np.float64)
    n = int(spectra.shape[0])
    if n == 0:
        return np.zeros(scan.n_channels), None, 0
    probs = None
    if bundle is not None:
        from xrfcore.model import predict_spectra

        probs = np.asarray(predict_spectra(bundle, spectra, scan.calibration), dtype=np.float64).mean(axis=0)
    return spectra.mean(axis=0), probs, n


def pixel_view(scan: Any, row: int, col: int, *, bundle: Any = None) -> tuple[np.ndarray, np.ndarray | None]:
    """One pixel's spectrum (counts, ``(n_channels,)``) and, with a model, its probabilities ``(K,)``."""
    spectrum = np.asarray(scan.spectrum(int(row), int(col)))
    if bundle is None:
        return spectrum, None
    from xrfcore.model import predict_spectra

    probs = predict_spectra(bundle, spectrum.astype(np.float64)[None, :], scan.calibration)
    return spectrum, np.asarray(probs, dtype=np.float64)[0]


def grid_channels_for(top_kev: float, *, start_kev: float = 2.8, step_kev: float = 0.02,
                      max_kev: float = 30.0) -> int:
    """Channels of a model energy grid from ``start_kev`` in ``step_kev`` steps that ends inside a scan.

    The grid stops at ``min(top_kev, max_kev)`` (keV): ``top_kev`` is the scan's highest energy,
    ``max_kev`` the default grid end (30 keV, as ``xrfcore train``). At least 16 channels.

    Examples
    --------
    >>> grid_channels_for(20.0), grid_channels_for(40.96)
    (860, 1360)
    """
    stop = min(float(top_kev), float(max_kev))
    return max(16, int(math.floor((stop - start_kev) / step_kev + 1e-9)))


@dataclass
class PixelEvidence:
    """What the Inspector shows for one spectrum: the element fit beside the model's answer.

    Attributes
    ----------
    fit : SpectrumFit
        The element-evidence fit (:func:`xrfcore.elements.evidence.fit_spectrum`): counts, fitted,
        background, residual (counts) on the fit grid's ``energy_kev``, and per element
        ``net_counts``, ``sigma``, ``significance``.
    layers : dict
        :func:`xrfcore.model.predict_layers` output for the spectrum, rows taken: ``"any"`` (K,),
        ``"surface"``/``"hidden"`` (K,) or None when the model has no layer outputs; ``{}`` without a model.
    rows : list of dict
        One per pigment class: ``pigment``, ``name``, ``any``/``surface``/``hidden`` (0..1 or None) and
        ``key_elements``: list of (element, net counts, sigma, significance) of its METHOD.md key elements;
        ``seen``: every key element at or above the model's gate significance (elements outside the fit's range
        count as seen). Where a pigment is not seen it is not at the surface, and beneath it the spectrum
        cannot tell (absent, or under paint that absorbs its lines): ``verdict`` says so.
    unexplained : list of (element, significance, energy_kev)
        Significant elements (>= ``UNEXPLAINED_SIGNIFICANCE`` sigma) that no pigment of the library,
        the ground, the air or the tube explains; ``energy_kev`` is the line they are mapped with.
    """

    fit: Any
    layers: dict = field(default_factory=dict)
    rows: list = field(default_factory=list)
    unexplained: list = field(default_factory=list)


def pixel_evidence(spectrum: np.ndarray, calibration: Any, *, library: Any, bundle: Any = None,
                   tube_kv: float = 40.0, anode: str | None = "Rh", config: Any = None) -> PixelEvidence:
    """The element fit of one spectrum, and per pigment its probability beside its key elements' evidence.

    Parameters
    ----------
    spectrum : (n_channels,) array-like, counts
    calibration : EnergyCalibration
    library : PigmentLibrary
        For the key elements of each class and the elements it explains.
    bundle : ModelBundle, optional
        The pigment model; without it ``layers`` is ``{}`` and the probabilities are None.
    tube_kv : float
        Tube voltage (kV) of the scan.
    anode : str or None
        Tube anode (its scattered lines are explained).
    config : EvidenceConfig, optional
        The scan's evidence configuration (:func:`xrfcore.elements.evidence.config_for_scan`: its
        detector resolution), used for the fit and the model's evidence input, so the pixel gets the
        probabilities its maps show; default: the standard configuration with ``tube_kv`` and ``anode``.
    """
    from xrfcore.elements import principal_group
    from xrfcore.elements.evidence import fit_spectrum
    from xrfcore.elements.unexplained import (UNEXPLAINED_SIGNIFICANCE, explained_elements,
                                              unexplained_candidates)
    from xrfcore.errors import XRFError
    from xrfcore.library import key_elements

    y = np.asarray(spectrum, dtype=np.float64)
    fit = fit_spectrum(y, calibration, tube_kv=tube_kv, anode=anode, config=config)
    layers: dict = {}
    classes: list[str] = list(library.classes)
    names = dict(zip(library.classes, library.class_names))
    if bundle is not None:
        from xrfcore.model import predict_layers

        out = predict_layers(bundle, y[None, :], calibration, evidence_config=config)
        layers = {k: (None if v is None else np.asarray(v, dtype=np.float64)[0]) for k, v in out.items()}
        classes, names = list(bundle.classes), dict(zip(bundle.classes, bundle.class_names))
    gate_sigma = 3.0
    if bundle is not None:
        from xrfcore.model.evidence_model import spec_of

        spec = spec_of(bundle)
        gate_sigma = float(spec.gate_significance) if spec is not None else gate_sigma
    rows = []
    for k, cls in enumerate(classes):
        try:
            keys = key_elements(cls, library)
        except XRFError:
            keys = ()
        row = {"pigment": cls, "name": names.get(cls, cls),
               **{part: (None if layers.get(part) is None else float(layers[part][k]))
                  for part in ("any", "surface", "hidden")},
               "key_elements": [(el, fit.net_counts.get(el, float("nan")), fit.sigma.get(el, float("nan")),
                                 fit.significance.get(el, float("nan"))) for el in keys]}
        missing = [el for el, _, _, sig in row["key_elements"] if np.isfinite(sig) and sig < gate_sigma]
        row["seen"] = not missing
        row["verdict"] = ("lines seen" if not missing else
                          f"no {', '.join(missing)} line: not at the surface; beneath it, cannot tell")
        rows.append(row)
    e_top = float(fit.energy_kev[-1]) if len(fit.energy_kev) else 30.0
    unexplained = []
    for el in unexplained_candidates(fit.elements, explained_elements(library, anode=anode)):
        sig = fit.significance.get(el, 0.0)
        if np.isfinite(sig) and sig >= UNEXPLAINED_SIGNIFICANCE:
            try:
                energy = float(principal_group(el, tube_kv=tube_kv, max_energy_kev=e_top).energy_kev)
            except XRFError:
                continue
            unexplained.append((el, float(sig), energy))
    return PixelEvidence(fit=fit, layers=layers, rows=rows, unexplained=unexplained)
