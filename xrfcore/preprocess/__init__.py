"""Preprocessing: energy grid, SNIP background, transform and normalisation.

The same :class:`PreprocessConfig` runs for training and inference (it is saved with each
model); :func:`preprocess_spectra` is the single entry point that applies it.
"""

from xrfcore.preprocess.config import PreprocessConfig
from xrfcore.preprocess.grid import EnergyGrid, rebin_to_grid
from xrfcore.preprocess.pipeline import (
    load_background,
    mean_background,
    preprocess_scan_rows,
    preprocess_spectra,
    preprocess_steps,
    save_background,
)
from xrfcore.preprocess.snip import snip_background
from xrfcore.preprocess.transform import log_log_sqrt, normalise

__all__ = [
    "EnergyGrid",
    "PreprocessConfig",
    "rebin_to_grid",
    "snip_background",
    "log_log_sqrt",
    "normalise",
    "preprocess_spectra",
    "preprocess_steps",
    "preprocess_scan_rows",
    "mean_background",
    "save_background",
    "load_background",
]
