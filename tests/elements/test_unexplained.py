"""Tests for xrfcore.elements.unexplained: lines the library cannot explain."""

import os
import sys

import numpy as np

from xrfcore.elements.evidence import EvidenceConfig, fit_evidence
from xrfcore.elements.unexplained import (explained_elements, summarise_unexplained, unexplained_candidates,
                                          unexplained_flags)

sys.path.insert(0, os.path.dirname(__file__))
from element_cubes import synthetic_cube  # noqa: E402


def test_library_air_and_anode_are_explained():
    ex = explained_elements(anode="Rh")
    assert {"Pb", "Hg", "Ca", "Zn", "Cu", "As", "Ar", "Rh"} <= ex
    assert not {"Sr", "Ti", "Ba", "Ni", "Cd"} & ex


def test_strontium_is_flagged_and_library_elements_are_not():
    scan, _ = synthetic_cube({"Sr": 3000.0, "Pb": 3000.0, "Ca": 2000.0}, shape=(3, 3), seed=4)
    cfg = EvidenceConfig()
    ev = fit_evidence(np.asarray(scan.counts).reshape(9, -1), scan.calibration, cfg)
    cand = unexplained_candidates(cfg.elements, explained_elements())
    flags = unexplained_flags(ev, cand)
    i = cand.index("Sr")
    assert flags[:, i].sum() >= 7  # amounts are uniform in [0, 3000): nearly every pixel
    assert "Pb" not in cand and "Ca" not in cand
    others = np.delete(flags, i, axis=1)
    assert others.sum() == 0
    line = summarise_unexplained(["Sr"], flags[:, [i]])
    assert line.startswith("Sr lines in ") and "not explained by the library" in line
