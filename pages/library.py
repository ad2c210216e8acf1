"""Page 6, Library & training: view and extend the pigment library, simulate a dataset and train
a model as background jobs, switch between models."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import pandas as pd
import streamlit as st

from ui import jobs_ui, state
from xrfcore.errors import XRFError
from xrfcore.library import Pigment
from xrfcore.registry import list_models

state.require_router()
st.title("Library & training")


def _blank(value) -> bool:
    """An empty cell of the editor (None, NaN or an empty string)."""
    if isinstance(value, str):
        return value.strip() == ""
    return bool(pd.isna(value))


lib = state.library()
user_lib = state.user_dir() / "library.json"

# -- library -----------------------------------------------------------------------------------
st.subheader("Pigment library")
st.caption(f"{len(lib)} entries, {len(lib.classes)} model classes: {', '.join(lib.classes)}. "
           + (f"Your edited copy: `{user_lib}`." if user_lib.is_file() else "The shipped library (read-only)."))
st.caption("Edit cells or add rows, then validate: formulas must parse into known elements, densities must be > 0.")
edited = st.data_editor(pd.DataFrame([asdict(p) for p in lib.pigments]), num_rows="dynamic", width="stretch",
                        hide_index=True, key="lib_editor")
e1, e2 = st.columns([1, 1])
if e1.button("Validate and save edits", key="lib_save_edits"):
    from xrfcore.library import load_library

    doc = lib.to_dict()
    rows = [{k: (None if _blank(v) else v) for k, v in r.items()} for r in edited.to_dict("records")]
    doc["pigments"] = [{k: v for k, v in r.items() if k in doc["pigments"][0]} for r in rows if r.get("name")]
    known = {c for c, _ in doc["classes"]}
    doc["classes"] += [[r["label"], r["name"]] for r in doc["pigments"] if r.get("label") and r["label"] not in known]
    candidate = state.user_subdir("tmp") / "library_candidate.json"
    candidate.write_text(json.dumps(doc, indent=1))
    try:
        load_library(candidate).save(user_lib)
        state.library.clear()
        st.success(f"Saved {len(doc['pigments'])} pigments to {user_lib}. Simulate and train below to use them.")
    except XRFError as exc:
        st.error(f"Not saved: {exc}")
    finally:
        candidate.unlink(missing_ok=True)
if user_lib.is_file() and e2.button("Go back to the shipped library", key="lib_reset"):
    user_lib.unlink()
    state.library.clear()
    st.rerun()

with st.form("add_pigment"):
    st.markdown("**Add a pigment** (saved to your copy of the library; retrain for the model to learn it)")
    a1, a2, a3 = st.columns(3)
    name = a1.text_input("name", key="lib_name")
    abbr = a2.text_input("abbreviation", key="lib_abbr")
    formula = a3.text_input("formula (e.g. CdS, 2PbCO3.Pb(OH)2)", key="lib_formula")
    b1, b2, b3 = st.columns(3)
    density = b1.number_input("density (g/cm3)", value=5.0, min_value=0.0, step=0.1, key="lib_density")
    source = b2.text_input("density source", key="lib_source")
    colour = b3.color_picker("plot colour", value="#808080", key="lib_colour")
    c1, c2 = st.columns(2)
    label = c1.text_input("counts as class (blank: its own abbreviation)", key="lib_label")
    notes = c2.text_input("notes", key="lib_notes")
    if st.form_submit_button("Validate and add"):
        try:
            lib.add(Pigment(name=name.strip(), abbr=abbr.strip(), formula=formula.strip(), density_g_cm3=density,
                            density_source=source, colour=colour, notes=notes, label=label.strip() or abbr.strip()))
            lib.save(user_lib)
            state.library.clear()
            st.success(f"Added {name} ({abbr}); {formula} has elements "
                       + ", ".join(lib.get(abbr).elements()) + ". Simulate and train below to use it.")
        except XRFError as exc:
            state.library.clear()  # drop a half-changed library object
            st.error(f"Not added: {exc}")

# -- simulate and train --------------------------------------------------------------------------
st.subheader("Simulate a training set")
s1, s2, s3 = st.columns(3)
n_spectra = s1.number_input("spectra", 10, 200_000, 2000, step=100, key="sim_n")
sim_seed = s2.number_input("seed", 0, 2**31 - 1, 0, key="sim_seed")
sim_name = s3.text_input("dataset name", value="simulated", key="sim_name")
sim_out = state.user_subdir("datasets") / f"{Path(sim_name).stem}.h5"
if st.button("Start simulation", key="sim_start"):
    from xrfcore.jobs import start_job

    argv = ["--out", str(sim_out), "--n", int(n_spectra), "--seed", int(sim_seed), "--workers", 1]
    if user_lib.is_file():
        argv += ["--library", str(user_lib)]
    params = {"argv": argv, "out": str(sim_out)}
    with state.show_errors("The simulation did not start", stop=False):
        st.session_state["sim_job"] = start_job("simulate", params)
job = jobs_ui.job_picker("simulate", session_key="sim_job")
if job:
    jobs_ui.watch(job)

st.subheader("Train a model")
datasets = sorted(str(p) for p in state.user_subdir("datasets").glob("*.h5"))
t1, t2, t3, t4 = st.columns(4)
data = t1.selectbox("dataset", datasets, format_func=lambda p: Path(p).name, key="train_data")
epochs = t2.number_input("epochs", 1, 500, 30, key="train_epochs")
folds = t3.number_input("folds", 1, 10, 5, key="train_folds")
model_name = t4.text_input("model name", value="my-model", key="train_name")
if st.button("Start training", key="train_start", disabled=not datasets):
    from xrfcore.jobs import start_job
    from xrfcore.registry import new_model_path

    with state.show_errors("Training did not start", stop=False):
        out = str(new_model_path(model_name))
        argv = ["--data", data, "--out", out, "--epochs", int(epochs), "--folds", int(folds), "--seed", 0, "--quiet"]
        st.session_state["train_job"] = start_job("train", {"argv": argv, "out": out})
job = jobs_ui.job_picker("train", session_key="train_job")
if job:
    jobs_ui.watch(job, on_done=jobs_ui.offer_activation)

# -- models --------------------------------------------------------------------------------------
st.subheader("Models")
try:
    entries = list_models()
except XRFError as exc:
    st.error(f"Cannot read the model index: {exc}")
    entries = []
active = state.active_model_path()
rows = []
for e in entries:
    m = e.metrics if isinstance(e.metrics, dict) else {}
    f1 = (m.get("macro") or {}).get("f1") if isinstance(m.get("macro"), dict) else m.get("macro_f1_after")
    rows.append({"active": Path(e.path).resolve() == active.resolve(), "name": e.name, "created": e.created,
                 "mean F1": f1, "read-only": e.read_only, "path": e.path})
if rows:
    st.dataframe(pd.DataFrame(rows), width="stretch", hide_index=True)
    paths = [r["path"] for r in rows]
    choice = st.selectbox("Switch to", paths, format_func=lambda p: Path(p).name, key="lib_switch")
    if st.button("Use this model", key="lib_use"):
        state.set_active_model(choice)
        st.rerun()
else:
    st.caption("No models registered yet.")
