"""Train an evidence-backed model (:mod:`xrfcore.model.evidence_model`) from a pretrained CNN and a simulated set.

Recipe (``train_evidence_model``):

1. read the simulated set: raw spectra, calibrations, per-layer labels and the instrument of each
   batch (tube voltage, detector noise);
2. element evidence of every spectrum (:func:`xrfcore.elements.evidence.fit_evidence`), with the
   batch's tube voltage and its detector noise rounded to the resolution steps that
   :func:`~xrfcore.elements.evidence.estimate_resolution` picks from for a scan;
3. the pretrained CNN's convolutional trunk (up to its ``Flatten``) turns each preprocessed spectrum
   into a feature vector; it stays frozen, so this runs once;
4. a small head reads trunk features and the standardised evidence vector and predicts every output
   of the layout (any layer, same-element groups, surface, hidden); seeded 70/15/15 split of the
   spectra into training, validation (early stopping and calibration) and test;
5. the evidence gate and an isotonic calibration per output, fitted on the validation part (after
   step 8's trees);
   metrics, ECE and the reliability table on the test part. Where the set records the photons each
   layer's elements deliver (``layer_photons``), a surface or hidden positive whose key elements
   deliver fewer than :data:`xrfcore.model.quality.MIN_PHOTONS` from that layer is left out of the
   loss, the calibration and the metrics (what no detector can see is not a label to learn);
6. optionally (``distill``) the heads' average is distilled into one head of a member's size;
7. optionally (``head_rank``) the heads' first layers, which read the 2688 trunk features, are replaced
   by one shared linear projection to ``head_rank`` dimensions and small per-head layers after it
   (:func:`low_rank_members`: the best rank-``head_rank`` fit of the heads' pre-activations on the
   training part), before the gate and the calibration are fitted, so the saved numbers are the
   compressed model's;
8. by default (``layer_trees``) boosted oblivious trees on the standardised evidence vector
   (:mod:`xrfcore.model.trees`), trained on the same part and masks, give the ``surface`` and ``hidden``
   outputs for which they rank the validation part clearly better than the network; stored in the
   model file's metadata as plain numbers;
9. the trunk and the head are joined into one two-input Keras model (standard layers only).
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

from xrfcore.errors import ConfigError

__all__ = ["dataset_evidence", "train_evidence_model", "masked_binary_crossentropy", "trunk_model", "joined_model",
           "low_rank_members"]


def _scored(ev: dict, classes: list[str], mask_undetectable: bool) -> np.ndarray | None:
    """``(n, n_outputs)`` bool of :func:`~xrfcore.model.evidence_model.layout_scored` for a
    :func:`dataset_evidence` dict (False: an undetectable surface/hidden positive, left out), or None where
    nothing is left out (``mask_undetectable`` off, or a set without ``layer_photons``)."""
    from xrfcore.model.evidence_model import layout_scored
    from xrfcore.model.quality import detectable

    if not (mask_undetectable and "layer_photons" in ev):
        return None
    det = detectable(ev["layer_photons"], ev["photon_elements"], classes)
    return layout_scored(ev["labels_top"], ev["labels_bottom"], det, classes)


def _noise_step(noise_ev: float) -> float:
    from xrfcore.elements.evidence import NOISE_STEPS_EV

    steps = np.asarray(NOISE_STEPS_EV)
    return float(steps[np.argmin(np.abs(steps - noise_ev))])


def dataset_evidence(path: str | Path, *, feature_elements=None, chunk: int = 4096,
                     progress: Callable[[int, int], None] | None = None,
                     thin: tuple[float, float] | None = None, seed: int = 0,
                     config: "EvidenceConfig | None" = None) -> dict[str, np.ndarray]:
    """Evidence vectors of every spectrum of a simulated set.

    ``config``: the fit's settings (default :class:`~xrfcore.elements.evidence.EvidenceConfig`); each batch's
    tube voltage and detector noise replace its ``tube_kv`` and ``noise_ev``.

    ``thin=(lo, hi)``: of binomially thinned copies instead (a shorter dwell), each spectrum keeping a
    share of its photons drawn log-uniformly from ``lo..hi`` (seeded); ``layer_photons`` are scaled by
    the same share and the shares are returned as ``keep``.

    Returns
    -------
    dict
        ``features`` (N, F) float32, ``z`` and ``known`` (N, E), ``labels``, ``labels_top``,
        ``labels_bottom`` (N, K) uint8, ``label_names`` (K,); ``layer_photons`` (N, 2, E') and
        ``photon_elements`` (E',) where the set has them (sets made before they were written lack them).
    """
    from xrfcore.model.augment import thin_counts

    import h5py

    from xrfcore.elements.evidence import EvidenceConfig, fit_evidence
    from xrfcore.model.evidence_model import FEATURE_ELEMENTS, element_significance, evidence_features
    from xrfcore.scan import EnergyCalibration

    els = tuple(feature_elements or FEATURE_ELEMENTS)
    base_cfg = config if config is not None else EvidenceConfig()
    with h5py.File(path, "r") as f:
        need = ("spectra", "calibration", "labels", "labels_top", "labels_bottom", "params/tube_kv", "params/noise_ev")
        missing = [k for k in need if k not in f]
        if missing:
            raise ConfigError(f"{path} lacks {missing}; make the training set with `python -m xrfcore simulate`")
        n = f["spectra"].shape[0]
        cal = f["calibration"][...]
        kv = f["params/tube_kv"][...]
        noise = f["params/noise_ev"][...]
        key = np.column_stack([cal, kv, np.array([_noise_step(v) for v in noise])])
        feats = None
        z = np.zeros((n, len(els)), np.float32)
        known = np.zeros((n, len(els)), bool)
        rng = np.random.default_rng(seed)
        keep = None
        if thin is not None:
            lo, hi = (float(v) for v in thin)
            if not 0 < lo <= hi <= 1:
                raise ConfigError(f"thinning shares must satisfy 0 < lo <= hi <= 1, got {thin}")
            keep = np.exp(rng.uniform(np.log(lo), np.log(hi), n))
        for a in range(0, n, chunk):
            spectra = f["spectra"][a : a + chunk]
            if keep is not None:
                spectra = thin_counts(spectra, keep[a : a + chunk], rng)
            k = key[a : a + chunk]
            uniq, inv = np.unique(k, axis=0, return_inverse=True)
            for g, row in enumerate(uniq):
                idx = np.flatnonzero(inv.reshape(-1) == g)
                c = EnergyCalibration(float(row[0]), float(row[1]), float(row[2]))
                cfg = replace(base_cfg, tube_kv=float(row[3]), noise_ev=float(row[4]))
                ev = fit_evidence(spectra[idx], c, cfg)
                fv, kn = evidence_features(ev, els)
                if feats is None:
                    feats = np.zeros((n, fv.shape[1]), np.float32)
                feats[a + idx] = fv
                known[a + idx] = kn
                z[a + idx] = element_significance(ev, els)[0]
            if progress:
                progress(min(n, a + chunk), n)
        names = [v.decode() if isinstance(v, bytes) else str(v) for v in f["label_names"][()]]
        labels = {k: f[k][...].astype(np.uint8) for k in ("labels", "labels_top", "labels_bottom")}
        if keep is not None:
            labels["keep"] = keep
        if "layer_photons" in f and "photon_elements" in f:
            labels["layer_photons"] = f["layer_photons"][...]
            if keep is not None:
                labels["layer_photons"] = labels["layer_photons"] * keep[:, None, None]
            labels["photon_elements"] = [v.decode() if isinstance(v, bytes) else str(v) for v in f["photon_elements"][()]]
    return {"features": feats, "z": z, "known": known, "label_names": names, **labels}


def masked_binary_crossentropy(y_true, y_pred):
    """Binary cross-entropy over the outputs, entries with target < 0 left out (undetectable layer labels)."""
    from keras import ops

    w = ops.cast(y_true >= 0, "float32")
    t = ops.clip(y_true, 0.0, 1.0)
    p = ops.clip(y_pred, 1e-7, 1.0 - 1e-7)
    loss = -(t * ops.log(p) + (1.0 - t) * ops.log(1.0 - p))
    return ops.mean(loss * w, axis=-1)


def trunk_model(model):
    """The convolutional trunk of a pigment CNN or an evidence model: its spectrum input up to ``Flatten``."""
    import keras

    flat = next((layer for layer in model.layers if type(layer).__name__ == "Flatten"), None)
    if flat is None:
        raise ConfigError("the model has no Flatten layer; the evidence head needs the paper CNN's trunk")
    return keras.Model(model.inputs[0], flat.output, name="trunk")


def _head(d_trunk: int, d_ev: int, n_out: int, *, seed: int):
    import keras
    from keras import layers

    t_in = keras.Input((d_trunk,), name="trunk_features")
    e_in = keras.Input((d_ev,), name="evidence")
    init = keras.initializers.GlorotUniform(seed=seed)
    t = layers.Dropout(0.3, seed=seed)(t_in)
    t = layers.Dense(128, activation="relu", kernel_initializer=init, name="head_trunk")(t)
    e = layers.Dense(48, activation="relu", kernel_initializer=init, name="head_evidence")(e_in)
    h = layers.Concatenate(name="head_concat")([t, e])
    h = layers.Dense(128, activation="relu", kernel_initializer=init, name="head_hidden")(h)
    h = layers.Dropout(0.2, seed=seed)(h)
    out = layers.Dense(n_out, activation="sigmoid", kernel_initializer=init, name="outputs")(h)
    return keras.Model([t_in, e_in], out, name="evidence_head")


def _ensemble(members, d_trunk: int, d_ev: int, projection: np.ndarray | None = None):
    """One head model averaging the members' outputs (a single member is wrapped as it is).

    ``projection`` ``(d_trunk, r)``: the members read ``trunk_features @ projection`` (one shared
    linear layer, ``shared_projection``) instead of the trunk features (:func:`low_rank_members`).
    """
    import keras
    from keras import layers

    from xrfcore.model.architecture import uncompiled_copy, weighted_outputs

    t_in = keras.Input((d_trunk,), name="trunk_features")
    e_in = keras.Input((d_ev,), name="evidence")
    t = t_in
    if projection is not None:
        shared = layers.Dense(int(projection.shape[1]), use_bias=False, name="shared_projection")
        t = shared(t_in)
        shared.set_weights([np.asarray(projection, np.float32)])
    # uncompiled copies: the saved model carries no loss or optimizer state of the training
    outs = [uncompiled_copy(m, f"member_{i}")([t, e_in]) for i, m in enumerate(members)]
    if len(outs) == 1:
        return keras.Model([t_in, e_in], outs[0], name="evidence_head")
    k = int(outs[0].shape[-1])
    out = weighted_outputs(outs, [np.full(k, 1.0 / len(outs))] * len(outs), concat_name="all_heads",
                           mix_name="mean_of_heads")
    return keras.Model([t_in, e_in], out, name="evidence_head")


def _trained_head(bundle: Any, base: Any, feature_mean: np.ndarray) -> tuple[list, Any]:
    """The trained heads of evidence model ``bundle``, checked against the base and the training set.

    Returns ``(members, None)`` for uncompressed heads, or ``([], head)``: a copy of the whole head where
    its members already read a shared projection (kept as it is; it cannot be compressed again).
    """
    from xrfcore.model.architecture import uncompiled_copy
    from xrfcore.model.evidence_model import spec_of

    spec = spec_of(bundle)
    if spec is None:
        raise ConfigError("--heads-from must be an evidence model (made by train-evidence)")
    steps = [s for s in bundle.metadata.get("lineage", []) if s.get("step") == "evidence head"]
    if base.sha256 and steps and steps[-1].get("from_sha256") not in (None, base.sha256):
        raise ConfigError("the --heads-from model was built on another base CNN; pass that one as --base")
    if spec.feature_mean.shape != np.shape(feature_mean) or not np.allclose(spec.feature_mean, feature_mean,
                                                                            rtol=1e-4, atol=1e-5):
        raise ConfigError("the --heads-from model was trained on another training set or split (its evidence "
                          "feature means differ); pass the same --data and --seed it was trained with")
    head = bundle.model.get_layer("evidence_head")
    names = [layer.name for layer in head.layers]
    if "shared_projection" in names:
        return [], uncompiled_copy(head, "evidence_head")
    members = [head.get_layer(n) for n in names if n.startswith("member_")]
    if not members:
        raise ConfigError("the --heads-from model has no member heads")
    return members, None


def low_rank_members(members, features: np.ndarray, rank: int) -> tuple[np.ndarray, list, dict[str, float]]:
    """Heads whose first trunk layer reads one shared rank-``rank`` projection of the trunk features.

    Each member's ``head_trunk`` layer computes ``relu(t @ W_m + b_m)`` from the ``d`` trunk features
    (``d x 128`` multiply-adds per head and spectrum, most of a head's cost). With ``W = [W_1 ... W_M]``
    and ``A = (T - mean) @ W`` the members' centred pre-activations on ``features`` ``T``, the best
    rank-``rank`` fit of ``A`` (least squares) is ``A V V^T``, ``V`` the top right singular vectors of
    ``A``; so one shared projection ``P = W V`` (``d x rank``) and per member ``Q_m = V^T`` restricted to
    its columns give ``t @ W_m ~= t @ P @ Q_m + (mean @ W_m - mean @ P @ Q_m)``, folded into new biases.
    Nothing is retrained; the other layers are copied.

    Returns ``(P, members, info)``: the projection, new uncompiled members of input width ``rank``
    (same layer names) and ``info`` with ``rank`` and ``retained_variance`` (share of the centred
    pre-activation variance on ``features`` that the projection keeps).
    """
    t = np.asarray(features)
    kernels = [m.get_layer("head_trunk").get_weights() for m in members]
    w = np.concatenate([k for k, _ in kernels], axis=1).astype(np.float64)
    if not 1 <= int(rank) < w.shape[1]:
        raise ConfigError(f"head rank must be in 1..{w.shape[1] - 1}, got {rank}")
    rank = int(rank)
    mean = t.mean(axis=0, dtype=np.float64)
    gram = np.zeros((w.shape[1], w.shape[1]))
    for i in range(0, len(t), 4096):  # A^T A in float64, a block of rows at a time (no float64 copy of T)
        a = (t[i:i + 4096] - mean) @ w
        gram += a.T @ a
    evals, evecs = np.linalg.eigh(gram)  # ascending
    v = evecs[:, ::-1][:, :rank]
    retained = float(evals[::-1][:rank].sum() / max(evals.sum(), 1e-300))
    p = w @ v
    d_ev = int(members[0].inputs[1].shape[-1])
    n_out = int(members[0].outputs[0].shape[-1])
    new, col = [], 0
    for m, (k, b) in zip(members, kernels):
        h = k.shape[1]
        q = v.T[:, col:col + h]
        bias = b + mean @ k - (mean @ p) @ q
        col += h
        nm = _head(rank, d_ev, n_out, seed=0)
        for layer in nm.layers:
            if layer.name == "head_trunk":
                layer.set_weights([q.astype(np.float32), bias.astype(np.float32)])
            elif layer.get_weights():
                layer.set_weights(m.get_layer(layer.name).get_weights())
        new.append(nm)
    return p.astype(np.float32), new, {"rank": rank, "retained_variance": retained}


def _average_precision(y: np.ndarray, score: np.ndarray) -> float:
    """Average precision of ``score`` for 0/1 ``y`` (0 where ``y`` holds no positive)."""
    from sklearn.metrics import average_precision_score

    return float(average_precision_score(y, score)) if np.any(y) else 0.0


def joined_model(cnn, head):
    """``cnn``'s trunk (:func:`trunk_model`) and an evidence head joined into one two-input model."""
    import keras

    flat = next(layer for layer in cnn.layers if type(layer).__name__ == "Flatten")
    ev_in = keras.Input(head.inputs[1].shape[1:], name="evidence")
    return keras.Model([cnn.inputs[0], ev_in], head([flat.output, ev_in]), name="evidence_model")


def train_evidence_model(base, data: str | Path, *, seed: int = 0, epochs: int = 60, batch_size: int = 256,
                         learning_rate: float = 1e-3, patience: int = 6, gate_significance: float = 3.0,
                         max_spectra: int | None = None, mask_undetectable: bool = True, n_heads: int = 5,
                         trunk_epochs: int = 0, trunk_learning_rate: float = 2e-4, distill: bool = False,
                         head_rank: int = 0, heads_from: Any = None, layer_trees: bool = True,
                         tree_heads: tuple[str, ...] = ("surface", "hidden"), tree_depth: int = 6,
                         tree_rounds: int = 80, tree_learning_rate: float = 0.3, tree_min_gain: float = 0.01,
                         tree_thinning: tuple[float, float] | None = None,
                         tree_weights: tuple[float, ...] = (1.0, 0.5), tree_data: tuple = (),
                         evidence: Any = None,
                         log: Callable[[str], None] = print):
    """Train the evidence head on a simulated set; returns ``(bundle, report)`` (unsaved bundle).

    Parameters
    ----------
    base : ModelBundle
        Pretrained paper CNN (its trunk and :class:`PreprocessConfig` are kept).
    data : path
        Simulated training set (``python -m xrfcore simulate``).
    seed, epochs, batch_size, learning_rate, patience
        Split and head training (Adam, early stopping on the validation loss).
    gate_significance : float
        Significance (sigma) an output's key elements need (element identification's threshold).
    max_spectra : int, optional
        Use the first ``max_spectra`` spectra (small runs and tests).
    mask_undetectable : bool
        Leave surface/hidden positives that deliver too few photons out (needs ``layer_photons``).
    n_heads : int
        Heads trained with seeds ``seed, seed + 1, ...`` on the same split and averaged before the
        gate and the calibration (a small ensemble: steadier probabilities; at inference each head costs
        ~3 % of the CNN's time, measured on 2 CPU cores).
    trunk_epochs, trunk_learning_rate
        With ``trunk_epochs > 0``, first train a copy of the base CNN's trunk end to end with a
        provisional head (Adam at ``trunk_learning_rate``, early stopping on the validation part),
        then the heads on the new trunk's features. 0 keeps the base trunk frozen.
    distill : bool
        Replace the ensemble by one head of a member's size trained on the ensemble's outputs (soft
        targets, same split and early stopping), at one head's cost (five heads: ~15 % of the CNN's time at
        inference). The report gives the student's mean absolute difference from the ensemble on the test
        part.
    head_rank : int
        With ``head_rank > 0``, the heads read one shared linear projection of the trunk features to
        ``head_rank`` dimensions (:func:`low_rank_members`, fitted on the training part; nothing retrained)
        before the gate and the calibration are fitted: at rank 192 the five heads took 17 instead of 32 us per
        spectrum (2 CPU cores). The report gives the compressed head's difference from the full one.
    heads_from : ModelBundle, optional
        An evidence model trained from ``base`` on ``data`` with the same ``seed``: its heads are taken as
        they are instead of training new ones (training reproduces heads only from bit-identical evidence), then
        compressed (``head_rank``), gated and calibrated on the same validation part. Heads that already
        read a shared projection are kept whole (``head_rank`` must then be 0). Refused for a model built on
        another base or trained on another set or split.
    layer_trees, tree_heads, tree_depth, tree_rounds, tree_learning_rate, tree_min_gain
        With ``layer_trees``, boosted oblivious trees on the standardised evidence vector
        (:func:`xrfcore.model.trees.fit_forest`: ``tree_depth`` levels, at most ``tree_rounds`` rounds at
        ``tree_learning_rate``, early stopping on the validation part) are trained for every output of the
        ``tree_heads`` on the same training part and masks, and replace the network's output wherever their
        average precision on the validation part (after the gate) is ``tree_min_gain`` or more above the
        network's: whether a layer lies on top or beneath is a question of line ratios conditioned on the
        photons that carry them, which trees read better for most pigments (models/README.md). The gate and
        the calibration are fitted after. ``tree_weights``: the trees' weights against the network tried per
        output (``w * trees + (1 - w) * network``; default 1 and 0.5), the best on the validation part
        taken. With ``tree_thinning=(lo, hi)`` the trees also train (and stop
        early) on a binomially thinned copy of each spectrum that keeps a log-uniform ``lo..hi`` share of
        its photons (:func:`dataset_evidence`), so they have seen short dwells; the choice between trees
        and network is made on the unthinned validation part. ``tree_data``: further simulated sets (same
        classes) whose every spectrum joins the trees' training part (standardised like ``data``'s): the
        trees learn from more spectra while the heads, the split, the validation and test parts stay
        ``data``'s (four times the spectra raised the simulated hidden-layer average precision by 0.04).
    evidence : EvidenceConfig, optional
        The element-evidence fit's settings (default :class:`~xrfcore.elements.evidence.EvidenceConfig`),
        saved in the model file: a scan's evidence is fitted with them (its own tube voltage and resolution).
    """
    import keras

    from xrfcore.elements.evidence import EvidenceConfig
    from xrfcore.model.bundle import ModelBundle
    from xrfcore.model.data import load_dataset
    from xrfcore.model.evidence_model import (FEATURE_ELEMENTS, EvidenceModelSpec, apply_gate, apply_isotonic,
                                              default_layout, expected_calibration_error, fit_isotonic,
                                              gate_matrix, gate_open, layout_targets, reliability_table,
                                              with_trees)
    from xrfcore.model.metrics import per_pigment_metrics
    from xrfcore.model.predict import predict_preprocessed
    from xrfcore.model.train import set_seed
    from xrfcore.model.trees import fit_forest

    if int(n_heads) < 1:
        raise ConfigError(f"n_heads must be >= 1, got {n_heads}")
    if heads_from is not None and (trunk_epochs > 0 or distill):
        raise ConfigError("heads taken from a trained model (--heads-from) cannot be combined with "
                          "--trunk-epochs or --distill, which train new heads")
    t0 = time.perf_counter()
    rows = None if max_spectra is None else int(max_spectra)
    log(f"evidence of {data} ...")
    ev_config = evidence if evidence is not None else EvidenceConfig()
    ev = dataset_evidence(data, config=ev_config)
    if rows is not None:
        ev = {k: (v[:rows] if isinstance(v, np.ndarray) else v) for k, v in ev.items()}
    classes = list(base.classes)
    if ev["label_names"] != classes:
        raise ConfigError(f"training set classes {ev['label_names']} differ from the base model's {classes}")
    log(f"preprocessing and trunk features ({time.perf_counter() - t0:.0f} s) ...")
    X, _, _ = load_dataset(data, base.preprocess, rows=rows)
    cnn = base.model
    if trunk_epochs > 0:  # a copy of the CNN whose trunk layers are trained here; the base stays as it is
        cnn = keras.Model.from_config(base.model.get_config())
        cnn.set_weights(base.model.get_weights())
    trunk = trunk_model(cnn)
    layout = default_layout(classes)
    Y = layout_targets(ev["labels"], ev["labels_top"], ev["labels_bottom"], classes)
    scored = _scored(ev, classes, mask_undetectable)
    if scored is not None:
        log(f"layer outputs: {int((~scored).sum())} undetectable surface/hidden positives left out of training "
            f"and calibration")
    else:
        scored = np.ones(Y.shape, bool)
        if mask_undetectable:
            log("the training set has no layer_photons (made by an earlier version): every layer label is trained on")
    Ym = np.where(scored, Y.astype(np.float32), -1.0).astype(np.float32)
    n = X.shape[0]
    perm = np.random.default_rng(seed).permutation(n)
    n_va, n_te = int(round(0.15 * n)), int(round(0.15 * n))
    va, te, tr = np.sort(perm[:n_va]), np.sort(perm[n_va:n_va + n_te]), np.sort(perm[n_va + n_te:])
    F = ev["features"]
    mean, std = F[tr].mean(axis=0), F[tr].std(axis=0) + 1e-6
    Fs = ((F - mean) / std).astype(np.float32)
    trunk_history: dict[str, list[float]] = {}
    if trunk_epochs > 0:
        # stage A: trunk and a provisional head end to end, so the trunk keeps what the layer outputs
        # need (line ratios, edges) and not only what "present" needed
        set_seed(seed + 1000)
        probe = _head(int(trunk.output.shape[-1]), F.shape[1], layout.n_outputs, seed=seed + 1000)
        e_in = keras.Input((F.shape[1],), name="evidence_in")
        both = keras.Model([cnn.inputs[0], e_in], probe([trunk.output, e_in]), name="trunk_training")
        both.compile(optimizer=keras.optimizers.Adam(trunk_learning_rate), loss=masked_binary_crossentropy)
        log(f"training the trunk end to end for up to {trunk_epochs} epochs ({time.perf_counter() - t0:.0f} s) ...")
        h = both.fit([X[tr][..., None], Fs[tr]], Ym[tr], validation_data=([X[va][..., None], Fs[va]], Ym[va]),
                     epochs=int(trunk_epochs), batch_size=128, shuffle=True, verbose=0,
                     callbacks=[keras.callbacks.EarlyStopping("val_loss", patience=2, restore_best_weights=True)])
        trunk_history = {k: [float(v) for v in vals] for k, vals in h.history.items()}
        log(f"trunk: {len(h.history['loss'])} epochs, best validation loss {min(h.history['val_loss']):.4f}")
    T = predict_preprocessed(trunk, X, batch_size=256)
    members, histories, whole = [], [], None
    if heads_from is not None:
        members, whole = _trained_head(heads_from, base, mean)
        if whole is not None and head_rank:
            raise ConfigError("the --heads-from model's heads already read a shared projection; they are kept as "
                              "they are, so leave --head-rank at 0")
        n_heads = len(members) or int(heads_from.metadata.get("evidence_training", {}).get("n_heads", 0))
        log(f"taking the trained heads of {getattr(heads_from, 'path', None) or 'the given model'}"
            + (" (already compressed: kept whole)" if whole is not None else f" ({n_heads})"))
    else:
        for m in range(int(n_heads)):
            set_seed(seed + m)
            member = _head(T.shape[1], F.shape[1], layout.n_outputs, seed=seed + m)
            member.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=masked_binary_crossentropy)
            log(f"training head {m + 1}/{n_heads} on {tr.size} spectra ({time.perf_counter() - t0:.0f} s) ...")
            hist = member.fit([T[tr], Fs[tr]], Ym[tr], validation_data=([T[va], Fs[va]], Ym[va]), epochs=epochs,
                              batch_size=batch_size, shuffle=True, verbose=0,
                              callbacks=[keras.callbacks.EarlyStopping("val_loss", patience=patience,
                                                                       restore_best_weights=True)])
            members.append(member)
            histories.append(hist)
    head = whole if whole is not None else _ensemble(members, T.shape[1], F.shape[1])
    distilled = {}
    if distill and len(members) > 1:
        soft = {part: predict_preprocessed(head, [T[idx], Fs[idx]], batch_size=1024)
                for part, idx in (("train", tr), ("validation", va), ("test", te))}
        set_seed(seed + int(n_heads))
        student = _head(T.shape[1], F.shape[1], layout.n_outputs, seed=seed + int(n_heads))
        student.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=masked_binary_crossentropy)
        log(f"distilling the {n_heads} heads into one ({time.perf_counter() - t0:.0f} s) ...")
        hist = student.fit([T[tr], Fs[tr]], soft["train"], validation_data=([T[va], Fs[va]], soft["validation"]),
                           epochs=epochs, batch_size=batch_size, shuffle=True, verbose=0,
                           callbacks=[keras.callbacks.EarlyStopping("val_loss", patience=patience,
                                                                    restore_best_weights=True)])
        head = _ensemble([student], T.shape[1], F.shape[1])
        members = [student]
        diff = np.abs(predict_preprocessed(head, [T[te], Fs[te]], batch_size=1024) - soft["test"])
        distilled = {"epochs_run": len(hist.history["loss"]), "test_mean_abs_diff": float(diff.mean()),
                     "test_p99_abs_diff": float(np.quantile(diff, 0.99))}
        log(f"student: {distilled['epochs_run']} epochs, mean |p - p_ensemble| {distilled['test_mean_abs_diff']:.4f} "
            f"on the test part")
    compressed = {}
    if head_rank:
        before = predict_preprocessed(head, [T[te], Fs[te]], batch_size=1024)
        projection, low, info = low_rank_members(members, T[tr], int(head_rank))
        head = _ensemble(low, T.shape[1], F.shape[1], projection=projection)
        diff = np.abs(predict_preprocessed(head, [T[te], Fs[te]], batch_size=1024) - before)
        compressed = {**info, "test_mean_abs_diff": float(diff.mean()),
                      "test_p99_abs_diff": float(np.quantile(diff, 0.99)), "test_max_abs_diff": float(diff.max())}
        log(f"heads read a rank-{info['rank']} projection of the trunk features: {info['retained_variance']:.4f} "
            f"of their pre-activation variance kept, mean |p - p_full| {compressed['test_mean_abs_diff']:.4f} "
            f"on the test part (before calibration)")
    gate = gate_matrix(layout, FEATURE_ELEMENTS)
    forest, trees_info, tree_cols, tree_weights_used = None, None, [], []
    sl = layout.slices()
    if layer_trees:
        unknown = sorted(set(tree_heads) - set(sl))
        if unknown:
            raise ConfigError(f"tree_heads {unknown} are not outputs of the layout {list(sl)}")
        cand = [c for h in layout.heads if h in tree_heads for c in range(sl[h].start, sl[h].stop)]
        names = [f"{h} {n}" for h in layout.heads if h in tree_heads
                 for n in (layout.groups if h == "groups" else classes)]
        log(f"boosted trees for the {'/'.join(h for h in layout.heads if h in tree_heads)} outputs "
            f"({time.perf_counter() - t0:.0f} s) ...")
        raw_va = predict_preprocessed(head, [T[va], Fs[va]], batch_size=1024)
        X_fit, Y_fit, M_fit = Fs[tr], Y[tr][:, cand], scored[tr][:, cand]
        X_stop, Y_stop, M_stop = Fs[va], Y[va][:, cand], scored[va][:, cand]
        if tree_thinning is not None:
            # shorter dwells too: the same spectra thinned (the trees hold their last leaf outside what they saw)
            log(f"evidence of thinned copies ({tree_thinning[0]:g}-{tree_thinning[1]:g} of the photons) ...")
            thin = dataset_evidence(data, thin=tree_thinning, seed=seed + 7919, config=ev_config)
            if rows is not None:
                thin = {k: (v[:rows] if isinstance(v, np.ndarray) else v) for k, v in thin.items()}
            Ft = ((thin["features"] - mean) / std).astype(np.float32)
            st = _scored(thin, classes, mask_undetectable)
            st = np.ones(Y.shape, bool) if st is None else st
            X_fit, Y_fit = np.concatenate([X_fit, Ft[tr]]), np.concatenate([Y_fit, Y[tr][:, cand]])
            M_fit = np.concatenate([M_fit, st[tr][:, cand]])
            X_stop, Y_stop = np.concatenate([X_stop, Ft[va]]), np.concatenate([Y_stop, Y[va][:, cand]])
            M_stop = np.concatenate([M_stop, st[va][:, cand]])
        extra_rows = 0
        for path in tree_data:
            log(f"evidence of {path} for the trees ({time.perf_counter() - t0:.0f} s) ...")
            more = dataset_evidence(path, config=ev_config)
            if more["label_names"] != classes:
                raise ConfigError(f"--tree-data {path} has the classes {more['label_names']}, the base model "
                                  f"{classes}")
            Yx = layout_targets(more["labels"], more["labels_top"], more["labels_bottom"], classes)
            Sx = _scored(more, classes, mask_undetectable)
            Sx = np.ones(Yx.shape, bool) if Sx is None else Sx
            X_fit = np.concatenate([X_fit, ((more["features"] - mean) / std).astype(np.float32)])
            Y_fit, M_fit = np.concatenate([Y_fit, Yx[:, cand]]), np.concatenate([M_fit, Sx[:, cand]])
            extra_rows += int(Yx.shape[0])
        forest, info = fit_forest(X_fit, Y_fit, mask=M_fit, X_val=X_stop, Y_val=Y_stop, mask_val=M_stop,
                                  n_rounds=int(tree_rounds), depth=int(tree_depth),
                                  learning_rate=float(tree_learning_rate))
        # per output, the trees only where they rank the validation part's spectra better than the network
        net_va = apply_gate(raw_va, ev["z"][va], ev["known"][va], gate, gate_significance)
        p_tree = forest.predict_proba(Fs[va])
        passes = gate_open(ev["z"][va], ev["known"][va], gate, gate_significance)
        ap, use, weights = {}, [], []
        for i, (name, c) in enumerate(zip(names, cand)):
            kept = scored[va][:, c]
            y, ok = Y[va][kept, c], passes[kept, c]
            by_w = {f"{w:g}": _average_precision(y, np.where(ok, w * p_tree[kept, i] + (1 - w) * raw_va[kept, c], 0.0))
                    for w in tree_weights}
            best = max(by_w, key=by_w.get)
            ap[name] = {"network": _average_precision(y, net_va[kept, c]), "trees": by_w[best],
                        "weight": float(best), "by_weight": by_w}
            if ap[name]["trees"] >= ap[name]["network"] + tree_min_gain:
                use.append(i)
                weights.append(float(best))
        tree_cols = [cand[i] for i in use]
        forest = forest.select(use) if use else None
        trees_info = {"heads": [h for h in layout.heads if h in tree_heads], "depth": int(tree_depth),
                      "max_rounds": int(tree_rounds), "learning_rate": float(tree_learning_rate),
                      "min_gain": float(tree_min_gain),
                      "thinned_copies": None if tree_thinning is None else [float(v) for v in tree_thinning],
                      "extra_data": [Path(p).name for p in tree_data], "extra_spectra": extra_rows,
                      "rounds": dict(zip(names, info["rounds"])), "outputs": [names[i] for i in use],
                      "weights": weights,
                      "n_trees": 0 if forest is None else int(forest.feature.shape[0]),
                      "validation_average_precision": ap}
        tree_weights_used = weights
        log(f"trees of depth {tree_depth} take the outputs {[names[i] for i in use]} ({trees_info['n_trees']} "
            f"trees), where they rank the validation part better than the network by {tree_min_gain} or more")

    spec = EvidenceModelSpec(evidence=ev_config, layout=layout, feature_elements=FEATURE_ELEMENTS,
                             feature_mean=mean, feature_std=std, gate_significance=gate_significance,
                             calibration=None, trees=forest, tree_columns=tuple(tree_cols),
                             tree_weights=tuple(tree_weights_used))

    def scores(idx):
        raw = predict_preprocessed(head, [T[idx], Fs[idx]], batch_size=1024)
        return apply_gate(with_trees(spec, raw, Fs[idx]), ev["z"][idx], ev["known"][idx], gate, gate_significance)

    cal = fit_isotonic(scores(va), Y[va], mask=scored[va])
    prob_te = apply_isotonic(scores(te), cal)
    # left-out entries (undetectable layer positives) are scored as neither called nor present
    y_te = np.where(scored[te], Y[te], 0)
    p_te = np.where(scored[te], prob_te, 0.0)
    test = {h: per_pigment_metrics(y_te[:, sl[h]], p_te[:, sl[h]],
                                   list(layout.groups if h == "groups" else classes)) for h in layout.heads}

    def ece(cols):
        keep = scored[te][:, cols]
        return expected_calibration_error(prob_te[:, cols][keep], Y[te][:, cols][keep])

    calib = {h: {"ece": ece(sl[h]),
                 "ece_per_output": {name: ece(slice(sl[h].start + k, sl[h].start + k + 1))
                                    for k, name in enumerate(layout.groups if h == "groups" else classes)},
                 "reliability": reliability_table(prob_te[:, sl[h]][scored[te][:, sl[h]]],
                                                  Y[te][:, sl[h]][scored[te][:, sl[h]]])} for h in layout.heads}
    full = joined_model(cnn, head)
    spec = replace(spec, calibration=tuple(cal))
    settings = {"seed": seed, "epochs": epochs, "epochs_run": [len(h.history["loss"]) for h in histories],
                "n_heads": int(n_heads), "distilled": distilled or None,
                "head_rank": int(head_rank), "head_compression": compressed or None, "layer_trees": trees_info,
                "heads_from_sha256": getattr(heads_from, "sha256", None) if heads_from is not None else None,
                "batch_size": batch_size,
                "learning_rate": learning_rate, "patience": patience, "gate_significance": gate_significance,
                "mask_undetectable": bool(mask_undetectable), "trunk_epochs": int(trunk_epochs),
                "trunk_epochs_run": len(trunk_history.get("loss", [])), "trunk_learning_rate": float(trunk_learning_rate),
                "n_train": int(tr.size), "n_validation": int(va.size), "n_test": int(te.size),
                "layer_labels_left_out": int((~scored).sum()), "data": Path(data).name}
    meta = dict(base.metadata)
    meta["lineage"] = list(meta.get("lineage", [])) + [{"step": "evidence head", "from_sha256": base.sha256,
                                                        "data": Path(data).name,
                                                        "trunk_trained_epochs": len(trunk_history.get("loss", [])),
                                                        "layer_trees": trees_info["n_trees"] if trees_info else 0,
                                                        **({"tree_data": [Path(p).name for p in tree_data]}
                                                           if tree_data else {})}]
    if heads_from is not None:
        trained_with = heads_from.metadata.get("evidence_training", {})
        settings["epochs_run"] = list(trained_with.get("epochs_run", []))  # of the heads' own training
        if whole is not None:  # the kept heads' own compression
            settings["head_rank"] = int(trained_with.get("head_rank", 0))
            settings["head_compression"] = trained_with.get("head_compression")
        meta["lineage"].append({"step": "heads kept", "from_sha256": heads_from.sha256,
                                "head_rank": settings["head_rank"], "kept_whole": whole is not None})
    meta["evidence_model"] = spec.to_dict()
    meta["evidence_training"] = {**settings, "test_macro_f1": {h: test[h]["macro"]["f1"] for h in layout.heads},
                                 "test_ece": {h: calib[h]["ece"] for h in layout.heads}}
    bundle = ModelBundle(model=full, classes=classes, class_names=list(base.class_names), preprocess=base.preprocess,
                         metadata=meta)
    report = {"settings": settings, "trunk_history": trunk_history, "history": ({k: [float(v) for v in vals] for k, vals in histories[0].history.items()} if histories else {}),
              "test": test, "calibration": calib, "seconds": time.perf_counter() - t0,
              "feature_names": spec.to_dict()["feature_names"]}
    return bundle, report
