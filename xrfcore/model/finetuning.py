"""Finetuning that is scored honestly and keeps what pretraining knew.

:func:`finetune_labelled` takes the labelled pixels of one or more scans, splits them
(:mod:`xrfcore.model.splits`: whole regions by default, or random pixels), holds out validation
regions of the training part for early stopping, builds the training set and finetunes
(:func:`xrfcore.model.finetune`). The training set is

* the labelled training pixels,
* ``augment_copies`` augmented copies of them (:func:`xrfcore.model.augment.augment_labelled`:
  binomial thinning, peak broadening, calibration jitter),
* ``simulate_per_stack`` simulated spectra of every stated (top, bottom) pigment set of the
  training regions (:func:`xrfcore.simulate.labelled.simulate_stacks`), on the scan's
  calibration, count range and background,
* ``rehearsal_ratio`` x (number of training pixels) generic simulated spectra on the scan's
  calibration (:func:`xrfcore.simulate.labelled.rehearsal_spectra`).

The base and the finetuned model are then scored on the same test pixels (never trained on); the
report lists pigments where the finetuned model is worse than the base model
(``worse_than_base``) and carries every warning. With ``keep_base_where_worse`` the saved model
gives, per pigment, ``w * finetuned + (1 - w) * base`` with ``w`` in {0, 0.25, 0.5, 0.75, 1}
chosen on the *validation* regions: the lowest loss among the weights whose F1 is not below the
base model's (:func:`choose_output_weights`, :func:`merge_outputs`); ``w = 0`` keeps the base
model's output where finetuning did not help on regions it did not train on. The choice never
looks at the test pixels.

Nothing here reads or writes files; :func:`labelled_scan` gathers one scan's labelled pixels.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Sequence

import numpy as np

from xrfcore.errors import ConfigError, LabelError
from xrfcore.model.augment import model_inputs
from xrfcore.model.config import FinetuneConfig
from xrfcore.model.splits import Split, pixel_groups, split_by_region, split_pixels, split_summary
from xrfcore.model.metrics import f1_per_class

__all__ = ["LabelledScan", "labelled_scan", "finetune_labelled", "merge_outputs", "choose_output_weights",
           "compare_metrics", "judge_against_base", "MIX_GRID", "extra_raw", "validation_split", "SplitPlan",
           "plan_split", "finetune_report"]

ProgressFn = Callable[[int, dict], None]


@dataclass
class LabelledScan:
    """The labelled pixels of one scan, raw.

    Attributes
    ----------
    spectra : (n, n_channels) raw counts of the labelled pixels (row-major pixel order)
    labelset : LabelSet
    calibration : EnergyCalibration
    source : dict
        Description for reports (paths, names).
    metadata : ScanMetadata or None
        The scan's metadata (tube voltage: the element evidence of these pixels is fitted with it, as
        inference on the scan does).
    """

    spectra: np.ndarray
    labelset: Any
    calibration: Any
    source: dict[str, Any] = field(default_factory=dict)
    metadata: Any = None

    @property
    def labels(self) -> np.ndarray:
        return self.labelset.pixel_labels()


def labelled_scan(scan: Any, labelset: Any, *, source: dict[str, Any] | None = None) -> LabelledScan:
    """Read the labelled pixels of ``scan`` (row chunks; memory grows with the labelled pixels only)."""
    from xrfcore.model.predict import pixel_spectra

    return LabelledScan(pixel_spectra(scan, labelset.mask), labelset, scan.calibration, dict(source or {}),
                        metadata=scan.metadata)


def merge_outputs(finetuned: Any, base: Any, finetuned_weight: Sequence[float]) -> Any:
    """One Keras model whose output k is ``w_k * finetuned_k + (1 - w_k) * base_k``.

    ``w_k = 0`` gives the base model's output, ``1`` the finetuned one's. Built from built-in
    layers only (the two networks, a Concatenate and a fixed Dense), so it saves and loads in
    safe mode like any pigment model. Inference costs two networks.
    """
    import keras

    from xrfcore.model.architecture import uncompiled_copy, weighted_outputs

    w_ft = np.asarray(finetuned_weight, dtype=np.float32)
    k = int(finetuned.output_shape[-1])
    if w_ft.shape != (k,) or np.any(w_ft < 0) or np.any(w_ft > 1):
        raise ConfigError(f"need one weight in [0, 1] per output ({k}), got {np.asarray(finetuned_weight)!r}")
    ft = uncompiled_copy(finetuned, "finetuned")
    bs = uncompiled_copy(base, "base")
    inp = keras.Input(shape=finetuned.input_shape[1:], name="spectrum")
    out = weighted_outputs([ft(inp), bs(inp)], [w_ft, 1.0 - w_ft], concat_name="both_outputs",
                           mix_name="base_where_worse")
    return keras.Model(inp, out, name="finetuned_with_base_outputs")


#: Weights of the finetuned output tried per pigment by :func:`choose_output_weights`.
MIX_GRID = (0.0, 0.25, 0.5, 0.75, 1.0)


def choose_output_weights(y_true: np.ndarray, p_base: np.ndarray, p_finetuned: np.ndarray, *,
                          grid: Sequence[float] = MIX_GRID, threshold: float = 0.5) -> np.ndarray:
    """Per pigment, the weight of the finetuned output (from ``grid``) chosen on validation pixels.

    Candidates are the weights whose mixed output ``w p_finetuned + (1 - w) p_base`` has a
    validation F1 (at ``threshold``) no lower than the base model's (``w = 0`` always qualifies);
    among them the one with the lowest binary cross-entropy wins, ties going to the larger weight.
    So a pigment that finetuning did not help on regions it never trained on keeps the base
    model's output.

    Examples
    --------
    >>> y = np.array([[1, 0], [0, 1]])
    >>> choose_output_weights(y, np.array([[0.9, 0.1], [0.1, 0.9]]), np.array([[0.95, 0.9], [0.05, 0.1]])).tolist()
    [1.0, 0.0]
    """
    y = np.asarray(y_true).astype(bool)
    pb = np.asarray(p_base, dtype=np.float64)
    pf = np.asarray(p_finetuned, dtype=np.float64)

    def f1(p: np.ndarray) -> np.ndarray:
        return f1_per_class(p >= threshold, y)

    f1_base = f1(pb)
    best = np.zeros(y.shape[1])
    best_loss = np.full(y.shape[1], np.inf)
    for w in sorted(set(grid) | {0.0}, reverse=True):
        p = w * pf + (1 - w) * pb
        pc = np.clip(p, 1e-7, 1 - 1e-7)
        loss = -(y * np.log(pc) + (~y) * np.log(1 - pc)).mean(axis=0)
        better = (f1(p) >= f1_base - 1e-12) & (loss < best_loss - 1e-12)
        best[better], best_loss[better] = w, loss[better]
    return best


def compare_metrics(before: dict[str, Any], after: dict[str, Any], *, tolerance: float = 0.0) -> list[str]:
    """Pigments (with test positives or false positives) whose F1 after is below before - tolerance."""
    worse = []
    for c, b in before["per_pigment"].items():
        a = after["per_pigment"][c]
        scored = b["support"] > 0 or b["fp"] > 0 or a["fp"] > 0
        if scored and a["f1"] < b["f1"] - tolerance:
            worse.append(c)
    return worse


def judge_against_base(before: dict[str, Any], after: dict[str, Any],
                       log: Callable[[str], None]) -> tuple[list[str], list[str]]:
    """``(worse, warnings)``: pigments whose F1 on the test pixels is below the base model's, and the
    warning that says so (logged)."""
    worse = compare_metrics(before, after)
    warnings = []
    if worse:
        msg = ("the finetuned model scores BELOW the base model on the test pixels for "
               + ", ".join(f"{c} (F1 {before['per_pigment'][c]['f1']:.3f} -> {after['per_pigment'][c]['f1']:.3f})"
                           for c in worse)
               + "; prefer the base model for these pigments, or label more regions of them")
        warnings.append(msg)
        log("WARNING: " + msg)
    return worse, warnings


def validation_split(regions: np.ndarray, units: np.ndarray, Y: np.ndarray, train: np.ndarray,
                      options: FinetuneConfig, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Inner training and validation indices (into the pooled arrays) within ``train``."""
    if options.validation_fraction <= 0:
        return train, np.zeros(0, np.int64)
    if options.split == "pixels":
        inner = split_pixels(train.size, 1.0 - options.validation_fraction, seed + 1)
    else:
        try:
            inner = split_by_region(regions[train], Y[train], units=units[train],
                                    train_fraction=1.0 - options.validation_fraction, seed=seed + 1)
        except LabelError:  # too few training regions to hold some out: no early stopping
            return train, np.zeros(0, np.int64)
    return train[inner.train], train[inner.test]


def _count_range(spectra: np.ndarray) -> tuple[float, float]:
    tot = np.asarray(spectra, dtype=np.float64).sum(axis=1)
    lo, hi = np.percentile(tot, [5, 95]) if tot.size else (1e3, 1e5)
    return max(100.0, 0.3 * lo), max(200.0, 2.0 * hi)


def extra_raw(scans: list[LabelledScan], offsets: list[int], train_mask: np.ndarray, classes: list[str],
              options: FinetuneConfig, seed: int, log: Callable[[str], None]):
    """Augmented, simulated-stack and rehearsal spectra, raw: ``(parts, counts)``.

    ``parts`` is a list of ``(counts (n, C), calibration, labels (n, K) in ``classes`` order, scan index)``
    (the index into ``scans`` of the scan the part was made from); ``counts`` the number of spectra of
    each kind. Every model kind turns the parts into its own input.
    """
    from xrfcore.model.augment import augmented_counts
    from xrfcore.simulate.labelled import region_stacks, rehearsal_spectra, scan_background_fraction, simulate_stacks

    parts, counts = [], {"augmented": 0, "simulated_stacks": 0, "rehearsal": 0, "stacks": 0}
    for i, s in enumerate(scans):
        sel = train_mask[offsets[i]:offsets[i + 1]]
        if not sel.any():
            continue
        raw = s.spectra[sel]
        lab = s.labels[sel]
        n_ch = raw.shape[1]
        if options.augment_copies:
            for c, cal, y in augmented_counts(raw, lab, s.calibration, copies=options.augment_copies, seed=seed + 11 * i):
                parts.append((c, cal, y, i))
                counts["augmented"] += len(c)
        if options.simulate_per_stack:
            ls = s.labelset
            pix = np.zeros(ls.mask.shape, bool)
            rows, cols = ls.pixel_index()
            pix[rows[sel], cols[sel]] = True
            stacks = region_stacks(ls.labels_top, ls.labels_bottom, ls.region_index, ls.classes, pixels=pix)
            if stacks:
                bg = scan_background_fraction(s.spectra, s.calibration)
                sp, sl, sim_classes = simulate_stacks(stacks, s.calibration, n_ch, n_per_stack=options.simulate_per_stack,
                                                      seed=seed + 101 * i, counts=_count_range(raw), background=bg)
                parts.append((sp, s.calibration, _reorder(sl, sim_classes, classes), i))
                counts["simulated_stacks"] += len(sp)
                counts["stacks"] += len(stacks)
        n_reh = int(round(options.rehearsal_ratio * raw.shape[0]))
        if n_reh:
            rp, rl, reh_classes = rehearsal_spectra(n_reh, s.calibration, n_ch, seed=seed + 1009 * i)
            parts.append((rp, s.calibration, _reorder(rl, reh_classes, classes), i))
            counts["rehearsal"] += len(rp)
    log("extra training spectra: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    return parts, counts


def _extra_training(scans: list[LabelledScan], offsets: list[int], train_mask: np.ndarray, config: Any,
                    classes: list[str], options: FinetuneConfig, seed: int, log: Callable[[str], None]):
    """Augmented, simulated-stack and rehearsal spectra as (plain CNN) model input, with their labels."""
    parts, counts = extra_raw(scans, offsets, train_mask, classes, options, seed, log)
    if not parts:
        return np.zeros((0, config.grid.n_channels), np.float32), np.zeros((0, len(classes)), np.uint8), counts
    return (np.concatenate([model_inputs(c, cal, config) for c, cal, _, _ in parts]),
            np.concatenate([y for _, _, y, _ in parts]), counts)


def _reorder(labels: np.ndarray, have: list[str], want: list[str]) -> np.ndarray:
    missing = sorted(set(want) - set(have))
    if missing:
        raise ConfigError(f"the pigment library has no class {missing} that the model predicts; simulated spectra "
                          "cannot be labelled for it (turn simulation and rehearsal off, or use the model's library)")
    return labels[:, [have.index(c) for c in want]].astype(np.uint8)


@dataclass
class SplitPlan:
    """How the pooled labelled pixels of some scans are used: labels, split, validation, masks.

    ``inner``/``val`` index the pooled pixels (training proper / validation for early stopping);
    ``train_mask`` marks the whole training part (validation included), ``inner_mask`` the training proper.
    """

    Y: np.ndarray
    offsets: list[int]
    split: Split
    summary: dict[str, Any]
    inner: np.ndarray
    val: np.ndarray
    train_mask: np.ndarray
    inner_mask: np.ndarray

    def scan_masks(self, scans: Sequence[LabelledScan]) -> list[np.ndarray]:
        """Per scan, ``(H, W)`` bool: the pixels of the training part (what the lineage records)."""
        masks = []
        for i, s in enumerate(scans):
            m = np.zeros(s.labelset.mask.shape, bool)
            rows, cols = s.labelset.pixel_index()
            sel = self.train_mask[self.offsets[i]:self.offsets[i + 1]]
            m[rows[sel], cols[sel]] = True
            masks.append(m)
        return masks


def finetune_report(plan: SplitPlan, scans: Sequence[LabelledScan], config: FinetuneConfig, classes: list[str], *,
                    before: dict, after: dict, weights: np.ndarray, val_before: dict | None, val_after: dict | None,
                    extra_counts: dict, history: Any, seconds: float, log: Callable[[str], None]) -> dict[str, Any]:
    """The report of a finetuning run (see :func:`finetune_labelled`), with the verdict against the base."""
    worse, extra_warnings = judge_against_base(before, after, log)
    kept = [c for c, w in zip(classes, weights) if w == 0.0]
    return {
        "config": config.to_dict(), "split": plan.summary, "before": before, "after": after,
        "worse_than_base": worse, "kept_base_outputs": kept,
        "finetuned_weight": {c: float(w) for c, w in zip(classes, weights)}, "validation_before": val_before,
        "validation_after": val_after, "n_validation_pixels": int(plan.val.size),
        "n_training_spectra": {"labelled": int(plan.inner.size), **extra_counts},
        "warnings": list(plan.summary["warnings"]) + extra_warnings,
        "history": history, "train_masks": plan.scan_masks(scans), "seconds": seconds,
    }


def plan_split(scans: Sequence[LabelledScan], options: FinetuneConfig, classes: list[str],
               log: Callable[[str], None], *, what: str = "") -> SplitPlan:
    """Split the pooled labelled pixels (``options.split``) and hold validation out of the training part."""
    seed = int(options.seed)
    Y = np.concatenate([s.labels for s in scans]).astype(np.uint8)
    offsets = [int(v) for v in np.cumsum([0] + [s.spectra.shape[0] for s in scans])]
    regions, units = pixel_groups([s.labelset.region_index for s in scans], [s.labelset.mask for s in scans],
                                  block_size=options.block_size)
    if options.split == "regions":
        split: Split = split_by_region(regions, Y, units=units, train_fraction=options.train_fraction, seed=seed)
    else:
        split = split_pixels(Y.shape[0], options.train_fraction, seed)
    summary = split_summary(regions, Y, split, classes)
    for w in summary["warnings"]:
        log("WARNING: " + w)
    inner, val = validation_split(regions, units, Y, split.train, options, seed)
    log(f"{split.kind} split: {split.train.size} training pixels ({summary['n_train_regions']} regions), "
        f"{split.test.size} test pixels ({summary['n_test_regions']} regions wholly held out); "
        f"validation {val.size} pixels{what}")
    train_mask = np.zeros(Y.shape[0], bool)
    train_mask[split.train] = True  # every pixel of the training part counts as trained-on (validation too)
    inner_mask = np.zeros(Y.shape[0], bool)
    inner_mask[inner] = True
    return SplitPlan(Y, offsets, split, summary, inner, val, train_mask, inner_mask)


def finetune_labelled(bundle: Any, scans: Sequence[LabelledScan], *, config: FinetuneConfig = FinetuneConfig(),
                      progress: ProgressFn | None = None,
                      log: Callable[[str], None] = lambda msg: None) -> tuple[Any, dict[str, Any]]:
    """Split, finetune and score on never-trained pixels; see the module docstring.

    An evidence-backed model (:mod:`xrfcore.model.evidence_model`) goes to
    :func:`xrfcore.model.evidence_finetuning.finetune_evidence_labelled` (its head only; same report).

    Parameters
    ----------
    bundle : ModelBundle
        The base model (left unchanged).
    scans : sequence of LabelledScan
    config : FinetuneConfig
        Split, data recipe and training settings; ``config.seed`` seeds the split, the
        simulations, augmentation and training.
    progress : callable(epoch, logs), optional
        Keras epoch progress (``logs["stage"]`` names the stage).
    log : callable(str)

    Returns
    -------
    bundle : ModelBundle
        The finetuned model (unsaved).
    report : dict
        ``config``, ``split`` (:func:`xrfcore.model.splits.split_summary`), ``before``/``after``
        (:func:`xrfcore.model.per_pigment_metrics` of the base and the finetuned model on the same
        test pixels), ``worse_than_base``, ``kept_base_outputs`` (pigments given the base model's output),
        ``finetuned_weight`` (pigment -> share of the finetuned output), ``validation_before``/``validation_after``,
        ``n_validation_pixels``, ``n_training_spectra``, ``warnings``, ``history``, ``train_masks``
        (per scan, (H, W) bool, the training part including validation; not JSON) and ``seconds``.

    Raises
    ------
    LabelError
        Too few regions or pixels for the split.
    """
    options = config
    seed = int(config.seed)
    if not isinstance(config, FinetuneConfig):
        raise ConfigError(f"config must be a FinetuneConfig, got {type(config).__name__}")
    from xrfcore.model.evidence_model import spec_of

    if spec_of(bundle) is not None:  # an evidence-backed model: its head is finetuned, the trunk stays
        from xrfcore.model.evidence_finetuning import finetune_evidence_labelled

        return finetune_evidence_labelled(bundle, scans, config=config, progress=progress, log=log)
    from xrfcore.model.bundle import ModelBundle
    from xrfcore.model.metrics import per_pigment_metrics
    from xrfcore.model.predict import predict_preprocessed
    from xrfcore.model.train import finetune

    t0 = time.perf_counter()
    scans = list(scans)
    if not scans:
        raise LabelError("no labelled scan given")
    classes = list(bundle.classes)
    pre = bundle.preprocess
    X = np.concatenate([model_inputs(s.spectra, s.calibration, pre) for s in scans])
    plan = plan_split(scans, options, classes, log)
    Y, offsets, split = plan.Y, plan.offsets, plan.split
    inner, val, inner_mask = plan.inner, plan.val, plan.inner_mask
    X_extra, Y_extra, extra_counts = _extra_training(scans, offsets, inner_mask, pre, classes, options, seed, log)
    X_fit = np.concatenate([X[inner], X_extra])
    Y_fit = np.concatenate([Y[inner], Y_extra])
    new, history = finetune(bundle, X_fit, Y_fit, config=replace(config, validation_fraction=0.0),
                            validation=(X[val], Y[val]) if val.size else None, progress=progress,
                            data_info={"split": split.kind, "n_test": int(split.test.size),
                                       "n_validation": int(val.size)})
    weights = np.ones(len(classes))
    val_before = val_after = None
    if val.size:
        p_base_val = predict_preprocessed(bundle.model, X[val])
        p_ft_val = predict_preprocessed(new.model, X[val])
        val_before = per_pigment_metrics(Y[val], p_base_val, classes)
        val_after = per_pigment_metrics(Y[val], p_ft_val, classes)
        if options.keep_base_where_worse:
            weights = choose_output_weights(Y[val], p_base_val, p_ft_val)
    if np.any(weights < 1.0):
        log("output of the saved model per pigment (share of the finetuned model, rest base model, chosen on the "
            "validation regions): " + ", ".join(f"{c} {w:g}" for c, w in zip(classes, weights) if w < 1.0))
        new = ModelBundle(model=merge_outputs(new.model, bundle.model, weights), classes=classes,
                          class_names=list(new.class_names), preprocess=pre, metadata=new.metadata)
    before = per_pigment_metrics(Y[split.test], predict_preprocessed(bundle.model, X[split.test]), classes)
    after = per_pigment_metrics(Y[split.test], predict_preprocessed(new.model, X[split.test]), classes)
    report = finetune_report(plan, scans, config, classes, before=before, after=after, weights=weights,
                             val_before=val_before, val_after=val_after, extra_counts=extra_counts, history=history,
                             seconds=time.perf_counter() - t0, log=log)
    return new, report
