"""Page 5, Finetune: regions with top/bottom pigments, label files, a finetune job with live
progress, metrics before/after, and making the new model active."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import streamlit as st

from ui import jobs_ui, plots, state
from ui.click_component import plotly_events, take_events
from xrfcore.errors import LabelError
from xrfcore.labels import Region, box_to_rectangle, load_labels, save_labels
from xrfcore.model.evidence_model import spec_of

state.require_router()
st.title("Finetune")
scan = state.get_scan()
ref = state.scan_ref()
bundle = state.get_bundle()

COLUMNS = ["name", "row0", "col0", "row1", "col1", "top", "bottom"]


def regions_to_frame(regions: list[Region]) -> pd.DataFrame:
    rows = [
        {"name": r.name, **{k: int(r.geometry[k]) for k in ("row0", "col0", "row1", "col1")},
         "top": "; ".join(r.top), "bottom": "; ".join(r.bottom)}
        for r in regions if r.shape == "rectangle"
    ]
    return pd.DataFrame(rows, columns=COLUMNS)


def _blank(value) -> bool:
    """An empty editor cell: None, NaN or only spaces."""
    return value is None or (isinstance(value, float) and pd.isna(value)) or str(value).strip() == ""


def frame_to_regions(df: pd.DataFrame) -> list[dict]:
    out = []
    for i, row in df.reset_index(drop=True).iterrows():
        if pd.isna(row["row0"]) or pd.isna(row["col1"]):
            continue
        split = lambda s: [p.strip() for p in re.split(r"[;,+]", "" if _blank(s) else str(s)) if p.strip()]  # noqa: E731
        out.append({"name": f"region {i + 1}" if _blank(row["name"]) else str(row["name"]), "shape": "rectangle",
                    "row0": int(row["row0"]), "col0": int(row["col0"]), "row1": int(row["row1"]),
                    "col1": int(row["col1"]), "top": split(row["top"]), "bottom": split(row["bottom"])})
    return out


if "regions_table" not in st.session_state:
    st.session_state["regions_table"] = pd.DataFrame(columns=COLUMNS)


def set_regions(frame: pd.DataFrame) -> None:
    """Replace the table (a new editor key, so the editor starts from the new rows)."""
    st.session_state["regions_table"] = frame.reset_index(drop=True)
    st.session_state["regions"] = None
    st.session_state["ft_editor_round"] = st.session_state.get("ft_editor_round", 0) + 1


def current_regions() -> pd.DataFrame:
    """The table as the user last saw it, edits included."""
    rows = st.session_state.get("regions")
    return pd.DataFrame(rows, columns=COLUMNS) if rows is not None else st.session_state["regions_table"]


# -- regions -----------------------------------------------------------------------------------
st.subheader("1. Labelled regions")
st.caption(
    "Rectangles in pixel coordinates (rows row0…row1-1, columns col0…col1-1). Pigments in the top "
    "and bottom layer by name or abbreviation, separated by `;`. Classes: " + ", ".join(bundle.classes)
)
load_cols = st.columns(3)
if ref.path == str(state.DEMO_SCAN) and state.DEMO_REGIONS.is_file():
    if load_cols[0].button("Load the demo's regions", key="ft_load_demo"):
        with state.show_errors("Cannot load the demo regions"):
            ls = load_labels(state.DEMO_REGIONS, scan_shape=scan.shape[:2], classes=bundle.classes)
            set_regions(regions_to_frame(ls.regions))
saved = sorted(p.name for p in state.user_subdir("labels").glob("*.json"))
pick = load_cols[1].selectbox("Saved label file", [""] + saved, key="ft_saved")
if pick and load_cols[1].button("Load", key="ft_load_saved"):
    with state.show_errors(f"Cannot load {pick}"):
        ls = load_labels(state.user_subdir("labels") / pick, scan_shape=scan.shape[:2], classes=bundle.classes)
        set_regions(regions_to_frame(ls.regions))
up = load_cols[2].file_uploader("Label file (JSON, CSV)", type=["json", "csv"], key="ft_upload")
if up is not None and load_cols[2].button("Load upload", key="ft_load_up"):
    path = state.save_upload(up)
    with state.show_errors(f"Cannot load {up.name}"):
        ls = load_labels(path, scan_shape=scan.shape[:2], classes=bundle.classes)
        set_regions(regions_to_frame(ls.regions))

# a box dragged on the map becomes a rectangle of exactly the cells whose centres it covers
for event in take_events("ft_map"):
    if event["kind"] != "box":
        continue
    try:
        row0, col0, row1, col1 = box_to_rectangle(event["x"], event["y"], (scan.n_rows, scan.n_cols))
    except LabelError as exc:
        st.warning(str(exc))
        continue
    table = current_regions()
    new = {"name": f"region {len(table) + 1}", "row0": row0, "col0": col0, "row1": row1, "col1": col1,
           "top": "", "bottom": ""}
    set_regions(pd.concat([table, pd.DataFrame([new])], ignore_index=True) if len(table) else pd.DataFrame([new]))
    st.session_state["ft_added"] = (f"Added {new['name']}: rows {row0}–{row1 - 1}, columns {col0}–{col1 - 1} "
                                    f"({(row1 - row0) * (col1 - col0)} pixels). Name it and give its pigments in the table.")

st.caption("Drag a box on the map to add a rectangle (the box tool stays selected; zoom with the "
           "magnifier, top right, and the map keeps its zoom).")
fig = plots.map_figure(state.total_counts_map(ref), selectable=True, height=460)
fig.update_layout(dragmode="select")
for r in frame_to_regions(current_regions()):
    fig.add_shape(type="rect", x0=r["col0"] - 0.5, x1=r["col1"] - 0.5, y0=r["row0"] - 0.5, y1=r["row1"] - 0.5,
                  line=dict(color="red", width=2), label=dict(text=r["name"], font=dict(color="red", size=10),
                                                               textposition="top left"))
map_col, note_col = st.columns([3, 2])
with map_col:
    plotly_events(fig, key="ft_map", height=470, select=True, clicks=False, revision=f"{ref.key}|ft")
if added := st.session_state.get("ft_added"):
    note_col.success(added)
number = {k: st.column_config.NumberColumn(k, min_value=0, step=1, width="small")
          for k in ("row0", "col0", "row1", "col1")}
edited = st.data_editor(
    st.session_state["regions_table"], num_rows="dynamic", key=f"ft_editor_{st.session_state.get('ft_editor_round', 0)}",
    width="stretch", hide_index=True,
    column_config={"name": st.column_config.TextColumn("name", width="medium"), **number,
                   "top": st.column_config.TextColumn("top", width="medium"),
                   "bottom": st.column_config.TextColumn("bottom", width="medium")},
)

regions = frame_to_regions(edited)
# the table as it is now (kept over a browser reload by the session store)
st.session_state["regions"] = [{k: (None if pd.isna(v) else (int(v) if k in COLUMNS[1:5] else str(v)))
                                for k, v in row.items() if k in COLUMNS}
                               for row in edited.to_dict("records")]

s1, s2 = st.columns([2, 1])
label_name = s1.text_input("Label file name", value=f"{Path(ref.label).stem}_regions.json", key="ft_label_name")
label_path = state.user_subdir("labels") / Path(label_name).name
if s2.button("Save label file", key="ft_save", disabled=not regions):
    with state.show_errors("Labels not saved"):
        save_labels(label_path, regions, scan=ref.path)
        ls = load_labels(label_path, scan_shape=scan.shape[:2], classes=bundle.classes)
        st.session_state["ft_labels_path"] = str(label_path)
        st.success(f"Saved {len(regions)} regions ({ls.n_labelled} labelled pixels) to {label_path}")

# -- job ---------------------------------------------------------------------------------------
st.subheader("2. Finetune the active model")
labels_for_job = st.session_state.get("ft_labels_path")
if not labels_for_job:
    st.info("Save the label file first; the job trains on the saved file.")
if ref.calibration:
    st.warning("This scan uses a calibration entered in the app; a finetune job reads the file as it is. "
               "Write a copy with its calibration (`python -m xrfcore convert`) and open that copy.")
j1, j2, j3, j4, j5 = st.columns(5)
epochs1 = j1.number_input("epochs, head only", 0, 200, 20, key="ft_epochs1")
epochs2 = j2.number_input("epochs, all layers", 0, 200, 30, key="ft_epochs2")
frac = j3.slider("train fraction", 0.05, 0.9, 0.2, 0.05, key="ft_frac")
seed = j4.number_input("seed", 0, 2**31 - 1, 0, key="ft_seed")
out_name = j5.text_input("new model name", value=f"{bundle.path.stem}-ft", key="ft_out")
if spec_of(bundle) is not None:
    st.caption("The active model is evidence-backed: finetuning trains its head (spectrum features + element "
               "evidence) for the any-layer and group calls; the trunk and the evidence gate stay as they are, so "
               "\"epochs, all layers\" is not used. The surface/hidden outputs keep their network and trees; where "
               "the regions state top and bottom layers, each may be recalibrated to this scan (kept only where "
               "it calls the validation regions better).")
if st.button("Start finetuning", key="ft_start", disabled=not labels_for_job or bool(ref.calibration), type="primary"):
    from xrfcore.jobs import start_job
    from xrfcore.registry import new_model_path

    with state.show_errors("The job did not start", stop=False):
        params = {"model": str(bundle.path), "scans": [ref.path], "labels": [labels_for_job],
                  "out": str(new_model_path(out_name)), "train_fraction": float(frac), "seed": int(seed),
                  "stage1_epochs": int(epochs1), "stage2_epochs": int(epochs2)}
        st.session_state["ft_job"] = start_job("finetune", params)

st.subheader("3. Progress and results")
jobs_ui.job_panel("finetune", session_key="ft_job", on_done=jobs_ui.show_finetune_result)
