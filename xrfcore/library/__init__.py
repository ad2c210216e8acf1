"""The pigment library: pigments as data (``pigments.json``), formulas, densities and classes.

A paint is pigment in an oil binder, pigment:binder 3:1 by mass (METHOD.md): a paint layer's
element composition is ``0.75 * (pigment mixture) + 0.25 * binder`` by mass, and its density
follows the volume-additive mixture rule ``1 / rho = sum_i w_i / rho_i`` (no porosity).

Examples
--------
>>> lib = load_library()
>>> lib.classes[:3]
('CrG', 'CrY', 'CB')
>>> lib.get("vermilion").abbr
'VM'
>>> round(element_mass_fractions("CaCO3")["Ca"], 4)
0.4004
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping

from xrfcore.atomic import atomic_write_text
from xrfcore.errors import LibraryError

__all__ = [
    "Pigment",
    "PigmentLibrary",
    "load_library",
    "library_from_dict",
    "visible_elements",
    "default_library_path",
    "parse_formula",
    "element_mass_fractions",
    "pymca_formula",
    "KEY_ELEMENTS",
    "key_elements",
]

#: The elements whose lines make each class detectable (METHOD.md "How this project scores itself").
KEY_ELEMENTS: dict[str, tuple[str, ...]] = {
    "CB": ("Co",), "EG": ("Cu", "As"), "IO": ("Fe",), "PB": ("Fe",), "CM": ("Sn",), "VM": ("Hg",), "ZW": ("Zn",),
    "CrY": ("Cr", "Pb"), "CrG": ("Cr",), "RL": ("Pb",), "LW": ("Pb",),
}

_TOKEN = re.compile(r"([A-Z][a-z]?|\(|\)|\[|\]|\d+(?:\.\d+)?)")


def default_library_path() -> Path:
    """Path of the library shipped with xrfcore (``xrfcore/library/pigments.json``)."""
    return Path(__file__).with_name("pigments.json")


@functools.lru_cache(maxsize=None)
def _atomic_number(symbol: str) -> int:
    import xraylib

    try:
        z = int(xraylib.SymbolToAtomicNumber(symbol))
    except ValueError:
        z = 0
    if z <= 0:
        raise LibraryError(f"unknown element {symbol!r}; element symbols are case-sensitive (e.g. 'Pb', 'Co')")
    return z


def _parse_part(text: str, formula: str) -> dict[str, float]:
    """Atom counts of one dot-free formula part (parentheses and brackets allowed)."""
    pos = 0
    tokens: list[str] = []
    for m in _TOKEN.finditer(text):
        if m.start() != pos:
            raise LibraryError(f"cannot parse formula {formula!r} near {text[pos:]!r}; use e.g. 'PbCrO4' or 'Fe4[Fe(CN)6]3'")
        tokens.append(m.group(0))
        pos = m.end()
    if pos != len(text) or not tokens:
        raise LibraryError(f"cannot parse formula {formula!r} near {text[pos:]!r}; use e.g. 'PbCrO4' or 'Fe4[Fe(CN)6]3'")
    stack: list[dict[str, float]] = [{}]
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        has_count = i + 1 < len(tokens) and tokens[i + 1][0].isdigit()
        count = float(tokens[i + 1]) if has_count else 1.0
        if tok in "([":
            stack.append({})
            i += 1
            continue
        if tok in ")]":
            if len(stack) < 2:
                raise LibraryError(f"unbalanced brackets in formula {formula!r}")
            group = stack.pop()
            for el, n in group.items():
                stack[-1][el] = stack[-1].get(el, 0.0) + n * count
        elif tok[0].isdigit():
            raise LibraryError(f"misplaced number {tok!r} in formula {formula!r}")
        else:
            _atomic_number(tok)
            stack[-1][tok] = stack[-1].get(tok, 0.0) + count
        i += 2 if has_count else 1
    if len(stack) != 1:
        raise LibraryError(f"unbalanced brackets in formula {formula!r}")
    return stack[0]


def _split_parts(text: str) -> list[str]:
    """Split at dots that join parts; a dot inside an element's count (``Ca0.5``) is a decimal point."""
    parts, start = [], 0
    for i, ch in enumerate(text):
        if ch != ".":
            continue
        j = i
        while j > 0 and text[j - 1].isdigit():
            j -= 1
        decimal = j < i and j > 0 and text[j - 1].isalpha() and i + 1 < len(text) and text[i + 1].isdigit()
        if not decimal:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


@functools.lru_cache(maxsize=256)
def _parse_formula_cached(formula: str) -> tuple[tuple[str, float], ...]:
    if not isinstance(formula, str) or not formula.strip():
        raise LibraryError(f"empty formula {formula!r}; give a chemical formula such as 'PbCrO4'")
    total: dict[str, float] = {}
    for part in _split_parts(formula.replace(" ", "").replace("·", ".")):
        if not part:
            raise LibraryError(f"cannot parse formula {formula!r}: empty part between dots")
        m = re.match(r"^(\d+(?:\.\d+)?)?(.*)$", part)
        mult = float(m.group(1)) if m.group(1) else 1.0
        for el, n in _parse_part(m.group(2), formula).items():
            total[el] = total.get(el, 0.0) + mult * n
    return tuple(total.items())


def parse_formula(formula: str) -> dict[str, float]:
    """Atom counts of a formula such as ``'2PbCO3.Pb(OH)2'`` (dots join parts; brackets nest).

    Counts may be decimal (``'Ca0.5Mg0.5CO3'``): a dot between an element's count and a digit is a
    decimal point, so a multiplied part must not follow a count (write ``'3PbO.500Fe2O3'``, not
    ``'500Fe2O3.3PbO'``); part multipliers are integers.

    Raises
    ------
    LibraryError
        If the formula cannot be parsed or names an element unknown to xraylib.
    """
    return dict(_parse_formula_cached(formula))


def element_mass_fractions(formula: str) -> dict[str, float]:
    """Mass fraction of each element of ``formula`` (sums to 1)."""
    import xraylib

    counts = parse_formula(formula)
    masses = {el: n * xraylib.AtomicWeight(_atomic_number(el)) for el, n in counts.items()}
    total = sum(masses.values())
    return {el: m / total for el, m in masses.items()}


def pymca_formula(formula: str) -> str:
    """The formula with explicit integer-or-decimal counts, as PyMca's parser wants (``Ca1C1O3``)."""
    parts = []
    for el, n in parse_formula(formula).items():
        parts.append(f"{el}{int(n) if float(n).is_integer() else round(n, 6)}")
    return "".join(parts)


@dataclass(frozen=True)
class Pigment:
    """One library entry.

    Parameters
    ----------
    name, abbr : str
        Full name and abbreviation (both unique, case-insensitive).
    formula : str
        Chemical formula as modelled, e.g. ``'2PbCO3.Pb(OH)2'``.
    density_g_cm3 : float
        Density of the pure pigment (g/cm3), > 0.
    density_source, colour, notes : str
        Where the density comes from; a hex colour for plots; free text.
    label : str or None
        The model class it counts as (``'EG'`` for verdigris), ``None`` for ground and binder.
    """

    name: str
    abbr: str
    formula: str
    density_g_cm3: float
    density_source: str = ""
    colour: str = "#808080"
    notes: str = ""
    label: str | None = None

    def elements(self) -> dict[str, float]:
        """Element mass fractions of the pigment."""
        return element_mass_fractions(self.formula)


def _validate(p: Pigment) -> None:
    if not p.name or not p.abbr:
        raise LibraryError(f"pigment {p!r} needs a non-empty name and abbreviation")
    element_mass_fractions(p.formula)
    try:
        rho = float(p.density_g_cm3)
    except (TypeError, ValueError):
        rho = float("nan")
    if not rho > 0 or rho != rho:
        raise LibraryError(
            f"pigment {p.name!r}: density must be > 0 g/cm3, got {p.density_g_cm3!r}; give the bulk density"
        )


@dataclass
class PigmentLibrary:
    """The pigments, the model classes and the paint recipe.

    ``classes`` are the model outputs (class abbreviations, METHOD.md order); ``class_names``
    their full names. ``binder`` and ``ground`` are abbreviations of library entries.
    """

    pigments: list[Pigment]
    classes: tuple[str, ...]
    class_names: tuple[str, ...]
    version: int = 1
    binder: str = "OIL"
    ground: str = "CaCO3"
    pigment_to_binder_mass_ratio: float = 3.0
    _index: dict[str, Pigment] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._index = {}
        for p in self.pigments:
            self._register(p)

    def _register(self, p: Pigment) -> None:
        for key in (p.name.lower(), p.abbr.lower()):
            if key in self._index:
                raise LibraryError(f"pigment name or abbreviation {key!r} is used twice in the library")
        self._index[p.name.lower()] = p
        self._index[p.abbr.lower()] = p

    def __iter__(self):
        return iter(self.pigments)

    def __len__(self) -> int:
        return len(self.pigments)

    def names(self) -> list[str]:
        return [p.abbr for p in self.pigments]

    def get(self, name_or_abbr: str) -> Pigment:
        """Pigment by name or abbreviation (case-insensitive); LibraryError if unknown."""
        p = self._index.get(str(name_or_abbr).lower())
        if p is None:
            known = ", ".join(f"{q.abbr} ({q.name})" for q in self.pigments)
            raise LibraryError(f"unknown pigment {name_or_abbr!r}; known pigments: {known}")
        return p

    def pigments_of_class(self, cls: str) -> list[Pigment]:
        """Pigments whose ``label`` is ``cls``."""
        return [p for p in self.pigments if p.label == cls]

    def add(self, pigment: Pigment) -> None:
        """Validate and add a pigment (formula parseable, elements known, density > 0)."""
        _validate(pigment)
        if pigment.label is not None and pigment.label not in self.classes:
            self.classes = self.classes + (pigment.label,)
            self.class_names = self.class_names + (pigment.name,)
        self._register(pigment)
        self.pigments.append(pigment)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "binder": self.binder,
            "ground": self.ground,
            "pigment_to_binder_mass_ratio": self.pigment_to_binder_mass_ratio,
            "pigments": [asdict(p) for p in self.pigments],
            "classes": [[c, n] for c, n in zip(self.classes, self.class_names)],
        }

    def save(self, path: str | Path) -> None:
        """Write the library as JSON, atomically."""
        atomic_write_text(path, json.dumps(self.to_dict(), indent=2) + "\n")

    # -- paint ------------------------------------------------------------------
    def paint_elements(self, fractions: Mapping[str, float]) -> dict[str, float]:
        """Element mass fractions of a paint: pigment mixture (mass fractions) in binder.

        The ground (CaCO3) is used neat, without binder, when it is the only component.
        """
        binder_w = 1.0 / (1.0 + self.pigment_to_binder_mass_ratio)
        comp = _mixture_components(self, fractions, binder_w)
        out: dict[str, float] = {}
        for p, w in comp:
            for el, f in p.elements().items():
                out[el] = out.get(el, 0.0) + w * f
        return out

    def paint_density(self, fractions: Mapping[str, float]) -> float:
        """Density (g/cm3) of a paint by the volume-additive rule ``1/rho = sum w_i/rho_i``."""
        binder_w = 1.0 / (1.0 + self.pigment_to_binder_mass_ratio)
        comp = _mixture_components(self, fractions, binder_w)
        return 1.0 / sum(w / p.density_g_cm3 for p, w in comp)


def _mixture_components(lib: PigmentLibrary, fractions: Mapping[str, float], binder_w: float):
    pig = [(lib.get(k), float(v)) for k, v in fractions.items() if float(v) > 0]
    if not pig:
        raise LibraryError(f"empty paint composition {dict(fractions)!r}; give pigment -> mass fraction")
    ground = lib.get(lib.ground)
    if len(pig) == 1 and pig[0][0] is ground:
        return [(ground, 1.0)]
    binder = lib.get(lib.binder)
    total = sum(w for _, w in pig)
    return [(p, (1.0 - binder_w) * w / total) for p, w in pig] + [(binder, binder_w)]


def load_library(path: str | Path | None = None) -> PigmentLibrary:
    """Load and validate a pigment library JSON file (the shipped one by default).

    Raises
    ------
    LibraryError
        If the file is missing, not valid JSON, or an entry is invalid.
    """
    p = Path(path) if path is not None else default_library_path()
    return library_from_dict(_read_json(str(p)), source=f"pigment library {p}")


def library_from_dict(doc: dict, *, source: str = "pigment library") -> PigmentLibrary:
    """Validate a library document (the JSON of :meth:`PigmentLibrary.to_dict`) in memory.

    Parameters
    ----------
    doc : dict
        ``pigments`` (list of Pigment fields), ``classes`` (``[[abbr, name], ...]``), optional
        ``version``, ``binder``, ``ground``, ``pigment_to_binder_mass_ratio``.
    source : str
        What the document is, for messages (e.g. the file it came from).

    Returns
    -------
    PigmentLibrary

    Raises
    ------
    LibraryError
        Naming the bad row (pigment number and name) or key: a missing or unknown field, a
        formula that does not parse, a density that is not > 0, a duplicate name, or a binder or
        ground that is not in the library.
    """
    if not isinstance(doc, dict):
        raise LibraryError(f"{source}: expected an object with 'pigments' and 'classes', got {type(doc).__name__}")
    for key in ("pigments", "classes"):
        if key not in doc:
            raise LibraryError(f"{source} lacks the key {key!r}; a library has 'pigments' and 'classes'")
    if not isinstance(doc["pigments"], list):
        raise LibraryError(f"{source}: 'pigments' must be a list of pigment objects")
    pigments = []
    for i, d in enumerate(doc["pigments"]):
        row = f"{source}: pigment {i + 1}" + (f" ({d.get('name')!r})" if isinstance(d, dict) and d.get("name") else "")
        if not isinstance(d, dict):
            raise LibraryError(f"{row} must be an object of pigment fields, got {type(d).__name__}")
        try:
            pg = Pigment(**d)
        except TypeError as exc:
            raise LibraryError(f"{row} lacks a field or has an unknown one: {exc}") from None
        try:
            _validate(pg)
        except LibraryError as exc:
            raise LibraryError(f"{row}: {exc}") from None
        pigments.append(pg)
    try:
        classes = tuple(str(c) for c, _ in doc["classes"])
        names = tuple(str(n) for _, n in doc["classes"])
    except (TypeError, ValueError) as exc:
        raise LibraryError(f"{source}: 'classes' must be [[abbreviation, name], ...] ({exc})") from None
    try:
        ratio = float(doc.get("pigment_to_binder_mass_ratio", 3.0))
        version = int(doc.get("version", 1))
    except (TypeError, ValueError) as exc:
        raise LibraryError(f"{source}: 'version' and 'pigment_to_binder_mass_ratio' must be numbers ({exc})") from None
    try:
        lib = PigmentLibrary(
            pigments=pigments,
            classes=classes,
            class_names=names,
            version=version,
            binder=doc.get("binder", "OIL"),
            ground=doc.get("ground", "CaCO3"),
            pigment_to_binder_mass_ratio=ratio,
        )
        lib.get(lib.binder), lib.get(lib.ground)
    except LibraryError as exc:
        raise LibraryError(f"{source}: {exc}") from None
    return lib


def visible_elements(library: PigmentLibrary, cls: str, *, tube_kv: float = 40.0, min_kev: float = 2.8) -> list[str]:
    """Elements of a pigment class that emit a line the detector sees, heaviest mass fraction first.

    Parameters
    ----------
    library : PigmentLibrary
    cls : str
        A class abbreviation (``"EG"``) or a pigment name/abbreviation. A class with stand-ins
        (emerald green: verdigris + sodium arsenite) pools the elements of all its members,
        each at its largest mass fraction among them.
    tube_kv : float
        Tube voltage (kV): lines above it are not excited.
    min_kev : float
        Lowest line energy (keV) that counts as seen (2.8 keV: the model grid's start).

    Returns
    -------
    list of str
        Element symbols, by decreasing mass fraction; empty for an unknown class.
    """
    from xrfcore.elements import emission_lines
    from xrfcore.errors import XRFError

    members = list(library.pigments_of_class(cls))
    if not members:
        try:
            members = [library.get(cls)]
        except LibraryError:
            return []
    fractions: dict[str, float] = {}
    for p in members:
        for el, w in p.elements().items():
            fractions[el] = max(fractions.get(el, 0.0), w)
    visible = []
    for el in fractions:
        try:
            lines = emission_lines(el, tube_kv=tube_kv)
        except XRFError:  # lighter than Na: no line a detector in air sees
            continue
        if any(ln.energy_kev >= min_kev for ln in lines):
            visible.append(el)
    return sorted(visible, key=lambda el: -fractions[el])


def _read_json(path: str) -> dict[str, Any]:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LibraryError(f"pigment library {path} not found; pass an existing pigments.json") from None
    except json.JSONDecodeError as exc:
        raise LibraryError(f"pigment library {path} is not valid JSON: {exc}") from None


def key_elements(cls: str, library: "PigmentLibrary | None" = None, *, min_fraction: float = 0.05) -> tuple[str, ...]:
    """Elements whose lines must be seen for class ``cls`` to be called (METHOD.md key elements).

    Classes outside :data:`KEY_ELEMENTS` (pigments a user added) get the elements of their
    pigments' formulas from K (Z = 19) up with at least ``min_fraction`` of the pigment's mass
    (lighter elements do not reach a detector in air above 2.8 keV).

    Examples
    --------
    >>> key_elements("CrY")
    ('Cr', 'Pb')
    """
    if cls in KEY_ELEMENTS:
        return KEY_ELEMENTS[cls]
    lib = library if library is not None else load_library()
    members = lib.pigments_of_class(cls) or [lib.get(cls)]
    found: dict[str, float] = {}
    for p in members:
        for el, w in p.elements().items():
            if _atomic_number(el) >= 19 and w >= min_fraction:
                found[el] = max(found.get(el, 0.0), w)
    return tuple(sorted(found, key=lambda el: -found[el]))

