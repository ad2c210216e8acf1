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

__all__ = ["predict_spectra", "predict_preprocessed", "pixel_spectra", "PREDICT_METHODS"]

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
        spec = tf.TensorSpec((batch_size, *model.input_shape[1:]), tf.float32)

        @tf.function(jit_compile=True, input_signature=[spec], reduce_retracing=True)
        def fn(x):
            return model(x, training=False)

        per_model[batch_size] = fn
    return fn


def predict_preprocessed(
    model: "keras.Model",
    x: np.ndarray,
    *,
    batch_size: int = 256,
    method: str = "xla",
) -> np.ndarray:
    """Run the model on preprocessed spectra.

    Parameters
    ----------
    model : keras.Model
        Input ``(batch, n_channels, 1)``.
    x : (n_spectra, n_channels) or (n_spectra, n_channels, 1) array
        Preprocessed spectra (float32).
    batch_size : int
        Spectra per forward pass. Memory grows with it (~1.5 MB per spectrum at 1360 channels
        in the first block); 256 is fast and modest.
    method : {"xla", "call", "predict"}
        See :data:`PREDICT_METHODS`. ``"xla"`` falls back to ``"call"`` if XLA is unavailable.

    Returns
    -------
    (n_spectra, K) ndarray, float32
        Probabilities.
    """
    if method not in PREDICT_METHODS:
        raise ValueError(f"method must be one of {PREDICT_METHODS}, got {method!r}")
    arr = np.asarray(x, dtype=np.float32)
    if arr.ndim == 2:
        arr = arr[..., None]
    n_in = model.input_shape[1]
    if arr.ndim != 3 or arr.shape[1] != n_in:
        raise ValueError(f"expected spectra of shape (n, {n_in}) for this model, got {np.shape(x)}")
    n, k = arr.shape[0], model.output_shape[-1]
    out = np.empty((n, k), dtype=np.float32)
    if n == 0:
        return out
    if method == "predict":
        return np.asarray(model.predict(arr, batch_size=batch_size, verbose=0), dtype=np.float32)
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
        block = arr[a : a + bs]
        m = block.shape[0]
        if fn is not None:
            if m < bs:
                block = np.concatenate([block, np.zeros((bs - m, *block.shape[1:]), np.float32)])
            out[a : a + m] = fn(block).numpy()[:m]
        else:
            out[a : a + m] = np.asarray(model(block, training=False))
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
    from xrfcore.preprocess import preprocess_spectra

    arr = np.asarray(spectra)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2:
        raise ValueError(f"expected spectra of shape (n_spectra, n_channels), got {np.shape(spectra)}")
    out = np.empty((arr.shape[0], bundle.n_classes), dtype=np.float32)
    block = max(int(batch_size), 1) * 16
    for a in range(0, arr.shape[0], block):
        x = preprocess_spectra(arr[a : a + block], calibration, bundle.preprocess)
        out[a : a + block] = predict_preprocessed(bundle.model, x, batch_size=batch_size, method=method)
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
