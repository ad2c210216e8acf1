"""Page 6, Library & training: view and extend the pigment library, simulate a dataset and train
a model as background jobs, switch between models."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import pandas as pd
import streamlit as st

from ui import jobs_ui, state
from xrfcore.errors import XRFError
from xrfcore.views import grid_channels_for
from xrfcore.library import Pigment, library_from_dict
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
    doc = lib.to_dict()
    rows = [{k: (None if _blank(v) else v) for k, v in r.items()} for r in edited.to_dict("records")]
    doc["pigments"] = [{k: v for k, v in r.items() if k in doc["pigments"][0]} for r in rows if r.get("name")]
    known = {c for c, _ in doc["classes"]}
    doc["classes"] += [[r["label"], r["name"]] for r in doc["pigments"] if r.get("label") and r["label"] not in known]
    try:
        library_from_dict(doc, source="the edited library").save(user_lib)
        state.library.clear()
        st.success(f"Saved {len(doc['pigments'])} pigments to {user_lib}. Simulate and train below to use them.")
    except XRFError as exc:
        st.error(f"Not saved: {exc}")
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
open_scan = state.get_scan(stop=False)
scan_top = float(open_scan.energy_kev[-1]) if open_scan is not None else 30.0
scan_kv = float(open_scan.metadata.tube_kv) if open_scan is not None and open_scan.metadata.tube_kv else None
ANODES = ["Rh", "W", "Mo", "Ag", "Cr", "Cu"]

st.subheader("Simulate a training set")
st.caption(
    "Instrument and energy range of the simulated spectra; the defaults come from the open scan "
    f"({state.scan_ref().label if open_scan is not None else 'none'}: up to {scan_top:.1f} keV"
    + (f", tube {scan_kv:g} kV" if scan_kv else ", tube voltage not in the file") + ")."
)
s1, s2, s3 = st.columns(3)
n_spectra = s1.number_input("spectra", 10, 200_000, 2000, step=100, key="sim_n")
sim_seed = s2.number_input("seed", 0, 2**31 - 1, 0, key="sim_seed")
sim_name = s3.text_input("dataset name", value="simulated", key="sim_name")
i1, i2, i3, i4 = st.columns(4)
kv_lo = i1.number_input("tube kV, lowest", 5.0, 100.0, scan_kv or 35.0, step=1.0, key="sim_kv_lo")
kv_hi = i2.number_input("tube kV, highest", 5.0, 100.0, scan_kv or 50.0, step=1.0, key="sim_kv_hi")
anode = i3.selectbox("tube anode", ANODES, key="sim_anode")
det_top = i4.number_input("detector range up to (keV)", 5.0, 100.0, float(round(min(max(scan_top, 5.0), 100.0), 1)),
                          step=1.0, key="sim_range",
                          help="The simulated energy axis reaches at least this energy; set it to the open scan's top.")
sim_out = state.user_subdir("datasets") / f"{Path(sim_name).stem or 'simulated'}.h5"
sim_config = {"tube_kv": [float(kv_lo), float(kv_hi)], "anode": anode, "min_range_kev": float(det_top)}
sim_problem = jobs_ui.check_simulation(sim_config, out=sim_out)
if sim_problem and sim_out.exists():
    st.info(sim_problem)
elif sim_problem:
    st.error(sim_problem)
if st.button("Start simulation", key="sim_start", disabled=bool(sim_problem)):
    params = {"out": str(sim_out), "n": int(n_spectra), "seed": int(sim_seed), "workers": 1,
              "library": str(user_lib) if user_lib.is_file() else None, "config": sim_config}
    with state.show_errors("The simulation did not start", stop=False):
        st.session_state["sim_job"] = jobs_ui.start("simulate", params)
        st.session_state["last_dataset"] = str(sim_out)
jobs_ui.job_panel("simulate", session_key="sim_job")

st.subheader("Train a model")
datasets = sorted(str(p) for p in state.user_subdir("datasets").glob("*.h5") if not p.name.startswith("."))
last = st.session_state.get("last_dataset")
if last in datasets and st.session_state.get("_train_data_for") != last:
    st.session_state["train_data"] = last  # the set just made (once it exists)
    st.session_state["_train_data_for"] = last
t1, t2, t3, t4 = st.columns(4)
data = t1.selectbox("dataset", datasets, index=None, format_func=lambda p: Path(p).name, key="train_data",
                    placeholder="simulate a set first" if not datasets else "choose a dataset")
epochs = t2.number_input("epochs", 1, 500, 30, key="train_epochs")
folds = t3.number_input("folds", 1, 10, 5, key="train_folds")
model_name = t4.text_input("model name", value="my-model", key="train_name")
g1, g2, g3 = st.columns(3)
g_start = g1.number_input("model grid start (keV)", 0.5, 50.0, 2.8, step=0.1, format="%.2f", key="train_grid_start")
g_step = g2.number_input("model grid step (keV)", 0.005, 0.5, 0.02, step=0.005, format="%.3f", key="train_grid_step")
g_default = grid_channels_for(scan_top, start_kev=float(g_start), step_kev=float(g_step))
g_n = g3.number_input("model grid channels", 16, 20000, g_default, step=10, key=f"train_grid_n_{g_default}",
                      help="Default: the grid ends at the open scan's top energy (at most 30 keV).")
grid = {"grid_start_kev": float(g_start), "grid_step_kev": float(g_step), "grid_channels": int(g_n)}
train_problem, train_note = jobs_ui.check_training(data, grid, scan_top_kev=scan_top if open_scan is not None else None)
if train_problem and data:
    st.error(train_problem)
elif train_problem:
    st.info(train_problem)
if train_note:
    st.warning(train_note)
if st.button("Start training", key="train_start", disabled=bool(train_problem)):
    from xrfcore.registry import new_model_path

    with state.show_errors("Training did not start", stop=False):
        out = str(new_model_path(model_name))
        params = {"data": data, "out": out, "epochs": int(epochs), "folds": int(folds), "seed": 0, **grid}
        st.session_state["train_job"] = jobs_ui.start("train", params)
jobs_ui.job_panel("train", session_key="train_job", on_done=jobs_ui.offer_activation)

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
