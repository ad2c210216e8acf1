"""Random training sets: sampled layer stacks, instruments and calibrations -> HDF5.

Each batch of ``batch_size`` spectra shares one energy calibration and one detector/tube setting
(so one peak-shape matrix renders it); stacks, count levels, scatter and background levels vary
per spectrum. Batch ``b`` draws everything from ``SeedSequence(seed).spawn(n_batches)[b]``, so
the file content depends only on ``seed`` and the config, not on the number of workers.

Mass fractions: sampled ones always sum to 1. User-given mixtures (:class:`xrfcore.physics.Layer`)
must sum to 1 within 1e-3, otherwise :class:`~xrfcore.errors.SimulationError` (no silent
normalisation).
"""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Callable

import numpy as np

from xrfcore.errors import ConfigError

#: Classes whose XRF-visible elements are the same (METHOD.md, known weaknesses).
SAME_ELEMENT_PARTNERS: dict[str, str] = {"PB": "IO", "IO": "PB", "LW": "RL", "RL": "LW", "CrG": "CrY", "CrY": "CrG"}

__all__ = ["SAME_ELEMENT_PARTNERS", "SimConfig", "sample_batch", "simulate_dataset", "pigment_matrix", "paint_stack_arrays",
           "smooth_background"]


@dataclass(frozen=True)
class SimConfig:
    """What a training set samples. Ranges are ``(low, high)``; thicknesses in um.

    ``paint_layers_p2``: probability of two paint layers (else one) over the ground.
    ``n_pigments_p``: probabilities of 1, 2, 3, 4 pigments in a layer. ``min_fraction``: the
    smallest pigment mass fraction in a mixture. ``eg_pair_p``: probability that the EG class is
    drawn as verdigris + sodium arsenite rather than emerald green itself.
    ``counts``: total counts per spectrum (log-uniform). ``gain_ev``: channel width; the gain is
    raised where needed so the axis reaches ``min_range_kev`` with ``n_channels``.
    ``class_weights``: relative odds of drawing each class into a layer (class abbreviation ->
    weight > 0; classes not named weigh 1). ``None`` draws every class equally often. This is the
    prior the model learns: where two classes give the same lines (LW/RL, PB/IO), the trained
    probabilities follow it.
    ``companions``: ``{A: {B: p}}``: when class A is drawn into a layer, class B joins that layer
    with probability p (if not drawn already), as pigments that are usually mixed in paint (red
    lead with lead white). Also a prior the model learns; ``None`` draws as earlier versions did.
    """

    n_channels: int = 4096
    batch_size: int = 512
    paint_layers_p2: float = 0.7
    n_pigments_p: tuple[float, ...] = (0.4, 0.25, 0.2, 0.15)
    min_fraction: float = 0.005
    eg_pair_p: float = 0.5
    top_um: tuple[float, float] = (10.0, 250.0)
    bottom_um: tuple[float, float] = (50.0, 200.0)
    ground_um: tuple[float, float] = (150.0, 200.0)
    counts: tuple[float, float] = (1e3, 1e6)
    tube_kv: tuple[float, float] = (35.0, 50.0)
    anode: str = "Rh"
    noise_ev: tuple[float, float] = (60.0, 110.0)
    scatter_scale: tuple[float, float] = (0.3, 3.0)
    background_level: tuple[float, float] = (0.0, 0.3)
    pileup_fraction: tuple[float, float] = (0.0, 0.004)
    offset_kev: tuple[float, float] = (-1.0, 0.0)
    gain_ev: tuple[float, float] = (5.0, 20.0)
    min_range_kev: float = 30.0
    secondary: bool = False
    class_weights: dict[str, float] | None = None
    companions: dict[str, dict[str, float]] | None = None

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, list):
                object.__setattr__(self, f.name, tuple(v))
        for name in ("top_um", "bottom_um", "ground_um", "counts", "tube_kv", "noise_ev", "scatter_scale",
                     "background_level", "pileup_fraction", "offset_kev", "gain_ev"):
            lo, hi = getattr(self, name)
            if not (math.isfinite(lo) and math.isfinite(hi)) or lo > hi:
                raise ConfigError(f"SimConfig.{name} must be (low, high) with low <= high, got {(lo, hi)}")
        for name in ("top_um", "bottom_um", "ground_um"):
            if getattr(self, name)[0] < 0:
                raise ConfigError(f"SimConfig.{name}: thickness must be >= 0 um, got {getattr(self, name)}")
        if self.counts[0] <= 0:
            raise ConfigError(f"SimConfig.counts must be > 0, got {self.counts}")
        if self.gain_ev[0] <= 0:
            raise ConfigError(f"SimConfig.gain_ev must be > 0 eV/channel, got {self.gain_ev}")
        if self.class_weights is not None:
            if not isinstance(self.class_weights, dict) or not self.class_weights:
                raise ConfigError("SimConfig.class_weights must be a non-empty mapping class -> weight, or null")
            for k, w in self.class_weights.items():
                if not isinstance(w, (int, float)) or not math.isfinite(w) or w <= 0:
                    raise ConfigError(f"SimConfig.class_weights[{k!r}] must be a number > 0, got {w!r}")
        if self.companions is not None:
            if not isinstance(self.companions, dict):
                raise ConfigError("SimConfig.companions must be a mapping class -> {class: probability}, or null")
            for a, inner in self.companions.items():
                if not isinstance(inner, dict) or not inner:
                    raise ConfigError(f"SimConfig.companions[{a!r}] must be a non-empty mapping class -> probability")
                for b, q in inner.items():
                    if b == a or not isinstance(q, (int, float)) or not 0 <= q <= 1:
                        raise ConfigError(f"SimConfig.companions[{a!r}][{b!r}] must be a probability in [0, 1] "
                                          f"for another class, got {q!r}")
        p = np.asarray(self.n_pigments_p, dtype=float)
        if p.size < 1 or np.any(p < 0) or abs(p.sum() - 1) > 1e-6:
            raise ConfigError(f"SimConfig.n_pigments_p must be probabilities summing to 1, got {self.n_pigments_p}")
        if not 0 < self.min_fraction < 1 / p.size:
            raise ConfigError(f"SimConfig.min_fraction must be in (0, {1 / p.size}), got {self.min_fraction}")
        if self.n_channels < 256 or self.batch_size < 1:
            raise ConfigError("SimConfig.n_channels must be >= 256 and batch_size >= 1")
        if self.tube_kv[0] < 5:
            raise ConfigError(f"SimConfig.tube_kv {self.tube_kv} is below every useful edge; use 35-50 kV")
        if self.offset_kev[0] + self.gain_ev[1] * 1e-3 * self.n_channels < self.min_range_kev:
            raise ConfigError(f"SimConfig: {self.n_channels} channels of at most {self.gain_ev[1]} eV cannot "
                              f"reach {self.min_range_kev} keV; raise gain_ev or n_channels")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "SimConfig":
        """Config from its dict; ConfigError names unknown keys.

        ``partner_twins_p: 0`` (recorded by training files of earlier versions, where that
        unshipped experiment was off) is accepted and ignored.
        """
        d = dict(d)
        if d.get("partner_twins_p", 0) in (0, 0.0):
            d.pop("partner_twins_p", None)
        known = {f.name for f in fields(cls)}
        bad = sorted(set(d) - known)
        if bad:
            raise ConfigError(f"unknown simulation config keys {bad}; known keys: {sorted(known)}")
        return cls(**{k: tuple(v) if isinstance(v, list) else
                      {a: dict(b) if isinstance(b, dict) else b for a, b in v.items()} if isinstance(v, dict) else v
                      for k, v in d.items()})

    @classmethod
    def from_json(cls, path: str | Path) -> "SimConfig":
        try:
            d = json.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"simulation config {path} not found") from None
        except json.JSONDecodeError as exc:
            raise ConfigError(f"simulation config {path} is not valid JSON: {exc}") from None
        if not isinstance(d, dict):
            raise ConfigError(f"simulation config {path} must hold a JSON object")
        return cls.from_dict(d)

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    def class_probabilities(self, classes: list[str]) -> np.ndarray | None:
        """Draw probabilities of ``classes`` (``None`` when uniform).

        Raises
        ------
        ConfigError
            If ``class_weights`` names a class the library does not have.
        """
        if self.class_weights is None:
            return None
        unknown = sorted(set(self.class_weights) - set(classes))
        if unknown:
            raise ConfigError(f"SimConfig.class_weights names {unknown}, which are not classes of the pigment "
                              f"library ({', '.join(classes)})")
        w = np.array([float(self.class_weights.get(c, 1.0)) for c in classes])
        return w / w.sum()

    def companion_table(self, classes: list[str]) -> dict[int, list[tuple[int, float]]] | None:
        """``{index of A: [(index of B, p), ...]}`` over ``classes`` (``None`` without companions).

        Raises
        ------
        ConfigError
            If ``companions`` names a class the library does not have.
        """
        if not self.companions:
            return None
        named = set(self.companions) | {b for inner in self.companions.values() for b in inner}
        unknown = sorted(named - set(classes))
        if unknown:
            raise ConfigError(f"SimConfig.companions names {unknown}, which are not classes of the pigment "
                              f"library ({', '.join(classes)})")
        return {classes.index(a): [(classes.index(b), float(q)) for b, q in sorted(inner.items())]
                for a, inner in sorted(self.companions.items())}


def pigment_matrix(library, elements: tuple[str, ...]):
    """Pigment abbreviations, element mass fractions ``(n_pig, n_el)`` and densities ``(n_pig,)``."""
    names = [p.abbr for p in library.pigments]
    m = np.zeros((len(names), len(elements)))
    for i, p in enumerate(library.pigments):
        for el, f in p.elements().items():
            m[i, elements.index(el)] = f
    rho = np.array([p.density_g_cm3 for p in library.pigments])
    return names, m, rho


def paint_stack_arrays(upper: np.ndarray, upper_um: np.ndarray, lower: np.ndarray, lower_um: np.ndarray,
                 ground_um: np.ndarray, library, pm: np.ndarray, rho: np.ndarray, names: list[str],
                 two: np.ndarray | None = None):
    """Element mass fractions ``(n, 3, n_el)`` and mass thicknesses ``(n, 3)`` (g/cm2) of paint stacks.

    ``upper``/``lower``: pigment mass fractions ``(n, n_pigments)`` of the two paint layers; rows
    where ``two`` is False (default: where ``lower_um == 0``) have one paint layer over the ground.
    Thicknesses in um. Paint is pigment:binder by the library's mass ratio; its density follows
    the volume-additive rule. ``pm``, ``rho``, ``names``: :func:`~xrfcore.simulate.dataset.pigment_matrix`.
    """
    n = upper.shape[0]
    two = np.asarray(lower_um) > 0 if two is None else np.asarray(two, dtype=bool)
    bw = 1.0 / (1.0 + library.pigment_to_binder_mass_ratio)
    ib = names.index(library.binder)
    ig = names.index(library.ground)

    def paint(frac):
        el = (1 - bw) * frac @ pm + bw * pm[ib][None, :]
        dens = 1.0 / ((1 - bw) * (frac / rho[None, :]).sum(axis=1) + bw / rho[ib])
        return el, dens

    el_u, d_u = paint(upper)
    el_b, d_b = paint(np.where(two[:, None], lower, upper))  # one-layer rows are placeholders
    mf = np.zeros((n, 3, pm.shape[1]))
    rt = np.zeros((n, 3))
    mf[:, 0], rt[:, 0] = el_u, d_u * upper_um * 1e-4
    mf[two, 1], rt[two, 1] = el_b[two], d_b[two] * lower_um[two] * 1e-4
    gi = np.where(two, 2, 1)
    mf[np.arange(n), gi] = pm[ig]
    rt[np.arange(n), gi] = rho[ig] * ground_um * 1e-4
    return mf, rt


def smooth_background(energy_kev: np.ndarray, rng: np.random.Generator, n: int) -> np.ndarray:
    """Random smooth background shapes ``(n, n_channels)``, each summing to 1 over 1-30 keV.

    A skewed hump (log-normal in energy) peaking at 3-12 keV with a random width: the shape left by
    incomplete charge collection, scatter from the support and the tube's L lines on real scanners.
    """
    e = np.clip(energy_kev, 1e-3, None)[None, :]
    peak = rng.uniform(3.0, 12.0, (n, 1))
    width = rng.uniform(0.35, 0.8, (n, 1))
    rolloff = 1.0 / (1.0 + np.exp(-(energy_kev - 1.4) / 0.12))  # detector window, no hard edge
    b = np.exp(-0.5 * ((np.log(e) - np.log(peak)) / width) ** 2) * rolloff[None, :]
    b[:, energy_kev > 30.0] = 0.0
    return b / np.maximum(b.sum(axis=1, keepdims=True), 1e-30)


def _sample_layer(rng, k_p, classes, by_class, min_fraction, eg_pair_p, n_pig, class_p=None, companions=None):
    k = int(rng.choice(len(k_p), p=k_p)) + 1
    # without class_p / companions the draw is the one of earlier versions, so old seeds give the same sets
    chosen = rng.choice(len(classes), size=k, replace=False) if class_p is None else \
        rng.choice(len(classes), size=k, replace=False, p=class_p)
    if companions:
        extra = [b for a in chosen for b, q in companions.get(int(a), ()) if rng.random() < q]
        chosen = np.concatenate([chosen, [b for b in dict.fromkeys(extra) if b not in chosen]]).astype(int)
        k = chosen.size
    raw = rng.dirichlet(np.full(k, 0.7))
    raw = np.maximum(raw, min_fraction)
    raw = raw / raw.sum()
    frac = np.zeros(n_pig)
    for c, w in zip(chosen, raw):
        opts = by_class[classes[c]]
        if classes[c] == "EG" and "pair" in opts and rng.random() < eg_pair_p:
            split = rng.uniform(0.3, 0.7)
            vg, sa = opts["pair"]
            frac[vg] += w * split
            frac[sa] += w * (1 - split)
        else:
            frac[opts["single"]] += w
    return frac


def sample_batch(config: SimConfig, seed_seq: np.random.SeedSequence, n: int, library) -> dict[str, np.ndarray]:
    """Sample and simulate ``n`` spectra sharing one calibration and detector setting.

    Returns a dict of arrays: ``spectra`` (n, C) uint32, ``calibration`` (n, 3), ``labels``,
    ``labels_top``, ``labels_bottom`` (n, K) uint8, ``layer_photons`` (n, 2, n_elements) float32
    (expected photons each element of the upper (0) and lower (1) paint layer puts into the spectrum;
    elements in :func:`xrfcore.physics.library_elements` order), and ``params/<name>`` arrays.
    """
    from xrfcore.physics import Instrument, finish_spectra, layer_photons, library_elements, render_stacks
    from xrfcore.scan import EnergyCalibration

    rng = np.random.default_rng(seed_seq)
    cfg = config
    elements = library_elements(library)
    names, pm, rho = pigment_matrix(library, elements)
    classes = list(library.classes)
    by_class: dict[str, dict] = {}
    for c in classes:
        members = [i for i, p in enumerate(library.pigments) if p.label == c]
        if not members:
            raise ConfigError(f"class {c} has no pigment in the library")
        single = next((i for i in members if library.pigments[i].abbr == c), members[0])
        by_class[c] = {"single": single}
        if c == "EG" and {"VG", "SA"} <= {library.pigments[i].abbr for i in members}:
            by_class[c]["pair"] = (names.index("VG"), names.index("SA"))
    n_pig = len(names)
    k_p = np.asarray(cfg.n_pigments_p, dtype=float)
    class_p = cfg.class_probabilities(classes)
    comp = cfg.companion_table(classes)

    # instrument and calibration of the batch
    kv = float(rng.integers(int(cfg.tube_kv[0]), int(cfg.tube_kv[1]) + 1))
    noise = float(rng.uniform(*cfg.noise_ev))
    offset = float(rng.uniform(*cfg.offset_kev))
    need = (cfg.min_range_kev - offset) / cfg.n_channels * 1e3
    gain_ev = float(rng.uniform(max(cfg.gain_ev[0], need), max(cfg.gain_ev[1], need)))
    cal = EnergyCalibration(round(offset, 6), round(gain_ev * 1e-3, 8))
    ins = Instrument(anode=cfg.anode, tube_kv=kv, noise_ev=noise, secondary=cfg.secondary)

    # stacks
    two = rng.random(n) < cfg.paint_layers_p2
    top = np.stack([_sample_layer(rng, k_p, classes, by_class, cfg.min_fraction, cfg.eg_pair_p, n_pig, class_p, comp)
                    for _ in range(n)])
    bottom = np.stack([_sample_layer(rng, k_p, classes, by_class, cfg.min_fraction, cfg.eg_pair_p, n_pig, class_p,
                                     comp) for _ in range(n)])
    bottom[~two] = 0.0
    top_um = rng.uniform(*cfg.top_um, n)
    bottom_um = np.where(two, rng.uniform(*cfg.bottom_um, n), 0.0)
    ground_um = rng.uniform(*cfg.ground_um, n)
    counts = np.exp(rng.uniform(np.log(cfg.counts[0]), np.log(cfg.counts[1]), n))
    scatter = np.exp(rng.uniform(np.log(max(cfg.scatter_scale[0], 1e-6)), np.log(max(cfg.scatter_scale[1], 1e-6)), n))
    bg_level = rng.uniform(*cfg.background_level, n)
    pileup = rng.uniform(*cfg.pileup_fraction, n)

    mf, rt = paint_stack_arrays(top, top_um, bottom, bottom_um, ground_um, library, pm, rho, names, two)
    spec, layer_lines = render_stacks(mf, rt, elements, ins, cal, cfg.n_channels, scatter_scale=scatter,
                                      dtype=np.float32, layer_elements=True)
    bg = smooth_background(cal.energies(cfg.n_channels), rng, n) * bg_level[:, None]
    spectra = finish_spectra(spec, cal, pileup_fraction=pileup, background=bg, total_counts=counts, rng=rng)
    # expected photons each paint layer's elements put into the spectrum (what makes a label detectable)
    photons = layer_photons(layer_lines, spec.sum(axis=1), counts, bg.sum(axis=1), two)

    label_of = np.zeros((n_pig, len(classes)), dtype=np.uint8)
    for i, p in enumerate(library.pigments):
        if p.label in classes:
            label_of[i, classes.index(p.label)] = 1
    lt = ((top > 0).astype(np.uint8) @ label_of > 0).astype(np.uint8)
    lb = ((bottom > 0).astype(np.uint8) @ label_of > 0).astype(np.uint8)
    return {
        "spectra": spectra,
        "calibration": np.tile([cal.offset_kev, cal.gain_kev, cal.quadratic_kev], (n, 1)),
        "labels": (lt | lb),
        "labels_top": lt,
        "labels_bottom": lb,
        "layer_photons": photons.astype(np.float32),
        "params/top_fractions": top.astype(np.float32),
        "params/bottom_fractions": bottom.astype(np.float32),
        "params/n_paint_layers": np.where(two, 2, 1).astype(np.uint8),
        "params/top_um": top_um.astype(np.float32),
        "params/bottom_um": bottom_um.astype(np.float32),
        "params/ground_um": ground_um.astype(np.float32),
        "params/total_counts": counts.astype(np.float64),
        "params/tube_kv": np.full(n, kv, np.float32),
        "params/noise_ev": np.full(n, noise, np.float32),
        "params/scatter_scale": scatter.astype(np.float32),
        "params/background_level": bg_level.astype(np.float32),
        "params/pileup_fraction": pileup.astype(np.float32),
    }


def _work(args):
    config_dict, library_path, entropy, index, n = args
    from xrfcore.library import load_library

    lib = load_library(library_path)
    ss = np.random.SeedSequence(entropy).spawn(index + 1)[index]
    return index, sample_batch(SimConfig.from_dict(config_dict), ss, n, lib)


def simulate_dataset(out: str | Path, *, n: int, seed: int, config: SimConfig | None = None, workers: int = 2,
                     library_path: str | Path | None = None,
                     progress: Callable[[int, int], None] | None = None) -> Path:
    """Simulate ``n`` spectra into an HDF5 training file (written atomically).

    Layout: ``spectra`` (N, C) uint32, ``calibration`` (N, 3) [offset_keV, gain_keV, quadratic_keV],
    ``labels``/``labels_top``/``labels_bottom`` (N, K) uint8, ``label_names`` (K,), ``pigment_names``,
    ``layer_photons`` (N, 2, E) float32 with ``photon_elements`` (E,), ``params/...``; attrs ``seed``,
    ``library_version``, ``config`` (JSON), ``n_channels``.

    Raises
    ------
    ConfigError
        For ``n < 1`` or a bad config.
    """
    import h5py

    from xrfcore.atomic import atomic_path
    from xrfcore.library import load_library
    from xrfcore.physics import library_elements

    cfg = config or SimConfig()
    if n < 1:
        raise ConfigError(f"number of spectra must be >= 1, got {n}")
    lib = load_library(library_path)
    cfg.class_probabilities(list(lib.classes))  # unknown class names fail before any work
    cfg.companion_table(list(lib.classes))
    lib_path = str(library_path) if library_path is not None else None
    sizes = [min(cfg.batch_size, n - a) for a in range(0, n, cfg.batch_size)]
    jobs = [(cfg.to_dict(), lib_path, int(seed), i, s) for i, s in enumerate(sizes)]
    starts = np.concatenate([[0], np.cumsum(sizes)])
    out = Path(out)
    t0 = time.time()
    with atomic_path(out) as tmp, h5py.File(tmp, "w") as f:
        f.attrs["seed"] = int(seed)
        f.attrs["library_version"] = int(lib.version)
        f.attrs["config"] = json.dumps(cfg.to_dict(), sort_keys=True)
        f.attrs["n_channels"] = cfg.n_channels
        f.create_dataset("label_names", data=np.array(lib.classes, dtype=h5py.string_dtype()))
        f.create_dataset("pigment_names", data=np.array([p.abbr for p in lib.pigments], dtype=h5py.string_dtype()))
        f.create_dataset("photon_elements", data=np.array(library_elements(lib), dtype=h5py.string_dtype()))
        done = 0
        for index, batch in _run_jobs(jobs, workers):
            a, b = starts[index], starts[index + 1]
            for key, arr in batch.items():
                if key not in f:
                    chunks = (min(cfg.batch_size, n),) + arr.shape[1:]
                    f.create_dataset(key, shape=(n,) + arr.shape[1:], dtype=arr.dtype, chunks=chunks,
                                     compression="gzip", compression_opts=1, shuffle=True)
                f[key][a:b] = arr
            done += b - a
            if progress:
                progress(done, n)
            else:
                rate = done / max(time.time() - t0, 1e-9)
                print(f"\rsimulated {done}/{n} spectra ({rate:.0f}/s)", end="", file=sys.stderr, flush=True)
        if not progress:
            print(file=sys.stderr)
    return out


def _run_jobs(jobs, workers):
    if workers <= 1 or len(jobs) == 1:
        for j in jobs:
            yield _work(j)
        return
    import multiprocessing as mp

    with mp.get_context("spawn").Pool(min(workers, len(jobs))) as pool:
        yield from pool.imap_unordered(_work, jobs)
