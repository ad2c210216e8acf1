"""Page 4, Inspector: click a pixel (or draw a box/lasso) on any map to see its spectrum with
labelled emission lines and the model's probabilities."""

from __future__ import annotations

import streamlit as st

from ui import plots, spectrum_view, state
from ui.click_component import plotly_events, take_events
from xrfcore.errors import XRFError
from xrfcore.labels import selection_mask
from xrfcore.views import pixel_view, region_mean

state.require_router()
st.title("Inspector")
scan = state.get_scan()
ref = state.scan_ref()
bundle = state.get_bundle(stop=False) if state.active_model_path().is_file() else None
if bundle is None:
    st.info("No model loaded: spectra are shown without probabilities.")
kv = state.tube_kv(scan)
RECENT = 6

if scan.n_rows * scan.n_cols == 1:
    probs = pixel_view(scan, 0, 0, bundle=bundle)[1] if bundle is not None else None
    spectrum_view.single_spectrum(scan, ref, bundle, probs, key="insp_single")
    st.stop()


def handle(events: list[dict]) -> None:
    """Apply the map's new clicks and selections, oldest first (none is skipped)."""
    for ev in events:
        if ev["kind"] == "click":
            pixel = (plots.to_full_res(ev["y"], scan.n_rows), plots.to_full_res(ev["x"], scan.n_cols))
            st.session_state["pixel"] = pixel
            st.session_state["recent_pixels"] = ([pixel] + st.session_state.get("recent_pixels", []))[:RECENT]
            st.session_state.pop("region", None)
        elif ev["kind"] in ("box", "lasso"):
            st.session_state["region"] = ev


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
    handle(take_events("insp_click"))

    if which == "total counts":
        image, scale, lims = state.total_counts_map(ref), plots.MAP_SCALE, (None, None)
        fig_of = None
    elif which.startswith("P("):
        with state.show_errors("Cannot compute pigment maps"):
            cube = state.probability_cube(ref, bundle)
        image, fig_of = cube[..., list(bundle.classes).index(which[2:-1])], "probability"
    else:
        image = state.element_maps(ref, tuple(elements), "roi")[which.split()[0]]
        scale, lims, fig_of = plots.MAP_SCALE, plots.percentile_limits(image), None

    pixel = st.session_state.get("pixel", (scan.n_rows // 2, scan.n_cols // 2))
    pixel_mode = mode == "pixel"
    left, right = st.columns([1, 1])
    region = st.session_state.get("region")
    if region is None:  # typed row/column: read first, so the marker is drawn where they point
        with right:
            r0, c0 = pixel
            r = st.number_input("row", 0, scan.n_rows - 1, int(r0), key=f"insp_row_{r0}_{c0}")
            c_ = st.number_input("column", 0, scan.n_cols - 1, int(c0), key=f"insp_col_{r0}_{c0}")
        if (int(r), int(c_)) != tuple(pixel):
            pixel = (int(r), int(c_))
            st.session_state["pixel"] = pixel
    if fig_of == "probability":
        fig = plots.probability_map(image, marker=pixel, selectable=not pixel_mode, height=460)
    else:
        fig = plots.map_figure(image, colorscale=scale, zmin=lims[0], zmax=lims[1], marker=pixel,
                               selectable=not pixel_mode, height=460)
    if not pixel_mode:
        fig.update_layout(dragmode="select")
    with left:
        st.caption("Click a pixel." if pixel_mode else "Drag a box (or pick the lasso, top right of the map).")
        plotly_events(fig, key="insp_click", height=470, select=not pixel_mode, clicks=pixel_mode,
                      revision=f"{ref.key}|{mode}")
        recent = st.session_state.get("recent_pixels", [])
        if len(recent) > 1:
            st.caption("Recent pixels: " + " ← ".join(f"({r}, {c_})" for r, c_ in recent))

    with right:
        show_lines = st.multiselect("Element lines", sorted(set(elements) | {"Ca", "Fe", "Pb", "Hg"}),
                                    default=elements, key="insp_lines")
        e0, e1 = float(scan.energy_kev[0]), float(scan.energy_kev[-1])
        labelled, hover = plots.element_lines([e for e in show_lines if e in elements],
                                              [e for e in show_lines if e not in elements],
                                              tube_kv=kv, e0_kev=e0, e1_kev=e1)
        evidence = None
        if region is not None:
            mask = selection_mask(region["kind"], region["x"], region["y"], (scan.n_rows, scan.n_cols))
            with state.show_errors("Prediction failed", stop=False):
                spec, probs, n = region_mean(scan, mask, bundle=bundle)
            if n == 0:
                st.warning("The region holds no pixel centre; draw a larger one.")
                return
            title = f"mean of {n} pixels ({region['kind']})"
        else:
            r, c_ = pixel
            spec, probs, evidence = pixel_view(scan, r, c_)[0], None, None
            with state.show_errors("The element fit failed", stop=False):
                evidence = state.pixel_evidence(ref, int(r), int(c_), bundle.sha256 if bundle else "", _bundle=bundle)
                probs = evidence.layers.get("any")
            title = f"pixel (row {r}, col {c_})"
        st.markdown(f"**{title}**")
        if region is None and evidence is not None:
            mark = [(e, f"{el}: {sig:.0f}σ, not explained by the library") for el, sig, e in evidence.unexplained]
            st.plotly_chart(plots.fit_figure(evidence.fit, log=log, labelled=labelled, lines=hover, mark=mark,
                                             height=420), key="insp_spectrum")
            if evidence.unexplained:
                st.warning("Lines no pigment of the library explains (the probabilities here come from a model that "
                           "never saw them): " + ", ".join(f"{el} ({sig:.0f}σ at {e:.2f} keV)"
                                                          for el, sig, e in evidence.unexplained))
        else:
            st.plotly_chart(plots.spectrum_figure(scan.energy_kev, [(title, spec)], log=log, labelled=labelled,
                                                  lines=hover, height=340), key="insp_spectrum")
        threshold = st.session_state.get("threshold", 0.5)
        if probs is not None:
            layers = evidence.layers if region is None and evidence is not None else {"any": probs}
            st.plotly_chart(plots.layer_bars(bundle.classes, layers, threshold=threshold), key="insp_probs")
            st.caption("Probabilities: " + ", ".join(f"{c} {p:.0%}" for c, p in zip(bundle.classes, probs)))
        if region is None and evidence is not None:
            st.markdown("**Each pigment beside the evidence for its key elements**")
            st.dataframe(evidence_table(evidence), hide_index=True, width="stretch", key="insp_evidence")


def evidence_table(evidence) -> "pd.DataFrame":
    """Rows of :class:`xrfcore.views.PixelEvidence` as a table (probabilities in %, counts as fitted)."""
    import pandas as pd

    def pct(v):
        return None if v is None else round(100 * v, 1)

    table = pd.DataFrame([{
        "pigment": f"{row['pigment']}: {row['name']}",
        "P present (%)": pct(row["any"]), "P surface (%)": pct(row["surface"]), "P hidden (%)": pct(row["hidden"]),
        "key elements: net counts ± σ (significance)": "; ".join(
            f"{el} {n:,.0f} ± {sd:,.0f} ({sig:.1f}σ)" for el, n, sd, sig in row["key_elements"]) or "—",
        "evidence": row.get("verdict"),
    } for row in evidence.rows])
    return table.dropna(axis=1, how="all")


try:
    inspector()
except XRFError as exc:
    st.error(str(exc))
