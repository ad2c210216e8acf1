"""Plotly figures for the pages: maps (downsampled display copies), spectra with line markers,
probability bars.

Display copies keep full-resolution pixel coordinates on their axes (a display cell is drawn at
the centre of the block of pixels it stands for), so a click maps back to a full-resolution
(row, col) without bookkeeping. Colour scales avoid Magma/Inferno, whose darkest colour
collides with a Streamlit placeholder colour in ``st.plotly_chart``.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np
import plotly.graph_objects as go

from xrfcore.views import block_centres, display_factor, downsample, percentile_limits, to_full_res

__all__ = ["MAP_SCALE", "PROB_SCALE", "MAX_DISPLAY_PX", "map_figure", "probability_map", "overlay_figure", "spectrum_figure",
           "probability_bars", "scatter_figure", "marked_lines", "display_factor", "percentile_limits", "to_full_res"]

#: Sequential scale for element maps and probabilities (perceptually uniform, not Magma/Inferno).
MAP_SCALE = "Viridis"
PROB_SCALE = "Cividis"
#: Largest side of a map sent to the browser (pixels).
MAX_DISPLAY_PX = 600


def map_figure(
    image: np.ndarray,
    *,
    title: str = "",
    colorscale: str | list = MAP_SCALE,
    zmin: float | None = None,
    zmax: float | None = None,
    colorbar_title: str = "",
    height: int = 380,
    marker: tuple[int, int] | None = None,
    selectable: bool = False,
    max_px: int = MAX_DISPLAY_PX,
) -> go.Figure:
    """Heatmap of a full-resolution ``(H, W)`` map, sent as a downsampled copy.

    Axes are in full-resolution pixel coordinates (x = column, y = row, row 0 at the top).
    ``marker`` draws a cross at a (row, col). ``selectable`` adds an invisible scatter trace so
    that plotly offers box and lasso select on the heatmap.
    """
    h, w = image.shape
    f = display_factor((h, w), max_px)
    small = downsample(image, f)
    fig = go.Figure(
        go.Heatmap(
            z=small,
            x=block_centres(w, f),
            y=block_centres(h, f),
            colorscale=colorscale,
            zmin=zmin,
            zmax=zmax,
            colorbar=dict(title=dict(text=colorbar_title), thickness=12),
            hovertemplate="row %{y:.0f}, col %{x:.0f}<br>%{z:.3g}<extra></extra>",
        )
    )
    if selectable:
        step = max(1, max(h, w) // 40)
        rr, cc = np.mgrid[0:h:step, 0:w:step]
        fig.add_trace(
            go.Scatter(
                x=cc.ravel(), y=rr.ravel(), mode="markers", marker=dict(size=2, opacity=0.01),
                hoverinfo="skip", showlegend=False, name="select",
            )
        )
    if marker is not None:
        fig.add_trace(
            go.Scatter(
                x=[marker[1]], y=[marker[0]], mode="markers", showlegend=False, hoverinfo="skip",
                marker=dict(symbol="x-thin", size=14, line=dict(width=3, color="red")),
            )
        )
    # the map's edges are the plot's edges (no autorange padding from the marker traces); row 0 on top
    fig.update_yaxes(range=[h - 0.5, -0.5], scaleanchor="x", constrain="domain", title="row", showgrid=False,
                     zeroline=False)
    fig.update_xaxes(range=[-0.5, w - 0.5], constrain="domain", title="column", showgrid=False, zeroline=False)
    fig.update_layout(title=dict(text=title), height=height, margin=dict(l=55, r=10, t=40 if title else 10, b=10))
    return fig


def probability_map(prob: np.ndarray, *, title: str = "", height: int = 380, not_seen: np.ndarray | None = None,
                    **kwargs) -> go.Figure:
    """A probability map (0..1) drawn in percent on a fixed 0-100 % scale.

    ``not_seen`` (H, W) bool: pixels drawn grey on top, where the pigment's key-element lines are not in the
    spectrum (beneath the surface the map there cannot tell).
    """
    fig = map_figure(np.asarray(prob, dtype=np.float32) * 100, title=title, colorscale=PROB_SCALE, zmin=0, zmax=100,
                     colorbar_title="%", height=height, **kwargs)
    if not_seen is not None and np.any(not_seen):
        h, w = not_seen.shape
        f = display_factor((h, w), kwargs.get("max_px", MAX_DISPLAY_PX))
        m = downsample(np.asarray(not_seen, np.float32), f)
        fig.add_trace(go.Heatmap(z=np.where(m >= 0.5, 1.0, np.nan), x=block_centres(w, f), y=block_centres(h, f),
                                 colorscale=[[0, "rgb(150,150,150)"], [1, "rgb(150,150,150)"]], opacity=0.8,
                                 showscale=False, name="not seen",
                                 hovertemplate="row %{y:.0f}, col %{x:.0f}<br>no line of its key elements"
                                               "<extra></extra>"))
    return fig


def overlay_figure(
    background: np.ndarray,
    prob: np.ndarray,
    threshold: float,
    *,
    colour: str,
    title: str = "",
    height: int = 380,
) -> go.Figure:
    """Element map in greys with the pixels where ``prob >= threshold`` painted in ``colour``."""
    mask = np.asarray(prob) >= threshold
    h, w = background.shape
    f = display_factor((h, w))
    bg = downsample(background, f)
    lo, hi = percentile_limits(background)
    m = downsample(mask.astype(np.float32), f)
    m = np.where(m >= 0.5, 1.0, np.nan)
    fig = go.Figure()
    fig.add_trace(go.Heatmap(z=bg, x=block_centres(w, f), y=block_centres(h, f), colorscale="Greys",
                             reversescale=True, zmin=lo, zmax=hi, showscale=False,
                             hovertemplate="row %{y:.0f}, col %{x:.0f}<extra></extra>"))
    fig.add_trace(go.Heatmap(z=m, x=block_centres(w, f), y=block_centres(h, f), showscale=False,
                             colorscale=[[0, colour], [1, colour]], opacity=0.65, hoverinfo="skip"))
    fig.update_yaxes(autorange="reversed", scaleanchor="x", constrain="domain")
    fig.update_xaxes(constrain="domain")
    fig.update_layout(title=dict(text=title), height=height, margin=dict(l=55, r=10, t=40, b=10))
    return fig


#: Line groups worth a marker (the strong ones); weaker groups clutter the plot.
MARKED_GROUPS = ("Ka", "Kb", "La", "Lb", "Lg", "Ma")


def marked_lines(groups: Iterable, e0_kev: float, e1_kev: float, *, min_kev: float = 1.5) -> list:
    """The line groups to draw on a spectrum: strong groups inside ``[max(e0, min_kev), e1]``."""
    lo = max(e0_kev, min_kev)
    return [g for g in groups if g.group in MARKED_GROUPS and lo <= g.energy_kev <= e1_kev]


def element_lines(identified: Sequence[str], others: Sequence[str], *, tube_kv: float, e0_kev: float,
                  e1_kev: float) -> tuple[list, list]:
    """(labelled, hover-only) line groups for a spectrum plot.

    Each identified element gets one text label, at the group it is mapped with
    (:func:`xrfcore.elements.principal_group`); every strong line of the identified and the
    ``others`` elements gets a hover marker.
    """
    from xrfcore.elements import line_groups, principal_group
    from xrfcore.errors import XRFError

    labelled, hover = [], []
    for el in dict.fromkeys([*identified, *others]):
        try:
            hover += marked_lines(line_groups(el, tube_kv=tube_kv), e0_kev, e1_kev)
            if el in identified:
                g = principal_group(el, tube_kv=tube_kv, max_energy_kev=e1_kev, min_energy_kev=max(e0_kev, 1.5))
                labelled.append(g)
        except XRFError:  # no line in the range
            continue
    return labelled, hover


def label_levels(energies_kev: Sequence[float], *, min_gap_kev: float, n_levels: int = 4) -> list[int]:
    """Height level (0 = top) for each label so that labels closer than ``min_gap_kev`` never share one."""
    last: list[float] = [-np.inf] * n_levels
    levels = []
    for e in energies_kev:
        free = [i for i in range(n_levels) if e - last[i] >= min_gap_kev]
        i = free[0] if free else int(np.argmin(last))
        last[i] = e
        levels.append(i)
    return levels


def spectrum_figure(
    energy_kev: np.ndarray,
    traces: Sequence[tuple[str, np.ndarray]],
    *,
    log: bool = True,
    lines: Iterable = (),
    labelled: Iterable = (),
    title: str = "",
    height: int = 380,
    shade: Sequence[tuple[float, float, str]] = (),
    y_title: str = "counts",
    mark: Sequence[tuple[float, str]] = (),
) -> go.Figure:
    """Spectra against energy (keV): labelled lines of the identified elements, the rest on hover.

    ``traces`` are (name, y) pairs on ``energy_kev`` (or (name, (x, y)) for their own axis);
    ``labelled`` are line groups (``energy_kev``, ``label``) that get a dotted line and a text
    label (staggered so that neighbours never overlap); ``lines`` are groups shown as small ticks
    along the bottom whose name appears on hover; ``shade`` are (e0, e1, text) energy bands;
    ``mark`` are (energy keV, text) points flagged with a triangle (e.g. unexplained lines).
    """
    fig = go.Figure()
    for name, y in traces:
        if isinstance(y, tuple):
            x, y = y
        else:
            x = energy_kev
        y = np.asarray(y, dtype=np.float64)
        if log:
            y = np.where(y > 0, y, np.nan)
        fig.add_trace(go.Scatter(x=x, y=y, mode="lines", name=name, line=dict(width=1.2)))
    hover = sorted(lines, key=lambda ln: float(ln.energy_kev))
    if hover:
        fig.add_trace(go.Scatter(
            x=[float(g.energy_kev) for g in hover], y=[0.0] * len(hover), yaxis="y2", mode="markers",
            marker=dict(symbol="line-ns-open", size=12, color="rgba(170,20,20,0.7)", line=dict(width=1.5)),
            text=[f"{g.label} {float(g.energy_kev):.2f} keV" for g in hover], hovertemplate="%{text}<extra></extra>",
            showlegend=False, name="emission lines"))
    if mark:
        fig.add_trace(go.Scatter(
            x=[float(e) for e, _ in mark], y=[0.06] * len(mark), yaxis="y2", mode="markers",
            marker=dict(symbol="triangle-up", size=11, color="rgb(230,120,0)"),
            text=[t for _, t in mark], hovertemplate="%{text}<extra></extra>", name="unexplained line"))
    shown = sorted({g.label: g for g in labelled}.values(), key=lambda g: float(g.energy_kev))
    x0 = float(np.nanmin(energy_kev)) if len(energy_kev) else 0.0
    x1 = float(np.nanmax(energy_kev)) if len(energy_kev) else 1.0
    # a label is ~7 % of the axis wide: neighbours closer than that go to another height
    levels = label_levels([float(g.energy_kev) for g in shown], min_gap_kev=max(0.07 * (x1 - x0), 0.2), n_levels=6)
    for g, level in zip(shown, levels):
        e = float(g.energy_kev)
        fig.add_vline(x=e, line=dict(color="rgba(200,30,30,0.45)", width=1, dash="dot"))
        fig.add_annotation(x=e, y=1.0 - 0.065 * level, yref="paper", text=g.label, showarrow=False,
                           xanchor="left", yanchor="top", font=dict(size=10, color="rgb(170,20,20)"),
                           bgcolor="rgba(255,255,255,0.7)")
    for e0, e1, text in shade:
        fig.add_vrect(x0=e0, x1=e1, fillcolor="rgba(80,120,200,0.10)", line_width=0,
                      annotation_text=text, annotation_position="bottom left")
    fig.update_yaxes(type="log" if log else "linear", title=y_title)
    fig.update_xaxes(title="energy (keV)")
    fig.update_layout(title=dict(text=title), height=height, margin=dict(l=55, r=10, t=40 if title else 10, b=10),
                      legend=dict(orientation="h", y=-0.25), hovermode="closest", showlegend=len(traces) > 1,
                      yaxis2=dict(overlaying="y", range=[0, 1], visible=False, fixedrange=True))
    return fig


def fit_figure(fit, *, log: bool = True, labelled: Iterable = (), lines: Iterable = (),
               mark: Sequence[tuple[float, str]] = (), height: int = 420, title: str = "") -> go.Figure:
    """A spectrum with its element fit (fitted total and background) above the residual.

    ``fit`` has ``energy_kev``, ``counts``, ``fitted``, ``background``, ``residual`` (counts),
    e.g. :class:`xrfcore.elements.evidence.SpectrumFit`. The residual panel below shows
    ``counts - fitted`` divided by the Poisson sigma ``sqrt(max(fitted, 1))``.
    """
    from plotly.subplots import make_subplots

    e = np.asarray(fit.energy_kev)
    top = spectrum_figure(e, [("counts", fit.counts), ("element fit", fit.fitted), ("background", fit.background)],
                          log=log, labelled=labelled, lines=lines, mark=mark, height=height)
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.75, 0.25], vertical_spacing=0.04)
    colours = ["rgb(60,60,60)", "rgb(214,39,40)", "rgb(120,160,220)"]
    for trace, colour in zip(top.data[:3], colours):
        fig.add_trace(trace.update(line=dict(color=colour, width=1.2 if colour != colours[1] else 1.6)), row=1, col=1)
    for trace in top.data[3:]:  # line ticks and unexplained marks: on the paper axis of the top panel
        fig.add_trace(trace.update(yaxis="y3"))
    resid = np.asarray(fit.residual, dtype=np.float64) / np.sqrt(np.maximum(np.asarray(fit.fitted), 1.0))
    fig.add_trace(go.Scatter(x=e, y=resid, mode="lines", name="residual (σ)", line=dict(width=1, color="rgb(90,90,90)"),
                             showlegend=False), row=2, col=1)
    fig.add_hline(y=0, line=dict(color="grey", width=1), row=2, col=1)
    for shape in top.layout.shapes:
        fig.add_shape(shape.update(yref="y domain"), row=1, col=1)
    for ann in top.layout.annotations:
        fig.add_annotation(ann.update(yref="y domain"), row=1, col=1)
    fig.update_yaxes(type="log" if log else "linear", title="counts", row=1, col=1)
    fig.update_yaxes(title="residual (σ)", row=2, col=1, zeroline=False)
    fig.update_xaxes(title="energy (keV)", row=2, col=1)
    fig.update_layout(title=dict(text=title), height=height, margin=dict(l=55, r=10, t=40 if title else 10, b=10),
                      legend=dict(orientation="h", y=-0.22), hovermode="closest",
                      yaxis3=dict(overlaying="y", range=[0, 1], visible=False, fixedrange=True))
    return fig


def layer_bars(classes: Sequence[str], layers: dict, *, threshold: float = 0.5, height: int = 300) -> go.Figure:
    """Per-pigment probabilities (%) of the model's outputs: "any", and "surface"/"hidden" when present."""
    fig = go.Figure()
    styles = {"any": ("present", "rgb(31,119,180)"), "surface": ("surface layer", "rgb(255,127,14)"),
              "hidden": ("hidden layer", "rgb(44,160,44)")}
    for part, (name, colour) in styles.items():
        if layers.get(part) is not None:
            fig.add_trace(go.Bar(x=list(classes), y=np.asarray(layers[part], dtype=np.float64) * 100, name=name,
                                 marker_color=colour, hovertemplate=f"%{{x}} {name}: %{{y:.1f}}%<extra></extra>"))
    fig.add_hline(y=threshold * 100, line=dict(dash="dash", color="grey"))
    fig.update_yaxes(range=[0, 100], title="probability (%)")
    fig.update_layout(barmode="group", height=height, margin=dict(l=55, r=10, t=10, b=10),
                      legend=dict(orientation="h", y=1.12), showlegend=len(fig.data) > 1)
    return fig


def probability_bars(classes: Sequence[str], probs: np.ndarray, *, threshold: float = 0.5,
                     title: str = "", height: int = 300) -> go.Figure:
    """Bar chart of per-pigment probabilities (0-100 %), bars above ``threshold`` highlighted."""
    p = np.asarray(probs, dtype=np.float64) * 100.0
    colours = ["rgb(31,119,180)" if v >= threshold * 100 else "rgb(170,170,170)" for v in p]
    fig = go.Figure(go.Bar(x=list(classes), y=p, marker_color=colours,
                           hovertemplate="%{x}: %{y:.1f}%<extra></extra>"))
    fig.add_hline(y=threshold * 100, line=dict(dash="dash", color="grey"))
    fig.update_yaxes(range=[0, 100], title="probability (%)")
    fig.update_layout(title=dict(text=title), height=height, margin=dict(l=55, r=10, t=40 if title else 10, b=10))
    return fig


def scatter_figure(x: np.ndarray, y: np.ndarray, *, x_title: str, y_title: str, title: str = "",
                   max_points: int = 20000, height: int = 380, y_percent: bool = False) -> go.Figure:
    """Scatter of two per-pixel quantities (subsampled to ``max_points`` with a fixed seed).

    ``y_percent``: ``y`` is a probability 0..1, drawn in percent.
    """
    x = np.asarray(x).ravel()
    y = np.asarray(y).ravel() * (100.0 if y_percent else 1.0)
    if x.size > max_points:
        idx = np.random.default_rng(0).choice(x.size, max_points, replace=False)
        x, y = x[idx], y[idx]
    fig = go.Figure(go.Scattergl(x=x, y=y, mode="markers", marker=dict(size=3, opacity=0.4)))
    fig.update_xaxes(title=x_title)
    fig.update_yaxes(title=y_title)
    fig.update_layout(title=dict(text=title), height=height, margin=dict(l=55, r=10, t=40 if title else 10, b=10))
    return fig
