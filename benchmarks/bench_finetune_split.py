"""Finetuning scored on pixels it never saw: region split vs random-pixel split, two mock-ups.

For the demo mock-up (``xrfcore/data/demo_mockup.h5``) and an independent one simulated here
(other seed, Bruker-like calibration -0.955 keV + 10 eV/channel, 4096 channels), finetune the
shipped default model on ~20 % of the labelled units (whole cells for ``regions``, random pixels
for ``pixels``) and report per-pigment F1 before and after on the test pixels (never trained
on, never used for validation); on the independent mock-up also macro F1 on *detectable* labels (key
elements >= 50 photons from their layer; the simulator knows). Recipes:

* ``plain``: labelled pixels only, as before issue 15 (no augmentation, simulation, rehearsal,
  no base-output fallback);
* ``full``: the default :class:`xrfcore.model.config.FinetuneConfig`;
* ``gentle``: ``full`` with three rehearsal spectra per training pixel and stage-2 lr 2e-4.

Run from the repository root (about a minute per run on a 2-core CPU)::

    python benchmarks/bench_finetune_split.py --out benchmarks/results/finetune_split.json
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RECIPES = {
    "plain": dict(augment_copies=0, simulate_per_stack=0, rehearsal_ratio=0.0, keep_base_where_worse=False),
    "full": {},
    "gentle": dict(rehearsal_ratio=3.0, learning_rate_all=2e-4),
}


def _independent_mockup(folder: Path, seed: int) -> tuple[Path, Path, dict]:
    from xrfcore.scan import EnergyCalibration
    from xrfcore.simulate.mockup import make_mockup, write_mockup

    cal = EnergyCalibration(-0.955, 0.01)
    counts, labels = make_mockup(seed=seed, calibration=cal, n_channels=4096, count_level=2e4)
    scan = folder / f"independent_{seed}.h5"
    regions = folder / f"independent_{seed}_regions.json"
    write_mockup(scan, counts, labels, cal, regions_out=regions, attrs={"seed": seed})
    return scan, regions, labels


def _detectable_scores(bundles: dict, scan, ls, train_mask, truth: dict) -> dict:
    """Macro F1 on detectable labels of the test pixels (key elements >= 50 photons from their layer): any
    layer, and the surface/hidden outputs (classes with >= MIN_SUPPORT scored positives)."""
    from xrfcore.model.predict import pixel_spectra, predict_layers
    from xrfcore.model.quality import detectable, masked_scores, score_heads

    test = ls.mask & ~train_mask
    classes = list(ls.classes)
    spectra = pixel_spectra(scan, test)
    det = detectable(truth["layer_photons"][test], truth["photon_elements"], classes)
    top, bottom = truth["labels_top"][test].astype(bool), truth["labels_bottom"][test].astype(bool)
    anyl = top | bottom
    keep = ~(anyl & ~((top & det[:, 0]) | (bottom & det[:, 1])))
    out = {}
    for name, b in bundles.items():
        layers = predict_layers(b, spectra, scan.calibration)
        sc = masked_scores(anyl, layers["any"], classes, mask=keep)
        out[name] = {"macro_f1": sc["macro_f1"], "per_pigment": {c: v["f1"] for c, v in sc["per_pigment"].items()}}
        if "surface" in layers:
            heads = score_heads(layers, top, bottom, det, classes)
            for h in ("surface", "hidden"):
                out[name][h] = {"macro_f1": heads[h]["macro_f1_enough"],
                                "per_pigment": {c: heads[h]["per_pigment"][c]["f1"] for c in heads[h]["enough_classes"]}}
    return out


def _f1(metrics: dict) -> dict:
    return {c: round(m["f1"], 4) for c, m in metrics["per_pigment"].items()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "finetune_split.json"))
    p.add_argument("--recipes", default="plain,full")
    p.add_argument("--splits", default="regions,pixels")
    p.add_argument("--mockups", default="demo,independent")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--mockup-seed", type=int, default=1515)
    p.add_argument("--model", default=None, help="base model (default: the shipped default)")
    p.add_argument("--set", action="append", default=[], help="override an option of every recipe: KEY=VALUE (JSON value)")
    a = p.parse_args(argv)

    from xrfcore.io import open_scan
    from xrfcore.labels import load_labels
    from xrfcore.model import load_model
    from xrfcore.model.config import FinetuneConfig
    from xrfcore.model.finetuning import finetune_labelled, labelled_scan

    overrides = {}
    for item in a.set:
        k, v = item.split("=", 1)
        overrides[k] = json.loads(v)
    bundle = load_model(a.model)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        files = {"demo": (ROOT / "xrfcore" / "data" / "demo_mockup.h5", ROOT / "xrfcore" / "data" / "demo_mockup_regions.json",
                          None)}
        if "independent" in a.mockups:
            files["independent"] = _independent_mockup(Path(tmp), a.mockup_seed)
        for name in a.mockups.split(","):
            scan_path, label_path, truth = files[name]
            scan = open_scan(scan_path)
            ls = load_labels(label_path, scan_shape=scan.shape, classes=bundle.classes)
            data = labelled_scan(scan, ls)
            for split in a.splits.split(","):
                for recipe in a.recipes.split(","):
                    opts = replace(FinetuneConfig(split=split, seed=a.seed), **RECIPES[recipe], **overrides)
                    t0 = time.perf_counter()
                    new, rep = finetune_labelled(bundle, [data], config=opts)
                    row = {
                        "mockup": name, "split": split, "recipe": recipe, "options": opts.to_dict(),
                        "seconds": round(time.perf_counter() - t0, 1),
                        "n_test_pixels": rep["split"]["n_test_pixels"], "n_test_regions": rep["split"]["n_test_regions"],
                        "n_train_pixels": rep["split"]["n_train_pixels"],
                        "n_training_spectra": rep["n_training_spectra"],
                        "macro_f1_before": round(rep["before"]["macro"]["f1"], 4),
                        "macro_f1_after": round(rep["after"]["macro"]["f1"], 4),
                        "f1_before": _f1(rep["before"]), "f1_after": _f1(rep["after"]),
                        "worse_than_base": rep["worse_than_base"], "kept_base_outputs": rep["kept_base_outputs"],
                        "finetuned_weight": rep["finetuned_weight"],
                        "warnings": rep["warnings"],
                    }
                    if truth is not None:  # the simulator knows what each layer shows
                        det = _detectable_scores({"before": bundle, "after": new}, scan, ls, rep["train_masks"][0], truth)
                        row["macro_f1_detectable_before"] = round(det["before"]["macro_f1"], 4)
                        row["macro_f1_detectable_after"] = round(det["after"]["macro_f1"], 4)
                        row["f1_detectable_before"] = det["before"]["per_pigment"]
                        row["f1_detectable_after"] = det["after"]["per_pigment"]
                        for h in ("surface", "hidden"):
                            if h in det["before"]:
                                row[f"{h}_detectable_before"] = det["before"][h]
                                row[f"{h}_detectable_after"] = det["after"][h]
                    if rep.get("layers"):
                        lay = rep["layers"]
                        row["layers_recalibrated"] = lay["recalibrated"]
                        for i, key in enumerate(("test_before", "test_after")):
                            if lay.get("macro_f1"):
                                row[f"layers_{key}_macro_f1"] = {h: (None if v[i] is None else round(v[i], 4))
                                                                 for h, v in lay["macro_f1"].items()}
                    results.append(row)
                    print(f"{name:12s} {split:7s} {recipe:5s} macro F1 {row['macro_f1_before']:.3f} -> "
                          f"{row['macro_f1_after']:.3f} ({row['seconds']:.0f} s) worse: {row['worse_than_base']} "
                          f"kept base: {row['kept_base_outputs']}"
                          + (f"; detectable labels {row['macro_f1_detectable_before']:.3f} -> "
                             f"{row['macro_f1_detectable_after']:.3f}" if "macro_f1_detectable_after" in row else ""),
                          flush=True)
                    print("   " + " ".join(f"{c}:{row['f1_before'][c]:.2f}->{row['f1_after'][c]:.2f}"
                                           for c in bundle.classes), flush=True)
                    if "layers_recalibrated" in row:
                        print(f"   layers recalibrated: {row['layers_recalibrated']}; all labels "
                              f"{row.get('layers_test_before_macro_f1')} -> {row.get('layers_test_after_macro_f1')}"
                              + "".join(f"; {h} detectable {row[f'{h}_detectable_before']['macro_f1']:.3f} -> "
                                        f"{row[f'{h}_detectable_after']['macro_f1']:.3f} "
                                        f"{row[f'{h}_detectable_after']['per_pigment']}"
                                        for h in ("surface", "hidden") if f"{h}_detectable_before" in row), flush=True)
    doc = {"machine": platform.platform(), "python": platform.python_version(), "seed": a.seed,
           "model": a.model or "models/default.keras", "base_sha256": bundle.sha256,
           "mockup_seed": a.mockup_seed, "results": results}
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    from xrfcore.atomic import atomic_write_text

    atomic_write_text(out, json.dumps(doc, indent=1) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
