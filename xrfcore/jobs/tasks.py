"""What a job does: finetune (labelled scans), predict (maps), simulate and train (CLIs).

:func:`run_task` is called in the worker process. Each task writes its outputs atomically,
so a job that crashes or is killed leaves no partial output under the final name.
:func:`finetune_from_files` is also what ``python -m xrfcore finetune`` runs in the foreground.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from xrfcore.atomic import atomic_write_text
from xrfcore.errors import JobError, LabelError, ModelError

__all__ = ["run_task", "finetune_from_files", "gather_labelled_spectra", "split_pixels", "metrics_path_for"]

Progress = Callable[[float, str], None]
Log = Callable[[str], None]


def _noop_progress(fraction: float, message: str = "") -> None:
    pass


def run_task(kind: str, params: dict[str, Any], *, progress: Progress = _noop_progress, log: Log = print) -> dict[str, Any]:
    """Run one job task; returns a JSON-able result (output paths, summary numbers).

    Raises
    ------
    JobError
        Unknown kind or a missing parameter.
    """
    if kind == "finetune":
        keys = ("model", "scans", "labels", "out", "train_fraction", "seed", "stage1_epochs", "stage2_epochs",
                "batch_size", "name", "register", "models_directory", "validation_fraction", "patience")
        unknown = sorted(set(params) - set(keys) - {"outputs"})
        if unknown:
            raise JobError(f"unknown finetune parameter(s) {unknown}; accepted: {', '.join(keys)}")
        return finetune_from_files(**{k: v for k, v in params.items() if k in keys}, progress=progress, log=log)
    if kind == "predict":
        return _predict(params, progress=progress, log=log)
    if kind in ("simulate", "train"):
        return _cli_task(kind, params, log=log)
    raise JobError(f"unknown job kind {kind!r}")


# -- finetune -------------------------------------------------------------------------------
def metrics_path_for(model_path: str | os.PathLike) -> Path:
    """``NEW.keras`` -> ``NEW.finetune.json`` (before/after metrics next to the model)."""
    p = Path(model_path)
    return p.with_name(p.stem + ".finetune.json")


def gather_labelled_spectra(scan: Any, labelset: Any) -> tuple[np.ndarray, np.ndarray]:
    """Raw spectra ``(n, C)`` and labels ``(n, K)`` of the labelled pixels (row-major order).

    Reads the scan in row chunks and keeps only labelled pixels, so memory grows with the
    number of labelled pixels, not with the scan.
    """
    rows = np.flatnonzero(labelset.mask.any(axis=1))
    spectra = []
    if rows.size:
        step = scan.default_chunk_rows()
        for start in range(int(rows[0]), int(rows[-1]) + 1, step):
            stop = min(int(rows[-1]) + 1, start + step)
            m = labelset.mask[start:stop]
            if m.any():
                spectra.append(scan.read_rows(start, stop)[m])
    x = np.concatenate(spectra) if spectra else np.zeros((0, scan.n_channels), scan.dtype)
    return x, labelset.labels[labelset.mask]


def split_pixels(n: int, train_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded random split of ``n`` labelled pixels into (train, test) index arrays.

    Raises
    ------
    LabelError
        If either part would be empty.
    """
    if not 0.0 < train_fraction < 1.0:
        raise LabelError(f"train fraction must be between 0 and 1 (exclusive), got {train_fraction}")
    perm = np.random.default_rng(seed).permutation(n)
    n_train = int(round(n * train_fraction))
    if n_train < 2 or n - n_train < 1:
        raise LabelError(
            f"{n} labelled pixels give {n_train} training and {n - n_train} test pixels with train fraction "
            f"{train_fraction}; label more pixels (at least ~20) or change --train-fraction"
        )
    return np.sort(perm[:n_train]), np.sort(perm[n_train:])


def _check_output(out: Path, base: Path) -> None:
    from xrfcore.registry import is_protected_model

    if out.suffix != ".keras":
        raise ModelError(f"the finetuned model must be a .keras file, got {out.name!r}")
    if out.resolve() == base.resolve():
        raise ModelError(f"--out {out} is the base model; finetuning never overwrites the base model: choose a new name")
    if is_protected_model(out):
        raise ModelError(f"--out {out} is the shipped default model (or in its folder), which is read-only; choose a path elsewhere")
    if out.exists():
        raise ModelError(f"--out {out} already exists; finetuning never overwrites a model: choose a new name")


def finetune_from_files(
    *,
    model: str | None,
    scans: Sequence[str],
    labels: Sequence[str],
    out: str,
    train_fraction: float = 0.2,
    seed: int = 0,
    stage1_epochs: int = 20,
    stage2_epochs: int = 30,
    batch_size: int = 64,
    validation_fraction: float = 0.2,
    patience: int = 5,
    name: str | None = None,
    register: bool = True,
    models_directory: str | None = None,
    progress: Progress = _noop_progress,
    log: Log = print,
) -> dict[str, Any]:
    """Finetune a model on labelled pixels of one or more scans; save, report, register.

    Parameters
    ----------
    model : str or None
        Base model file; the shipped default when None.
    scans, labels : sequences of str
        Scan files and their label files (same length, paired in order).
    out : str
        New ``.keras`` file; must not exist, must not be the base or the shipped default.
    train_fraction : float
        Share of the labelled pixels (random, seeded, pooled over scans) used for training;
        the rest is the test set for the before/after metrics.
    seed : int
    stage1_epochs, stage2_epochs, batch_size, validation_fraction, patience
        Passed to :func:`xrfcore.model.finetune`.
    name : str, optional
        Name in the models index (default: file stem).
    register : bool
        Add the model to the models index.
    models_directory : str, optional
        Models index folder (default :func:`xrfcore.registry.models_dir`).
    progress : callable(fraction, message)
    log : callable(str)

    Returns
    -------
    dict
        ``model`` and ``metrics`` paths, ``macro_f1_before``/``after``, ``per_pigment_f1``,
        ``n_train``, ``n_test``.

    Raises
    ------
    ModelError, LabelError, CalibrationError, ScanReadError
    """
    from xrfcore.io import open_scan
    from xrfcore.labels import load_labels
    from xrfcore.model import (check_compatible, default_model_path, finetune, load_model, per_pigment_metrics,
                               predict_preprocessed, save_model)
    from xrfcore.preprocess import preprocess_spectra
    from xrfcore.registry import register_model

    scans, labels = [str(s) for s in scans], [str(s) for s in labels]
    if not scans or len(scans) != len(labels):
        raise LabelError(f"give one label file per scan: got {len(scans)} scan(s) and {len(labels)} label file(s)")
    base_path = Path(model) if model else Path(default_model_path())
    out_path = Path(out)
    _check_output(out_path, base_path)
    progress(0.0, "loading model and labelled pixels")
    bundle = load_model(base_path)
    log(f"base model {base_path} (sha256 {bundle.sha256[:12]}...), classes {', '.join(bundle.classes)}")
    xs, ys, sources = [], [], []
    for scan_file, label_file in zip(scans, labels):
        scan = open_scan(scan_file)
        check_compatible(bundle, scan)
        ls = load_labels(label_file, scan_shape=scan.shape, classes=bundle.classes)
        raw, y = gather_labelled_spectra(scan, ls)
        xs.append(preprocess_spectra(raw, scan.calibration, bundle.preprocess))
        ys.append(y)
        sources.append({"scan": str(Path(scan_file).resolve()), "labels": str(Path(label_file).resolve()),
                        "n_labelled": int(ls.n_labelled)})
        log(f"{scan_file}: {ls.n_labelled} labelled pixels from {label_file}")
    X, Y = np.concatenate(xs), np.concatenate(ys)
    train, test = split_pixels(X.shape[0], float(train_fraction), int(seed))
    log(f"{train.size} training pixels, {test.size} test pixels (train fraction {train_fraction}, seed {seed})")
    before = per_pigment_metrics(Y[test], predict_preprocessed(bundle.model, X[test]), bundle.classes)
    progress(0.05, "finetuning")
    total_epochs = max(1, int(stage1_epochs) + int(stage2_epochs))

    def on_epoch(epoch: int, logs: dict[str, Any]) -> None:
        stage = str(logs.get("stage", ""))
        done = epoch + 1 + (int(stage1_epochs) if "2/2" in stage else 0)
        progress(0.05 + 0.9 * min(done, total_epochs) / total_epochs,
                 f"{stage} epoch {epoch + 1}: loss {logs.get('loss', float('nan')):.4f}")
        log(f"{stage} epoch {epoch + 1} " + " ".join(f"{k}={v:.4f}" for k, v in logs.items() if isinstance(v, float)))

    data_info = {"scans": sources, "train_fraction": float(train_fraction), "seed": int(seed),
                 "n_train": int(train.size), "n_test": int(test.size)}
    new, history = finetune(bundle, X[train], Y[train], stage1_epochs=int(stage1_epochs),
                            stage2_epochs=int(stage2_epochs), batch_size=int(batch_size),
                            validation_fraction=float(validation_fraction), seed=int(seed), patience=int(patience),
                            progress=on_epoch, data_info=data_info)
    after = per_pigment_metrics(Y[test], predict_preprocessed(new.model, X[test]), new.classes)
    lineage = {"base_model": str(base_path.resolve()), "base_sha256": bundle.sha256, **data_info,
               "metrics_before": _summary(before), "metrics_after": _summary(after)}
    new.metadata = {**new.metadata, "finetune": lineage}
    report = {"base_model": str(base_path.resolve()), "base_sha256": bundle.sha256, **data_info,
              "before": before, "after": after, "history": _jsonable(history)}
    progress(0.96, "saving")
    metrics_file = metrics_path_for(out_path)
    _check_output(out_path, base_path)  # nobody created it meanwhile
    # the model first, its report after it: a run killed in between leaves no report without a model
    save_model(new, out_path)
    atomic_write_text(metrics_file, json.dumps(report, indent=1) + "\n")
    log(f"saved {out_path} (sha256 {new.sha256[:12]}...) and {metrics_file}")
    result = {"model": str(out_path.resolve()), "metrics": str(metrics_file.resolve()), "sha256": new.sha256,
              "macro_f1_before": before["macro"]["f1"], "macro_f1_after": after["macro"]["f1"],
              "per_pigment_f1": {c: [before["per_pigment"][c]["f1"], after["per_pigment"][c]["f1"]] for c in new.classes},
              "n_train": int(train.size), "n_test": int(test.size)}
    if register:
        entry = register_model(out_path, name=name, base_sha256=bundle.sha256, lineage=lineage,
                               metrics={"macro_f1_before": result["macro_f1_before"],
                                        "macro_f1_after": result["macro_f1_after"]},
                               directory=models_directory)
        result["registered_as"] = entry.name
    progress(1.0, "done")
    return result


def _summary(m: dict[str, Any]) -> dict[str, Any]:
    return {"macro": m["macro"], "micro": {k: m["micro"][k] for k in ("accuracy", "sensitivity", "precision", "f1")},
            "f1": {c: v["f1"] for c, v in m["per_pigment"].items()}, "n_spectra": m["n_spectra"]}


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.floating, np.integer)):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return obj


# -- predict ----------------------------------------------------------------------------------
def _predict(params: dict[str, Any], *, progress: Progress, log: Log) -> dict[str, Any]:
    from xrfcore.io import open_scan
    from xrfcore.maps import predict_to_h5
    from xrfcore.model import load_model

    for key in ("scan", "out"):
        if key not in params:
            raise JobError(f"predict job needs parameter {key!r}")
    bundle = load_model(params.get("model"))
    scan = open_scan(params["scan"])
    log(f"predicting {scan} with {bundle.describe()}")
    out = predict_to_h5(bundle, scan, params["out"], batch_size=int(params.get("batch_size", 256)),
                        scheduler=params.get("scheduler"),
                        progress=lambda done, total: progress(done / total, f"{done}/{total} pixels"))
    return {"maps": str(Path(out).resolve())}


# -- simulate / train through their CLI commands --------------------------------------------
def _argv_from_params(params: dict[str, Any]) -> list[str]:
    """``{"out": "a.h5", "n": 100, "snip": True}`` -> ``["--out", "a.h5", "--n", "100", "--snip"]``."""
    argv: list[str] = []
    for key, value in params.items():
        if key == "outputs" or value is None or value is False:
            continue
        flag = "--" + key.replace("_", "-")
        argv += [flag] if value is True else [flag, str(value)]
    return argv


def _cli_task(kind: str, params: dict[str, Any], *, log: Log) -> dict[str, Any]:
    """Run ``python -m xrfcore <kind> ...`` in this process.

    ``params`` holds either ``argv`` (a list of arguments) or the options as a dict (``out``,
    ``n``, ``seed``... turned into ``--out``, ``--n``, ``--seed``; ``True`` -> a bare flag).
    """
    import importlib

    try:
        importlib.import_module(f"xrfcore.commands.{kind}")
    except ImportError as exc:
        raise JobError(f"this installation has no `{kind}` command yet ({exc})") from exc
    from xrfcore.cli import main

    argv = [str(a) for a in params["argv"]] if "argv" in params else _argv_from_params(params)
    log(f"running: python -m xrfcore {kind} {' '.join(argv)}")
    code = main([kind, *argv])
    if code != 0:
        raise JobError(f"`xrfcore {kind}` exited with code {code}; see the log")
    return {"out": str(Path(params["out"]).resolve())} if params.get("out") else {}
