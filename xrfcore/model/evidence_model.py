"""The evidence-backed pigment model: spectrum + element evidence in, gated and calibrated probabilities out.

A model of this kind (``metadata["evidence_model"]`` present) has two inputs:

* ``spectrum``: the preprocessed spectrum (the model's :class:`PreprocessConfig`), read by the
  convolutional trunk of the paper's CNN;
* ``evidence``: a short vector of element evidence per spectrum (:func:`evidence_features`):
  for each library element its significance and its relative abundance, line ratios (:data:`RATIO_FEATURES`:
  Pb and Hg L subshells, K-beta/K-alpha of the K-line elements: what the layers above do to the lines of
  what lies beneath), the Rayleigh and Compton scatter relative to the
  total and the total counts. Scatter carries the matrix: a light Prussian-blue paint scatters more
  than a dense iron-oxide one; the spectrum normalised to its maximum alone loses that.

and one sigmoid output vector laid out in groups (:class:`OutputLayout`): ``any`` (pigment present in
any layer), ``groups`` (same-element groups: an Fe pigment (PB or IO), a Pb pigment (LW or RL), a Cr
pigment (CrG or CrY)), ``surface`` (in the uppermost paint layer) and ``hidden`` (in paint under
another paint layer, and not also on top).

Two steps run after the network, in numpy, with parameters stored in the model file:

1. **Evidence gate**: an output whose key elements (:func:`xrfcore.library.key_elements`) are not all
   significant at the pixel (``gate_significance``, the threshold element identification uses for a
   single spectrum) is set to 0 before calibration. A pigment is never *called* without the lines
   that make it possible. Elements whose lines lie outside the scan's energy range count as unknown
   and do not gate.
2. **Calibration**: per output, an isotonic map fitted on simulated validation spectra (never
   trained on), so a probability of 0.7 is right about 7 times in 10 on data like the simulations.
   Gated outputs map to the observed frequency of "present but not seen" in validation: the honest
   "cannot tell" level, not 0.

Models without ``evidence_model`` metadata (the plain paper CNN) keep working unchanged.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from xrfcore.errors import ModelError

if TYPE_CHECKING:  # pragma: no cover
    from xrfcore.elements.evidence import Evidence, EvidenceConfig
    from xrfcore.model.trees import ObliviousForest
    from xrfcore.model.bundle import ModelBundle
    from xrfcore.scan import EnergyCalibration

__all__ = [
    "FEATURE_ELEMENTS",
    "GROUPS",
    "OutputLayout",
    "EvidenceModelSpec",
    "evidence_features",
    "element_significance",
    "feature_names",
    "RATIO_FEATURES",
    "gate_matrix",
    "gate_open",
    "key_elements_seen",
    "layout_targets",
    "layout_scored",
    "gated_probabilities",
    "with_trees",
    "fit_isotonic",
    "apply_isotonic",
    "expected_calibration_error",
    "reliability_table",
    "run_model",
]

#: Elements of the shipped library whose lines the evidence vector describes.
FEATURE_ELEMENTS: tuple[str, ...] = ("Ca", "Cr", "Fe", "Co", "Cu", "Zn", "As", "Sn", "Hg", "Pb")
#: Same-element groups reported with their own probability: (name, members, key elements).
GROUPS: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = (
    ("Fe pigment (PB or IO)", ("PB", "IO"), ("Fe",)),
    ("Pb pigment without Cr (LW or RL)", ("LW", "RL"), ("Pb",)),
    ("Cr pigment (CrG or CrY)", ("CrG", "CrY"), ("Cr",)),
)
#: Line-ratio features: name -> (numerator, denominator) templates (prefix sums, ``Evidence.amplitude``).
#: Paint above a layer absorbs the lines of what lies beneath unequally: K-alpha more than K-beta,
#: and an Hg or Pb L3 edge between two lines of one subshell takes the upper one. ``log((num + 10) /
#: (den + 10))``: 0 where neither line is seen.
RATIO_FEATURES: dict[str, tuple[str, str]] = {
    "Pb L3/L2": ("Pb L3", "Pb L2"), "Hg L3/L2": ("Hg L3", "Hg L2"),
    "Pb L3 Lb/La": ("Pb L3 Lb", "Pb L3 La"), "Hg L3 Lb/La": ("Hg L3 Lb", "Hg L3 La"),
    "Pb L2 Lg/Lb": ("Pb L2 Lg", "Pb L2 Lb"), "Hg L2 Lg/Lb": ("Hg L2 Lg", "Hg L2 Lb"),
    **{f"{el} Kb/Ka": (f"{el} K Kb", f"{el} K Ka") for el in ("Cr", "Fe", "Co", "Cu", "Zn", "As")},
}
#: The ratios of models saved before the K-beta/K-alpha and split-subshell ratios existed.
LEGACY_RATIOS: tuple[str, ...] = ("Pb L3/L2", "Hg L3/L2")
DEFAULT_RATIOS: tuple[str, ...] = tuple(RATIO_FEATURES)


@dataclass(frozen=True)
class OutputLayout:
    """Where each output group sits in the model's output vector."""

    classes: tuple[str, ...]
    groups: tuple[str, ...]
    heads: tuple[str, ...] = ("any", "groups", "surface", "hidden")

    def sizes(self) -> dict[str, int]:
        return {h: (len(self.groups) if h == "groups" else len(self.classes)) for h in self.heads}

    def slices(self) -> dict[str, slice]:
        out, a = {}, 0
        for h, n in self.sizes().items():
            out[h] = slice(a, a + n)
            a += n
        return out

    @property
    def n_outputs(self) -> int:
        return sum(self.sizes().values())

    def to_dict(self) -> dict[str, Any]:
        return {"classes": list(self.classes), "groups": list(self.groups), "heads": list(self.heads)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "OutputLayout":
        try:
            return cls(tuple(d["classes"]), tuple(d["groups"]), tuple(d.get("heads", cls.heads)))
        except (KeyError, TypeError) as exc:
            raise ModelError(f"invalid output layout in the model metadata: {exc}") from exc


def _ratios_of(elements: Sequence[str], ratios: Sequence[str]) -> list[str]:
    return [r for r in ratios if r.split()[0] in elements]


def feature_names(elements: Sequence[str] = FEATURE_ELEMENTS, ratios: Sequence[str] = DEFAULT_RATIOS) -> list[str]:
    """Names of the evidence features, in order."""
    names = [f"{el} significance" for el in elements] + [f"{el} abundance" for el in elements]
    names += _ratios_of(elements, ratios)
    return names + ["Rayleigh/total", "Compton/total", "log10 total counts"]


def _element_columns(values: np.ndarray, fitted: Sequence[str], elements: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Columns of ``values`` (n, len(fitted)) for ``elements``, float32, 0 where not fitted; and the known mask."""
    out = np.zeros((values.shape[0], len(elements)), np.float32)
    known = np.zeros(out.shape, bool)
    for i, el in enumerate(elements):
        if el in fitted:
            out[:, i] = values[:, list(fitted).index(el)]
            known[:, i] = True
    return out, known


def element_significance(ev: "Evidence", elements: Sequence[str] = FEATURE_ELEMENTS) -> tuple[np.ndarray, np.ndarray]:
    """Significance ``(n, len(elements))`` float32 of the given elements, 0 where not fitted, and the known mask
    (False for elements whose lines lie outside the spectra's energy range)."""
    return _element_columns(ev.significance, ev.elements, elements)


def evidence_features(ev: "Evidence", elements: Sequence[str] = FEATURE_ELEMENTS,
                      ratios: Sequence[str] = DEFAULT_RATIOS) -> tuple[np.ndarray, np.ndarray]:
    """Evidence vector ``(n, F)`` float32 and the known mask ``(n, len(elements))`` of each element.

    ``ratios``: names of :data:`RATIO_FEATURES` to include (a model file records its own).

    An element whose lines lie outside the spectra's energy range is unknown: its features are
    those of an absent element and its ``known`` entry is False.
    """
    n = ev.net_counts.shape[0]
    total = np.maximum(ev.total_counts, 1.0)[:, None]
    z, known = element_significance(ev, elements)
    ab, _ = _element_columns(ev.net_counts, ev.elements, elements)
    sig = np.arcsinh(z / 3.0)
    abund = np.log10((np.maximum(ab, 0.0) + 10.0) / total)
    cols = [sig, abund]
    for name in _ratios_of(elements, ratios):
        num, den = (ev.amplitude(t) for t in RATIO_FEATURES[name])
        cols.append((np.log((np.maximum(num, 0) + 10.0) / (np.maximum(den, 0) + 10.0)))[:, None])
    names = ev.templates.names
    ray = sum((ev.amplitudes[:, j] for j, nm in enumerate(names) if nm.endswith("Rayleigh")), np.zeros(n))
    com = sum((ev.amplitudes[:, j] for j, nm in enumerate(names) if "Compton" in nm), np.zeros(n))
    cols += [np.log10((np.maximum(ray, 0) + 10.0) / total[:, 0])[:, None],
             np.log10((np.maximum(com, 0) + 10.0) / total[:, 0])[:, None],
             np.log10(total)]
    return np.concatenate(cols, axis=1).astype(np.float32), known


def gate_matrix(layout: OutputLayout, elements: Sequence[str] = FEATURE_ELEMENTS, library=None) -> np.ndarray:
    """0/1 ``(n_outputs, n_elements)``: the key elements each output needs."""
    from xrfcore.library import key_elements

    index = {el: i for i, el in enumerate(elements)}
    group_keys = {g[0]: g[2] for g in GROUPS}
    m = np.zeros((layout.n_outputs, len(elements)))
    sl = layout.slices()
    for head in layout.heads:
        names = layout.groups if head == "groups" else layout.classes
        for k, name in enumerate(names):
            keys = group_keys.get(name, ()) if head == "groups" else key_elements(name, library)
            for el in keys:
                if el in index:
                    m[sl[head].start + k, index[el]] = 1.0
    return m


def key_elements_seen(spec: "EvidenceModelSpec", z: np.ndarray, known: np.ndarray, library=None) -> np.ndarray:
    """``(n, K)`` bool: every key element of pigment class k is significant (or its lines lie outside the
    scan's range), i.e. the gate of its any-layer output is open.

    Where it is False the spectrum holds no line of the pigment: it is absent from the surface, and absent
    or hidden under paint that absorbs those lines beneath it; a hidden-layer call there is "cannot tell".
    """
    gate = gate_matrix(spec.layout, spec.feature_elements, library)[spec.layout.slices()["any"]]
    return gate_open(z, known, gate, spec.gate_significance)


def gate_open(z: np.ndarray, known: np.ndarray, gate: np.ndarray, min_significance: float) -> np.ndarray:
    """``(n, n_outputs)`` bool: every element an output needs (``gate`` rows) is significant or unknown."""
    seen = (z >= min_significance) | ~known                 # (n, E)
    missing = (~seen).astype(np.float32) @ gate.T.astype(np.float32)  # (n, n_outputs): needed but not seen
    return missing <= 0


def apply_gate(scores: np.ndarray, z: np.ndarray, known: np.ndarray, gate: np.ndarray,
               min_significance: float) -> np.ndarray:
    """Zero every output whose needed elements are not all significant (unknown elements pass)."""
    return np.where(gate_open(z, known, gate, min_significance), scores, 0.0).astype(np.float32)


def layout_targets(labels_any: np.ndarray, labels_top: np.ndarray, labels_bottom: np.ndarray,
                   classes: Sequence[str]) -> np.ndarray:
    """Targets ``(n, n_outputs)`` of the default layout from per-layer labels.

    ``surface`` = in the upper paint layer; ``hidden`` = in the lower paint layer and not also on top.
    """
    classes = list(classes)
    groups = []
    for _, members, _ in GROUPS:
        idx = [classes.index(c) for c in members if c in classes]
        groups.append(labels_any[:, idx].max(axis=1) if idx else np.zeros(labels_any.shape[0], labels_any.dtype))
    hidden = labels_bottom & (1 - labels_top)
    return np.concatenate([labels_any, np.stack(groups, axis=1), labels_top, hidden], axis=1).astype(np.uint8)


def layout_scored(labels_top: np.ndarray, labels_bottom: np.ndarray, detectable: np.ndarray,
                  classes: Sequence[str]) -> np.ndarray:
    """Bool ``(n, n_outputs)``: the entries of :func:`layout_targets` a layer output is trained and scored on.

    A ``surface`` positive counts only where its key elements are detectable from the upper paint layer,
    a ``hidden`` positive only where they are detectable from the lower one (``detectable`` ``(n, 2, K)``
    from :func:`xrfcore.model.quality.detectable`): a pigment under thick lead that sends no photon
    is "cannot tell", not a positive to learn. Negatives, ``any`` and ``groups`` entries are all kept.
    """
    top, bottom = np.asarray(labels_top).astype(bool), np.asarray(labels_bottom).astype(bool)
    det = np.asarray(detectable).astype(bool)
    n, k = top.shape
    keep_any = np.ones((n, k + len(GROUPS)), bool)
    keep_surface = ~(top & ~det[:, 0])
    keep_hidden = ~(bottom & ~top & ~det[:, 1])
    return np.concatenate([keep_any, keep_surface, keep_hidden], axis=1)


def default_layout(classes: Sequence[str]) -> OutputLayout:
    return OutputLayout(tuple(classes), tuple(g[0] for g in GROUPS))


# -- calibration ----------------------------------------------------------------------------------
def fit_isotonic(scores: np.ndarray, targets: np.ndarray, *, max_knots: int = 64,
                 mask: np.ndarray | None = None) -> list[dict[str, list[float]]]:
    """Per-column isotonic calibration maps ``[{"x": [...], "y": [...]}, ...]`` (monotone, 0-1).

    The fitted step function is thinned to at most ``max_knots`` points for the model file and
    applied by linear interpolation. ``mask`` (same shape, bool) leaves entries out of the fit.
    """
    from sklearn.isotonic import IsotonicRegression

    out = []
    for k in range(scores.shape[1]):
        keep = slice(None) if mask is None else np.asarray(mask)[:, k].astype(bool)
        s, t = scores[keep, k].astype(np.float64), targets[keep, k].astype(np.float64)
        if s.size == 0:
            out.append({"x": [0.0, 1.0], "y": [0.0, 0.0]})
            continue
        if t.min() == t.max():
            out.append({"x": [0.0, 1.0], "y": [float(t[0]), float(t[0])]})
            continue
        iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(s, t)
        x = np.asarray(iso.X_thresholds_, dtype=np.float64)
        y = np.asarray(iso.y_thresholds_, dtype=np.float64)
        if x.size > max_knots:
            keep = np.unique(np.linspace(0, x.size - 1, max_knots).round().astype(int))
            x, y = x[keep], y[keep]
        out.append({"x": [float(v) for v in x], "y": [float(v) for v in y]})
    return out


def apply_isotonic(scores: np.ndarray, maps: Sequence[dict[str, Sequence[float]]]) -> np.ndarray:
    """Apply :func:`fit_isotonic` maps column by column (float32)."""
    out = np.empty_like(scores, dtype=np.float32)
    for k, m in enumerate(maps):
        out[:, k] = np.interp(scores[:, k], m["x"], m["y"])
    return out


def expected_calibration_error(prob: np.ndarray, target: np.ndarray, *, n_bins: int = 10) -> float:
    """ECE over ``n_bins`` equal-width probability bins (all entries pooled)."""
    p = np.asarray(prob, dtype=np.float64).ravel()
    t = np.asarray(target, dtype=np.float64).ravel()
    if p.size == 0:
        return float("nan")
    bins = np.minimum((p * n_bins).astype(int), n_bins - 1)
    err = 0.0
    for b in range(n_bins):
        sel = bins == b
        if sel.any():
            err += sel.mean() * abs(p[sel].mean() - t[sel].mean())
    return float(err)


def reliability_table(prob: np.ndarray, target: np.ndarray, *, n_bins: int = 10) -> list[dict[str, float]]:
    """Per bin: ``lo``, ``hi``, ``n``, ``mean_predicted``, ``observed`` (the reliability diagram)."""
    p = np.asarray(prob, dtype=np.float64).ravel()
    t = np.asarray(target, dtype=np.float64).ravel()
    bins = np.minimum((p * n_bins).astype(int), n_bins - 1)
    rows = []
    for b in range(n_bins):
        sel = bins == b
        rows.append({"lo": b / n_bins, "hi": (b + 1) / n_bins, "n": int(sel.sum()),
                     "mean_predicted": float(p[sel].mean()) if sel.any() else None,
                     "observed": float(t[sel].mean()) if sel.any() else None})
    return rows


# -- the model file's part ---------------------------------------------------------------------------
@dataclass(frozen=True)
class EvidenceModelSpec:
    """What ``metadata["evidence_model"]`` holds (everything the numpy steps need)."""

    evidence: "EvidenceConfig"
    layout: OutputLayout
    feature_elements: tuple[str, ...]
    feature_mean: np.ndarray
    feature_std: np.ndarray
    gate_significance: float
    calibration: tuple[dict, ...] | None
    ratios: tuple[str, ...] = DEFAULT_RATIOS
    #: Boosted trees on the standardised evidence vector (:mod:`xrfcore.model.trees`), or None; their
    #: outputs replace the network's in the output columns ``tree_columns`` (in order).
    trees: "ObliviousForest | None" = None
    tree_columns: tuple[int, ...] = ()
    #: Per tree column, the trees' weight: the output is ``w * trees + (1 - w) * network`` (1: trees only).
    tree_weights: tuple[float, ...] = ()

    def _weights(self) -> tuple[float, ...]:
        return self.tree_weights or (1.0,) * len(self.tree_columns)

    def to_dict(self) -> dict[str, Any]:
        trees = None if self.trees is None else {"columns": [int(c) for c in self.tree_columns],
                                                 "weights": [float(w) for w in self._weights()],
                                                 **self.trees.to_dict()}
        return {"evidence": self.evidence.to_dict(), "layout": self.layout.to_dict(), "trees": trees,
                "feature_elements": list(self.feature_elements), "ratio_features": list(self.ratios),
                "feature_names": feature_names(self.feature_elements, self.ratios),
                "feature_mean": [float(v) for v in self.feature_mean],
                "feature_std": [float(v) for v in self.feature_std],
                "gate_significance": float(self.gate_significance),
                "calibration": None if self.calibration is None else list(self.calibration)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "EvidenceModelSpec":
        from xrfcore.elements.evidence import EvidenceConfig
        from xrfcore.errors import ConfigError
        from xrfcore.model.trees import ObliviousForest

        try:
            els = tuple(d["feature_elements"])
            trees = d.get("trees")
            spec = cls(evidence=EvidenceConfig.from_dict(d["evidence"]), layout=OutputLayout.from_dict(d["layout"]),
                       feature_elements=els, feature_mean=np.asarray(d["feature_mean"], np.float32),
                       feature_std=np.asarray(d["feature_std"], np.float32),
                       gate_significance=float(d["gate_significance"]),
                       calibration=None if d.get("calibration") is None else tuple(d["calibration"]),
                       ratios=tuple(d.get("ratio_features", LEGACY_RATIOS)),
                       trees=None if not trees else ObliviousForest.from_dict(trees),
                       tree_columns=tuple(int(c) for c in trees["columns"]) if trees else (),
                       tree_weights=tuple(float(w) for w in trees.get("weights", ())) if trees else ())
        except (KeyError, TypeError, ValueError, AttributeError, ConfigError) as exc:
            raise ModelError(f"invalid evidence-model metadata: {type(exc).__name__}: {exc}") from exc
        unknown = sorted(set(spec.ratios) - set(RATIO_FEATURES))
        if unknown:
            raise ModelError(f"evidence-model metadata names line ratios {unknown} this version does not compute; "
                             f"update xrfcore")
        n_f = len(feature_names(els, spec.ratios))
        if spec.feature_mean.shape != (n_f,) or spec.feature_std.shape != (n_f,):
            raise ModelError(f"evidence-model metadata has {spec.feature_mean.shape} feature means for {n_f} features")
        if spec.trees is not None:
            cols = spec.tree_columns
            if (len(cols) != spec.trees.n_outputs or len(set(cols)) != len(cols)
                    or not all(0 <= c < spec.layout.n_outputs for c in cols)):
                raise ModelError(f"the model's trees give {spec.trees.n_outputs} outputs for columns {list(cols)} "
                                 f"of {spec.layout.n_outputs}")
            if spec.tree_weights and (len(spec.tree_weights) != len(cols)
                                      or not all(0.0 <= w <= 1.0 for w in spec.tree_weights)):
                raise ModelError(f"the model's tree weights {list(spec.tree_weights)} do not fit its "
                                 f"{len(cols)} tree columns (one weight in 0..1 each)")
            if spec.trees.n_features != n_f:
                raise ModelError(f"the model's trees read {spec.trees.n_features} features; its evidence has {n_f}")
        if spec.calibration is not None and len(spec.calibration) != spec.layout.n_outputs:
            raise ModelError(f"evidence-model calibration has {len(spec.calibration)} maps for "
                             f"{spec.layout.n_outputs} outputs")
        return spec


#: Parsed specs by the identity of their metadata dict (which the entry holds, so the id is not reused):
#: a model with trees holds some 100,000 numbers, and the maps ask for the spec of every block.
_SPEC_CACHE: "OrderedDict[int, tuple[dict, EvidenceModelSpec]]" = OrderedDict()
_SPEC_CACHE_SIZE = 8
_SPEC_LOCK = threading.Lock()


def spec_of(bundle: "ModelBundle") -> EvidenceModelSpec | None:
    """The bundle's evidence-model spec, or None for a plain CNN.

    Parsed once per metadata dict; code that changes a spec writes a new dict (``spec.to_dict()``),
    never edits the old one in place.
    """
    d = bundle.metadata.get("evidence_model") if isinstance(bundle.metadata, dict) else None
    if not d:
        return None
    with _SPEC_LOCK:  # the maps' blocks may ask from several threads
        hit = _SPEC_CACHE.get(id(d))
        if hit is not None and hit[0] is d:
            _SPEC_CACHE.move_to_end(id(d))
            return hit[1]
    spec = EvidenceModelSpec.from_dict(d)
    with _SPEC_LOCK:
        _SPEC_CACHE[id(d)] = (d, spec)
        while len(_SPEC_CACHE) > _SPEC_CACHE_SIZE:
            _SPEC_CACHE.popitem(last=False)
    return spec


def model_inputs(bundle: "ModelBundle", spectra: np.ndarray, calibration: "EnergyCalibration", *,
                 evidence_config: "EvidenceConfig | None" = None):
    """Network inputs for raw spectra, plus what the numpy steps need.

    Returns ``(inputs, extras)``: ``inputs`` is the preprocessed array (plain CNN) or a list
    ``[spectrum (n, C, 1), evidence (n, F)]``; ``extras`` holds ``z`` and ``known`` (n, E), the
    ``evidence`` and the standardised ``features`` (n, F) (the trees read them), or is None.
    """
    from xrfcore.elements.evidence import fit_evidence
    from xrfcore.preprocess import preprocess_spectra

    spec = spec_of(bundle)
    if spec is None:
        return preprocess_spectra(spectra, calibration, bundle.preprocess), None
    ev = fit_evidence(spectra, calibration, evidence_config or spec.evidence, keep_rebinned=True)
    x = preprocess_spectra(spectra, calibration, bundle.preprocess, rebinned=ev.rebinned)
    ev.rebinned = None                               # not needed after this; the evidence travels on (maps)
    feats, known = evidence_features(ev, spec.feature_elements, spec.ratios)
    feats = (feats - spec.feature_mean) / spec.feature_std
    z, _ = element_significance(ev, spec.feature_elements)
    feats = feats.astype(np.float32)
    return [x[..., None], feats], {"z": z, "known": known, "evidence": ev, "features": feats}


def with_trees(spec: EvidenceModelSpec, raw: np.ndarray, features: np.ndarray | None) -> np.ndarray:
    """Raw network outputs with the spec's tree outputs in their columns, each weighted against the network's
    by its ``tree_weights`` entry (a copy; ``raw`` if no trees).

    ``features``: the standardised evidence vector (``extras["features"]`` of :func:`model_inputs`).
    """
    if spec.trees is None:
        return raw
    if features is None:
        raise ModelError("this model's trees need the evidence features; pass features=")
    out = np.array(raw, dtype=np.float32, copy=True)
    cols = list(spec.tree_columns)
    w = np.asarray(spec._weights(), np.float32)
    out[:, cols] = w * spec.trees.predict_proba(features) + (1.0 - w) * out[:, cols]
    return out


def gated_probabilities(spec: EvidenceModelSpec, raw: np.ndarray, z: np.ndarray, known: np.ndarray, *,
                        features: np.ndarray | None = None, library=None) -> np.ndarray:
    """Raw network outputs ``(n, n_outputs)`` -> the spec's trees (:func:`with_trees`), its evidence gate,
    then its calibration."""
    gate = gate_matrix(spec.layout, spec.feature_elements, library)
    gated = apply_gate(with_trees(spec, raw, features), z, known, gate, spec.gate_significance)
    return apply_isotonic(gated, spec.calibration) if spec.calibration is not None else gated


def postprocess(bundle: "ModelBundle", raw: np.ndarray, extras: dict | None, *, library=None) -> dict[str, np.ndarray]:
    """Gate and calibrate raw network outputs; split them into the layout's heads."""
    spec = spec_of(bundle)
    if spec is None:
        return {"any": raw.astype(np.float32)}
    prob = gated_probabilities(spec, raw, extras["z"], extras["known"], features=extras.get("features"),
                               library=library)
    return {h: prob[:, sl] for h, sl in spec.layout.slices().items()}


def run_model(bundle: "ModelBundle", spectra: np.ndarray, calibration: "EnergyCalibration", *,
              batch_size: int = 256, evidence_config: "EvidenceConfig | None" = None) -> dict[str, np.ndarray]:
    """Probabilities for raw spectra, as a dict of heads (``any`` always; others when the model has them)."""
    from xrfcore.model.predict import predict_preprocessed

    inputs, extras = model_inputs(bundle, spectra, calibration, evidence_config=evidence_config)
    raw = predict_preprocessed(bundle.model, inputs, batch_size=batch_size)
    return postprocess(bundle, raw, extras)
