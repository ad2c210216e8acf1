"""The "measured" physics of the demo mock-up: what makes it differ from the training sets on purpose.

So that finetuning has a sim-to-real gap to close, the mock-up's ``"measured"`` variant uses
an instrument, a pigment library and a background the training sets never see:

* :func:`measured_instrument`: secondary fluorescence on; 125 eV detector noise, Fano 0.12,
  escape fraction x1.6, pile-up 0.3 %; Rh anode with a 50 um Al primary filter; scatter x1.8;
* :func:`impure_library`: Pb traces in iron oxide (~0.8 % PbO) and zinc white (~0.5 % PbO),
  Cu traces in lead white (~0.1 % CuO), S in chrome yellow (PbSO4 co-precipitate, 5 mol %);
* :func:`measured_background`: a fixed hump at ~6 keV plus a rising low-energy shelf (its
  shape; the mock-up scales it to 15 % of the counts).

Used by :mod:`xrfcore.simulate.mockup` and the identifiability analysis
(:mod:`xrfcore.simulate.identifiability`).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

__all__ = ["IMPURE_FORMULAS", "measured_instrument", "impure_library", "measured_background"]

#: Formulas with trace impurities (pigment abbreviation -> formula) of the measured variant.
IMPURE_FORMULAS: dict[str, str] = {"IO": "3PbO.500Fe2O3", "ZW": "9PbO.5000ZnO", "LW": "CuO.100Pb(OH)2.200PbCO3",
                                   "CrY": "20PbCrO4.PbSO4"}


def measured_instrument(**changes: Any):
    """The "measured" :class:`~xrfcore.physics.Instrument` of the demo, with ``changes`` applied."""
    from xrfcore.physics import Instrument

    base = Instrument(anode="Rh", tube_kv=40.0, tube_filters=(("Al", 2.699, 50.0),), noise_ev=125.0, fano=0.12,
                      escape_scale=1.6, pileup_fraction=0.003, scatter_scale=1.8, secondary=True)
    return replace(base, **changes)


def impure_library(library):
    """A copy of ``library`` whose pigments carry the trace impurities of :data:`IMPURE_FORMULAS`."""
    from xrfcore.library import PigmentLibrary

    pigs = [replace(p, formula=IMPURE_FORMULAS.get(p.abbr, p.formula)) for p in library.pigments]
    return PigmentLibrary(pigments=pigs, classes=library.classes, class_names=library.class_names,
                          version=library.version, binder=library.binder, ground=library.ground,
                          pigment_to_binder_mass_ratio=library.pigment_to_binder_mass_ratio)


def measured_background(energy_kev: np.ndarray) -> np.ndarray:
    """Shape of the measured-looking background on channels at ``energy_kev`` (keV), summing to 1.

    A log-normal hump at ~6 keV plus an exponential shelf above 1 keV, rolled off below
    1.4 keV (detector window) and zero above 30 keV.
    """
    e = np.clip(energy_kev, 1e-3, None)
    hump = np.exp(-0.5 * (np.log(e / 6.0) / 0.55) ** 2)
    shelf = np.exp(-(e - 1.0) / 2.5) * (e > 1.0)
    b = (hump + 0.35 * shelf) / (1.0 + np.exp(-(energy_kev - 1.4) / 0.12))  # window roll-off
    b[energy_kev > 30.0] = 0.0
    return b / b.sum()
