"""The spectrum-first view of a single-spectrum file (a 1 x 1 scan): its spectrum with the
identified elements labelled and the model's probabilities beside it, instead of one-cell maps."""

from __future__ import annotations

from typing import Any

import numpy as np
import streamlit as st

from ui import plots, state


def single_spectrum(scan: Any, ref: Any, bundle: Any, probs: np.ndarray | None, *, key: str) -> None:
    """Show the one spectrum of ``scan`` and, with a model, its pigment probabilities ``probs`` (K,)."""
    st.info("This file holds a single spectrum (a 1 × 1 scan): it is shown as a spectrum, not as maps.")
    log = st.toggle("Logarithmic counts", value=True, key=f"{key}_log")
    identified: list[str] = []
    with state.show_errors("Element identification failed", stop=False):
        identified = state.identified_elements(ref)
    e0, e1 = float(scan.energy_kev[0]), float(scan.energy_kev[-1])
    labelled, hover = plots.element_lines(identified, (), tube_kv=state.tube_kv(scan), e0_kev=e0, e1_kev=e1)
    left, right = st.columns([3, 2])
    with left:
        st.plotly_chart(plots.spectrum_figure(scan.energy_kev, [("spectrum", scan.spectrum(0, 0))], log=log,
                                              labelled=labelled, lines=hover, height=420), key=f"{key}_spectrum")
        st.caption("Elements found: " + (", ".join(identified) or "none"))
    with right:
        if probs is not None and bundle is not None:
            threshold = float(st.session_state.get("threshold", 0.5))
            st.plotly_chart(plots.probability_bars(bundle.classes, probs, threshold=threshold), key=f"{key}_probs")
            st.caption("Probabilities: " + ", ".join(f"{c} {p:.0%}" for c, p in zip(bundle.classes, probs)))
