"""Helpers shared by the benchmark scripts (run as ``python3 benchmarks/bench_X.py``): timing, and
repository-relative paths for the results files."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]


def repo_relative(path) -> str:
    """A path inside the repository as repository-relative text (results files carry no machine paths)."""
    p = Path(path).resolve()
    return str(p.relative_to(ROOT)) if p.is_relative_to(ROOT) else p.name


def best_of(fn: Callable[[], Any], repeats: int = 3) -> tuple[float, Any]:
    """Run ``fn`` ``repeats`` times; return (fastest wall time in s, the last result)."""
    times, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out


def best_wall_and_cpu(fn: Callable[[], Any], repeats: int = 3) -> dict[str, float]:
    """Run ``fn`` once to warm up, then ``repeats`` times; fastest wall and CPU time (s) as a dict.

    CPU time (``time.process_time``) is steadier than wall time on a shared host."""
    fn()
    wall, cpu = [], []
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return {"wall_s": min(wall), "cpu_s": min(cpu)}
