"""Whole-scan pigment maps: pixels/s of ``predict_to_h5`` and where the time goes.

Writes a synthetic scan (default 300 x 300 pixels x 4096 channels, uint16, Bruker-like
calibration -0.955 keV + 10 eV/channel) to ``benchmarks/_work/`` in our HDF5 layout, then runs
:func:`xrfcore.maps.predict_to_h5` on it with the shipped default model (or, if there is none
yet, the reference architecture on the default 1360-channel grid with random weights: same
cost). Reports

* pixels/s end to end (read + preprocess + model + write), after an XLA warm-up run;
* time per stage (read, preprocess, model, write; summed over threads);
* the model's forward FLOPs per spectrum, this CPU's float32 GEMM peak (numpy and TensorFlow
  matmul, the larger), the roofline in spectra/s (peak / FLOPs) and the measured fraction of it
  (end to end and model-only).

Writes benchmarks/results/bench_predict.json. Numbers are noisy when other jobs share the CPU.
Model and baseline runs alternate (``--repeats``, best of each): the CPU's speed drifts on a shared host.
Usage: python benchmarks/bench_predict.py [--rows 300] [--cols 300] [--channels 4096] [--batch 256] [--repeats 2]
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import sys
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from _timing import repo_relative  # noqa: E402


def gemm_peak(n: int = 2048, repeats: int = 5) -> dict[str, float]:
    """Best float32 GEMM rate (FLOP/s) of numpy and of TensorFlow on an n x n product."""
    import tensorflow as tf

    rng = np.random.default_rng(0)
    a = rng.random((n, n), dtype=np.float32)
    b = rng.random((n, n), dtype=np.float32)
    out = {}
    for name, fn in (("numpy", lambda: a @ b), ("tensorflow", lambda: tf.linalg.matmul(ta, tb).numpy())):
        ta, tb = tf.constant(a), tf.constant(b)
        fn()
        best = min(_timed(fn) for _ in range(repeats))
        out[name] = 2.0 * n**3 / best
    return out


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def spectrum_pool(energies_kev: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` uint16 Poisson spectra: Ca, Fe, Zn, Hg, Pb L, Pb Lb and Sn K lines of random height on a slope."""
    lines = [3.69, 6.40, 8.63, 9.99, 10.55, 12.61, 25.27]  # Ca, Fe, Zn, Hg, Pb L, Pb Lb, Sn K
    e = energies_kev
    base = 2.0 + 20 * np.exp(-e / 8.0)
    pool = []
    for _ in range(n):
        amps = rng.uniform(0, 300, size=len(lines))
        lam = base + sum(a * np.exp(-0.5 * ((e - x) / 0.07) ** 2) for a, x in zip(amps, lines))
        pool.append(rng.poisson(lam))
    return np.asarray(pool, dtype=np.uint16)


def make_scan_file(path: pathlib.Path, rows: int, cols: int, channels: int, seed: int = 0) -> pathlib.Path:
    """Synthetic uint16 cube written in row blocks (pixels drawn from a pool of Poisson spectra)."""
    import h5py

    from xrfcore.scan import EnergyCalibration

    cal = EnergyCalibration(-0.955, 0.010)
    e = cal.energies(channels)
    rng = np.random.default_rng(seed)
    pool = spectrum_pool(e, 512, rng)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".part.h5")
    with h5py.File(tmp, "w") as f:
        g = f.create_group("xrf")
        ds = g.create_dataset("counts", shape=(rows, cols, channels), dtype=np.uint16, chunks=(1, cols, channels))
        for r in range(rows):
            ds[r] = pool[rng.integers(0, len(pool), size=cols)]
        g.attrs["offset_keV"], g.attrs["gain_keV"], g.attrs["quadratic_keV"] = cal.offset_kev, cal.gain_kev, 0.0
        g.create_dataset("energy_keV", data=e)
    os.replace(tmp, path)
    return path


def load_or_build_model():
    from xrfcore.model import ModelBundle, build_model, default_model_path, load_model
    from xrfcore.preprocess import PreprocessConfig

    p = default_model_path()
    if p.exists():
        return load_model(p), f"shipped default model {p.name}"
    from xrfcore.library import load_library

    lib = load_library()
    pre = PreprocessConfig()
    model = build_model(pre.grid.n_channels, len(lib.classes))
    bundle = ModelBundle(model, list(lib.classes), [lib.get(c).name for c in lib.classes], pre, {})
    return bundle, f"reference architecture, {pre.grid.n_channels}-channel grid, random weights (no default model yet)"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=300)
    ap.add_argument("--cols", type=int, default=300)
    ap.add_argument("--channels", type=int, default=4096)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--rows-per-chunk", type=int, default=None)
    ap.add_argument("--repeats", type=int, default=2,
                    help="runs of model and baseline, alternating; the best of each is reported")
    ap.add_argument("--baseline", default=str(ROOT / "models" / "paper_cnn.keras"),
                    help="model timed in the same run as the reference (default: the paper CNN, without evidence "
                         "or unexplained-element maps, i.e. the pipeline before the evidence model)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "bench_predict.json"))
    args = ap.parse_args()

    from xrfcore.io import open_scan
    from xrfcore.maps import predict_cube, predict_to_h5, timing_summary
    from xrfcore.model import model_flops
    from xrfcore.scan import Scan

    work = ROOT / "benchmarks" / "_work"
    scan_file = work / f"bench_predict_{args.rows}x{args.cols}x{args.channels}.h5"
    t0 = time.perf_counter()
    if not scan_file.exists():
        make_scan_file(scan_file, args.rows, args.cols, args.channels)
    t_make = time.perf_counter() - t0
    scan = open_scan(scan_file)
    bundle, model_desc = load_or_build_model()
    try:
        flops = model_flops(bundle.model)
    except Exception:  # two-input evidence model: count the CNN trunk's FLOPs only
        from xrfcore.model import load_model as _load

        flops = model_flops(_load(args.baseline).model) if pathlib.Path(args.baseline).is_file() else float("nan")

    t0 = time.perf_counter()  # warm-up: XLA compile and first-call overheads
    predict_cube(bundle, Scan(scan.read_rows(0, 1), scan.calibration), batch_size=args.batch)
    t_warm = time.perf_counter() - t0

    base = None
    if args.baseline and pathlib.Path(args.baseline).is_file():
        from xrfcore.model import load_model

        base = load_model(args.baseline)
        predict_cube(base, Scan(scan.read_rows(0, 1), scan.calibration), batch_size=args.batch)
    # model and baseline alternate, best of --repeats each: this CPU's speed drifts by tens of per cent
    # over minutes (shared host), which a single pair of runs reads as a speed ratio
    out_file = work / "bench_predict_maps.h5"
    walls, base_walls, stages = [], [], None
    for _ in range(max(1, args.repeats)):
        timing_summary(reset=True)
        t0 = time.perf_counter()
        predict_to_h5(bundle, scan, out_file, batch_size=args.batch, rows_per_chunk=args.rows_per_chunk)
        walls.append(time.perf_counter() - t0)
        run_stages = timing_summary(reset=True)
        if walls[-1] == min(walls):
            stages = run_stages
        if base is not None:
            t0 = time.perf_counter()
            predict_to_h5(base, scan, work / "bench_predict_base.h5", batch_size=args.batch,
                          rows_per_chunk=args.rows_per_chunk, unexplained=False)
            base_walls.append(time.perf_counter() - t0)
            (work / "bench_predict_base.h5").unlink(missing_ok=True)
    wall = min(walls)
    n_px = args.rows * args.cols
    baseline = None
    if base is not None:
        base_wall = min(base_walls)
        baseline = {"model": repo_relative(args.baseline), "wall_s": base_wall, "pixels_per_s": n_px / base_wall,
                    "ratio_model_to_baseline_pixels_per_s": (n_px / wall) / (n_px / base_wall),
                    # the ratio of the median runs: less at the mercy of one lucky run on either side
                    "ratio_of_median_runs": float(np.median(base_walls) / np.median(walls)),
                    "wall_s_all_runs": base_walls}
    peak = gemm_peak()
    best_peak = max(peak.values())
    roofline = best_peak / flops
    px_s = n_px / wall
    model_px_s = n_px / stages["model_s"] if stages["model_s"] else float("nan")
    result = {
        "benchmark": "predict",
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(),
                    "load_average_at_start": list(os.getloadavg())},
        "scan": {"rows": args.rows, "cols": args.cols, "channels": args.channels, "dtype": "uint16",
                 "file_bytes": scan_file.stat().st_size, "make_s": t_make},
        "model": model_desc,
        "grid_channels": bundle.n_channels,
        "batch_size": args.batch,
        "rows_per_chunk": args.rows_per_chunk or scan.default_chunk_rows(),
        "warmup_s": t_warm,
        "wall_s": wall,
        "wall_s_all_runs": walls,
        "pixels_per_s": px_s,
        "seconds_for_300x300": 90000 / px_s,
        "stage_seconds_summed_over_threads": stages,
        "stage_fraction_of_wall": {k: v / wall for k, v in stages.items()},
        "flops_per_spectrum": flops,
        "gemm_peak_gflop_per_s": {k: v / 1e9 for k, v in peak.items()},
        "roofline_spectra_per_s": roofline,
        "fraction_of_roofline_end_to_end": px_s / roofline,
        "fraction_of_roofline_model_only": model_px_s / roofline,
        "baseline_same_run": baseline,
    }
    pathlib.Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    pathlib.Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))
    out_file.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
