"""Pigment-call quality on held-out mock-ups, against the element-evidence rule, at three count levels.

Every mock-up here is simulated fresh with seeds, physics variants and calibrations that no training
or tuning step of the shipped model saw (training sets use other seeds; the gate threshold is the
element-identification threshold and the calibration is fitted on simulated validation spectra).
For each mock-up and each count level (100 %, binomially thinned to 10 % and 1 %: a 100 ms or
10 ms dwell) it scores, on the same pixels:

* the model under test (default: the shipped ``models/default.keras``),
* optionally a second model (``--compare``, e.g. the previous default),
* the element-evidence rule (a pigment is present iff all its key elements are >= 5 sigma),

per pigment: F1 on all labels and on detectable labels (key elements >= 50 expected photons from the
layer that holds the pigment), ECE (10 bins, all labels), surface and hidden F1 where the model has
layer outputs, and the physics ceiling (share of labelled positives that are detectable).

Usage::

    python benchmarks/bench_pigment_quality.py [--model M.keras] [--compare OLD.keras] [--quick]

Writes ``benchmarks/results/pigment_quality.json`` (``--out``) and prints a summary table.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from _timing import repo_relative  # noqa: E402

#: Held-out mock-ups: (name, make_mockup keywords). Seeds 101-303 are used nowhere else.
MOCKUPS = (
    ("measured physics, Bruker-like axis, 6e4 counts",
     dict(seed=101, physics_variant="measured", offset_kev=-0.955, gain_kev=0.010, n_channels=4096, shape=(48, 64),
          count_level=6e4)),
    ("training physics, 7.5 eV axis, 1e5 counts",
     dict(seed=202, physics_variant="training", offset_kev=-0.45, gain_kev=0.0075, n_channels=4096, shape=(48, 64),
          count_level=1e5)),
    ("measured physics, demo-like axis, 2e4 counts",
     dict(seed=303, physics_variant="measured", offset_kev=-0.96, gain_kev=0.020, n_channels=2048, shape=(64, 64),
          count_level=2e4)),
)
LEVELS = (1.0, 0.1, 0.01)


def _mockup(kw: dict):
    from xrfcore.scan import EnergyCalibration
    from xrfcore.simulate.mockup import make_mockup

    kw = dict(kw)
    cal = EnergyCalibration(kw.pop("offset_kev"), kw.pop("gain_kev"))
    counts, labels = make_mockup(calibration=cal, **kw)
    return counts, labels, cal


def _score_model(bundle, scan, labels, det, classes):
    from xrfcore.maps import predict_maps
    from xrfcore.model.quality import score_heads

    maps = predict_maps(bundle, scan, unexplained=True)
    n = scan.n_rows * scan.n_cols
    prob = {h: (maps[h].reshape(n, -1) if h in maps else None) for h in ("any", "surface", "hidden")}
    scores = score_heads(prob, labels["labels_top"].reshape(n, -1), labels["labels_bottom"].reshape(n, -1), det,
                         classes)
    if "seen" in maps:  # "cannot tell" where it is true: hidden positives no detector sees, and ones it does
        seen = maps["seen"].reshape(n, -1).astype(bool)
        top, bottom = (labels[k].reshape(n, -1).astype(bool) for k in ("labels_top", "labels_bottom"))
        hid = bottom & ~top
        unseen_pos, seen_pos = hid & ~det[:, 1], hid & det[:, 1]
        scores["hidden_cannot_tell"] = {
            "undetectable_positives": int(unseen_pos.sum()),
            "undetectable_flagged_not_seen": float((~seen)[unseen_pos].mean()) if unseen_pos.any() else None,
            "detectable_positives": int(seen_pos.sum()),
            "detectable_flagged_not_seen": float((~seen)[seen_pos].mean()) if seen_pos.any() else None}
    flagged = maps["unexplained"].reshape(n, -1).any(axis=1).mean() if maps["unexplained"].size else 0.0
    scores["unexplained_pixel_share"] = float(flagged)
    scores["unexplained_elements"] = list(maps["unexplained_elements"])
    return scores


def _score_rule(scan, labels, det, classes):
    from xrfcore.elements.evidence import config_for_scan, scan_evidence
    from xrfcore.model.quality import rule_predictions, score_heads

    ev = scan_evidence(scan, config_for_scan(scan))
    n = scan.n_rows * scan.n_cols
    pred = rule_predictions(ev.significance.reshape(n, -1), ev.elements, classes).astype(np.float32)
    return score_heads({"any": pred}, labels["labels_top"].reshape(n, -1), labels["labels_bottom"].reshape(n, -1),
                       det, classes)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=str(ROOT / "models" / "default.keras"))
    p.add_argument("--compare", default=None, help="a second model scored on the same pixels")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "pigment_quality.json"))
    p.add_argument("--quick", action="store_true", help="first mock-up only, full counts")
    a = p.parse_args(argv)

    from xrfcore.atomic import atomic_write_text
    from xrfcore.model import load_model
    from xrfcore.model.quality import detectable, thin_counts
    from xrfcore.scan import Scan

    models = {"model": load_model(a.model)}
    if a.compare:
        models["compare"] = load_model(a.compare)
    classes = list(models["model"].classes)
    results = {"model": repo_relative(a.model), "compare": repo_relative(a.compare) if a.compare else None, "mockups": []}
    t0 = time.perf_counter()
    for name, kw in (MOCKUPS[:1] if a.quick else MOCKUPS):
        counts, labels, cal = _mockup(kw)
        n = counts.shape[0] * counts.shape[1]
        det = detectable(labels["layer_photons"].reshape(n, 2, -1), labels["photon_elements"], classes)
        anyl = (labels["labels"].reshape(n, -1) > 0)
        det_any = (labels["labels_top"].reshape(n, -1).astype(bool) & det[:, 0]) | (
            labels["labels_bottom"].reshape(n, -1).astype(bool) & det[:, 1])
        share = {c: float(det_any[:, k][anyl[:, k]].mean()) if anyl[:, k].any() else None
                 for k, c in enumerate(classes)}
        ceiling = {c: (2 * s / (1 + s) if s is not None else None) for c, s in share.items()}
        entry = {"name": name, "settings": {k: (list(v) if isinstance(v, tuple) else v) for k, v in kw.items()},
                 "detectable_share": share, "f1_ceiling_all_labels": ceiling, "levels": []}
        for level in (LEVELS[:1] if a.quick else LEVELS):
            c = counts if level == 1.0 else thin_counts(counts, level, seed=7)
            lab = labels
            if level != 1.0:  # expected photons scale with the dwell
                lab = dict(labels, layer_photons=labels["layer_photons"] * level)
            det_l = detectable(lab["layer_photons"].reshape(n, 2, -1), lab["photon_elements"], classes)
            scan = Scan.from_array(c, cal)
            row = {"count_level": level, "median_counts": float(np.median(c.sum(axis=-1))),
                   "rule": _score_rule(scan, lab, det_l, classes)}
            for key, bundle in models.items():
                row[key] = _score_model(bundle, scan, lab, det_l, classes)
            entry["levels"].append(row)
            print(f"{name} @ {level:g}: " + "  ".join(
                f"{k} F1det {row[k]['any_detectable']['macro_f1']:.3f} all {row[k]['any_all']['macro_f1']:.3f} "
                f"ECE {row[k]['any_all']['pooled_ece']:.3f}" for k in ("model", "compare", "rule") if k in row),
                flush=True)
        results["mockups"].append(entry)
    results["seconds"] = time.perf_counter() - t0
    atomic_write_text(a.out, json.dumps(results, indent=1, default=float) + "\n")
    print(f"wrote {a.out} ({results['seconds']:.0f} s)")
    _table(results, classes)
    return 0


def _fmt(v):
    return "  -  " if v is None else f"{v:.3f}"


def _table(results, classes) -> None:
    for m in results["mockups"]:
        print(f"\n## {m['name']}")
        print("| level | who | " + " | ".join(classes) + " | macro |")
        for row in m["levels"]:
            for who in ("model", "compare", "rule"):
                if who not in row:
                    continue
                s = row[who]["any_detectable"]
                print(f"| {row['count_level']:g} | {who} | " + " | ".join(_fmt(s["per_pigment"][c]["f1"]) for c in classes)
                      + f" | {_fmt(s['macro_f1'])} |")


if __name__ == "__main__":
    raise SystemExit(main())
