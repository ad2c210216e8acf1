"""Hostile-file sweep: many mutated files through every reader, label and model parser.

The same generator as tests/fuzz (tests/fuzz/fuzzcases.py), with more cut points and byte
flips per fixture (``--scale``) and a few seeds. Each case runs in a child process with a
timeout and an address-space limit; outcomes are counted by class (clean error, traceback,
signal, hang, memory, truncated read reported as success, input changed).
Writes benchmarks/results/fuzz.json (counts and every non-clean case).

Usage: python benchmarks/bench_fuzz.py [--seeds 1 2 3] [--scale 4] [--workers 2] [--no-model] [--code DIR]
"""

from __future__ import annotations

import argparse
import json
import pathlib
import platform
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "fuzz"))
from fuzzcases import make_cases  # noqa: E402
from fuzzrun import run_cases, summarise  # noqa: E402

_TINY_MODEL = """
import sys
from xrfcore.library import load_library
from xrfcore.model import ModelBundle, build_model, save_model
from xrfcore.preprocess import EnergyGrid, PreprocessConfig
lib = load_library()
cfg = PreprocessConfig(grid=EnergyGrid(start_kev=2.8, step_kev=0.08, n_channels=340))
m = build_model(340, len(lib.classes), filters=(4, 4, 4, 4, 8), kernel_sizes=(5, 3, 3, 3, 3))
save_model(ModelBundle(m, list(lib.classes), list(lib.class_names), cfg, {}), sys.argv[1])
"""


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    p.add_argument("--scale", type=int, default=4)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--timeout", type=float, default=60.0)
    p.add_argument("--no-model", action="store_true")
    p.add_argument("--big-config-mb", type=int, default=400)
    p.add_argument("--code", help="run another checkout's xrfcore (e.g. the main branch) to compare")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "fuzz.json"))
    a = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="xrf-fuzz-") as tmp:
        model = None
        if not a.no_model:
            model = pathlib.Path(tmp) / "tiny.keras"
            subprocess.run([sys.executable, "-c", _TINY_MODEL, str(model)], check=True, cwd=ROOT, capture_output=True)
        cases = []
        for seed in a.seeds:
            cases += make_cases(pathlib.Path(tmp) / f"seed{seed}", seed=seed, scale=a.scale, model=model,
                                big_config_mb=a.big_config_mb)
        t0 = time.monotonic()
        results = run_cases(cases, workers=a.workers, timeout_s=a.timeout,
                            env={"XRF_READER_TIMEOUT_S": str(max(5.0, a.timeout / 3)), "TF_CPP_MIN_LOG_LEVEL": "3",
                                 **({"XRF_FUZZ_CODE": a.code} if a.code else {})})
        wall = time.monotonic() - t0
    counts = summarise(results)
    bad = [{k: r[k] for k in ("id", "kind", "outcome", "detail", "wall_s", "rss_mb")}
           for r in results if r["outcome"] not in ("ok", "clean")]
    doc = {"cases": len(results), "counts": counts, "wall_s": round(wall, 1), "seeds": a.seeds, "scale": a.scale,
           "python": platform.python_version(), "machine": platform.machine(), "failures": bad}
    out = pathlib.Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=1) + "\n")
    print(json.dumps({k: doc[k] for k in ("cases", "counts", "wall_s")}, indent=1))
    for r in bad[:60]:
        print(f"{r['outcome']:14s} {r['id']}: {r['detail'][:160]}")


if __name__ == "__main__":
    main()
