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
5. the evidence gate and an isotonic calibration per output, fitted on the validation part;
   metrics, ECE and the reliability table on the test part;
6. the trunk and the head are joined into one two-input Keras model (standard layers only).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from xrfcore.errors import ConfigError

__all__ = ["dataset_evidence", "train_evidence_model"]


def _noise_step(noise_ev: float) -> float:
    from xrfcore.elements.evidence import NOISE_STEPS_EV

    steps = np.asarray(NOISE_STEPS_EV)
    return float(steps[np.argmin(np.abs(steps - noise_ev))])


def dataset_evidence(path: str | Path, *, feature_elements=None, chunk: int = 4096,
                     progress: Callable[[int, int], None] | None = None) -> dict[str, np.ndarray]:
    """Evidence vectors of every spectrum of a simulated set.

    Returns
    -------
    dict
        ``features`` (N, F) float32, ``z`` and ``known`` (N, E), ``labels``, ``labels_top``,
        ``labels_bottom`` (N, K) uint8, ``label_names`` (K,).
    """
    import h5py

    from xrfcore.elements.evidence import EvidenceConfig, fit_evidence
    from xrfcore.model.evidence_model import FEATURE_ELEMENTS, element_significance, evidence_features
    from xrfcore.scan import EnergyCalibration

    els = tuple(feature_elements or FEATURE_ELEMENTS)
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
        for a in range(0, n, chunk):
            spectra = f["spectra"][a : a + chunk]
            k = key[a : a + chunk]
            uniq, inv = np.unique(k, axis=0, return_inverse=True)
            for g, row in enumerate(uniq):
                idx = np.flatnonzero(inv.reshape(-1) == g)
                c = EnergyCalibration(float(row[0]), float(row[1]), float(row[2]))
                cfg = EvidenceConfig(tube_kv=float(row[3]), noise_ev=float(row[4]))
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
    return {"features": feats, "z": z, "known": known, "label_names": names, **labels}


def _trunk(model):
    import keras

    flat = next((layer for layer in model.layers if type(layer).__name__ == "Flatten"), None)
    if flat is None:
        raise ConfigError("the base model has no Flatten layer; the evidence head needs the paper CNN's trunk")
    return keras.Model(model.inputs, flat.output, name="trunk"), flat


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


def _joined(base_model, head):
    import keras

    spec_in = base_model.inputs[0]
    flat = next(layer for layer in base_model.layers if type(layer).__name__ == "Flatten")
    ev_in = keras.Input(head.inputs[1].shape[1:], name="evidence")
    out = head([flat.output, ev_in])
    return keras.Model([spec_in, ev_in], out, name="evidence_model")


def train_evidence_model(base, data: str | Path, *, seed: int = 0, epochs: int = 60, batch_size: int = 256,
                         learning_rate: float = 1e-3, patience: int = 6, gate_significance: float = 3.0,
                         max_spectra: int | None = None, log: Callable[[str], None] = print):
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
    """
    import keras

    from xrfcore.elements.evidence import EvidenceConfig
    from xrfcore.model.bundle import ModelBundle
    from xrfcore.model.data import load_dataset
    from xrfcore.model.evidence_model import (FEATURE_ELEMENTS, EvidenceModelSpec, apply_gate, apply_isotonic,
                                              default_layout, expected_calibration_error, fit_isotonic,
                                              gate_matrix, layout_targets, reliability_table)
    from xrfcore.model.metrics import per_pigment_metrics
    from xrfcore.model.predict import predict_preprocessed
    from xrfcore.model.train import set_seed

    t0 = time.perf_counter()
    rows = None if max_spectra is None else int(max_spectra)
    log(f"evidence of {data} ...")
    ev = dataset_evidence(data)
    if rows is not None:
        ev = {k: (v[:rows] if isinstance(v, np.ndarray) else v) for k, v in ev.items()}
    classes = list(base.classes)
    if ev["label_names"] != classes:
        raise ConfigError(f"training set classes {ev['label_names']} differ from the base model's {classes}")
    log(f"preprocessing and trunk features ({time.perf_counter() - t0:.0f} s) ...")
    X, _, _ = load_dataset(data, base.preprocess, rows=rows)
    trunk, _ = _trunk(base.model)
    T = predict_preprocessed(trunk, X, batch_size=256)
    layout = default_layout(classes)
    Y = layout_targets(ev["labels"], ev["labels_top"], ev["labels_bottom"], classes)
    n = X.shape[0]
    perm = np.random.default_rng(seed).permutation(n)
    n_va, n_te = int(round(0.15 * n)), int(round(0.15 * n))
    va, te, tr = np.sort(perm[:n_va]), np.sort(perm[n_va:n_va + n_te]), np.sort(perm[n_va + n_te:])
    F = ev["features"]
    mean, std = F[tr].mean(axis=0), F[tr].std(axis=0) + 1e-6
    Fs = ((F - mean) / std).astype(np.float32)
    set_seed(seed)
    head = _head(T.shape[1], F.shape[1], layout.n_outputs, seed=seed)
    head.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="binary_crossentropy")
    log(f"training the head on {tr.size} spectra ({time.perf_counter() - t0:.0f} s) ...")
    hist = head.fit([T[tr], Fs[tr]], Y[tr], validation_data=([T[va], Fs[va]], Y[va]), epochs=epochs,
                    batch_size=batch_size, shuffle=True, verbose=0,
                    callbacks=[keras.callbacks.EarlyStopping("val_loss", patience=patience,
                                                             restore_best_weights=True)])
    gate = gate_matrix(layout, FEATURE_ELEMENTS)

    def scores(idx):
        raw = predict_preprocessed(head, [T[idx], Fs[idx]], batch_size=1024)
        return apply_gate(raw, ev["z"][idx], ev["known"][idx], gate, gate_significance)

    cal = fit_isotonic(scores(va), Y[va])
    prob_te = apply_isotonic(scores(te), cal)
    sl = layout.slices()
    test = {h: per_pigment_metrics(Y[te][:, sl[h]], prob_te[:, sl[h]],
                                   list(layout.groups if h == "groups" else classes)) for h in layout.heads}
    calib = {h: {"ece": expected_calibration_error(prob_te[:, sl[h]], Y[te][:, sl[h]]),
                 "ece_per_output": {name: expected_calibration_error(prob_te[:, sl[h].start + k], Y[te][:, sl[h].start + k])
                                    for k, name in enumerate(layout.groups if h == "groups" else classes)},
                 "reliability": reliability_table(prob_te[:, sl[h]], Y[te][:, sl[h]])} for h in layout.heads}
    full = _joined(base.model, head)
    spec = EvidenceModelSpec(evidence=EvidenceConfig(), layout=layout, feature_elements=FEATURE_ELEMENTS,
                             feature_mean=mean, feature_std=std, gate_significance=gate_significance,
                             calibration=tuple(cal))
    settings = {"seed": seed, "epochs": epochs, "epochs_run": len(hist.history["loss"]), "batch_size": batch_size,
                "learning_rate": learning_rate, "patience": patience, "gate_significance": gate_significance,
                "n_train": int(tr.size), "n_validation": int(va.size), "n_test": int(te.size),
                "data": str(Path(data).resolve())}
    meta = dict(base.metadata)
    meta["lineage"] = list(meta.get("lineage", [])) + [{"step": "evidence head", "from_sha256": base.sha256,
                                                        "data": str(Path(data).resolve())}]
    meta["evidence_model"] = spec.to_dict()
    meta["evidence_training"] = {**settings, "test_macro_f1": {h: test[h]["macro"]["f1"] for h in layout.heads},
                                 "test_ece": {h: calib[h]["ece"] for h in layout.heads}}
    bundle = ModelBundle(model=full, classes=classes, class_names=list(base.class_names), preprocess=base.preprocess,
                         metadata=meta)
    report = {"settings": settings, "history": {k: [float(v) for v in vals] for k, vals in hist.history.items()},
              "test": test, "calibration": calib, "seconds": time.perf_counter() - t0,
              "feature_names": spec.to_dict()["feature_names"]}
    return bundle, report
