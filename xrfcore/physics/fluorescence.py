"""Fundamental-parameter XRF of layered paint, vectorised over many stacks at once.

For a stack of layers (top first) on a flat sample, incidence angle ``psi_in`` and take-off
angle ``psi_out`` (from the surface), a tube spectrum ``w(E0)`` on a discrete excitation grid,
the primary fluorescence of line ``i`` (element ``Z``, energy ``E_i``) from layer ``j`` is

    I_ij = G eps(E_i) sum_E0 w(E0) A_in,j(E0) A_out,j(E_i) c_jZ sigma_i(E0) / (4 pi sin psi_in)
           * (1 - exp(-chi_j rho_j t_j)) / chi_j,
    chi_j = mu_j(E0) / sin psi_in + mu_j(E_i) / sin psi_out,

where ``A_in,j``/``A_out,j`` are the transmissions of the layers above ``j`` on the way in and
out, ``c_jZ`` the element mass fraction, ``sigma_i`` the line production cross-section
(photo-ionisation x yield x radiative rate, with cascades; xraylib), ``mu`` total mass
attenuation (cm2/g), and ``eps`` the detector efficiency (air, Be window, Si absorption).
Rayleigh and Compton scatter use the same depth integral with the differential cross-sections
at the scattering angle ``psi_in + psi_out`` (per sr, so fluorescence carries 1/4pi).

Arrays are ``(n_stacks, n_layers, n_elements)`` element mass fractions and ``(n_stacks,
n_layers)`` areal densities ``rho t`` (g/cm2); stacks with fewer layers are padded with empty
layers (zero thickness) at the bottom.

Notes
-----
Neglected: secondary fluorescence unless ``Instrument.secondary`` (approximate, within a
layer, see :func:`_secondary_factor`), tertiary fluorescence, beam divergence, surface roughness,
particle size (paint is treated as homogeneous), polarisation, the tube's L lines.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

from xrfcore.errors import SimulationError
from xrfcore.physics import atomic_data as ad
from xrfcore.physics.detector import detector_efficiency
from xrfcore.physics.tube import excitation_grid, tube_weights

__all__ = ["Layer", "Stack", "Instrument", "Tables", "build_tables", "stack_composition", "intensities",
           "DEFAULT_INSTRUMENT"]


@dataclass(frozen=True)
class Layer:
    """One paint layer: pigment mass fractions (in the pigment part), thickness (um), density.

    ``density_g_cm3=None`` takes the paint density from the library (mixture rule).
    """

    composition: Mapping[str, float]
    thickness_um: float
    density_g_cm3: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "composition", dict(self.composition))
        if not math.isfinite(self.thickness_um) or self.thickness_um < 0:
            raise SimulationError(f"layer thickness must be >= 0 um, got {self.thickness_um}")
        if self.density_g_cm3 is not None and not self.density_g_cm3 > 0:
            raise SimulationError(f"layer density must be > 0 g/cm3, got {self.density_g_cm3}")
        if not self.composition:
            raise SimulationError("a layer needs at least one pigment with a mass fraction")
        if any((not math.isfinite(v)) or v < 0 for v in self.composition.values()):
            raise SimulationError(f"pigment mass fractions must be >= 0, got {self.composition}")
        total = sum(self.composition.values())
        if abs(total - 1.0) > 1e-3:
            raise SimulationError(
                f"pigment mass fractions must sum to 1, got {total:.4f} for {self.composition}; "
                "normalise them (they are fractions of the pigment part; the binder is added separately)"
            )

    def __hash__(self) -> int:
        return hash((tuple(sorted(self.composition.items())), self.thickness_um, self.density_g_cm3))


@dataclass(frozen=True)
class Stack:
    """Layers top first; the last one is the ground."""

    layers: tuple[Layer, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "layers", tuple(self.layers))
        if not self.layers:
            raise SimulationError("a stack needs at least one layer")


@dataclass(frozen=True)
class Instrument:
    """Tube, geometry and detector.

    Default: Rh anode (the XGLab ELIO of METHOD.md has a Rh-anode tube option; Rh K lines at
    20.2/22.7 keV excite every line of interest), 40 kV, 45/45 degree geometry, 1 cm air,
    125 um Be tube window, SDD with 12.5 um Be window and 0.45 mm Si, 140 eV FWHM at Mn K-alpha.

    Parameters
    ----------
    anode : str
    tube_kv : float
    tube_window_be_um : float
    tube_filters : tuple of (formula, density_g_cm3, thickness_um)
    angle_in_deg, angle_out_deg : float
        Incidence and take-off angles from the sample surface (degrees).
    air_path_cm : float
        Sample-detector air path (the tube side is neglected).
    detector_be_um, detector_si_mm : float
    noise_ev, fano : float
        Resolution ``FWHM^2 = noise^2 + 2.3548^2 fano 3.85 eV E``.
    escape : bool
    escape_scale : float
        Multiplier on the computed Si escape fraction (real detectors differ).
    pileup_fraction : float
        Share of counts in pile-up events.
    scatter : bool
        Include Rayleigh and Compton scatter of the tube spectrum (peaks and continuum).
    scatter_scale : float
        Multiplier on the scatter (a knob for the sim-to-real gap).
    compton_sigma_rel : float
        Doppler broadening of the Compton peak (sigma / E).
    secondary : bool
        Approximate secondary fluorescence within each layer.
    excitation_step_kev : float
        Width of the tube-continuum bins.
    """

    anode: str = "Rh"
    tube_kv: float = 40.0
    tube_window_be_um: float = 125.0
    tube_filters: tuple[tuple[str, float, float], ...] = ()
    angle_in_deg: float = 45.0
    angle_out_deg: float = 45.0
    air_path_cm: float = 1.0
    detector_be_um: float = 12.5
    detector_si_mm: float = 0.45
    noise_ev: float = 85.0
    fano: float = 0.114
    escape: bool = True
    escape_scale: float = 1.0
    pileup_fraction: float = 0.0
    scatter: bool = True
    scatter_scale: float = 1.0
    compton_sigma_rel: float = 0.012
    secondary: bool = False
    excitation_step_kev: float = 0.5

    def __post_init__(self) -> None:
        if not 0 < self.angle_in_deg <= 90 or not 0 < self.angle_out_deg <= 90:
            raise SimulationError("angles must be in (0, 90] degrees from the sample surface")
        if not self.tube_kv > 0:
            raise SimulationError(f"tube voltage must be > 0 kV, got {self.tube_kv}")
        for name in ("air_path_cm", "detector_be_um", "noise_ev", "pileup_fraction", "scatter_scale"):
            if getattr(self, name) < 0:
                raise SimulationError(f"Instrument.{name} must be >= 0, got {getattr(self, name)}")


DEFAULT_INSTRUMENT = Instrument()


@dataclass(frozen=True, eq=False)
class Tables:
    """Everything energy-dependent for one element set and instrument (read-only arrays).

    ``e0`` (n_e0,) excitation energies; ``lines`` (n_lines,) LineInfo; ``line_el`` index of each
    line's element; ``sigma`` (n_e0, n_lines) production cm2/g / 4pi; ``mu_e0`` (n_el, n_e0),
    ``mu_line`` (n_el, n_lines), ``mu_compton`` (n_el, n_e0); ``dcs_rayl``/``dcs_compt``
    (n_el, n_e0) cm2/g/sr; ``eff_line`` (n_lines,), ``eff_rayl``/``eff_compt`` (n_e0,);
    ``weights`` (n_e0,) tube photons.
    """

    elements: tuple[str, ...]
    e0: np.ndarray
    e0_width: np.ndarray
    e0_is_line: np.ndarray
    e_compton: np.ndarray
    lines: tuple
    line_el: np.ndarray
    sigma: np.ndarray
    mu_e0: np.ndarray
    mu_line: np.ndarray
    mu_compton: np.ndarray
    dcs_rayl: np.ndarray
    dcs_compt: np.ndarray
    eff_line: np.ndarray
    eff_rayl: np.ndarray
    eff_compt: np.ndarray
    weights: np.ndarray
    sin_in: float
    sin_out: float
    theta_rad: float = field(default=math.pi / 2)


@functools.lru_cache(maxsize=64)
def build_tables(elements: tuple[str, ...], instrument: Instrument, *, max_kv: float | None = None) -> Tables:
    """Tabulate cross-sections, efficiencies and the tube spectrum (cached per arguments).

    ``max_kv`` sets the top of the excitation grid (default: the tube voltage rounded up),
    so instruments with different kV can share a grid.

    Raises
    ------
    SimulationError
        If the tube voltage is below every absorption edge of the elements (nothing fluoresces).
    """
    ins = instrument
    top = float(max_kv if max_kv is not None else math.ceil(ins.tube_kv))
    e0, is_line, width = excitation_grid(ins.anode, top, ins.excitation_step_kev)
    w = tube_weights(ins.anode, float(ins.tube_kv), top, ins.excitation_step_kev,
                     window_be_um=ins.tube_window_be_um, filters=tuple(ins.tube_filters))
    lines = tuple(ln for el in elements if ad.atomic_number(el) >= 11
                  for ln in ad.emission_lines(el, float(ins.tube_kv)))
    e0_key = tuple(np.round(e0, 6))
    sigma = ad.line_production(lines, e0_key) / (4 * math.pi) if lines else np.zeros((e0.size, 0))
    sigma = sigma * (w[:, None] > 0)
    if not lines or not np.any(sigma > 0):
        raise SimulationError(
            f"tube voltage {ins.tube_kv} kV is below every absorption edge of {', '.join(elements)} "
            "that gives a detectable line; raise the tube voltage"
        )
    theta = math.radians(ins.angle_in_deg + ins.angle_out_deg)
    e_line = np.array([ln.energy_kev for ln in lines])
    e_c = ad.compton_energy(e0, theta)
    det = dict(air_path_cm=ins.air_path_cm, be_window_um=ins.detector_be_um, si_thickness_mm=ins.detector_si_mm)
    line_el = np.array([elements.index(ln.element) for ln in lines], dtype=np.intp)
    return Tables(
        elements=elements, e0=e0, e0_width=width, e0_is_line=is_line, e_compton=e_c, lines=lines,
        line_el=line_el, sigma=sigma,
        mu_e0=ad.mass_attenuation(elements, e0_key),
        mu_line=ad.mass_attenuation(elements, tuple(np.round(e_line, 6))),
        mu_compton=ad.mass_attenuation(elements, tuple(np.round(e_c, 6))),
        dcs_rayl=ad.rayleigh_dcs(elements, e0_key, theta),
        dcs_compt=ad.compton_dcs(elements, e0_key, theta),
        eff_line=detector_efficiency(e_line, **det),
        eff_rayl=detector_efficiency(e0, **det),
        eff_compt=detector_efficiency(e_c, **det),
        weights=w,
        sin_in=math.sin(math.radians(ins.angle_in_deg)),
        sin_out=math.sin(math.radians(ins.angle_out_deg)),
        theta_rad=theta,
    )


def stack_composition(stacks: Sequence[Stack], library, elements: tuple[str, ...] | None = None):
    """Element mass fractions and areal densities of stacks.

    Returns
    -------
    elements : tuple of str
    mass_frac : (n_stacks, n_layers, n_elements) float64
    areal_g_cm2 : (n_stacks, n_layers) float64
        ``rho t`` with ``t`` in cm.
    """
    n_layers = max(len(s.layers) for s in stacks)
    memo: dict = {}

    def paint(ly):
        key = tuple(sorted(ly.composition.items()))
        if key not in memo:
            memo[key] = (library.paint_elements(ly.composition), library.paint_density(ly.composition))
        return memo[key]

    comps = [[paint(ly) for ly in s.layers] for s in stacks]
    if elements is None:
        elements = tuple(sorted({el for st in comps for c, _ in st for el in c}, key=ad.atomic_number))
    index = {el: i for i, el in enumerate(elements)}
    mf = np.zeros((len(stacks), n_layers, len(elements)))
    rt = np.zeros((len(stacks), n_layers))
    for i, (s, st) in enumerate(zip(stacks, comps)):
        for j, (ly, (c, rho_mix)) in enumerate(zip(s.layers, st)):
            for el, f in c.items():
                if el not in index:
                    raise SimulationError(f"element {el} of layer {j} is not in the element table {elements}")
                mf[i, j, index[el]] = f
            rho = ly.density_g_cm3 if ly.density_g_cm3 is not None else rho_mix
            rt[i, j] = rho * ly.thickness_um * 1e-4
    return elements, mf, rt


def _above(x: np.ndarray) -> np.ndarray:
    """Exclusive cumulative sum over the layer axis (axis 1): what lies above each layer."""
    c = np.cumsum(x, axis=1)
    return c - x


def intensities(mass_frac: np.ndarray, areal_g_cm2: np.ndarray, tables: Tables, *,
                weights: np.ndarray | None = None, secondary: bool = False, chunk: int = 64,
                dtype=np.float64, per_layer: bool = False,
                layers_out: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Detected line and scatter intensities of many stacks (before the detector response).

    Parameters
    ----------
    mass_frac : (n_stacks, n_layers, n_elements) ndarray
    areal_g_cm2 : (n_stacks, n_layers) ndarray
    tables : Tables
    weights : (n_e0,) or (n_stacks, n_e0) ndarray, optional
        Tube photons per excitation energy (default ``tables.weights``).
    secondary : bool
        Add approximate secondary fluorescence.
    chunk : int
        Stacks per chunk (memory: ``chunk x n_layers x n_e0 x n_lines`` values).
    dtype : numpy dtype
        Precision of the 4-D self-absorption term: float32 is ~2x faster and within ~1e-6
        relative (``expm1`` keeps thin layers exact); the tests use float64.
    per_layer : bool
        Return the line intensities per layer, ``(n_stacks, n_layers, n_lines)`` (what each layer
        delivers to the detector; they sum over layers to the default result).
    layers_out : (n_stacks, n_layers, n_lines) ndarray, optional
        Filled with the per-layer line intensities while the summed ones are returned (one pass
        for both; the summed result is the same as without it).

    Returns
    -------
    lines : (n_stacks, n_lines) ndarray, or (n_stacks, n_layers, n_lines) with ``per_layer``
    rayleigh, compton : (n_stacks, n_e0) ndarray
        Scatter of each excitation energy (Rayleigh at ``e0``, Compton at ``e_compton``).

    Notes
    -----
    Cost: ``n_stacks x n_layers x n_e0 x n_lines`` exponentials, in chunks of ``chunk`` stacks.
    """
    mf = np.asarray(mass_frac, dtype=np.float64)
    rt = np.asarray(areal_g_cm2, dtype=np.float64)
    if mf.ndim != 3 or rt.shape != mf.shape[:2] or mf.shape[2] != len(tables.elements):
        raise SimulationError(
            f"expected mass fractions (n_stacks, n_layers, {len(tables.elements)}) and areal densities "
            f"(n_stacks, n_layers), got {mf.shape} and {rt.shape}"
        )
    if np.any(rt < 0):
        raise SimulationError("layer thickness must be >= 0 um; got a negative areal density")
    w = tables.weights if weights is None else np.asarray(weights, dtype=np.float64)
    n = mf.shape[0]
    out_l = np.empty((n, mf.shape[1], len(tables.lines)) if per_layer else (n, len(tables.lines)))
    out_r = np.empty((n, tables.e0.size))
    out_c = np.empty((n, tables.e0.size))
    for a in range(0, n, chunk):
        b = min(n, a + chunk)
        wb = w if w.ndim == 1 else w[a:b]
        out_l[a:b], out_r[a:b], out_c[a:b], layers = _chunk(mf[a:b], rt[a:b], tables, wb, secondary, dtype,
                                                            per_layer, layers_out is not None)
        if layers_out is not None:
            layers_out[a:b] = layers
    return out_l, out_r, out_c


def _chunk(mf, rt, t: Tables, w, secondary, dtype, per_layer=False, layers_too=False):
    si, so = t.sin_in, t.sin_out
    mu0 = mf @ t.mu_e0                       # (S, L, E0)
    mul = mf @ t.mu_line                     # (S, L, N)
    rt3 = rt[:, :, None]
    a_in = np.exp(-_above(mu0 * rt3) / si)   # (S, L, E0)
    a_out = np.exp(-_above(mul * rt3) / so)  # (S, L, N)
    chi = (mu0[..., :, None] / si + mul[..., None, :] / so + 1e-20).astype(dtype)  # (S, L, E0, N); > 0
    selfabs = -np.expm1(-chi * rt[:, :, None, None].astype(dtype)) / chi
    conc = mf[:, :, t.line_el] * a_out       # (S, L, N)
    if secondary:
        conc = conc * _secondary_factor(mf, t)
    wa = (a_in * (w[None, None, :] if w.ndim == 1 else w[:, None, :])) / si  # (S, L, E0)
    # I[s,n] = sum_{l,e} wa[s,l,e] selfabs[s,l,e,n] sigma[e,n] conc[s,l,n]
    tmp = np.einsum("sle,slen->sln", wa.astype(dtype), selfabs * t.sigma.astype(dtype), optimize=True)
    lines = (tmp * conc * t.eff_line) if per_layer else np.einsum("sln,sln->sn", tmp, conc) * t.eff_line
    layers = lines if per_layer else (tmp * conc * t.eff_line if layers_too else None)
    # scatter: Rayleigh (E0 -> E0) and Compton (E0 -> Ec), per sr
    mu_c = mf @ t.mu_compton
    ray = _scatter(mf @ t.dcs_rayl, mu0, mu0, rt3, wa, si, so) * t.eff_rayl
    com = _scatter(mf @ t.dcs_compt, mu0, mu_c, rt3, wa, si, so) * t.eff_compt
    return lines, ray, com, layers


def _scatter(dcs, mu_in, mu_out, rt3, wa, si, so):
    chi = mu_in / si + mu_out / so
    a_out = np.exp(-_above(mu_out * rt3) / so)
    selfabs = -np.expm1(-chi * rt3) / np.where(chi > 0, chi, 1.0)
    return np.sum(wa * dcs * a_out * selfabs, axis=1)


def _secondary_factor(mf: np.ndarray, t: Tables) -> np.ndarray:
    """Approximate secondary-fluorescence enhancement ``1 + S/P`` per layer and line, (S, L, N).

    Thick-layer formula for one effective excitation energy ``E*`` per analyte line (the mean of
    ``E0`` weighted by the tube spectrum times the analyte's production cross-section):

        S/P = 1/2 sum_j c_j sigma_j(E*) sigma_i(E_j) / sigma_i(E*)
              [ ln(1 + mu'/mu_j) / mu' + ln(1 + mu''/mu_j) / mu'' ],

    ``mu' = mu(E*) / sin psi_in``, ``mu'' = mu(E_i) / sin psi_out``, ``mu_j = mu(E_j)``; sum over
    the lines ``j`` of the same layer that can ionise the analyte's shell. Only within a layer;
    the layer is treated as thick for the secondary path. Accuracy: tens of percent of the
    enhancement (which is itself 0-40 %).
    """
    pairs = _secondary_pairs(t)
    out = np.ones(mf.shape[:2] + (len(t.lines),))
    if pairs is None:
        return out
    ia, js, r_p, s_p, mu_eff = pairs                     # analyte line, source line, ratios, mu table
    mu_star = mf @ mu_eff                                # (S, L, Na): mu at E* per analyte line
    mul = mf @ t.mu_line                                 # (S, L, N)
    m1 = mu_star[..., ia] / t.sin_in
    m2 = mul[..., ia] / t.sin_out
    mj = np.maximum(mul[..., js], 1e-12)
    geo = np.log1p(m1 / mj) / np.maximum(m1, 1e-12) + np.log1p(m2 / mj) / np.maximum(m2, 1e-12)
    term = 0.5 * mf[..., t.line_el[js]] * (s_p * r_p) * geo   # (S, L, P)
    add = np.einsum("slp,pn->sln", term, _pair_onehot(ia, len(t.lines)))
    return out + add


def _pair_onehot(ia: np.ndarray, n: int) -> np.ndarray:
    m = np.zeros((ia.size, n))
    m[np.arange(ia.size), ia] = 1.0
    return m


@functools.lru_cache(maxsize=64)
def _secondary_pairs(t: Tables):
    """Secondary-fluorescence pairs of ``t`` (cached per Tables object, bounded like :func:`build_tables`)."""
    sig = t.sigma * t.weights[:, None]                  # (E0, N) excitation of each line
    tot = sig.sum(axis=0)
    e_star = np.where(tot > 0, (t.e0[:, None] * sig).sum(axis=0) / np.where(tot > 0, tot, 1.0), t.e0.max())
    e_star_key = tuple(np.round(e_star, 6))
    prod_star = ad.line_production(t.lines, e_star_key)          # (Na: E* of analyte a, N lines)
    e_src = tuple(np.round([ln.energy_kev for ln in t.lines], 6))
    prod_src = ad.line_production(t.lines, e_src)                # (Ns: energy of source j, N)
    ia, js, r, sp = [], [], [], []
    for a in range(len(t.lines)):
        own = prod_star[a, a]
        if own <= 0:
            continue
        for j in range(len(t.lines)):
            if t.line_el[j] == t.line_el[a] or prod_src[j, a] <= 0:
                continue
            ia.append(a)
            js.append(j)
            r.append(prod_src[j, a] / own)
            sp.append(prod_star[a, j])
    result = None
    if ia:
        mu_eff = ad.mass_attenuation(t.elements, e_star_key)      # (n_el, Na)
        result = (np.array(ia), np.array(js), np.array(r), np.array(sp), mu_eff)
    return result
