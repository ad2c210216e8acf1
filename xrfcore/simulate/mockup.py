"""Demo mock-up scan: crossed paint strips (like Xu et al. 2022, Fig. 7) with ground truth.

Sixteen bottom mixtures (METHOD.md: 1A..5C and 6) run as horizontal bands over a CaCO3 ground;
four top mixtures (Top 1-4) run as vertical bands across them; the first columns have no top
layer (bare bottom paint). Every pixel gets its own thickness jitter, and Poisson noise.

Label convention (same as the training sets of :mod:`xrfcore.simulate.dataset`): the upper
paint layer is "top"; where the bottom paint is bare it is the only paint layer and is labelled
*top* (``labels_bottom`` is then empty there). ``labels`` is presence in any layer.

To behave like a *measured* mock-up (so finetuning has a sim-to-real gap to close), the
``"measured"`` physics variant differs from the training default on purpose:

* secondary fluorescence on (training: off);
* detector: 125 eV noise, Fano 0.12, escape fraction x1.6, pile-up 0.3 % (training: 60-110 eV,
  Fano 0.114, escape x1, pile-up 0-0.4 %);
* tube: Rh anode with a 50 um Al primary filter (training: unfiltered), scatter x1.8;
* a measured-looking background: a fixed hump at ~6 keV plus a rising low-energy shelf,
  15 % of the counts;
* impurities: Pb traces in iron oxide (~0.8 % PbO) and zinc white (~0.5 % PbO), Cu traces in
  lead white (~0.1 % CuO), S in chrome yellow (PbSO4 co-precipitate, 5 mol %);
* per-pixel count level follows the physical intensity (thin/light layers give fewer counts).

Example
-------
``python -m xrfcore.simulate.mockup --out xrfcore/data/demo_mockup.h5 --seed 7``
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from xrfcore.errors import SimulationError
from xrfcore.scan import EnergyCalibration
from xrfcore.simulate.measured import impure_library, measured_background, measured_instrument

__all__ = ["TOP_MIXTURES", "BOTTOM_MIXTURES", "make_mockup", "measured_instrument", "write_mockup", "main"]

#: Top mixtures (pigment -> mass fraction), METHOD.md.
TOP_MIXTURES: dict[str, dict[str, float]] = {
    "Top 1": {"LW": 0.55, "CM": 0.10, "PB": 0.25, "CB": 0.10},
    "Top 2": {"VM": 0.30, "CM": 0.30, "CB": 0.40},
    "Top 3": {"VM": 0.39, "CrY": 0.06, "IO": 0.39, "VG": 0.06, "SA": 0.10},
    "Top 4": {"VM": 1.0},
}


def _mix(names, values):
    return {n: v / 100.0 for n, v in zip(names, values)}


#: Bottom mixtures (pigment -> mass fraction), METHOD.md.
BOTTOM_MIXTURES: dict[str, dict[str, float]] = {
    "1A": _mix(("ZW", "LW", "RL", "VM"), (10, 10, 10, 70)),
    "1B": _mix(("ZW", "LW", "RL", "VM"), (10, 20, 50, 20)),
    "1C": _mix(("ZW", "LW", "RL", "VM"), (10, 50, 20, 20)),
    "2A": _mix(("ZW", "LW", "VM"), (10, 85, 5)),
    "2B": _mix(("ZW", "LW", "VM"), (10.7, 88.7, 0.6)),
    "2C": _mix(("ZW", "LW", "VM"), (10, 50, 40)),
    "3A": _mix(("ZW", "LW", "CB", "CrG"), (10, 15, 15, 60)),
    "3B": _mix(("ZW", "LW", "CB", "CrG"), (10, 15, 60, 15)),
    "3C": _mix(("ZW", "LW", "CB", "CrG"), (10, 60, 15, 15)),
    "4A": _mix(("ZW", "LW", "CrY", "VG", "SA"), (10, 45, 15, 12, 18)),
    "4B": _mix(("ZW", "LW", "CrY", "VG", "SA"), (10, 30, 30, 12, 18)),
    "4C": _mix(("ZW", "LW", "CrY", "VG", "SA"), (10, 15, 15, 24, 36)),
    "5A": _mix(("ZW", "VM", "CrY", "VG", "SA"), (10, 5, 5, 32, 48)),
    "5B": _mix(("ZW", "VM", "CrY", "VG", "SA"), (78, 6, 6, 4, 6)),
    "5C": _mix(("ZW", "VM", "CrY", "VG", "SA"), (10, 15, 15, 24, 36)),
    "6": {"VM": 1.0},
}

def _layout(n_rows: int, n_cols: int, bare_cols: int):
    """Row band of each bottom mixture and column band of the bare area and each top mixture."""
    bottoms = list(BOTTOM_MIXTURES)
    tops = [None] + list(TOP_MIXTURES)
    r_edges = np.linspace(0, n_rows, len(bottoms) + 1).round().astype(int)
    c_edges = np.concatenate([[0, bare_cols], bare_cols + np.linspace(0, n_cols - bare_cols, len(TOP_MIXTURES) + 1)
                              .round().astype(int)[1:]])
    return bottoms, tops, r_edges, c_edges


def make_mockup(*, seed: int, calibration: EnergyCalibration = EnergyCalibration(-0.96, 0.02),
                n_channels: int = 2048, count_level: float = 2e4, shape: tuple[int, int] = (64, 64),
                bare_cols: int | None = None, pixel_block: int = 512, instrument=None,
                physics_variant: str = "measured", library=None):
    """Simulate the crossed-strip mock-up.

    Parameters
    ----------
    seed : int
    calibration : EnergyCalibration
    n_channels : int
    count_level : float
        Median total counts per pixel.
    shape : (n_rows, n_cols)
    bare_cols : int, optional
        Columns on the left without a top layer (default ``3 * n_cols // 16``, 12 of 64).
    pixel_block : int
        Pixels simulated per batch.
    instrument : Instrument, optional
        Overrides the variant's instrument.
    physics_variant : {"measured", "training"}
        ``"measured"``: deliberately different physics (module docstring); ``"training"``: the
        default :class:`~xrfcore.physics.Instrument`, pure library, smooth background off.

    Returns
    -------
    counts : (n_rows, n_cols, n_channels) uint16
    labels : dict
        ``labels``, ``labels_top``, ``labels_bottom`` (n_rows, n_cols, K) uint8, ``label_names``
        (K,), ``regions`` (list of dicts), ``top_um``/``bottom_um``/``ground_um`` (n_rows, n_cols),
        ``layer_photons`` (n_rows, n_cols, 2, n_elements) float32: expected photons each element of
        the upper (0) and lower (1) paint layer puts into the spectrum (what makes a pigment
        detectable from its layer), ``photon_elements`` (n_elements,) their symbols.
    """
    from xrfcore.library import load_library
    from xrfcore.physics import Instrument, finish_spectra, layer_photons, library_elements, render_stacks
    from xrfcore.simulate.dataset import paint_stack_arrays, pigment_matrix

    if physics_variant not in ("measured", "training"):
        raise SimulationError(f"physics_variant must be 'measured' or 'training', got {physics_variant!r}")
    n_rows, n_cols = shape
    if bare_cols is None:
        bare_cols = max(1, 3 * n_cols // 16)
    if n_rows < len(BOTTOM_MIXTURES) or n_cols < bare_cols + len(TOP_MIXTURES):
        raise SimulationError(f"mock-up needs at least {len(BOTTOM_MIXTURES)} rows and "
                              f"{bare_cols + len(TOP_MIXTURES)} columns, got {shape}")
    base_lib = library if library is not None else load_library()
    measured = physics_variant == "measured"
    lib = impure_library(base_lib) if measured else base_lib
    ins = instrument if instrument is not None else (measured_instrument() if measured else Instrument())
    rng = np.random.default_rng(seed)
    elements = library_elements(lib)
    names, pm, rho = pigment_matrix(lib, elements)
    classes = list(lib.classes)
    bottoms, tops, r_edges, c_edges = _layout(n_rows, n_cols, bare_cols)

    # per-band mean thickness (um), per-pixel jitter
    top_mean = rng.uniform(40.0, 120.0, len(TOP_MIXTURES))
    bot_mean = rng.uniform(100.0, 150.0, len(bottoms))
    n_pix = n_rows * n_cols
    frac_top = np.zeros((n_rows, n_cols, len(names)))
    frac_bot = np.zeros((n_rows, n_cols, len(names)))
    top_um = np.zeros((n_rows, n_cols))
    bot_um = np.zeros((n_rows, n_cols))
    regions = []
    for bi, b in enumerate(bottoms):
        r0, r1 = r_edges[bi], r_edges[bi + 1]
        for p, f in BOTTOM_MIXTURES[b].items():
            frac_bot[r0:r1, :, names.index(lib.get(p).abbr)] = f
        bot_um[r0:r1] = bot_mean[bi]
        for ti, t in enumerate(tops):
            c0, c1 = c_edges[ti], c_edges[ti + 1]
            if t is not None:
                for p, f in TOP_MIXTURES[t].items():
                    frac_top[r0:r1, c0:c1, names.index(lib.get(p).abbr)] = f
                top_um[r0:r1, c0:c1] = top_mean[ti - 1]
            regions.append({
                "name": f"{t or 'bare'} / {b}", "shape": "rectangle",
                "row0": int(r0), "col0": int(c0), "row1": int(r1), "col1": int(c1),
                "top": sorted({lib.get(p).label for p in (TOP_MIXTURES[t] if t else BOTTOM_MIXTURES[b])} - {None}),
                "bottom": sorted({lib.get(p).label for p in BOTTOM_MIXTURES[b]} - {None}) if t else [],
                "top_pigments": sorted(TOP_MIXTURES[t] if t else BOTTOM_MIXTURES[b]),
                "bottom_pigments": sorted(BOTTOM_MIXTURES[b]) if t else [],
            })
    top_um = top_um * rng.normal(1.0, 0.12, top_um.shape).clip(0.6, 1.4)
    bot_um = bot_um * rng.normal(1.0, 0.08, bot_um.shape).clip(0.7, 1.3)
    ground_um = rng.uniform(150.0, 200.0, (n_rows, n_cols))

    has_top = top_um.reshape(-1) > 0
    ft, fb = frac_top.reshape(n_pix, -1), frac_bot.reshape(n_pix, -1)
    # upper paint layer: top mixture where present, else the bare bottom mixture
    upper = np.where(has_top[:, None], ft, fb)
    upper_um = np.where(has_top, top_um.reshape(-1), bot_um.reshape(-1))
    lower_um = np.where(has_top, bot_um.reshape(-1), 0.0)
    mf, rt = paint_stack_arrays(upper, upper_um, fb, lower_um, ground_um.reshape(-1), lib, pm, rho, names)
    spec, layer_lines = render_stacks(mf, rt, elements, ins, calibration, n_channels, block=pixel_block,
                                      layer_elements=True)
    phys_total = spec.sum(axis=1)
    counts_px = count_level * phys_total / np.median(phys_total)
    bg = measured_background(calibration.energies(n_channels)) * 0.15 if measured else None
    # expected photons each paint layer's elements put into the spectrum (lines, escape peaks included)
    photons = layer_photons(layer_lines, phys_total, counts_px, float(bg.sum()) if bg is not None else 0.0,
                            lower_um > 0)
    out = finish_spectra(spec, calibration, pileup_fraction=ins.pileup_fraction, background=bg,
                         total_counts=counts_px, rng=rng)
    if out.max() > np.iinfo(np.uint16).max:
        raise SimulationError("mock-up counts overflow uint16; lower count_level")
    counts = out.astype(np.uint16).reshape(n_rows, n_cols, n_channels)

    label_of = np.zeros((len(names), len(classes)), dtype=np.uint8)
    for i, p in enumerate(lib.pigments):
        if p.label in classes:
            label_of[i, classes.index(p.label)] = 1
    lt = ((upper > 0).astype(np.uint8) @ label_of > 0).astype(np.uint8)
    lb = (((fb > 0) & has_top[:, None]).astype(np.uint8) @ label_of > 0).astype(np.uint8)
    k = len(classes)
    labels = {
        "labels": (lt | lb).reshape(n_rows, n_cols, k),
        "labels_top": lt.reshape(n_rows, n_cols, k),
        "labels_bottom": lb.reshape(n_rows, n_cols, k),
        "label_names": tuple(classes),
        "regions": regions,
        "top_um": top_um.astype(np.float32),
        "bottom_um": bot_um.astype(np.float32),
        "ground_um": ground_um.astype(np.float32),
        "layer_photons": photons.reshape(n_rows, n_cols, 2, len(elements)).astype(np.float32),
        "photon_elements": tuple(elements),
    }
    return counts, labels


def write_mockup(out: str | Path, counts: np.ndarray, labels: dict, calibration: EnergyCalibration, *,
                 regions_out: str | Path | None = None, attrs: dict | None = None) -> Path:
    """Write the mock-up as an HDF5 scan (:func:`xrfcore.io.write_scan_h5`), atomically, plus a regions JSON.

    Besides counts, calibration, ``labels`` and ``label_names``, ``/xrf`` holds ``labels_top``,
    ``labels_bottom`` and the ground truth ``truth/top_um``, ``truth/bottom_um``,
    ``truth/ground_um`` (um); ``attrs`` become attributes of ``/xrf``.
    """
    from xrfcore.atomic import atomic_write_text
    from xrfcore.io import write_scan_h5

    out = Path(out)
    extra = {key: labels[key] for key in ("labels_top", "labels_bottom")}
    extra.update({f"truth/{key}": labels[key] for key in ("top_um", "bottom_um", "ground_um")})
    write_scan_h5(out, counts, calibration, labels=labels["labels"], label_names=labels["label_names"],
                  metadata=attrs, extra_datasets=extra)
    if regions_out is not None:
        doc = {"version": 1, "scan": out.name, "label_convention":
               "where no top mixture covers the bottom mixture, the bare paint is the top layer",
               "regions": labels["regions"]}
        atomic_write_text(regions_out, json.dumps(doc, indent=1) + "\n")
    return out


def main(argv: list[str] | None = None) -> int:
    """``python -m xrfcore.simulate.mockup --out PATH --seed S [...]``."""
    p = argparse.ArgumentParser(prog="python -m xrfcore.simulate.mockup", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="output HDF5 (.h5)")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--regions", default=None, help="regions JSON (default: <out stem>_regions.json)")
    p.add_argument("--offset-kev", type=float, default=-0.96)
    p.add_argument("--gain-kev", type=float, default=0.02)
    p.add_argument("--channels", type=int, default=2048)
    p.add_argument("--count-level", type=float, default=2e4, help="median total counts per pixel")
    p.add_argument("--rows", type=int, default=64)
    p.add_argument("--cols", type=int, default=64)
    p.add_argument("--variant", default="measured", choices=("measured", "training"))
    a = p.parse_args(argv)
    from xrfcore.errors import XRFError

    try:
        cal = EnergyCalibration(a.offset_kev, a.gain_kev)
        counts, labels = make_mockup(seed=a.seed, calibration=cal, n_channels=a.channels, count_level=a.count_level,
                                     shape=(a.rows, a.cols), physics_variant=a.variant)
        out = Path(a.out)
        regions = Path(a.regions) if a.regions else out.with_name(out.stem + "_regions.json")
        write_mockup(out, counts, labels, cal, regions_out=regions,
                     attrs={"seed": a.seed, "physics_variant": a.variant, "count_level": a.count_level})
    except XRFError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB) and {regions}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
