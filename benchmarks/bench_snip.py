"""SNIP speed: our vectorised snip_background vs PyMca5 SpecfitFuns.snip1d in a loop.

Same 4096-channel cube (Poisson counts), same run. Writes benchmarks/results/snip.json.
Usage: python benchmarks/bench_snip.py [--spectra 1024] [--width 30]
"""

from __future__ import annotations

import argparse
import json
import pathlib
import platform
import sys

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from _timing import best_of  # noqa: E402




def main() -> None:
    from PyMca5.PyMcaMath.fitting import SpecfitFuns

    from xrfcore.preprocess import snip_background

    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--spectra", type=int, default=1024)
    p.add_argument("--width", type=int, default=30)
    a = p.parse_args()
    rng = np.random.default_rng(0)
    e = np.arange(4096) * 0.01
    model = 20 * np.exp(-e / 15) + 500 * np.exp(-0.5 * ((e - 6.4) / 0.07) ** 2)
    cube = rng.poisson(model, (a.spectra, 4096)).astype(np.uint32)
    t_pymca, ref = best_of(lambda: np.stack([SpecfitFuns.snip1d(s, a.width) for s in cube]))
    t64, ours64 = best_of(lambda: snip_background(cube, a.width))
    c32 = cube.astype(np.float32)
    t32, ours32 = best_of(lambda: snip_background(c32, a.width))
    n = a.spectra
    result = {
        "n_spectra": n,
        "n_channels": 4096,
        "width_channels": a.width,
        "pymca_snip1d_us_per_spectrum": 1e6 * t_pymca / n,
        "ours_float64_us_per_spectrum": 1e6 * t64 / n,
        "ours_float32_us_per_spectrum": 1e6 * t32 / n,
        "speedup_float64": t_pymca / t64,
        "speedup_float32": t_pymca / t32,
        "max_rel_diff_float64": float(np.max(np.abs(ours64 - ref) / np.maximum(np.abs(ref), 1e-12))),
        "max_rel_diff_float32": float(np.max(np.abs(ours32 - ref) / np.maximum(np.abs(ref), 1e-12))),
        "machine": platform.machine(),
        "python": platform.python_version(),
    }
    out = pathlib.Path(__file__).parent / "results" / "snip.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
