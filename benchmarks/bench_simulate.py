"""Benchmark: our simulator vs PyMca5's headless multilayer matrix-spectrum areas, same stacks.

Writes ``benchmarks/results/simulate.json``:

* ``pymca_s_per_spectrum``: ``Elements.getMultilayerFluorescence`` (what PyMca's matrix spectrum
  calls through ``ConcentrationsTool.processFitResult(elementsfrommatrix=True)``) on the three
  validation stacks, with our tube grid; drawing the peaks (McaTheory) is not included (~1 %).
* ``ours_spectra_per_s``: :func:`xrfcore.physics.simulate_spectra` on the same stacks (full
  spectra: lines, scatter, escape, 4096 channels, Poisson noise), one process, warm tables;
  ``speedup_expected_spectrum`` compares the noise-free expected spectrum (what PyMca's matrix
  spectrum is) without the Poisson draw (~0.15 ms of 4096 draws per spectrum).
* ``dataset_16224_s``: ``simulate_dataset(n=16224, workers=2)`` wall time, file written.

Run: ``python3 benchmarks/bench_simulate.py`` (about a minute on 2 cores).
"""

from __future__ import annotations

import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))


def main() -> int:
    import numpy as np

    from physics.pymca_reference import pymca_group_areas
    from xrfcore.atomic import atomic_write_text
    from xrfcore.library import load_library
    from xrfcore.physics import Instrument, Layer, Stack, build_tables, library_elements, simulate_spectra
    from xrfcore.scan import EnergyCalibration
    from xrfcore.simulate.dataset import simulate_dataset

    lib = load_library()
    ground = Layer({"CaCO3": 1.0}, 200.0)
    stacks = [
        Stack((Layer({"VM": 1.0}, 20.0), Layer({"LW": 1.0}, 100.0), ground)),
        Stack((Layer({"PB": 1.0}, 50.0), Layer({"ZW": 1.0}, 100.0), ground)),
        Stack((Layer({"VM": 0.3, "CB": 0.3, "IO": 0.2, "CrY": 0.2}, 30.0),
               Layer({"ZW": 0.2, "LW": 0.4, "VG": 0.2, "SA": 0.2}, 80.0), ground)),
    ]
    ins = Instrument(escape=True)
    tables = build_tables(library_elements(lib), ins)
    cal = EnergyCalibration(-0.955, 0.010)

    # CPU time of this process (the 2-core machine is shared; wall time is noted too)
    pymca_times, pymca_wall = [], []
    for st in stacks:
        t0, w0 = time.process_time(), time.perf_counter()
        pymca_group_areas(st, ins, lib, tables)
        pymca_times.append(time.process_time() - t0)
        pymca_wall.append(time.perf_counter() - w0)

    simulate_spectra(stacks, ins, cal, 4096, seed=0, library=lib)  # warm caches
    many = stacks * 700
    t0, w0 = time.process_time(), time.perf_counter()
    simulate_spectra(many, ins, cal, 4096, seed=0, library=lib)
    ours_s = (time.process_time() - t0) / len(many)
    ours_wall = (time.perf_counter() - w0) / len(many)
    t0 = time.process_time()
    simulate_spectra(many, ins, cal, 4096, library=lib, noise=False)
    ours_expected_s = (time.process_time() - t0) / len(many)
    load_before = os.getloadavg()[0]

    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        simulate_dataset(Path(d) / "bench.h5", n=16224, seed=0, workers=2, progress=lambda done, n: None)
        dataset_s = time.perf_counter() - t0
        size_mb = (Path(d) / "bench.h5").stat().st_size / 1e6

    pymca_s = float(np.mean(pymca_times))
    result = {
        "pymca_s_per_spectrum": pymca_s,
        "pymca_s_per_stack": pymca_times,
        "pymca_wall_s_per_stack": pymca_wall,
        "ours_s_per_spectrum": ours_s,
        "ours_wall_s_per_spectrum": ours_wall,
        "timing": "process CPU time (single process, numpy single-threaded BLAS not forced)",
        "ours_spectra_per_s": 1.0 / ours_s,
        "speedup": pymca_s / ours_s,
        "ours_expected_s_per_spectrum": ours_expected_s,
        "speedup_expected_spectrum": pymca_s / ours_expected_s,
        "dataset_16224_s": dataset_s,
        "dataset_16224_spectra_per_s": 16224 / dataset_s,
        "dataset_16224_file_mb": size_mb,
        "n_channels": 4096,
        "workers": 2,
        "cpu_count": os.cpu_count(),
        "load_average_1min_before_dataset": load_before,
        "python": platform.python_version(),
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    out = ROOT / "benchmarks" / "results" / "simulate.json"
    atomic_write_text(out, json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
