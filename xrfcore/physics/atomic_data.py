"""Atomic data (xraylib 4.3) through explicit, cached loaders: nothing is tabulated at import.

All cross-sections are mass cross-sections in cm2/g; energies in keV. Tables are returned as
read-only numpy arrays so that no caller can modify a cached table.

Notes
-----
xraylib's line production cross-sections ``CS_FluorLine_Kissel_Cascade`` combine the shell's
photo-ionisation cross-section (Kissel), the fluorescence yield, the radiative rate, Coster-Kronig
transitions and the radiative + non-radiative cascade from deeper shells. PyMca uses its own
tables (EPDL97 photo cross-sections, its own yields and rates), which differ by up to a few
percent for L lines.

References
----------
Schoonjans et al., "The xraylib library for X-ray-matter interactions. Recent developments",
Spectrochim. Acta B 66 (2011) 776-784.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

__all__ = [
    "LineInfo",
    "atomic_number",
    "atomic_weight",
    "mass_attenuation",
    "emission_lines",
    "line_production",
    "rayleigh_dcs",
    "compton_dcs",
    "compton_energy",
    "SI_KA_KEV",
]

#: Si K-alpha energy (keV), the energy carried away by a detector escape event.
SI_KA_KEV = 1.7398

# (group, xraylib macro name) of the lines we model; weak lines are dropped per element.
_LINE_NAMES = {
    "K": ("KA1", "KA2", "KA3", "KB1", "KB3", "KB2", "KB5"),
    "L": ("LA1", "LA2", "LB1", "LB2", "LB3", "LB4", "LB5", "LB6", "LB15", "LG1", "LG2", "LG3", "LG6",
          "LL", "LE"),
    "M": ("MA1", "MA2", "MB", "MG"),
}


@dataclass(frozen=True)
class LineInfo:
    """One emission line: element, group (``'K'``, ``'L'``, ``'M'``), xraylib name, energy (keV)."""

    element: str
    group: str
    name: str
    energy_kev: float


def _ro(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a, dtype=np.float64)
    a.setflags(write=False)
    return a


@functools.lru_cache(maxsize=None)
def atomic_number(symbol: str) -> int:
    """Atomic number of an element symbol (ValueError if unknown)."""
    import xraylib

    z = int(xraylib.SymbolToAtomicNumber(symbol))
    if z <= 0:
        raise ValueError(f"unknown element {symbol!r}")
    return z


@functools.lru_cache(maxsize=None)
def atomic_weight(symbol: str) -> float:
    """Standard atomic weight (g/mol)."""
    import xraylib

    return float(xraylib.AtomicWeight(atomic_number(symbol)))


@functools.lru_cache(maxsize=64)
def mass_attenuation(elements: tuple[str, ...], energies_kev: tuple[float, ...]) -> np.ndarray:
    """Total mass attenuation coefficient (cm2/g), shape ``(n_elements, n_energies)``."""
    import xraylib_np

    z = np.array([atomic_number(e) for e in elements], dtype=np.int64)
    e = np.asarray(energies_kev, dtype=np.float64)
    return _ro(xraylib_np.CS_Total(z, np.clip(e, 0.1, None)))


@functools.lru_cache(maxsize=64)
def emission_lines(element: str, max_energy_kev: float, *, min_energy_kev: float = 0.9,
                   min_relative: float = 2e-3) -> tuple[LineInfo, ...]:
    """Lines of ``element`` between ``min_energy_kev`` and ``max_energy_kev`` worth modelling.

    A line is kept if its production cross-section at an energy just above its shell's
    edge group is at least ``min_relative`` of the strongest line of its group (K, L or M).
    """
    import xraylib

    z = atomic_number(element)
    out: list[LineInfo] = []
    for group, names in _LINE_NAMES.items():
        cands = []
        for name in names:
            macro = getattr(xraylib, f"{name}_LINE")
            try:
                energy = float(xraylib.LineEnergy(z, macro))
            except ValueError:
                continue
            if not (min_energy_kev <= energy <= max_energy_kev):
                continue
            probe = min(max_energy_kev, _edge_probe(z, group))
            try:
                strength = float(xraylib.CS_FluorLine_Kissel_Cascade(z, macro, probe))
            except ValueError:
                strength = 0.0
            cands.append((name, energy, strength))
        if not cands:
            continue
        top = max(s for _, _, s in cands)
        out += [LineInfo(element, group, n, e) for n, e, s in cands if top > 0 and s >= min_relative * top]
    return tuple(out)


def _edge_probe(z: int, group: str) -> float:
    import xraylib

    shell = {"K": xraylib.K_SHELL, "L": xraylib.L1_SHELL, "M": xraylib.M1_SHELL}[group]
    try:
        return float(xraylib.EdgeEnergy(z, shell)) * 1.2 + 0.5
    except ValueError:
        return 30.0


@functools.lru_cache(maxsize=64)
def line_production(lines: tuple[LineInfo, ...], energies_kev: tuple[float, ...]) -> np.ndarray:
    """Line production cross-section (cm2/g of the element), shape ``(n_energies, n_lines)``.

    xraylib ``CS_FluorLine_Kissel_Cascade``: photo-ionisation x yield x radiative rate, with
    Coster-Kronig and cascade; zero below the edge.
    """
    import xraylib

    e = np.asarray(energies_kev, dtype=np.float64)
    out = np.zeros((e.size, len(lines)))
    for j, ln in enumerate(lines):
        z = atomic_number(ln.element)
        macro = getattr(xraylib, f"{ln.name}_LINE")
        for i, en in enumerate(e):
            try:
                out[i, j] = xraylib.CS_FluorLine_Kissel_Cascade(z, macro, float(en))
            except ValueError:
                out[i, j] = 0.0
    return _ro(out)


@functools.lru_cache(maxsize=64)
def rayleigh_dcs(elements: tuple[str, ...], energies_kev: tuple[float, ...], theta_rad: float) -> np.ndarray:
    """Rayleigh differential cross-section (cm2/g/sr) at ``theta_rad``, ``(n_elements, n_energies)``."""
    import xraylib

    return _ro(np.array([[xraylib.DCS_Rayl(atomic_number(el), float(e), theta_rad) for e in energies_kev]
                         for el in elements]))


@functools.lru_cache(maxsize=64)
def compton_dcs(elements: tuple[str, ...], energies_kev: tuple[float, ...], theta_rad: float) -> np.ndarray:
    """Compton differential cross-section (cm2/g/sr) at ``theta_rad``, ``(n_elements, n_energies)``."""
    import xraylib

    return _ro(np.array([[xraylib.DCS_Compt(atomic_number(el), float(e), theta_rad) for e in energies_kev]
                         for el in elements]))


def compton_energy(energy_kev: np.ndarray, theta_rad: float) -> np.ndarray:
    """Energy (keV) of a photon Compton-scattered by ``theta_rad`` from a free electron at rest."""
    e = np.asarray(energy_kev, dtype=np.float64)
    return e / (1.0 + e / 510.998950 * (1.0 - np.cos(theta_rad)))
