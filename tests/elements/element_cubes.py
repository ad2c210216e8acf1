"""Synthetic MA-XRF cubes with known element amounts, for the element-map tests and benchmarks."""

from __future__ import annotations

import numpy as np

from xrfcore.elements.lines import emission_lines
from xrfcore.elements.roi import detector_fwhm_kev
from xrfcore.scan import EnergyCalibration, Scan

CALIBRATION = EnergyCalibration(-0.05, 0.01)


def synthetic_cube(
    elements: dict[str, float],
    *,
    shape: tuple[int, int] = (12, 12),
    n_channels: int = 2048,
    calibration: EnergyCalibration = CALIBRATION,
    tube_kv: float = 40.0,
    background: float = 3.0,
    seed: int = 0,
) -> tuple[Scan, dict[str, np.ndarray]]:
    """Gaussian peaks at xraylib line energies; per-pixel amounts uniform in [0, max).

    ``elements`` maps symbol -> maximum family area (counts) of its strongest family. Returns the
    scan (Poisson counts, uint32) and the true amount map per element. Each family of an element
    scales with the same amount (relative rates from xraylib within a family; families scaled by
    their strongest line's cross section ratio is not modelled: every family gets the amount).
    """
    rng = np.random.default_rng(seed)
    e = calibration.energies(n_channels)
    truth = {el: rng.uniform(0.0, amax, shape) for el, amax in elements.items()}
    model = np.zeros(shape + (n_channels,))
    for el, amount in truth.items():
        profile = np.zeros(n_channels)
        lines = emission_lines(el, tube_kv=tube_kv)
        for fam in {line.family for line in lines}:
            fam_lines = [line for line in lines if line.family == fam]
            total = sum(line.relative_rate for line in fam_lines)
            for line in fam_lines:
                sigma = detector_fwhm_kev(line.energy_kev) / 2.3548
                g = np.exp(-0.5 * ((e - line.energy_kev) / sigma) ** 2) * calibration.gain_kev / (sigma * np.sqrt(2 * np.pi))
                profile += line.relative_rate / total * g
        model += amount[..., None] * profile
    model += background * np.exp(-e / 15.0)[None, None, :] * (e > 0.5)
    counts = rng.poisson(model).astype(np.uint32)
    return Scan.from_array(counts, calibration), {el: t.astype(np.float32) for el, t in truth.items()}
