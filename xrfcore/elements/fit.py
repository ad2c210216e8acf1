"""Fitted element maps: PyMca5's ``FastXRFLinearFit`` driven headless on a scan.

The fit configuration is built in code from the element list (one peak family per excitable
K/L/M shell group), with a SNIP background and the scan's own energy calibration. Every peak
family's area is a linear parameter, so overlapping lines of different elements (Pb La / As Ka,
Fe Kb / Co Ka) are separated by the other lines of each family.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from xrfcore.elements.lines import element_symbol, line_groups, principal_group
from xrfcore.errors import ConfigError
from xrfcore.scan import EnergyCalibration, Scan

__all__ = ["FitMaps", "fit_configuration", "fit_scan", "fitted_maps"]

_logger = logging.getLogger(__name__)

#: Pixels per FastXRFLinearFit call (bounds PyMca's float64 copies: 4096 px x 4096 ch = 128 MB).
DEFAULT_PIXELS_PER_CHUNK = 4096


@dataclass
class FitMaps:
    """Result of :func:`fit_scan`.

    Attributes
    ----------
    maps : dict of str -> (n_rows, n_cols) float32
        Fitted area (counts) of each element's principal family (K, or L for heavy elements).
    uncertainties : dict of str -> (n_rows, n_cols) float32
        One-sigma uncertainty of those areas, as PyMca reports it.
    families : dict of str -> str
        The PyMca group behind each map, e.g. ``{"Pb": "Pb L"}``.
    all_maps : dict of str -> (n_rows, n_cols) float32
        Every fitted group (``"Pb L"``, ``"Pb M"``, ...).
    """

    maps: dict[str, np.ndarray]
    uncertainties: dict[str, np.ndarray]
    families: dict[str, str]
    all_maps: dict[str, np.ndarray] = field(default_factory=dict)


def _families_in_range(symbol: str, tube_kv: float, e_lo: float, e_hi: float) -> list[str]:
    fams = []
    for g in line_groups(symbol, tube_kv=tube_kv):
        if g.relative_rate >= 0.05 and e_lo <= g.energy_kev <= e_hi and g.family not in fams:
            fams.append(g.family)
    return [f for f in ("K", "L", "M") if f in fams]


def fit_configuration(
    elements: list[str],
    calibration: EnergyCalibration,
    n_channels: int,
    *,
    tube_kv: float = 40.0,
    e_min_kev: float = 1.0,
    e_max_kev: float | None = None,
    snip_width_kev: float = 0.4,
    noise_kev: float = 0.1,
    fano: float = 0.114,
    escape: bool = True,
) -> dict:
    """PyMca fit configuration (a ``ConfigDict``) for a linear fit of ``elements``.

    Parameters
    ----------
    elements : list of str
    calibration : EnergyCalibration
        Scan calibration (PyMca's detector ``zero`` and ``gain``; a quadratic term is not used).
    n_channels : int
    tube_kv : float
        Tube voltage (kV): the excitation energy PyMca uses to decide which shells are excited.
    e_min_kev, e_max_kev : float
        Fit region (keV); ``e_max_kev`` defaults to ``tube_kv`` or the scan end.
    snip_width_kev : float
        SNIP background half-window (keV).
    noise_kev, fano : float
        Detector resolution (FWHM noise in keV, Fano factor): fixed in a linear fit.
    escape : bool
        Model Si escape peaks.

    Raises
    ------
    ConfigError
        If no element has a line inside the fit region.
    """
    from PyMca5.PyMcaPhysics.xrf import ClassMcaTheory

    e = calibration.energies(n_channels)
    e_hi = min(float(e[-1]), float(e_max_kev if e_max_kev is not None else tube_kv))
    e_lo = max(float(e[0]), e_min_kev)
    peaks = {}
    for el in elements:
        symbol = element_symbol(el)
        fams = _families_in_range(symbol, tube_kv, e_lo + 0.1, e_hi - 0.1)
        if fams:
            peaks[symbol] = fams if len(fams) > 1 else fams[0]
        else:
            _logger.warning("%s has no excitable line in %.2f-%.2f keV; not fitted", symbol, e_lo, e_hi)
    if not peaks:
        raise ConfigError(
            f"none of {list(elements)} has a line a {tube_kv:g} kV tube excites inside {e_lo:.2f}-{e_hi:.2f} keV; "
            "check the element list, the tube voltage and the scan calibration"
        )
    cfg = ClassMcaTheory.McaTheory().getConfiguration()
    cfg["peaks"] = peaks
    fit = cfg["fit"]
    fit["xmin"] = int(np.clip(np.ceil(calibration.channel(e_lo)), 0, n_channels - 2))
    fit["xmax"] = int(np.clip(np.floor(calibration.channel(e_hi)), fit["xmin"] + 1, n_channels - 1))
    fit["use_limit"] = 1
    fit["stripflag"] = 1
    fit["stripalgorithm"] = 1  # SNIP: the only background FastXRFLinearFit accepts
    fit["snipwidth"] = max(1, int(round(snip_width_kev / calibration.gain_kev)))
    fit["stripfilterwidth"] = 1
    fit["stripanchorsflag"] = 0
    fit["linearfitflag"] = 1
    fit["fitweight"] = 0
    fit["continuum"] = 0
    fit["hypermetflag"] = 1  # Gaussian peaks
    fit["escapeflag"] = int(escape)
    fit["sumflag"] = 0
    fit["scatterflag"] = 0
    fit["strategyflag"] = 0
    fit["energy"] = [float(tube_kv)]
    fit["energyweight"] = [1.0]
    fit["energyflag"] = [1]
    fit["energyscatter"] = [0]
    det = cfg["detector"]
    det.update(zero=calibration.offset_kev, gain=calibration.gain_kev, noise=noise_kev, fano=fano)
    det.update(fixedzero=1, fixedgain=1, fixednoise=1, fixedfano=1)
    if calibration.quadratic_kev != 0:
        _logger.warning("PyMca's linear fit uses zero + gain only; the quadratic term %g is ignored", calibration.quadratic_kev)
    return cfg


def _fitter(cfg):
    from PyMca5.PyMcaPhysics.xrf.FastXRFLinearFit import FastXRFLinearFit

    fitter = FastXRFLinearFit()
    fitter.setFitConfiguration(cfg)
    return fitter


def _fit_block(fitter, block: np.ndarray):
    """Fit one ``(r, c, C)`` block -> (labels, areas (G, r, c), sigmas (G, r, c))."""
    result = fitter.fitMultipleSpectra(y=block, weight=0, refit=1, concentrations=0, save=False)
    labels = [str(lab) for lab in result.labels("parameters")]
    areas = np.asarray(result["parameters"])
    sigmas = np.asarray(result["uncertainties"])
    return labels, areas, sigmas


def fit_scan(
    scan: Scan,
    elements: list[str],
    *,
    tube_kv: float = 40.0,
    snip_width_kev: float = 0.4,
    e_min_kev: float = 1.0,
    e_max_kev: float | None = None,
    rows_per_chunk: int | None = None,
    progress=None,
) -> FitMaps:
    """Fit every pixel of ``scan`` with PyMca's FastXRFLinearFit; see :func:`fitted_maps`.

    ``progress``, if given, is called as ``progress(rows_done, n_rows)`` after each chunk.
    """
    cfg = fit_configuration(
        elements, scan.calibration, scan.n_channels, tube_kv=tube_kv, e_min_kev=e_min_kev,
        e_max_kev=e_max_kev, snip_width_kev=snip_width_kev,
    )
    fitter = _fitter(cfg)
    rows = rows_per_chunk or max(1, DEFAULT_PIXELS_PER_CHUNK // scan.n_cols)
    labels: list[str] = []
    areas = sigmas = None
    for start, stop, block in scan.iter_row_chunks(rows):
        labels, a, s = _fit_block(fitter, block)
        if areas is None:
            areas = np.zeros((len(labels), scan.n_rows, scan.n_cols), dtype=np.float32)
            sigmas = np.zeros_like(areas)
        areas[:, start:stop] = a
        sigmas[:, start:stop] = s
        if progress is not None:
            progress(stop, scan.n_rows)
    index = {lab: i for i, lab in enumerate(labels)}
    maps, unc, fams = {}, {}, {}
    e = scan.energy_kev
    for el in elements:
        symbol = element_symbol(el)
        main = principal_group(symbol, tube_kv=tube_kv, min_energy_kev=float(e[0]), max_energy_kev=float(e[-1]))
        label = f"{symbol} {main.family}"
        if label not in index:
            candidates = [lab for lab in labels if lab.split()[0] == symbol]
            if not candidates:
                continue
            label = candidates[0]
        maps[symbol] = areas[index[label]]
        unc[symbol] = sigmas[index[label]]
        fams[symbol] = label
    all_maps = {lab: areas[i] for i, lab in enumerate(labels)}
    return FitMaps(maps=maps, uncertainties=unc, families=fams, all_maps=all_maps)


def fitted_maps(
    scan: Scan,
    elements: list[str],
    *,
    tube_kv: float = 40.0,
    snip_width_kev: float = 0.4,
    e_min_kev: float = 1.0,
    e_max_kev: float | None = None,
    rows_per_chunk: int | None = None,
) -> dict[str, np.ndarray]:
    """Element maps from a linear least-squares fit of every pixel (PyMca5 FastXRFLinearFit).

    Parameters
    ----------
    scan : Scan
    elements : list of str
        Chemical symbols; each gets every excitable K/L/M family inside the fit region.
    tube_kv : float
        Tube voltage (kV).
    snip_width_kev : float
        SNIP background half-window (keV).
    e_min_kev, e_max_kev : float
        Fit region (keV); default 1 keV to the tube voltage or the scan end.
    rows_per_chunk : int, optional
        Rows per fit call (default: about 4096 pixels).

    Returns
    -------
    dict of str -> (n_rows, n_cols) ndarray, float32
        Fitted peak-family area (counts) of each element's principal family (K, or L for
        Sn, Ba, Hg, Pb at 40 kV). Elements without an excitable line are left out.

    Notes
    -----
    PyMca: no weights, SNIP background per pixel, negative areas refitted without the offending
    groups. About 40 us/pixel for the fit plus the SNIP (see benchmarks/bench_fit.py).
    :func:`fit_scan` also returns uncertainties and every fitted family.
    """
    return fit_scan(
        scan, elements, tube_kv=tube_kv, snip_width_kev=snip_width_kev, e_min_kev=e_min_kev,
        e_max_kev=e_max_kev, rows_per_chunk=rows_per_chunk,
    ).maps
