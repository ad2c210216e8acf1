"""The job runner under stress: kill -9 a running job, cancel one, two jobs on one output."""

from __future__ import annotations

import os
import signal
import time

import pytest

from xrfcore.errors import JobError
from xrfcore.jobs import cancel_job, job_status, start_job


def test_killed_job_is_failed_with_log_and_no_model(files, user_dir, tmp_path, job_params, wait_training):
    jobs = tmp_path / "jobs"
    out = tmp_path / "killed.keras"
    job_id = start_job("finetune", job_params(files, out, epochs=100_000), jobs_dir=jobs)
    st = wait_training(job_id, jobs)
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
    job2 = start_job("finetune", job_params(files, out), jobs_dir=jobs)
    assert cancel_job(job2, jobs).state == "cancelled" and not out.exists()


def test_cancel_and_output_clash(files, user_dir, tmp_path, job_params, wait_training):
    jobs = tmp_path / "jobs"
    out = tmp_path / "cancel.keras"
    job_id = start_job("finetune", job_params(files, out, epochs=100_000), jobs_dir=jobs)
    with pytest.raises(JobError, match=r"is already writing .*cancel\.keras; wait for it, cancel it"):
        start_job("finetune", job_params(files, out), jobs_dir=jobs)
    st = wait_training(job_id, jobs)
    st = cancel_job(job_id, jobs)
    assert st.state == "cancelled" and "no output" in st.message
    assert "cancelled" in st.log_tail
    import psutil

    assert not psutil.pid_exists(st.pid) or psutil.Process(st.pid).status() == psutil.STATUS_ZOMBIE
    assert not out.exists()
    with pytest.raises(JobError, match="is already cancelled; nothing to cancel"):
        cancel_job(job_id, jobs)