"""What a job does: turn its option dict into one call of a workflow (:mod:`xrfcore.workflows`).

:func:`run_task` is called in the worker process. Parameters are plain option dicts:

``simulate``
    ``out``, ``n``, ``seed``, ``workers``, ``library`` (path or None), ``config`` (dict of
    :class:`~xrfcore.simulate.SimConfig` fields, a path to such a JSON file, or None).
``train``
    ``data``, ``out``, ``checkpoint_dir``, ``grid_start_kev``, ``grid_step_kev``,
    ``grid_channels``, ``snip`` and any :class:`~xrfcore.model.config.TrainConfig` field
    (``epochs``, ``folds``, ``seed``, ...).
``finetune``
    ``model``, ``scans``, ``labels``, ``out``, ``name``, ``register``, ``models_directory`` and
    any :class:`~xrfcore.model.config.FinetuneConfig` field.
``predict``
    ``scan``, ``out``, ``model``, ``batch_size``, ``scheduler``.

``simulate`` and ``train`` also accept ``{"argv": [...], "out": ...}``: the command-line
arguments of ``python -m xrfcore simulate|train``, parsed by that command's parser (kept for
callers that still build argument lists). The key ``outputs`` (the runner's) is ignored. Each
workflow writes its outputs atomically, so a job that crashes or is killed leaves no partial
output under the final name.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from xrfcore.errors import JobError
from xrfcore.workflows import Log, Progress, no_progress

__all__ = ["run_task"]

#: Keys the runner adds to every job's params (not options of the task).
_RUNNER_KEYS = {"outputs"}


def run_task(kind: str, params: dict[str, Any], *, progress: Progress = no_progress, log: Log = print) -> dict[str, Any]:
    """Run one job task; returns a JSON-able result (output paths, summary numbers).

    Raises
    ------
    JobError
        Unknown kind, a missing or unknown parameter.
    """
    options = {k: v for k, v in params.items() if k not in _RUNNER_KEYS}
    if kind == "finetune":
        return _finetune(options, progress=progress, log=log)
    if kind == "predict":
        return _predict(options, progress=progress, log=log)
    if kind == "simulate":
        return _simulate(options, progress=progress, log=log)
    if kind == "train":
        return _train(options, progress=progress, log=log)
    raise JobError(f"unknown job kind {kind!r}")


def _require(options: dict[str, Any], kind: str, *keys: str) -> None:
    missing = [k for k in keys if options.get(k) in (None, "")]
    if missing:
        raise JobError(f"{kind} job needs parameter(s) {', '.join(map(repr, missing))}")


def _check_known(options: dict[str, Any], kind: str, known: set[str]) -> None:
    unknown = sorted(set(options) - known)
    if unknown:
        raise JobError(f"unknown {kind} parameter(s) {unknown}; accepted: {', '.join(sorted(known))}")


def _from_argv(kind: str, options: dict[str, Any]) -> dict[str, Any]:
    """``{"argv": [...]}`` -> the option dict the command's parser makes of those arguments."""
    import importlib

    command = importlib.import_module(f"xrfcore.commands.{kind}")
    parser = argparse.ArgumentParser(prog=f"xrfcore {kind}", exit_on_error=False)
    command.add_arguments(parser)
    try:
        args = parser.parse_args([str(a) for a in options["argv"]])
    except (argparse.ArgumentError, SystemExit) as exc:
        raise JobError(f"bad arguments for a {kind} job {options['argv']!r}: {exc}") from None
    return command.options_from_args(args)


# -- simulate ---------------------------------------------------------------------------------
_SIMULATE_KEYS = {"out", "n", "seed", "workers", "library", "config"}


def _simulate(options: dict[str, Any], *, progress: Progress, log: Log) -> dict[str, Any]:
    from xrfcore.simulate.dataset import SimConfig
    from xrfcore.workflows import simulate_training_set

    if "argv" in options:
        options = _from_argv("simulate", options)
    _check_known(options, "simulate", _SIMULATE_KEYS)
    _require(options, "simulate", "out", "n")
    cfg = options.get("config")
    if isinstance(cfg, dict):
        config = SimConfig.from_dict(cfg)
    elif cfg:
        config = SimConfig.from_json(cfg)
    else:
        config = None
    log(f"simulating {options['n']} spectra into {options['out']}")
    out = simulate_training_set(options["out"], n=int(options["n"]), seed=int(options.get("seed") or 0),
                                config=config, library=options.get("library"),
                                workers=int(options.get("workers") or 2), progress=progress)
    return {"out": str(Path(out).resolve())}


# -- train ------------------------------------------------------------------------------------
def _train(options: dict[str, Any], *, progress: Progress, log: Log) -> dict[str, Any]:
    from xrfcore.workflows import train, train_configs_from_options

    if "argv" in options:
        options = _from_argv("train", options)
    options = dict(options)
    _require(options, "train", "data", "out")
    data, out, checkpoint_dir = options.pop("data"), options.pop("out"), options.pop("checkpoint_dir", None)
    preprocess, config = train_configs_from_options(options)
    result = train(data, out, preprocess=preprocess, config=config, checkpoint_dir=checkpoint_dir,
                   progress=progress, log=log)
    return {"out": str(result.model.resolve()), "report": str(result.report_path.resolve()),
            "best_fold": result.report["best_fold"],
            "test_macro_f1": (result.report["test"] or {}).get("macro", {}).get("f1")}


# -- finetune ---------------------------------------------------------------------------------
def _finetune(options: dict[str, Any], *, progress: Progress, log: Log) -> dict[str, Any]:
    from xrfcore.errors import ConfigError
    from xrfcore.workflows import finetune, finetune_config_from_options

    try:
        run, config = finetune_config_from_options(options)
    except ConfigError as exc:
        raise JobError(str(exc)) from None
    _require(run, "finetune", "scans", "labels", "out")
    return finetune(**{"model": None, **run}, config=config, progress=progress, log=log)


# -- predict ----------------------------------------------------------------------------------
_PREDICT_KEYS = {"scan", "out", "model", "batch_size", "scheduler"}


def _predict(options: dict[str, Any], *, progress: Progress, log: Log) -> dict[str, Any]:
    from xrfcore.workflows import predict_maps

    _check_known(options, "predict", _PREDICT_KEYS)
    _require(options, "predict", "scan", "out")
    log(f"predicting {options['scan']} with {options.get('model') or 'the default model'}")
    result = predict_maps(options["scan"], options["out"], model=options.get("model"),
                          batch_size=int(options.get("batch_size") or 256), scheduler=options.get("scheduler"),
                          progress=progress)
    return {"maps": str(result.maps.resolve())}
