"""Page 2, Preprocess: every PreprocessConfig parameter with a live preview on the mean spectrum
and on one pixel (raw, SNIP background, model input), with the model's energy grid drawn."""

from __future__ import annotations

import streamlit as st

from ui import plots, state
from xrfcore.errors import XRFError
from xrfcore.preprocess import EnergyGrid, PreprocessConfig, preprocess_steps

state.require_router()
st.title("Preprocess")
scan = state.get_scan()
ref = state.scan_ref()
bundle = state.get_bundle(stop=False) if state.active_model_path().is_file() else None
model_cfg: PreprocessConfig | None = bundle.preprocess if bundle is not None else None

st.caption(
    "Explore how a spectrum becomes model input. Maps always use the settings the active model was "
    "trained with" + (" (shown by default)." if model_cfg else "; no model is loaded, so defaults are shown.")
)

base = model_cfg or PreprocessConfig()
if "pp_config" not in st.session_state or st.button("Reset to the model's settings", key="pp_reset"):
    st.session_state["pp_config"] = base.to_dict()
    for k in list(st.session_state):
        if k.startswith("pp_w_"):
            del st.session_state[k]
cfg0 = PreprocessConfig.from_dict(st.session_state["pp_config"])

with st.sidebar:
    st.subheader("Preprocessing")
    g1, g2 = st.columns(2)
    start = g1.number_input("grid start (keV)", value=float(cfg0.grid.start_kev), step=0.1, format="%.2f", key="pp_w_start")
    step = g2.number_input("grid step (keV)", value=float(cfg0.grid.step_kev), step=0.005, format="%.3f",
                           min_value=0.001, key="pp_w_step")
    n_ch = st.number_input("grid channels", value=int(cfg0.grid.n_channels), min_value=16, step=10, key="pp_w_n")
    snip = st.checkbox("subtract SNIP background", value=cfg0.snip, key="pp_w_snip")
    width = st.slider("SNIP width (keV)", 0.02, 2.0, float(cfg0.snip_width_kev), 0.01, key="pp_w_width")
    iters = st.number_input("SNIP iterations", value=int(cfg0.snip_iterations), min_value=1, max_value=20, key="pp_w_iter")
    smooth = st.number_input("SNIP smoothing passes", value=int(cfg0.snip_smooth), min_value=0, max_value=20, key="pp_w_smooth")
    llsqrt = st.checkbox("SNIP in log-log-sqrt space", value=cfg0.snip_llsqrt, key="pp_w_llsqrt")
    transform = st.checkbox("transform ln(1+ln(1+√x))", value=cfg0.transform, key="pp_w_transform")
    norms = ["max", "sum", "none"]
    normalise = st.selectbox("normalise", norms, index=norms.index(cfg0.normalise), key="pp_w_norm")
    pads = ["zero", "error"]
    pad = st.selectbox("grid outside the scan's range", pads, index=pads.index(cfg0.pad), key="pp_w_pad")

try:
    cfg = PreprocessConfig(
        grid=EnergyGrid(start_kev=start, step_kev=step, n_channels=int(n_ch)), snip=snip, snip_width_kev=width,
        snip_iterations=int(iters), snip_smooth=int(smooth), snip_llsqrt=llsqrt, transform=transform,
        normalise=normalise, pad=pad,
    )
except XRFError as exc:
    st.error(f"These settings are not valid: {exc}")
    st.stop()
st.session_state["pp_config"] = cfg.to_dict()
st.caption("Pipeline: " + cfg.describe())

# -- which spectra -----------------------------------------------------------------------------
r0, c0 = st.session_state.get("pixel", (scan.n_rows // 2, scan.n_cols // 2))
p1, p2, p3 = st.columns([1, 1, 2])
row = p1.number_input("pixel row", 0, scan.n_rows - 1, int(r0), key="pp_row")
col = p2.number_input("pixel column", 0, scan.n_cols - 1, int(c0), key="pp_col")
log = p3.toggle("Logarithmic counts", value=True, key="pp_log")
st.session_state["pixel"] = (int(row), int(col))

spectra = {"mean spectrum": state.mean_spectrum(ref), f"pixel ({row}, {col})": scan.spectrum(int(row), int(col))}
grid_e = cfg.grid.energies()
shade = [(cfg.grid.edges()[0], cfg.grid.edges()[-1], "this grid")]
if model_cfg is not None and model_cfg.grid != cfg.grid:
    shade.append((model_cfg.grid.edges()[0], model_cfg.grid.edges()[-1], "model grid"))

for name, spec in spectra.items():
    st.subheader(name)
    try:
        steps = preprocess_steps(spec, scan.calibration, cfg)
    except XRFError as exc:
        st.error(f"Preprocessing failed: {exc}")
        continue
    covered = steps["covered_fraction"]
    if covered <= 0.0:
        st.error(f"This grid ({cfg.grid.start_kev:.2f}–{cfg.grid.stop_kev:.2f} keV) lies wholly outside the scan's "
                 f"energy range ({scan.energy_kev[0]:.2f}–{scan.energy_kev[-1]:.2f} keV): the model input is all "
                 "zeros. Move the grid inside the scan's range, or use a model trained on such a grid "
                 "(Library & training).")
    elif covered < 0.999:
        st.warning(f"Only {covered:.0%} of this grid lies inside the scan's energy range; the rest is padded with zeros.")
    left, right = st.columns(2)
    raw_fig = plots.spectrum_figure(
        scan.energy_kev, [("raw", spec), ("on grid", (grid_e, steps["rebinned"][0])),
                          ("SNIP background", (grid_e, steps["background"][0]))],
        log=log, shade=shade, title="raw, rebinned and background", y_title="counts per bin",
    )
    left.plotly_chart(raw_fig, key=f"pp_raw_{name}")
    out_fig = plots.spectrum_figure(grid_e, [("model input", steps["model_input"][0])], log=False, title="model input",
                                    y_title="transformed, normalised")
    right.plotly_chart(out_fig, key=f"pp_out_{name}")
