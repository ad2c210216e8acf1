"""Page 1, Scan: open the demo, an upload or a file from the server's data folder; summary,
calibration (editable when the file has none) and the sum spectrum with identified elements."""

from __future__ import annotations

import streamlit as st

from ui import plots, state
from xrfcore.errors import XRFError
from xrfcore.scan import EnergyCalibration

state.require_router()
st.title("Scan")

# -- choose a scan -----------------------------------------------------------------------------
src_demo, src_upload, src_data = st.tabs(["Demo mock-up", "Upload a file", "Server data folder"])

with src_demo:
    st.write("The built-in demo: a simulated oil-paint mock-up of crossed pigment strips, with labelled regions.")
    if not state.DEMO_SCAN.is_file():
        st.warning(f"The demo scan is missing ({state.DEMO_SCAN}); it ships with xrfcore: reinstall the package (`pip install -e .`) or open another scan.")
    elif st.button("Open the demo scan", key="open_demo"):
        state.set_scan(state.DEMO_SCAN, label="demo mock-up")
        st.rerun()

with src_upload:
    st.caption(
        "Choose every file of the scan at once: a Bruker M6 `.rpl` + `.raw` export needs both "
        "(or one `.zip` holding them). Files up to the upload limit (see `.streamlit/config.toml`) "
        "are copied to the server's user folder; larger scans belong in the server data folder."
    )
    n = st.session_state.setdefault("upload_round", 0)
    uploaded = st.file_uploader("Scan file(s)", key=f"uploader_{n}", accept_multiple_files=True)
    if uploaded:
        try:
            staged = state.stage_scan_uploads(uploaded)
        except (ValueError, OSError) as exc:
            st.error(f"The upload was not stored: {state.public_message(exc)}")
            staged = None
        for problem in staged.problems if staged else []:
            st.error(problem)
        opened = None
        for item in staged.scans if staged else []:
            try:
                state.load_scan(state.make_ref(item.path, label=item.label))
            except XRFError as exc:
                st.error(f"Cannot open {item.label}: {state.public_message(exc)}")
                continue
            opened = item
            break
        if opened is not None:
            # A new key drops the widget's copy so the server releases the upload's memory.
            st.session_state["upload_round"] = n + 1
            state.set_scan(opened.path, label=opened.label)
            others = [s.label for s in staged.scans if s is not opened]
            if others:
                st.session_state["upload_note"] = "Also in this upload (upload it alone to open it): " + "; ".join(others)
            st.rerun()
    if note := st.session_state.pop("upload_note", None):
        st.info(note)

with src_data:
    root = state.data_dir()
    if root is None:
        st.info("No server data folder. Set the environment variable `XRF_DATA_DIR` to a folder of scans.")
    else:
        st.caption(f"Files in `{root}` (set with `XRF_DATA_DIR`). Paths outside this folder are refused.")
        files = state.list_data_files()
        choice = st.selectbox("Scan in the data folder", [""] + files, key="data_choice")
        typed = st.text_input("…or a path inside the data folder", key="data_path")
        if st.button("Open", key="open_data"):
            name = typed.strip() or choice
            if not name:
                st.error("Choose a file from the list or type a path inside the data folder.")
                st.stop()
            try:
                state.set_scan(state.resolve_in_data_dir(name), label=name)
                st.rerun()
            except PermissionError as exc:
                st.error(f"Refused: {exc}")
            except FileNotFoundError as exc:
                st.error(str(exc))

# -- summary -----------------------------------------------------------------------------------
scan = state.get_scan()
ref = state.scan_ref()
meta = scan.metadata
cal = scan.calibration

st.subheader(ref.label)
c1, c2, c3, c4 = st.columns(4)
c1.metric("Rows × columns", f"{scan.n_rows} × {scan.n_cols}")
c2.metric("Channels", scan.n_channels)
c3.metric("Energy range (keV)", f"{scan.energy_kev[0]:.2f} – {scan.energy_kev[-1]:.2f}")
c4.metric("Format", meta.format or "?")
details = {
    "file": ref.label if ref.path.startswith(str(state.user_subdir("uploads"))) else meta.source,
    "dtype": str(scan.dtype),
    "tube (kV)": meta.tube_kv,
    "live time per pixel (s)": meta.live_time_s,
    "pixel size (um)": meta.pixel_size_um,
}
st.caption(" · ".join(f"{k}: {v}" for k, v in details.items() if v not in (None, "")))

st.markdown("**Energy calibration**  E(ch) = offset + gain·ch + quadratic·ch²")
editable = not meta.calibration_from_file or ref.calibration is not None
if not editable:
    st.write(
        f"From the file: offset {cal.offset_kev:.4f} keV, gain {cal.gain_kev * 1000:.3f} eV/channel, "
        f"quadratic {cal.quadratic_kev:.3g} keV/ch²."
    )
else:
    if ref.calibration is not None:
        st.success(f"Calibration applied in this session: offset {cal.offset_kev:.4f} keV, gain "
                   f"{cal.gain_kev * 1000:.3f} eV/channel, quadratic {cal.quadratic_kev:.3g} keV/ch². "
                   "Change it below if needed.")
    else:
        st.warning("This file carries no energy calibration. Enter your detector's calibration and apply it.")
    with st.form("calibration"):
        f1, f2, f3 = st.columns(3)
        offset = f1.number_input("offset (keV)", value=float(cal.offset_kev), format="%.4f", step=0.001)
        gain_ev = f2.number_input("gain (eV/channel)", value=float(cal.gain_kev * 1000), format="%.4f", step=0.01)
        quad = f3.number_input("quadratic (keV/ch²)", value=float(cal.quadratic_kev), format="%.3e", step=1e-9)
        if st.form_submit_button("Apply calibration"):
            try:
                new_cal = EnergyCalibration(offset, gain_ev / 1000.0, quad)
                new_cal.energies(scan.n_channels)
                state.set_scan(ref.path, label=ref.label, calibration=new_cal)
                st.rerun()
            except XRFError as exc:
                st.error(f"Calibration not applied: {exc}")

# -- sum spectrum ------------------------------------------------------------------------------
st.subheader("Sum spectrum")
log = st.toggle("Logarithmic counts", value=True, key="scan_log")
total = state.sum_spectrum(ref)
elements: list[str] = []
with state.show_errors("Element identification failed", stop=False):
    elements = state.identified_elements(ref)
labelled, hover = plots.element_lines(elements, (), tube_kv=state.tube_kv(scan), e0_kev=float(scan.energy_kev[0]),
                                      e1_kev=float(scan.energy_kev[-1]))
st.plotly_chart(plots.spectrum_figure(scan.energy_kev, [("sum of all pixels", total)], log=log, labelled=labelled,
                                      lines=hover), key="scan_sum_spectrum")
st.caption("Identified elements are labelled; hover over the ticks along the bottom for every other line.")
if elements:
    st.success("Elements found: " + ", ".join(elements))
else:
    st.info("No elements identified automatically.")
with state.show_errors("The check for unexplained lines failed", stop=False):
    if unexplained := state.unexplained_in_scan(ref):
        st.warning("Lines no pigment of the library explains: "
                   + ", ".join(f"{el} (significant in {share:.0%} of pixels)" for el, share in unexplained)
                   + ". Maps of those pixels come from a model that never saw them: add the pigment on the "
                   "**Library & training** page and retrain, or read those pixels' maps with care.")
