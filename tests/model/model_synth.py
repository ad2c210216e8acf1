"""Fixtures: a small simulated-dataset HDF5 file with synthetic Gaussian-peak spectra.

Each class owns two peaks (keV); a spectrum holds the peaks of the classes present in its
label row on a sloped background, with Poisson noise, so a short fit can learn the labels.
"""

from __future__ import annotations

import h5py
import numpy as np

#: Class -> peak energies (keV): Co, Zn, Hg, Pb lines (real energies, simplified intensities).
PEAKS_KEV = {"CB": (6.93, 7.65), "ZW": (8.64, 9.57), "VM": (9.99, 11.82), "LW": (10.55, 12.61)}
CLASSES = list(PEAKS_KEV)
CALIBRATIONS = ((-0.5, 0.0150, 0.0), (0.0, 0.0148, 0.0), (-0.96, 0.0100, 0.0))
N_SOURCE = 2048
TINY_MODEL = {"filters": (8, 8), "kernel_sizes": (5, 3), "post_conv": (8, 3), "bn_momentum": 0.8}


def synthetic_spectra(labels: np.ndarray, calibration: tuple[float, float, float], rng) -> np.ndarray:
    """(n, N_SOURCE) uint32 counts for (n, K) labels under one calibration."""
    e = calibration[0] + calibration[1] * np.arange(N_SOURCE) + calibration[2] * np.arange(N_SOURCE) ** 2
    sigma = 0.07  # keV, ~165 eV FWHM
    lam = np.tile(20.0 * np.exp(-e / 8.0).clip(0, None), (labels.shape[0], 1))
    for k, c in enumerate(CLASSES):
        shape = sum(a * np.exp(-0.5 * ((e - e0) / sigma) ** 2) for a, e0 in zip((300.0, 60.0), PEAKS_KEV[c]))
        lam += labels[:, k : k + 1] * shape[None, :] * rng.uniform(0.5, 1.5, size=(labels.shape[0], 1))
    return rng.poisson(lam).astype(np.uint32)


def write_dataset(path, n: int, seed: int) -> None:
    """Write the training-set layout of docs/ARCHITECTURE.md with n spectra."""
    rng = np.random.default_rng(seed)
    labels = (rng.random((n, len(CLASSES))) < 0.4).astype(np.uint8)
    which = rng.integers(0, len(CALIBRATIONS), size=n)
    spectra = np.empty((n, N_SOURCE), dtype=np.uint32)
    for i, cal in enumerate(CALIBRATIONS):
        idx = np.flatnonzero(which == i)
        spectra[idx] = synthetic_spectra(labels[idx], cal, rng)
    with h5py.File(path, "w") as f:
        f["spectra"] = spectra
        f["calibration"] = np.asarray(CALIBRATIONS, dtype=np.float64)[which]
        f["labels"] = labels
        f["labels_top"] = labels
        f["labels_bottom"] = np.zeros_like(labels)
        f["label_names"] = np.array(CLASSES, dtype="S")
        f.create_group("params")["which_calibration"] = which
        f.attrs["seed"] = seed
        f.attrs["library_version"] = 1
