"""Fitted maps: our fitted_maps vs calling PyMca5 FastXRFLinearFit directly on the same cube.

Reports pixels/s of both (and of roi_maps) and the max relative difference of our maps vs PyMca's own batch fit
(same configuration, whole cube in one call). Writes benchmarks/results/fit.json.
Usage: python benchmarks/bench_fit.py [--rows 32] [--cols 32]
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from _timing import best_of  # noqa: E402

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tests" / "elements"))




def main() -> None:
    from PyMca5.PyMcaPhysics.xrf.FastXRFLinearFit import FastXRFLinearFit
    from element_cubes import synthetic_cube

    from xrfcore.elements.fit import fit_configuration, fit_scan
    from xrfcore.elements.roi import roi_maps

    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--rows", type=int, default=32)
    p.add_argument("--cols", type=int, default=32)
    a = p.parse_args()
    elements = {"Fe": 3000.0, "Co": 1500.0, "Pb": 4000.0, "As": 2000.0, "Ca": 2000.0, "Zn": 1000.0}
    scan, truth = synthetic_cube(elements, shape=(a.rows, a.cols), n_channels=4096, seed=0)
    n_px = a.rows * a.cols

    cube = np.asarray(scan.counts)
    cfg = fit_configuration(list(elements), scan.calibration, scan.n_channels)

    def run_ours():
        return fit_scan(scan, list(elements), rows_per_chunk=max(1, 1024 // a.cols))

    def run_pymca():
        fitter = FastXRFLinearFit()
        fitter.setFitConfiguration(cfg)
        return fitter.fitMultipleSpectra(y=cube, weight=0, refit=1, concentrations=0, save=False)

    def run_roi():
        return roi_maps(scan, list(elements))

    run_ours(), run_pymca(), run_roi()  # warm up: imports, line tables, PyMca data files
    t_ours, ours = best_of(run_ours, repeats=2)
    t_pymca, res = best_of(run_pymca, repeats=2)
    t_roi, _ = best_of(run_roi, repeats=2)
    labels = [str(x) for x in res.labels("parameters")]
    params = np.asarray(res["parameters"])
    diffs = {}
    for el, label in ours.families.items():
        ref = params[labels.index(label)]
        scale = np.max(np.abs(ref))
        diffs[el] = float(np.max(np.abs(ours.maps[el] - ref)) / scale)
    result = {
        "cube": [a.rows, a.cols, scan.n_channels],
        "elements": list(elements),
        "ours_pixels_per_s": n_px / t_ours,
        "pymca_direct_pixels_per_s": n_px / t_pymca,
        "overhead_ratio": t_ours / t_pymca,
        "roi_maps_pixels_per_s": n_px / t_roi,
        "max_rel_diff_vs_pymca_batch": max(diffs.values()),
        "max_rel_diff_per_element": diffs,
        "corr_with_truth": {el: float(np.corrcoef(ours.maps[el].ravel(), truth[el].ravel())[0, 1]) for el in elements},
    }
    out = pathlib.Path(__file__).parent / "results" / "fit.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
