"""The pigment CNN: architecture, model files, inference, training, metrics.

Names are imported lazily (PEP 562), so ``import xrfcore.model`` does not load TensorFlow;
the first use of a Keras-backed name does. :mod:`xrfcore.model.metrics` needs no TensorFlow.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "build_model",
    "model_flops",
    "architecture_flops",
    "ModelBundle",
    "save_model",
    "load_model",
    "default_model_path",
    "check_compatible",
    "predict_spectra",
    "predict_preprocessed",
    "predict_layers",
    "load_dataset",
    "dataset_info",
    "train_model",
    "finetune",
    "per_pigment_metrics",
    "metrics_table",
    "metrics_to_csv",
    "evaluate_scan",
    "pixel_spectra",
    "ProgressCallback",
    "model_sidecars",
    "sidecar_path",
    "metrics_summary",
    "TrainConfig",
    "FinetuneConfig",
]

_WHERE = {
    "build_model": "architecture",
    "model_flops": "architecture",
    "architecture_flops": "architecture",
    "ModelBundle": "bundle",
    "save_model": "bundle",
    "load_model": "bundle",
    "default_model_path": "bundle",
    "check_compatible": "bundle",
    "predict_spectra": "predict",
    "predict_preprocessed": "predict",
    "predict_layers": "predict",
    "load_dataset": "data",
    "dataset_info": "data",
    "train_model": "train",
    "finetune": "train",
    "per_pigment_metrics": "metrics",
    "metrics_table": "metrics",
    "metrics_to_csv": "metrics",
    "evaluate_scan": "metrics",
    "pixel_spectra": "predict",
    "ProgressCallback": "callbacks",
    "model_sidecars": "sidecars",
    "sidecar_path": "sidecars",
    "metrics_summary": "metrics",
    "TrainConfig": "config",
    "FinetuneConfig": "config",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f"xrfcore.model.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'xrfcore.model' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
