"""Element evidence: net line areas, their uncertainty and significance, per spectrum.

Every spectrum is fitted, by one linear least-squares solve shared by all spectra, with templates
on the detector response:

* one template per excitable line family of each candidate element (K, split into K-alpha and K-beta
  for the K-line elements of paint, :data:`SPLIT_K_ELEMENTS`; L split into its L1, L2 and L3 subshell
  lines, so absorption edges of other elements between them cannot fake a line; M), built from the
  xraylib line energies and relative rates (cascades included), the detector efficiency, Gaussian
  peaks with Fano + noise width and their Si escape peaks. Split templates let the layers above
  change the line ratios (the depth evidence the model reads);
* Rayleigh and Compton scatter of the tube anode's lines (two Compton widths);
* a smooth background (cubic B-splines, one knot every ``background_knot_kev``);
* pile-up: the spectrum's own self-convolution (sum peaks), one amplitude per spectrum, eliminated
  from the shared solve in closed form.

Areas are photons in the whole family (all its lines, escape peaks included). Their variance comes
from Poisson statistics propagated through the linear estimator, with the fitted spectrum as the
variance, plus a small systematic term (:attr:`EvidenceConfig.systematic`), and is scaled by the
spectrum's reduced chi-square where that exceeds 1 (the Birge ratio: a spectrum the templates do not
describe, such as a real detector's peak tails at millions of counts, claims less);
``significance = net / sigma``, the largest of: the principal family's total, its K and L families,
its strongest template, and its *nominal-ratio* estimate (the split templates combined at the atomic
line ratios, weighted by their covariance: where Pb L3 La sits on As Ka, Pb L2 Lb and L1 still
carry Pb). An element absent from the spectrum gives a significance
distributed about N(0, 1) where the template model is right; systematic errors (a detector
resolution or peak shape unlike the templates) add to it, so identification uses thresholds well
above 3 (see :mod:`xrfcore.elements.identify`).

Spectra are first rebinned (counts-conserving) onto the fit grid (``EvidenceConfig.step_kev``),
so templates are computed once per configuration and scan energy range.

Cost: one rebinning, three matrix products of ``(n, channels) x (channels, templates)`` and one
small FFT per spectrum; ~100 templates over ~1400 channels for the default candidate list.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import threading
from dataclasses import dataclass, field, replace
from typing import Iterator, Sequence

import numpy as np

from xrfcore.errors import ConfigError
from xrfcore.scan import EnergyCalibration, Scan

__all__ = [
    "EVIDENCE_ELEMENTS",
    "EvidenceConfig",
    "Evidence",
    "SpectrumFit",
    "FitTemplates",
    "fit_templates",
    "fit_evidence",
    "fit_spectrum",
    "scan_evidence",
    "EvidenceMaps",
    "estimate_resolution",
    "fit_chi2",
    "iter_scan_evidence",
    "with_scan",
    "config_for_scan",
    "NOISE_STEPS_EV",
    "SPLIT_K_ELEMENTS",
]

#: Elements fitted by default: pigments, grounds, fillers and common impurities of paintings, plus
#: Ar (air) and what a scan of a support or a restoration can show.
#: Left out: Br, Rb, W, Pt and Bi, rare in paint, whose lines sit inside the Hg and Pb L region, where the
#: peak shapes of those two strong elements differ most from any template; pass them in ``elements`` to
#: look for them (the held-out mock-ups showed them in 2-14 % of pixels where none was painted).
EVIDENCE_ELEMENTS: tuple[str, ...] = (
    "S", "Cl", "Ar", "K", "Ca", "Ti", "V", "Cr", "Mn", "Fe", "Co", "Ni", "Cu", "Zn", "As", "Se",
    "Sr", "Zr", "Mo", "Ag", "Cd", "Sn", "Sb", "I", "Ba", "Au", "Hg", "Pb",
)

#: K-line elements of paint whose K-alpha and K-beta get separate templates by default (depth evidence).
SPLIT_K_ELEMENTS: tuple[str, ...] = ("Cr", "Mn", "Fe", "Co", "Ni", "Cu", "Zn", "As")

#: From this atomic number (W) on, each L subshell's lines are split in two templates (see _line_rows).
HEAVY_SPLIT_Z = 74
_SPLIT_GROUP = {"Ll": "La", "Ln": "Lb"}
#: Relative rate (within a family) below which a line is left out of a template.
_MIN_RATE = 0.005


@dataclass(frozen=True)
class EvidenceConfig:
    """What the evidence fit models.

    Parameters
    ----------
    elements : tuple of str
        Candidate elements (default :data:`EVIDENCE_ELEMENTS`).
    tube_kv : float
        Tube voltage (kV): only shells with an edge below it are excited.
    anode : str or None
        Tube anode whose lines scatter into the spectrum (Rayleigh, Compton).
    e_min_kev, e_max_kev : float
        Fit window (keV); the scan's range and the tube voltage shorten it.
    step_kev : float
        Fit grid bin width (keV).
    noise_ev, fano : float
        Detector resolution: ``FWHM^2 = noise^2 + 2.3548^2 fano 3.85 eV E``.
    background_knot_kev : float
        B-spline knot spacing (keV) of the smooth background.
    scatter_angle_deg : float
        Scattering angle of the geometry (Compton shift).
    pileup : bool
        Fit sum peaks (the spectrum's self-convolution).
    escape : bool
        Si escape peaks in the line templates.
    systematic : float
        Relative model error assumed for every fitted count (peak shapes and line ratios of real
        detectors and matrices differ from the templates); it adds ``systematic * sum_c |P_ec| m_c``
        in quadrature to each area's sigma, ``m`` the fitted spectrum: a small line under a large
        peak of another element needs more than Poisson significance.
    scatter_kev : tuple of float
        Further excitation energies (keV) whose Rayleigh and Compton peaks are modelled, e.g. the
        energy of a monochromatic (synchrotron) beam; use ``anode=None`` then.
    edge_elements : tuple of str
        Elements whose L absorption edges step the scattered continuum down (the strong absorbers of
        paintings: Hg, Pb); a step template per edge. Edges of absent elements only add freedom.
    split_k : tuple of str
        Elements whose K family is fitted as two templates, K-alpha and K-beta (``"Zn K Ka"``,
        ``"Zn K Kb"``): paint above a layer absorbs K-alpha more than K-beta, so their ratio tells
        how deep the element lies. Their significance still uses both lines at the nominal ratio.
        Configs saved before this field existed read as ``()``.
    minor_l_lines : bool
        Model the weak L lines :data:`xrfcore.elements.lines.MINOR_L_LINES` (Lb15, Lb5, Lg6; 1-3 % of
        L-alpha). Without them Hg Lb5 of thick vermilion (12.28 keV, 2 % of Hg La) was taken up by Pb's L1
        template, the background rang negative above the Hg L3 edge, and pure-vermilion spectra had a
        reduced chi-square of 2-9 (about 1 with them), which the Birge ratio turned into sigmas up to 3x too
        large for every element of those pixels. Configs saved before this field existed read as False.
    """

    elements: tuple[str, ...] = EVIDENCE_ELEMENTS
    tube_kv: float = 40.0
    anode: str | None = "Rh"
    e_min_kev: float = 2.0
    e_max_kev: float = 30.0
    step_kev: float = 0.02
    noise_ev: float = 100.0
    fano: float = 0.114
    background_knot_kev: float = 1.5
    scatter_angle_deg: float = 90.0
    pileup: bool = True
    escape: bool = True
    systematic: float = 0.003
    scatter_kev: tuple[float, ...] = ()
    edge_elements: tuple[str, ...] = ("Hg", "Pb")
    split_k: tuple[str, ...] = SPLIT_K_ELEMENTS
    minor_l_lines: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "elements", tuple(str(e) for e in self.elements))
        if not (math.isfinite(float(self.systematic)) and 0 <= float(self.systematic) < 1):
            raise ConfigError(f"EvidenceConfig.systematic must be in [0, 1), got {self.systematic!r}")
        object.__setattr__(self, "systematic", float(self.systematic))
        object.__setattr__(self, "scatter_kev", tuple(float(e) for e in self.scatter_kev))
        object.__setattr__(self, "edge_elements", tuple(str(e) for e in self.edge_elements))
        object.__setattr__(self, "split_k", tuple(str(e) for e in self.split_k))
        if any(not (math.isfinite(e) and e > 0) for e in self.scatter_kev):
            raise ConfigError(f"EvidenceConfig.scatter_kev must hold energies > 0 keV, got {self.scatter_kev}")
        for name in ("tube_kv", "e_min_kev", "e_max_kev", "step_kev", "noise_ev", "fano", "background_knot_kev"):
            v = float(getattr(self, name))
            if not math.isfinite(v) or v <= 0:
                raise ConfigError(f"EvidenceConfig.{name} must be a finite number > 0, got {getattr(self, name)!r}")
            object.__setattr__(self, name, v)
        if self.e_max_kev <= self.e_min_kev + 1.0:
            raise ConfigError(f"EvidenceConfig: e_max_kev {self.e_max_kev} must be at least 1 keV above "
                              f"e_min_kev {self.e_min_kev}")
        if not self.elements:
            raise ConfigError("EvidenceConfig.elements is empty; give at least one element")

    def to_dict(self) -> dict:
        d = {f: getattr(self, f) for f in self.__dataclass_fields__}
        d["elements"] = list(self.elements)
        d["scatter_kev"] = list(self.scatter_kev)
        d["edge_elements"] = list(self.edge_elements)
        d["split_k"] = list(self.split_k)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "EvidenceConfig":
        if not isinstance(d, dict):
            raise ConfigError(f"evidence config must be a dict, got {type(d).__name__}")
        bad = sorted(set(d) - set(cls.__dataclass_fields__))
        if bad:
            raise ConfigError(f"unknown evidence config keys {bad}; known: {sorted(cls.__dataclass_fields__)}")
        d = dict(d)
        d.setdefault("split_k", ())  # saved before K-alpha/K-beta were split
        d.setdefault("minor_l_lines", False)  # saved before the weak L lines were modelled
        for key in ("elements", "scatter_kev", "edge_elements", "split_k"):
            if key in d:
                d[key] = tuple(d[key])
        return cls(**d)


#: Threads that fit blocks of spectra side by side (:func:`fit_evidence`).
MAX_FIT_THREADS = 4
#: One BLAS thread limit at a time (threadpoolctl's limits are process-wide).
_BLAS_LOCK = threading.RLock()

#: Fit channels per bin of the pile-up self-convolution (4 x 20 eV: sum peaks are wider than that).
PILEUP_COARSE = 4


@dataclass(frozen=True, eq=False)
class FitTemplates:
    """Templates of one configuration on one fit grid.

    Attributes
    ----------
    calibration : EnergyCalibration
        Channel -> keV of the fit grid (channel centres).
    n_channels : int
    window : slice
        Channels of the fit grid inside the fit window.
    names : tuple of str
        Template names, e.g. ``"Fe K"``, ``"Pb L3"``, ``"Rh Ka Compton"``, ``"background 3"``.
    owners : tuple of str
        Element symbol of each line template; ``"scatter"`` or ``"background"`` otherwise.
    families : tuple of str
        ``"K"``, ``"L"`` or ``"M"`` for line templates, ``""`` otherwise.
    matrix : (n_templates, n_window) ndarray
        Template values on the window channels; line templates sum to the share of their
        family's photons that falls inside the window.
    pinv : (n_templates, n_window) ndarray
        Least-squares estimator ``(T T^T)^-1 T``.
    elements : tuple of str
        Elements with at least one template.
    element_rows : (n_elements, n_templates) ndarray
        0/1: which templates make each element's principal family.
    main_rows : (n_elements, n_templates) ndarray
        0/1: the principal family's strongest template (``Pb L3 La``, ``Fe K``).
    nominal_rows : (n_elements, n_templates) ndarray
        Weights of the principal family's templates in its best linear estimate *at the nominal line
        ratios* (no absorption by the layers above): ``C^-1 r / (r^T C^-1 r)`` with ``r`` the
        templates' nominal shares and ``C`` their white-noise covariance. Where one template overlaps
        another element's line (Pb L3 La on As Ka), the others (Pb L2 Lb, L1) carry the estimate.
    family_rows : dict of str -> (n_elements, n_templates) ndarray
        0/1 per family ("K", "L", "M").
    """

    calibration: EnergyCalibration
    n_channels: int
    window: slice
    names: tuple[str, ...]
    owners: tuple[str, ...]
    families: tuple[str, ...]
    matrix: np.ndarray
    pinv: np.ndarray
    elements: tuple[str, ...]
    element_rows: np.ndarray
    family_rows: dict = field(default_factory=dict)
    main_rows: np.ndarray | None = None
    nominal_rows: np.ndarray | None = None

    def __post_init__(self) -> None:
        main = self.main_rows if self.main_rows is not None else self.element_rows
        nominal = self.nominal_rows if self.nominal_rows is not None else main
        rows = np.concatenate([self.element_rows] + [self.family_rows[f] for f in ("K", "L", "M")] + [main, nominal])
        for name, value in (("matrix32", self.matrix), ("pinv32", self.pinv), ("combine_rows32", rows)):
            a = np.ascontiguousarray(value, dtype=np.float32)
            a.setflags(write=False)
            object.__setattr__(self, name, a)
        has = rows.any(axis=1)
        has.setflags(write=False)
        object.__setattr__(self, "combine_has", has)
        # rows whose uncertainty the solve needs (every block but M, which only reports photons), each
        # distinct row once (the principal family is often the K family, the main template the family)
        block = np.repeat(np.arange(6), len(self.element_rows))
        need = has & (block != 3)
        uniq, inverse = np.unique(rows[need], axis=0, return_inverse=True)
        var_index = np.zeros(len(rows), dtype=np.intp)
        var_index[need] = inverse.ravel()
        pe = np.ascontiguousarray(uniq @ self.pinv, dtype=np.float32)
        for name, value in (("var_needed", need), ("var_index", var_index), ("var_pinv32", pe),
                            ("var_rows32", np.ascontiguousarray(uniq, dtype=np.float32)),
                            ("var_weights32", np.concatenate([pe * pe, np.abs(pe)]))):
            value.setflags(write=False)
            object.__setattr__(self, name, value)
        # pile-up: a fit channel j >= PILEUP_COARSE // 2 holds the self-convolution's coarse bin
        # (j - shift) // coarse (see _pileup_coarse); the estimator's rows summed over those bins
        r, shift = PILEUP_COARSE, PILEUP_COARSE // 2
        w0, w1 = self.window.start, self.window.stop
        q0, q1 = (w0 - shift) // r, (w1 - 1 - shift) // r + 1
        off = (w0 - shift) - q0 * r
        spread = np.zeros(((q1 - q0) * r, self.pinv.shape[0]))
        spread[off: off + (w1 - w0)] = self.pinv.T
        p_coarse = np.ascontiguousarray(spread.reshape(q1 - q0, r, -1).sum(axis=1).T / r, dtype=np.float32)
        in_window = np.zeros((q1 - q0) * r)
        in_window[off: off + (w1 - w0)] = 1.0
        weight = (in_window.reshape(q1 - q0, r).sum(axis=1) / r).astype(np.float32)
        for a in (p_coarse, weight):
            a.setflags(write=False)
        object.__setattr__(self, "pileup_bins", (q0, q1, off))
        object.__setattr__(self, "pileup_pinv32", p_coarse)
        object.__setattr__(self, "pileup_weight32", weight)

    @property
    def energy_kev(self) -> np.ndarray:
        """Channel centres (keV) of the window."""
        return self.calibration.energies(self.n_channels)[self.window]


def _fit_grid(config: EvidenceConfig, e_hi: float) -> tuple[EnergyCalibration, int, slice]:
    """Fit grid from 0 keV (so sum peaks map by index) and the window channels."""
    step = config.step_kev
    n = int(math.ceil(e_hi / step))
    cal = EnergyCalibration(0.5 * step, step)
    lo = int(math.floor(config.e_min_kev / step))
    return cal, n, slice(lo, n)


def _line_rows(symbol: str, config: EvidenceConfig, e_lo: float, e_hi: float):
    """(family, subshell, energies, weights, share) of the element's templates inside [e_lo, e_hi].

    ``share`` is the template's raw weight (relative rates x detector efficiency) before normalising.
    """
    return _line_rows_cached(symbol, float(config.tube_kv), float(e_lo), float(e_hi), symbol in config.split_k,
                             bool(config.minor_l_lines))


@functools.lru_cache(maxsize=4096)
def _line_rows_cached(symbol: str, tube_kv: float, e_lo: float, e_hi: float, split_k: bool, minor_l: bool):
    from xrfcore.elements.lines import emission_lines
    from xrfcore.physics.detector import detector_efficiency

    out = []
    lines = [ln for ln in emission_lines(symbol, tube_kv=tube_kv, minor_l=minor_l) if ln.relative_rate >= _MIN_RATE]
    from xrfcore.physics.atomic_data import atomic_number

    heavy = atomic_number(symbol) >= HEAVY_SPLIT_Z
    groups: dict[tuple[str, str], list] = {}
    for ln in lines:
        shell = ln.name.split("/")[0][:2] if ln.family == "L" else ln.family
        if split_k and ln.family == "K":
            shell = f"K {ln.group}"  # K Ka / K Kb
        if heavy and ln.family == "L":
            # absorption edges of the matrix (Hg L3 12.28, Pb L3 13.04 keV) fall between the lines of one
            # subshell: alpha/l and beta of L3, beta/eta and gamma of L2, beta and gamma of L1 get their own
            shell = f"{shell} {_SPLIT_GROUP.get(ln.group, ln.group)}"
        groups.setdefault((ln.family, shell), []).append(ln)
    for (fam, shell), members in sorted(groups.items()):
        e = np.array([m.energy_kev for m in members])
        w = np.array([m.relative_rate for m in members])
        w = w * detector_efficiency(e, air_path_cm=1.0, be_window_um=12.5, si_thickness_mm=0.45)
        inside = (e >= e_lo) & (e <= e_hi)
        main = e[np.argmax(w)]
        if not inside.any() or not (e_lo <= main <= e_hi) or w.sum() <= 0:
            continue
        share = float(w.sum())
        w = w / share
        e.setflags(write=False)
        w.setflags(write=False)
        out.append((fam, shell, e, w, share))
    return tuple(out)


@functools.lru_cache(maxsize=32)
def fit_templates(config: EvidenceConfig, e_hi_kev: float) -> FitTemplates:
    """Templates and least-squares estimator for ``config`` on a window ending at ``e_hi_kev``.

    Cached per (config, upper energy): scans of one instrument share them.

    Raises
    ------
    ConfigError
        If no candidate element has a line inside the window.
    """
    from scipy.interpolate import BSpline

    from xrfcore.elements.lines import element_symbol, line_groups, principal_group
    from xrfcore.physics.atomic_data import compton_energy
    from xrfcore.physics.detector import shape_matrix

    e_hi = min(float(e_hi_kev), config.e_max_kev, config.tube_kv)
    if e_hi <= config.e_min_kev + 1.0:
        raise ConfigError(f"the fit window {config.e_min_kev:.2f}-{e_hi:.2f} keV is too short; the scan must reach "
                          f"at least {config.e_min_kev + 1.0:.1f} keV")
    cal, n, window = _fit_grid(config, e_hi)
    e_win = cal.energies(n)[window]
    e_lo_fit, e_hi_fit = float(e_win[0]), float(e_win[-1])

    def response(energies: np.ndarray, extra_sigma: float | np.ndarray = 0.0, escape: bool = config.escape):
        extra = np.broadcast_to(np.asarray(extra_sigma, dtype=np.float64), energies.shape)
        return shape_matrix(energies, energies, cal, n, noise_ev=config.noise_ev, fano=config.fano,
                            extra_sigma_kev=extra, escape=escape, dtype=np.float64)[:, window]

    names, owners, fams, rows = [], [], [], []
    pending = []  # (name, owner, family, energies, weights, share): rendered in one detector-response call
    shares: dict[str, float] = {}
    for el in config.elements:
        symbol = element_symbol(el)
        if symbol == config.anode:
            continue
        for fam, shell, e, w, share in _line_rows(symbol, config, e_lo_fit, e_hi_fit):
            pending.append((f"{symbol} {shell}", symbol, fam, e, w, share))
    if pending:
        all_e = np.concatenate([p[3] for p in pending])
        resp = response(all_e)
        at = 0
        shares = {}
        for name, owner, fam, e, w, share in pending:
            shares[name] = share
            names.append(name)
            owners.append(owner)
            fams.append(fam)
            rows.append(w @ resp[at:at + e.size])
            at += e.size
    elements = tuple(dict.fromkeys(owners))
    if not elements:
        raise ConfigError(f"none of {list(config.elements)} has a line inside {e_lo_fit:.2f}-{e_hi_fit:.2f} keV at "
                          f"{config.tube_kv:g} kV; check the element list, tube voltage and the scan's energy range")
    theta = math.radians(config.scatter_angle_deg)
    sources = [(f"{g.label}", g.energy_kev) for g in
               (line_groups(config.anode, tube_kv=config.tube_kv, minor_l=config.minor_l_lines) if config.anode else [])
               if (g.family == "K" and g.relative_rate >= 0.05) or g.relative_rate >= 0.2]
    sources += [(f"{e:g} keV", e) for e in config.scatter_kev]
    for label0, energy0 in sources:
        e0 = np.array([energy0])
        ec = np.array([compton_energy(e0, theta)[0]])
        for label, energy, extra in ((f"{label0} Rayleigh", e0, 0.0),
                                     (f"{label0} Compton", ec, 0.012 * ec[0]),
                                     (f"{label0} Compton wide", ec * 0.995, 0.03 * ec[0])):
            if e_lo_fit <= energy[0] <= e_hi_fit:
                names.append(label)
                owners.append("scatter")
                fams.append("")
                rows.append(response(energy, extra, escape=False)[0])
    # absorption edges of the fitted elements: the scattered tube continuum steps down at each edge of
    # what the sample holds (Pb L3 at 13.04 keV, Hg L3 at 12.28 keV ...); a smooth background cannot
    # follow a step, and its residue would read as lines nearby (Br, Bi, W). One step per edge, as
    # wide as the detector resolution, down to zero 3 keV above the edge (the splines do the rest).
    # L edges only: a K edge sits within ~60 eV of its own K-beta line and would take up its counts.
    if config.edge_elements:
        from scipy.special import ndtr

        from xrfcore.elements.lines import absorption_edges
        from xrfcore.physics.detector import sigma_kev

        for symbol in (element_symbol(el) for el in config.edge_elements):
            for shell, edge in absorption_edges(symbol, tube_kv=config.tube_kv):
                if shell == "K" or not (e_lo_fit + 0.3 <= edge <= e_hi_fit - 0.3):
                    continue
                sig = float(sigma_kev(np.array([edge]), noise_ev=config.noise_ev, fano=config.fano)[0])
                step = ndtr((edge - e_win) / sig) * np.clip(1.0 - (edge - e_win) / 3.0, 0.0, 1.0)
                names.append(f"{symbol} {shell} edge")
                owners.append("background")
                fams.append("")
                rows.append(step)
    # smooth background: clamped cubic B-splines over the window
    n_knots = max(2, int(round((e_hi_fit - e_lo_fit) / config.background_knot_kev)) + 1)
    inner = np.linspace(e_lo_fit, e_hi_fit, n_knots)
    knots = np.concatenate([[inner[0]] * 3, inner, [inner[-1]] * 3])
    basis = BSpline.design_matrix(np.clip(e_win, inner[0], inner[-1]), knots, 3).toarray().T
    for i, b in enumerate(basis):
        names.append(f"background {i}")
        owners.append("background")
        fams.append("")
        rows.append(b)
    matrix = np.asarray(rows, dtype=np.float64)
    gram = matrix @ matrix.T
    # tiny ridge: near-collinear families (S K / Pb M / Mo L) stay solvable; areas change < 1e-9
    gram[np.diag_indices_from(gram)] += 1e-10 * np.trace(gram) / gram.shape[0]
    pinv = np.linalg.solve(gram, matrix)
    index = {el: i for i, el in enumerate(elements)}
    element_rows = np.zeros((len(elements), len(names)))
    main_rows = np.zeros((len(elements), len(names)))
    nominal_rows = np.zeros((len(elements), len(names)))
    cov0 = np.linalg.inv(gram)  # white-noise covariance of the amplitudes
    family_rows = {f: np.zeros((len(elements), len(names))) for f in ("K", "L", "M")}
    for j, (owner, fam) in enumerate(zip(owners, fams)):
        if owner in index:
            family_rows[fam][index[owner], j] = 1.0
    for el, i in index.items():
        try:
            main = principal_group(el, tube_kv=config.tube_kv, min_energy_kev=e_lo_fit, max_energy_kev=e_hi_fit).family
        except ConfigError:
            main = ""
        if family_rows.get(main) is None or not family_rows[main][i].any():
            main = next(f for f in ("K", "L", "M") if family_rows[f][i].any())
        element_rows[i] = family_rows[main][i]
        # the principal family's strongest template alone (Pb L3 La): the sum of a heavy element's split
        # templates carries the uncertainty of its weakest, most overlapped part (Hg L3 Lb on Br Ka)
        cols = np.flatnonzero(family_rows[main][i])
        best = max(cols, key=lambda j: shares.get(names[j], 0.0))
        main_rows[i, best] = 1.0
        r = np.array([shares.get(names[j], 0.0) for j in cols])
        r = r / r.sum()
        g = np.linalg.solve(cov0[np.ix_(cols, cols)], r)
        nominal_rows[i, cols] = g / float(r @ g)
    for a in (matrix, pinv, element_rows, main_rows, nominal_rows, *family_rows.values()):
        a.setflags(write=False)
    return FitTemplates(calibration=cal, n_channels=n, window=window, names=tuple(names), owners=tuple(owners),
                        families=tuple(fams), matrix=matrix, pinv=pinv, elements=elements,
                        element_rows=element_rows, family_rows=family_rows, main_rows=main_rows,
                        nominal_rows=nominal_rows)


@dataclass
class Evidence:
    """Element evidence of a batch of spectra.

    Attributes
    ----------
    elements : list of str
    net_counts : (n, E) float32
        Photons in each element's principal family (K, or L for heavy elements).
    sigma : (n, E) float32
        One-sigma uncertainty of ``net_counts`` (Poisson, propagated).
    significance : (n, E) float32
        ``net_counts / sigma`` of the principal family, or of the K or L family when that is larger
        (Sn, Sb, Cd: K lines above 20 keV and L lines near 3.5 keV); M lines count only for elements
        with no other family in the window.
    family_counts : dict of str -> (n, E) float32
        Photons per family; 0 where the family has no template.
    amplitudes : (n, n_templates) float32
        Every template's amplitude (names in ``templates.names``).
    pileup : (n,) float32
        Photons in sum peaks.
    total_counts : (n,) float64
        Counts of each spectrum (all channels).
    templates : FitTemplates
    known : (E,) bool
        False for elements whose lines lie outside the spectra's energy range (evidence unknown).
    chi2 : (n,) float32
        Reduced chi-square of each fit (the Birge ratio's square when above 1).
    rebinned : (EnergyGrid, (n, m) float32 array) or None
        The spectra on the fit's grid (0 keV up, every channel), when asked for (``keep_rebinned``):
        the model's input grid is summed from it instead of rebinning the raw counts twice.
    """

    elements: list[str]
    net_counts: np.ndarray
    sigma: np.ndarray
    significance: np.ndarray
    family_counts: dict
    amplitudes: np.ndarray
    pileup: np.ndarray
    total_counts: np.ndarray
    templates: FitTemplates
    known: np.ndarray
    chi2: np.ndarray | None = None
    rebinned: tuple | None = None

    def column(self, element: str) -> int:
        """Index of ``element`` in :attr:`elements` (KeyError naming the fitted ones)."""
        try:
            return self.elements.index(element)
        except ValueError:
            raise KeyError(f"{element} was not fitted; fitted elements: {', '.join(self.elements)}") from None

    def amplitude(self, name: str) -> np.ndarray:
        """Photons of a template or a group of them, e.g. ``"Pb L3"`` (both of its split templates) or
        ``"Rh Ka Compton"``; zeros if absent."""
        cols = [j for j, nm in enumerate(self.templates.names) if nm == name or nm.startswith(name + " ")]
        if not cols:
            return np.zeros(self.amplitudes.shape[0], np.float32)
        return self.amplitudes[:, cols].sum(axis=1)


def _scan_top_kev(calibration: EnergyCalibration, n_channels: int) -> float:
    e = calibration.energies(n_channels)
    return float(e[-1] + 0.5 * abs(e[-1] - e[-2])) if n_channels > 1 else float(e[-1])


def _pileup_coarse(y_full: np.ndarray) -> np.ndarray:
    """Self-convolution of each (0-keV based) spectrum on bins of :data:`PILEUP_COARSE` fit channels, float32
    (the bins :attr:`FitTemplates.pileup_bins` and the coarse estimator rows are precomputed for).

    Fine channel k is centred on (k + 1/2) step, coarse bin q on (q r + r/2) step; a pair of coarse bins
    (q1, q2) sums to (s r + r) step, s = q1 + q2, i.e. fine channels s r + r/2 .. s r + r/2 + r - 1:
    fit channel j >= r/2 holds coarse bin (j - r/2) // r, divided by r.
    """
    from xrfcore.physics.detector import self_convolution
    from xrfcore.preprocess.grid import bin_sums

    s = bin_sums(y_full, PILEUP_COARSE)
    return self_convolution(s, s.shape[-1])


def _pileup_window(conv: np.ndarray, tpl: FitTemplates) -> tuple[np.ndarray, np.ndarray]:
    """The coarse self-convolution on the fit window: ``(q, inv_total)``, q (n, C) each row summing to 1
    (or 0), ``inv_total`` (n,) the factor that took the coarse bins there (0 for an empty row)."""
    q0, q1, off = tpl.pileup_bins
    part = conv[:, q0:q1]
    total = part @ tpl.pileup_weight32
    inv_total = np.divide(1.0, total, out=np.zeros_like(total), where=total > 0)
    fine = np.repeat(part, PILEUP_COARSE, axis=1)[:, off: off + tpl.matrix.shape[1]]
    fine *= (inv_total / PILEUP_COARSE)[:, None]
    return fine, inv_total


def _pileup_templates(y_full: np.ndarray, tpl: FitTemplates) -> np.ndarray:
    """Self-convolution of each (0-keV based) spectrum, on the window, each row summing to 1 (or 0)."""
    return _pileup_window(_pileup_coarse(np.asarray(y_full, dtype=np.float32)), tpl)[0]


def fit_evidence(spectra: np.ndarray, calibration: EnergyCalibration, config: EvidenceConfig = EvidenceConfig(),
                 *, chunk: int = 256, keep_rebinned: bool = False, workers: int | None = None) -> Evidence:
    """Fit element evidence to raw spectra.

    Parameters
    ----------
    spectra : (n, n_channels) or (n_channels,) array-like, counts
        Raw detector counts sharing one energy calibration.
    calibration : EnergyCalibration
    config : EvidenceConfig
    chunk : int
        Spectra per block (memory: chunk x fit channels x 8 bytes, a few times).
    keep_rebinned : bool
        Keep the spectra on the fit grid in :attr:`Evidence.rebinned` (n x fit channels x 4 bytes).
    workers : int, optional
        Threads that fit blocks side by side (default: one per CPU core, at most 4). Most of the fit is
        numpy work on one core at a time; the result does not depend on it.

    Returns
    -------
    Evidence
    """
    from xrfcore.preprocess.grid import EnergyGrid, rebin_to_grid

    arr = np.asarray(spectra)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2:
        raise ConfigError(f"expected spectra of shape (n, n_channels), got {np.shape(spectra)}")
    top = _scan_top_kev(calibration, arr.shape[1])
    tpl = fit_templates(config, round(min(top, config.e_max_kev), 3))
    grid = EnergyGrid(0.0, tpl.calibration.gain_kev, tpl.n_channels)
    n = arr.shape[0]
    e_count = len(tpl.elements)
    out_net = np.zeros((n, e_count), np.float32)
    out_sig = np.zeros((n, e_count), np.float32)
    out_z = np.zeros((n, e_count), np.float32)
    fam_counts = {f: np.zeros((n, e_count), np.float32) for f in ("K", "L", "M")}
    amps = np.zeros((n, len(tpl.names)), np.float32)
    pile = np.zeros(n, np.float32)
    chi2 = np.zeros(n, np.float32)
    totals = np.zeros(n, np.float64)
    kept = np.empty((n, grid.n_channels), np.float32) if keep_rebinned else None

    def fit_chunk(a: int) -> None:
        block = arr[a : a + chunk]
        y_full = rebin_to_grid(block, calibration, grid, pad="zero", warn=False)
        if kept is not None:
            kept[a : a + block.shape[0]] = y_full
        res = _solve(y_full, tpl, config.pileup, config.systematic)
        sl = slice(a, a + block.shape[0])
        amps[sl], pile[sl], chi2[sl] = res["amplitudes"], res["pileup"], res["chi2"]
        out_net[sl], out_sig[sl], out_z[sl] = res["net"], res["sigma"], res["z"]
        for f in fam_counts:
            fam_counts[f][sl] = res["families"][f]
        totals[sl] = block.sum(axis=1, dtype=np.float64)

    _run_chunks(fit_chunk, range(0, n, chunk), workers)
    known = np.array([True] * e_count)
    return Evidence(elements=list(tpl.elements), net_counts=out_net, sigma=out_sig, significance=out_z,
                    family_counts=fam_counts, amplitudes=amps, pileup=pile, total_counts=totals, templates=tpl,
                    known=known, chi2=chi2, rebinned=None if kept is None else (grid, kept))


def _run_chunks(fn, starts: range, workers: int | None) -> None:
    """``fn(a)`` for every start ``a``, on up to ``workers`` threads (default: the CPU cores, at most
    :data:`MAX_FIT_THREADS`). With more than one block BLAS runs at one thread meanwhile, whatever the
    number of workers: the threads share the cores instead of oversubscribing them, and every block gives
    the same numbers on one thread or several. Exceptions propagate."""
    if len(starts) <= 1:                     # one block (a pixel, the Inspector): no thread limit to set
        for a in starts:
            fn(a)
        return
    n_workers = min(len(starts), int(workers) if workers else min(os.cpu_count() or 1, MAX_FIT_THREADS))
    with _blas_threads(1):
        if n_workers <= 1:
            for a in starts:
                fn(a)
            return
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=n_workers, thread_name_prefix="xrf-fit") as pool:
            for fut in [pool.submit(fn, a) for a in starts]:
                fut.result()


@contextlib.contextmanager
def _blas_threads(n: int) -> Iterator[None]:
    """BLAS limited to ``n`` threads inside the block (threadpoolctl; nothing happens without it)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - scikit-learn brings it
        yield
        return
    with _BLAS_LOCK, threadpool_limits(limits=n, user_api="blas"):
        yield


def _solve(y_full: np.ndarray, tpl: FitTemplates, pileup: bool, systematic: float = 0.0) -> dict:
    """Shared least-squares solve, pile-up eliminated per spectrum, Poisson variances propagated.

    Products run in float32 (areas agree with float64 to ~1e-5 relative).
    """
    # the (n, C) arrays are few and reused in place: at these sizes each fresh one costs more than its arithmetic
    y = np.ascontiguousarray(y_full[:, tpl.window], dtype=np.float32)
    T, P = tpl.matrix32, tpl.pinv32
    amp = y @ P.T                                        # (n, k)
    if pileup:
        conv = _pileup_coarse(np.asarray(y_full, dtype=np.float32))
        q, inv_total = _pileup_window(conv, tpl)         # (n, C), rows summing to 1
        q0, q1, _ = tpl.pileup_bins                      # q @ P.T, on the coarse bins
        b = (conv[:, q0:q1] @ tpl.pileup_pinv32.T) * inv_total[:, None]
        u = b @ T
        np.subtract(q, u, out=u)                         # r_q: the part of q the templates cannot make
        norm = np.einsum("nc,nc->n", u, u)
        ok = norm > 1e-10 * np.maximum(np.einsum("nc,nc->n", q, q), 1e-30)
        u *= np.divide(1.0, norm, out=np.zeros_like(norm), where=ok)[:, None]   # u = r_q / |r_q|^2
        c = np.einsum("nc,nc->n", u, y)
        amp -= b * c[:, None]
        fitted = amp @ T
        q *= c[:, None]
        fitted += q
        work = q                                         # q is not needed after this
    else:
        b = u = None
        c = np.zeros(y.shape[0], np.float32)
        fitted = amp @ T
        work = np.empty_like(fitted)
    resid = np.subtract(y, fitted, out=work)
    v = np.maximum(fitted, 1.0, out=fitted)              # Poisson variance of each channel
    # Birge ratio: where the templates do not describe the spectrum (reduced chi-square > 1: real peak
    # tails, line ratios of a matrix unlike the templates, very high counts), every sigma grows with it
    dof = max(y.shape[1] - P.shape[0], 1)
    resid *= resid
    resid /= v
    chi2 = resid.sum(axis=1) / dof
    rows = tpl.combine_rows32                            # (R, k): principal family, K, L, M, main, nominal
    net = amp @ rows.T                                   # (n, R)
    # variances of the distinct rows that report a significance (var_pinv32: (U, C))
    pe, nu = tpl.var_pinv32, tpl.var_pinv32.shape[0]
    weighted = v @ tpl.var_weights32.T                   # (n, 2U): v . pe^2, v . |pe|
    var = weighted[:, :nu]
    if u is not None:
        be = b @ tpl.var_rows32.T                        # (n, U)
        uv = np.multiply(u, v, out=work)
        var -= 2.0 * be * (uv @ pe.T)
        var += be * be * np.einsum("nc,nc->n", uv, u)[:, None]
    if systematic > 0:
        var += (systematic * weighted[:, nu:]) ** 2
    sigma_u = np.sqrt(np.maximum(var, 1e-12)) * np.sqrt(np.maximum(chi2, 1.0))[:, None]
    sigma = sigma_u[:, tpl.var_index]                    # (n, R); rows without a variance are masked below
    e = len(tpl.elements)
    z_all = net / sigma
    z_all = np.where(tpl.var_needed[None, :], z_all, -np.inf)
    # principal family, K, L, its main template, its nominal-ratio estimate (M only through the principal family)
    z = z_all.reshape(-1, 6, e)[:, [0, 1, 2, 4, 5]].max(axis=1)
    has = tpl.combine_has
    fams = {f: np.where(has[None, (i + 1) * e:(i + 2) * e], net[:, (i + 1) * e:(i + 2) * e], 0.0)
            for i, f in enumerate(("K", "L", "M"))}
    return {"amplitudes": amp, "pileup": c, "net": net[:, :e], "sigma": sigma[:, :e], "z": z, "families": fams,
            "chi2": chi2}


@dataclass
class SpectrumFit:
    """The evidence fit of one spectrum, with every component, for plots (the Inspector).

    Attributes
    ----------
    energy_kev, counts, fitted, background, residual : (C,) ndarray
        On the fit window of the fit grid; ``residual = counts - fitted``.
    elements : list of str
    net_counts, sigma, significance : dict of str -> float
    components : dict of str -> (C,) ndarray
        Fitted lines per element, ``"scatter"`` and ``"pile-up"``.
    """

    energy_kev: np.ndarray
    counts: np.ndarray
    fitted: np.ndarray
    background: np.ndarray
    residual: np.ndarray
    elements: list[str]
    net_counts: dict
    sigma: dict
    significance: dict
    components: dict


def fit_spectrum(spectrum: np.ndarray, calibration: EnergyCalibration, *, elements: Sequence[str] | None = None,
                 tube_kv: float = 40.0, anode: str | None = "Rh",
                 config: EvidenceConfig | None = None) -> SpectrumFit:
    """Fit one spectrum and return its components (see :func:`fit_evidence`).

    Parameters
    ----------
    spectrum : (n_channels,) array-like, counts
    calibration : EnergyCalibration
    elements : sequence of str, optional
        Candidate elements (default :data:`EVIDENCE_ELEMENTS`); ignored when ``config`` is given.
    tube_kv : float
    anode : str or None
    config : EvidenceConfig, optional
    """
    from xrfcore.preprocess.grid import EnergyGrid, rebin_to_grid

    cfg = config or EvidenceConfig(elements=tuple(elements) if elements else EVIDENCE_ELEMENTS, tube_kv=tube_kv,
                                   anode=anode)
    y_raw = np.asarray(spectrum, dtype=np.float64).reshape(1, -1)
    ev = fit_evidence(y_raw, calibration, cfg)
    tpl = ev.templates
    grid = EnergyGrid(0.0, tpl.calibration.gain_kev, tpl.n_channels)
    y = rebin_to_grid(y_raw, calibration, grid, pad="zero", warn=False).astype(np.float64)
    amp = ev.amplitudes[0].astype(np.float64)
    comps: dict[str, np.ndarray] = {}
    for j, owner in enumerate(tpl.owners):
        key = owner if owner not in ("background",) else "background"
        comps[key] = comps.get(key, 0.0) + amp[j] * tpl.matrix[j]
    q = _pileup_templates(y, tpl)[0] if cfg.pileup else np.zeros(tpl.matrix.shape[1])
    comps["pile-up"] = float(ev.pileup[0]) * q
    background = np.asarray(comps.pop("background", np.zeros_like(q)))
    fitted = background + sum(np.asarray(v) for v in comps.values())
    counts = y[0, tpl.window]
    return SpectrumFit(
        energy_kev=tpl.energy_kev, counts=counts, fitted=fitted, background=background, residual=counts - fitted,
        elements=list(ev.elements),
        net_counts={el: float(ev.net_counts[0, i]) for i, el in enumerate(ev.elements)},
        sigma={el: float(ev.sigma[0, i]) for i, el in enumerate(ev.elements)},
        significance={el: float(ev.significance[0, i]) for i, el in enumerate(ev.elements)},
        components={k: np.asarray(v, dtype=np.float64) for k, v in comps.items()},
    )


#: Detector noise values (eV FWHM) tried by :func:`estimate_resolution`.
NOISE_STEPS_EV: tuple[float, ...] = tuple(float(v) for v in range(50, 301, 5))


def fit_chi2(spectrum: np.ndarray, calibration: EnergyCalibration, config: EvidenceConfig) -> float:
    """Reduced Poisson chi-square of the evidence fit of one spectrum (fit window)."""
    fit = fit_spectrum(spectrum, calibration, config=config)
    return float(np.sum(fit.residual ** 2 / np.maximum(fit.fitted, 1.0)) / max(fit.counts.size, 1))


def estimate_resolution(spectrum: np.ndarray, calibration: EnergyCalibration,
                        config: EvidenceConfig = EvidenceConfig(), *,
                        steps_ev: Sequence[float] = NOISE_STEPS_EV) -> EvidenceConfig:
    """``config`` with the detector noise (eV) that fits ``spectrum`` best (usually a sum spectrum).

    Peak widths that differ from the templates leave residuals on the flanks of strong peaks, which
    neighbouring elements then take up (Bi and Se beside Pb and Hg). The noise term is chosen from
    ``steps_ev`` by the smallest chi-square of the whole fit; a coarse scan, then its neighbours.

    Returns
    -------
    EvidenceConfig
        A copy with ``noise_ev`` set.
    """
    steps = sorted(float(s) for s in steps_ev)
    cache: dict[float, float] = {}

    def chi2(noise: float) -> float:
        if noise not in cache:
            cache[noise] = fit_chi2(spectrum, calibration, replace(config, noise_ev=noise))
        return cache[noise]

    coarse = steps[::6] if len(steps) > 12 else steps
    best = min(coarse, key=chi2)
    i = steps.index(best)
    medium = steps[max(0, i - 4): i + 5: 2]
    best = min(medium, key=chi2)
    i = steps.index(best)
    best = min(steps[max(0, i - 1): i + 2], key=chi2)
    return replace(config, noise_ev=best)


@dataclass
class EvidenceMaps:
    """Element evidence of every pixel of a scan: arrays (n_rows, n_cols, E) float32."""

    elements: list[str]
    net_counts: np.ndarray
    sigma: np.ndarray
    significance: np.ndarray

    def map(self, element: str, what: str = "net_counts") -> np.ndarray:
        """One element's (n_rows, n_cols) map of ``net_counts``, ``sigma`` or ``significance``."""
        return getattr(self, what)[..., self.elements.index(element)]


def iter_scan_evidence(scan: Scan, config: EvidenceConfig = EvidenceConfig(), *,
                       rows_per_chunk: int | None = None) -> Iterator[tuple[int, int, Evidence]]:
    """Yield ``(row0, row1, Evidence of those rows' pixels)`` chunk by chunk (bounded memory)."""
    for start, stop, block in scan.iter_row_chunks(rows_per_chunk):
        yield start, stop, fit_evidence(block.reshape(-1, block.shape[-1]), scan.calibration, config)


def scan_evidence(scan: Scan, config: EvidenceConfig | None = None, *, rows_per_chunk: int | None = None,
                  progress=None) -> EvidenceMaps:
    """Element evidence maps of a whole scan (held in memory: 3 x H x W x E float32).

    ``config`` defaults to :class:`EvidenceConfig` with the scan's tube voltage.
    ``progress(rows_done, n_rows)`` is called after each chunk.
    """
    cfg = config or EvidenceConfig(tube_kv=float(scan.metadata.tube_kv or 40.0))
    h, w = scan.n_rows, scan.n_cols
    maps = None
    for a, b, ev in iter_scan_evidence(scan, cfg, rows_per_chunk=rows_per_chunk):
        if maps is None:
            maps = EvidenceMaps(ev.elements, *(np.zeros((h, w, len(ev.elements)), np.float32) for _ in range(3)))
        maps.net_counts[a:b] = ev.net_counts.reshape(b - a, w, -1)
        maps.sigma[a:b] = ev.sigma.reshape(b - a, w, -1)
        maps.significance[a:b] = ev.significance.reshape(b - a, w, -1)
        if progress is not None:
            progress(b, h)
    return maps


def with_scan(config: EvidenceConfig, scan: Scan) -> EvidenceConfig:
    """``config`` with the scan's tube voltage (when the file records one).

    ``scan``: a :class:`~xrfcore.scan.Scan` or anything with its ``metadata`` (a labelled-pixel set);
    ``metadata`` None means nothing is known."""
    kv = scan.metadata.tube_kv if scan.metadata is not None else None
    return replace(config, tube_kv=float(kv)) if kv else config


def config_for_scan(scan: Scan, config: EvidenceConfig = EvidenceConfig(), *, sample_rows: int = 24) -> EvidenceConfig:
    """``config`` with the scan's tube voltage and its detector resolution, estimated from the mean
    spectrum of ``sample_rows`` rows spread over the scan (one pass over a few rows, not the cube)."""
    cfg = with_scan(config, scan)
    rows = np.unique(np.linspace(0, scan.n_rows - 1, min(sample_rows, scan.n_rows)).round().astype(int))
    total = np.zeros(scan.n_channels)
    for r in rows:
        total += scan.read_rows(int(r), int(r) + 1).reshape(-1, scan.n_channels).sum(axis=0, dtype=np.float64)
    return estimate_resolution(total, scan.calibration, cfg)
