"""Finetuning an evidence-backed model (:mod:`xrfcore.model.evidence_model`) on labelled pixels.

The convolutional trunk stays frozen; only the head that reads the trunk features and the element
evidence is finetuned, so what the trunk learned from the simulations is kept and the evidence gate
still decides where a pigment can be called at all. The split, the validation regions and the extra
training spectra (augmented copies, simulated stacks of the stated layers, rehearsal) are the ones of
:func:`xrfcore.model.finetuning.finetune_labelled`.

Trained outputs: ``any`` and the same-element ``groups`` (from the pixel labels). The layer outputs
(``surface``/``hidden``) keep the base model's head: a label file says which pigments a region holds,
and only sometimes in which layer.

Per output, the saved model gives the finetuned head's output or the base head's (with the base
model's calibration), chosen on the validation regions (:func:`choose_finetuned`: the finetuned
output only where it calls the validation regions better than the base model, with no new false
calls); with ``keep_base_where_worse=False`` every trained output is the finetuned one. A finetuned output
is used as the head gives it (its training fits probabilities to the labels directly); a gated output
(key elements not significant) keeps the base model's "present but not seen" level.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any, Callable, Sequence

import numpy as np

from xrfcore.errors import ConfigError, LabelError
from xrfcore.model.config import FinetuneConfig
from xrfcore.model.metrics import f1_per_class

__all__ = ["finetune_evidence_labelled", "evidence_inputs", "choose_finetuned"]


def evidence_inputs(bundle: Any, spectra: np.ndarray, calibration: Any, evidence_config: Any = None, *,
                    trunk: Any = None) -> dict:
    """Trunk features, standardised evidence features, ``z`` and ``known`` of raw spectra.

    ``trunk``: the bundle's :func:`~xrfcore.model.evidence_training.trunk_model` (built here if not given;
    pass it when calling for many batches).
    """
    from xrfcore.model.evidence_model import model_inputs
    from xrfcore.model.evidence_training import trunk_model
    from xrfcore.model.predict import predict_preprocessed

    inputs, extras = model_inputs(bundle, spectra, calibration, evidence_config=evidence_config)
    t = predict_preprocessed(trunk if trunk is not None else trunk_model(bundle.model), inputs[0], batch_size=256)
    return {"t": t.astype(np.float32), "f": inputs[1], "z": extras["z"], "known": extras["known"]}


def _head_of(bundle: Any) -> Any:
    try:
        return bundle.model.get_layer("evidence_head")
    except ValueError:
        raise ConfigError("the evidence model has no 'evidence_head' layer; it cannot be finetuned here") from None


def _mixed_head(finetuned: Any, base: Any, use_finetuned: np.ndarray) -> Any:
    """One head model whose output k is the finetuned head's where ``use_finetuned[k]``, else the base head's."""
    import keras

    from xrfcore.model.architecture import uncompiled_copy, weighted_outputs

    ft, bs = uncompiled_copy(finetuned, "finetuned_head"), uncompiled_copy(base, "base_head")
    t_in = keras.Input(finetuned.inputs[0].shape[1:], name="trunk_features")
    e_in = keras.Input(finetuned.inputs[1].shape[1:], name="evidence")
    w = use_finetuned.astype(np.float32)
    out = weighted_outputs([ft([t_in, e_in]), bs([t_in, e_in])], [w, 1.0 - w], concat_name="both_heads",
                           mix_name="base_where_worse")
    return keras.Model([t_in, e_in], out, name="evidence_head")


def _identity_map(not_seen: float) -> dict[str, list[float]]:
    """Calibration map that keeps a finetuned output as it is, and a gated output (0) at ``not_seen``."""
    return {"x": [0.0, 1e-6, 1.0], "y": [float(not_seen), 1e-6, 1.0]}


def _targets(labels: np.ndarray, classes: list[str], layout: Any) -> np.ndarray:
    """Targets (float, -1 = not trained) of the layout from any-layer labels: ``any`` and ``groups`` as
    :func:`~xrfcore.model.evidence_model.layout_targets` gives them; the layer outputs are not trained."""
    from xrfcore.model.evidence_model import layout_targets

    y = np.asarray(labels).astype(np.uint8)
    out = layout_targets(y, y, np.zeros_like(y), classes).astype(np.float32)
    for head in ("surface", "hidden"):
        if head in layout.slices():
            out[:, layout.slices()[head]] = -1.0
    return out


def finetune_evidence_labelled(bundle: Any, scans: Sequence[Any], *, config: FinetuneConfig = FinetuneConfig(),
                               progress: Callable[[int, dict], None] | None = None,
                               log: Callable[[str], None] = lambda msg: None) -> tuple[Any, dict[str, Any]]:
    """Finetune an evidence model's head; same contract as :func:`xrfcore.model.finetuning.finetune_labelled`.

    ``config.stage1_epochs`` bounds the head's epochs and ``config.learning_rate_head`` is its
    learning rate; ``stage2_epochs`` is not used (the trunk stays frozen).
    """
    import keras

    from xrfcore.model.architecture import uncompiled_copy
    from xrfcore.model.bundle import ModelBundle
    from xrfcore.model.evidence_model import gated_probabilities, spec_of
    from xrfcore.model.evidence_training import joined_model, masked_binary_crossentropy, trunk_model
    from xrfcore.model.finetuning import extra_raw, finetune_report, plan_split
    from xrfcore.model.metrics import per_pigment_metrics
    from xrfcore.model.predict import predict_preprocessed
    from xrfcore.model.train import set_seed

    if not isinstance(config, FinetuneConfig):
        raise ConfigError(f"config must be a FinetuneConfig, got {type(config).__name__}")
    spec = spec_of(bundle)
    if spec is None:
        raise ConfigError("finetune_evidence_labelled needs an evidence-backed model; use finetune_labelled")
    t0 = time.perf_counter()
    seed = int(config.seed)
    scans = list(scans)
    if not scans:
        raise LabelError("no labelled scan given")
    classes = list(bundle.classes)
    layout = spec.layout
    configs = [_scan_evidence_config(spec.evidence, s) for s in scans]
    trunk = trunk_model(bundle.model)
    parts = [evidence_inputs(bundle, s.spectra, s.calibration, cfg, trunk=trunk) for s, cfg in zip(scans, configs)]
    data = {k: np.concatenate([p[k] for p in parts]) for k in ("t", "f", "z", "known")}
    plan = plan_split(scans, config, classes, log, what="; finetuning the evidence head (trunk frozen)")
    Y, offsets, split = plan.Y, plan.offsets, plan.split
    inner, val, inner_mask = plan.inner, plan.val, plan.inner_mask
    raw_parts, extra_counts = extra_raw(scans, offsets, inner_mask, classes, config, seed, log)
    extra = {"t": [], "f": [], "y": []}
    for counts, cal, y, i in raw_parts:
        e = evidence_inputs(bundle, counts, cal, configs[i], trunk=trunk)  # the config of the part's scan
        extra["t"].append(e["t"])
        extra["f"].append(e["f"])
        extra["y"].append(y)
    T_fit = np.concatenate([data["t"][inner]] + extra["t"])
    F_fit = np.concatenate([data["f"][inner]] + extra["f"])
    Y_fit = _targets(np.concatenate([Y[inner]] + extra["y"]).astype(np.float32), classes, layout)
    base_head = _head_of(bundle)
    head = uncompiled_copy(base_head, "evidence_head")
    set_seed(seed)
    head.compile(optimizer=keras.optimizers.Adam(config.learning_rate_head), loss=masked_binary_crossentropy)
    callbacks = []
    validation = None
    if val.size:
        validation = ([data["t"][val], data["f"][val]], _targets(Y[val].astype(np.float32), classes, layout))
        callbacks.append(keras.callbacks.EarlyStopping("val_loss", patience=config.patience, restore_best_weights=True))
    if progress is not None:
        callbacks.append(keras.callbacks.LambdaCallback(
            on_epoch_end=lambda epoch, logs: progress(epoch, {**(logs or {}), "stage": "evidence head"})))
    epochs = max(1, int(config.stage1_epochs))
    hist = head.fit([T_fit, F_fit], Y_fit, validation_data=validation, epochs=epochs, batch_size=config.batch_size,
                    shuffle=True, verbose=0, callbacks=callbacks)

    def prob(model, cal, idx):
        raw = predict_preprocessed(model, [data["t"][idx], data["f"][idx]], batch_size=1024)
        return gated_probabilities(replace(spec, calibration=cal), raw, data["z"][idx], data["known"][idx],
                                   features=data["f"][idx])

    base_cal = spec.calibration
    ft_cal = tuple(_identity_map(_value_at_zero(m)) for m in (base_cal or [None] * layout.n_outputs))
    sl = layout.slices()
    use_ft = np.zeros(layout.n_outputs, bool)
    val_before = val_after = None
    if val.size:
        p_base_val = prob(base_head, base_cal, val)
        p_ft_val = prob(head, ft_cal, val)
        y_val = _targets(Y[val].astype(np.float32), classes, layout)
        trained = np.flatnonzero(y_val.min(axis=0) >= 0)
        use_ft[trained] = (choose_finetuned(y_val[:, trained], p_base_val[:, trained], p_ft_val[:, trained])
                           if config.keep_base_where_worse else True)
        val_before = per_pigment_metrics(Y[val], p_base_val[:, sl["any"]], classes)
        val_after = per_pigment_metrics(Y[val], p_ft_val[:, sl["any"]], classes)
    else:
        use_ft[sl["any"]] = True
        if "groups" in sl:
            use_ft[sl["groups"]] = True
    calibration = tuple(ft_cal[k] if use_ft[k] else (base_cal[k] if base_cal is not None else _identity_map(0.0))
                        for k in range(layout.n_outputs))
    mixed = _mixed_head(head, base_head, use_ft)
    meta = dict(bundle.metadata)
    meta["evidence_model"] = replace(spec, calibration=calibration).to_dict()
    new = ModelBundle(model=joined_model(bundle.model, mixed), classes=classes, class_names=list(bundle.class_names),
                      preprocess=bundle.preprocess, metadata=meta)
    p_before = prob(base_head, base_cal, split.test)
    p_after = prob(mixed, calibration, split.test)
    before = per_pigment_metrics(Y[split.test], p_before[:, sl["any"]], classes)
    after = per_pigment_metrics(Y[split.test], p_after[:, sl["any"]], classes)
    weights = use_ft[sl["any"]].astype(float)
    kept = [c for c, w in zip(classes, weights) if w == 0.0]
    if kept:
        log("outputs kept from the base model (finetuning did not help on the validation regions): " + ", ".join(kept))
    history = {"evidence head": {k: [float(v) for v in vals] for k, vals in hist.history.items()}}
    report = finetune_report(plan, scans, config, classes, before=before, after=after, weights=weights,
                             val_before=val_before, val_after=val_after, extra_counts=extra_counts, history=history,
                             seconds=time.perf_counter() - t0, log=log)
    report["finetuned"] = "evidence head"
    return new, report


def choose_finetuned(y_true: np.ndarray, p_base: np.ndarray, p_finetuned: np.ndarray, *,
                     threshold: float = 0.5, min_gain: float = 0.01) -> np.ndarray:
    """Per output, True where the finetuned output is kept: on the validation regions its F1 is at least
    ``min_gain`` above the base model's *and* it makes no more false calls than the base.

    A tie, a smaller gain, or a gain bought with new false calls keeps the base output: a pigment claimed
    where it is not is the costlier error for a conservator, and on the demo mock-up such outputs scored
    below the base on the held-out cells.

    Examples
    --------
    >>> y = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 0]])
    >>> pb = np.array([[0.9, 0.1, 0.3], [0.1, 0.4, 0.3], [0.1, 0.1, 0.1]])
    >>> pf = np.array([[0.95, 0.2, 0.1], [0.05, 0.8, 0.1], [0.1, 0.1, 0.1]])
    >>> choose_finetuned(y, pb, pf).tolist()
    [False, True, False]
    """
    y = np.asarray(y_true).astype(bool)
    call_b = np.asarray(p_base) >= threshold
    call_f = np.asarray(p_finetuned) >= threshold

    no_new_false = (call_f & ~y).sum(axis=0) <= (call_b & ~y).sum(axis=0)
    return (f1_per_class(call_f, y) >= f1_per_class(call_b, y) + float(min_gain) - 1e-12) & no_new_false


def _value_at_zero(m: dict | None) -> float:
    if not m:
        return 0.0
    return float(np.interp(0.0, np.asarray(m["x"], float), np.asarray(m["y"], float)))


def _scan_evidence_config(base: Any, scan: Any) -> Any:
    """The evidence config for one labelled scan: its tube voltage (as inference on the scan uses it) and its
    detector resolution from the labelled pixels' sum."""
    from xrfcore.elements.evidence import estimate_resolution, with_scan

    total = np.asarray(scan.spectra, dtype=np.float64).sum(axis=0)
    return estimate_resolution(total, scan.calibration, with_scan(base, scan))
