"""Pixel labels for finetuning and evaluation: region JSON, spreadsheet CSV, dense HDF5.

Three file forms are accepted by :func:`load_labels`; all give the same :class:`LabelSet`.

Region JSON (schema version 1)
------------------------------
::

    {
      "version": 1,
      "scan": "mockup.h5",                      # informative: the scan the regions were drawn on
      "regions": [
        {"name": "top 1 over bottom 2A", "shape": "rectangle",
         "row0": 10, "col0": 4, "row1": 20, "col1": 30,        # half-open: rows 10..19, cols 4..29
         "top": ["LW", "carmine"], "bottom": ["ZW", "lead white", "VM"]},
        {"name": "triangle", "shape": "polygon",
         "vertices": [[0, 0], [0, 10], [10, 0]],               # [row, col] pixel-edge coordinates
         "top": ["VM"], "bottom": []},
        {"name": "blob", "shape": "mask",
         "runs": [[5, 2, 7], [6, 3, 8]],                      # [row, col0, col1) runs (RLE)
         "top": ["ZW"], "bottom": []},
        {"name": "dots", "shape": "mask", "pixels": [[1, 1], [2, 3]], "top": ["PB"], "bottom": []}
      ]
    }

Coordinates are pixel indices: pixel ``(row, col)`` covers ``[row, row+1) x [col, col+1)`` and
belongs to a polygon when its centre ``(row + 0.5, col + 0.5)`` is inside (even-odd rule), so
a rectangle equals the polygon through its four corners. Pigments are names or abbreviations
from the pigment library (case-insensitive); stand-ins map to their class through the library's
``label`` (verdigris and sodium arsenite count as emerald green, ``EG``). Ground and binder
entries (no class) are accepted and ignored. A region with empty ``top`` and ``bottom`` is a
labelled *negative* region (no pigment of the library).

Spreadsheet CSV
---------------
Header ``x0,y0,x1,y1,top,bottom`` (optionally a ``name`` column), one rectangle per line,
``x`` = column and ``y`` = row, half-open like the JSON rectangle; pigments within a cell are
separated by ``;`` or ``+``.

Dense HDF5
----------
``labels`` (H, W, K) uint8 (any layer) and ``label_names`` (K strings), optionally
``labels_top``, ``labels_bottom`` and ``mask`` (H, W) (labelled pixels; all pixels when absent),
at the file root or in the ``/xrf`` group (the layout of :func:`xrfcore.io.write_scan_h5`).

Pixels that no region covers are *unlabelled* (``mask`` False), not negative.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from xrfcore.atomic import atomic_write_text
from xrfcore.errors import LabelError, LibraryError

__all__ = [
    "SCHEMA_VERSION",
    "Region",
    "LabelSet",
    "load_labels",
    "save_labels",
    "regions_from_dicts",
    "region_mask",
    "selection_mask",
    "box_to_rectangle",
    "label_patches",
]

#: Version of the region JSON schema written by :func:`save_labels`.
SCHEMA_VERSION = 1

_SHAPES = ("rectangle", "polygon", "mask")
_GEOMETRY_KEYS = {"rectangle": ("row0", "col0", "row1", "col1"), "polygon": ("vertices",), "mask": ("runs", "pixels")}


@dataclass
class Region:
    """One labelled region on a scan.

    Parameters
    ----------
    name : str
    shape : {"rectangle", "polygon", "mask"}
    geometry : dict
        ``rectangle``: ``row0, col0, row1, col1`` (half-open); ``polygon``: ``vertices``
        ``[[row, col], ...]``; ``mask``: ``runs`` ``[[row, col0, col1], ...]`` or ``pixels``
        ``[[row, col], ...]``.
    top, bottom : list of str
        Pigment names/abbreviations in the top and bottom paint layer, as written by the user.
    extra : dict
        Other keys of the region (kept when the file is saved again, otherwise ignored).
    """

    name: str
    shape: str
    geometry: dict[str, Any]
    top: list[str] = field(default_factory=list)
    bottom: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "shape": self.shape, **self.geometry, "top": list(self.top),
                "bottom": list(self.bottom), **self.extra}

    @classmethod
    def rectangle(cls, name: str, row0: int, col0: int, row1: int, col1: int, *, top=(), bottom=()) -> "Region":
        geom = {"row0": int(row0), "col0": int(col0), "row1": int(row1), "col1": int(col1)}
        return cls(name, "rectangle", geom, list(top), list(bottom))


@dataclass
class LabelSet:
    """Pixel labels of one scan.

    Attributes
    ----------
    labels : (H, W, K) uint8
        1 where the class is present in any layer.
    labels_top, labels_bottom : (H, W, K) uint8
    mask : (H, W) bool
        Labelled pixels; labels outside the mask are 0 and mean "unknown".
    classes : list of str
        Class abbreviations, the order of the last axis.
    regions : list of Region
        The regions (empty for the dense HDF5 form).
    source : str
        The label file.
    region_index : (H, W) int32
        Which region each labelled pixel came from (index into :attr:`region_names`), -1 where
        unlabelled. Where regions overlap (same labels) the later region owns the pixel. For the
        dense HDF5 form (no regions) every 4-connected patch of equal labels is one region.
    region_names : list of str
        One name per region index.
    layers_stated : bool
        Whether the file says which layer holds each pigment (regions always do; a dense HDF5 file only with
        ``labels_top``). Finetuning recalibrates the surface/hidden outputs only on such labels.
    """

    labels: np.ndarray
    labels_top: np.ndarray
    labels_bottom: np.ndarray
    mask: np.ndarray
    classes: list[str]
    regions: list[Region] = field(default_factory=list)
    source: str = ""
    region_index: np.ndarray | None = None
    region_names: list[str] = field(default_factory=list)
    layers_stated: bool = True

    def __post_init__(self) -> None:
        if self.region_index is None:
            self.region_index, self.region_names = label_patches(self.labels_top, self.labels_bottom, self.mask)
        self.region_index = np.asarray(self.region_index, dtype=np.int32)
        if self.region_index.shape != self.mask.shape:
            raise LabelError(f"region_index has shape {self.region_index.shape}, expected the mask's {self.mask.shape}")
        if not self.region_names:
            self.region_names = [f"region {i}" for i in range(int(self.region_index.max(initial=-1)) + 1)]

    @property
    def n_regions(self) -> int:
        """Number of regions (names), labelled or fully overlapped."""
        return len(self.region_names)

    @property
    def n_labelled(self) -> int:
        """Number of labelled pixels."""
        return int(self.mask.sum())

    def pixel_index(self) -> tuple[np.ndarray, np.ndarray]:
        """Rows and columns of the labelled pixels (row-major order)."""
        return np.nonzero(self.mask)

    def pixel_labels(self) -> np.ndarray:
        """Labels of the labelled pixels, ``(n_labelled, K)`` uint8, in :meth:`pixel_index` order."""
        return self.labels[self.mask]


def label_patches(labels_top: np.ndarray, labels_bottom: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Region index ``(H, W)`` int32 of 4-connected patches of equal (top, bottom) labels within ``mask``.

    Used for label sets without drawn regions (dense HDF5); -1 outside ``mask``.

    Examples
    --------
    >>> top = np.zeros((2, 3, 1), np.uint8); top[:, 2] = 1
    >>> idx, names = label_patches(top, np.zeros_like(top), np.ones((2, 3), bool))
    >>> idx.tolist(), names
    ([[0, 0, 1], [0, 0, 1]], ['patch 1', 'patch 2'])
    """
    from scipy import ndimage

    mask = np.asarray(mask, dtype=bool)
    out = np.full(mask.shape, -1, dtype=np.int32)
    if not mask.any():
        return out, []
    code = np.concatenate([labels_top, labels_bottom], axis=-1)[mask]
    _, kind = np.unique(code, axis=0, return_inverse=True)
    kinds = np.full(mask.shape, -1, dtype=np.int64)
    kinds[mask] = kind.reshape(-1)
    n = 0
    for k in range(int(kind.max()) + 1):
        lab, m = ndimage.label(kinds == k)
        out[lab > 0] = lab[lab > 0] - 1 + n
        n += m
    return out, [f"patch {i + 1}" for i in range(n)]


# -- loading ---------------------------------------------------------------------------------
def load_labels(
    path: str | os.PathLike,
    *,
    scan_shape: Sequence[int],
    classes: Sequence[str],
    library: Any = None,
) -> LabelSet:
    """Read a label file (region JSON, CSV or dense HDF5) for a scan of ``scan_shape``.

    Parameters
    ----------
    path : path-like
        ``.json``, ``.csv`` or ``.h5``/``.hdf5``/``.nxs``.
    scan_shape : (n_rows, n_cols) or (n_rows, n_cols, n_channels)
    classes : sequence of str
        The model's class abbreviations (order of the label axis).
    library : PigmentLibrary, optional
        Resolves names; :func:`xrfcore.library.load_library` by default.

    Returns
    -------
    LabelSet

    Raises
    ------
    LabelError
        Unreadable file, unknown pigment names, a region outside the scan or covering no pixel,
        overlapping regions with conflicting labels, or no labelled pixel at all.
    """
    p = Path(path)
    if not p.is_file():
        raise LabelError(f"label file {p} does not exist; give the path of a .json, .csv or .h5 label file")
    shape = (int(scan_shape[0]), int(scan_shape[1]))
    classes = [str(c) for c in classes]
    resolver = _Resolver(classes, library)
    suffix = p.suffix.lower()
    if suffix == ".json":
        regions = _read_json(p)
        out = _rasterise(regions, shape, resolver, source=str(p))
    elif suffix == ".csv":
        regions = _read_csv(p)
        out = _rasterise(regions, shape, resolver, source=str(p))
    elif suffix in (".h5", ".hdf5", ".nxs", ".hdf"):
        out = _read_dense(p, shape, resolver)
    else:
        raise LabelError(f"label file {p}: unknown suffix {p.suffix!r}; expected .json, .csv or .h5")
    if out.n_labelled == 0:
        raise LabelError(f"label file {p}: the label set is empty (no labelled pixel); draw at least one region")
    return out


def regions_from_dicts(items: Iterable[dict[str, Any]], *, source: str = "") -> list[Region]:
    """Validate region dicts (the JSON ``regions`` list) and return :class:`Region` objects."""
    where = f"{source}: " if source else ""
    regions = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise LabelError(f"{where}region {i} must be an object, got {type(item).__name__}")
        name = str(item.get("name", f"region {i}"))
        shape = str(item.get("shape", "rectangle")).lower()
        if shape not in _SHAPES:
            raise LabelError(f"{where}region {name!r}: unknown shape {shape!r}; use one of {', '.join(_SHAPES)}")
        keys = _GEOMETRY_KEYS[shape]
        geom = {k: v for k, v in item.items() if k in keys}
        extra = {k: v for k, v in item.items() if k not in keys and k not in ("name", "shape", "top", "bottom")}
        _check_geometry(name, shape, geom, where)
        top, bottom = _pigment_list(item.get("top", []), name, where), _pigment_list(item.get("bottom", []), name, where)
        regions.append(Region(name, shape, geom, top, bottom, extra))
    return regions


def _pigment_list(value: Any, name: str, where: str) -> list[str]:
    if isinstance(value, str):
        return [s.strip() for s in re.split(r"[;+,]", value) if s.strip()]
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise LabelError(f"{where}region {name!r}: top/bottom must be a list of pigment names, got {value!r}")
    return [v.strip() for v in value if v.strip()]


#: Largest coordinate accepted in a label file (pixels); scans are far smaller.
MAX_COORDINATE = 2**31
#: Largest label file read (bytes).
MAX_LABEL_FILE_BYTES = 64 << 20


def _is_integral(v: Any) -> bool:
    if isinstance(v, bool):
        return False
    if isinstance(v, (int, np.integer)):
        return abs(int(v)) <= MAX_COORDINATE
    if isinstance(v, (float, np.floating)):
        return math.isfinite(v) and float(v).is_integer() and abs(v) <= MAX_COORDINATE
    return False


def _is_coordinate(v: Any) -> bool:
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
        return False
    try:
        return math.isfinite(float(v)) and abs(float(v)) <= MAX_COORDINATE
    except OverflowError:
        return False


def _check_geometry(name: str, shape: str, geom: dict[str, Any], where: str) -> None:
    def ints(values: Any, what: str) -> None:
        bad = [v for v in values if not _is_integral(v)][:1]
        if bad:
            bad = bad[0]
            raise LabelError(
                f"{where}region {name!r}: {what} must be integers between -{MAX_COORDINATE} and "
                f"{MAX_COORDINATE}, got {str(bad)[:40]!r}"
            )

    if shape == "rectangle":
        missing = [k for k in ("row0", "col0", "row1", "col1") if k not in geom]
        if missing:
            raise LabelError(f"{where}region {name!r}: rectangle needs row0, col0, row1, col1; missing {missing}")
        for k in ("row0", "col0", "row1", "col1"):
            ints([geom[k]], f"rectangle corner {k!r}")
    elif shape == "polygon":
        v = geom.get("vertices")
        if not isinstance(v, list) or len(v) < 3 or not all(isinstance(p, (list, tuple)) and len(p) == 2 for p in v):
            raise LabelError(
                f"{where}region {name!r}: polygon needs 'vertices' as >= 3 [row, col] pairs, got {str(v)[:80]}"
            )
        bad = [c for p in v for c in p if not _is_coordinate(c)]
        if bad:
            bad = bad[0]
            raise LabelError(f"{where}region {name!r}: polygon 'vertices' must be finite numbers, got {str(bad)[:40]!r}")
    else:
        if "runs" in geom:
            runs = geom["runs"]
            if not isinstance(runs, list) or not all(isinstance(r, (list, tuple)) and len(r) == 3 for r in runs):
                raise LabelError(f"{where}region {name!r}: mask 'runs' must be [[row, col0, col1], ...]")
            ints([x for r in runs for x in r], "mask runs")
        elif "pixels" in geom:
            px = geom["pixels"]
            if not isinstance(px, list) or not all(isinstance(r, (list, tuple)) and len(r) == 2 for r in px):
                raise LabelError(f"{where}region {name!r}: mask 'pixels' must be [[row, col], ...]")
            ints([x for r in px for x in r], "mask pixels")
        else:
            raise LabelError(f"{where}region {name!r}: mask needs 'runs' ([[row, col0, col1], ...]) or 'pixels'")


def _read_text(path: Path) -> str:
    size = path.stat().st_size
    if size > MAX_LABEL_FILE_BYTES:
        raise LabelError(f"label file {path} has {size} bytes; label files are far smaller (limit "
                         f"{MAX_LABEL_FILE_BYTES >> 20} MiB): is it the right file?")
    try:
        return path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise LabelError(f"label file {path} is not UTF-8 text (byte {exc.object[exc.start]:#04x} at position "
                         f"{exc.start}); save it as UTF-8") from None


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not a number label files may hold")


def _read_json(path: Path) -> list[Region]:
    text = _read_text(path)
    try:
        doc = json.loads(text, parse_constant=_no_constants)
    except RecursionError:
        raise LabelError(f"label file {path}: the JSON is nested too deeply to be a label file") from None
    except ValueError as exc:  # JSONDecodeError, NaN/Infinity, integers of thousands of digits
        raise LabelError(f"label file {path} is not valid JSON ({str(exc)[:200]}); see the schema in "
                         "xrfcore.labels") from None
    if not isinstance(doc, dict) or "regions" not in doc:
        raise LabelError(f"label file {path}: expected an object with 'version' and 'regions'")
    version = doc.get("version", SCHEMA_VERSION)
    if version != SCHEMA_VERSION:
        raise LabelError(
            f"label file {path}: schema version {version!r} is not supported (this program reads version "
            f"{SCHEMA_VERSION}); update xrfcore or re-save the labels"
        )
    if not isinstance(doc["regions"], list):
        raise LabelError(f"label file {path}: 'regions' must be a list")
    return regions_from_dicts(doc["regions"], source=str(path))


def _read_csv(path: Path) -> list[Region]:
    text = _read_text(path)
    try:
        rows = [r for r in csv.reader(text.splitlines()) if any(c.strip() for c in r)]
    except csv.Error as exc:
        raise LabelError(f"label file {path} is not a readable CSV file ({exc})") from None
    if not rows:
        return []
    header = [c.strip().lower() for c in rows[0]]
    need = ["x0", "y0", "x1", "y1", "top", "bottom"]
    if all(h in header for h in need):
        body = rows[1:]
    else:
        header, body = need, rows
    items = []
    for n, r in enumerate(body, start=2 if body is not rows else 1):
        if len(r) < len(header):
            r = r + [""] * (len(header) - len(r))
        rec = dict(zip(header, (c.strip() for c in r)))
        try:
            x0, y0, x1, y1 = (_csv_int(rec[k]) for k in ("x0", "y0", "x1", "y1"))
        except ValueError:
            raise LabelError(f"{path} line {n}: x0,y0,x1,y1 must be integers, got {[c[:20] for c in r[:4]]}") from None
        items.append(
            {"name": rec.get("name") or f"line {n}", "shape": "rectangle", "row0": y0, "col0": x0, "row1": y1,
             "col1": x1, "top": rec["top"], "bottom": rec["bottom"]}
        )
    return regions_from_dicts(items, source=str(path))


_CSV_INT = re.compile(r"[+-]?[0-9]{1,10}(\.0*)?")


def _csv_int(text: str) -> int:
    """A CSV cell as an integer coordinate: ASCII digits (``12`` or ``12.0``), within range."""
    t = text.strip()
    if not _CSV_INT.fullmatch(t):
        raise ValueError(t)
    value = int(float(t))
    if abs(value) > MAX_COORDINATE:
        raise ValueError(t)
    return value


class _Resolver:
    """Map user pigment names to class indices via the library."""

    def __init__(self, classes: list[str], library: Any) -> None:
        if library is None:
            from xrfcore.library import load_library

            library = load_library()
        self.library = library
        self.classes = classes
        self.index = {c.lower(): i for i, c in enumerate(classes)}

    def indices(self, names: Iterable[str]) -> tuple[list[int], list[str]]:
        """Return class indices and the names that are unknown."""
        idx, unknown = [], []
        for name in names:
            try:
                pig = self._lookup(name)
            except LibraryError:
                if name.lower() in self.index:
                    idx.append(self.index[name.lower()])
                else:
                    unknown.append(name)
                continue
            label = getattr(pig, "label", None)
            if label is None:
                continue  # ground / binder: not a model class
            if label.lower() not in self.index:
                unknown.append(name)
                continue
            idx.append(self.index[label.lower()])
        return idx, unknown

    def _lookup(self, name: str) -> Any:
        """Library entry by name/abbreviation; also accepts a name without its parenthesis
        (``carmine`` for ``carmine (tin-based substrate)``)."""
        try:
            return self.library.get(name)
        except LibraryError:
            short = name.strip().lower()
            for pig in self.library:
                if re.sub(r"\s*\(.*\)\s*$", "", str(pig.name)).strip().lower() == short:
                    return pig
            raise

    def known(self) -> str:
        names = []
        for cls in self.classes:
            try:
                names.append(f"{cls} ({self.library.get(cls).name})")
            except LibraryError:
                names.append(cls)
        return ", ".join(names)


def _unknown_error(source: str, unknown: list[str], resolver: _Resolver) -> LabelError:
    uniq = sorted(set(unknown), key=str.lower)
    return LabelError(
        f"{source}: unknown pigment name(s) {', '.join(repr(u) for u in uniq)}; known pigments are "
        f"{resolver.known()} (verdigris/VG and sodium arsenite/SA count as EG); fix the names or add the "
        "pigment to the library and retrain"
    )


def region_pixels(region: Region, shape: tuple[int, int], *, source: str = "") -> np.ndarray:
    """Boolean mask ``shape`` of the pixels covered by ``region``.

    Raises
    ------
    LabelError
        If any part of the region lies outside the scan, or it covers no pixel.
    """
    h, w = shape
    where = f"{source}: " if source else ""
    mask = np.zeros(shape, dtype=bool)
    g = region.geometry

    def outside(extent: str) -> LabelError:
        return LabelError(
            f"{where}region {region.name!r} ({extent}) lies outside the scan of {h} rows x {w} cols; "
            "coordinates are 0-based [row, col] (CSV: x = column, y = row); fix the region"
        )

    if region.shape == "rectangle":
        r0, c0, r1, c1 = (int(g[k]) for k in ("row0", "col0", "row1", "col1"))
        extent = f"rows {r0}:{r1}, cols {c0}:{c1}"
        if r1 <= r0 or c1 <= c0:
            raise LabelError(f"{where}region {region.name!r} ({extent}) is empty: row1/col1 must exceed row0/col0")
        if r0 < 0 or c0 < 0 or r1 > h or c1 > w:
            raise outside(extent)
        mask[r0:r1, c0:c1] = True
    elif region.shape == "polygon":
        v = np.asarray(g["vertices"], dtype=np.float64)
        extent = f"rows {v[:, 0].min():g}..{v[:, 0].max():g}, cols {v[:, 1].min():g}..{v[:, 1].max():g}"
        if v[:, 0].min() < 0 or v[:, 1].min() < 0 or v[:, 0].max() > h or v[:, 1].max() > w:
            raise outside(extent)
        mask = _polygon_mask(v, shape)
    else:
        if "runs" in g:
            runs = np.asarray(g["runs"], dtype=np.int64).reshape(-1, 3)
            if runs.size and (runs[:, 0].min() < 0 or runs[:, 0].max() >= h or runs[:, 1].min() < 0 or runs[:, 2].max() > w):
                raise outside("mask runs")
            for r, a, b in runs:
                mask[r, a:b] = True
        else:
            px = np.asarray(g["pixels"], dtype=np.int64).reshape(-1, 2)
            if px.size and (px.min() < 0 or px[:, 0].max() >= h or px[:, 1].max() >= w):
                raise outside("mask pixels")
            mask[px[:, 0], px[:, 1]] = True
    if not mask.any():
        raise LabelError(f"{where}region {region.name!r} covers no pixel centre; make it larger")
    return mask


def _polygon_mask(vertices: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Pixels whose centre lies inside the polygon (even-odd rule), vectorised over its bounding box."""
    h, w = shape
    r_lo, r_hi = max(0, int(np.floor(vertices[:, 0].min()))), min(h, int(np.ceil(vertices[:, 0].max())))
    c_lo, c_hi = max(0, int(np.floor(vertices[:, 1].min()))), min(w, int(np.ceil(vertices[:, 1].max())))
    mask = np.zeros(shape, dtype=bool)
    if r_hi <= r_lo or c_hi <= c_lo:
        return mask
    rr, cc = np.meshgrid(np.arange(r_lo, r_hi) + 0.5, np.arange(c_lo, c_hi) + 0.5, indexing="ij")
    inside = np.zeros(rr.shape, dtype=bool)
    n = len(vertices)
    for i in range(n):
        (ra, ca), (rb, cb) = vertices[i], vertices[(i + 1) % n]
        crosses = (ra > rr) != (rb > rr)
        with np.errstate(divide="ignore", invalid="ignore"):
            c_at = ca + (rr - ra) * (cb - ca) / (rb - ra)
        inside ^= crosses & (cc < c_at)
    mask[r_lo:r_hi, c_lo:c_hi] = inside
    return mask


def _rasterise(regions: list[Region], shape: tuple[int, int], resolver: _Resolver, *, source: str) -> LabelSet:
    if not regions:
        raise LabelError(f"{source}: the label set is empty (no regions); draw at least one region")
    unknown: list[str] = []
    resolved = []
    for reg in regions:
        top, u1 = resolver.indices(reg.top)
        bottom, u2 = resolver.indices(reg.bottom)
        unknown += u1 + u2
        resolved.append((reg, sorted(set(top)), sorted(set(bottom))))
    if unknown:
        raise _unknown_error(source, unknown, resolver)
    k = len(resolver.classes)
    top_arr = np.zeros(shape + (k,), dtype=np.uint8)
    bottom_arr = np.zeros(shape + (k,), dtype=np.uint8)
    mask = np.zeros(shape, dtype=bool)
    owner = np.full(shape, -1, dtype=np.int32)
    for i, (reg, top, bottom) in enumerate(resolved):
        m = region_pixels(reg, shape, source=source)
        overlap = m & mask
        if overlap.any():
            t_vec = np.zeros(k, np.uint8)
            t_vec[top] = 1
            b_vec = np.zeros(k, np.uint8)
            b_vec[bottom] = 1
            bad = overlap & (np.any(top_arr != t_vec, axis=-1) | np.any(bottom_arr != b_vec, axis=-1))
            if bad.any():
                others = sorted({resolved[j][0].name for j in np.unique(owner[bad])})
                raise LabelError(
                    f"{source}: region {reg.name!r} overlaps region(s) {others} on {int(bad.sum())} pixel(s) "
                    "with different pigments; make the regions disjoint or give them the same labels"
                )
        top_arr[m] = 0
        bottom_arr[m] = 0
        for j in top:
            top_arr[m, j] = 1
        for j in bottom:
            bottom_arr[m, j] = 1
        mask |= m
        owner[m] = i
    labels = np.maximum(top_arr, bottom_arr)
    return LabelSet(labels, top_arr, bottom_arr, mask, list(resolver.classes), [r for r, _, _ in resolved], source,
                    region_index=owner, region_names=[r.name for r, _, _ in resolved])


def _dense_arrays(path: str, shape: tuple[int, int]) -> tuple[list[str], dict[str, np.ndarray], np.ndarray | None]:
    """Names, label arrays and mask of a dense label file, validated before reading (guarded child)."""
    import h5py

    p = Path(path)
    try:
        f = h5py.File(p, "r")
    except (OSError, RuntimeError, ValueError) as exc:
        raise LabelError(f"label file {p} is not a readable HDF5 file ({exc})") from exc
    try:
        with f:
            grp = None
            for cand in ("/", "/xrf"):
                g = f.get(cand)
                if isinstance(g, h5py.Group) and "labels" in g and "label_names" in g:
                    grp = g
                    break
            if grp is None:
                raise LabelError(
                    f"label file {p}: no 'labels' (H, W, K) + 'label_names' datasets at the root or in /xrf; "
                    "write them with xrfcore.io.write_scan_h5(..., labels=..., label_names=...)"
                )
            ds_names = grp["label_names"]
            if not isinstance(ds_names, h5py.Dataset) or ds_names.ndim != 1 or ds_names.dtype.kind not in "SUO" \
                    or ds_names.shape[0] > 10000:
                raise LabelError(f"label file {p}: 'label_names' must be a 1-D dataset of pigment names (strings)")
            names = []
            for v in ds_names[()]:
                if isinstance(v, bytes):
                    try:
                        v = v.decode("utf-8")
                    except UnicodeDecodeError:
                        raise LabelError(f"label file {p}: 'label_names' holds {v[:20]!r}, not UTF-8 text") from None
                if not isinstance(v, str):
                    raise LabelError(f"label file {p}: 'label_names' must hold strings, got {type(v).__name__}")
                names.append(v)
            arrays = {}
            for key in ("labels", "labels_top", "labels_bottom"):
                if key not in grp:
                    continue
                ds = grp[key]
                if not isinstance(ds, h5py.Dataset) or ds.dtype.kind not in "biu":
                    kind = "a group" if not isinstance(ds, h5py.Dataset) else f"dtype {ds.dtype}"
                    raise LabelError(f"label file {p}: {key!r} must be a (H, W, K) dataset of 0/1 integers, got {kind}")
                expected = (shape[0], shape[1], len(names))
                if tuple(ds.shape) != expected:
                    raise LabelError(
                        f"label file {p}: {key!r} has shape {tuple(ds.shape)}, expected {expected} "
                        f"for a scan of {shape[0]} x {shape[1]} pixels and {len(names)} label names"
                    )
                arrays[key] = np.asarray(ds[()])
            mask = None
            if "mask" in grp:
                ds = grp["mask"]
                if not isinstance(ds, h5py.Dataset) or ds.dtype.kind not in "biu" or tuple(ds.shape) != shape:
                    what = f"shape {tuple(ds.shape)} dtype {ds.dtype}" if isinstance(ds, h5py.Dataset) else "a group"
                    raise LabelError(f"label file {p}: 'mask' must be a ({shape[0]}, {shape[1]}) boolean dataset, "
                                     f"got {what}")
                mask = np.asarray(ds[()]).astype(bool)
    except (OSError, RuntimeError, KeyError, ValueError, TypeError) as exc:
        raise LabelError(f"label file {p} is damaged ({type(exc).__name__}: {str(exc)[:200]})") from exc
    return names, arrays, mask


def _read_dense(path: Path, shape: tuple[int, int], resolver: _Resolver) -> LabelSet:
    from xrfcore.errors import ScanReadError
    from xrfcore.io import run_guarded

    try:  # HDF5's parsing of a damaged file can crash: read in a guarded child
        names, arrays, mask = run_guarded(_dense_arrays, str(path), shape, path=path, what="the HDF5 library")
    except ScanReadError as exc:
        raise LabelError(str(exc)) from exc
    lab = arrays["labels"]
    cols: list[list[int]] = []
    unknown: list[str] = []
    for name in names:
        idx, u = resolver.indices([name])
        cols.append(idx)
        unknown += u
    if unknown:
        raise _unknown_error(str(path), unknown, resolver)
    k = len(resolver.classes)

    def remap(src: np.ndarray) -> np.ndarray:
        out = np.zeros(shape + (k,), dtype=np.uint8)
        for j, targets in enumerate(cols):
            for t in targets:
                np.maximum(out[..., t], (src[..., j] > 0).astype(np.uint8), out=out[..., t])
        return out

    labels = remap(lab)
    top = remap(arrays["labels_top"]) if "labels_top" in arrays else labels.copy()
    bottom = remap(arrays["labels_bottom"]) if "labels_bottom" in arrays else np.zeros_like(labels)
    if mask is None:
        mask = np.ones(shape, dtype=bool)
    for arr in (labels, top, bottom):
        arr[~mask] = 0
    return LabelSet(labels, top, bottom, mask, list(resolver.classes), [], str(path),
                    layers_stated="labels_top" in arrays)


# -- saving ----------------------------------------------------------------------------------
def save_labels(
    path: str | os.PathLike,
    regions: Sequence[Region | dict[str, Any]],
    *,
    scan: str = "",
) -> Path:
    """Write regions as a version-1 region JSON file, atomically.

    Parameters
    ----------
    path : path-like
        Output ``.json`` file.
    regions : sequence of Region or dict
    scan : str
        Name or path of the scan the regions belong to (informative).

    Returns
    -------
    Path
        The written file.
    """
    items = [r.to_dict() if isinstance(r, Region) else dict(r) for r in regions]
    validated = regions_from_dicts(items)
    doc = {"version": SCHEMA_VERSION, "scan": str(scan), "regions": [r.to_dict() for r in validated]}
    out = Path(path)
    atomic_write_text(out, json.dumps(doc, indent=1) + "\n")
    return out


# -- masks of regions and of plot selections (for the pages) ----------------------------------
def region_mask(region: Region, shape: tuple[int, int]) -> np.ndarray:
    """Boolean ``(H, W)`` mask of the pixels a region covers, for every region shape.

    Rectangles are half-open, polygons take the pixels whose centre ``(row + 0.5, col + 0.5)``
    is inside (even-odd rule), masks their runs or pixels: the rules of the region JSON.

    Raises
    ------
    LabelError
        If the region reaches outside the scan or covers no pixel (the message says which).
    """
    return region_pixels(region, (int(shape[0]), int(shape[1])))


def selection_mask(kind: str, cols: Sequence[float], rows: Sequence[float], shape: tuple[int, int]) -> np.ndarray:
    """Pixels ``(H, W)`` bool inside a box or lasso drawn on a map, in plot axis coordinates.

    Parameters
    ----------
    kind : {"box", "lasso"}
        ``"box"``: ``cols``/``rows`` hold the two corners; ``"lasso"``: the polygon's vertices.
    cols, rows : sequence of float
        x (column) and y (row) axis coordinates; pixel centres are at integers (pixel ``(r, c)``
        is drawn over ``[c - 0.5, c + 0.5] x [r - 0.5, r + 0.5]``).
    shape : (H, W)

    Returns
    -------
    (H, W) ndarray of bool
        True where the pixel centre is inside the selection (a box includes its edges).

    Raises
    ------
    LabelError
        For an unknown ``kind``, unequal ``cols``/``rows``, or too few points.
    """
    h, w = int(shape[0]), int(shape[1])
    x = np.asarray(cols, dtype=np.float64).ravel()
    y = np.asarray(rows, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise LabelError(f"a selection needs as many column as row coordinates, got {x.size} and {y.size}")
    if kind == "box":
        if x.size < 2:
            raise LabelError(f"a box selection needs its two corners, got {x.size} point(s)")
        rr, cc = np.ogrid[0:h, 0:w]
        return (rr >= y.min()) & (rr <= y.max()) & (cc >= x.min()) & (cc <= x.max())
    if kind == "lasso":
        if x.size < 3:
            raise LabelError(f"a lasso selection needs at least 3 points, got {x.size}")
        # pixel centres at integers: shift by half a pixel into region_pixels' edge coordinates
        vertices = np.column_stack([y + 0.5, x + 0.5])
        return _polygon_mask(vertices, (h, w))
    raise LabelError(f"unknown selection kind {kind!r}; use 'box' or 'lasso'")


def box_to_rectangle(cols: Sequence[float], rows: Sequence[float], shape: tuple[int, int]) -> tuple[int, int, int, int]:
    """The half-open rectangle ``(row0, col0, row1, col1)`` of the pixels a dragged box covers.

    Exactly the cells whose centres (at integer axis coordinates) lie inside the box, clipped to
    the scan; the same cells as ``selection_mask("box", cols, rows, shape)``.

    Raises
    ------
    LabelError
        If the box contains no pixel centre of the scan (drag a larger box, or inside the map).
    """
    mask = selection_mask("box", cols, rows, shape)
    rr = np.nonzero(mask.any(axis=1))[0]
    cc = np.nonzero(mask.any(axis=0))[0]
    if rr.size == 0 or cc.size == 0:
        raise LabelError(
            f"the box (columns {min(cols):g}..{max(cols):g}, rows {min(rows):g}..{max(rows):g}) contains no pixel "
            f"centre of the {int(shape[0])} x {int(shape[1])} scan; drag a box over at least one pixel"
        )
    return int(rr[0]), int(cc[0]), int(rr[-1]) + 1, int(cc[-1]) + 1
