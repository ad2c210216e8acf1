"""Start, watch and cancel background jobs; everything about a job lives in its own folder.

A job folder ``<jobs dir>/<job id>/`` holds ``params.json`` (kind + parameters),
``status.json`` (written atomically by the worker), ``pid`` (the worker's process id and start
time, written by the launcher) and ``log.txt`` (the worker's stdout and stderr). The worker is a
separate session (``start_new_session=True``), so it survives the app server that launched it;
anybody can re-attach by reading the folder.

``status.json``::

    {"id", "kind", "state": "queued"|"running"|"done"|"failed"|"cancelled", "progress": 0..1,
     "message", "pid", "created", "started", "finished", "outputs": [...], "result": {...}}
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from xrfcore.atomic import atomic_write_text, file_lock
from xrfcore.common import utc_now
from xrfcore.errors import JobError
from xrfcore import paths

__all__ = [
    "JobStatus",
    "ACTIVE_STATES",
    "FINAL_STATES",
    "default_jobs_dir",
    "start_job",
    "job_status",
    "list_jobs",
    "cancel_job",
    "wait_job",
    "write_status",
    "read_status",
    "job_outputs",
]

ACTIVE_STATES = ("queued", "running")
FINAL_STATES = ("done", "failed", "cancelled")
KINDS = ("finetune", "predict", "simulate", "train")

#: Seconds a queued job may go without a recorded worker pid before it counts as failed.
_LAUNCH_GRACE_S = 30.0


@dataclass
class JobStatus:
    """What is known about a job (from its folder)."""

    id: str
    kind: str
    state: str
    progress: float = 0.0
    message: str = ""
    pid: int | None = None
    created: str = ""
    started: str | None = None
    finished: str | None = None
    outputs: list[str] = field(default_factory=list)
    result: dict[str, Any] = field(default_factory=dict)
    job_dir: str = ""
    log_tail: str = ""

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def default_jobs_dir() -> Path:
    """``<XRF_USER_DIR or <repo>/user_data>/jobs``."""
    return paths.jobs_dir()


def _jobs_dir(jobs_dir: str | os.PathLike | None) -> Path:
    d = Path(jobs_dir) if jobs_dir else default_jobs_dir()
    d.mkdir(parents=True, exist_ok=True)
    return d


def _locked(d: Path):
    """Exclusive lock over the jobs folder ``d`` (start/cancel bookkeeping)."""
    return file_lock(d / ".jobs.lock")


def write_status(job_dir: str | os.PathLike, **changes: Any) -> dict[str, Any]:
    """Merge ``changes`` into ``status.json`` of ``job_dir`` (atomic); returns the new status."""
    p = Path(job_dir) / "status.json"
    status = read_status(job_dir) if p.exists() else {}
    status.update(changes)
    atomic_write_text(p, json.dumps(status, indent=1) + "\n")
    return status


def read_status(job_dir: str | os.PathLike) -> dict[str, Any]:
    """The raw ``status.json`` of a job folder (a few retries while it is being replaced)."""
    p = Path(job_dir) / "status.json"
    for _ in range(5):
        try:
            return json.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise JobError(f"{job_dir} is not a job folder (no status.json)") from None
        except json.JSONDecodeError:
            time.sleep(0.05)
    raise JobError(f"{p} is not valid JSON")


def job_outputs(params: dict[str, Any]) -> list[str]:
    """Absolute output paths a job will write (``out`` and ``outputs`` keys of its params)."""
    outs = []
    if params.get("out"):
        outs.append(params["out"])
    outs += list(params.get("outputs", []))
    return [str(Path(o).expanduser().resolve()) for o in outs]


def start_job(kind: str, params: dict[str, Any], *, jobs_dir: str | os.PathLike | None = None) -> str:
    """Launch a detached worker process for a job; returns the job id at once.

    Parameters
    ----------
    kind : {"finetune", "predict", "simulate", "train"}
    params : dict
        JSON-serialisable parameters of the task (see :mod:`xrfcore.jobs.tasks`); ``out`` is the
        output file.
    jobs_dir : path-like, optional
        :func:`default_jobs_dir` by default.

    Raises
    ------
    JobError
        Unknown kind, parameters that are not JSON, an output file that already exists, or an
        output that an active job is already writing.
    """
    if kind not in KINDS:
        raise JobError(f"unknown job kind {kind!r}; use one of {', '.join(KINDS)}")
    try:
        params_json = json.dumps({"kind": kind, "params": params}, indent=1)
    except TypeError as exc:
        raise JobError(f"job parameters must be JSON-serialisable: {exc}") from exc
    d = _jobs_dir(jobs_dir)
    outputs = job_outputs(params)
    with _locked(d):
        for o in outputs:
            if Path(o).exists():
                raise JobError(f"output {o} already exists; choose a new output name (jobs never overwrite files)")
        for st in list_jobs(d):
            if st.active:
                clash = sorted(set(outputs) & set(st.outputs))
                if clash:
                    raise JobError(
                        f"job {st.id} ({st.state}) is already writing {clash[0]}; wait for it, cancel it, "
                        "or choose another output name"
                    )
        job_id = f"{_dt.datetime.now():%Y%m%d-%H%M%S}-{kind}-{secrets.token_hex(3)}"
        job_dir = d / job_id
        job_dir.mkdir()
        atomic_write_text(job_dir / "params.json", params_json + "\n")
        write_status(
            job_dir, id=job_id, kind=kind, state="queued", progress=0.0, message="starting", pid=None,
            created=utc_now(), started=None, finished=None, outputs=outputs, result={},
        )
    _launch(job_dir)
    return job_id


def _launch(job_dir: Path) -> None:
    env = dict(os.environ)
    root = str(paths.repo_root())
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env["PYTHONUNBUFFERED"] = "1"
    with open(job_dir / "log.txt", "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "xrfcore.jobs.worker", str(job_dir)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=root,
            env=env,
        )
    atomic_write_text(job_dir / "pid", json.dumps({"pid": proc.pid, "create_time": _create_time(proc.pid)}))
    # Reap the child when it ends so it never lingers as a zombie while this process lives.
    threading.Thread(target=proc.wait, daemon=True, name=f"reap-{proc.pid}").start()


def _create_time(pid: int) -> float | None:
    try:
        import psutil

        return psutil.Process(pid).create_time()
    except Exception:  # noqa: BLE001 - gone already or psutil missing
        return None


def _alive(pid: int | None, create_time: float | None) -> bool:
    if not pid:
        return False
    try:
        import psutil

        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        return create_time is None or abs(proc.create_time() - create_time) < 1.0
    except ImportError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    except Exception:  # noqa: BLE001 - psutil.NoSuchProcess and friends
        return False


def _pid_info(job_dir: Path, status: dict[str, Any]) -> tuple[int | None, float | None]:
    p = job_dir / "pid"
    if p.exists():
        with contextlib.suppress(json.JSONDecodeError, OSError):
            info = json.loads(p.read_text())
            return int(info["pid"]), info.get("create_time")
    return status.get("pid"), None


def _log_tail(job_dir: Path, n_chars: int = 4000) -> str:
    p = job_dir / "log.txt"
    if not p.exists():
        return ""
    with open(p, "rb") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        f.seek(max(0, size - n_chars))
        return f.read().decode("utf-8", errors="replace")


def _status_from_dir(job_dir: Path) -> JobStatus:
    raw = read_status(job_dir)
    if raw.get("state") in ACTIVE_STATES:
        pid, ctime = _pid_info(job_dir, raw)
        launched_long_ago = _age_s(raw.get("created")) > _LAUNCH_GRACE_S
        if (pid is not None and not _alive(pid, ctime)) or (pid is None and launched_long_ago):
            # Re-read: the worker may have finished between the two reads.
            raw = read_status(job_dir)
            if raw.get("state") in ACTIVE_STATES:
                raw = write_status(
                    job_dir, state="failed", finished=utc_now(),
                    message=f"the worker process (pid {pid}) ended without finishing (killed or crashed); "
                    "see the log; no output was written",
                )
    known = set(JobStatus.__dataclass_fields__)
    st = JobStatus(**{k: v for k, v in raw.items() if k in known and k not in ("job_dir", "log_tail")})
    st.job_dir = str(job_dir)
    st.log_tail = _log_tail(job_dir)
    return st


def _age_s(iso: str | None) -> float:
    if not iso:
        return 0.0
    try:
        t = _dt.datetime.fromisoformat(iso)
    except ValueError:
        return 0.0
    return (_dt.datetime.now(_dt.timezone.utc) - t).total_seconds()


def job_status(job_id: str, jobs_dir: str | os.PathLike | None = None) -> JobStatus:
    """Status of a job; a job whose worker is gone while it says running is reported failed.

    Raises
    ------
    JobError
        If there is no such job.
    """
    d = _jobs_dir(jobs_dir)
    job_dir = d / job_id
    if not job_id or "/" in job_id or not (job_dir / "status.json").exists():
        raise JobError(f"no job {job_id!r} in {d}")
    return _status_from_dir(job_dir)


def list_jobs(jobs_dir: str | os.PathLike | None = None) -> list[JobStatus]:
    """All jobs of a jobs folder, newest first."""
    d = _jobs_dir(jobs_dir)
    out = []
    for sub in sorted(d.iterdir(), reverse=True):
        if (sub / "status.json").exists():
            with contextlib.suppress(JobError):
                out.append(_status_from_dir(sub))
    return out


def wait_job(job_id: str, jobs_dir: str | os.PathLike | None = None, *, timeout_s: float = 600.0,
             poll_s: float = 0.2) -> JobStatus:
    """Poll until the job is done/failed/cancelled; raises JobError after ``timeout_s``."""
    t0 = time.monotonic()
    while True:
        st = job_status(job_id, jobs_dir)
        if not st.active:
            return st
        if time.monotonic() - t0 > timeout_s:
            raise JobError(f"job {job_id} still {st.state} after {timeout_s:.0f} s")
        time.sleep(poll_s)


def cancel_job(job_id: str, jobs_dir: str | os.PathLike | None = None, *, timeout_s: float = 15.0) -> JobStatus:
    """Ask a job to stop (SIGTERM to its process group) and wait until it has.

    The worker removes its temporary files and marks the job ``cancelled``. A worker that
    does not stop within ``timeout_s`` is killed (SIGKILL) and marked cancelled here.

    Raises
    ------
    JobError
        If the job does not exist or has already finished.
    """
    d = _jobs_dir(jobs_dir)
    st = job_status(job_id, d)
    if not st.active:
        raise JobError(f"job {job_id} is already {st.state}; nothing to cancel")
    job_dir = d / job_id
    pid, ctime = _pid_info(job_dir, read_status(job_dir))
    if pid is None or not _alive(pid, ctime):
        write_status(job_dir, state="cancelled", finished=utc_now(), message="cancelled before the worker started")
        return job_status(job_id, d)
    _signal_group(pid, signal.SIGTERM)
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        if not _alive(pid, ctime) or read_status(job_dir).get("state") not in ACTIVE_STATES:
            break
        time.sleep(0.1)
    else:
        _signal_group(pid, signal.SIGKILL)
    t1 = time.monotonic()
    while _alive(pid, ctime) and time.monotonic() - t1 < 5.0:
        time.sleep(0.05)
    if read_status(job_dir).get("state") in ACTIVE_STATES:
        write_status(job_dir, state="cancelled", finished=utc_now(), message="cancelled (worker killed)")
    return job_status(job_id, d)


def _signal_group(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)  # start_new_session: the worker leads its own process group
