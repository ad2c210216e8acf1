"""Pigment CNN speed on this CPU for several energy grids: inference and training throughput.

For grids of 0.01, 0.02 and 0.04 keV steps over 2.8-30 keV (2720, 1360, 680 channels), the
reference architecture (11 classes) is timed with

* inference: ``model.predict`` vs eager ``model(x)`` vs the XLA path of
  :func:`xrfcore.model.predict.predict_preprocessed` (jit_compile, fixed batch shape), batch 256,
  plus a batch-size sweep of the XLA path on the 0.02 keV grid;
* training: ``model.fit`` at batch 64 (spectra/s, after a warm-up epoch);
* FLOPs per spectrum (analytic, :func:`architecture_flops`) and achieved FLOP/s as a fraction of
  this CPU's float32 GEMM peak, measured here with a numpy matmul (and TensorFlow's matmul;
  the larger is the reference).

Writes benchmarks/results/model.json. Numbers are noisy when other jobs share the CPU.
Usage: python benchmarks/bench_model.py [--spectra 1024] [--train-spectra 640]
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

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))


def gemm_peak_flops(n: int = 2048, repeats: int = 5) -> float:
    """Best float32 GEMM rate (FLOP/s) of numpy's BLAS on an n x n product."""
    rng = np.random.default_rng(0)
    a = rng.random((n, n), dtype=np.float32)
    b = rng.random((n, n), dtype=np.float32)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 2.0 * n**3 / best


def tf_gemm_peak_flops(n: int = 2048, repeats: int = 5) -> float:
    """Best float32 GEMM rate (FLOP/s) of TensorFlow's own matmul (oneDNN/Eigen kernels)."""
    import tensorflow as tf

    rng = np.random.default_rng(0)
    a = tf.constant(rng.random((n, n), dtype=np.float32))
    b = tf.constant(rng.random((n, n), dtype=np.float32))
    tf.linalg.matmul(a, b).numpy()
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        tf.linalg.matmul(a, b).numpy()
        best = min(best, time.perf_counter() - t)
    return 2.0 * n**3 / best


def bench_grid(step_kev: float, n_spectra: int, n_train: int, peak: float, sweep: bool, rounds: int = 4) -> dict:
    import keras

    from xrfcore.model.architecture import architecture_flops, build_model
    from xrfcore.model.predict import predict_preprocessed

    n_channels = int(round((30.0 - 2.8) / step_kev))
    keras.utils.set_random_seed(0)
    model = build_model(n_channels, 11)
    rng = np.random.default_rng(0)
    x = rng.random((n_spectra, n_channels), dtype=np.float32)
    flops = architecture_flops(n_channels, 11)
    out: dict = {"step_kev": step_kev, "n_channels": n_channels, "flops_per_spectrum": flops, "inference": {}}
    ref = predict_preprocessed(model, x, method="predict")
    # methods (and batch sizes) are timed in interleaved rounds, best of all rounds, so that load
    # from other processes on the shared CPU biases no method in particular
    variants = [(m, 256) for m in ("predict", "call", "xla")]
    if sweep:
        variants += [("xla", bs) for bs in (64, 128, 512)] + [("predict", bs) for bs in (64, 512)]
    best = {v: float("inf") for v in variants}
    for v in variants:  # warm-up: tracing and XLA compilation
        predict_preprocessed(model, x[:512], batch_size=v[1], method=v[0])
    for _ in range(rounds):
        for method, bs in variants:
            t = time.perf_counter()
            predict_preprocessed(model, x, batch_size=bs, method=method)
            best[(method, bs)] = min(best[(method, bs)], time.perf_counter() - t)
    for method in ("predict", "call", "xla"):
        got = predict_preprocessed(model, x, batch_size=256, method=method)
        rate = n_spectra / best[(method, 256)]
        out["inference"][method] = {
            "batch_size": 256,
            "spectra_per_s": rate,
            "gflop_per_s": rate * flops / 1e9,
            "fraction_of_gemm_peak": rate * flops / peak,
            "max_abs_diff_vs_predict": float(np.max(np.abs(got - ref))),
        }
    if sweep:
        out["batch_sweep_spectra_per_s"] = {f"{m}@{bs}": n_spectra / t for (m, bs), t in best.items()}
    y = (rng.random((n_train, 11)) < 0.3).astype(np.float32)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="binary_crossentropy")
    xt = x[:n_train, :, None] if n_train <= n_spectra else rng.random((n_train, n_channels, 1), dtype=np.float32)
    model.fit(xt[:128], y[:128], batch_size=64, epochs=1, verbose=0)  # warm-up (tracing)
    t = time.perf_counter()
    model.fit(xt, y, batch_size=64, epochs=1, verbose=0)
    dt = time.perf_counter() - t
    rate = n_train / dt
    out["training"] = {
        "batch_size": 64,
        "spectra_per_s": rate,
        # forward + backward ~ 3x forward FLOPs
        "gflop_per_s_approx": 3 * rate * flops / 1e9,
        "fraction_of_gemm_peak_approx": 3 * rate * flops / peak,
        "epoch_of_16224_spectra_s": 16224 / rate,
    }
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--spectra", type=int, default=1024, help="spectra per inference timing")
    p.add_argument("--train-spectra", type=int, default=640, help="spectra per training timing")
    p.add_argument("--steps", default="0.01,0.02,0.04", help="grid steps (keV)")
    a = p.parse_args()
    t0 = time.perf_counter()
    numpy_peak = gemm_peak_flops(repeats=10)
    import tensorflow as tf

    tf_peak = tf_gemm_peak_flops(repeats=10)
    peak = max(numpy_peak, tf_peak)
    print(f"float32 GEMM peak: numpy {numpy_peak / 1e9:.1f}, TensorFlow {tf_peak / 1e9:.1f} GFLOP/s", flush=True)

    grids = []
    for step in (float(s) for s in a.steps.split(",")):
        r = bench_grid(step, a.spectra, a.train_spectra, peak, sweep=abs(step - 0.02) < 1e-9)
        inf = r["inference"]
        print(
            f"step {step} keV ({r['n_channels']} ch, {r['flops_per_spectrum'] / 1e6:.1f} MFLOP): "
            + ", ".join(f"{m} {v['spectra_per_s']:.0f}/s" for m, v in inf.items())
            + f"; train {r['training']['spectra_per_s']:.0f}/s",
            flush=True,
        )
        grids.append(r)
    result = {
        "benchmark": "model",
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(), "tensorflow": tf.__version__,
                    "gpus": len(tf.config.list_physical_devices("GPU"))},
        "gemm_peak_gflop_per_s": peak / 1e9,
        "gemm_peak_numpy_gflop_per_s": numpy_peak / 1e9,
        "gemm_peak_tensorflow_gflop_per_s": tf_peak / 1e9,
        "load_average_at_start": os.getloadavg(),
        "grids": grids,
        "seconds": time.perf_counter() - t0,
        "note": "fractions use the larger of the numpy and TensorFlow float32 GEMM peaks measured in this run "
        "(numpy's OpenBLAS may not use AVX-512 here, oneDNN does); other jobs may share the CPU",
    }
    from xrfcore.atomic import atomic_write_text

    path = pathlib.Path(__file__).resolve().parent / "results" / "model.json"
    atomic_write_text(path, json.dumps(result, indent=1) + "\n")
    print(f"wrote {path} in {result['seconds']:.0f} s")


if __name__ == "__main__":
    main()
