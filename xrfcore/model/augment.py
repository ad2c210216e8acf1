"""Augmentation of labelled spectra for finetuning, and the one function that makes model inputs.

Labelled pixels of a scan are few and come from a few regions; copies of them with other count
levels, a slightly different energy calibration and a slightly worse detector resolution teach
the model what must *not* matter (dwell time, calibration drift, peak width) instead of letting
it memorise the regions. All augmentations act on raw counts, before preprocessing:

* **binomial thinning** (:func:`thin_counts`): each recorded photon is kept with probability
  ``p``; a thinned Poisson spectrum is again Poisson, with ``p`` times the mean (a ``p`` times
  shorter dwell);
* **resolution jitter** (:func:`broaden_counts`): each photon is moved by a Gaussian step of
  ``sigma`` keV, which widens every peak (a worse detector) and keeps the counting statistics;
* **calibration jitter** (:func:`jitter_calibration`): the spectrum is read with a slightly
  wrong offset and gain, which shifts its peaks on the model's energy grid.

:func:`model_inputs` is the single place where raw counts become what the network reads
(preprocessing, then the trailing channel axis): finetuning, rehearsal and evaluation all call
it, so a model with another input layout changes only this function.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from xrfcore.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from xrfcore.preprocess import PreprocessConfig
    from xrfcore.scan import EnergyCalibration

__all__ = ["thin_counts", "broaden_counts", "jitter_calibration", "model_inputs", "network_input",
           "augment_labelled", "augmented_counts"]

_FWHM_PER_SIGMA = 2.0 * np.sqrt(2.0 * np.log(2.0))


def thin_counts(counts: np.ndarray, keep: float | np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Binomially thinned copy of integer counts: each photon kept with probability ``keep``.

    Parameters
    ----------
    counts : (n, n_channels) array of non-negative integers
    keep : float or (n,) array in (0, 1]
        Probability per photon (per spectrum when an array).
    rng : numpy Generator

    Returns
    -------
    (n, n_channels) int64

    Examples
    --------
    >>> x = np.full((1, 4), 1000)
    >>> thin_counts(x, 1.0, np.random.default_rng(0)).tolist()
    [[1000, 1000, 1000, 1000]]
    """
    c = np.asarray(counts)
    if np.any(c < 0) or not np.all(np.equal(np.mod(c, 1), 0)):
        raise ConfigError("thin_counts needs raw non-negative integer counts (thin before preprocessing)")
    p = np.asarray(keep, dtype=np.float64)
    if np.any(p <= 0) or np.any(p > 1):
        raise ConfigError(f"keep probabilities must be in (0, 1], got {keep!r}")
    if p.ndim == 1:
        p = p[:, None]
    return rng.binomial(c.astype(np.int64), p)


def broaden_counts(counts: np.ndarray, sigma_kev: float | np.ndarray, gain_kev: float,
                   rng: np.random.Generator) -> np.ndarray:
    """Move each photon by a Gaussian step of ``sigma_kev``: peaks widen, statistics stay Poisson.

    Parameters
    ----------
    counts : (n, n_channels) array of non-negative integers
    sigma_kev : float or (n,) array
        Standard deviation of the step (keV). A peak of FWHM ``F`` becomes
        ``sqrt(F**2 + (2.355 sigma)**2)``.
    gain_kev : float
        Channel width (keV).
    rng : numpy Generator

    Returns
    -------
    (n, n_channels) int64
        Same total counts per spectrum, less what falls off either end of the axis.

    Notes
    -----
    Cost grows with the number of photons (about 50 ns per photon).
    """
    c = np.asarray(counts).astype(np.int64)
    n, n_ch = c.shape
    sig = np.broadcast_to(np.asarray(sigma_kev, dtype=np.float64), (n,)) / float(gain_kev)
    out = np.zeros_like(c)
    channels = np.arange(n_ch)
    for i in range(n):
        if sig[i] <= 0:
            out[i] = c[i]
            continue
        idx = np.repeat(channels, c[i])
        idx = np.rint(idx + rng.normal(0.0, sig[i], idx.size)).astype(np.int64)
        idx = idx[(idx >= 0) & (idx < n_ch)]
        out[i] = np.bincount(idx, minlength=n_ch)
    return out


def jitter_calibration(calibration: "EnergyCalibration", rng: np.random.Generator, *, offset_sd_kev: float = 0.005,
                       gain_rel_sd: float = 0.001) -> "EnergyCalibration":
    """A calibration with a Gaussian error on offset (keV) and relative error on gain.

    Reading a spectrum with it shifts the peaks by ``offset error + channel * gain error``
    (about 5 eV at the offset and 0.1 % of the energy by default).
    """
    from xrfcore.scan import EnergyCalibration

    return EnergyCalibration(calibration.offset_kev + float(rng.normal(0.0, offset_sd_kev)),
                             calibration.gain_kev * (1.0 + float(rng.normal(0.0, gain_rel_sd))),
                             calibration.quadratic_kev)


def model_inputs(spectra: np.ndarray, calibration: "EnergyCalibration", config: "PreprocessConfig") -> np.ndarray:
    """Raw counts ``(n, n_channels)`` -> preprocessed spectra ``(n, grid.n_channels)`` float32.

    The one place finetuning turns counts into model input (:func:`xrfcore.preprocess.preprocess_spectra`);
    :func:`network_input` then adds the axis the network expects.
    """
    from xrfcore.preprocess import preprocess_spectra

    return preprocess_spectra(np.asarray(spectra), calibration, config)


def network_input(x: np.ndarray) -> np.ndarray:
    """Preprocessed ``(n, n_grid)`` -> what the CNN's ``fit``/call takes, ``(n, n_grid, 1)`` float32."""
    x = np.asarray(x, dtype=np.float32)
    return x[:, :, None] if x.ndim == 2 else x


def augmented_counts(spectra: np.ndarray, labels: np.ndarray, calibration: "EnergyCalibration", *, copies: int = 2,
                     seed: int = 0, keep: tuple[float, float] = (0.1, 1.0),
                     extra_fwhm_ev: tuple[float, float] = (0.0, 60.0), offset_sd_kev: float = 0.005,
                     gain_rel_sd: float = 0.001, max_spectra: int | None = None
                     ) -> list[tuple[np.ndarray, "EnergyCalibration", np.ndarray]]:
    """Augmented copies of labelled raw spectra, as raw counts: one ``(counts, calibration, labels)`` per copy.

    Each copy thins every spectrum (keep probability log-uniform in ``keep``), widens its peaks
    by an extra FWHM uniform in ``extra_fwhm_ev`` (eV, added in quadrature) and is read with one
    jittered calibration (:func:`jitter_calibration`). ``max_spectra`` bounds the spectra per copy
    (a seeded subset). :func:`augment_labelled` turns them into model input.
    """
    spectra = np.asarray(spectra)
    labels = np.asarray(labels).astype(np.uint8)
    if spectra.ndim != 2 or labels.ndim != 2 or labels.shape[0] != spectra.shape[0]:
        raise ConfigError(f"expected spectra (n, C) and labels (n, K), got {spectra.shape} and {labels.shape}")
    if keep[0] <= 0 or keep[1] > 1 or keep[0] > keep[1]:
        raise ConfigError(f"keep must be (low, high) within (0, 1], got {keep}")
    rng = np.random.default_rng(seed)
    out = []
    n = spectra.shape[0]
    for _ in range(int(copies)):
        idx = np.arange(n) if max_spectra is None or max_spectra >= n else np.sort(rng.choice(n, max_spectra, replace=False))
        p = np.exp(rng.uniform(np.log(keep[0]), np.log(keep[1]), idx.size))
        c = thin_counts(spectra[idx], p, rng)
        fwhm_kev = rng.uniform(*extra_fwhm_ev, idx.size) * 1e-3
        c = broaden_counts(c, fwhm_kev / _FWHM_PER_SIGMA, calibration.gain_kev, rng)
        cal = jitter_calibration(calibration, rng, offset_sd_kev=offset_sd_kev, gain_rel_sd=gain_rel_sd)
        out.append((c, cal, labels[idx]))
    return out


def augment_labelled(spectra: np.ndarray, labels: np.ndarray, calibration: "EnergyCalibration",
                     config: "PreprocessConfig", *, copies: int = 2, seed: int = 0,
                     keep: tuple[float, float] = (0.1, 1.0), extra_fwhm_ev: tuple[float, float] = (0.0, 60.0),
                     offset_sd_kev: float = 0.005, gain_rel_sd: float = 0.001,
                     max_spectra: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Augmented copies of labelled raw spectra (:func:`augmented_counts`), as model input.

    Parameters
    ----------
    spectra : (n, n_channels) integer counts
    labels : (n, K)
    calibration : EnergyCalibration
        The scan's calibration.
    config : PreprocessConfig
        The model's preprocessing.
    copies : int
        Augmented copies per spectrum (0 returns empty arrays).
    seed : int
    keep, extra_fwhm_ev, offset_sd_kev, gain_rel_sd, max_spectra
        See :func:`augmented_counts`.

    Returns
    -------
    X : (n_out, grid.n_channels) float32
    Y : (n_out, K) uint8
    """
    copies_ = augmented_counts(spectra, labels, calibration, copies=copies, seed=seed, keep=keep,
                               extra_fwhm_ev=extra_fwhm_ev, offset_sd_kev=offset_sd_kev, gain_rel_sd=gain_rel_sd,
                               max_spectra=max_spectra)
    if not copies_:
        return np.zeros((0, config.grid.n_channels), np.float32), np.zeros((0, np.shape(labels)[1]), np.uint8)
    return (np.concatenate([model_inputs(c, cal, config) for c, cal, _ in copies_]),
            np.concatenate([y for _, _, y in copies_]))
