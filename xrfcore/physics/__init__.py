"""Fast fundamental-parameter simulation of XRF spectra of layered paint.

Pipeline: :func:`~xrfcore.physics.fluorescence.intensities` (lines and scatter per stack) ->
:func:`render` (peak-shape matrix per calibration, ``intensities @ shapes``) -> pile-up ->
background -> scaling to a total count level -> Poisson noise.

:func:`render_stacks` is the one entry point for the noise-free part (tables, intensities,
rendering) of stacks given as element arrays; :func:`finish_spectra` adds pile-up, background,
scaling and noise. Training sets (:mod:`xrfcore.simulate.dataset`), the mock-up
(:mod:`xrfcore.simulate.mockup`), the identifiability analysis and :func:`simulate_spectra`
(for :class:`Stack` objects) all go through these two.

Examples
--------
>>> from xrfcore.library import load_library
>>> from xrfcore.scan import EnergyCalibration
>>> stack = Stack((Layer({"VM": 1.0}, 50.0), Layer({"LW": 1.0}, 100.0), Layer({"CaCO3": 1.0}, 200.0)))
>>> s = simulate_spectra([stack], Instrument(), EnergyCalibration(0.0, 0.02), 2048, seed=0,
...                      total_counts=1e5)
>>> s.shape, s.dtype.name
((1, 2048), 'uint32')
"""

from __future__ import annotations

import functools
from typing import Sequence

import numpy as np

from xrfcore.errors import SimulationError
from xrfcore.physics.detector import apply_pileup, shape_matrix
from xrfcore.physics.fluorescence import (DEFAULT_INSTRUMENT, Instrument, Layer, Stack, Tables, build_tables,
                                          intensities, stack_composition)
from xrfcore.scan import EnergyCalibration

__all__ = ["Layer", "Stack", "Instrument", "DEFAULT_INSTRUMENT", "Tables", "build_tables", "stack_composition",
           "intensities", "columns", "render_matrix", "render", "render_stacks", "layer_photons", "simulate_spectra",
           "library_elements", "finish_spectra"]


def library_elements(library) -> tuple[str, ...]:
    """All elements of the library's pigments, by atomic number."""
    return _elements_of(tuple(p.formula for p in library.pigments))


@functools.lru_cache(maxsize=8)
def _elements_of(formulas: tuple[str, ...]) -> tuple[str, ...]:
    from xrfcore.library import parse_formula
    from xrfcore.physics.atomic_data import atomic_number

    els = {el for f in formulas for el in parse_formula(f)}
    return tuple(sorted(els, key=atomic_number))


def columns(tables: Tables, instrument: Instrument) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Energy interval ``(lo, hi)`` keV and extra sigma of every rendered column.

    Columns: the lines, then Rayleigh of each excitation energy, then Compton.
    """
    e_line = np.array([ln.energy_kev for ln in tables.lines])
    half = 0.5 * tables.e0_width
    lo_r, hi_r = tables.e0 - half, tables.e0 + half
    from xrfcore.physics.atomic_data import compton_energy

    lo_c = compton_energy(lo_r, tables.theta_rad)
    hi_c = compton_energy(hi_r, tables.theta_rad)
    lo = np.concatenate([e_line, lo_r, lo_c])
    hi = np.concatenate([e_line, hi_r, hi_c])
    extra = np.concatenate([np.zeros(e_line.size + tables.e0.size),
                            instrument.compton_sigma_rel * tables.e_compton])
    return lo, hi, extra


@functools.lru_cache(maxsize=16)
def render_matrix(tables: Tables, instrument: Instrument, calibration: EnergyCalibration, n_channels: int) -> np.ndarray:
    """Cached ``(n_columns, n_channels)`` float32 peak-shape matrix for one calibration."""
    lo, hi, extra = columns(tables, instrument)
    m = shape_matrix(lo, hi, calibration, n_channels, noise_ev=instrument.noise_ev, fano=instrument.fano,
                     extra_sigma_kev=extra, escape=instrument.escape,
                     escape_scale=instrument.escape_scale, si_thickness_mm=instrument.detector_si_mm)
    m.setflags(write=False)
    return m


def render(lines: np.ndarray, rayleigh: np.ndarray, compton: np.ndarray, tables: Tables, instrument: Instrument,
           calibration: EnergyCalibration, n_channels: int, *, scatter_scale: float | np.ndarray = 1.0) -> np.ndarray:
    """Noise-free spectra ``(n, n_channels)`` float64 from intensities (see :func:`intensities`)."""
    sc = np.asarray(scatter_scale, dtype=np.float64).reshape(-1, 1) if np.ndim(scatter_scale) else scatter_scale
    sc = sc * instrument.scatter_scale if instrument.scatter else 0.0 * sc
    x = np.concatenate([lines, rayleigh * sc, compton * sc], axis=1).astype(np.float32)
    return (x @ render_matrix(tables, instrument, calibration, n_channels)).astype(np.float64)


def render_stacks(mass_frac: np.ndarray, areal_g_cm2: np.ndarray, elements: tuple[str, ...], instrument: Instrument,
                  calibration: EnergyCalibration, n_channels: int, *,
                  scatter_scale: float | np.ndarray = 1.0, block: int | None = None,
                  dtype=np.float64, layer_elements: bool = False):
    """Noise-free spectra of layer stacks given as element arrays: tables -> intensities -> render.

    Parameters
    ----------
    mass_frac : (n, n_layers, n_elements) ndarray
        Element mass fractions per layer, top first (elements in the order of ``elements``).
    areal_g_cm2 : (n, n_layers) ndarray
        Mass thickness ``rho t`` of each layer (g/cm2).
    elements : tuple of str
        The element axis of ``mass_frac``.
    instrument : Instrument
        Tube, geometry, detector; ``instrument.secondary`` switches secondary fluorescence.
    calibration : EnergyCalibration
        Output energy axis (keV).
    n_channels : int
    scatter_scale : float or (n,) ndarray
        Factor on the scattered tube spectrum per stack.
    block : int, optional
        Stacks rendered per block (bounds memory; None: all at once). Keep it fixed for
        bit-identical results: the float32 matrix product may round differently per block size.
    dtype : numpy dtype
        Precision of the self-absorption term (see :func:`intensities`).
    layer_elements : bool
        Also return the detected line intensity each layer's elements deliver, ``(n, n_layers,
        n_elements)`` on the same scale (lines only, detector efficiency included), from the same
        pass: what makes a pigment detectable from the layer that holds it (see :func:`layer_photons`).

    Returns
    -------
    (n, n_channels) ndarray, float64
        Expected counts on the physical scale (photons per sr per tube unit); give them to
        :func:`finish_spectra` for pile-up, background, count level and noise. With
        ``layer_elements``, a tuple ``(spectra, layer_element_lines)``.
    """
    mf = np.asarray(mass_frac)
    rt = np.asarray(areal_g_cm2)
    tables = build_tables(tuple(elements), instrument)
    n = mf.shape[0]
    step = n if block is None else max(1, int(block))
    layers = np.empty(mf.shape[:2] + (len(tables.lines),)) if layer_elements else None
    if step >= n:
        li, ra, co = intensities(mf, rt, tables, secondary=instrument.secondary, dtype=dtype, layers_out=layers)
        out = render(li, ra, co, tables, instrument, calibration, n_channels, scatter_scale=scatter_scale)
    else:
        out = np.empty((n, n_channels))
        sc = np.asarray(scatter_scale, dtype=np.float64)
        for a in range(0, n, step):
            b = min(n, a + step)
            li, ra, co = intensities(mf[a:b], rt[a:b], tables, secondary=instrument.secondary, dtype=dtype,
                                     layers_out=None if layers is None else layers[a:b])
            out[a:b] = render(li, ra, co, tables, instrument, calibration, n_channels,
                              scatter_scale=sc[a:b] if sc.ndim else scatter_scale)
    if layers is None:
        return out
    onehot = np.zeros((len(tables.lines), len(elements)))
    onehot[np.arange(len(tables.lines)), tables.line_el] = 1.0
    return out, layers @ onehot


def layer_photons(layer_element_lines: np.ndarray, physical_total: np.ndarray, total_counts: np.ndarray,
                  background_fraction: float | np.ndarray, two_paint_layers: np.ndarray) -> np.ndarray:
    """Expected photons each element of the upper (0) and lower (1) paint layer puts into a spectrum.

    ``layer_element_lines`` (n, n_layers, E) and ``physical_total`` (n,) are :func:`render_stacks`' outputs
    (``spectra.sum(axis=1)``); ``total_counts`` (n,) and ``background_fraction`` (scalar or (n,), the share of
    the counts :func:`finish_spectra` gives the background) are what the spectra were finished with. Where a
    stack has one paint layer (``two_paint_layers`` False) layer 1 is the ground and its entry is 0.

    Returns
    -------
    (n, 2, E) ndarray
    """
    share = np.asarray(total_counts, dtype=np.float64) * (1.0 - np.clip(background_fraction, 0.0, 0.95))
    share = share / np.maximum(np.asarray(physical_total, dtype=np.float64), 1e-30)
    out = np.asarray(layer_element_lines)[:, :2] * share[:, None, None]
    out[~np.asarray(two_paint_layers, dtype=bool), 1] = 0.0
    return out


def finish_spectra(spectra: np.ndarray, calibration: EnergyCalibration, *, pileup_fraction: float | np.ndarray = 0.0,
                   background: np.ndarray | None = None, total_counts: float | np.ndarray | None = None,
                   rng: np.random.Generator | None = None) -> np.ndarray:
    """Pile-up, background, scaling to ``total_counts`` per spectrum and Poisson noise.

    ``background`` (n_channels,) or (n, n_channels) is added after scaling the fluorescence to the
    counts it does not cover: it is given in *fractions of the total counts* per channel. With
    ``rng=None`` the expected (float) spectrum is returned, otherwise uint32 Poisson counts.
    """
    s = apply_pileup(spectra, calibration, pileup_fraction)
    if total_counts is not None:
        tot = s.sum(axis=1, keepdims=True)
        if np.any(tot <= 0):
            raise SimulationError("a simulated spectrum has no counts; check the tube voltage and the stack")
        n = np.asarray(total_counts, dtype=np.float64).reshape(-1, 1) if np.ndim(total_counts) else float(total_counts)
        if background is not None:
            bg = np.asarray(background, dtype=np.float64)
            bg_frac = np.clip(bg.sum(axis=-1, keepdims=True), 0.0, 0.95) if bg.ndim == 2 else min(bg.sum(), 0.95)
            s = s / tot * n * (1.0 - bg_frac) + bg * n
        else:
            s = s / tot * n
    if rng is None:
        return s
    return rng.poisson(np.clip(s, 0.0, None)).astype(np.uint32)


def simulate_spectra(stacks: Sequence[Stack], instrument: Instrument, calibration: EnergyCalibration, n_channels: int,
                     *, seed: int | None = None, total_counts: float | None = 1e5, library=None,
                     background: np.ndarray | None = None, noise: bool = True,
                     dtype=np.float32) -> np.ndarray:
    """Simulated spectra of layer stacks, ``(n_stacks, n_channels)``.

    Parameters
    ----------
    stacks : sequence of Stack
        Layer stacks, top first; compositions are pigment names/abbreviations -> mass fractions.
    instrument : Instrument
    calibration : EnergyCalibration
        Output energy axis.
    n_channels : int
    seed : int, optional
        Seed for the Poisson noise.
    total_counts : float, optional
        Counts per spectrum (``None``: keep the physical scale, photons per sr per tube unit).
    library : PigmentLibrary, optional
        Default: :func:`xrfcore.library.load_library`.
    background : (n_channels,) ndarray, optional
        Extra background as fractions of ``total_counts`` per channel.
    noise : bool
        Poisson noise (uint32) or expected counts (float64).
    dtype : numpy dtype
        Precision of the self-absorption term (see :func:`intensities`).
    """
    from xrfcore.library import load_library

    lib = library if library is not None else load_library()
    if not stacks:
        raise SimulationError("no stacks to simulate")
    elements = library_elements(lib)
    els, mf, rt = stack_composition(stacks, lib, elements)
    spec = render_stacks(mf, rt, elements, instrument, calibration, n_channels, dtype=dtype)
    rng = np.random.default_rng(seed) if noise else None
    return finish_spectra(spec, calibration, pileup_fraction=instrument.pileup_fraction, background=background,
                          total_counts=total_counts, rng=rng)
