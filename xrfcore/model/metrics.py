"""Per-pigment classification metrics (METHOD.md "Metrics"), pooled numbers, and same-element confusion.

No TensorFlow here: this module works on numpy arrays and is cheap to import.
"""

from __future__ import annotations

import csv
import io
import os
from typing import Any, Sequence

import numpy as np

__all__ = ["per_pigment_metrics", "f1_per_class", "metrics_summary", "metrics_table", "metrics_to_csv", "evaluate_scan", "SAME_ELEMENT_GROUPS"]

#: Pigment pairs that show the same XRF-visible elements (METHOD.md "Known weaknesses").
SAME_ELEMENT_GROUPS: tuple[tuple[str, str], ...] = (("PB", "IO"), ("LW", "RL"), ("CrG", "CrY"))


def _counts(t: np.ndarray, p: np.ndarray) -> dict[str, int]:
    return {
        "tp": int(np.sum(t & p)),
        "fp": int(np.sum(~t & p)),
        "fn": int(np.sum(t & ~p)),
        "tn": int(np.sum(~t & ~p)),
    }


def _scores(c: dict[str, int]) -> dict[str, float]:
    n = c["tp"] + c["fp"] + c["fn"] + c["tn"]
    sens = c["tp"] / (c["tp"] + c["fn"]) if c["tp"] + c["fn"] else 0.0
    prec = c["tp"] / (c["tp"] + c["fp"]) if c["tp"] + c["fp"] else 0.0
    f1 = 2 * c["tp"] / (2 * c["tp"] + c["fp"] + c["fn"]) if c["tp"] + c["fp"] + c["fn"] else 0.0
    return {"accuracy": (c["tp"] + c["tn"]) / n if n else 0.0, "sensitivity": sens, "precision": prec, "f1": f1}


def f1_per_class(calls: np.ndarray, y_true: np.ndarray) -> np.ndarray:
    """F1 per column of boolean calls ``(n, K)`` against labels ``(n, K)``; 0 where a column has neither
    a positive nor a call.

    Examples
    --------
    >>> f1_per_class(np.array([[1, 0], [1, 0]], bool), np.array([[1, 0], [0, 0]], bool)).tolist()
    [0.6666666666666666, 0.0]
    """
    call, y = np.asarray(calls, dtype=bool), np.asarray(y_true, dtype=bool)
    tp = (call & y).sum(axis=0)
    wrong = (call ^ y).sum(axis=0)
    return np.where(tp + wrong > 0, 2 * tp / np.maximum(2 * tp + wrong, 1), 0.0)


def _group_confusion(t: np.ndarray, p: np.ndarray, classes: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for a, b in SAME_ELEMENT_GROUPS:
        if a not in classes or b not in classes:
            continue
        ia, ib = classes.index(a), classes.index(b)
        entry: dict[str, Any] = {}
        for x, y, ix, iy in ((a, b, ia, ib), (b, a, ib, ia)):
            only = t[:, ix] & ~t[:, iy]
            n_only = int(only.sum())
            wrong = int(np.sum(only & p[:, iy]))
            entry[f"only_{x}"] = n_only
            entry[f"only_{x}_predicted_{y}"] = wrong
            entry[f"only_{x}_predicted_{y}_rate"] = wrong / n_only if n_only else None
        out[f"{a}/{b}"] = entry
    return out


def per_pigment_metrics(
    y_true: np.ndarray,
    y_prob: np.ndarray,
    classes: Sequence[str],
    *,
    threshold: float = 0.5,
) -> dict[str, Any]:
    """Accuracy, sensitivity, precision and F1 per pigment, pooled, and same-element confusion.

    Parameters
    ----------
    y_true : (n_spectra, K) array of {0, 1}
        Presence labels (any layer).
    y_prob : (n_spectra, K) array of float
        Predicted probabilities.
    classes : sequence of str
        K class abbreviations.
    threshold : float
        A pigment counts as predicted when ``y_prob >= threshold``.

    Returns
    -------
    dict
        ``per_pigment[abbr]`` -> accuracy, sensitivity (recall), precision, f1, support (positives),
        tp, fp, fn, tn; ``micro`` (counts pooled over pigments) and ``macro`` (mean of per-pigment
        scores); ``groups["PB/IO"]`` etc. -> ``only_PB`` (spectra with PB but not IO),
        ``only_PB_predicted_IO`` (of those, how many were predicted IO) and its ``_rate``;
        plus ``threshold``, ``n_spectra``, ``classes``.

    Notes
    -----
    Per-pigment precision/recall/F1 are computed with scikit-learn
    (``precision_recall_fscore_support``, ``zero_division=0``); accuracy is (TP + TN) / n.

    Examples
    --------
    >>> m = per_pigment_metrics([[1, 0], [1, 1]], [[0.9, 0.2], [0.4, 0.7]], ["PB", "IO"])
    >>> m["per_pigment"]["PB"]["sensitivity"], m["per_pigment"]["IO"]["precision"]
    (0.5, 1.0)
    """
    from sklearn.metrics import precision_recall_fscore_support

    classes = [str(c) for c in classes]
    t = np.asarray(y_true).astype(bool)
    prob = np.asarray(y_prob, dtype=np.float64)
    if t.shape != prob.shape or t.ndim != 2 or t.shape[1] != len(classes):
        raise ValueError(
            f"expected y_true and y_prob of shape (n, {len(classes)}), got {t.shape} and {prob.shape}"
        )
    p = prob >= threshold
    prec, rec, f1, support = precision_recall_fscore_support(t, p, average=None, zero_division=0)
    per: dict[str, Any] = {}
    for k, c in enumerate(classes):
        counts = _counts(t[:, k], p[:, k])
        per[c] = {
            "accuracy": _scores(counts)["accuracy"],
            "sensitivity": float(rec[k]),
            "precision": float(prec[k]),
            "f1": float(f1[k]),
            "support": int(support[k]),
            **counts,
        }
    pooled = _counts(t.ravel(), p.ravel())
    macro = {m: float(np.mean([per[c][m] for c in classes])) for m in ("accuracy", "sensitivity", "precision", "f1")}
    return {
        "threshold": float(threshold),
        "n_spectra": int(t.shape[0]),
        "classes": classes,
        "per_pigment": per,
        "micro": {**_scores(pooled), "support": int(t.sum()), **pooled},
        "macro": macro,
        "groups": _group_confusion(t, p, classes),
    }


def metrics_table(metrics: dict[str, Any]) -> str:
    """An aligned text table: one row per pigment, then micro and macro, then group confusion."""
    cols = ("accuracy", "sensitivity", "precision", "f1")
    head = f"{'pigment':<9}" + "".join(f"{c:>12}" for c in cols) + f"{'support':>9}"
    lines = [head, "-" * len(head)]
    for c, row in metrics["per_pigment"].items():
        lines.append(f"{c:<9}" + "".join(f"{row[m]:>12.3f}" for m in cols) + f"{row['support']:>9d}")
    lines.append("-" * len(head))
    lines.append(f"{'micro':<9}" + "".join(f"{metrics['micro'][m]:>12.3f}" for m in cols) + f"{metrics['micro']['support']:>9d}")
    lines.append(f"{'macro':<9}" + "".join(f"{metrics['macro'][m]:>12.3f}" for m in cols))
    if metrics.get("groups"):
        lines.append("")
        lines.append("same-element confusion (spectra with only one of the pair, predicted as the other):")
        for pair, g in metrics["groups"].items():
            a, b = pair.split("/")
            parts = []
            for x, y in ((a, b), (b, a)):
                rate = g[f"only_{x}_predicted_{y}_rate"]
                parts.append(
                    f"only {x}: {g[f'only_{x}_predicted_{y}']}/{g[f'only_{x}']} predicted {y}"
                    + (f" ({100 * rate:.1f}%)" if rate is not None else "")
                )
            lines.append(f"  {pair:<8} " + "; ".join(parts))
    lines.append(f"threshold {metrics['threshold']:g}, {metrics['n_spectra']} spectra")
    return "\n".join(lines)


def metrics_to_csv(metrics: dict[str, Any], path: str | os.PathLike | None = None) -> str:
    """CSV text (one row per pigment plus micro/macro); written atomically to ``path`` if given."""
    cols = ["accuracy", "sensitivity", "precision", "f1", "support", "tp", "fp", "fn", "tn"]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["pigment", *cols])
    for c, row in metrics["per_pigment"].items():
        w.writerow([c, *(f"{row[m]:.6g}" for m in cols)])
    w.writerow(["micro", *(f"{metrics['micro'][m]:.6g}" for m in cols)])
    w.writerow(["macro", *(f"{metrics['macro'][m]:.6g}" if m in metrics["macro"] else "" for m in cols)])
    text = buf.getvalue()
    if path is not None:
        from xrfcore.atomic import atomic_write_text

        atomic_write_text(path, text)
    return text


def metrics_summary(metrics: dict[str, Any]) -> dict[str, Any]:
    """The short form of :func:`per_pigment_metrics` kept in model metadata and lineage.

    Returns
    -------
    dict
        ``macro`` and ``micro`` (pooled numbers as computed), ``f1`` (class -> F1) and
        ``n_spectra``.
    """
    return {
        "micro": metrics["micro"],
        "macro": metrics["macro"],
        "f1": {c: m["f1"] for c, m in metrics["per_pigment"].items()},
        "n_spectra": metrics["n_spectra"],
    }


def evaluate_scan(bundle: Any, scan: Any, labels_path: str | os.PathLike, *, threshold: float = 0.5,
                  batch_size: int = 256, include_training_pixels: bool = False) -> dict[str, Any]:
    """Metrics of a model on the labelled pixels of a scan, by default only those it never trained on.

    Parameters
    ----------
    bundle : ModelBundle
    scan : Scan
    labels_path : path-like
        Region JSON, CSV or dense HDF5 (:func:`xrfcore.labels.load_labels`).
    threshold : float
    batch_size : int
        Spectra per forward pass.
    include_training_pixels : bool
        Also score the pixels of this scan that finetuned the model (its lineage records them,
        :mod:`xrfcore.model.lineage`); off by default, because those scores measure memory.

    Returns
    -------
    dict
        :func:`per_pigment_metrics` of the scored pixels (any layer), for models with layer outputs
        also ``surface`` and ``hidden`` (the same metrics against the top-layer labels, and against the
        bottom-layer labels of pigments not also on top) and ``hidden_cannot_tell`` (per pigment: its labelled
        hidden pixels, and the share of them where no line of its key elements is in the spectrum, so the hidden
        map cannot tell there), plus ``model``, ``model_sha256``,
        ``scan``, ``labels``, ``n_labelled`` (labelled pixels), ``excluded_training_pixels``
        (labelled pixels left out because they trained the model) and
        ``training_pixels_included`` (how many training pixels were scored anyway).

    Raises
    ------
    CalibrationError, ModelError, LabelError
        Scan/model mismatch, bad labels, or no labelled pixel left after the exclusion.
    """
    from xrfcore.errors import LabelError
    from xrfcore.labels import load_labels
    from xrfcore.model.bundle import check_compatible
    from xrfcore.model.lineage import training_mask
    from xrfcore.model.predict import pixel_spectra

    check_compatible(bundle, scan)
    labels = load_labels(labels_path, scan_shape=scan.shape, classes=bundle.classes)
    source = str(getattr(scan.metadata, "source", "")) or None
    trained = training_mask(bundle.metadata or {}, source, scan.shape)
    n_trained = int((labels.mask & trained).sum()) if trained is not None else 0
    mask = labels.mask & ~trained if trained is not None and not include_training_pixels else labels.mask
    if not mask.any():
        raise LabelError(
            f"all {labels.n_labelled} labelled pixels of {labels_path} trained this model; there is nothing it has "
            "not seen to score. Label other regions, or pass --include-training-pixels to score them anyway"
        )
    from xrfcore.elements.evidence import config_for_scan
    from xrfcore.model.evidence_model import spec_of
    from xrfcore.model.predict import predict_layers

    raw = pixel_spectra(scan, mask)
    spec = spec_of(bundle)
    ev_cfg = config_for_scan(scan, spec.evidence) if spec is not None else None
    heads = predict_layers(bundle, raw, scan.calibration, batch_size=batch_size, evidence_config=ev_cfg,
                           with_seen=True)
    metrics = per_pigment_metrics(labels.labels[mask], heads["any"], bundle.classes, threshold=threshold)
    # layers (evidence models): surface = the upper paint layer; hidden = below it and not also on top
    top, bottom = labels.labels_top[mask].astype(bool), labels.labels_bottom[mask].astype(bool)
    if heads.get("surface") is not None:
        metrics["surface"] = per_pigment_metrics(top, heads["surface"], bundle.classes, threshold=threshold)
        metrics["hidden"] = per_pigment_metrics(bottom & ~top, heads["hidden"], bundle.classes, threshold=threshold)
        if heads.get("seen") is not None:
            hid, unseen = bottom & ~top, ~heads["seen"]
            metrics["hidden_cannot_tell"] = {
                c: {"labelled_hidden": int(hid[:, k].sum()),
                    "share_not_seen": float(unseen[hid[:, k], k].mean()) if hid[:, k].any() else None}
                for k, c in enumerate(bundle.classes)}
    metrics["model"] = str(bundle.path) if bundle.path else None
    metrics["model_sha256"] = bundle.sha256
    metrics["scan"] = source
    metrics["labels"] = str(labels_path)
    metrics["n_labelled"] = int(labels.n_labelled)
    metrics["excluded_training_pixels"] = 0 if include_training_pixels else n_trained
    metrics["training_pixels_included"] = n_trained if include_training_pixels else 0
    return metrics
