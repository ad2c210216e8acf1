"""Options of a training or finetuning run that travel together: :class:`TrainConfig`, :class:`FinetuneConfig`.

Like :class:`~xrfcore.preprocess.PreprocessConfig`, each is a frozen dataclass with
``to_dict``/``from_dict``; the one a model was made with is saved in its metadata
(``metadata["train_config"]``, ``metadata["finetune"]["config"]``). No TensorFlow here.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, TypeVar

from xrfcore.errors import ConfigError

__all__ = ["TrainConfig", "FinetuneConfig", "CLASS_WEIGHTING"]

#: Per-class positive weights in the loss (see :mod:`xrfcore.model.train`).
CLASS_WEIGHTING = ("sqrt", "balanced", "none")

_C = TypeVar("_C")


def _int_tuple(value: Any, name: str) -> tuple[int, ...] | None:
    if value is None:
        return None
    try:
        out = tuple(int(v) for v in value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{name} must be a sequence of positive integers, got {value!r}") from exc
    if not out or min(out) < 1:
        raise ConfigError(f"{name} must be a sequence of positive integers, got {value!r}")
    return out


def _from_dict(cls: type[_C], d: dict[str, Any], what: str) -> _C:
    if not isinstance(d, dict):
        raise ConfigError(f"{what} must be a dict, got {type(d).__name__}")
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(d) - names)
    if unknown:
        raise ConfigError(f"unknown {what} key(s) {unknown}; known: {', '.join(sorted(names))}")
    return cls(**d)


def _to_dict(obj: Any) -> dict[str, Any]:
    return {f.name: (list(v) if isinstance(v := getattr(obj, f.name), tuple) else v) for f in dataclasses.fields(obj)}


@dataclass(frozen=True)
class TrainConfig:
    """How a model is trained (everything but the data and the preprocessing).

    Parameters
    ----------
    epochs : int
        Upper limit of epochs per fold (early stopping ends sooner), >= 1.
    batch_size : int
        Spectra per training batch.
    learning_rate : float
        Adam learning rate.
    folds : int
        k of the cross-validation; 1 = one 4:1 train/validation split.
    test_fraction : float
        Held-out test part, split off first with ``seed`` (0 <= f < 1).
    seed : int
        Seeds the subset, the splits, the initial weights and the shuffling.
    patience : int
        Early-stopping patience (epochs); the learning rate halves after ``patience // 2``.
    class_weighting : {"sqrt", "balanced", "none"}
        Per-class positive weights in the loss.
    max_spectra : int or None
        Train on a seeded random subset of this many spectra (None: all).
    filters, kernel_sizes : tuple of int or None
        Filters and kernel width per convolution block (None: the architecture's defaults).
    post_conv : (filters, kernel) or None
        The post-convolution layer (None: the default).
    bn_momentum : float or None
        BatchNorm moving-statistics momentum (None: the default, 0.9).
    deterministic : bool or None
        TensorFlow op determinism (process-wide); None = on when no GPU is visible.
    """

    epochs: int = 150
    batch_size: int = 64
    learning_rate: float = 1e-3
    folds: int = 5
    test_fraction: float = 0.2
    seed: int = 0
    patience: int = 10
    class_weighting: str = "sqrt"
    max_spectra: int | None = None
    filters: tuple[int, ...] | None = None
    kernel_sizes: tuple[int, ...] | None = None
    post_conv: tuple[int, ...] | None = None
    bn_momentum: float | None = None
    deterministic: bool | None = None

    def __post_init__(self) -> None:
        for name in ("filters", "kernel_sizes", "post_conv"):
            object.__setattr__(self, name, _int_tuple(getattr(self, name), name))
        if self.post_conv is not None and len(self.post_conv) != 2:
            raise ConfigError(f"post_conv must be (filters, kernel), got {self.post_conv!r}")
        if int(self.epochs) < 1 or int(self.folds) < 1 or int(self.batch_size) < 1:
            raise ConfigError(
                f"need epochs >= 1, folds >= 1 and batch_size >= 1; got {self.epochs}, {self.folds}, {self.batch_size}"
            )
        if not 0 <= float(self.test_fraction) < 1:
            raise ConfigError(f"test_fraction must be in [0, 1), got {self.test_fraction}")
        if self.class_weighting not in CLASS_WEIGHTING:
            raise ConfigError(f"class_weighting must be one of {CLASS_WEIGHTING}, got {self.class_weighting!r}")
        if self.max_spectra is not None and int(self.max_spectra) < 1:
            raise ConfigError(f"max_spectra must be >= 1 (or None for all), got {self.max_spectra}")

    def model_kwargs(self) -> dict[str, Any]:
        """The :func:`~xrfcore.model.build_model` arguments that are set (not None)."""
        out = {"filters": self.filters, "kernel_sizes": self.kernel_sizes,
               "post_conv": self.post_conv, "bn_momentum": self.bn_momentum}
        return {k: v for k, v in out.items() if v is not None}

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (tuples as lists)."""
        return _to_dict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        """Inverse of :meth:`to_dict`; missing keys take defaults; ConfigError names unknown keys."""
        return _from_dict(cls, d, "training config")


@dataclass(frozen=True)
class FinetuneConfig:
    """How a model is finetuned on labelled pixels (two stages, METHOD.md).

    Parameters
    ----------
    train_fraction : float
        Share of the labelled pixels (seeded, pooled over scans) used for training; the rest
        is the test set of the before/after metrics (0 < f < 1).
    seed : int
        Seeds the split and the training.
    stage1_epochs, stage2_epochs : int
        Epoch limits of stage 1 (dense head only) and stage 2 (all layers); 0 skips a stage.
    batch_size : int
    validation_fraction : float
        Part of the training pixels held out for early stopping (0: none).
    patience : int
        Early-stopping patience (epochs).
    learning_rate_head, learning_rate_all : float
        Adam learning rates of stage 1 and stage 2.
    class_weighting : {"sqrt", "balanced", "none"}
    train_batchnorm : bool
        Let BatchNorm statistics train in stage 2 (off: a small set would overwrite them).
    """

    train_fraction: float = 0.2
    seed: int = 0
    stage1_epochs: int = 20
    stage2_epochs: int = 30
    batch_size: int = 64
    validation_fraction: float = 0.2
    patience: int = 5
    learning_rate_head: float = 1e-3
    learning_rate_all: float = 5e-4
    class_weighting: str = "none"
    train_batchnorm: bool = False

    def __post_init__(self) -> None:
        if int(self.stage1_epochs) < 0 or int(self.stage2_epochs) < 0 or int(self.batch_size) < 1:
            raise ConfigError(
                f"need stage epochs >= 0 and batch_size >= 1; got {self.stage1_epochs}, {self.stage2_epochs}, "
                f"{self.batch_size}"
            )
        if not 0 <= float(self.validation_fraction) < 1:
            raise ConfigError(f"validation_fraction must be in [0, 1), got {self.validation_fraction}")
        if self.class_weighting not in CLASS_WEIGHTING:
            raise ConfigError(f"class_weighting must be one of {CLASS_WEIGHTING}, got {self.class_weighting!r}")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict."""
        return _to_dict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "FinetuneConfig":
        """Inverse of :meth:`to_dict`; missing keys take defaults; ConfigError names unknown keys."""
        return _from_dict(cls, d, "finetune config")
