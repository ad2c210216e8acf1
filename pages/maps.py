"""Page 3, Pigment maps (the first page): probability map per pigment beside its element map(s),
an overlay, probability vs element intensity, and a threshold. A single-spectrum file (1 x 1
scan) gets its spectrum and the pigment probabilities instead of one-cell maps."""

from __future__ import annotations

import streamlit as st

from ui import plots, spectrum_view, state
from xrfcore.maps import combined_element_map
from xrfcore.views import share_above

state.require_router()
st.title("Pigment maps")
scan = state.get_scan()
ref = state.scan_ref()
bundle = state.get_bundle()

st.checkbox("Scan stops short of the model's energy range (e.g. a 20 keV map): zero-pad the rest; element "
            "evidence there counts as unknown, not absent", key="allow_short_range")
with state.show_errors("Cannot compute pigment maps"):
    all_maps = state.probability_maps(ref, bundle)
classes = list(bundle.classes)
if all_maps["covered_share"] < 0.999:
    st.warning(f"The scan covers {all_maps['covered_share']:.0%} of the model's energy grid; the rest was "
               "zero-padded and element evidence there is unknown.")
if all_maps["unexplained_elements"]:
    from xrfcore.elements.unexplained import summarise_unexplained

    st.warning(summarise_unexplained(all_maps["unexplained_elements"], all_maps["unexplained"]).capitalize() + ".")
layers = ["any layer"] + (["surface", "hidden"] if all_maps.get("surface") is not None else [])
layer = st.radio("Layer", layers, horizontal=True, key="maps_layer",
                 help="surface: in the uppermost paint layer; hidden: under another paint layer (and not also on "
                      "top). A pigment under thick lead or mercury can be invisible: no line reaches the detector.")
cube = all_maps[{"any layer": "any", "surface": "surface", "hidden": "hidden"}[layer]]
seen = all_maps.get("seen")
grey_unseen = seen is not None and layer != "surface" and st.checkbox(
    "Grey where the pigment's lines are not in the spectrum", value=layer == "hidden", key=f"maps_grey_unseen_{layer}",
    help="There the pigment is not at the surface; beneath it the map cannot tell: it is either absent or under "
         "paint that absorbs its lines (zinc white under vermilion, most pigments under thick lead white).")
names = dict(zip(bundle.classes, bundle.class_names))
kv = state.tube_kv(scan)

if scan.n_rows * scan.n_cols == 1:
    spectrum_view.single_spectrum(scan, ref, bundle, cube[0, 0], key="maps_single")
    st.stop()

c1, c2, c3 = st.columns([2, 1, 1])
threshold = c1.slider("Threshold (probability %)", 0, 100, int(round(100 * st.session_state.get("threshold", 0.5))),
                      1, key="maps_threshold") / 100.0
st.session_state["threshold"] = threshold
method = c2.radio("Element maps", ["ROI", "fitted (PyMca)"], horizontal=True, key="maps_method")
view = c3.radio("View", ["one pigment", "all pigments"], horizontal=True, key="maps_view")

elements_of = {c: state.pigment_elements(c, tube_kv=kv) for c in classes}
above = share_above(cube, threshold)

if all_maps.get("groups") is not None or all_maps["unexplained_elements"]:
    with st.expander("Same-element groups and lines the library cannot explain"):
        st.caption("Where the spectrum shows Fe, Pb or Cr but not which pigment carries it, the group's "
                   "probability is the part that is known. Inside a group the split is as confident as the "
                   "physics allows: Prussian blue and iron oxide, lead white and red lead give the same lines. "
                   "The lead white / red lead split follows a stated prior of the shipped model (red lead is "
                   "usually mixed with lead white), not the spectrum; see models/README.md.")
        extra = [(name, all_maps["groups"][..., i]) for i, name in enumerate(bundle.metadata.get(
            "evidence_model", {}).get("layout", {}).get("groups", []))] if all_maps.get("groups") is not None else []
        gcols = st.columns(max(1, min(3, len(extra) + len(all_maps["unexplained_elements"]))))
        for i, (name, image) in enumerate(extra):
            with gcols[i % len(gcols)]:
                st.plotly_chart(plots.probability_map(image, title=name, height=260), key=f"maps_group_{i}")
        for j, el in enumerate(all_maps["unexplained_elements"]):
            with gcols[(len(extra) + j) % len(gcols)]:
                st.plotly_chart(plots.map_figure(all_maps["unexplained"][..., j], title=f"{el}: not explained",
                                                 zmin=0, zmax=1, height=260), key=f"maps_unexplained_{el}")

if view == "all pigments":
    cols = st.columns(4)
    for i, c in enumerate(classes):
        with cols[i % 4]:
            fig = plots.probability_map(cube[..., i], title=f"{c}: {above[i]:.0%} ≥ threshold", height=260,
                                        not_seen=(seen[..., i] == 0) if grey_unseen else None)
            st.plotly_chart(fig, key=f"maps_grid_{c}")
    st.stop()

pick = st.selectbox("Pigment", classes, format_func=lambda c: f"{c}: {names.get(c, c)}", key="maps_pigment")
k = classes.index(pick)
prob = cube[..., k]
st.caption(
    f"{names.get(pick, pick)}: {above[k]:.1%} of pixels at or above {threshold:.0%}. "
    f"Element map(s): {', '.join(elements_of[pick]) or 'none of its elements emit above 2.8 keV'}. "
    "Probabilities on a fixed 0–100 % scale; element maps clipped at their 99th percentile."
)

left, right = st.columns(2)
with left:  # the probability map first: it is on screen before the element maps are computed
    unseen = (seen[..., k] == 0) if grey_unseen else None
    st.plotly_chart(plots.probability_map(prob, title=f"P({pick}) %", not_seen=unseen), key="maps_prob")
    if unseen is not None:
        st.caption(f"Grey: no line of {', '.join(elements_of[pick]) or 'its key elements'} in {unseen.mean():.0%} "
                   f"of the pixels. {names.get(pick, pick)} is not at the surface there; "
                   + ("beneath it the hidden map cannot tell (absent, or under paint that absorbs those lines)."
                      if layer == "hidden" else "any hidden layer of it is not seen."))

needed = tuple(sorted({e for els in elements_of.values() for e in els}))
with state.show_errors("Element maps failed"):
    emaps = state.element_maps(ref, needed, "fit" if method.startswith("fitted") else "roi")
els = [e for e in elements_of[pick] if e in emaps]
with right:
    for e in els:
        lo, hi = plots.percentile_limits(emaps[e])
        st.plotly_chart(plots.map_figure(emaps[e], title=f"{e} ({method.split()[0]})", zmin=lo, zmax=hi,
                                         colorbar_title="counts"), key=f"maps_el_{e}")

left, right = st.columns(2)
colour = next((p.colour for p in state.library().pigments_of_class(pick)), "rgb(230,50,50)")
with left:
    base = emaps[els[0]] if els else state.total_counts_map(ref)
    st.plotly_chart(plots.overlay_figure(base, prob, threshold, colour=colour,
                                         title=f"{pick} ≥ {threshold:.0%} over {els[0] if els else 'total counts'}"),
                    key="maps_overlay")
with right:
    if els:
        x, x_title = combined_element_map(emaps, els[:2])
        st.plotly_chart(plots.scatter_figure(x, prob, x_title=x_title, y_title=f"P({pick}) %", y_percent=True,
                                             title="probability vs element intensity"), key="maps_scatter")
