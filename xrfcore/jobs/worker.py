"""Worker process of one job: ``python -m xrfcore.jobs.worker JOB_DIR``.

Reads ``params.json``, marks the job running, runs the task of :mod:`xrfcore.jobs.tasks`
and records the outcome in ``status.json``. SIGTERM (from :func:`~xrfcore.jobs.runner.cancel_job`)
raises :class:`JobCancelled` inside the task, so ``atomic_path`` removes temporary outputs
before the job is marked ``cancelled``. Log lines go to stdout, which the launcher sends to
``log.txt``.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import Sequence

__all__ = ["JobCancelled", "main"]


class JobCancelled(BaseException):
    """Raised in the worker when the job is cancelled (SIGTERM)."""


def _on_sigterm(signum, frame):  # noqa: ANN001
    raise JobCancelled("cancelled by request (SIGTERM)")


def _log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the job in ``argv[0]`` (a job folder); returns the exit code."""
    from xrfcore.common import utc_now
    from xrfcore.jobs.runner import write_status

    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print("usage: python -m xrfcore.jobs.worker JOB_DIR", file=sys.stderr)
        return 2
    job_dir = Path(args[0])
    signal.signal(signal.SIGTERM, _on_sigterm)
    spec = json.loads((job_dir / "params.json").read_text(encoding="utf-8"))
    kind, params = spec["kind"], spec["params"]
    write_status(job_dir, state="running", pid=os.getpid(), started=utc_now(), message="running")
    _log(f"job {job_dir.name}: {kind} started (pid {os.getpid()})")
    last = [0.0]

    def progress(fraction: float, message: str = "") -> None:
        now = time.monotonic()
        if now - last[0] >= 0.5 or fraction >= 1.0:
            last[0] = now
            write_status(job_dir, progress=float(min(max(fraction, 0.0), 1.0)), message=message or "running")

    try:
        from xrfcore.jobs.tasks import run_task

        result = run_task(kind, params, progress=progress, log=_log)
    except JobCancelled as exc:
        _log(f"cancelled: {exc}")
        write_status(job_dir, state="cancelled", finished=utc_now(), message="cancelled; no output was written")
        return 130
    except KeyboardInterrupt:
        write_status(job_dir, state="cancelled", finished=utc_now(), message="interrupted; no output was written")
        return 130
    except Exception as exc:  # noqa: BLE001 - every failure is reported in the status
        from xrfcore.errors import XRFError

        if not isinstance(exc, XRFError):
            traceback.print_exc(file=sys.stdout)
        _log(f"failed: {exc}")
        write_status(job_dir, state="failed", finished=utc_now(), message=f"{type(exc).__name__}: {exc}")
        return 1
    write_status(job_dir, state="done", progress=1.0, finished=utc_now(), message="done", result=result)
    _log("done")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
