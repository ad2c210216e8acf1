"""Simulated spectra of the labelled stacks, and rehearsal spectra on a scan's calibration."""

from __future__ import annotations

import numpy as np
import pytest

from xrfcore.errors import SimulationError
from xrfcore.scan import EnergyCalibration
from xrfcore.simulate.labelled import region_stacks, rehearsal_spectra, scan_background_fraction, simulate_stacks

CAL = EnergyCalibration(-0.955, 0.02)
N_CH = 2048


def _window(cal, n_ch, kev, half=0.12):
    e = cal.energies(n_ch)
    return (e > kev - half) & (e < kev + half)


def test_region_stacks_lists_distinct_layer_sets():
    classes = ["VM", "LW", "ZW"]
    top = np.zeros((2, 4, 3), np.uint8)
    bottom = np.zeros_like(top)
    idx = np.full((2, 4), -1)
    idx[:, :2] = 0
    top[:, :2, 0] = 1
    bottom[:, :2, 2] = 1  # VM over ZW
    idx[:, 2] = 1
    top[:, 2, 1] = 1  # LW alone
    stacks = region_stacks(top, bottom, idx, classes)
    assert stacks == [(("LW",), ()), (("VM",), ("ZW",))]
    only_right = np.zeros((2, 4), bool)
    only_right[:, 2] = True
    assert region_stacks(top, bottom, idx, classes, pixels=only_right) == [(("LW",), ())]


def test_stacks_carry_their_lines_and_labels():
    spec, lab, classes = simulate_stacks([(("VM",), ()), (("LW",), ())], CAL, N_CH, n_per_stack=16, seed=0,
                                         counts=(2e4, 4e4))
    assert spec.shape == (32, N_CH) and spec.dtype == np.uint32
    vm, lw = classes.index("VM"), classes.index("LW")
    assert (lab[:16, vm] == 1).all() and (lab[:16].sum(axis=1) == 1).all()
    assert (lab[16:, lw] == 1).all() and (lab[16:].sum(axis=1) == 1).all()
    hg = _window(CAL, N_CH, 9.99)  # Hg L-alpha
    pb = _window(CAL, N_CH, 10.55)  # Pb L-alpha
    assert (spec[:16][:, hg].sum(1) > 3 * spec[:16][:, pb].sum(1)).all()
    assert (spec[16:][:, pb].sum(1) > 3 * spec[16:][:, hg].sum(1)).all()
    assert spec.sum(axis=1).min() > 1.5e4 and spec.sum(axis=1).max() < 4.5e4
    again, _, _ = simulate_stacks([(("VM",), ()), (("LW",), ())], CAL, N_CH, n_per_stack=16, seed=0, counts=(2e4, 4e4))
    assert np.array_equal(spec, again)


def test_a_hidden_layer_is_attenuated_by_the_top():
    under, lab, classes = simulate_stacks([(("VM",), ("ZW",))], CAL, N_CH, n_per_stack=32, seed=1,
                                          counts=(5e4, 5e4), top_um=(150.0, 200.0))
    bare, _, _ = simulate_stacks([(("ZW",), ())], CAL, N_CH, n_per_stack=32, seed=1, counts=(5e4, 5e4))
    zn = _window(CAL, N_CH, 8.64)  # Zn K-alpha
    assert (lab[:, classes.index("ZW")] == 1).all()
    assert np.median(under[:, zn].sum(1)) < 0.2 * np.median(bare[:, zn].sum(1))


def test_background_of_the_scan_is_used():
    rng = np.random.default_rng(0)
    e = CAL.energies(N_CH)
    smooth = 50 * np.exp(-0.5 * ((e - 6.0) / 3.0) ** 2)
    frac = scan_background_fraction(rng.poisson(smooth, (32, N_CH)), CAL)
    assert frac.shape == (N_CH,) and 0.5 < frac.sum() <= 1.0
    with pytest.raises(SimulationError, match="no counts"):
        scan_background_fraction(np.zeros((2, N_CH)), CAL)


def test_unknown_class_and_empty_input_are_refused():
    with pytest.raises(SimulationError, match="unknown classes"):
        simulate_stacks([(("XX",), ())], CAL, N_CH)
    with pytest.raises(SimulationError, match="no labelled stacks"):
        simulate_stacks([((), ())], CAL, N_CH)


def test_rehearsal_uses_the_scan_calibration():
    spec, lab, classes = rehearsal_spectra(40, CAL, N_CH, seed=2)
    assert spec.shape == (40, N_CH) and lab.shape == (40, len(classes))
    assert lab.sum(axis=1).min() >= 1
    again, _, _ = rehearsal_spectra(40, CAL, N_CH, seed=2)
    assert np.array_equal(spec, again)
