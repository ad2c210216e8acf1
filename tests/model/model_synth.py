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


#: The six labelled bands of the finetuning tests: (top classes, bottom classes), 4 rows each.
BANDS = ((("VM",), ()), (("LW",), ()), (("VM",), ("ZW",)), (("LW",), ()), (("VM",), ()), (("VM",), ("ZW",)))


def write_band_scan(folder) -> None:
    """``scan.h5``: a 24 x 24 x 1024 scan of :data:`BANDS` simulated with the real physics (calibration
    -0.5 keV + 40 eV), and ``labels.json``: one rectangle region per band with its layers, in ``folder``."""
    import json

    from xrfcore.io import write_scan_h5
    from xrfcore.scan import EnergyCalibration
    from xrfcore.simulate.labelled import simulate_stacks

    cal = EnergyCalibration(-0.5, 0.04)
    spec, _, _ = simulate_stacks(list(BANDS), cal, 1024, n_per_stack=4 * 24, seed=3, counts=(5e3, 1e4))
    write_scan_h5(folder / "scan.h5", spec.reshape(24, 24, 1024).astype(np.uint16), cal)
    regions = [{"name": f"band {i}", "shape": "rectangle", "row0": 4 * i, "col0": 0, "row1": 4 * i + 4, "col1": 24,
                "top": list(t), "bottom": list(b)} for i, (t, b) in enumerate(BANDS)]
    (folder / "labels.json").write_text(json.dumps({"version": 1, "regions": regions}))


def small_finetune_config(**overrides):
    """A FinetuneConfig small enough for the band scan of :func:`write_band_scan` (every recipe part on)."""
    from xrfcore.model.config import FinetuneConfig

    base = dict(train_fraction=0.5, block_size=8, validation_fraction=0.25, augment_copies=1, simulate_per_stack=8,
                rehearsal_ratio=0.2, stage1_epochs=1, stage2_epochs=1, batch_size=32, patience=1)
    return FinetuneConfig(**{**base, **overrides})
