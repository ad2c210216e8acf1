"""Simulated spectra for finetuning: the labelled stacks themselves, and rehearsal of pretraining.

The user states, for every labelled region, which pigments are in its top and its bottom paint
layer. :func:`simulate_stacks` makes spectra of exactly those pigment sets in that layer order,
over sampled mass fractions, thicknesses, count levels and detector settings, on the scan's own
energy calibration, with the scan's own background shape (the SNIP background of its mean
spectrum, the way Xu et al. 2022 added a measured background to their simulations). Training on
them next to the measured pixels teaches the model the *physics* of those mixtures (a pigment
under a thick absorbing top gives few photons; its lines, not the region, carry the label)
instead of the regions' look.

:func:`rehearsal_spectra` draws generic training-set spectra (:func:`xrfcore.simulate.dataset.sample_batch`)
on the scan's calibration, so finetuning keeps seeing what pretraining saw (rehearsal against
forgetting).

Both return raw integer counts ``(n, n_channels)`` and labels ``(n, K)`` in the library's
class order; preprocessing is the caller's (:func:`xrfcore.model.augment.model_inputs`).
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any, Sequence

import numpy as np

from xrfcore.errors import SimulationError

__all__ = ["region_stacks", "scan_background_fraction", "simulate_stacks", "rehearsal_spectra"]


def region_stacks(labels_top: np.ndarray, labels_bottom: np.ndarray, region_index: np.ndarray,
                  classes: Sequence[str], *, pixels: np.ndarray | None = None) -> list[tuple[tuple[str, ...], tuple[str, ...]]]:
    """Distinct (top classes, bottom classes) pairs of the labelled regions (or of some pixels).

    Parameters
    ----------
    labels_top, labels_bottom : (H, W, K) uint8
    region_index : (H, W) int
        -1 where unlabelled.
    classes : sequence of str
    pixels : (H, W) bool, optional
        Only regions with a pixel here (e.g. the training pixels).

    Returns
    -------
    list of (tuple of str, tuple of str)
        Sorted; regions without any pigment are left out.
    """
    sel = region_index >= 0
    if pixels is not None:
        sel &= np.asarray(pixels, dtype=bool)
    code = np.concatenate([labels_top[sel], labels_bottom[sel]], axis=-1).astype(bool)
    k = len(classes)
    out = set()
    for row in np.unique(code, axis=0):
        top = tuple(c for j, c in enumerate(classes) if row[j])
        bottom = tuple(c for j, c in enumerate(classes) if row[k + j])
        if top or bottom:
            out.add((top, bottom) if top else (bottom, ()))
    return sorted(out)


def scan_background_fraction(spectra: np.ndarray, calibration, *, width_kev: float = 0.3) -> np.ndarray:
    """The scan's background as fractions of the total counts per channel, ``(n_channels,)``.

    SNIP background of the mean of ``spectra`` (:func:`xrfcore.preprocess.mean_background`)
    divided by the mean total counts: what :func:`xrfcore.physics.finish_spectra` takes.
    """
    from xrfcore.preprocess import mean_background

    spectra = np.asarray(spectra, dtype=np.float64)
    bg = mean_background(spectra, calibration, width_kev=width_kev)
    total = spectra.sum(axis=-1).mean()
    if total <= 0:
        raise SimulationError("the spectra hold no counts; cannot estimate a background")
    return np.clip(bg, 0.0, None) / total


def _class_members(library, classes: Sequence[str]) -> dict[str, dict[str, Any]]:
    names = [p.abbr for p in library.pigments]
    out: dict[str, dict[str, Any]] = {}
    for c in classes:
        members = [i for i, p in enumerate(library.pigments) if p.label == c]
        if not members:
            raise SimulationError(f"class {c!r} has no pigment in the library; cannot simulate it")
        single = next((i for i in members if library.pigments[i].abbr == c), members[0])
        out[c] = {"single": single}
        if c == "EG" and {"VG", "SA"} <= {library.pigments[i].abbr for i in members}:
            out[c]["pair"] = (names.index("VG"), names.index("SA"))
    return out


def _fractions(rng, chosen: Sequence[str], members, n_pig: int, min_fraction: float) -> np.ndarray:
    frac = np.zeros(n_pig)
    if not chosen:
        return frac
    w = rng.dirichlet(np.full(len(chosen), 0.7))
    w = np.maximum(w, min_fraction)
    w /= w.sum()
    for c, x in zip(chosen, w):
        m = members[c]
        if "pair" in m and rng.random() < 0.5:
            s = rng.uniform(0.3, 0.7)
            frac[m["pair"][0]] += x * s
            frac[m["pair"][1]] += x * (1 - s)
        else:
            frac[m["single"]] += x
    return frac


def simulate_stacks(stacks: Sequence[tuple[Sequence[str], Sequence[str]]], calibration, n_channels: int, *,
                    n_per_stack: int = 64, seed: int = 0, counts: tuple[float, float] = (3e3, 1e5),
                    top_um: tuple[float, float] = (20.0, 200.0), bottom_um: tuple[float, float] = (50.0, 200.0),
                    ground_um: tuple[float, float] = (150.0, 200.0), noise_ev: tuple[float, float] = (60.0, 160.0),
                    tube_kv: float = 40.0, background: np.ndarray | None = None,
                    background_scale: tuple[float, float] = (0.5, 1.5), min_fraction: float = 0.02,
                    batch_size: int = 256, library=None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Spectra of the stated pigment sets in the stated layer order, on one scan's calibration.

    Parameters
    ----------
    stacks : sequence of (top classes, bottom classes)
        Class abbreviations per paint layer (:func:`region_stacks`); an empty bottom means one
        paint layer over the ground.
    calibration : EnergyCalibration
        The scan's.
    n_channels : int
        The scan's.
    n_per_stack : int
        Spectra per stack.
    seed : int
    counts : (low, high)
        Total counts per spectrum, log-uniform (use the scan's own range).
    top_um, bottom_um, ground_um : (low, high)
        Thickness ranges (um); a one-layer stack's paint layer uses ``bottom_um``.
    noise_ev : (low, high)
        Detector electronic noise (FWHM, eV), one value per batch.
    tube_kv : float
    background : (n_channels,) ndarray, optional
        Background as fractions of the total counts (:func:`scan_background_fraction`), scaled
        per spectrum by a factor uniform in ``background_scale``; a random smooth hump
        (:func:`xrfcore.simulate.dataset.smooth_background`, 0-30 %) when None.
    min_fraction : float
        Smallest mass fraction of a stated pigment in its layer.
    batch_size : int
        Spectra per rendered batch (one detector setting each).
    library : PigmentLibrary, optional

    Returns
    -------
    spectra : (n, n_channels) uint32
    labels : (n, K) uint8
        Presence in any layer, class order of the library.
    classes : list of str

    Raises
    ------
    SimulationError
        For an empty stack list or an unknown class.
    """
    from xrfcore.library import load_library
    from xrfcore.physics import Instrument, finish_spectra, library_elements, render_stacks
    from xrfcore.simulate.dataset import paint_stack_arrays, pigment_matrix, smooth_background

    lib = library if library is not None else load_library()
    classes = list(lib.classes)
    stacks = [(tuple(t), tuple(b)) for t, b in stacks if t or b]
    if not stacks or n_per_stack < 1:
        raise SimulationError("no labelled stacks to simulate (every region is empty, or n_per_stack < 1)")
    unknown = sorted({c for t, b in stacks for c in (*t, *b)} - set(classes))
    if unknown:
        raise SimulationError(f"unknown classes {unknown}; the library's classes are {', '.join(classes)}")
    rng = np.random.default_rng(seed)
    elements = library_elements(lib)
    names, pm, rho = pigment_matrix(lib, elements)
    members = _class_members(lib, classes)
    n = len(stacks) * int(n_per_stack)
    which = np.repeat(np.arange(len(stacks)), int(n_per_stack))
    upper = np.zeros((n, len(names)))
    lower = np.zeros((n, len(names)))
    labels = np.zeros((n, len(classes)), np.uint8)
    for i, s in enumerate(which):
        top, bottom = stacks[s]
        upper[i] = _fractions(rng, top, members, len(names), min_fraction)
        lower[i] = _fractions(rng, bottom, members, len(names), min_fraction)
        labels[i, [classes.index(c) for c in (*top, *bottom)]] = 1
    two = lower.sum(axis=1) > 0
    upper_um = np.where(two, rng.uniform(*top_um, n), rng.uniform(*bottom_um, n))
    lower_um = np.where(two, rng.uniform(*bottom_um, n), 0.0)
    g_um = rng.uniform(*ground_um, n)
    mf, rt = paint_stack_arrays(upper, upper_um, lower, lower_um, g_um, lib, pm, rho, names, two)
    total = np.exp(rng.uniform(math.log(counts[0]), math.log(counts[1]), n))
    energies = calibration.energies(n_channels)
    out = np.empty((n, n_channels), np.uint32)
    order = rng.permutation(n)  # batches mix stacks, so every stack sees several detectors
    for a in range(0, n, batch_size):
        idx = order[a:a + batch_size]
        ins = Instrument(anode="Rh", tube_kv=float(tube_kv), noise_ev=float(rng.uniform(*noise_ev)), secondary=True,
                         pileup_fraction=float(rng.uniform(0.0, 0.004)))
        scatter = np.exp(rng.uniform(math.log(0.3), math.log(3.0), idx.size))
        spec = render_stacks(mf[idx], rt[idx], elements, ins, calibration, n_channels, scatter_scale=scatter,
                             dtype=np.float32)
        if background is not None:
            bg = np.asarray(background, dtype=np.float64)[None, :] * rng.uniform(*background_scale, (idx.size, 1))
        else:
            bg = smooth_background(energies, rng, idx.size) * rng.uniform(0.0, 0.3, (idx.size, 1))
        out[idx] = finish_spectra(spec, calibration, pileup_fraction=ins.pileup_fraction, background=bg,
                                  total_counts=total[idx], rng=rng)
    return out, labels, classes


def rehearsal_spectra(n: int, calibration, n_channels: int, *, seed: int = 0, config=None,
                      library=None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Generic training-set spectra (random stacks of the whole library) on one calibration.

    Parameters
    ----------
    n : int
        Number of spectra.
    calibration : EnergyCalibration
        The scan's (every spectrum uses it, so the peaks sit where the scan has them).
    n_channels : int
    seed : int
    config : SimConfig, optional
        Sampling ranges (default :class:`~xrfcore.simulate.dataset.SimConfig` with secondary
        fluorescence on and detector noise 60-160 eV, like the shipped model's training set);
        its calibration ranges are replaced by ``calibration``.
    library : PigmentLibrary, optional

    Returns
    -------
    spectra : (n, n_channels) uint32
    labels : (n, K) uint8
    classes : list of str
    """
    from xrfcore.library import load_library
    from xrfcore.simulate.dataset import SimConfig, sample_batch

    lib = library if library is not None else load_library()
    if n < 1:
        raise SimulationError(f"number of rehearsal spectra must be >= 1, got {n}")
    base = config or SimConfig(noise_ev=(60.0, 160.0), secondary=True, background_level=(0.0, 0.4),
                               counts=(3e3, 1e6))
    top_kev = calibration.offset_kev + calibration.gain_kev * n_channels
    gain_ev = calibration.gain_kev * 1e3
    cfg = replace(base, n_channels=int(n_channels), offset_kev=(calibration.offset_kev, calibration.offset_kev),
                  gain_ev=(gain_ev, gain_ev), min_range_kev=min(base.min_range_kev, top_kev - 1e-6))
    sizes = [min(cfg.batch_size, n - a) for a in range(0, n, cfg.batch_size)]
    seqs = np.random.SeedSequence(seed).spawn(len(sizes))
    specs, labs = [], []
    for size, ss in zip(sizes, seqs):
        b = sample_batch(cfg, ss, size, lib)
        specs.append(b["spectra"])
        labs.append(b["labels"])
    return np.concatenate(specs), np.concatenate(labs), list(lib.classes)
