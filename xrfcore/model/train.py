"""Training with k-fold cross-validation, and two-stage finetuning (METHOD.md "Training and finetuning").

Class imbalance is handled with **per-class positive weights in the loss**: the loss is the mean
over classes of the binary cross-entropy in which the positive term of class k is multiplied by
``w_k``. ``class_weighting="sqrt"`` (default) uses ``w_k = sqrt(n_negative_k / n_positive_k)``
clipped to [1, 10]; ``"balanced"`` uses the ratio itself (clipped to [1, 10]); ``"none"`` uses 1.
The square root boosts rare pigments without pushing every probability upwards as hard as the
full ratio does. Reported losses (``val_loss`` used for picking the best fold) are the
*unweighted* mean binary cross-entropy.

Runs on a GPU when TensorFlow sees one and on the CPU otherwise; nothing in the code changes.
Seeded runs are repeatable: :func:`keras.utils.set_random_seed` plus TensorFlow op determinism.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import keras
import numpy as np

from xrfcore.errors import ConfigError
from xrfcore.common import utc_now
from xrfcore.model.architecture import build_model, copy_model, model_flops
from xrfcore.model.bundle import ModelBundle
from xrfcore.model.callbacks import ProgressCallback, ProgressFn
from xrfcore.model.config import CLASS_WEIGHTING, FinetuneConfig, TrainConfig
from xrfcore.model.metrics import metrics_summary, per_pigment_metrics
from xrfcore.model.predict import predict_preprocessed

if TYPE_CHECKING:  # pragma: no cover
    from xrfcore.preprocess import PreprocessConfig

__all__ = [
    "train_model",
    "finetune",
    "WeightedBinaryCrossentropy",
    "positive_weights",
    "default_callbacks",
    "set_seed",
    "CLASS_WEIGHTING",
    "TrainConfig",
    "FinetuneConfig",
]



@keras.saving.register_keras_serializable(package="xrfcore")
class WeightedBinaryCrossentropy(keras.losses.Loss):
    """Mean over classes of ``-(w_k y log p + (1 - y) log(1 - p))``; ``w_k`` per class."""

    def __init__(self, pos_weight: Sequence[float] | None = None, *, name: str = "weighted_bce", **kwargs: Any):
        super().__init__(name=name, **kwargs)
        self.pos_weight = None if pos_weight is None else [float(w) for w in pos_weight]

    def call(self, y_true, y_pred):
        ops = keras.ops
        eps = keras.config.epsilon()
        y_true = ops.cast(y_true, y_pred.dtype)
        p = ops.clip(y_pred, eps, 1.0 - eps)
        w = 1.0 if self.pos_weight is None else ops.convert_to_tensor(self.pos_weight, dtype=y_pred.dtype)
        loss = -(w * y_true * ops.log(p) + (1.0 - y_true) * ops.log(1.0 - p))
        return ops.mean(loss, axis=-1)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "pos_weight": self.pos_weight}


def positive_weights(Y: np.ndarray, mode: str = "sqrt", *, max_weight: float = 10.0) -> np.ndarray | None:
    """Per-class positive weights (K,) float32 for :class:`WeightedBinaryCrossentropy`, or None.

    Examples
    --------
    >>> positive_weights(np.array([[1, 0], [0, 0], [0, 0], [0, 1], [0, 0]]), "balanced").tolist()
    [4.0, 4.0]
    """
    if mode not in CLASS_WEIGHTING:
        raise ConfigError(f"class_weighting must be one of {CLASS_WEIGHTING}, got {mode!r}")
    if mode == "none":
        return None
    y = np.asarray(Y).astype(bool)
    pos = y.sum(axis=0).astype(np.float64)
    neg = y.shape[0] - pos
    ratio = np.where(pos > 0, neg / np.maximum(pos, 1), 1.0)
    w = np.sqrt(ratio) if mode == "sqrt" else ratio
    return np.clip(w, 1.0, max_weight).astype(np.float32)


def set_seed(seed: int, *, deterministic: bool | None = None) -> None:
    """Seed Python, numpy and the backend; optionally make TensorFlow ops deterministic.

    ``deterministic=None`` enables op determinism only when no GPU is visible: on the CPU it
    costs little, on a GPU it can slow training (cuDNN's deterministic algorithms). The setting
    is process-wide.
    """
    import tensorflow as tf

    keras.utils.set_random_seed(int(seed))
    if deterministic is None:
        deterministic = not tf.config.list_physical_devices("GPU")
    if deterministic:
        with contextlib.suppress(Exception):
            tf.config.experimental.enable_op_determinism()


def _device() -> str:
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    return f"GPU ({len(gpus)})" if gpus else "CPU"


def _bce(y: np.ndarray, p: np.ndarray) -> float:
    p = np.clip(p.astype(np.float64), 1e-7, 1 - 1e-7)
    y = y.astype(np.float64)
    return float(np.mean(-(y * np.log(p) + (1 - y) * np.log(1 - p))))


def default_callbacks(checkpoint_path: str | Path, *, patience: int = 10) -> list:
    """Checkpoint (.keras, best ``val_loss`` only), ReduceLROnPlateau and EarlyStopping on ``val_loss``."""
    return [
        keras.callbacks.ModelCheckpoint(str(checkpoint_path), monitor="val_loss", save_best_only=True, verbose=0),
        keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=max(1, patience // 2), min_lr=1e-6),
        keras.callbacks.EarlyStopping(monitor="val_loss", patience=patience, restore_best_weights=False),
    ]


def _compile(model: keras.Model, learning_rate: float, pos_weight: np.ndarray | None) -> None:
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
        loss=WeightedBinaryCrossentropy(pos_weight),
        jit_compile=False,
    )


def _history_dict(history: Any) -> dict[str, list[float]]:
    return {k: [float(v) for v in vals] for k, vals in history.history.items()}


def _split_indices(n: int, *, folds: int, test_fraction: float, seed: int) -> tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray]]]:
    """Seeded test split, then (train, validation) index pairs: k-fold, or one 4:1 split for folds=1."""
    from sklearn.model_selection import KFold

    rng = np.random.default_rng(seed)
    perm = rng.permutation(n)
    n_test = int(round(n * test_fraction))
    test, rest = np.sort(perm[:n_test]), perm[n_test:]
    if folds == 1:
        n_val = max(1, int(round(rest.size / 5)))
        pairs = [(np.sort(rest[n_val:]), np.sort(rest[:n_val]))]
    else:
        kf = KFold(n_splits=folds, shuffle=True, random_state=seed)
        pairs = [(np.sort(rest[a]), np.sort(rest[b])) for a, b in kf.split(rest)]
    return test, pairs


def _class_names(classes: Sequence[str]) -> list[str]:
    try:
        from xrfcore.library import load_library

        lib = load_library()
        return [lib.get(c).name for c in classes]
    except Exception:  # library missing or pigment unknown: fall back to the abbreviations
        return [str(c) for c in classes]


def _fit_fold(
    i: int,
    n_folds: int,
    X: np.ndarray,
    Y: np.ndarray,
    tr: np.ndarray,
    va: np.ndarray,
    *,
    classes: list[str],
    ckpt_dir: Path,
    model_kwargs: dict[str, Any],
    epochs: int,
    batch_size: int,
    learning_rate: float,
    patience: int,
    pos_weight: np.ndarray | None,
    progress: ProgressFn | None,
    batch_every: int,
) -> dict[str, Any]:
    model = build_model(X.shape[1], Y.shape[1], **model_kwargs)
    _compile(model, learning_rate, pos_weight)
    ckpt = ckpt_dir / f"fold{i + 1}.keras"
    cbs = default_callbacks(ckpt, patience=patience)
    if progress is not None:
        cbs.append(ProgressCallback(progress, stage=f"fold {i + 1}/{n_folds}", epochs=epochs, batch_every=batch_every))
    t0 = time.perf_counter()
    hist = model.fit(
        X[tr, :, None], Y[tr], validation_data=(X[va, :, None], Y[va]),
        epochs=epochs, batch_size=batch_size, shuffle=True, callbacks=cbs, verbose=0,
    )
    seconds = time.perf_counter() - t0
    best = keras.saving.load_model(ckpt, compile=False, safe_mode=True)
    prob = predict_preprocessed(best, X[va])
    h = _history_dict(hist)
    metrics = per_pigment_metrics(Y[va], prob, classes)
    return {
        "model": best,
        "fold": i + 1,
        "n_train": int(tr.size),
        "n_validation": int(va.size),
        "epochs_run": len(h.get("loss", [])),
        "best_epoch": int(np.argmin(h["val_loss"])) + 1 if h.get("val_loss") else None,
        "val_loss": _bce(Y[va], prob),
        "validation": metrics_summary(metrics),
        "history": h,
        "seconds": seconds,
        "train_spectra_per_s": tr.size * len(h.get("loss", [])) / seconds if seconds > 0 else None,
    }


def train_model(
    X: np.ndarray,
    Y: np.ndarray,
    *,
    classes: Sequence[str],
    preprocess: "PreprocessConfig",
    config: TrainConfig = TrainConfig(),
    class_names: Sequence[str] | None = None,
    progress: ProgressFn | None = None,
    batch_progress_every: int = 0,
    out_dir: str | Path | None = None,
    data_info: dict[str, Any] | None = None,
    library_version: Any = None,
) -> tuple[ModelBundle, dict[str, Any]]:
    """Train the pigment CNN with a held-out test part and k-fold cross-validation.

    Parameters
    ----------
    X : (n_spectra, n_channels) ndarray, float32
        Preprocessed spectra (``config`` applied; ``n_channels == config.grid.n_channels``).
    Y : (n_spectra, K) ndarray of {0, 1}
        Pigment presence (any layer).
    classes : sequence of str
        K class abbreviations (column order of ``Y``).
    preprocess : PreprocessConfig
        The preprocessing that made ``X``; stored in the model.
    config : TrainConfig
        Epochs, batch, learning rate, folds, test part, seed, patience, class weighting,
        architecture options; stored in the model (``metadata["train_config"]``).
        ``config.max_spectra`` is for the caller that reads the data (ignored here).
    class_names : sequence of str, optional
        Full names; default from the pigment library (abbreviations if unknown).
    progress : callable, optional
        ``fn(epoch, logs)``; see :mod:`xrfcore.model.callbacks`.
    batch_progress_every : int
        Also report every this many batches (0 = epochs only).
    out_dir : path-like, optional
        Where the per-fold checkpoints go (``fold{i}.keras``); a temporary folder if None.
    data_info : dict, optional
        Training-data description stored in the model metadata.
    library_version : optional
        Pigment library version stored in the metadata.
    Returns
    -------
    bundle : ModelBundle
        The best fold's model (lowest validation loss), unsaved.
    report : dict
        ``folds`` (per-fold validation metrics and histories), ``best_fold``, ``test``
        (per-pigment metrics of the best fold on the held-out part, or None), timing, device.

    Raises
    ------
    ConfigError
        If shapes disagree or the settings are invalid.
    """
    from xrfcore.preprocess import PreprocessConfig

    if not isinstance(preprocess, PreprocessConfig):
        raise ConfigError(f"preprocess must be a PreprocessConfig, got {type(preprocess).__name__}")
    if not isinstance(config, TrainConfig):
        raise ConfigError(f"config must be a TrainConfig, got {type(config).__name__}")
    epochs, batch_size, learning_rate = int(config.epochs), int(config.batch_size), float(config.learning_rate)
    folds, test_fraction, seed = int(config.folds), float(config.test_fraction), int(config.seed)
    patience, class_weighting = int(config.patience), config.class_weighting
    X = np.asarray(X, dtype=np.float32)
    Y = np.asarray(Y).astype(np.uint8)
    classes = [str(c) for c in classes]
    if X.ndim != 2 or Y.ndim != 2 or X.shape[0] != Y.shape[0] or Y.shape[1] != len(classes):
        raise ConfigError(f"expected X (n, C), Y (n, {len(classes)}) with the same n, got {X.shape} and {Y.shape}")
    if X.shape[1] != preprocess.grid.n_channels:
        raise ConfigError(f"X has {X.shape[1]} channels but the preprocessing grid has {preprocess.grid.n_channels}")
    if folds < 1 or not 0 <= test_fraction < 1 or epochs < 1:
        raise ConfigError(f"need folds >= 1, 0 <= test_fraction < 1, epochs >= 1; got {folds}, {test_fraction}, {epochs}")
    if folds > 1 and X.shape[0] * (1 - test_fraction) < 2 * folds:
        raise ConfigError(f"{X.shape[0]} spectra are too few for {folds} folds; use more data or --folds 1")
    model_kwargs = config.model_kwargs()
    set_seed(seed, deterministic=config.deterministic)
    test, pairs = _split_indices(X.shape[0], folds=folds, test_fraction=test_fraction, seed=seed)
    pos_weight = positive_weights(np.delete(Y, test, axis=0), class_weighting)  # never looks at the test part
    t0 = time.perf_counter()
    with contextlib.ExitStack() as stack:
        if out_dir is None:
            ckpt_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="xrf_train_")))
        else:
            ckpt_dir = Path(out_dir)
            ckpt_dir.mkdir(parents=True, exist_ok=True)
        results = []
        for i, (tr, va) in enumerate(pairs):
            keras.utils.set_random_seed(int(seed) + i)
            results.append(_fit_fold(
                i, len(pairs), X, Y, tr, va, classes=classes, ckpt_dir=ckpt_dir, model_kwargs=model_kwargs,
                epochs=epochs, batch_size=batch_size, learning_rate=learning_rate, patience=patience,
                pos_weight=pos_weight, progress=progress, batch_every=batch_progress_every,
            ))
    best = min(results, key=lambda r: r["val_loss"])
    test_metrics = per_pigment_metrics(Y[test], predict_preprocessed(best["model"], X[test]), classes) if test.size else None
    seconds = time.perf_counter() - t0
    settings = {
        "epochs": epochs, "batch_size": batch_size, "learning_rate": learning_rate, "folds": folds,
        "test_fraction": test_fraction, "seed": seed, "patience": patience, "class_weighting": class_weighting,
        "positive_weights": None if pos_weight is None else [float(w) for w in pos_weight],
        "model_kwargs": {k: list(v) if isinstance(v, tuple) else v for k, v in model_kwargs.items()},
    }
    report = {
        "settings": settings,
        "device": _device(),
        "n_spectra": int(X.shape[0]),
        "n_test": int(test.size),
        "folds": [{k: v for k, v in r.items() if k != "model"} for r in results],
        "best_fold": best["fold"],
        "test": test_metrics,
        "flops_per_spectrum": model_flops(best["model"]),
        "seconds": seconds,
    }
    names = list(class_names) if class_names is not None else _class_names(classes)
    metadata = {
        "training": {**settings, "data": data_info or {}, "n_spectra": int(X.shape[0]), "n_test": int(test.size),
                     "device": report["device"]},
        "metrics": {"test": metrics_summary(test_metrics) if test_metrics else None,
                    "cross_validation": [{"fold": r["fold"], "val_loss": r["val_loss"], **r["validation"]["macro"]} for r in results],
                    "best_fold": best["fold"]},
        "train_config": config.to_dict(),
        "library_version": library_version,
        "lineage": [{"step": "pretrain", "created": utc_now(), "data": (data_info or {}).get("path")}],
        "created": utc_now(),
    }
    bundle = ModelBundle(model=best["model"], classes=classes, class_names=names, preprocess=preprocess,
                         metadata=metadata)
    return bundle, report


def _set_stage(model: keras.Model, stage: int, *, train_batchnorm: bool) -> None:
    """Stage 1: only Dense layers train. Stage 2: everything, BatchNorm only if ``train_batchnorm``."""
    from keras import layers

    for layer in model.layers:
        if stage == 1:
            layer.trainable = isinstance(layer, layers.Dense)
        elif isinstance(layer, layers.BatchNormalization):
            layer.trainable = bool(train_batchnorm)
        else:
            layer.trainable = True


def finetune(
    bundle: ModelBundle,
    X: np.ndarray,
    Y: np.ndarray,
    *,
    config: FinetuneConfig = FinetuneConfig(),
    progress: ProgressFn | None = None,
    data_info: dict[str, Any] | None = None,
) -> tuple[ModelBundle, dict[str, Any]]:
    """Two-stage transfer learning from a trained bundle (METHOD.md "Training and finetuning").

    Stage 1 freezes every convolutional and BatchNorm layer and trains only the dense head
    (Adam ``learning_rate_head``). Stage 2 makes the convolutions trainable too (Adam
    ``learning_rate_all``, default 5e-4). The model is recompiled after each change of
    ``trainable``. BatchNorm layers stay frozen, i.e. in inference mode with their pretrained
    statistics, in both stages unless ``train_batchnorm`` (a small finetuning set would
    otherwise overwrite the statistics). Each stage stops early on the validation loss and keeps
    its best weights.

    Parameters
    ----------
    bundle : ModelBundle
        Pretrained model; left unchanged (a copy is trained).
    X : (n_spectra, n_channels) ndarray, float32
        Preprocessed spectra (``bundle.preprocess`` applied).
    Y : (n_spectra, K) ndarray of {0, 1}
        Labels in ``bundle.classes`` order.
    config : FinetuneConfig
        Epochs of each stage, batch, validation part, patience, learning rates, class weighting,
        BatchNorm training, seed (``config.train_fraction`` is for the caller that splits the
        labelled pixels; ignored here).
    progress : callable, optional
        ``fn(epoch, logs)``, as in :func:`train_model`.
    data_info : dict, optional
        Description of the finetuning data for the lineage.

    Returns
    -------
    bundle : ModelBundle
        New bundle (unsaved) with ``lineage`` extended by a finetune step.
    history : dict
        ``stage1``/``stage2`` Keras histories, ``validation`` metrics (or None), ``n_train``, ``n_validation``.
    """
    if not isinstance(config, FinetuneConfig):
        raise ConfigError(f"config must be a FinetuneConfig, got {type(config).__name__}")
    stage1_epochs, stage2_epochs = int(config.stage1_epochs), int(config.stage2_epochs)
    learning_rate_head, learning_rate_all = float(config.learning_rate_head), float(config.learning_rate_all)
    batch_size, validation_fraction = int(config.batch_size), float(config.validation_fraction)
    seed, patience, class_weighting = int(config.seed), int(config.patience), config.class_weighting
    train_batchnorm = bool(config.train_batchnorm)
    X = np.asarray(X, dtype=np.float32)
    Y = np.asarray(Y).astype(np.uint8)
    if X.ndim != 2 or X.shape[1] != bundle.n_channels or Y.shape != (X.shape[0], bundle.n_classes):
        raise ConfigError(
            f"expected X (n, {bundle.n_channels}) and Y (n, {bundle.n_classes}), got {X.shape} and {Y.shape}"
        )
    set_seed(seed)
    rng = np.random.default_rng(seed)
    perm = rng.permutation(X.shape[0])
    n_val = int(round(X.shape[0] * validation_fraction))
    va, tr = np.sort(perm[:n_val]), np.sort(perm[n_val:])
    if tr.size == 0:
        raise ConfigError(f"no spectra left for training with validation_fraction={validation_fraction}")
    pos_weight = positive_weights(Y[tr], class_weighting)
    model = copy_model(bundle.model)
    val = (X[va, :, None], Y[va]) if va.size else None
    monitor = "val_loss" if va.size else "loss"
    history: dict[str, Any] = {"n_train": int(tr.size), "n_validation": int(va.size)}
    for stage, n_epochs, lr in ((1, stage1_epochs, learning_rate_head), (2, stage2_epochs, learning_rate_all)):
        _set_stage(model, stage, train_batchnorm=train_batchnorm)
        _compile(model, lr, pos_weight)  # recompile: trainable changes take effect only then
        if n_epochs <= 0:
            history[f"stage{stage}"] = {}
            continue
        cbs = [keras.callbacks.EarlyStopping(monitor=monitor, patience=patience, restore_best_weights=True)]
        if progress is not None:
            cbs.append(ProgressCallback(progress, stage=f"finetune stage {stage}/2", epochs=n_epochs))
        hist = model.fit(X[tr, :, None], Y[tr], validation_data=val, epochs=n_epochs, batch_size=batch_size,
                         shuffle=True, callbacks=cbs, verbose=0)
        history[f"stage{stage}"] = _history_dict(hist)
    for layer in model.layers:
        layer.trainable = True
    metrics = per_pigment_metrics(Y[va], predict_preprocessed(model, X[va]), bundle.classes) if va.size else None
    history["validation"] = metrics
    meta = dict(bundle.metadata)
    step = {"step": "finetune", "created": utc_now(), "from_sha256": bundle.sha256, "n_train": int(tr.size),
            "n_validation": int(va.size), "stage1_epochs": len(history["stage1"].get("loss", [])),
            "stage2_epochs": len(history["stage2"].get("loss", [])), "learning_rate_all": learning_rate_all,
            "data": data_info or {}}
    meta["lineage"] = list(meta.get("lineage", [])) + [step]
    meta["metrics"] = {**dict(meta.get("metrics") or {}), "finetune_validation": metrics_summary(metrics) if metrics else None}
    meta["created"] = utc_now()
    new = ModelBundle(model=model, classes=list(bundle.classes), class_names=list(bundle.class_names),
                      preprocess=bundle.preprocess, metadata=meta)
    return new, history

