"""Intensity transform and per-spectrum normalisation (the last two preprocessing steps)."""

from __future__ import annotations

import numpy as np

from xrfcore.errors import ConfigError

__all__ = ["log_log_sqrt", "normalise", "NORMALISE_METHODS"]

#: Accepted values of ``normalise(x, method)``.
NORMALISE_METHODS = ("max", "sum", "none")


def _float(x: np.ndarray) -> np.ndarray:
    arr = np.asarray(x)
    return arr if arr.dtype in (np.float32, np.float64) else arr.astype(np.float64)


def log_log_sqrt(x: np.ndarray) -> np.ndarray:
    """The paper's intensity transform ``X' = ln(1 + ln(1 + sqrt(X)))``, elementwise.

    Parameters
    ----------
    x : ndarray, counts >= 0
        Negative values are treated as 0.

    Returns
    -------
    ndarray
        Same shape; float32 stays float32, anything else becomes float64. Input unchanged.

    Examples
    --------
    >>> import numpy as np
    >>> float(log_log_sqrt(np.array([0.0]))[0])
    0.0
    >>> round(float(log_log_sqrt(np.array([(np.e - 1) ** 2]))[0]), 6) == round(float(np.log(2)), 6)
    True
    """
    y = np.maximum(_float(x), 0)
    np.sqrt(y, out=y)
    np.log1p(y, out=y)
    np.log1p(y, out=y)
    return y


def normalise(x: np.ndarray, method: str = "max") -> np.ndarray:
    """Scale each spectrum (axis -1) so spectra of different count totals compare.

    Parameters
    ----------
    x : (..., n_channels) ndarray
    method : {"max", "sum", "none"}
        ``"max"`` (the project default): divide by the spectrum's maximum, so every spectrum
        peaks at 1. ``"sum"``: divide by the sum over channels (unit area). ``"none"``: copy.
        Spectra whose max/sum is 0 stay all zero.

    Returns
    -------
    ndarray
        Same shape; float32 stays float32, anything else becomes float64. Input unchanged.

    Raises
    ------
    ConfigError
        If ``method`` is not one of :data:`NORMALISE_METHODS`.
    """
    if method not in NORMALISE_METHODS:
        raise ConfigError(f"normalise method must be one of {NORMALISE_METHODS}, got {method!r}")
    y = _float(x).copy()
    if method == "none" or y.size == 0:
        return y
    scale = y.max(axis=-1, keepdims=True) if method == "max" else y.sum(axis=-1, keepdims=True)
    scale = np.where(scale > 0, scale, 1).astype(y.dtype)
    y /= scale
    return y
