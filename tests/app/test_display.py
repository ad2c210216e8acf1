"""Display copies of large maps: downsampling, and clicks mapped back to full resolution."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from ui import plots


def test_large_map_is_sent_at_most_600_cells_a_side_with_full_resolution_axes():
    rng = np.random.default_rng(0)
    image = rng.random((1300, 700)).astype(np.float32)
    fig = plots.map_figure(image)
    heat = fig.data[0]
    z = np.asarray(heat.z)
    assert plots.display_factor(image.shape) == 3
    assert z.shape == (434, 234) and max(z.shape) <= plots.MAX_DISPLAY_PX
    # block means: the first display cell is the mean of the first 3 x 3 pixels
    assert np.isclose(z[0, 0], image[:3, :3].mean())
    # the last, partial block averages only the pixels that exist
    assert np.isclose(z[-1, -1], image[1299:, 699:].mean())
    # axes are full-resolution pixel coordinates (block centres)
    assert np.asarray(heat.y)[:2].tolist() == [1.0, 4.0] and np.asarray(heat.x)[-1] == 699.0


def test_click_coordinates_map_back_to_pixels_inside_the_scan():
    assert plots.to_full_res(4.0, 1300) == 4
    assert plots.to_full_res(1299.6, 1300) == 1299  # clipped to the last row
    assert plots.to_full_res(-0.4, 1300) == 0


def test_colour_scales_avoid_magma_and_inferno():
    # Magma/Inferno's darkest colour collides with a Streamlit placeholder (FIELD-NOTES)
    for scale in (plots.MAP_SCALE, plots.PROB_SCALE):
        assert scale.lower() not in ("magma", "inferno")
    fig = plots.map_figure(np.ones((4, 4)), colorscale=plots.PROB_SCALE, zmin=0, zmax=100)
    assert isinstance(fig.data[0], go.Heatmap) and fig.data[0].zmin == 0 and fig.data[0].zmax == 100


def test_element_map_limits_are_clipped_at_the_99th_percentile():
    image = np.arange(1000, dtype=np.float64).reshape(10, 100)
    image[0, 0] = 1e9  # one hot pixel must not set the colour scale
    lo, hi = plots.percentile_limits(image)
    assert lo == 0.0 and hi == np.percentile(image, 99) and hi < 1000


def test_line_labels_never_overlap_and_the_rest_is_on_hover():
    from xrfcore.elements import line_groups

    # Pb M, Hg M, Ca Ka, Sn La crowd 2.3-3.7 keV: labels go to different heights
    energies = [2.35, 2.40, 3.44, 3.69, 3.72]
    levels = plots.label_levels(energies, min_gap_kev=0.4)
    for i in range(len(energies)):
        for j in range(i + 1, len(energies)):
            if abs(energies[i] - energies[j]) < 0.4:
                assert levels[i] != levels[j], (energies[i], energies[j], levels)
    labelled, hover = plots.element_lines(["Pb", "Ca"], ["Hg", "Sn"], tube_kv=40.0, e0_kev=0.0, e1_kev=40.0)
    assert sorted(g.label for g in labelled) == ["Ca Ka", "Pb La"]  # one label per identified element
    assert {"Hg La", "Sn Ka", "Pb Lb"} <= {g.label for g in hover}
    e = np.linspace(0, 40, 400)
    fig = plots.spectrum_figure(e, [("sum", np.ones_like(e))], labelled=labelled, lines=hover)
    assert sorted(a.text for a in fig.layout.annotations) == ["Ca Ka", "Pb La"]
    ticks = [t for t in fig.data if t.name == "emission lines"][0]
    assert len(ticks.x) == len(hover) and any("Hg La" in t for t in ticks.text)
    assert len(line_groups("Pb", tube_kv=40.0)) > 1
