"""Element-evidence fit: microseconds per spectrum on one core, and where the time goes.

Runs :func:`xrfcore.elements.evidence.fit_evidence` with the shipped model's evidence configuration
on the demo scan (2048 channels) and on Bruker-like 4096-channel spectra (the pool of
``bench_predict.py``), single-threaded BLAS, best of ``--repeats``; then times the steps of one chunk
(rebinning to the fit grid, the pile-up self-convolution, the solve with and without pile-up).
CPU time (``time.process_time``) is reported beside wall time: on a shared host the wall clock
drifts by tens of per cent. Writes benchmarks/results/evidence_fit.json.
Usage: OMP_NUM_THREADS=1 python benchmarks/bench_evidence.py [--repeats 7]
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from _timing import best_wall_and_cpu  # noqa: E402
from bench_predict import spectrum_pool  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--n", type=int, default=2048, help="spectra per run")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "evidence_fit.json"))
    a = p.parse_args(argv)

    from xrfcore.atomic import atomic_write_text
    from xrfcore.elements import evidence as ev
    from xrfcore.io import open_scan
    from xrfcore.model import default_model_path, load_model
    from xrfcore.model.evidence_model import spec_of
    from xrfcore.preprocess.grid import EnergyGrid, rebin_to_grid
    from xrfcore.scan import EnergyCalibration

    spec = spec_of(load_model(default_model_path()))
    cfg = spec.evidence if spec is not None else ev.EvidenceConfig()
    demo = open_scan(ROOT / "xrfcore" / "data" / "demo_mockup.h5")
    demo_x = np.asarray(demo.counts).reshape(-1, demo.n_channels)[: a.n]
    bruker_cal = EnergyCalibration(-0.955, 0.010)
    bruker_x = spectrum_pool(bruker_cal.energies(4096), a.n, np.random.default_rng(0))
    result = {"benchmark": "evidence_fit", "threads": os.environ.get("OMP_NUM_THREADS"), "n_spectra": a.n,
              "repeats": a.repeats, "config": cfg.to_dict(), "default_chunk": 256, "scans": {}}
    for name, x, cal in (("demo, 2048 channels", demo_x, demo.calibration),
                         ("Bruker-like, 4096 channels", bruker_x, bruker_cal)):
        row = {}
        for chunk in (128, 256, 1024):
            t = best_wall_and_cpu(lambda: ev.fit_evidence(x, cal, cfg, chunk=chunk), a.repeats)
            row[f"chunk_{chunk}_us_per_spectrum"] = {k.replace("_s", ""): 1e6 * v / len(x) for k, v in t.items()}
        # steps of one 256-spectrum chunk
        tpl = ev.fit_templates(cfg, round(min(ev._scan_top_kev(cal, x.shape[1]), cfg.e_max_kev), 3))
        grid = EnergyGrid(0.0, tpl.calibration.gain_kev, tpl.n_channels)
        block = x[:256]
        y = rebin_to_grid(block, cal, grid, pad="zero", warn=False)
        steps = {"rebin": lambda: rebin_to_grid(block, cal, grid, pad="zero", warn=False),
                 "pileup_self_convolution": lambda: ev._pileup_coarse(y),
                 "solve_with_pileup": lambda: ev._solve(y, tpl, True, cfg.systematic),
                 "solve_without_pileup": lambda: ev._solve(y, tpl, False, cfg.systematic)}
        row["steps_us_per_spectrum_cpu"] = {k: 1e6 * best_wall_and_cpu(f, a.repeats)["cpu_s"] / len(block) for k, f in steps.items()}
        row["fit_channels"] = int(tpl.matrix.shape[1])
        row["templates"] = int(tpl.matrix.shape[0])
        result["scans"][name] = row
        print(name, json.dumps(row, indent=1))
    atomic_write_text(pathlib.Path(a.out), json.dumps(result, indent=1) + "\n")
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
