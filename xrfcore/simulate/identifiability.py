"""What a mock-up lets any model see: per-pigment detectability and the F1 ceiling it implies.

A model that reads one spectrum can only call a pigment present if the spectrum differs from
every spectrum in which that pigment is absent. For each labelled cell of a crossed-strip mock-up
(:mod:`xrfcore.simulate.mockup`) and each class present there, this compares the expected
(noise-free) spectrum with alternatives that lack the class:

* the class's pigments removed from the layer(s) holding them, the rest of the layer rescaled, or
  binder put in their place (the other pigments keep their amounts);
* for classes that share their lines with another class (PB/IO: Fe, LW/RL: Pb, CrG/CrY: Cr), the
  partner put in their place at 0.25-2x the removed amount, so a change in line intensity can be
  made up by the partner;
* each of these with the changed layer 0.8, 1 or 1.25 times as thick.

Both spectra are scaled to the cell's measured mean total counts, with the variant's pile-up and
background, and compared over 2.8-30 keV with Poisson weights: ``delta_chi2 = sum((b - a)^2 / a)``
minimised over the alternatives. Below ~25 (5 sigma for one free parameter) no model can tell the
pigment is there from that pixel alone; it can only guess from the prior it was trained on.

The F1 ceiling of a class is that of an oracle that calls it exactly where it is detectable and
nowhere else: recall = detectable share of the labelled positives, precision 1. It is an upper
bound: the real comparison also has unknown thicknesses, mixing ratios and instrument settings.

Example
-------
``python -m xrfcore.simulate.identifiability heldout_1e5.h5 heldout_1e5_regions.json --json ceiling.json``
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from xrfcore.errors import SimulationError
from xrfcore.simulate.dataset import SAME_ELEMENT_PARTNERS

__all__ = ["PARTNERS", "AMOUNTS", "THICKNESS_FACTORS", "analyse_mockup", "f1_ceiling", "main"]

#: Same-element partners tried in place of a class (METHOD.md, known weaknesses).
PARTNERS: dict[str, tuple[str, ...]] = {c: (q,) for c, q in SAME_ELEMENT_PARTNERS.items()}
#: Amounts of the partner (relative to the removed class's mass fraction) tried as alternatives.
AMOUNTS: tuple[float, ...] = (0.25, 0.5, 0.75, 1.0, 1.5, 2.0)
#: Thickness factors of the changed layer tried with every alternative.
THICKNESS_FACTORS: tuple[float, ...] = (0.8, 1.0, 1.25)


def _cells(path: Path, regions_path: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Regions of the mock-up with their mean thicknesses (um) and mean total counts."""
    import h5py

    from xrfcore.scan import EnergyCalibration

    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise SimulationError(f"cannot open mock-up {path}: {exc}") from None
    with f:
        if "xrf/truth/top_um" not in f:
            raise SimulationError(f"{path} has no /xrf/truth thicknesses; it was not written by "
                                  "xrfcore.simulate.mockup (use that module to make a mock-up)")
        g = f["xrf"]
        counts = g["counts"]
        n_ch = counts.shape[2]
        cal = EnergyCalibration.from_dict(dict(counts.attrs))  # the layout of xrfcore.io.write_scan_h5
        truth = {k: g[f"truth/{k}"][...] for k in ("top_um", "bottom_um", "ground_um")}
        totals = np.zeros(counts.shape[:2])
        for r in range(counts.shape[0]):
            totals[r] = counts[r].sum(axis=1, dtype=np.float64)
        meta = {"calibration": cal, "n_channels": n_ch,
                "variant": str(g.attrs.get("physics_variant", "measured")),
                "count_level": float(g.attrs.get("count_level", np.median(totals)))}
    doc = json.loads(Path(regions_path).read_text(encoding="utf-8"))
    cells = []
    for reg in doc["regions"]:
        sl = (slice(reg["row0"], reg["row1"]), slice(reg["col0"], reg["col1"]))
        top_name, bottom_name = reg["name"].split(" / ")
        cells.append({"name": reg["name"], "top": None if top_name == "bare" else top_name, "bottom": bottom_name,
                      "n_pixels": int(totals[sl].size), "classes": sorted(set(reg["top"]) | set(reg["bottom"])),
                      "top_um": float(truth["top_um"][sl].mean()), "bottom_um": float(truth["bottom_um"][sl].mean()),
                      "ground_um": float(truth["ground_um"][sl].mean()), "total_counts": float(totals[sl].mean())})
    return cells, meta


def analyse_mockup(scan_path: str | Path, regions_path: str | Path, *, partners: dict[str, tuple[str, ...]] = PARTNERS,
                   amounts: tuple[float, ...] = AMOUNTS, thickness_factors: tuple[float, ...] = THICKNESS_FACTORS,
                   library=None, e_min_kev: float = 2.8,
                   e_max_kev: float = 30.0) -> dict[str, Any]:
    """Delta-chi2 of every (cell, class) of a mock-up written by :mod:`xrfcore.simulate.mockup`.

    Returns
    -------
    dict
        ``cells``: list of dicts (``name``, ``n_pixels``, ``classes``, ``delta_chi2`` {class: float},
        ``closest`` {class: description of the closest alternative}); ``variant``; ``count_level``.
    """
    from xrfcore.library import load_library
    from xrfcore.physics import Instrument, finish_spectra, library_elements, render_stacks
    from xrfcore.simulate.dataset import paint_stack_arrays, pigment_matrix
    from xrfcore.simulate.measured import impure_library, measured_background, measured_instrument
    from xrfcore.simulate.mockup import BOTTOM_MIXTURES, TOP_MIXTURES

    cells, meta = _cells(Path(scan_path), Path(regions_path))
    base = library if library is not None else load_library()
    measured = meta["variant"] == "measured"
    lib = impure_library(base) if measured else base
    ins = measured_instrument() if measured else Instrument()
    elements = library_elements(lib)
    names, pm, rho = pigment_matrix(lib, elements)
    cal, n_ch = meta["calibration"], meta["n_channels"]
    energy = cal.energies(n_ch)
    window = (energy >= e_min_kev) & (energy <= e_max_kev)
    bg = measured_background(energy) * 0.15 if measured else None
    filler = names.index(lib.binder)
    by_class: dict[str, list[int]] = {}
    for i, p in enumerate(lib.pigments):
        if p.label is not None:
            by_class.setdefault(p.label, []).append(i)

    def vec(mix: dict[str, float] | None) -> np.ndarray:
        v = np.zeros(len(names))
        for k, w in (mix or {}).items():
            v[names.index(lib.get(k).abbr)] += w
        return v

    def without(v: np.ndarray, cls: str, fill: str | None, amount: float) -> np.ndarray:
        out = v.copy()
        removed = out[by_class[cls]].sum()
        out[by_class[cls]] = 0.0
        if fill == "binder" or out.sum() <= 0:
            out[filler] += removed  # the other pigments keep their amounts
        elif fill is not None:
            out[by_class[fill][0]] += amount * removed
        return out / out.sum()

    rows = []  # (cell index, class, description, upper, lower, upper/lower thickness factor)
    for ci, c in enumerate(cells):
        upper = vec(TOP_MIXTURES[c["top"]] if c["top"] else BOTTOM_MIXTURES[c["bottom"]])
        lower = vec(BOTTOM_MIXTURES[c["bottom"]]) if c["top"] else np.zeros(len(names))
        rows.append((ci, None, "as painted", upper, lower, 1.0, 1.0))
        for cls in c["classes"]:
            options = [(None, 1.0), ("binder", 1.0)] + [(q, a) for q in partners.get(cls, ()) for a in amounts]
            in_upper, in_lower = upper[by_class[cls]].sum() > 0, lower[by_class[cls]].sum() > 0
            for q, a in options:
                u = without(upper, cls, q, a) if in_upper else upper
                lo = without(lower, cls, q, a) if in_lower else lower
                desc = f"without {cls}" + {None: ", others rescaled", "binder": ", binder in its place"}.get(
                    q, f", {q} x{a:g} in its place")
                for t in thickness_factors:
                    rows.append((ci, cls, desc + (f", layer {t:g}x as thick" if t != 1 else ""), u, lo,
                                 t if in_upper else 1.0, t if in_lower and not in_upper else 1.0))

    up = np.stack([r[3] for r in rows])
    lo = np.stack([r[4] for r in rows])
    ci_arr = np.array([r[0] for r in rows])
    up_um = np.array([(cells[r[0]]["top_um"] if cells[r[0]]["top"] else cells[r[0]]["bottom_um"]) * r[5] for r in rows])
    lo_um = np.array([(cells[r[0]]["bottom_um"] if cells[r[0]]["top"] else 0.0) * r[6] for r in rows])
    gr_um = np.array([cells[i]["ground_um"] for i in ci_arr])
    mf, rt = paint_stack_arrays(up, up_um, lo, lo_um, gr_um, lib, pm, rho, names)
    spec = render_stacks(mf, rt, elements, ins, cal, n_ch, block=512)
    tot = np.array([cells[i]["total_counts"] for i in ci_arr])
    expected = finish_spectra(spec, cal, pileup_fraction=ins.pileup_fraction, background=bg, total_counts=tot,
                              rng=None)[:, window]

    ref = {r[0]: expected[k] for k, r in enumerate(rows) if r[1] is None}
    for c in cells:
        c["delta_chi2"], c["closest"] = {}, {}
    for k, (ci, cls, desc, *_) in enumerate(rows):
        if cls is None:
            continue
        a = ref[ci]
        d = float(np.sum((expected[k] - a) ** 2 / np.maximum(a, 1.0)))
        cell = cells[ci]
        if cls not in cell["delta_chi2"] or d < cell["delta_chi2"][cls]:
            cell["delta_chi2"][cls], cell["closest"][cls] = d, desc
    return {"variant": meta["variant"], "count_level": meta["count_level"],
            "energy_window_kev": [e_min_kev, e_max_kev], "cells": cells}


def f1_ceiling(analysis: dict[str, Any], classes: list[str], *, threshold: float = 25.0) -> dict[str, dict[str, float]]:
    """Per class: labelled positive pixels, detectable share (recall ceiling) and F1 ceiling."""
    out = {}
    for cls in classes:
        pos = sum(c["n_pixels"] for c in analysis["cells"] if cls in c["classes"])
        det = sum(c["n_pixels"] for c in analysis["cells"]
                  if cls in c["classes"] and c["delta_chi2"].get(cls, 0.0) >= threshold)
        r = det / pos if pos else float("nan")
        out[cls] = {"positives": pos, "detectable": det, "recall_ceiling": r,
                    "f1_ceiling": 2 * r / (1 + r) if pos else float("nan")}
    return out


def main(argv: list[str] | None = None) -> int:
    """``python -m xrfcore.simulate.identifiability MOCKUP.h5 REGIONS.json [--json OUT]``."""
    p = argparse.ArgumentParser(prog="python -m xrfcore.simulate.identifiability", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("scan", help="mock-up HDF5 written by xrfcore.simulate.mockup")
    p.add_argument("regions", help="its regions JSON")
    p.add_argument("--threshold", type=float, default=25.0, help="delta-chi2 that counts as detectable (default 25)")
    p.add_argument("--json", default=None, help="write cells and ceilings to this JSON file")
    a = p.parse_args(argv)
    from xrfcore.atomic import atomic_write_text
    from xrfcore.errors import XRFError
    from xrfcore.library import load_library

    try:
        res = analyse_mockup(a.scan, a.regions)
    except (XRFError, OSError, KeyError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    classes = list(load_library().classes)
    ceil = {t: f1_ceiling(res, classes, threshold=t) for t in sorted({9.0, 25.0, a.threshold})}
    print(f"{'class':5s} {'positives':>9s} " + " ".join(f"{'F1 ceil @' + format(t, 'g'):>12s}" for t in ceil))
    for cls in classes:
        print(f"{cls:5s} {ceil[a.threshold][cls]['positives']:9d} "
              + " ".join(f"{ceil[t][cls]['f1_ceiling']:12.3f}" for t in ceil))
    if a.json:
        res["ceilings"] = {format(t, "g"): v for t, v in ceil.items()}
        atomic_write_text(a.json, json.dumps(res, indent=1) + "\n")
        print(f"wrote {a.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
