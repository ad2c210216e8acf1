"""The job runner: detached worker processes, status on disk, kill -9, cancel, output clashes."""

from __future__ import annotations


import pytest

from xrfcore.errors import JobError
from xrfcore.jobs import job_status, list_jobs, start_job, wait_job


def test_finetune_job_runs_to_done(files, user_dir, tmp_path, job_params):
    jobs = tmp_path / "jobs"
    out = tmp_path / "job.keras"
    job_id = start_job("finetune", job_params(files, out), jobs_dir=jobs)
    st = job_status(job_id, jobs)
    assert st.state in ("queued", "running") and st.kind == "finetune"
    st = wait_job(job_id, jobs, timeout_s=120)
    assert st.state == "done", st.log_tail
    assert st.progress == 1.0 and st.finished and st.pid
    assert st.result["model"] == str(out.resolve()) and out.exists()
    assert "done" in st.log_tail and "labelled pixels" in st.log_tail
    assert [j.id for j in list_jobs(jobs)] == [job_id]
    # the job registered its model in the index under XRF_USER_DIR
    assert (user_dir / "models" / "index.json").exists()


def test_start_job_errors(files, user_dir, tmp_path, job_params):
    jobs = tmp_path / "jobs"
    existing = tmp_path / "exists.keras"
    existing.write_bytes(b"model")
    with pytest.raises(JobError, match="already exists; choose a new output name"):
        start_job("finetune", job_params(files, existing), jobs_dir=jobs)
    with pytest.raises(JobError, match="unknown job kind 'paint'"):
        start_job("paint", {}, jobs_dir=jobs)
    with pytest.raises(JobError, match="must be JSON-serialisable"):
        start_job("finetune", {"out": str(tmp_path / "a.keras"), "x": object()}, jobs_dir=jobs)
    with pytest.raises(JobError, match="no job 'nope'"):
        job_status("nope", jobs)
    assert existing.read_bytes() == b"model"


def test_failed_job_reports_error(files, user_dir, tmp_path, job_params):
    jobs = tmp_path / "jobs"
    params = job_params(files, tmp_path / "bad.keras")
    params["labels"] = [str(tmp_path / "missing.json")]
    st = wait_job(start_job("finetune", params, jobs_dir=jobs), jobs, timeout_s=120)
    assert st.state == "failed"
    assert "LabelError" in st.message and "does not exist" in st.message
    assert not (tmp_path / "bad.keras").exists()


def test_simulate_job(user_dir, tmp_path):
    import h5py

    jobs = tmp_path / "jobs"
    out = tmp_path / "sim.h5"
    job_id = start_job("simulate", {"out": str(out), "n": 12, "seed": 0, "workers": 1}, jobs_dir=jobs)
    st = wait_job(job_id, jobs, timeout_s=120)
    assert st.state == "done", st.log_tail
    assert st.result["out"] == str(out.resolve())
    with h5py.File(out, "r") as f:
        assert f["spectra"].shape[0] == 12
    assert f"simulating 12 spectra into {out}" in st.log_tail  # the workflow ran in the worker
    assert st.progress == 1.0
