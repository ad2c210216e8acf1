"""X-ray emission line table (xraylib), filtered to what an X-ray tube can excite.

Tables are built on first use and cached (``functools.lru_cache``); nothing runs at import.
Energies in keV. ``relative_rate`` compares lines of one family (K, L or M) of one element:
the fluorescence production cross section (xraylib ``CS_FluorLine_Kissel_Cascade``, with
cascade effects) at a representative excitation energy, divided by the family's strongest line.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

__all__ = [
    "Line",
    "LineGroup",
    "emission_lines",
    "line_groups",
    "line_families",
    "lines_in_range",
    "candidate_elements",
    "principal_group",
    "element_symbol",
    "ELEMENT_RANGE",
    "absorption_edges",
]

#: Atomic numbers covered (Na..U): lighter elements have no lines above ~1 keV.
ELEMENT_RANGE = (11, 92)
#: Lines below this energy (keV) are left out: air and the detector window absorb them.
MIN_LINE_KEV = 1.0

# (IUPAC name, Siegbahn name, group, family, initial shell)
_LINES = (
    ("KL3", "Ka1", "Ka", "K", "K"),
    ("KL2", "Ka2", "Ka", "K", "K"),
    ("KM3", "Kb1", "Kb", "K", "K"),
    ("KM2", "Kb3", "Kb", "K", "K"),
    ("KN3", "Kb2", "Kb", "K", "K"),
    ("KM5", "Kb5", "Kb", "K", "K"),
    ("L3M5", "La1", "La", "L", "L3"),
    ("L3M4", "La2", "La", "L", "L3"),
    ("L3N5", "Lb2", "Lb", "L", "L3"),
    ("L3N4", "Lb15", "Lb", "L", "L3"),
    ("L3O45", "Lb5", "Lb", "L", "L3"),
    ("L3N1", "Lb6", "Lb", "L", "L3"),
    ("L3M1", "Ll", "Ll", "L", "L3"),
    ("L2M4", "Lb1", "Lb", "L", "L2"),
    ("L2N4", "Lg1", "Lg", "L", "L2"),
    ("L2O4", "Lg6", "Lg", "L", "L2"),
    ("L2M1", "Ln", "Ln", "L", "L2"),
    ("L1M3", "Lb3", "Lb", "L", "L1"),
    ("L1M2", "Lb4", "Lb", "L", "L1"),
    ("L1N3", "Lg3", "Lg", "L", "L1"),
    ("L1N2", "Lg2", "Lg", "L", "L1"),
    ("M5N7", "Ma1", "Ma", "M", "M5"),
    ("M5N6", "Ma2", "Ma", "M", "M5"),
    ("M4N6", "Mb", "Mb", "M", "M4"),
    ("M3N5", "Mg", "Mg", "M", "M3"),
)
#: Weak L lines (1-3 % of L-alpha) added after the first evidence models were trained: L3-N4 (Lb15), L3-O4,5
#: (Lb5, at the L3 edge: Hg 12.28, Pb 13.02 keV) and L2-O4 (Lg6). Without them thick vermilion's Hg Lb5
#: (~2 % of Hg La) was fitted by Pb's L1 template and the misfit inflated every sigma of those pixels.
MINOR_L_LINES = frozenset({"L3N4", "L3O45", "L2O4"})
_FAMILY_SHELLS = {"K": ("K",), "L": ("L1", "L2", "L3"), "M": ("M3", "M4", "M5")}
#: The group a family is usually mapped with, and its companion used to confirm it.
MAIN_GROUP = {"K": "Ka", "L": "La", "M": "Ma"}
SECOND_GROUP = {"K": "Kb", "L": "Lb", "M": "Mb"}


@dataclass(frozen=True)
class Line:
    """One emission line.

    Attributes
    ----------
    element : str  (e.g. ``"Fe"``)
    family : str  (``"K"``, ``"L"`` or ``"M"``)
    name : str  (IUPAC and Siegbahn, e.g. ``"KL3/Ka1"``)
    label : str  (group label, e.g. ``"Fe Ka"``)
    energy_kev : float
    relative_rate : float  (0..1, relative to the strongest line of the family)
    """

    element: str
    family: str
    name: str
    label: str
    energy_kev: float
    relative_rate: float

    @property
    def group(self) -> str:
        return self.label.split()[-1]


@dataclass(frozen=True)
class LineGroup:
    """Lines of one group (``Ka``, ``Kb``, ``La``, ...) merged: rate-weighted mean energy (keV)."""

    element: str
    family: str
    group: str
    energy_kev: float
    relative_rate: float

    @property
    def label(self) -> str:
        return f"{self.element} {self.group}"


def _xraylib():
    try:
        import xraylib
    except ImportError as exc:  # pragma: no cover - installed with the project
        raise ImportError("the emission line table needs xraylib: pip install xraylib") from exc
    return xraylib


def element_symbol(element: str | int) -> str:
    """Normalise ``"fe"``, ``"Fe"`` or ``26`` to ``"Fe"``; raises ConfigError if unknown."""
    from xrfcore.errors import ConfigError

    xrl = _xraylib()
    try:
        z = int(element) if isinstance(element, int) or str(element).isdigit() else xrl.SymbolToAtomicNumber(
            str(element).strip().capitalize()
        )
        symbol = xrl.AtomicNumberToSymbol(z)
    except ValueError:
        z, symbol = 0, ""
    if not (ELEMENT_RANGE[0] <= z <= ELEMENT_RANGE[1]):
        raise ConfigError(
            f"unknown or unsupported element {element!r}; use a chemical symbol from Na to U, e.g. 'Fe' or 'Pb'"
        )
    return symbol


def _edge(xrl, z: int, shell: str) -> float:
    try:
        return float(xrl.EdgeEnergy(z, getattr(xrl, f"{shell}_SHELL")))
    except ValueError:
        return float("inf")


@functools.lru_cache(maxsize=None)
def _lines_cached(symbol: str, tube_kv: float | None, families: tuple[str, ...],
                  minor_l: bool = True) -> tuple[Line, ...]:
    xrl = _xraylib()
    z = xrl.SymbolToAtomicNumber(symbol)
    out: list[Line] = []
    for fam in families:
        shells = [s for s in _FAMILY_SHELLS[fam] if tube_kv is None or _edge(xrl, z, s) < tube_kv]
        if not shells:
            continue
        top = max(_edge(xrl, z, s) for s in shells)
        e_exc = 0.5 * (top + tube_kv) if tube_kv is not None else 1.3 * top
        raw = []
        for iupac, siegbahn, group, f, shell in _LINES:
            if f != fam or shell not in shells or (not minor_l and iupac in MINOR_L_LINES):
                continue
            macro = getattr(xrl, f"{iupac}_LINE")
            try:
                energy = float(xrl.LineEnergy(z, macro))
                cs = float(xrl.CS_FluorLine_Kissel_Cascade(z, macro, e_exc))
            except ValueError:
                continue
            if energy >= MIN_LINE_KEV and cs > 0:
                raw.append((iupac, siegbahn, group, energy, cs))
        if not raw:
            continue
        peak = max(r[4] for r in raw)
        for iupac, siegbahn, group, energy, cs in raw:
            out.append(Line(symbol, fam, f"{iupac}/{siegbahn}", f"{symbol} {group}", energy, cs / peak))
    return tuple(sorted(out, key=lambda line: line.energy_kev))


def emission_lines(
    element: str | int,
    *,
    tube_kv: float | None = None,
    families: tuple[str, ...] = ("K", "L", "M"),
    minor_l: bool = True,
) -> list[Line]:
    """Emission lines of ``element`` above 1 keV, sorted by energy.

    Parameters
    ----------
    element : str or int
        Symbol (``"Fe"``) or atomic number.
    tube_kv : float, optional
        Tube voltage (kV): lines whose initial shell's absorption edge is not below it are
        dropped (the tube cannot excite them). ``None`` keeps all.
    families : tuple of {"K", "L", "M"}
    minor_l : bool
        Include :data:`MINOR_L_LINES` (evidence models trained before they were added pass False).

    Returns
    -------
    list of Line

    Examples
    --------
    >>> [l.name for l in emission_lines("Fe", families=("K",))][:2]
    ['KL2/Ka2', 'KL3/Ka1']
    >>> emission_lines("Pb", tube_kv=40, families=("K",))
    []
    """
    fams = tuple(f for f in ("K", "L", "M") if f in families)
    kv = None if tube_kv is None else float(tube_kv)
    return list(_lines_cached(element_symbol(element), kv, fams, bool(minor_l)))


@functools.lru_cache(maxsize=None)
def _groups_cached(symbol: str, tube_kv: float | None, minor_l: bool = True) -> tuple[LineGroup, ...]:
    lines = _lines_cached(symbol, tube_kv, ("K", "L", "M"), minor_l)
    groups: dict[tuple[str, str], list[Line]] = {}
    for line in lines:
        groups.setdefault((line.family, line.group), []).append(line)
    out = []
    for (fam, grp), members in groups.items():
        rate = sum(m.relative_rate for m in members)
        energy = sum(m.energy_kev * m.relative_rate for m in members) / rate
        out.append(LineGroup(symbol, fam, grp, energy, rate))
    fam_peak = {}
    for g in out:
        fam_peak[g.family] = max(fam_peak.get(g.family, 0.0), g.relative_rate)
    return tuple(
        sorted(
            (LineGroup(g.element, g.family, g.group, g.energy_kev, g.relative_rate / fam_peak[g.family]) for g in out),
            key=lambda g: g.energy_kev,
        )
    )


def line_groups(element: str | int, *, tube_kv: float | None = None, minor_l: bool = True) -> list[LineGroup]:
    """Line groups (Ka, Kb, La, Lb, Lg, Ll, Ln, Ma, Mb, Mg) with mean energy and relative rate.

    ``minor_l``: include :data:`MINOR_L_LINES` in their groups (see :func:`emission_lines`).
    """
    kv = None if tube_kv is None else float(tube_kv)
    return list(_groups_cached(element_symbol(element), kv, bool(minor_l)))


def line_families(element: str | int, tube_kv: float | None = None) -> dict[str, dict[str, float]]:
    """Main group energies (keV) per family, e.g. ``{"K": {"Ka": 6.40, "Kb": 7.06}, ...}``.

    Examples
    --------
    >>> fams = line_families("Fe", 40)
    >>> round(fams["K"]["Ka"], 2), round(fams["K"]["Kb"], 2)
    (6.4, 7.06)
    """
    out: dict[str, dict[str, float]] = {}
    for g in line_groups(element, tube_kv=tube_kv):
        out.setdefault(g.family, {})[g.group] = g.energy_kev
    return out


def principal_group(
    element: str | int,
    *,
    tube_kv: float = 40.0,
    max_energy_kev: float | None = None,
    min_energy_kev: float | None = None,
) -> LineGroup:
    """The group an element is usually mapped with: Ka, or La (or Ma) for heavy elements.

    K is used when the K edge is at most 70 % of the tube voltage (so the K lines are excited
    efficiently) and Ka lies inside ``[min_energy_kev, max_energy_kev]``; otherwise La, else Ma.
    At 40 kV: Fe, Cu, Zn, As, Cd -> Ka; Sn, Ba, Hg, Pb -> La.

    Raises
    ------
    ConfigError
        If no group of the element is excitable and inside the energy range.
    """
    from xrfcore.errors import ConfigError

    symbol = element_symbol(element)
    xrl = _xraylib()
    z = xrl.SymbolToAtomicNumber(symbol)
    groups = {(g.family, g.group): g for g in line_groups(symbol, tube_kv=tube_kv)}

    def inside(g: LineGroup) -> bool:
        return (max_energy_kev is None or g.energy_kev <= max_energy_kev) and (
            min_energy_kev is None or g.energy_kev >= min_energy_kev
        )

    k = groups.get(("K", "Ka"))
    if k is not None and _edge(xrl, z, "K") <= 0.7 * tube_kv and inside(k):
        return k
    for fam in ("L", "M"):
        g = groups.get((fam, MAIN_GROUP[fam]))
        if g is not None and inside(g):
            return g
    if k is not None and inside(k):
        return k
    raise ConfigError(
        f"{symbol} has no line a {tube_kv:g} kV tube excites inside "
        f"{min_energy_kev if min_energy_kev is not None else 0:.2f}-"
        f"{max_energy_kev if max_energy_kev is not None else float('inf'):.2f} keV; drop it from the element list"
    )


@functools.lru_cache(maxsize=None)
def _all_lines(tube_kv: float | None) -> tuple[Line, ...]:
    xrl = _xraylib()
    out: list[Line] = []
    for z in range(ELEMENT_RANGE[0], ELEMENT_RANGE[1] + 1):
        out.extend(_lines_cached(xrl.AtomicNumberToSymbol(z), tube_kv, ("K", "L", "M")))
    return tuple(sorted(out, key=lambda line: line.energy_kev))


def lines_in_range(
    e0_kev: float,
    e1_kev: float,
    *,
    elements: list[str] | None = None,
    tube_kv: float | None = 40,
    min_rate: float = 0.01,
) -> list[Line]:
    """Lines with ``e0_kev <= energy <= e1_kev`` and ``relative_rate >= min_rate`` (plot labels)."""
    kv = None if tube_kv is None else float(tube_kv)
    if elements is not None:
        pool = [line for el in elements for line in _lines_cached(element_symbol(el), kv, ("K", "L", "M"))]
    else:
        pool = list(_all_lines(kv))
    return sorted(
        (line for line in pool if e0_kev <= line.energy_kev <= e1_kev and line.relative_rate >= min_rate),
        key=lambda line: line.energy_kev,
    )


def candidate_elements(
    energy_kev: float,
    tolerance_kev: float = 0.1,
    *,
    tube_kv: float | None = 40,
    groups: tuple[str, ...] = ("Ka", "La", "Ma", "Kb", "Lb"),
) -> list[str]:
    """Elements with a main line group within ``tolerance_kev`` of ``energy_kev``, nearest first.

    Examples
    --------
    >>> "Fe" in candidate_elements(6.40, 0.05)
    True
    """
    kv = None if tube_kv is None else float(tube_kv)
    xrl = _xraylib()
    best: dict[str, float] = {}
    for z in range(ELEMENT_RANGE[0], ELEMENT_RANGE[1] + 1):
        symbol = xrl.AtomicNumberToSymbol(z)
        for g in _groups_cached(symbol, kv):
            if g.group in groups:
                d = abs(g.energy_kev - energy_kev)
                if d <= tolerance_kev and d < best.get(symbol, float("inf")):
                    best[symbol] = d
    return sorted(best, key=best.get)


@functools.lru_cache(maxsize=None)
def _edges_cached(symbol: str, tube_kv: float | None) -> tuple[tuple[str, float], ...]:
    xrl = _xraylib()
    z = xrl.SymbolToAtomicNumber(symbol)
    out = []
    for shell in ("K", "L1", "L2", "L3"):
        e = _edge(xrl, z, shell)
        if math.isfinite(e) and e >= MIN_LINE_KEV and (tube_kv is None or e < tube_kv):
            out.append((shell, e))
    return tuple(out)


def absorption_edges(element: str | int, *, tube_kv: float | None = None) -> list[tuple[str, float]]:
    """``(shell, energy_kev)`` of the element's K and L absorption edges above 1 keV (below ``tube_kv``).

    Examples
    --------
    >>> [(s, round(e, 2)) for s, e in absorption_edges("Pb", tube_kv=40)]
    [('L1', 15.86), ('L2', 15.2), ('L3', 13.04)]
    """
    kv = None if tube_kv is None else float(tube_kv)
    return list(_edges_cached(element_symbol(element), kv))

