"""Page 4, Inspector: click a pixel (or draw a box/lasso) on any map to see its spectrum with
labelled emission lines and the model's probabilities."""

from __future__ import annotations

import numpy as np
import streamlit as st
from matplotlib.path import Path as PolyPath

from ui import plots, state
from ui.click_component import new_event, plotly_events
from xrfcore.errors import XRFError

state.require_router()
st.title("Inspector")
scan = state.get_scan()
ref = state.scan_ref()
bundle = state.get_bundle(stop=False) if state.active_model_path().is_file() else None
if bundle is None:
    st.info("No model loaded: spectra are shown without probabilities.")
kv = state.tube_kv(scan)


def region_mask(event: dict, shape: tuple[int, int]) -> np.ndarray:
    """Pixels (H, W) bool inside a box or lasso drawn in full-resolution axis coordinates."""
    h, w = shape
    if event["kind"] == "box":
        (x0, x1), (y0, y1) = sorted(event["x"]), sorted(event["y"])
        rr, cc = np.ogrid[0:h, 0:w]
        return (rr >= y0 - 0.5) & (rr <= y1 + 0.5) & (cc >= x0 - 0.5) & (cc <= x1 + 0.5)
    poly = PolyPath(np.column_stack([event["x"], event["y"]]))
    rr, cc = np.mgrid[0:h, 0:w]
    return poly.contains_points(np.column_stack([cc.ravel(), rr.ravel()])).reshape(h, w)


def probabilities(spectra: np.ndarray) -> np.ndarray | None:
    if bundle is None:
        return None
    from xrfcore.model import predict_spectra

    with state.show_errors("Prediction failed", stop=False):
        return predict_spectra(bundle, spectra, scan.calibration)
    return None


@st.fragment
def inspector() -> None:
    options = ["total counts"]
    if bundle is not None:
        options += [f"P({c})" for c in bundle.classes]
    elements = state.identified_elements(ref)
    options += [f"{e} (ROI)" for e in elements]
    a, b, c = st.columns([2, 1, 1])
    which = a.selectbox("Map to click on", options, key="insp_map")
    log = b.toggle("Logarithmic counts", value=True, key="insp_log")
    mode = c.radio("Select", ["pixel", "box / lasso region"], key="insp_mode", horizontal=True)

    if which == "total counts":
        image, scale, lims = state.total_counts_map(ref), plots.MAP_SCALE, (None, None)
    elif which.startswith("P("):
        with state.show_errors("Cannot compute pigment maps"):
            cube = state.probability_cube(ref, bundle)
        image = cube[..., list(bundle.classes).index(which[2:-1])] * 100
        scale, lims = plots.PROB_SCALE, (0, 100)
    else:
        el = which.split()[0]
        image = state.element_maps(ref, tuple(elements), "roi")[el]
        scale, lims = plots.MAP_SCALE, plots.percentile_limits(image)

    pixel = st.session_state.get("pixel", (scan.n_rows // 2, scan.n_cols // 2))
    fig = plots.map_figure(image, colorscale=scale, zmin=lims[0], zmax=lims[1], marker=pixel,
                           selectable=mode != "pixel", height=460)
    left, right = st.columns([1, 1])
    with left:
        st.caption("Click a pixel." if mode == "pixel" else "Drag a box or lasso (buttons top right of the map).")
        event = new_event(plotly_events(fig, key="insp_click", height=470, select=mode != "pixel"),
                          "insp_click", st.session_state)
    if event and event["kind"] == "click":
        pixel = (plots.to_full_res(event["y"], scan.n_rows), plots.to_full_res(event["x"], scan.n_cols))
        st.session_state["pixel"] = pixel
        st.session_state.pop("region", None)
        st.rerun(scope="fragment")
    if event and event["kind"] in ("box", "lasso"):
        st.session_state["region"] = event

    with right:
        show_lines = st.multiselect("Element lines", sorted(set(elements) | {"Ca", "Fe", "Pb", "Hg"}),
                                    default=elements, key="insp_lines")
        from xrfcore.elements import line_groups

        e0, e1 = float(scan.energy_kev[0]), float(scan.energy_kev[-1])
        lines = plots.marked_lines([g for el in show_lines for g in line_groups(el, tube_kv=kv)], e0, e1)
        region = st.session_state.get("region")
        if region is not None:
            mask = region_mask(region, (scan.n_rows, scan.n_cols))
            n = int(mask.sum())
            if n == 0:
                st.warning("The region holds no pixel centre; draw a larger one.")
                return
            rows = np.nonzero(mask.any(axis=1))[0]
            block = scan.read_rows(int(rows[0]), int(rows[-1]) + 1)
            spectra = block[mask[rows[0]: rows[-1] + 1]].astype(np.float64)
            spec, title = spectra.mean(axis=0), f"mean of {n} pixels ({region['kind']})"
            probs = probabilities(spectra)
            probs = None if probs is None else probs.mean(axis=0)
        else:
            r, c_ = pixel
            r = st.number_input("row", 0, scan.n_rows - 1, int(r), key=f"insp_row_{r}_{c_}")
            c_ = st.number_input("column", 0, scan.n_cols - 1, int(c_), key=f"insp_col_{pixel[0]}_{c_}")
            if (r, c_) != tuple(pixel):
                st.session_state["pixel"] = (int(r), int(c_))
                st.rerun(scope="fragment")
            spec, title = scan.spectrum(int(r), int(c_)), f"pixel (row {r}, col {c_})"
            probs = probabilities(np.asarray(spec, dtype=np.float64)[None, :])
            probs = None if probs is None else probs[0]
        st.markdown(f"**{title}**")
        st.plotly_chart(plots.spectrum_figure(scan.energy_kev, [(title, spec)], log=log, lines=lines, height=340),
                        key="insp_spectrum")
        if probs is not None:
            st.plotly_chart(plots.probability_bars(bundle.classes, probs,
                                                   threshold=st.session_state.get("threshold", 0.5)),
                            key="insp_probs")
            st.caption("Probabilities: " + ", ".join(f"{c} {p:.0%}" for c, p in zip(bundle.classes, probs)))


try:
    inspector()
except XRFError as exc:
    st.error(str(exc))
