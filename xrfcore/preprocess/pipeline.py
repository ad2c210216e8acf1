"""The preprocessing pipeline (model input) and the measured background for simulations."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from xrfcore.atomic import atomic_path
from xrfcore.errors import ConfigError
from xrfcore.preprocess.config import PreprocessConfig
from xrfcore.preprocess.grid import EnergyGrid, check_coverage, rebin_to_grid, regrid
from xrfcore.preprocess.snip import snip_background
from xrfcore.preprocess.transform import log_log_sqrt, normalise
from xrfcore.scan import EnergyCalibration, Scan

__all__ = [
    "preprocess_spectra",
    "preprocess_steps",
    "preprocess_scan_rows",
    "mean_background",
    "save_background",
    "load_background",
]

#: Spectra preprocessed per block (bounds temporary memory; the result does not depend on it).
_BLOCK_SPECTRA = 1024


def _preprocess_block(
    block: np.ndarray,
    calibration: EnergyCalibration,
    config: PreprocessConfig,
    record: dict[str, np.ndarray] | None = None,
    rebinned: "tuple[EnergyGrid, np.ndarray] | None" = None,
) -> np.ndarray:
    """The pipeline on one block; with ``record`` also a copy of each intermediate in it."""
    x = None if rebinned is None else regrid(rebinned[1], rebinned[0], config.grid)
    if x is None:
        x = rebin_to_grid(block, calibration, config.grid, pad=config.pad)
    else:                                             # the range check rebin_to_grid makes
        check_coverage(calibration, block.shape[-1], config.grid, config.pad)
    if record is not None:
        record["rebinned"] = x.copy()
    if config.snip:
        bg = snip_background(
            x,
            config.snip_width_channels,
            iterations=config.snip_iterations,
            smooth=config.snip_smooth,
            llsqrt=config.snip_llsqrt,
        )
        if record is not None:
            record["background"] = np.asarray(bg, dtype=np.float32)
        x -= bg
        np.maximum(x, 0, out=x)
    elif record is not None:
        record["background"] = np.zeros_like(x, dtype=np.float32)
    if record is not None:
        record["subtracted"] = x.copy()
    if config.transform:
        x = log_log_sqrt(x)
    if record is not None:
        record["transformed"] = np.array(x, dtype=np.float32)
    if config.normalise != "none":
        x = normalise(x, config.normalise)
    return x


def preprocess_spectra(
    spectra: np.ndarray,
    calibration: EnergyCalibration,
    config: PreprocessConfig,
    *,
    rebinned: tuple[EnergyGrid, np.ndarray] | None = None,
) -> np.ndarray:
    """Turn raw spectra into model input: rebin -> SNIP subtract -> transform -> normalise.

    Parameters
    ----------
    spectra : (..., n_channels) array-like, counts
        One spectrum, a batch or a cube; energy axis last. Not modified.
    calibration : EnergyCalibration
        Energy calibration of the input channels.
    config : PreprocessConfig
        Which steps run and with which parameters (stored with every model).
    rebinned : (EnergyGrid, (n, m) array), optional
        The same spectra already rebinned onto another grid (the element fit's), flattened to ``n``
        rows. Where ``config.grid``'s bins are whole bins of that grid they are summed from it instead
        of rebinning the raw counts again (same result to float32 rounding; see :func:`regrid`).

    Returns
    -------
    (..., config.grid.n_channels) ndarray, float32

    Raises
    ------
    CalibrationError
        With ``config.pad == "error"`` when the scan does not cover the grid.

    Notes
    -----
    Runs in blocks of 1024 spectra; with SNIP off the cost is dominated by the rebinning
    (a float64 cumulative sum per spectrum).
    """
    if not isinstance(config, PreprocessConfig):
        raise ConfigError(f"config must be a PreprocessConfig, got {type(config).__name__}")
    arr = np.asarray(spectra)
    if arr.ndim < 1:
        raise ValueError(f"expected spectra with the energy axis last, got shape {arr.shape}")
    lead = arr.shape[:-1]
    flat = arr.reshape(-1, arr.shape[-1])
    out = np.empty((flat.shape[0], config.grid.n_channels), dtype=np.float32)
    if rebinned is not None and np.shape(rebinned[1]) != (flat.shape[0], rebinned[0].n_channels):
        raise ValueError(f"rebinned spectra of shape {np.shape(rebinned[1])} do not match {flat.shape[0]} spectra "
                         f"on a {rebinned[0].n_channels}-channel grid")
    for a in range(0, flat.shape[0], _BLOCK_SPECTRA):
        part = None if rebinned is None else (rebinned[0], rebinned[1][a : a + _BLOCK_SPECTRA])
        out[a : a + _BLOCK_SPECTRA] = _preprocess_block(flat[a : a + _BLOCK_SPECTRA], calibration, config,
                                                        rebinned=part)
    return out.reshape(lead + (config.grid.n_channels,))


def preprocess_steps(
    spectra: np.ndarray,
    calibration: EnergyCalibration,
    config: PreprocessConfig,
) -> dict[str, Any]:
    """Every intermediate of :func:`preprocess_spectra`, for showing the pipeline step by step.

    Parameters
    ----------
    spectra : (n, n_channels) or (n_channels,) array-like, counts
    calibration : EnergyCalibration
        Energy calibration of the input channels.
    config : PreprocessConfig

    Returns
    -------
    dict
        ``"rebinned"`` (counts per grid bin), ``"background"`` (SNIP estimate; zeros when SNIP is
        off), ``"subtracted"`` (rebinned - background, clipped at 0), ``"transformed"`` (after
        ``ln(1 + ln(1 + sqrt(x)))`` when on, else equal to ``"subtracted"``), ``"model_input"``
        (after normalisation; exactly what :func:`preprocess_spectra` returns): each
        ``(n, config.grid.n_channels)`` float32. ``"covered_fraction"``: float, the share of the
        grid's energy range (keV) inside the spectra's range (below 1 the rest is padded).

    Raises
    ------
    CalibrationError
        With ``config.pad == "error"`` when the spectra do not cover the grid.
    """
    from xrfcore.preprocess.grid import grid_coverage

    if not isinstance(config, PreprocessConfig):
        raise ConfigError(f"config must be a PreprocessConfig, got {type(config).__name__}")
    arr = np.asarray(spectra)
    if arr.ndim not in (1, 2) or arr.shape[-1] < 1:
        raise ValueError(f"expected one spectrum or a batch (n, n_channels), got shape {arr.shape}")
    flat = arr.reshape(-1, arr.shape[-1])
    parts: dict[str, list[np.ndarray]] = {}
    model_input = []
    for a in range(0, flat.shape[0], _BLOCK_SPECTRA):
        record: dict[str, np.ndarray] = {}
        x = _preprocess_block(flat[a : a + _BLOCK_SPECTRA], calibration, config, record)
        model_input.append(np.asarray(x, dtype=np.float32))
        for k, v in record.items():
            parts.setdefault(k, []).append(np.asarray(v, dtype=np.float32))
    out: dict[str, Any] = {k: np.concatenate(v, axis=0) for k, v in parts.items()}
    out["model_input"] = np.concatenate(model_input, axis=0)
    out["covered_fraction"] = grid_coverage(calibration, flat.shape[-1], config.grid)
    return out


def preprocess_scan_rows(scan: Scan, start: int, stop: int, config: PreprocessConfig) -> np.ndarray:
    """Preprocess rows ``start:stop`` of a scan -> ``(stop - start, n_cols, grid.n_channels)`` float32."""
    return preprocess_spectra(scan.read_rows(start, stop), scan.calibration, config)


def mean_background(
    scan_or_spectra: Scan | np.ndarray,
    calibration: EnergyCalibration | None = None,
    grid: EnergyGrid | None = None,
    width_kev: float = 0.3,
    *,
    smooth: int = 0,
    llsqrt: bool = False,
) -> np.ndarray:
    """SNIP background of the mean measured spectrum (what the simulator adds to simulations).

    Parameters
    ----------
    scan_or_spectra : Scan or (..., n_channels) ndarray
        Measured spectra; their mean over all leading axes is used.
    calibration : EnergyCalibration, optional
        Calibration of the spectra (taken from the scan when a Scan is given).
    grid : EnergyGrid or None
        If given, the mean spectrum is rebinned onto it first (zero-padded outside the scan);
        otherwise the background is on the scan's own channels.
    width_kev : float
        SNIP half-window (keV).

    Returns
    -------
    (n,) ndarray, float64
        Background counts per channel of the grid (or of the scan), per pixel (a mean).
    """
    if isinstance(scan_or_spectra, Scan):
        mean = scan_or_spectra.mean_spectrum()
        calibration = calibration or scan_or_spectra.calibration
    else:
        arr = np.asarray(scan_or_spectra, dtype=np.float64)
        mean = arr.reshape(-1, arr.shape[-1]).mean(axis=0)
        if calibration is None:
            raise ConfigError("mean_background needs the calibration of the spectra; pass calibration=")
    if grid is not None:
        mean = rebin_to_grid(mean, calibration, grid, pad="zero").astype(np.float64)
        step_kev = grid.step_kev
    else:
        step_kev = calibration.gain_kev
    width = max(1, int(round(width_kev / step_kev)))
    return snip_background(mean, width, smooth=smooth, llsqrt=llsqrt)


def save_background(path: str | os.PathLike, energy_kev: np.ndarray, background: np.ndarray, **metadata: Any) -> None:
    """Store a background (``energy_kev``, ``background`` of equal length) as ``.npz``, atomically."""
    e = np.asarray(energy_kev, dtype=np.float64)
    b = np.asarray(background, dtype=np.float64)
    if e.shape != b.shape or e.ndim != 1:
        raise ConfigError(f"energy_kev and background must be 1-D of equal length, got {e.shape} and {b.shape}")
    with atomic_path(path, suffix=".npz") as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, energy_kev=e, background=b, metadata=np.array(str(metadata)))


def load_background(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read a background written by :func:`save_background` -> ``(energy_kev, background)``."""
    try:
        with np.load(path, allow_pickle=False) as z:
            return z["energy_kev"].copy(), z["background"].copy()
    except (OSError, KeyError, ValueError) as exc:
        raise ConfigError(f"{path}: not a background file written by save_background ({exc})") from exc
