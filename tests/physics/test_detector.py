"""Detector response: resolution, unit-area peaks on any calibration, escape peaks, pile-up."""

import numpy as np
import pytest

from xrfcore.library import load_library
from xrfcore.physics import Instrument, Layer, Stack, simulate_spectra
from xrfcore.physics.detector import apply_pileup, escape_fraction, fwhm_kev, shape_matrix
from xrfcore.scan import EnergyCalibration


def test_fwhm_at_mn_kalpha():
    # sqrt(0.085^2 + 2.3548^2 * 0.114 * 3.85e-3 * 5.895) keV
    assert fwhm_kev(5.895, noise_ev=85.0, fano=0.114) == pytest.approx(0.1465, abs=5e-4)


@pytest.mark.parametrize("cal", [EnergyCalibration(-0.955, 0.010), EnergyCalibration(0.0, 0.02, 2e-7)])
def test_peaks_have_unit_area_and_sit_at_their_energy(cal):
    e = np.array([3.0, 6.4, 10.55, 20.2])
    m = shape_matrix(e, e, cal, 4096, noise_ev=85.0, fano=0.114, escape=False, dtype=np.float64)
    np.testing.assert_allclose(m.sum(axis=1), 1.0, atol=1e-6)
    centre = (m * cal.energies(4096)).sum(axis=1)
    np.testing.assert_allclose(centre, e, atol=2e-3)


def test_box_column_spreads_over_its_width():
    cal = EnergyCalibration(0.0, 0.01)
    m = shape_matrix(np.array([10.0]), np.array([12.0]), cal, 3000, noise_ev=85.0, fano=0.114, escape=False,
                     dtype=np.float64)[0]
    assert m.sum() == pytest.approx(1.0, abs=1e-6)
    inside = m[(cal.energies(3000) > 10.3) & (cal.energies(3000) < 11.7)]
    np.testing.assert_allclose(inside, 0.01 / 2.0, rtol=1e-3)


def test_escape_peak_moves_counts_down_by_si_kalpha():
    cal = EnergyCalibration(0.0, 0.01)
    e = np.array([6.4])
    f = escape_fraction(e)[0]
    assert 0.002 < f < 0.03
    assert escape_fraction(np.array([1.5]))[0] == 0.0  # below the Si K edge
    m = shape_matrix(e, e, cal, 2048, noise_ev=85.0, fano=0.114, escape=True, dtype=np.float64)[0]
    en = cal.energies(2048)
    assert m[np.abs(en - (6.4 - 1.74)) < 0.2].sum() == pytest.approx(f, rel=0.02)
    assert m.sum() == pytest.approx(1.0, abs=1e-6)


def test_pileup_sum_peak_at_twice_the_energy():
    cal = EnergyCalibration(-0.5, 0.01)
    en = cal.energies(4096)
    s = np.exp(-0.5 * ((en - 8.0) / 0.06) ** 2)[None, :]
    out = apply_pileup(s, cal, 0.01)
    assert out.sum() == pytest.approx(s.sum(), rel=1e-6)
    high = en > 12.0
    assert en[high][np.argmax(out[0, high])] == pytest.approx(16.0, abs=0.02)
    assert out[0, high].sum() == pytest.approx(0.01 * s.sum(), rel=0.01)


def test_simulate_spectra_counts_seed_and_peak_positions():
    lib = load_library()
    stack = Stack((Layer({"VM": 1.0}, 40.0), Layer({"ZW": 1.0}, 100.0), Layer({"CaCO3": 1.0}, 200.0)))
    cal = EnergyCalibration(-0.955, 0.010)
    a = simulate_spectra([stack] * 3, Instrument(), cal, 4096, seed=3, total_counts=2e5, library=lib)
    b = simulate_spectra([stack] * 3, Instrument(), cal, 4096, seed=3, total_counts=2e5, library=lib)
    assert a.dtype == np.uint32 and a.shape == (3, 4096)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a[0], a[1])  # independent noise per spectrum
    np.testing.assert_allclose(a.sum(axis=1), 2e5, rtol=0.01)
    expected = simulate_spectra([stack], Instrument(), cal, 4096, total_counts=2e5, noise=False, library=lib)[0]
    en = cal.energies(4096)
    for line_kev in (9.989, 8.639):  # Hg L-alpha1, Zn K-alpha1
        window = np.abs(en - line_kev) < 0.3
        assert en[window][np.argmax(expected[window])] == pytest.approx(line_kev, abs=0.03)
    # Rh K-alpha Rayleigh peak at 20.2 keV is there when scatter is on, gone when off
    rh = np.abs(en - 20.2) < 0.15
    off = simulate_spectra([stack], Instrument(scatter=False), cal, 4096, total_counts=2e5, noise=False, library=lib)[0]
    assert expected[rh].sum() > 5 * off[rh].sum()
