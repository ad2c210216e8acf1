"""Honest quality numbers: detectable labels, the element-evidence rule, layer scoring, calibration.

METHOD.md ("How this project scores itself") defines what a quality claim is made against:

* **detectable labels**: a pigment counts as a positive where its key elements
  (:func:`xrfcore.library.key_elements`) each deliver at least ``min_photons`` expected photons from
  the paint layer that holds it (the simulator knows each layer's element signal); a positive that
  is not detectable is left out of the "detectable" scores (no model can see it from that pixel);
* **the baseline**: a pigment is present iff all its key elements are significant in the element
  evidence (:func:`rule_predictions`); nothing is tuned on the scan being scored;
* **layers**: ``surface`` = the uppermost paint layer; ``hidden`` = paint under another paint layer,
  scored where detectable from that layer and where the same pigment is not also on top; a pigment
  only hidden is a negative for surface, a surface pigment a negative for hidden;
* **calibration**: expected calibration error over 10 equal-width bins.

Everything here is numpy; it is shared by ``evaluate``, the quality benchmark and the tests.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from xrfcore.model.evidence_model import expected_calibration_error

__all__ = ["detectable", "rule_predictions", "masked_scores", "score_heads", "thin_counts", "MIN_PHOTONS"]

#: Expected photons a pigment's key element must deliver from its layer to count as detectable.
MIN_PHOTONS = 50.0

#: Scored positives a (pigment, layer) needs to enter ``macro_f1_enough``: fewer say little about that pigment
#: (one detectable pixel gives an F1 of 0 or 1).
MIN_SUPPORT = 30


def detectable(layer_photons: np.ndarray, photon_elements: Sequence[str], classes: Sequence[str], *,
               min_photons: float = MIN_PHOTONS, library=None) -> np.ndarray:
    """``(..., 2, K)`` bool: class k would be seen from the upper (0) / lower (1) paint layer.

    ``layer_photons`` is ``(..., 2, n_elements)`` expected photons per layer and element
    (:func:`xrfcore.simulate.mockup.make_mockup`). A class with several key elements needs all of them.
    """
    from xrfcore.library import key_elements

    lp = np.asarray(layer_photons, dtype=np.float64)
    out = np.zeros(lp.shape[:-1] + (len(classes),), dtype=bool)
    els = list(photon_elements)
    for k, cls in enumerate(classes):
        keys = [els.index(e) for e in key_elements(cls, library) if e in els]
        if keys:
            out[..., k] = np.all(lp[..., keys] >= min_photons, axis=-1)
    return out


def rule_predictions(z: np.ndarray, elements: Sequence[str], classes: Sequence[str], *,
                     min_significance: float = 5.0, library=None) -> np.ndarray:
    """The element-evidence rule: ``(n, K)`` uint8, 1 iff every key element is ``min_significance`` significant."""
    from xrfcore.library import key_elements

    z = np.asarray(z)
    els = list(elements)
    out = np.zeros((z.shape[0], len(classes)), dtype=np.uint8)
    for k, cls in enumerate(classes):
        keys = [els.index(e) for e in key_elements(cls, library) if e in els]
        if keys:
            out[:, k] = np.all(z[:, keys] >= min_significance, axis=1)
    return out


def masked_scores(y_true: np.ndarray, y_prob: np.ndarray, classes: Sequence[str], *,
                  mask: np.ndarray | None = None, threshold: float = 0.5) -> dict[str, Any]:
    """Per-class F1, sensitivity, precision, support and ECE on the entries where ``mask`` is True.

    ``y_true``/``y_prob``/``mask`` are ``(n, K)``; the mask removes entries from the scoring (e.g.
    positives that are not detectable). ``macro_f1`` averages the classes with at least one positive,
    ``macro_f1_enough`` those with at least :data:`MIN_SUPPORT` (``enough_classes``); ``pooled_ece`` pools
    every kept entry.
    """
    t = np.asarray(y_true).astype(bool)
    p = np.asarray(y_prob, dtype=np.float64)
    m = np.ones_like(t) if mask is None else np.asarray(mask).astype(bool)
    per = {}
    for k, cls in enumerate(classes):
        sel = m[:, k]
        tk, pk = t[sel, k], p[sel, k]
        call = pk >= threshold
        tp, fp, fn = int(np.sum(tk & call)), int(np.sum(~tk & call)), int(np.sum(tk & ~call))
        per[cls] = {"f1": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else None,
                    "sensitivity": tp / (tp + fn) if tp + fn else None,
                    "precision": tp / (tp + fp) if tp + fp else None,
                    "support": int(tk.sum()), "n": int(sel.sum()), "ece": expected_calibration_error(pk, tk.astype(float))}
    f1s = [v["f1"] for v in per.values() if v["support"] > 0 and v["f1"] is not None]
    enough = [c for c, v in per.items() if v["support"] >= MIN_SUPPORT and v["f1"] is not None]
    return {"per_pigment": per, "macro_f1": float(np.mean(f1s)) if f1s else None,
            "macro_f1_enough": float(np.mean([per[c]["f1"] for c in enough])) if enough else None,
            "enough_classes": enough, "pooled_ece": expected_calibration_error(p[m], t[m].astype(float))}


def score_heads(prob: dict[str, np.ndarray | None], labels_top: np.ndarray, labels_bottom: np.ndarray,
                det: np.ndarray, classes: Sequence[str], *, threshold: float = 0.5) -> dict[str, Any]:
    """Any-layer (all labels, detectable labels), surface and hidden scores of one set of predictions.

    ``prob`` holds ``any`` and optionally ``surface``/``hidden`` (n, K); ``labels_top``/``labels_bottom``
    (n, K) {0, 1}; ``det`` (n, 2, K) from :func:`detectable`.
    """
    top, bottom = np.asarray(labels_top).astype(bool), np.asarray(labels_bottom).astype(bool)
    anyl = top | bottom
    det_any = (top & det[:, 0]) | (bottom & det[:, 1])
    out = {"any_all": masked_scores(anyl, prob["any"], classes, threshold=threshold),
           "any_detectable": masked_scores(anyl, prob["any"], classes, mask=~(anyl & ~det_any), threshold=threshold)}
    hidden = bottom & ~top
    if prob.get("surface") is not None:
        out["surface"] = masked_scores(top, prob["surface"], classes, mask=~(top & ~det[:, 0]), threshold=threshold)
    if prob.get("hidden") is not None:
        out["hidden"] = masked_scores(hidden, prob["hidden"], classes, mask=~(hidden & ~det[:, 1]),
                                      threshold=threshold)
    return out


def thin_counts(counts: np.ndarray, fraction: float, *, seed: int) -> np.ndarray:
    """Binomially thinned copy in the counts' own dtype: each count kept with probability ``fraction`` (a
    shorter dwell); :func:`xrfcore.model.augment.thin_counts` with a generator seeded ``seed``."""
    from xrfcore.model.augment import thin_counts as thin

    counts = np.asarray(counts)
    return thin(counts, float(fraction), np.random.default_rng(seed)).astype(counts.dtype)
