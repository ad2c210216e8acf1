"""Plotly figures for the pages: maps (downsampled display copies), spectra with line markers,
probability bars.

Display copies keep full-resolution pixel coordinates on their axes (a display cell is drawn at
the centre of the block of pixels it stands for), so a click maps back to a full-resolution
(row, col) without bookkeeping. Colour scales avoid Magma/Inferno, whose darkest colour
collides with a Streamlit placeholder colour in ``st.plotly_chart``.
"""

from __future__ import annotations

import math
from typing import Iterable, Sequence

import numpy as np
import plotly.graph_objects as go

#: Sequential scale for element maps and probabilities (perceptually uniform, not Magma/Inferno).
MAP_SCALE = "Viridis"
PROB_SCALE = "Cividis"
#: Largest side of a map sent to the browser (pixels).
MAX_DISPLAY_PX = 600


def display_factor(shape: tuple[int, int], max_px: int = MAX_DISPLAY_PX) -> int:
    """Integer block size so that the display copy has at most ``max_px`` cells a side."""
    return max(1, math.ceil(max(shape[0], shape[1]) / max_px))


def downsample(image: np.ndarray, factor: int) -> np.ndarray:
    """Block mean of a ``(H, W)`` map by ``factor`` (edges padded with NaN, ignored in the mean)."""
    image = np.asarray(image, dtype=np.float32)
    if factor <= 1:
        return image
    h, w = image.shape
    hp, wp = -(-h // factor) * factor, -(-w // factor) * factor
    padded = np.full((hp, wp), np.nan, dtype=np.float32)
    padded[:h, :w] = image
    blocks = padded.reshape(hp // factor, factor, wp // factor, factor)
    with np.errstate(invalid="ignore"):
        return np.nanmean(blocks, axis=(1, 3))


def block_centres(n: int, factor: int) -> np.ndarray:
    """Full-resolution coordinate of each display cell's centre (a partial last block: of its pixels)."""
    starts = np.arange(0, n, factor, dtype=np.float64)
    ends = np.minimum(starts + factor, n) - 1
    return (starts + ends) / 2.0


def to_full_res(value: float, n: int) -> int:
    """A clicked axis coordinate -> a full-resolution pixel index in ``[0, n)``."""
    return int(min(max(round(float(value)), 0), n - 1))


def percentile_limits(image: np.ndarray, upper: float = 99.0) -> tuple[float, float]:
    """Colour limits ``(0 or min, 99th percentile)`` for element maps."""
    finite = np.asarray(image)[np.isfinite(image)]
    if finite.size == 0:
        return 0.0, 1.0
    lo = float(min(0.0, finite.min()))
    hi = float(np.percentile(finite, upper))
    return lo, hi if hi > lo else lo + 1.0


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
    fig.update_yaxes(autorange="reversed", scaleanchor="x", constrain="domain", title="row", showgrid=False,
                     zeroline=False)
    fig.update_xaxes(constrain="domain", title="column", showgrid=False, zeroline=False)
    fig.update_layout(title=dict(text=title), height=height, margin=dict(l=55, r=10, t=40 if title else 10, b=10))
    return fig


def overlay_figure(
    background: np.ndarray,
    mask: np.ndarray,
    *,
    colour: str,
    title: str = "",
    height: int = 380,
) -> go.Figure:
    """Element map in greys with the pixels of ``mask`` (bool (H, W)) painted in ``colour``."""
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


#: Groups that get a text label (the others are drawn as lines only).
LABELLED_GROUPS = ("Ka", "La", "Ma")


def marked_lines(groups: Iterable, e0_kev: float, e1_kev: float, *, min_kev: float = 1.5) -> list:
    """The line groups to draw on a spectrum: strong groups inside ``[max(e0, min_kev), e1]``."""
    lo = max(e0_kev, min_kev)
    return [g for g in groups if g.group in MARKED_GROUPS and lo <= g.energy_kev <= e1_kev]


def spectrum_figure(
    energy_kev: np.ndarray,
    traces: Sequence[tuple[str, np.ndarray]],
    *,
    log: bool = True,
    lines: Iterable = (),
    title: str = "",
    height: int = 380,
    shade: Sequence[tuple[float, float, str]] = (),
    y_title: str = "counts",
) -> go.Figure:
    """Spectra against energy (keV) with labelled emission-line markers.

    ``traces`` are (name, y) pairs on ``energy_kev`` (or (name, (x, y)) for their own axis);
    ``lines`` are objects with ``energy_kev`` and ``label`` (e.g. ``xrfcore.elements`` lines);
    ``shade`` are (e0, e1, text) energy bands to shade.
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
    seen: set[str] = set()
    for line in sorted(lines, key=lambda ln: float(ln.energy_kev)):
        label = getattr(line, "label", str(line))
        e = float(line.energy_kev)
        fig.add_vline(x=e, line=dict(color="rgba(200,30,30,0.45)", width=1, dash="dot"))
        if label not in seen and getattr(line, "group", "Ka") in LABELLED_GROUPS:
            # stagger labels over three heights so neighbouring lines stay readable
            y = 1.0 - 0.09 * (len(seen) % 3)
            seen.add(label)
            fig.add_annotation(x=e, y=y, yref="paper", text=label, showarrow=False, textangle=-90,
                               xanchor="left", yanchor="top", font=dict(size=10, color="rgb(170,20,20)"))
    for e0, e1, text in shade:
        fig.add_vrect(x0=e0, x1=e1, fillcolor="rgba(80,120,200,0.10)", line_width=0,
                      annotation_text=text, annotation_position="bottom left")
    fig.update_yaxes(type="log" if log else "linear", title=y_title)
    fig.update_xaxes(title="energy (keV)")
    fig.update_layout(title=dict(text=title), height=height, margin=dict(l=55, r=10, t=40 if title else 10, b=10),
                      legend=dict(orientation="h", y=-0.25))
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
                   max_points: int = 20000, height: int = 380) -> go.Figure:
    """Scatter of two per-pixel quantities (subsampled to ``max_points`` with a fixed seed)."""
    x = np.asarray(x).ravel()
    y = np.asarray(y).ravel()
    if x.size > max_points:
        idx = np.random.default_rng(0).choice(x.size, max_points, replace=False)
        x, y = x[idx], y[idx]
    fig = go.Figure(go.Scattergl(x=x, y=y, mode="markers", marker=dict(size=3, opacity=0.4)))
    fig.update_xaxes(title=x_title)
    fig.update_yaxes(title=y_title)
    fig.update_layout(title=dict(text=title), height=height, margin=dict(l=55, r=10, t=40 if title else 10, b=10))
    return fig
