"""Inference: raw counts -> preprocessing -> model -> probabilities (n, K).

Speed (see ``benchmarks/bench_model.py``): on the 2-core CPU the model's forward pass compiled
once with XLA (``tf.function(jit_compile=True)``) for a fixed batch shape, with the last batch
zero-padded to that shape, beat ``model.predict`` (which rebuilds a data pipeline per call)
and eager ``__call__``; results agree to float32 rounding (< 1e-5). The compiled function is
cached per model and batch size.
"""

from __future__ import annotations

import logging
import weakref
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import keras

    from xrfcore.model.bundle import ModelBundle
    from xrfcore.scan import EnergyCalibration, Scan

__all__ = ["predict_spectra", "predict_layers", "predict_preprocessed", "pixel_spectra", "PREDICT_METHODS"]

_logger = logging.getLogger(__name__)

#: ``"xla"``: cached jit-compiled call, fixed batch shape (default); ``"call"``: eager
#: ``model(x, training=False)`` per batch; ``"predict"``: ``model.predict``.
PREDICT_METHODS = ("xla", "call", "predict")

_FAST: "weakref.WeakKeyDictionary[Any, dict[int, Callable]]" = weakref.WeakKeyDictionary()


def _compiled(model: "keras.Model", batch_size: int) -> Callable:
    import tensorflow as tf

    per_model = _FAST.setdefault(model, {})
    fn = per_model.get(batch_size)
    if fn is None:
        shapes = model.input_shape if isinstance(model.input_shape, list) else [model.input_shape]
        specs = [tf.TensorSpec((batch_size, *shape[1:]), tf.float32) for shape in shapes]
        multi = isinstance(model.input_shape, list)

        @tf.function(jit_compile=True, input_signature=specs, reduce_retracing=True)
        def fn(*x):
            return model(list(x) if multi else x[0], training=False)

        per_model[batch_size] = fn
    return fn


def _as_inputs(model: "keras.Model", x: Any) -> list[np.ndarray]:
    """The model's inputs as a list of float32 arrays ``(n, ...)``; a spectrum gets its channel axis."""
    shapes = model.input_shape if isinstance(model.input_shape, list) else [model.input_shape]
    arrays = list(x) if isinstance(x, (list, tuple)) else [x]
    if len(arrays) != len(shapes):
        raise ValueError(f"this model takes {len(shapes)} inputs, got {len(arrays)}")
    out = []
    for arr, shape in zip(arrays, shapes):
        a = np.asarray(arr, dtype=np.float32)
        if a.ndim == len(shape) - 1:
            a = a[..., None]
        if a.ndim != len(shape) or tuple(a.shape[1:]) != tuple(shape[1:]):
            raise ValueError(f"expected an input of shape (n, {', '.join(str(d) for d in shape[1:])}) for this "
                             f"model, got {np.shape(arr)}")
        out.append(a)
    if len({a.shape[0] for a in out}) != 1:
        raise ValueError(f"model inputs disagree in length: {[a.shape[0] for a in out]}")
    return out


def predict_preprocessed(
    model: "keras.Model",
    x: Any,
    *,
    batch_size: int = 256,
    method: str = "xla",
) -> np.ndarray:
    """Run the model on preprocessed inputs.

    Parameters
    ----------
    model : keras.Model
        Input ``(batch, n_channels, 1)``, or a list of inputs (evidence models: spectrum and
        evidence vector).
    x : (n_spectra, n_channels) or (n_spectra, n_channels, 1) array, or a list of arrays
        Preprocessed spectra (float32), or one array per model input.
    batch_size : int
        Spectra per forward pass. Memory grows with it (~1.5 MB per spectrum at 1360 channels
        in the first block); 256 is fast and modest.
    method : {"xla", "call", "predict"}
        See :data:`PREDICT_METHODS`. ``"xla"`` falls back to ``"call"`` if XLA is unavailable.

    Returns
    -------
    (n_spectra, n_outputs) ndarray, float32
        Probabilities (raw network outputs).
    """
    if method not in PREDICT_METHODS:
        raise ValueError(f"method must be one of {PREDICT_METHODS}, got {method!r}")
    arrays = _as_inputs(model, x)
    multi = isinstance(model.input_shape, list)
    n, k = arrays[0].shape[0], model.output_shape[-1]
    out = np.empty((n, k), dtype=np.float32)
    if n == 0:
        return out
    if method == "predict":
        return np.asarray(model.predict(arrays if multi else arrays[0], batch_size=batch_size, verbose=0),
                          dtype=np.float32)
    bs = int(min(batch_size, n))
    if method == "xla" and n < batch_size:  # few spectra: pad to a power of two, not to batch_size
        bs = min(int(batch_size), max(8, 1 << (n - 1).bit_length()))
    fn = None
    if method == "xla":
        try:
            fn = _compiled(model, bs)
        except Exception as exc:  # pragma: no cover - platform without XLA
            _logger.warning("XLA compile failed (%s); using eager calls", exc)
    for a in range(0, n, bs):
        blocks = [arr[a : a + bs] for arr in arrays]
        m = blocks[0].shape[0]
        if fn is not None:
            if m < bs:
                blocks = [np.concatenate([b, np.zeros((bs - m, *b.shape[1:]), np.float32)]) for b in blocks]
            out[a : a + m] = fn(*blocks).numpy()[:m]
        else:
            out[a : a + m] = np.asarray(model(blocks if multi else blocks[0], training=False))
    return out


def predict_spectra(
    bundle: "ModelBundle",
    spectra: np.ndarray,
    calibration: "EnergyCalibration",
    *,
    batch_size: int = 256,
    method: str = "xla",
) -> np.ndarray:
    """Pigment probabilities for raw spectra.

    Parameters
    ----------
    bundle : ModelBundle
        Model plus its :class:`PreprocessConfig` (energy grid).
    spectra : (n_spectra, n_channels) array, counts
        Raw detector counts sharing one energy calibration.
    calibration : EnergyCalibration
        Channel -> energy (keV) of ``spectra``.
    batch_size : int
        Spectra per forward pass (and per preprocessing block).
    method : {"xla", "call", "predict"}
        See :func:`predict_preprocessed`.

    Returns
    -------
    (n_spectra, K) ndarray, float32
        Probability of each of ``bundle.classes``.

    Raises
    ------
    CalibrationError
        If the preprocessing config refuses the scan's energy range (``pad="error"``).
    """
    return predict_layers(bundle, spectra, calibration, batch_size=batch_size, method=method)["any"]


def predict_layers(
    bundle: "ModelBundle",
    spectra: np.ndarray,
    calibration: "EnergyCalibration",
    *,
    batch_size: int = 256,
    method: str = "xla",
    evidence_config: Any = None,
    with_seen: bool = False,
) -> dict[str, np.ndarray]:
    """Probabilities per output head for raw spectra.

    ``with_seen``: also ``"seen"`` (n, K) bool for evidence models, every key element of the class significant
    (:func:`~xrfcore.model.evidence_model.key_elements_seen`).

    Returns
    -------
    dict
        ``"any"`` (n, K) always; for evidence models also ``"groups"`` (n, G), ``"surface"`` and
        ``"hidden"`` (n, K); ``"surface"``/``"hidden"`` are None for models without them.
        Evidence models' outputs are gated by element evidence and calibrated
        (:mod:`xrfcore.model.evidence_model`).
    """
    from xrfcore.model.evidence_model import key_elements_seen, model_inputs, postprocess, spec_of

    arr = np.asarray(spectra)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2:
        raise ValueError(f"expected spectra of shape (n_spectra, n_channels), got {np.shape(spectra)}")
    parts: dict[str, list[np.ndarray]] = {}
    block = max(int(batch_size), 1) * 16
    for a in range(0, max(arr.shape[0], 1), block):
        inputs, extras = model_inputs(bundle, arr[a : a + block], calibration, evidence_config=evidence_config)
        raw = predict_preprocessed(bundle.model, inputs, batch_size=batch_size, method=method)
        for head, values in postprocess(bundle, raw, extras).items():
            parts.setdefault(head, []).append(values)
        if with_seen and extras is not None:
            parts.setdefault("seen", []).append(key_elements_seen(spec_of(bundle), extras["z"], extras["known"]))
    out: dict[str, Any] = {h: np.concatenate(v) for h, v in parts.items()}
    out.setdefault("surface", None)
    out.setdefault("hidden", None)
    return out


def pixel_spectra(scan: "Scan", mask: np.ndarray, *, rows_per_chunk: int | None = None) -> np.ndarray:
    """Raw spectra of the pixels where ``mask`` is True, in row-major order.

    Parameters
    ----------
    scan : Scan
        ``(n_rows, n_cols, n_channels)`` counts (lazy or in memory).
    mask : (n_rows, n_cols) bool array
        Pixels to read (e.g. the labelled pixels of a :class:`~xrfcore.labels.LabelSet`).
    rows_per_chunk : int, optional
        Rows read per block; the scan's default chunking if None. Rows without a selected
        pixel are not read.

    Returns
    -------
    (mask.sum(), n_channels) ndarray
        Counts in the scan's dtype (memory: n x n_channels x itemsize).
    """
    m = np.asarray(mask, dtype=bool)
    if m.shape != (scan.n_rows, scan.n_cols):
        raise ValueError(f"mask shape {m.shape} does not match the scan's (rows, cols) {(scan.n_rows, scan.n_cols)}")
    out = np.empty((int(m.sum()), scan.n_channels), dtype=scan.dtype)
    step = rows_per_chunk or scan.default_chunk_rows()
    pos = 0
    for a in range(0, scan.n_rows, step):
        b = min(scan.n_rows, a + step)
        sel = m[a:b]
        k = int(sel.sum())
        if k:
            out[pos : pos + k] = scan.read_rows(a, b)[sel]
            pos += k
    return out
