"""Page 3, Pigment maps: probability map per pigment beside its element map(s), an overlay,
probability vs element intensity, and a threshold."""

from __future__ import annotations

import numpy as np
import streamlit as st

from ui import plots, state

state.require_router()
st.title("Pigment maps")
scan = state.get_scan()
ref = state.scan_ref()
bundle = state.get_bundle()

with state.show_errors("Cannot compute pigment maps"):
    cube = state.probability_cube(ref, bundle)
classes = list(bundle.classes)
names = dict(zip(bundle.classes, bundle.class_names))
kv = state.tube_kv(scan)

c1, c2, c3 = st.columns([2, 1, 1])
threshold = c1.slider("Threshold (probability %)", 0, 100, 50, 1, key="maps_threshold") / 100.0
st.session_state["threshold"] = threshold
method = c2.radio("Element maps", ["ROI", "fitted (PyMca)"], horizontal=True, key="maps_method")
view = c3.radio("View", ["one pigment", "all pigments"], horizontal=True, key="maps_view")

elements_of = {c: state.pigment_elements(c, tube_kv=kv) for c in classes}
needed = tuple(sorted({e for els in elements_of.values() for e in els}))
with state.show_errors("Element maps failed"):
    emaps = state.element_maps(ref, needed, "fit" if method.startswith("fitted") else "roi")

above = (cube >= threshold).mean(axis=(0, 1))

if view == "all pigments":
    cols = st.columns(4)
    for i, c in enumerate(classes):
        with cols[i % 4]:
            fig = plots.map_figure(cube[..., i] * 100, title=f"{c}: {above[i]:.0%} ≥ threshold",
                                   colorscale=plots.PROB_SCALE, zmin=0, zmax=100, colorbar_title="%", height=260)
            st.plotly_chart(fig, key=f"maps_grid_{c}")
    st.stop()

pick = st.selectbox("Pigment", classes, format_func=lambda c: f"{c}: {names.get(c, c)}", key="maps_pigment")
k = classes.index(pick)
prob = cube[..., k]
els = [e for e in elements_of[pick] if e in emaps]
st.caption(
    f"{names.get(pick, pick)}: {above[k]:.1%} of pixels at or above {threshold:.0%}. "
    f"Element map(s): {', '.join(els) or 'none of its elements emit above 2.8 keV'}. "
    "Probabilities on a fixed 0–100 % scale; element maps clipped at their 99th percentile."
)

left, right = st.columns(2)
with left:
    fig = plots.map_figure(prob * 100, title=f"P({pick}) %", colorscale=plots.PROB_SCALE, zmin=0, zmax=100,
                           colorbar_title="%")
    st.plotly_chart(fig, key="maps_prob")
with right:
    for e in els:
        lo, hi = plots.percentile_limits(emaps[e])
        st.plotly_chart(plots.map_figure(emaps[e], title=f"{e} ({method.split()[0]})", zmin=lo, zmax=hi,
                                         colorbar_title="counts"), key=f"maps_el_{e}")

left, right = st.columns(2)
colour = next((p.colour for p in state.library().pigments_of_class(pick)), "rgb(230,50,50)")
with left:
    base = emaps[els[0]] if els else state.total_counts_map(ref)
    st.plotly_chart(plots.overlay_figure(base, prob >= threshold, colour=colour,
                                         title=f"{pick} ≥ {threshold:.0%} over {els[0] if els else 'total counts'}"),
                    key="maps_overlay")
with right:
    if els:
        if len(els) >= 2:
            # Two-element pigments: the smaller of the two element signals, each scaled to its 99th percentile.
            scaled = [emaps[e] / plots.percentile_limits(emaps[e])[1] for e in els[:2]]
            x = np.minimum(*scaled)
            x_title = f"min({els[0]}, {els[1]}) / 99th percentile"
        else:
            x, x_title = emaps[els[0]], f"{els[0]} intensity (counts)"
        st.plotly_chart(plots.scatter_figure(x, prob * 100, x_title=x_title, y_title=f"P({pick}) %",
                                             title="probability vs element intensity"), key="maps_scatter")
