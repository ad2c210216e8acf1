"""Run fuzz cases the way a user would, and classify what happened.

Each case runs in its own child process, forked from a worker that has already imported
xrfcore, numpy, h5py, PyMca5 and rosettasciio (so a case costs a fork, not a Python start-up).
A scan case runs ``python -m xrfcore info FILE --json`` (``xrfcore.cli.main``, with the same
top-level behaviour as the interpreter: an uncaught exception prints a traceback and exits 1);
a label case runs :func:`xrfcore.labels.load_labels`; a model case runs
:func:`xrfcore.model.load_model`. The child gets an address-space limit (``RLIMIT_AS``) and a
wall-clock timeout. Outcomes:

``ok``            exit 0 and a valid report (Scan shape of positive ints, finite total counts)
``clean``         exit 2 and exactly one ``error: ...`` line (other lines only ``warning: ...``)
``traceback``     a Python traceback (or any other exit code / malformed output)
``signal``        killed by a signal (segfault, bus error, abort)
``hang``          still running at the timeout
``memory``        MemoryError, or more than ``rss_limit_mb`` resident
``truncated_ok``  a case marked ``must_fail`` (data known to be missing) exited 0
``input_changed`` an input file's SHA-256 changed
``control_failed`` a valid fixture (a control case) did not read as a success

Run as a script, it is the worker: it reads a JSON case list on stdin and writes one JSON
result per line on stdout.
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

__all__ = ["run_cases", "summarise", "OUTCOMES"]

OUTCOMES = ("ok", "clean", "traceback", "signal", "hang", "memory", "truncated_ok", "input_changed",
            "control_failed")
REPO = Path(__file__).resolve().parents[2]


def _sha(path: str) -> str | None:
    try:
        with open(path, "rb") as fh:
            return hashlib.sha256(fh.read()).hexdigest()
    except OSError:
        return None


def run_cases(cases: list[dict[str, Any]], *, workers: int = 2, timeout_s: float = 30.0, memory_mb: int = 3072,
              model_memory_mb: int = 12288, rss_limit_mb: int = 1200, env: dict[str, str] | None = None,
              ) -> list[dict[str, Any]]:
    """Run ``cases`` in ``workers`` worker processes; return one result dict per case, in order."""
    order = {c["id"] + c["path"]: i for i, c in enumerate(cases)}
    groups: list[list[dict[str, Any]]] = [[] for _ in range(max(1, workers))]
    for i, c in enumerate(cases):
        groups[i % len(groups)].append(c)
    settings = {"timeout_s": timeout_s, "memory_mb": memory_mb, "model_memory_mb": model_memory_mb,
                "rss_limit_mb": rss_limit_mb}
    full_env = {**os.environ, **(env or {})}
    code = full_env.get("XRF_FUZZ_CODE") or str(REPO)  # another checkout's xrfcore, to compare versions
    full_env["PYTHONPATH"] = os.pathsep.join([code] + [p for p in full_env.get("PYTHONPATH", "").split(os.pathsep) if p])
    procs = []
    for g in groups:
        if not g:
            continue
        p = subprocess.Popen([sys.executable, str(Path(__file__).resolve())], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=full_env, cwd=str(REPO), text=True)
        p.stdin.write(json.dumps({"settings": settings, "cases": g}))
        p.stdin.close()
        procs.append((p, g))
    results: list[dict[str, Any]] = []
    for p, g in procs:
        out = p.stdout.read()
        err = p.stderr.read()
        p.wait()
        got = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
        done = {r["id"] + r["path"] for r in got}
        for c in g:  # a worker that died loses its remaining cases: count them as failures
            if c["id"] + c["path"] not in done:
                got.append({**c, "outcome": "signal", "detail": f"worker died: {err[-500:]}"})
        results.extend(got)
    results.sort(key=lambda r: order.get(r["id"] + r["path"], 0))
    return results


def summarise(results: list[dict[str, Any]]) -> dict[str, int]:
    """Count of each outcome (all of :data:`OUTCOMES`, zeros included)."""
    counts = {k: 0 for k in OUTCOMES}
    for r in results:
        counts[r["outcome"]] = counts.get(r["outcome"], 0) + 1
    return counts


# -- worker -----------------------------------------------------------------------------------
def _child(case: dict[str, Any], settings: dict[str, Any], out_path: str, err_path: str) -> None:
    """Runs in the forked child; never returns."""
    code = 1
    try:
        os.setpgid(0, 0)
        mem = settings["model_memory_mb" if case["kind"] == "model" else "memory_mb"] << 20
        resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
        fo = os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        fe = os.open(err_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.dup2(fo, 1)
        os.dup2(fe, 2)
        sys.stdout = os.fdopen(1, "w", buffering=1)
        sys.stderr = os.fdopen(2, "w", buffering=1)
        code = _run_case(case)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:  # noqa: BLE001 - what the interpreter would do
        import traceback

        traceback.print_exc()
        code = 1
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def _run_case(case: dict[str, Any]) -> int:
    from xrfcore.errors import XRFError

    if case["kind"] == "scan":
        from xrfcore.cli import main

        return main(["info", case["path"], "--json"])
    try:
        if case["kind"] == "labels":
            from fuzzcases import LABEL_SCAN_SHAPE

            from xrfcore.labels import load_labels

            ls = load_labels(case["path"], scan_shape=LABEL_SCAN_SHAPE, classes=_LIB.classes, library=_LIB)
            print(json.dumps({"labelled": ls.n_labelled, "shape": list(ls.labels.shape)}))
        else:
            from xrfcore.model import load_model

            b = load_model(case["path"])
            print(json.dumps({"classes": list(b.classes), "channels": b.n_channels}))
    except XRFError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def _classify(case: dict[str, Any], status: int | None, out: str, err: str, rss_mb: float,
              settings: dict[str, Any]) -> tuple[str, str]:
    if status is None:
        return "hang", f"still running after {settings['timeout_s']} s"
    if "MemoryError" in err or "std::bad_alloc" in err or rss_mb > settings["rss_limit_mb"]:
        return "memory", f"max RSS {rss_mb:.0f} MB; {err.strip()[-300:]}"
    if os.WIFSIGNALED(status):
        return "signal", signal.Signals(os.WTERMSIG(status)).name + "; " + err.strip()[-300:]
    code = os.WEXITSTATUS(status)
    if "Traceback (most recent call last)" in err:
        return "traceback", err.strip()[-600:]
    lines = [ln for ln in err.splitlines() if ln.strip()]
    if code == 2:
        errors = [ln for ln in lines if ln.startswith("error: ")]
        others = [ln for ln in lines if not ln.startswith(("error: ", "warning: "))]
        if len(errors) == 1 and not others:
            return "clean", errors[0][:300]
        return "traceback", "exit 2 without one error line: " + err.strip()[-300:]
    if code == 0:
        try:
            rep = json.loads(out)
        except ValueError:
            return "traceback", "exit 0 without a report: " + out[-200:]
        if case["kind"] == "scan":
            shape = rep.get("shape")
            import math

            valid = (isinstance(shape, list) and len(shape) == 3 and all(isinstance(s, int) and s > 0 for s in shape)
                     and isinstance(rep.get("total_counts"), (int, float)) and math.isfinite(rep["total_counts"]))
            if not valid:
                return "traceback", f"invalid report {str(rep)[:200]}"
        if case.get("must_fail"):
            return "truncated_ok", str(rep)[:200]
        return "ok", str(rep)[:200]
    return "traceback", f"exit {code}: {err.strip()[-300:]}"


def _worker() -> None:
    global _LIB
    job = json.loads(sys.stdin.read())
    settings, cases = job["settings"], job["cases"]
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    # what `python -m xrfcore` imports anyway, loaded once before forking
    import h5py  # noqa: F401
    import numpy  # noqa: F401
    import scipy.signal  # noqa: F401

    import xrfcore.cli  # noqa: F401
    import xrfcore.io  # noqa: F401
    import xrfcore.labels  # noqa: F401
    from xrfcore.library import load_library

    try:
        from PyMca5.PyMcaIO import specfilewrapper  # noqa: F401
        import rsciio.bruker  # noqa: F401
    except ImportError:
        pass
    _LIB = load_library()
    tmp = tempfile.mkdtemp(prefix="fuzz-")
    for case in cases:
        before = {p: _sha(p) for p in case["inputs"]}
        out_path, err_path = os.path.join(tmp, "out"), os.path.join(tmp, "err")
        sys.stdout.flush()
        t0 = time.monotonic()
        pid = os.fork()
        if pid == 0:
            _child(case, settings, out_path, err_path)
        status = None
        rusage = None
        deadline = t0 + settings["timeout_s"] * (4 if case["kind"] == "model" else 1)
        while True:
            wpid, st, ru = os.wait4(pid, os.WNOHANG)
            if wpid:
                status, rusage = st, ru
                try:  # guarded grandchildren of a case must not outlive it
                    os.killpg(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                break
            if time.monotonic() > deadline:
                os.killpg(pid, signal.SIGKILL)
                os.wait4(pid, 0)
                break
            time.sleep(0.005)
        wall = time.monotonic() - t0
        out = Path(out_path).read_text(errors="replace") if os.path.exists(out_path) else ""
        err = Path(err_path).read_text(errors="replace") if os.path.exists(err_path) else ""
        rss_mb = (rusage.ru_maxrss / 1024.0) if rusage else 0.0
        outcome, detail = _classify(case, status, out, err, rss_mb, settings)
        after = {p: _sha(p) for p in case["inputs"]}
        if after != before and outcome != "hang":
            outcome, detail = "input_changed", f"inputs changed ({detail})"
        elif case.get("control") and outcome != "ok":
            outcome, detail = "control_failed", f"valid file gave {outcome}: {detail}"
        res = {**case, "outcome": outcome, "detail": detail, "wall_s": round(wall, 3), "rss_mb": round(rss_mb)}
        sys.stdout.write(json.dumps(res) + "\n")
        sys.stdout.flush()
        # leftovers of a killed child (its own guarded children) are not ours to wait for


_LIB: Any = None

if __name__ == "__main__":
    _worker()
