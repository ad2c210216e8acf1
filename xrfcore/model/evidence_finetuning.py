"""Finetuning an evidence-backed model (:mod:`xrfcore.model.evidence_model`) on labelled pixels.

The convolutional trunk stays frozen; only the head that reads the trunk features and the element
evidence is finetuned, so what the trunk learned from the simulations is kept and the evidence gate
still decides where a pigment can be called at all. The split, the validation regions and the extra
training spectra (augmented copies, simulated stacks of the stated layers, rehearsal) are the ones of
:func:`xrfcore.model.finetuning.finetune_labelled`.

Trained outputs: ``any`` and the same-element ``groups`` (from the pixel labels). The layer outputs
(``surface``/``hidden``) keep the base model's head and trees; where the labels state the layers (regions
always do), each may be *recalibrated* (:func:`layer_recalibration`): a two-parameter logistic map of its
probability, fitted on the training regions' pixels where its key elements are significant and kept only
where it calls the validation regions better with no new false calls. A monotone map cannot learn where a
region lies, only how far the simulations' probabilities sit from this scan's frequencies (a painting with
lead white under most of its surface); a gated output stays at the "not seen" level.

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

__all__ = ["finetune_evidence_labelled", "evidence_inputs", "choose_finetuned", "layer_recalibration",
           "fit_logistic_map", "recalibrated_map"]


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
    layers = None
    top, bottom, stated = _layer_labels(scans)
    if stated.any() and any(h in sl for h in ("surface", "hidden")):
        from xrfcore.model.evidence_model import gate_matrix, gate_open, layout_targets

        targets = layout_targets(Y, top, bottom, classes)
        passes = gate_open(data["z"], data["known"], gate_matrix(layout, spec.feature_elements), spec.gate_significance)
        fit_idx, val_idx = inner[stated[inner]], val[stated[val]]
        calibration, layers = layer_recalibration(
            layout, classes, calibration, targets, passes, fit_idx, val_idx,
            lambda cal, idx: prob(mixed, cal, idx))
        test_idx = split.test[stated[split.test]]
        if test_idx.size:
            pb, pa = prob(base_head, base_cal, test_idx), prob(mixed, calibration, test_idx)
            for key, p_ in (("test_before", pb), ("test_after", pa)):
                layers[key] = {h: per_pigment_metrics(targets[test_idx][:, sl[h]], p_[:, sl[h]], classes)
                               for h in ("surface", "hidden") if h in sl}
            layers["n_test_pixels"] = int(test_idx.size)
            # mean F1 over the pigments the test pixels hold in that layer (a pigment never there scores 0)
            layers["macro_f1"] = {}
            for h in layers["test_before"]:
                held = [c for c, m in layers["test_before"][h]["per_pigment"].items() if m["support"] > 0]
                layers["macro_f1"][h] = [float(np.mean([layers[key][h]["per_pigment"][c]["f1"] for c in held]))
                                         if held else None for key in ("test_before", "test_after")]
        if layers["recalibrated"]:
            log("layer outputs recalibrated to this scan (better on the validation regions): "
                + ", ".join(layers["recalibrated"]))
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
    report["layers"] = layers
    return new, report


def _layer_labels(scans: Sequence[Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Top and bottom labels (n, K) uint8 of the pooled labelled pixels and whether each pixel's file
    states the layers (n,) bool."""
    top = np.concatenate([s.labelset.labels_top[s.labelset.mask] for s in scans]).astype(np.uint8)
    bottom = np.concatenate([s.labelset.labels_bottom[s.labelset.mask] for s in scans]).astype(np.uint8)
    stated = np.concatenate([np.full(int(s.labelset.mask.sum()), bool(s.labelset.layers_stated)) for s in scans])
    return top, bottom, stated


def fit_logistic_map(q: np.ndarray, y: np.ndarray, *, prior: float = 20.0, iterations: int = 50) -> tuple[float, float]:
    """``(a, b)`` of ``p = sigmoid(a * logit(q) + b)`` fitted to 0/1 labels ``y`` by Newton's method.

    ``prior``: weight (in pseudo-observations) of a Gaussian pull towards the identity map (a = 1, b = 0),
    so a few uniform regions cannot push the map far. ``a`` stays >= 0.05 (the map stays increasing).

    Examples
    --------
    >>> q = np.full(200, 0.4); y = np.r_[np.ones(160), np.zeros(40)]   # called 40 %, right 80 %
    >>> a, b = fit_logistic_map(q, y, prior=1e-3)
    >>> round(float(1 / (1 + np.exp(-(a * np.log(0.4 / 0.6) + b)))), 2)
    0.8
    """
    x = np.log(np.clip(q, 1e-4, 1 - 1e-4) / (1 - np.clip(q, 1e-4, 1 - 1e-4))).astype(np.float64)
    X = np.column_stack([x, np.ones_like(x)])
    t = np.asarray(y, dtype=np.float64)
    theta, ref = np.array([1.0, 0.0]), np.array([1.0, 0.0])
    for _ in range(int(iterations)):
        p = 1.0 / (1.0 + np.exp(-(X @ theta)))
        grad = X.T @ (p - t) + prior * (theta - ref)
        hess = X.T @ (X * (p * (1 - p))[:, None]) + prior * np.eye(2)
        step = np.linalg.solve(hess, grad)
        theta -= step
        if np.abs(step).max() < 1e-8:
            break
    return max(float(theta[0]), 0.05), float(theta[1])


def recalibrated_map(m: dict | None, a: float, b: float) -> dict[str, list[float]]:
    """Calibration map ``m`` (raw score -> probability, ``x``/``y`` knots) followed by
    ``sigmoid(a * logit(p) + b)``; a gated score (0) keeps ``m``'s "not seen" level."""
    xo = np.asarray(m["x"], float) if m else np.array([0.0, 1.0])
    yo = np.asarray(m["y"], float) if m else np.array([0.0, 1.0])
    xs = np.unique(np.concatenate([xo, np.linspace(0.0, 1.0, 101)]))
    ys = np.interp(xs, xo, yo)
    q = np.clip(ys, 1e-6, 1 - 1e-6)
    new = 1.0 / (1.0 + np.exp(-(a * np.log(q / (1 - q)) + b)))
    new[xs <= 0.0] = ys[xs <= 0.0]
    return {"x": [float(v) for v in xs], "y": [float(v) for v in np.maximum.accumulate(new)]}


def layer_recalibration(layout: Any, classes: list[str], calibration: tuple, targets: np.ndarray,
                        passes: np.ndarray, fit_idx: np.ndarray, val_idx: np.ndarray,
                        probabilities: Callable[[tuple, np.ndarray], np.ndarray], *, min_pixels: int = 20,
                        min_gain: float = 0.01) -> tuple[tuple, dict[str, Any]]:
    """Recalibrate the ``surface``/``hidden`` outputs to a labelled scan where that helps.

    Per layer output: :func:`fit_logistic_map` on the training pixels ``fit_idx`` where the output's key
    elements are significant (``passes``) and both labels occur (at least ``min_pixels`` such pixels),
    composed with its calibration map (:func:`recalibrated_map`); kept where :func:`choose_finetuned` prefers
    it on the validation pixels ``val_idx`` (F1 up by ``min_gain``, no new false calls).

    ``probabilities(calibration, idx)``: the model's probabilities (n, n_outputs) of pixels ``idx`` under a
    calibration tuple. Returns the new calibration tuple and a summary (``recalibrated`` output names,
    ``maps`` name -> [a, b] of every fitted candidate).
    """
    sl = layout.slices()
    cols = [(h, k, sl[h].start + k) for h in ("surface", "hidden") if h in sl for k in range(len(classes))]
    info: dict[str, Any] = {"recalibrated": [], "maps": {}, "n_fit_pixels": int(fit_idx.size),
                            "n_validation_pixels": int(val_idx.size)}
    if not fit_idx.size or not val_idx.size:
        return tuple(calibration), info
    p_fit = probabilities(tuple(calibration), fit_idx)
    candidate = list(calibration)
    fitted = []
    for h, k, c in cols:
        rows = passes[fit_idx, c]
        y = targets[fit_idx, c][rows]
        if rows.sum() < min_pixels or y.min() == y.max():
            continue
        a, b = fit_logistic_map(p_fit[rows, c], y)
        info["maps"][f"{h} {classes[k]}"] = [a, b]
        candidate[c] = recalibrated_map(calibration[c], a, b)
        fitted.append((h, k, c))
    if not fitted:
        return tuple(calibration), info
    p_old, p_new = probabilities(tuple(calibration), val_idx), probabilities(tuple(candidate), val_idx)
    cs = [c for _, _, c in fitted]
    keep = choose_finetuned(targets[val_idx][:, cs], p_old[:, cs], p_new[:, cs], min_gain=min_gain)
    out = list(calibration)
    for (h, k, c), use in zip(fitted, keep):
        if use:
            out[c] = candidate[c]
            info["recalibrated"].append(f"{h} {classes[k]}")
    return tuple(out), info


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
