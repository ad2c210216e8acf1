"""Page 7, Export: probability maps (PNG/TIFF/HDF5), metrics (CSV), label files, the model, and a
short report of what was run with which model and settings."""

from __future__ import annotations

import datetime as dt
import io
import json
import tempfile
import zipfile
from pathlib import Path

import streamlit as st

import xrfcore
from ui import jobs_ui, state
from xrfcore.model import model_sidecars
from xrfcore.views import mean_probability, share_above

state.require_router()
st.title("Export")
scan = state.get_scan()
ref = state.scan_ref()
bundle = state.get_bundle()
stem = Path(ref.label.split(" + ")[0]).stem
# an uploaded file is named as the user named it, never by its place on the server
scan_name = ref.label if ref.path.startswith(str(state.user_subdir("uploads"))) else ref.path
with state.show_errors("Cannot compute pigment maps"):
    cube = state.probability_cube(ref, bundle)

classes, names = list(bundle.classes), list(bundle.class_names)
threshold = float(st.session_state.get("threshold", 0.5))
total_counts = state.total_counts_map(ref)


def _maps_h5() -> bytes:
    from xrfcore.maps import export_h5

    with tempfile.TemporaryDirectory() as d:
        out = export_h5(cube, classes, Path(d) / "maps.h5", pigment_names=names, total_counts=total_counts,
                        attrs={"model_sha256": bundle.sha256 or "", "scan": scan_name})
        return out.read_bytes()


def _maps_tiff() -> bytes:
    from xrfcore.maps import export_tiff

    with tempfile.TemporaryDirectory() as d:
        return export_tiff(cube, classes, Path(d) / "maps.tif").read_bytes()


def _maps_png_zip() -> bytes:
    from xrfcore.maps import export_png

    buf = io.BytesIO()
    with tempfile.TemporaryDirectory() as d, zipfile.ZipFile(buf, "w") as z:
        for p in export_png(cube, classes, d, pigment_names=names, prefix=f"{stem}_"):
            z.write(p, p.name)
    return buf.getvalue()


st.subheader("Pigment maps")
st.caption("Files are written when you click (atomically, by xrfcore) and sent to your browser.")
m1, m2, m3 = st.columns(3)
m1.download_button("HDF5 (all maps)", _maps_h5, file_name=f"{stem}_maps.h5", key="exp_h5", on_click="ignore")
m2.download_button("TIFF (one page per pigment)", _maps_tiff, file_name=f"{stem}_maps.tif", key="exp_tif",
                   on_click="ignore")
m3.download_button("PNG per pigment (zip)", _maps_png_zip, file_name=f"{stem}_maps_png.zip", key="exp_png",
                   on_click="ignore")

st.subheader("Metrics")
metrics_sets: dict[str, dict] = {}
if isinstance(bundle.metadata.get("metrics"), dict):
    metrics_sets["model"] = bundle.metadata["metrics"]
sidecars = model_sidecars(bundle.path)
if "finetune" in sidecars:
    metrics_sets["finetune"] = json.loads(sidecars["finetune"].read_text(encoding="utf-8"))
metrics_sets.update({f"session finetune {k}": v for k, v in st.session_state.get("last_finetune_metrics", {}).items()})
buttons = []
for label, m in metrics_sets.items():
    parts = [("", m)] if "per_pigment" in m else [(k, v) for k, v in m.items() if isinstance(v, dict)]
    for key, value in parts:
        if isinstance(value, dict) and "per_pigment" in value:
            name = f"{label} {key}".strip()
            buttons.append((name, jobs_ui.metrics_frame(value).to_csv(index_label="pigment")))
for kind in ("metrics_csv", "report", "finetune"):
    if kind in sidecars:
        buttons.append((sidecars[kind].name, sidecars[kind].read_text(encoding="utf-8")))
for name, text in buttons:
    file_name = name if "." in name else f"metrics_{name.replace(' ', '_')}.csv"
    st.download_button(f"{file_name}", text, file_name=file_name, key=f"exp_csv_{name}")
if not buttons:
    st.caption("This model carries no per-pigment metrics (no training report or finetune report next to it).")

st.subheader("Label files")
labels = sorted(state.user_subdir("labels").glob("*.json"))
for p in labels:
    st.download_button(p.name, p.read_bytes(), file_name=p.name, key=f"exp_lbl_{p.name}")
if not labels:
    st.caption("No label files saved yet (Finetune page).")

st.subheader("Model")
st.download_button(f"{bundle.path.name}", bundle.path.read_bytes, on_click="ignore", file_name=bundle.path.name, key="exp_model")
sidecar = bundle.path.with_suffix(".json")
if sidecar.is_file():
    st.download_button(sidecar.name, sidecar.read_bytes(), file_name=sidecar.name, key="exp_model_json")

st.subheader("Report")
above, mean_p = share_above(cube, threshold), mean_probability(cube)
lines = [
    f"# XRF Pigment Explorer report ({dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC)",
    "",
    f"- xrfcore {xrfcore.__version__}",
    f"- scan: `{scan_name}` ({scan.n_rows} x {scan.n_cols} pixels, {scan.n_channels} channels, format "
    f"{scan.metadata.format or '?'})",
    f"- calibration: offset {scan.calibration.offset_kev:.4f} keV, gain {scan.calibration.gain_kev * 1000:.3f} eV/ch, "
    f"quadratic {scan.calibration.quadratic_kev:.3g}"
    + (" (entered in the app)" if ref.calibration else " (from the file)" if scan.metadata.calibration_from_file else ""),
    f"- model: `{bundle.path}` (sha256 {bundle.sha256})",
    f"- lineage: {json.dumps(bundle.metadata.get('lineage', []))[:800]}",
    f"- preprocessing: {bundle.preprocess.describe()}",
    f"- preprocessing config: `{bundle.preprocess.to_json()}`",
    f"- threshold: {threshold:.0%}",
    "",
    "| pigment | name | pixels >= threshold | mean probability |",
    "|---|---|---|---|",
]
lines += [f"| {c} | {n} | {a:.1%} | {m:.1%} |"
          for c, n, a, m in zip(classes, names, above, mean_p)]
report = "\n".join(lines) + "\n"
with st.container(border=True):
    st.markdown(report.replace("# ", "#### ", 1))
st.download_button("report.md", report, file_name=f"{stem}_report.md", key="exp_report")
