"""X-ray tube spectrum on a discrete excitation grid (PyMca5 ``XRayTubeEbel``).

The continuum is sampled at bin centres of width ``step_kev`` and multiplied by the bin width,
so each grid point carries the photons of its bin; the anode's K lines are appended. Ebel's
model gives K lines only (a W anode below 69.5 kV has no characteristic lines in it).

References
----------
H. Ebel, "X-ray tube spectra", X-Ray Spectrom. 28 (1999) 255-266, as implemented in PyMca5.
"""

from __future__ import annotations

import functools

import numpy as np

from xrfcore.errors import SimulationError

__all__ = ["excitation_grid", "anode_line_energies", "tube_weights"]

#: Lowest excitation energy modelled (keV); lower photons barely reach the sample through air.
E_MIN_KEV = 1.0


@functools.lru_cache(maxsize=32)
def anode_line_energies(anode: str) -> tuple[float, ...]:
    """Energies (keV) of the anode's K lines as Ebel's model lists them."""
    from PyMca5.PyMcaPhysics.xrf import XRayTubeEbel

    lines = XRayTubeEbel.characteristicEbel(anode, 100.0, window=None)
    return tuple(float(ln[0]) for ln in lines)


@functools.lru_cache(maxsize=32)
def excitation_grid(anode: str, max_kv: float, step_kev: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Excitation energies: continuum bin centres up to ``max_kv`` plus anode lines below it.

    Returns
    -------
    energies_kev : (n_e0,) float64
    is_line : (n_e0,) bool
        True for the anode's characteristic lines.
    bin_width_kev : (n_e0,) float64
        Continuum bin width; 0 for lines.
    """
    if step_kev <= 0:
        raise SimulationError(f"excitation step must be > 0 keV, got {step_kev}")
    centres = np.arange(E_MIN_KEV + step_kev / 2, max_kv, step_kev)
    lines = np.array([e for e in anode_line_energies(anode) if e < max_kv])
    energies = np.concatenate([centres, lines])
    is_line = np.concatenate([np.zeros(centres.size, bool), np.ones(lines.size, bool)])
    width = np.where(is_line, 0.0, step_kev)
    for a in (energies, is_line, width):
        a.setflags(write=False)
    return energies, is_line, width


@functools.lru_cache(maxsize=128)
def tube_weights(anode: str, tube_kv: float, max_kv: float, step_kev: float, *, window_be_um: float = 125.0,
                 filters: tuple[tuple[str, float, float], ...] = (), angle_e_deg: float = 90.0,
                 angle_x_deg: float = 6.0) -> np.ndarray:
    """Photons per grid point (arbitrary common unit), shape ``(n_e0,)`` of :func:`excitation_grid`.

    Parameters
    ----------
    anode : str
        Anode element, e.g. ``'Rh'`` or ``'W'``.
    tube_kv : float
        Tube voltage (kV), at most ``max_kv``.
    window_be_um : float
        Tube Be window (um).
    filters : tuple of (formula, density_g_cm3, thickness_um)
        Extra filters in the primary beam.
    """
    from PyMca5.PyMcaPhysics.xrf import XRayTubeEbel

    if tube_kv > max_kv + 1e-9:
        raise SimulationError(f"tube voltage {tube_kv} kV is above the excitation grid maximum {max_kv} kV")
    energies, is_line, width = excitation_grid(anode, max_kv, step_kev)
    window = ["Be", 1.848, window_be_um * 1e-4] if window_be_um > 0 else None
    flist = [[f, d, t * 1e-4] for f, d, t in filters] or None
    kw = dict(window=window, alphae=angle_e_deg, alphax=angle_x_deg, filterlist=flist)
    w = np.zeros(energies.size)
    cont = ~is_line & (energies < tube_kv)
    w[cont] = XRayTubeEbel.continuumEbel(anode, float(tube_kv), energies[cont], **kw) * width[cont]
    for e_line, intensity, _ in XRayTubeEbel.characteristicEbel(anode, float(tube_kv), **kw):
        hit = np.flatnonzero(is_line & np.isclose(energies, e_line))
        if hit.size:
            w[hit[0]] += float(intensity)
    w = np.nan_to_num(np.clip(w, 0.0, None)) / 1e7
    w.setflags(write=False)
    return w
