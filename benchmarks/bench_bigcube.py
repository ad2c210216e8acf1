"""Peak memory of whole-scan inference on a cube larger than memory should allow.

Writes a synthetic uint16 cube of ``--gb`` GB (default 10 GB; 1000 columns x 4096 channels,
rows from the size) to ``benchmarks/_work/`` in our HDF5 layout, row by row (never held in
memory), then runs :func:`xrfcore.maps.predict_to_h5` on it in a fresh child process with the
shipped default model (or, without one, the reference architecture with random weights: same cost)
and reports the child's peak RSS (``ru_maxrss``, plus psutil sampling every 0.2 s), its
RSS after imports and warm-up (the baseline), pixels/s and wall time. The goal: peak RSS under
2 GB for a 10 GB cube, i.e. memory independent of the cube size.

Writes benchmarks/results/bench_bigcube.json. Usage:
python benchmarks/bench_bigcube.py [--gb 10] [--cols 1000] [--channels 4096] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import resource
import subprocess
import sys
import threading
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


def child(scan_file: str, out_file: str, batch: int) -> None:
    """Run in the child process: warm up, then predict_to_h5 while sampling RSS."""
    import psutil

    from bench_predict import load_or_build_model
    from xrfcore.io import open_scan
    from xrfcore.maps import predict_cube, predict_to_h5
    from xrfcore.scan import Scan

    proc = psutil.Process()
    scan = open_scan(scan_file)
    bundle, desc = load_or_build_model()
    predict_cube(bundle, Scan(scan.read_rows(0, 1), scan.calibration), batch_size=batch)
    baseline = proc.memory_info().rss
    peak = [baseline]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], proc.memory_info().rss)
            time.sleep(0.2)

    threading.Thread(target=sample, daemon=True).start()
    t0 = time.perf_counter()
    predict_to_h5(bundle, scan, out_file, batch_size=batch)
    wall = time.perf_counter() - t0
    stop.set()
    n_px = scan.n_rows * scan.n_cols
    print("RESULT " + json.dumps({
        "model": desc, "rows_per_chunk": scan.default_chunk_rows(), "wall_s": wall, "pixels": n_px,
        "pixels_per_s": n_px / wall, "rss_after_warmup_bytes": baseline, "rss_peak_sampled_bytes": peak[0],
        "ru_maxrss_self_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gb", type=float, default=10.0, help="cube size in GB (1e9 bytes), default 10")
    ap.add_argument("--cols", type=int, default=1000)
    ap.add_argument("--channels", type=int, default=4096)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--keep", action="store_true", help="keep the cube file for another run")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "bench_bigcube.json"))
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child[0], args.child[1], args.batch)
        return

    from bench_predict import make_scan_file

    rows = max(1, int(round(args.gb * 1e9 / (args.cols * args.channels * 2))))
    work = ROOT / "benchmarks" / "_work"
    scan_file = work / f"bigcube_{rows}x{args.cols}x{args.channels}.h5"
    out_file = work / "bigcube_maps.h5"
    t0 = time.perf_counter()
    if not scan_file.exists():
        make_scan_file(scan_file, rows, args.cols, args.channels)
    t_make = time.perf_counter() - t0
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    t0 = time.perf_counter()
    res = subprocess.run([sys.executable, __file__, "--batch", str(args.batch), "--child", str(scan_file), str(out_file)],
                         capture_output=True, text=True, env=env)
    t_child = time.perf_counter() - t0
    child_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    lines = [ln for ln in res.stdout.splitlines() if ln.startswith("RESULT ")]
    if res.returncode != 0 or not lines:
        sys.exit(f"child failed ({res.returncode}):\n{res.stderr[-3000:]}")
    run = json.loads(lines[-1][len("RESULT "):])
    result = {
        "benchmark": "bigcube",
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(),
                    "load_average_at_start": list(os.getloadavg())},
        "cube": {"rows": rows, "cols": args.cols, "channels": args.channels, "dtype": "uint16",
                 "file_bytes": scan_file.stat().st_size, "make_s": t_make},
        **run,
        "child_process_s": t_child,
        "peak_rss_bytes": child_peak,
        "peak_rss_gib": child_peak / 2**30,
        "peak_rss_over_warmup_gib": (child_peak - run["rss_after_warmup_bytes"]) / 2**30,
        "cube_over_peak_rss": scan_file.stat().st_size / child_peak,
    }
    pathlib.Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    pathlib.Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))
    out_file.unlink(missing_ok=True)
    if not args.keep:
        scan_file.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
