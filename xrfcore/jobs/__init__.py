"""Background jobs (finetune, predict, simulate, train) in detached worker processes.

Each job has a folder with ``params.json``, ``status.json`` and ``log.txt``; see
:mod:`xrfcore.jobs.runner`. Importing this package is cheap (no TensorFlow).
"""

from xrfcore.jobs.runner import (
    ACTIVE_STATES,
    FINAL_STATES,
    JobStatus,
    cancel_job,
    default_jobs_dir,
    job_status,
    list_jobs,
    start_job,
    wait_job,
)

__all__ = [
    "ACTIVE_STATES",
    "FINAL_STATES",
    "JobStatus",
    "cancel_job",
    "default_jobs_dir",
    "job_status",
    "list_jobs",
    "start_job",
    "wait_job",
]
