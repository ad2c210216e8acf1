"""Background jobs in the UI: pick a job, watch its progress (a fragment that re-runs every
second while the job is active), show results. Jobs run in their own processes
(:mod:`xrfcore.jobs`), so a page switch, a browser refresh or a server restart loses nothing:
the page re-attaches from the job folder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import pandas as pd
import streamlit as st

from ui import state
from xrfcore.errors import XRFError

METRIC_COLUMNS = ("accuracy", "sensitivity", "precision", "f1", "support")


def _label(job: Any) -> str:
    """``"14:02:31 · done · tiny_set.h5"``: when it started, its state now, and its output."""
    when = job.id[9:15] if len(job.id) > 15 else job.id
    when = f"{when[:2]}:{when[2:4]}:{when[4:6]}" if when.isdigit() else when
    out = Path(job.outputs[0]).name if job.outputs else ""
    text = f"{when} · {job.state}" + (f" · {out}" if out else "")
    return text + (f" ({job.progress:.0%})" if job.active else "")


def job_panel(kind: str, *, session_key: str, on_done: Callable[[Any], None] | None = None) -> None:
    """Pick a job of this kind (default: the one this session started) and show it.

    While any job of the kind is queued or running, the panel re-runs every second, so the
    labels in the picker and the progress bar are always current; when the watched job ends,
    the whole page re-runs (its results may change other widgets, e.g. the list of datasets).
    """
    from xrfcore.jobs import list_jobs

    try:
        any_active = any(j.active for j in list_jobs() if j.kind == kind)
    except XRFError as exc:
        st.error(f"Cannot list jobs: {exc}")
        return
    st.fragment(_panel, run_every=1.0 if any_active else None)(kind, session_key, on_done)


def _panel(kind: str, session_key: str, on_done: Callable[[Any], None] | None) -> None:
    from xrfcore.jobs import cancel_job, list_jobs

    try:
        jobs = {j.id: j for j in list_jobs() if j.kind == kind}
    except XRFError as exc:
        st.error(f"Cannot list jobs: {exc}")
        return
    ids = sorted(jobs, reverse=True)
    if not ids:
        st.caption(f"No {kind} jobs yet.")
        return
    mine = st.session_state.get(session_key)
    pick_key = f"pick_{session_key}"
    if st.session_state.get(pick_key) not in ids or st.session_state.get(f"_started_{session_key}") != mine:
        st.session_state[pick_key] = mine if mine in ids else ids[0]  # a new job: watch it
        st.session_state[f"_started_{session_key}"] = mine
    job_id = st.selectbox(f"{kind} job", ids, key=pick_key, format_func=lambda i: _label(jobs[i]))
    status = jobs[job_id]
    seen_key = f"_active_{session_key}"
    was_active = st.session_state.get(seen_key, {}).get(job_id)
    st.session_state.setdefault(seen_key, {})[job_id] = status.active
    if was_active and not status.active:
        st.rerun()  # the whole page: show the results where they matter
    if status.active:
        st.progress(float(status.progress), text=f"{status.state}: {status.message} ({status.progress:.0%})")
        if st.button("Cancel job", key=f"cancel_{job_id}"):
            cancel_job(job_id)
            st.rerun()
        with st.expander("log"):
            st.code(status.log_tail or "(empty)")
    else:
        _show(status, on_done)


def job_picker(kind: str, *, session_key: str) -> str | None:
    """The id of this session's latest job of ``kind`` if it still exists (no widget)."""
    from xrfcore.jobs import list_jobs

    mine = st.session_state.get(session_key)
    try:
        return mine if mine in {j.id for j in list_jobs() if j.kind == kind} else None
    except XRFError:
        return None


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


def start(kind: str, params: dict[str, Any]) -> str:
    """Start a job from a plain dict of options (:func:`xrfcore.jobs.start_job`; see :mod:`xrfcore.jobs.tasks`)."""
    from xrfcore.jobs import start_job

    return start_job(kind, dict(params))


def check_simulation(config: dict[str, Any], *, out: Path) -> str | None:
    """What stops a simulation with these SimConfig fields from starting, in words, or None."""
    from xrfcore.simulate.dataset import SimConfig

    if out.exists():
        return f"A dataset named {out.name} exists already; choose another dataset name (files are never overwritten)."
    try:
        SimConfig(**config)
    except XRFError as exc:
        return f"These simulation settings are not valid: {exc}"
    return None


def check_training(data: str | None, grid: dict[str, Any], *, scan_top_kev: float | None) -> tuple[str | None, str | None]:
    """(what stops training from starting, a warning) for a dataset path and model-grid options."""
    from xrfcore.preprocess import EnergyGrid

    try:
        g = EnergyGrid(start_kev=grid["grid_start_kev"], step_kev=grid["grid_step_kev"],
                       n_channels=grid["grid_channels"])
    except XRFError as exc:
        return f"This model grid is not valid: {exc}", None
    notes = []
    if scan_top_kev is not None and g.stop_kev > scan_top_kev + g.step_kev:
        fit = int((scan_top_kev - g.start_kev) // g.step_kev)
        notes.append(f"the grid ends at {g.stop_kev:.2f} keV, above the open scan's top ({scan_top_kev:.2f} keV): "
                     f"its maps would be refused or padded; use at most {fit} channels for this scan")
    problem = None
    if not data:
        problem = "Choose a dataset (simulate one above; the set just made is chosen once it is written)."
    elif not Path(data).is_file():
        problem = f"The dataset {Path(data).name} is not there any more; simulate it again or choose another."
    else:
        top = _dataset_top_kev(data)
        if top is not None and g.stop_kev > top + g.step_kev:
            notes.append(f"the grid ends at {g.stop_kev:.2f} keV, above the dataset's guaranteed range ({top:g} keV): "
                         "some training spectra would be padded with zeros there")
    return problem, ("Note: " + "; ".join(notes) + ".") if notes else None


def _dataset_top_kev(path: str) -> float | None:
    from xrfcore.model.data import dataset_info

    try:
        cfg = json.loads(dataset_info(path)["attrs"].get("config", "{}"))
        return float(cfg["min_range_kev"])
    except (XRFError, OSError, KeyError, TypeError, ValueError):
        return None


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
    if state.active_model_path().resolve() == path.resolve():
        st.info(f"{path.name} is the active model in this session. New sessions still start with "
                f"{state.default_model_choice().name} (change that in the sidebar).")
    elif st.button(f"Make {path.name} the active model", key=f"activate_{status.id}", type="primary",
                   help="For this browser session (kept over a reload); other sessions keep their model."):
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
        layer_f1 = status.result.get("layer_macro_f1") or {}
        if layer_f1:
            rec = status.result.get("layers_recalibrated") or []
            st.caption("Surface / hidden outputs on the same test pixels (mean F1, before -> after): "
                       + ", ".join(f"{h} {v[0]:.3f} -> {v[1]:.3f}" for h, v in layer_f1.items()) + ". "
                       + (f"Recalibrated to this scan: {', '.join(rec)} (better on the validation regions, no new "
                          "false calls); the others are the base model's." if rec else
                          "None was recalibrated: no layer output called the validation regions better."))
    else:
        st.json(status.result, expanded=False)
    offer_activation(status)
