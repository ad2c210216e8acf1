"""The job runner under stress: kill -9 a running job, cancel one, two jobs on one output."""

from __future__ import annotations

import os
import signal
import time

import pytest

from xrfcore.errors import JobError
from xrfcore.jobs import cancel_job, job_status, list_jobs, start_job, wait_job


def _params(files, out, *, epochs=2):
    return {"model": str(files["model"]), "scans": [str(files["scan"])], "labels": [str(files["labels"])],
            "out": str(out), "stage1_epochs": epochs, "stage2_epochs": 0, "batch_size": 16, "patience": 10_000,
            "validation_fraction": 0.0}


def _wait_training(job_id, jobs_dir, timeout_s=60.0):
    """Wait until the worker is inside the training loop (an epoch line is in its log)."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        st = job_status(job_id, jobs_dir)
        if st.state == "running" and "epoch" in st.log_tail:
            return st
        assert st.active, st.log_tail
        time.sleep(0.2)
    raise AssertionError("job did not start training in time")


def test_killed_job_is_failed_with_log_and_no_model(files, user_dir, tmp_path):
    jobs = tmp_path / "jobs"
    out = tmp_path / "killed.keras"
    job_id = start_job("finetune", _params(files, out, epochs=100_000), jobs_dir=jobs)
    st = _wait_training(job_id, jobs)
    os.kill(st.pid, signal.SIGKILL)
    t0 = time.monotonic()
    while job_status(job_id, jobs).active and time.monotonic() - t0 < 10:
        time.sleep(0.1)
    st = job_status(job_id, jobs)
    assert st.state == "failed"
    assert "ended without finishing" in st.message
    assert "epoch" in st.log_tail  # the log is kept for the user
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".killed")]
    # a new job may write the same output now (cancelled at once: it is not refused, that is the point)
    job2 = start_job("finetune", _params(files, out), jobs_dir=jobs)
    assert cancel_job(job2, jobs).state == "cancelled" and not out.exists()


def test_cancel_and_output_clash(files, user_dir, tmp_path):
    jobs = tmp_path / "jobs"
    out = tmp_path / "cancel.keras"
    job_id = start_job("finetune", _params(files, out, epochs=100_000), jobs_dir=jobs)
    with pytest.raises(JobError, match=r"is already writing .*cancel\.keras; wait for it, cancel it"):
        start_job("finetune", _params(files, out), jobs_dir=jobs)
    st = _wait_training(job_id, jobs)
    st = cancel_job(job_id, jobs)
    assert st.state == "cancelled" and "no output" in st.message
    assert "cancelled" in st.log_tail
    import psutil

    assert not psutil.pid_exists(st.pid) or psutil.Process(st.pid).status() == psutil.STATUS_ZOMBIE
    assert not out.exists()
    with pytest.raises(JobError, match="is already cancelled; nothing to cancel"):
        cancel_job(job_id, jobs)