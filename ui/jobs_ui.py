"""Background jobs in the UI: pick a job, watch its progress (a fragment that re-runs every
second while the job is active), show results. Jobs run in their own processes
(:mod:`xrfcore.jobs`), so a page switch, a browser refresh or a server restart loses nothing:
the page re-attaches from the job folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pandas as pd
import streamlit as st

from ui import state
from xrfcore.errors import XRFError

METRIC_COLUMNS = ("accuracy", "sensitivity", "precision", "f1", "support")


def job_picker(kind: str, *, session_key: str) -> str | None:
    """Select box of this kind's jobs (newest first); defaults to the one this session started."""
    from xrfcore.jobs import list_jobs

    try:
        jobs = [j for j in list_jobs() if j.kind == kind]
    except XRFError as exc:
        st.error(f"Cannot list jobs: {exc}")
        return None
    ids = sorted((j.id for j in jobs), reverse=True)
    if not ids:
        st.caption(f"No {kind} jobs yet.")
        return None
    mine = st.session_state.get(session_key)
    index = ids.index(mine) if mine in ids else 0
    by_id = {j.id: j for j in jobs}
    return st.selectbox(f"{kind} job", ids, index=index, key=f"pick_{session_key}",
                        format_func=lambda i: f"{i} ({by_id[i].state})")


def watch(job_id: str, *, on_done: Callable[[Any], None] | None = None) -> None:
    """Show a job's state; re-runs every second while it is queued or running."""
    from xrfcore.jobs import job_status

    try:
        status = job_status(job_id)
    except XRFError as exc:
        st.error(str(exc))
        return
    if status.active:
        _watch_active(job_id)
    else:
        _show(status, on_done)


@st.fragment(run_every=1.0)
def _watch_active(job_id: str) -> None:
    from xrfcore.jobs import cancel_job, job_status

    status = job_status(job_id)
    if not status.active:
        st.rerun()  # the whole page: stop polling and show the result
    st.progress(float(status.progress), text=f"{status.state}: {status.message} ({status.progress:.0%})")
    if st.button("Cancel job", key=f"cancel_{job_id}"):
        cancel_job(job_id)
        st.rerun()
    with st.expander("log"):
        st.code(status.log_tail or "(empty)")


def _show(status: Any, on_done: Callable[[Any], None] | None) -> None:
    if status.state == "done":
        st.success(f"Job {status.id} finished.")
        if on_done is not None:
            on_done(status)
    elif status.state == "cancelled":
        st.warning(f"Job {status.id} was cancelled: {status.message}")
    else:
        st.error(f"Job {status.id} failed: {status.message}. Its log is below; fix the cause and start a new job.")
    with st.expander("log", expanded=status.state == "failed"):
        st.code(status.log_tail or "(empty)")


def metrics_frame(metrics: dict[str, Any]) -> pd.DataFrame:
    """Per-pigment metrics (``per_pigment_metrics`` output) as a table, with a macro row."""
    per = metrics.get("per_pigment", {})
    df = pd.DataFrame({c: {k: v.get(k) for k in METRIC_COLUMNS} for c, v in per.items()}).T
    if "macro" in metrics:
        df.loc["macro mean"] = {k: metrics["macro"].get(k) for k in METRIC_COLUMNS}
    return df


def _find(result: dict[str, Any], word: str) -> dict[str, Any] | None:
    for key, value in result.items():
        if word in key and isinstance(value, dict):
            return value
    metrics = result.get("metrics")
    if isinstance(metrics, dict):
        return _find(metrics, word)
    return None


def _read_json(path: Any) -> dict[str, Any]:
    if isinstance(path, str) and path.endswith(".json") and Path(path).is_file():
        import json

        return json.loads(Path(path).read_text(encoding="utf-8"))
    return {}


def model_output(status: Any) -> Path | None:
    for out in [status.result.get("model", ""), status.result.get("out", "")] + list(status.outputs):
        if out and str(out).endswith(".keras") and Path(out).is_file():
            return Path(out)
    return None


def offer_activation(status: Any) -> None:
    path = model_output(status)
    if path is None:
        return
    if state.active_model_path() == path.resolve():
        st.info(f"{path.name} is the active model.")
    elif st.button(f"Make {path.name} the active model", key=f"activate_{status.id}", type="primary"):
        state.set_active_model(path)
        st.rerun()


def show_finetune_result(status: Any) -> None:
    """Metrics on the test pixels before and after finetuning, and the button to use the model."""
    report = _read_json(status.result.get("metrics"))
    before, after = _find(report, "before"), _find(report, "after")
    if before and after:
        b, a = metrics_frame(before), metrics_frame(after)
        table = pd.DataFrame({"F1 before": b["f1"], "F1 after": a["f1"],
                              "sensitivity after": a["sensitivity"], "precision after": a["precision"],
                              "test pixels with pigment": a["support"]})
        st.dataframe(table.astype(float).round(3), width="stretch")
        st.session_state["last_finetune_metrics"] = {"before": before, "after": after}
        f1 = status.result.get("macro_f1_before"), status.result.get("macro_f1_after")
        if None not in f1:
            st.metric("mean F1 on the test pixels", f"{f1[1]:.3f}", delta=f"{f1[1] - f1[0]:+.3f} vs before")
    else:
        st.json(status.result, expanded=False)
    offer_activation(status)
