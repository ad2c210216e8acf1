"""Gradient-boosted oblivious trees on the element-evidence vector: small, fast, stored as plain numbers.

Used by the evidence model for its ``hidden`` outputs (is a pigment under another paint layer?), a
question of line ratios *conditioned* on how many photons carry them, which a small network on the
same features learns poorly (models/README.md, stop 7). An *oblivious* tree asks the same question
(``feature > threshold``) of every pixel at each of its ``depth`` levels, so a pixel's leaf is the
``depth``-bit number of its answers: prediction is one gather and compare per level and tree, no
branching, vectorised over pixels (:meth:`ObliviousForest.predict_proba`).

Training (:func:`fit_forest`) is Newton boosting of the logistic loss on features binned at their
training quantiles (the thresholds are bin edges, so they are values of the raw features), one
ensemble per output, each on its own rows (a mask per output), seeded and deterministic, with early
stopping on a validation part. The model file holds the arrays as JSON lists (:meth:`to_dict`):
nothing is unpickled.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any, Callable, Sequence

import numpy as np

from xrfcore.errors import ConfigError, ModelError

__all__ = ["ObliviousForest", "fit_forest", "quantile_edges"]


@dataclass(frozen=True)
class ObliviousForest:
    """Boosted oblivious trees for ``n_outputs`` binary outputs.

    ``feature`` (T, D) int and ``threshold`` (T, D) float32: tree ``t`` sends a pixel right at level
    ``d`` where ``x[feature[t, d]] > threshold[t, d]``, its leaf is ``sum_d right_d << d``;
    ``leaf`` (T, 2**D) float32 log-odds increments; ``output`` (T,) which output each tree adds to;
    ``bias`` (n_outputs,) starting log-odds.
    """

    feature: np.ndarray
    threshold: np.ndarray
    leaf: np.ndarray
    output: np.ndarray
    bias: np.ndarray
    n_features: int

    def __post_init__(self) -> None:
        t, d = self.feature.shape
        if (self.threshold.shape != (t, d) or self.leaf.shape != (t, 2 ** d) or self.output.shape != (t,)
                or self.bias.ndim != 1):
            raise ModelError(f"inconsistent tree arrays: feature {self.feature.shape}, threshold "
                             f"{self.threshold.shape}, leaf {self.leaf.shape}, output {self.output.shape}")
        if t and (self.feature.min() < 0 or self.feature.max() >= self.n_features
                  or self.output.min() < 0 or self.output.max() >= self.bias.size):
            raise ModelError("tree arrays index features or outputs that do not exist")

    @property
    def n_outputs(self) -> int:
        return int(self.bias.size)

    @property
    def depth(self) -> int:
        return int(self.feature.shape[1])

    def select(self, outputs: Sequence[int]) -> "ObliviousForest":
        """The forest of the given outputs only (in that order; their trees, nothing else)."""
        outputs = [int(k) for k in outputs]
        new_index = {k: i for i, k in enumerate(outputs)}
        keep = np.isin(self.output, outputs)
        return ObliviousForest(feature=self.feature[keep], threshold=self.threshold[keep], leaf=self.leaf[keep],
                               output=np.asarray([new_index[int(k)] for k in self.output[keep]], np.int64),
                               bias=self.bias[outputs], n_features=self.n_features)

    def predict_margin(self, X: np.ndarray, *, chunk: int = 512) -> np.ndarray:
        """Log-odds ``(n, n_outputs)`` float32 for features ``X`` (n, n_features).

        Trees x pixels, in blocks of ``chunk`` pixels: every distinct test once, then per level one row
        gather of its answers; then one gather of the leaf values and one matrix product that sums each
        output's trees.
        """
        X = np.asarray(X, dtype=np.float32)
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise ModelError(f"the trees read {self.n_features} features, got an array of shape {X.shape}")
        n, (t, depth) = X.shape[0], self.feature.shape
        out = np.empty((n, self.n_outputs), np.float32)
        sums, flat_leaf, base, test_feature, test_threshold, test_of = self._packed
        for a in range(0, n, chunk):
            xt = np.ascontiguousarray(X[a:a + chunk].T)               # (F, m)
            bits = (xt[test_feature] > test_threshold).view(np.uint8)  # each distinct test once: (U, m)
            idx = bits[test_of[depth - 1]].astype(np.int32)
            for d in range(depth - 2, -1, -1):                        # leaf = sum_d right_d << d
                idx <<= 1
                idx += bits[test_of[d]]
            idx += base
            out[a:a + chunk] = (sums @ np.take(flat_leaf, idx)).T + self.bias
        return out

    @cached_property
    def _packed(self) -> tuple[np.ndarray, ...]:
        """Arrays :meth:`predict_margin` reads, laid out once: output-sum matrix, flat leaves, leaf offsets,
        the distinct (feature, threshold) tests (many trees share them) and, level-major, which test each
        tree's level asks."""
        t, depth = self.feature.shape
        sums = np.zeros((self.n_outputs, t), np.float32)
        sums[self.output, np.arange(t)] = 1.0
        base = (np.arange(t, dtype=np.int32) * np.int32(2 ** depth))[:, None]
        pairs = np.stack([self.feature.ravel().astype(np.int64),
                          np.ascontiguousarray(self.threshold.ravel()).view(np.int32).astype(np.int64)], axis=1)
        tests, test_of = np.unique(pairs, axis=0, return_inverse=True)
        test_threshold = tests[:, 1].astype(np.int32).view(np.float32)[:, None]
        return (sums, np.ascontiguousarray(self.leaf.ravel()), base, tests[:, 0], test_threshold,
                np.ascontiguousarray(test_of.reshape(t, depth).T))

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Probabilities ``(n, n_outputs)`` float32."""
        m = self.predict_margin(X)
        return (1.0 / (1.0 + np.exp(-np.clip(m, -40.0, 40.0)))).astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "oblivious-boosting", "n_features": int(self.n_features), "depth": self.depth,
                "feature": self.feature.astype(int).tolist(),
                "threshold": [_short(row) for row in self.threshold],
                "leaf": [_short(row) for row in self.leaf],
                "output": self.output.astype(int).tolist(), "bias": _short(self.bias)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ObliviousForest":
        try:
            if d.get("kind") != "oblivious-boosting":
                raise ValueError(f"unknown tree kind {d.get('kind')!r}")
            depth = int(d["depth"])
            feature = np.asarray(d["feature"], np.int64).reshape(-1, depth)
            return cls(feature=feature, threshold=np.asarray(d["threshold"], np.float32).reshape(-1, depth),
                       leaf=np.asarray(d["leaf"], np.float32).reshape(-1, 2 ** depth),
                       output=np.asarray(d["output"], np.int64).reshape(-1), bias=np.asarray(d["bias"], np.float32),
                       n_features=int(d["n_features"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"invalid tree ensemble in the model metadata: {exc}") from exc


def _short(values: np.ndarray) -> list[float]:
    """float32 values as the shortest decimals that read back as the same float32 (JSON stays small)."""
    return [float(str(v)) for v in np.asarray(values, np.float32)]


def quantile_edges(X: np.ndarray, n_bins: int = 64) -> list[np.ndarray]:
    """Per feature, the distinct training quantiles used as candidate thresholds (float32, ascending)."""
    qs = np.linspace(0.0, 1.0, n_bins + 1)[1:-1]
    return [np.unique(np.quantile(X[:, f], qs).astype(np.float32)) for f in range(X.shape[1])]


def _binned(X: np.ndarray, edges: Sequence[np.ndarray]) -> np.ndarray:
    """Bin index per entry: ``b`` where ``edges[b-1] < x <= edges[b]`` (so ``x > edges[b]`` <=> bin > b)."""
    return np.stack([np.searchsorted(e, X[:, f].astype(np.float32), side="left") for f, e in enumerate(edges)],
                    axis=1).astype(np.int32)


def _logloss(margin: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(np.logaddexp(0.0, margin) - y * margin))


def _fit_one(Xb: np.ndarray, y: np.ndarray, edges: Sequence[np.ndarray], Xb_val: np.ndarray | None,
             y_val: np.ndarray | None, *, n_rounds: int, depth: int, learning_rate: float, l2: float,
             patience: int) -> tuple[list[tuple[np.ndarray, np.ndarray, np.ndarray]], float, int, float]:
    """Trees of one output: [(features (D,), bins (D,), leaf (2**D,))], bias, rounds kept and the validation
    log loss after them (inf without a validation part)."""
    n, n_f = Xb.shape
    n_b = max(len(e) for e in edges) + 1
    valid = np.zeros((n_f, n_b), bool)              # a split "bin > b" needs an edge b and rows on its right
    for f, e in enumerate(edges):
        valid[f, :len(e)] = True
    prior = float(np.clip(y.mean(), 1e-4, 1 - 1e-4)) if n else 0.5
    bias = float(np.float32(np.log(prior / (1 - prior))))
    m = np.full(n, bias)
    mv = None if Xb_val is None else np.full(Xb_val.shape[0], bias)
    cols = np.arange(n_f, dtype=np.int64) * n_b
    trees, best, best_round, since = [], np.inf, 0, 0
    for r in range(int(n_rounds)):
        p = 1.0 / (1.0 + np.exp(-m))
        g, h = p - y, np.maximum(p * (1.0 - p), 1e-6)
        node = np.zeros(n, np.int64)
        feats, bins = np.zeros(depth, np.int64), np.zeros(depth, np.int64)
        for d in range(depth):
            n_nodes = 2 ** d
            idx = (node[:, None] * (n_f * n_b) + cols + Xb).ravel()
            G = np.bincount(idx, np.repeat(g, n_f), minlength=n_nodes * n_f * n_b).reshape(n_nodes, n_f, n_b)
            H = np.bincount(idx, np.repeat(h, n_f), minlength=n_nodes * n_f * n_b).reshape(n_nodes, n_f, n_b)
            GL, HL = np.cumsum(G, axis=2), np.cumsum(H, axis=2)
            GR, HR = GL[:, :, -1:] - GL, HL[:, :, -1:] - HL
            gain = (GL ** 2 / (HL + l2) + GR ** 2 / (HR + l2)).sum(axis=0)
            gain = np.where(valid, gain, -np.inf)
            f, b = np.unravel_index(int(np.argmax(gain)), gain.shape)
            feats[d], bins[d] = f, b
            node = node + ((Xb[:, f] > b).astype(np.int64) << d)
        G = np.bincount(node, g, minlength=2 ** depth)
        H = np.bincount(node, h, minlength=2 ** depth)
        leaf = (-learning_rate * G / (H + l2)).astype(np.float32)  # as stored: the model file's numbers
        m = m + leaf[node]
        trees.append((feats, bins, leaf))
        if mv is not None:
            vnode = np.zeros(Xb_val.shape[0], np.int64)
            for d in range(depth):
                vnode += (Xb_val[:, feats[d]] > bins[d]).astype(np.int64) << d
            mv = mv + leaf[vnode]
            loss = _logloss(mv, y_val)
            if loss < best - 1e-6:
                best, best_round, since = loss, r + 1, 0
            else:
                since += 1
                if since >= patience:
                    break
        else:
            best_round = r + 1
    return trees[:best_round], bias, best_round, best


def fit_forest(X: np.ndarray, Y: np.ndarray, *, mask: np.ndarray | None = None, X_val: np.ndarray | None = None,
               Y_val: np.ndarray | None = None, mask_val: np.ndarray | None = None, n_rounds: int = 200,
               depth: int = 5, learning_rate: float = 0.15, l2: float = 1.0, n_bins: int = 64, patience: int = 20,
               log: Callable[[str], None] | None = None) -> tuple[ObliviousForest, dict[str, Any]]:
    """Boosted oblivious trees, one ensemble per column of ``Y`` (n, K) 0/1.

    ``mask`` (n, K) bool leaves entries out of a column's training (e.g. layer positives no detector
    can see); ``X_val``/``Y_val``/``mask_val`` stop each column's boosting when its validation log loss
    has not improved for ``patience`` rounds (the best round count is kept). Deterministic: no sampling.
    Returns the forest and ``{"rounds": [...], "validation_logloss": [...]}``.
    """
    X = np.asarray(X, np.float32)
    Y = np.asarray(Y).astype(np.float64)
    if X.ndim != 2 or Y.ndim != 2 or X.shape[0] != Y.shape[0]:
        raise ConfigError(f"trees need X (n, F) and Y (n, K) with the same n, got {X.shape} and {Y.shape}")
    if not 1 <= int(depth) <= 8:
        raise ConfigError(f"tree depth must be 1-8, got {depth}")
    mask = np.ones(Y.shape, bool) if mask is None else np.asarray(mask, bool)
    edges = quantile_edges(X, n_bins)
    Xb = _binned(X, edges)
    Xb_val = None if X_val is None else _binned(np.asarray(X_val, np.float32), edges)
    if Y_val is not None:
        Y_val = np.asarray(Y_val).astype(np.float64)
        mask_val = np.ones(Y_val.shape, bool) if mask_val is None else np.asarray(mask_val, bool)
    feature, threshold, leaf, output, bias, info = [], [], [], [], [], {"rounds": [], "validation_logloss": []}
    for k in range(Y.shape[1]):
        rows = mask[:, k]
        vr = None if Xb_val is None else mask_val[:, k]
        trees, b, kept, val_loss = _fit_one(Xb[rows], Y[rows, k], edges, None if vr is None else Xb_val[vr],
                                  None if vr is None else Y_val[vr, k], n_rounds=n_rounds, depth=int(depth),
                                  learning_rate=learning_rate, l2=l2, patience=patience)
        bias.append(b)
        for feats, bins, lv in trees:
            feature.append(feats)
            threshold.append([edges[f][bn] for f, bn in zip(feats, bins)])
            leaf.append(lv)
            output.append(k)
        info["rounds"].append(kept)
        if vr is not None:
            info["validation_logloss"].append(val_loss)
        if log:
            log(f"trees for output {k + 1}/{Y.shape[1]}: {kept} rounds")
    forest = ObliviousForest(feature=np.asarray(feature, np.int64).reshape(-1, depth),
                             threshold=np.asarray(threshold, np.float32).reshape(-1, depth),
                             leaf=np.asarray(leaf, np.float32).reshape(-1, 2 ** depth),
                             output=np.asarray(output, np.int64), bias=np.asarray(bias, np.float32),
                             n_features=X.shape[1])
    return forest, info
