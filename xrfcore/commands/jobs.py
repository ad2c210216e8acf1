"""List, inspect and cancel background jobs (finetune, predict, simulate, train).

Example::

    python -m xrfcore jobs list
    python -m xrfcore jobs show 20261124-201500-finetune-a1b2c3
    python -m xrfcore jobs cancel 20261124-201500-finetune-a1b2c3
"""

from __future__ import annotations

import argparse

NAME = "jobs"
HELP = "list, show or cancel background jobs"

__all__ = ["NAME", "HELP", "add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("list", "show", "cancel"))
    parser.add_argument("job_id", nargs="?", help="job id (for show/cancel)")
    parser.add_argument("--jobs-dir", help="jobs folder (default: <XRF_USER_DIR or repo/user_data>/jobs)")
    parser.add_argument("--json", action="store_true", help="print JSON")


def run(args: argparse.Namespace) -> int:
    import json

    from xrfcore.errors import JobError
    from xrfcore.jobs import cancel_job, job_status, list_jobs

    if args.action == "list":
        jobs = list_jobs(args.jobs_dir)
        if args.json:
            print(json.dumps([j.to_dict() for j in jobs], indent=1))
        for j in jobs if not args.json else []:
            print(f"{j.id:<40} {j.state:<10} {100 * j.progress:5.1f}%  {j.message}")
        return 0
    if not args.job_id:
        raise JobError(f"`jobs {args.action}` needs a job id; see `python -m xrfcore jobs list`")
    st = job_status(args.job_id, args.jobs_dir) if args.action == "show" else cancel_job(args.job_id, args.jobs_dir)
    if args.json:
        print(json.dumps(st.to_dict(), indent=1))
    else:
        print(f"{st.id}: {st.state} {100 * st.progress:.0f}% {st.message}")
        if args.action == "show" and st.log_tail:
            print("--- log ---")
            print(st.log_tail)
    return 0
