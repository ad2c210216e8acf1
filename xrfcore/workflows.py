"""One function per job a user runs: the layer the CLI, the background jobs and the app share.

Each workflow takes typed options (frozen config dataclasses for options that travel together:
:class:`~xrfcore.simulate.SimConfig`, :class:`~xrfcore.preprocess.PreprocessConfig`,
:class:`~xrfcore.model.config.TrainConfig`, :class:`~xrfcore.model.config.FinetuneConfig`),
writes its outputs atomically and returns what it made. Callers only adapt:

* ``python -m xrfcore <command>`` parses arguments, calls the workflow, prints;
* :mod:`xrfcore.jobs.tasks` turns a job's option dict into the same call in a worker process;
* the app's pages call the workflow (or start it as a job) and show the result.

=================================  ========================================================
job                                workflow
=================================  ========================================================
simulate a training set            :func:`simulate_training_set`
train a model                      :func:`train`
finetune a model on labelled scans :func:`finetune`
pigment probability maps           :func:`predict_maps`
element maps                       :func:`element_maps`
evaluate a model on a labelled scan :func:`evaluate`
=================================  ========================================================

Progress
--------
Every workflow takes ``progress: Progress``, a callable ``progress(fraction, message)`` with
``fraction`` in 0..1 and a short message. :class:`ConsoleProgress` draws it on a terminal; the
job worker writes it to the job's ``status.json``; the app draws it as a progress widget.

Importing this module is cheap: TensorFlow, PyMca5, Dask and h5py load inside the functions.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence, TextIO

import numpy as np

from xrfcore.atomic import atomic_path, atomic_write_text, refuse_overwriting_inputs
from xrfcore.errors import ConfigError, LabelError, ModelError
from xrfcore.model.config import FinetuneConfig, TrainConfig
from xrfcore.model.sidecars import sidecar_path
from xrfcore.preprocess.config import PreprocessConfig
from xrfcore.preprocess.grid import EnergyGrid

if TYPE_CHECKING:  # pragma: no cover
    from xrfcore.scan import Scan
    from xrfcore.simulate.dataset import SimConfig

__all__ = [
    "Progress",
    "Log",
    "no_progress",
    "ConsoleProgress",
    "sub_progress",
    "TrainConfig",
    "FinetuneConfig",
    "TrainResult",
    "PredictResult",
    "training_grid",
    "train_configs_from_options",
    "finetune_config_from_options",
    "simulate_training_set",
    "train",
    "write_training_report",
    "write_curves_png",
    "finetune",
    "split_pixels",
    "predict_maps",
    "element_maps",
    "evaluate",
]

#: ``progress(fraction, message)``: fraction done (0..1) and a short message.
Progress = Callable[[float, str], None]
#: ``log(line)``: one line for a log (the job's log file, or nothing on the CLI).
Log = Callable[[str], None]


def no_progress(fraction: float, message: str = "") -> None:
    """A :data:`Progress` that shows nothing."""


def _no_log(message: str) -> None:
    pass


class ConsoleProgress:
    """A :data:`Progress` drawn as one terminal line: ``[#####-----]  50% message  12s, ETA 12s``.

    Parameters
    ----------
    stream : text stream, optional
        Where the bar goes (stderr by default).
    width : int
        Characters of the bar.

    Examples
    --------
    >>> import io
    >>> s = io.StringIO()
    >>> bar = ConsoleProgress(stream=s, width=10)
    >>> bar(0.5, "fold 1/2")
    >>> "[#####-----]  50% fold 1/2" in s.getvalue()
    True
    """

    def __init__(self, *, stream: TextIO | None = None, width: int = 24) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.width = int(width)
        self.t0 = time.monotonic()
        self._open = False

    def __call__(self, fraction: float, message: str = "") -> None:
        frac = min(max(float(fraction), 0.0), 1.0)
        n = int(round(self.width * frac))
        elapsed = time.monotonic() - self.t0
        eta = elapsed * (1 - frac) / frac if frac > 0 else float("inf")
        self.stream.write(f"\r[{'#' * n}{'-' * (self.width - n)}] {100 * frac:3.0f}% {message[:64]:<64} "
                          f"{_fmt_s(elapsed)}, ETA {_fmt_s(eta)}")
        self.stream.flush()
        self._open = True

    def close(self) -> None:
        """End the bar's line (once)."""
        if self._open:
            self.stream.write("\n")
            self.stream.flush()
            self._open = False


def _fmt_s(s: float) -> str:
    if not math.isfinite(s):
        return "?"
    m, sec = divmod(int(round(s)), 60)
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m{sec:02d}s" if h else (f"{m}m{sec:02d}s" if m else f"{sec}s")


def sub_progress(progress: Progress, start: float, stop: float) -> Progress:
    """The part ``start..stop`` of ``progress``: ``sub(f, m)`` reports ``start + f * (stop - start)``."""

    def sub(fraction: float, message: str = "") -> None:
        progress(start + min(max(float(fraction), 0.0), 1.0) * (stop - start), message)

    return sub


def _epoch_progress(progress: Progress, total_epochs: int, *, start: float = 0.0, stop: float = 1.0,
                    log: Log = _no_log) -> Callable[[int, dict[str, Any]], None]:
    """Keras ``fn(epoch, logs)`` events (:mod:`xrfcore.model.callbacks`) -> ``progress(fraction, message)``.

    The stage in ``logs["stage"]`` (``"fold 2/5"``, ``"finetune stage 2/2"``) and its planned
    ``logs["epochs"]`` place the epoch among ``total_epochs``: earlier stages count in full.
    """
    state = {"stage": None, "offset": 0, "planned": 0}

    def on_epoch(epoch: int, logs: dict[str, Any]) -> None:
        stage = str(logs.get("stage", ""))
        if stage != state["stage"]:
            if state["stage"] is not None:
                state["offset"] += state["planned"]
            state["stage"], state["planned"] = stage, int(logs.get("epochs") or 0)
        done = state["offset"] + epoch + 1
        losses = " ".join(f"{k}={logs[k]:.4f}" for k in ("loss", "val_loss") if isinstance(logs.get(k), float))
        message = f"{stage} epoch {epoch + 1}/{logs.get('epochs') or '?'} {losses}".strip()
        progress(start + (stop - start) * min(done, total_epochs) / max(total_epochs, 1), message)
        if logs.get("event", "epoch") == "epoch":
            log(message)

    return on_epoch


# -- simulate ---------------------------------------------------------------------------------
def simulate_training_set(
    out: str | os.PathLike,
    *,
    n: int,
    seed: int = 0,
    config: "SimConfig | None" = None,
    library: str | os.PathLike | None = None,
    workers: int = 2,
    progress: Progress = no_progress,
) -> Path:
    """Simulate ``n`` layered-paint spectra into an HDF5 training file (atomically).

    Parameters
    ----------
    out : path-like
        Output ``.h5``/``.hdf5`` file.
    n : int
        Number of spectra, >= 1.
    seed : int
        Same seed + config + library = the same file.
    config : SimConfig, optional
        What is sampled (defaults: :class:`~xrfcore.simulate.SimConfig`).
    library : path-like, optional
        Pigment library JSON (default: the shipped one).
    workers : int
        Worker processes, >= 1 (the file does not depend on it).
    progress : Progress

    Returns
    -------
    Path
        The written file.

    Raises
    ------
    ConfigError
        Bad suffix, ``workers < 1``, ``n < 1`` or a bad config.
    """
    from xrfcore.simulate.dataset import simulate_dataset

    path = Path(out)
    if path.suffix.lower() not in (".h5", ".hdf5"):
        raise ConfigError(f"the training set must be an .h5 or .hdf5 file, got {path.name!r}")
    if int(workers) < 1:
        raise ConfigError(f"workers must be >= 1, got {workers}")
    t0 = time.monotonic()

    def on_batch(done: int, total: int) -> None:
        rate = done / max(time.monotonic() - t0, 1e-9)
        progress(done / max(total, 1), f"simulated {done}/{total} spectra ({rate:.0f}/s)")

    progress(0.0, f"simulating {n} spectra")
    return simulate_dataset(path, n=int(n), seed=int(seed), config=config, workers=int(workers),
                            library_path=library, progress=on_batch)


# -- train ------------------------------------------------------------------------------------
@dataclass
class TrainResult:
    """What :func:`train` wrote: the model and its sidecars, and the report."""

    model: Path
    report_path: Path
    curves: Path
    metrics_csv: Path | None
    report: dict[str, Any] = field(repr=False)
    sha256: str = ""


def training_grid(start_kev: float = 2.8, step_kev: float = 0.02, n_channels: int | None = None) -> EnergyGrid:
    """The model's energy grid; without ``n_channels`` it reaches up to 30 keV (1360 bins at 0.02 keV)."""
    n = n_channels or int(math.floor((30.0 - float(start_kev)) / float(step_kev) + 1e-9))
    return EnergyGrid(start_kev, step_kev, n)


#: Options of :func:`train_configs_from_options` that are not TrainConfig fields.
_TRAIN_GRID_OPTIONS = ("grid_start_kev", "grid_step_kev", "grid_channels", "snip")


def train_configs_from_options(options: dict[str, Any]) -> tuple[PreprocessConfig, TrainConfig]:
    """Flat training options (CLI arguments, a job's parameters) -> the two configs of :func:`train`.

    ``grid_start_kev``, ``grid_step_kev``, ``grid_channels`` and ``snip`` make the
    :class:`PreprocessConfig` (:func:`training_grid`); the other keys are :class:`TrainConfig`
    fields. Missing keys take the defaults; ``None`` values count as missing.

    Raises
    ------
    ConfigError
        For a key that is neither (named in the message) or a bad value.
    """
    opts = {k: v for k, v in options.items() if v is not None}
    known = set(TrainConfig.__dataclass_fields__) | set(_TRAIN_GRID_OPTIONS)
    unknown = sorted(set(opts) - known)
    if unknown:
        raise ConfigError(f"unknown training option(s) {unknown}; known: {', '.join(sorted(known))}")
    grid = training_grid(opts.get("grid_start_kev", 2.8), opts.get("grid_step_kev", 0.02), opts.get("grid_channels"))
    preprocess = PreprocessConfig(grid=grid, snip=bool(opts.get("snip", False)))
    config = TrainConfig(**{k: v for k, v in opts.items() if k not in _TRAIN_GRID_OPTIONS})
    return preprocess, config


def _subset_rows(data: Path, max_spectra: int | None, seed: int) -> np.ndarray | None:
    import h5py

    if max_spectra is None:
        return None
    with h5py.File(data, "r") as f:
        n = f["spectra"].shape[0] if "spectra" in f else 0
    if max_spectra >= n:
        return None
    return np.sort(np.random.default_rng(seed).choice(n, size=max_spectra, replace=False))


def train(
    data: str | os.PathLike,
    out: str | os.PathLike,
    *,
    preprocess: PreprocessConfig,
    config: TrainConfig = TrainConfig(),
    checkpoint_dir: str | os.PathLike | None = None,
    progress: Progress = no_progress,
    log: Log = _no_log,
) -> TrainResult:
    """Train the pigment CNN on a simulated set; write the model, its report, curves and metrics.

    Writes ``MODEL.keras`` and next to it ``MODEL.report.json`` (settings, per-fold and
    per-pigment metrics, learning curves), ``MODEL.curves.png`` and, when there is a held-out
    test part, ``MODEL.metrics.csv`` (:func:`xrfcore.model.sidecar_path`), each atomically.

    Parameters
    ----------
    data : path-like
        A training set from :func:`simulate_training_set`.
    out : path-like
        The model file (``.keras``); not the data file.
    preprocess : PreprocessConfig
        Preprocessing (energy grid included), stored in the model.
    config : TrainConfig
        Training options, stored in the model (``metadata["train_config"]``).
    checkpoint_dir : path-like, optional
        Keep the per-fold checkpoints here (default: a temporary folder).
    progress : Progress
    log : callable(str)

    Returns
    -------
    TrainResult

    Raises
    ------
    ConfigError
        Missing data, a bad output name, bad options.
    """
    from xrfcore.model.bundle import save_model
    from xrfcore.model.data import dataset_info, load_dataset
    from xrfcore.model.train import train_model

    data_path, out_path = Path(data), Path(out)
    if not data_path.is_file():
        raise ConfigError(f"training data {data_path} does not exist; make a training set with `python -m xrfcore simulate`")
    if out_path.suffix != ".keras":
        raise ConfigError(f"the model file must end in .keras, got {out_path.name!r}")
    refuse_overwriting_inputs({"--out": out_path}, {"--data": data_path})
    info = dataset_info(data_path)
    rows = _subset_rows(data_path, config.max_spectra, config.seed)
    n_read = info["n_spectra"] if rows is None else len(rows)
    progress(0.0, f"reading {n_read} spectra")
    log(f"reading {n_read} spectra from {data_path}; {preprocess.describe()}")
    X, Y, names = load_dataset(data_path, preprocess, rows=rows)
    info["n_used"] = int(X.shape[0])
    total_epochs = config.folds * config.epochs
    bundle, report = train_model(
        X, Y, classes=names, preprocess=preprocess, config=config,
        progress=_epoch_progress(progress, total_epochs, start=0.02, stop=0.97, log=log),
        out_dir=checkpoint_dir, data_info=info, library_version=info["attrs"].get("library_version"),
    )
    progress(0.97, "saving the model and its report")
    save_model(bundle, out_path)
    report = {**report, "model": str(out_path), "sha256": bundle.sha256, "data": info,
              "preprocess": preprocess.to_dict(), "train_config": config.to_dict(), "classes": bundle.classes}
    paths = write_training_report(report, out_path)
    log(f"wrote {out_path} (best fold {report['best_fold']}), " + ", ".join(str(p) for p in paths.values() if p))
    progress(1.0, "done")
    return TrainResult(model=out_path, report_path=paths["report"], curves=paths["curves"],
                       metrics_csv=paths["metrics_csv"], report=report, sha256=bundle.sha256 or "")


def write_training_report(report: dict[str, Any], model_path: str | os.PathLike) -> dict[str, Path | None]:
    """Write the sidecars of a trained model: report JSON, curves PNG, metrics CSV (when tested).

    Returns
    -------
    dict
        ``report``, ``curves`` and ``metrics_csv`` (None without a held-out test part) paths.
    """
    from xrfcore.common import json_safe
    from xrfcore.model.metrics import metrics_to_csv

    safe = json_safe(report)
    report_path = sidecar_path(model_path, "report")
    atomic_write_text(report_path, json.dumps(safe, indent=1) + "\n")
    curves = sidecar_path(model_path, "curves")
    write_curves_png(safe, curves)
    metrics_csv = None
    if safe.get("test"):
        metrics_csv = sidecar_path(model_path, "metrics_csv")
        metrics_to_csv(safe["test"], metrics_csv)
    return {"report": report_path, "curves": curves, "metrics_csv": metrics_csv}


def write_curves_png(report: dict[str, Any], path: str | os.PathLike) -> None:
    """Loss per epoch for each fold and held-out per-pigment F1/sensitivity (matplotlib Agg), atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 4), dpi=100)
    for fold in report["folds"]:
        h = fold["history"]
        epochs = range(1, len(h.get("loss", [])) + 1)
        line, = ax.plot(epochs, h.get("loss", []), label=f"fold {fold['fold']} train")
        ax.plot(epochs, h.get("val_loss", []), "--", color=line.get_color(), label=f"fold {fold['fold']} validation")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss (weighted binary cross-entropy)")
    ax.set_title(f"training curves (best fold {report['best_fold']})")
    ax.legend(fontsize=7)
    test = report.get("test")
    if test:
        classes = list(test["per_pigment"])
        xs = range(len(classes))
        bx.bar([x - 0.2 for x in xs], [test["per_pigment"][c]["f1"] for c in classes], width=0.4, label="F1")
        bx.bar([x + 0.2 for x in xs], [test["per_pigment"][c]["sensitivity"] for c in classes], width=0.4,
               label="sensitivity")
        bx.set_xticks(list(xs), classes, rotation=45)
        bx.set_ylim(0, 1)
        bx.set_title(f"held-out test ({test['n_spectra']} spectra)")
        bx.legend(fontsize=7)
    else:
        bx.set_axis_off()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


# -- evidence model -----------------------------------------------------------------------------
def train_evidence(
    data: str | os.PathLike,
    out: str | os.PathLike,
    *,
    base: str | os.PathLike | None = None,
    seed: int = 0,
    epochs: int = 60,
    gate_significance: float = 3.0,
    max_spectra: int | None = None,
    n_heads: int = 5,
    trunk_epochs: int = 0,
    distill: bool = False,
    head_rank: int = 0,
    heads_from: str | os.PathLike | None = None,
    layer_trees: bool = True,
    tree_thinning: tuple[float, float] | None = None,
    systematic: float | None = None,
    tree_data: Sequence[str | os.PathLike] = (),
    progress: Progress = no_progress,
    log: Callable[[str], None] = _no_log,
) -> TrainResult:
    """Train the evidence-backed model (:mod:`xrfcore.model.evidence_training`) and write its report.

    Parameters
    ----------
    data : path-like
        Simulated training set (:func:`simulate_training_set`).
    out : path-like
        New ``.keras`` file; must not be the base model, the data or an existing file's input.
    base : path-like, optional
        The pretrained paper CNN whose convolutional trunk is kept (default: ``models/paper_cnn.keras``
        next to the shipped model, else the shipped default).
    seed, epochs, gate_significance, max_spectra, n_heads, trunk_epochs, distill, head_rank, layer_trees,
    tree_thinning
        See :func:`xrfcore.model.evidence_training.train_evidence_model`.
    systematic : float, optional
        The evidence fit's relative model error (:attr:`xrfcore.elements.evidence.EvidenceConfig.systematic`;
        default that class's); saved in the model with the rest of its evidence settings.
    tree_data : sequence of path-like
        Further simulated sets for the layer trees' training part only (see
        :func:`~xrfcore.model.evidence_training.train_evidence_model`).
    heads_from : path-like, optional
        An evidence model trained on ``data`` with ``seed``: its heads are kept (no training), e.g. to
        compress them with ``head_rank``; it must not be ``out``.

    Returns
    -------
    TrainResult
        ``report_path`` (JSON: settings, per-head test metrics, ECE and reliability tables) and
        ``curves`` (reliability diagram PNG).
    """
    from xrfcore.common import json_safe
    from xrfcore.model.bundle import load_model, save_model
    from xrfcore.model.evidence_training import train_evidence_model

    out_path, data_path = Path(out), Path(data)
    if out_path.suffix != ".keras":
        raise ConfigError(f"--out must end in .keras, got {out_path.name!r}")
    if not data_path.is_file():
        raise ConfigError(f"--data {data_path} does not exist; make a training set with `python -m xrfcore simulate`")
    base_path = Path(base) if base else _paper_cnn_path()
    heads_path = Path(heads_from) if heads_from else None
    extra = [Path(p) for p in tree_data]
    for p in extra:
        if not p.is_file():
            raise ConfigError(f"--tree-data {p} does not exist; make it with `python -m xrfcore simulate`")
    refuse_overwriting_inputs({"--out": out_path}, {"--base": base_path, "--data": data_path, "--heads-from": heads_path,
                                                    "--tree-data": extra})
    progress(0.0, f"loading base model {base_path.name}")
    base_bundle = load_model(base_path)
    from xrfcore.elements.evidence import EvidenceConfig

    ev_config = EvidenceConfig() if systematic is None else EvidenceConfig(systematic=float(systematic))
    bundle, report = train_evidence_model(base_bundle, data_path, seed=int(seed), epochs=int(epochs),
                                          gate_significance=float(gate_significance), max_spectra=max_spectra,
                                          n_heads=int(n_heads), trunk_epochs=int(trunk_epochs),
                                          distill=bool(distill), head_rank=int(head_rank),
                                          heads_from=load_model(heads_path) if heads_path else None,
                                          layer_trees=bool(layer_trees), tree_thinning=tree_thinning,
                                          tree_data=tuple(extra), evidence=ev_config, log=log)
    progress(0.9, "saving")
    save_model(bundle, out_path)
    report = json_safe({**report, "model": str(out_path), "sha256": bundle.sha256, "base_model": str(base_path),
                        "base_sha256": base_bundle.sha256, "classes": bundle.classes})
    report_path = sidecar_path(out_path, "report")
    atomic_write_text(report_path, json.dumps(report, indent=1) + "\n")
    curves = sidecar_path(out_path, "curves")
    write_reliability_png(report, curves)
    progress(1.0, "done")
    return TrainResult(model=out_path, report_path=report_path, curves=curves, metrics_csv=None, report=report,
                       sha256=bundle.sha256 or "")


def _paper_cnn_path() -> Path:
    from xrfcore.paths import default_model_path

    shipped = default_model_path()
    cnn = shipped.with_name("paper_cnn.keras")
    return cnn if cnn.is_file() else shipped


def write_reliability_png(report: dict[str, Any], path: str | os.PathLike) -> None:
    """Reliability diagram (observed frequency against predicted probability) of each output head."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    heads = list(report.get("calibration", {}))
    fig, axes = plt.subplots(1, max(len(heads), 1), figsize=(3.2 * max(len(heads), 1), 3.2), dpi=100, squeeze=False)
    for ax, head in zip(axes[0], heads):
        rows = [r for r in report["calibration"][head]["reliability"] if r["n"]]
        ax.plot([0, 1], [0, 1], ":", color="grey")
        ax.plot([r["mean_predicted"] for r in rows], [r["observed"] for r in rows], "o-")
        ax.set_title(f"{head}: ECE {report['calibration'][head]['ece']:.3f}", fontsize=9)
        ax.set_xlabel("predicted probability")
        ax.set_ylabel("observed frequency")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


# -- finetune ---------------------------------------------------------------------------------
#: Options of :func:`finetune_config_from_options` that are not FinetuneConfig fields.
_FINETUNE_RUN_OPTIONS = ("model", "scans", "labels", "out", "name", "register", "models_directory")


def finetune_config_from_options(options: dict[str, Any]) -> tuple[dict[str, Any], FinetuneConfig]:
    """Flat finetune options (a job's parameters) -> (the run's arguments, :class:`FinetuneConfig`).

    ``model``, ``scans``, ``labels``, ``out``, ``name``, ``register`` and ``models_directory``
    are arguments of :func:`finetune`; the other keys are FinetuneConfig fields.

    Raises
    ------
    ConfigError
        For an unknown key (named in the message) or a bad value.
    """
    known = set(FinetuneConfig.__dataclass_fields__) | set(_FINETUNE_RUN_OPTIONS)
    unknown = sorted(set(options) - known)
    if unknown:
        raise ConfigError(f"unknown finetune option(s) {unknown}; accepted: {', '.join(sorted(known))}")
    run = {k: v for k, v in options.items() if k in _FINETUNE_RUN_OPTIONS}
    config = FinetuneConfig(**{k: v for k, v in options.items() if k not in _FINETUNE_RUN_OPTIONS and v is not None})
    return run, config


def split_pixels(n: int, train_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded random split of ``n`` labelled pixels into (train, test) index arrays.

    The paper's protocol (:func:`xrfcore.model.splits.split_pixels`, ``split="pixels"``).

    Raises
    ------
    LabelError
        If either part would be empty.
    """
    from xrfcore.model.splits import split_pixels as _split

    s = _split(n, train_fraction, seed)
    return s.train, s.test


def _check_finetune_output(out: Path, base: Path) -> None:
    from xrfcore.registry import is_protected_model

    if out.suffix != ".keras":
        raise ModelError(f"the finetuned model must be a .keras file, got {out.name!r}")
    try:
        refuse_overwriting_inputs({"--out": out}, {"--base": base})   # the same file, or a hard link to it
    except ConfigError:
        raise ModelError(f"--out {out} is the base model; finetuning never overwrites the base model: "
                         "choose a new name") from None
    if is_protected_model(out):
        raise ModelError(f"--out {out} is the shipped default model (or in its folder), which is read-only; choose a path elsewhere")
    if out.exists():
        raise ModelError(f"--out {out} already exists; finetuning never overwrites a model: choose a new name")


def finetune(
    *,
    model: str | os.PathLike | None,
    scans: Sequence[str | os.PathLike],
    labels: Sequence[str | os.PathLike],
    out: str | os.PathLike,
    config: FinetuneConfig = FinetuneConfig(),
    name: str | None = None,
    register: bool = True,
    models_directory: str | os.PathLike | None = None,
    progress: Progress = no_progress,
    log: Log = _no_log,
) -> dict[str, Any]:
    """Finetune a model on labelled pixels of one or more scans; score honestly; save, report, register.

    The labelled pixels (pooled over the scans) are split by ``config.split``: whole regions
    (default; large regions cut into blocks, stratified by pigment) or random pixels; validation
    regions for early stopping come out of the training part the same way. Training adds
    augmented copies, simulated spectra of the stated layer stacks and rehearsal spectra
    (:mod:`xrfcore.model.finetuning`). The base and the finetuned model are scored on the same
    test pixels; ``NEW.finetune.json`` next to the new model holds both, the split (test regions
    and pixels, held-out regions per pigment) and every warning. The model's metadata records
    its lineage, including which pixels of which scan trained it (``training_pixels``,
    :mod:`xrfcore.model.lineage`), so :func:`evaluate` leaves them out.

    Parameters
    ----------
    model : path-like or None
        Base model file; the shipped default when None.
    scans, labels : sequences of path-like
        Scan files and their label files (same length, paired in order).
    out : path-like
        New ``.keras`` file; must not exist, must not be the base or the shipped default.
    config : FinetuneConfig
    name : str, optional
        Name in the models index (default: file stem).
    register : bool
        Add the model to the models index.
    models_directory : path-like, optional
        Models index folder (default :func:`xrfcore.paths.models_dir`).
    progress : Progress
    log : callable(str)

    Returns
    -------
    dict
        ``model`` and ``metrics`` paths, ``sha256``, ``split``, ``macro_f1_before``/``after``
        (base and finetuned model on the same test pixels), ``per_pigment_f1`` (class ->
        [before, after]), ``n_train``, ``n_test`` (pixels), ``n_test_regions``,
        ``held_out_regions`` (pigment -> regions wholly held out), ``worse_than_base``,
        ``kept_base_outputs``, ``finetuned_weight`` (pigment -> share of the finetuned output in the
        saved model, the rest the base model's), ``warnings``, and ``registered_as`` when registered.

    Raises
    ------
    ModelError, LabelError, CalibrationError, ScanReadError
    """
    from xrfcore.common import json_safe
    from xrfcore.io import open_scan
    from xrfcore.labels import load_labels
    from xrfcore.model.bundle import check_compatible, load_model, save_model
    from xrfcore.model.evidence_model import spec_of
    from xrfcore.model.finetuning import finetune_labelled, labelled_scan
    from xrfcore.model.lineage import TRAINING_PIXELS_KEY, training_record
    from xrfcore.model.metrics import metrics_summary
    from xrfcore.paths import default_model_path
    from xrfcore.registry import register_model

    if not isinstance(config, FinetuneConfig):
        raise ConfigError(f"config must be a FinetuneConfig, got {type(config).__name__}")
    scans, labels = [str(s) for s in scans], [str(s) for s in labels]
    if not scans or len(scans) != len(labels):
        raise LabelError(f"give one label file per scan: got {len(scans)} scan(s) and {len(labels)} label file(s)")
    base_path = Path(model) if model else default_model_path()
    out_path = Path(out)
    _check_finetune_output(out_path, base_path)
    progress(0.0, "loading model and labelled pixels")
    bundle = load_model(base_path)
    evidence = spec_of(bundle) is not None
    if evidence:
        log(f"{base_path.name} is an evidence-backed model: its head (trunk features + element evidence) is "
            "finetuned, the trunk, the evidence gate and the layer outputs stay")
    log(f"base model {base_path} (sha256 {bundle.sha256[:12]}...), classes {', '.join(bundle.classes)}")
    data, sources = [], []
    for scan_file, label_file in zip(scans, labels):
        scan = open_scan(scan_file)
        check_compatible(bundle, scan)
        ls = load_labels(label_file, scan_shape=scan.shape, classes=bundle.classes)
        data.append(labelled_scan(scan, ls))
        sources.append({"scan": str(Path(scan_file).resolve()), "labels": str(Path(label_file).resolve()),
                        "n_labelled": int(ls.n_labelled), "n_regions": int(ls.n_regions)})
        log(f"{scan_file}: {ls.n_labelled} labelled pixels in {ls.n_regions} regions from {label_file}")
    progress(0.05, "preparing training data (split, augmentation, simulation)")
    total = max(1, config.stage1_epochs + (0 if evidence else config.stage2_epochs))
    on_epoch = _epoch_progress(progress, total, start=0.15, stop=0.92, log=log)
    new, rep = finetune_labelled(bundle, data, config=config, progress=on_epoch, log=log)
    before, after, split = rep["before"], rep["after"], rep["split"]
    records = [training_record(sc, lf, m) for sc, lf, m in zip(scans, labels, rep["train_masks"])]
    data_info = {"scans": sources, "split": split["kind"], "train_fraction": float(config.train_fraction),
                 "seed": int(config.seed), "n_train": split["n_train_pixels"], "n_test": split["n_test_pixels"],
                 "n_test_regions": split["n_test_regions"]}
    lineage = {"base_model": str(base_path.resolve()), "base_sha256": bundle.sha256, **data_info,
               "config": config.to_dict(), "held_out_regions": split["held_out_regions"],
               "worse_than_base": rep["worse_than_base"], "kept_base_outputs": rep["kept_base_outputs"],
               "finetuned_weight": rep["finetuned_weight"], "warnings": rep["warnings"],
               "metrics_before": metrics_summary(before), "metrics_after": metrics_summary(after),
               "layers_recalibrated": list((rep.get("layers") or {}).get("recalibrated", []))}
    meta = dict(new.metadata)
    meta["finetune"] = lineage
    meta[TRAINING_PIXELS_KEY] = list(bundle.metadata.get(TRAINING_PIXELS_KEY) or []) + records
    new.metadata = meta
    report = {"base_model": str(base_path.resolve()), "base_sha256": bundle.sha256, **data_info,
              "config": config.to_dict(), "split_summary": split, "before": before, "after": after,
              "base_on_test_pixels": metrics_summary(before), "worse_than_base": rep["worse_than_base"],
              "kept_base_outputs": rep["kept_base_outputs"], "finetuned_weight": rep["finetuned_weight"],
              "warnings": rep["warnings"], "validation_before": rep["validation_before"], "validation_after": rep["validation_after"],
              "n_validation_pixels": rep["n_validation_pixels"], "n_training_spectra": rep["n_training_spectra"],
              "history": json_safe(rep["history"]), "layers": rep.get("layers")}
    progress(0.96, "saving")
    metrics_file = sidecar_path(out_path, "finetune")
    _check_finetune_output(out_path, base_path)  # nobody created it meanwhile
    # the model first, then its report: a run killed in between leaves a model without a report,
    # never a report that names a model which does not exist
    save_model(new, out_path)
    atomic_write_text(metrics_file, json.dumps(json_safe(report), indent=1) + "\n")
    log(f"saved {out_path} (sha256 {new.sha256[:12]}...) and {metrics_file}")
    result: dict[str, Any] = {
        "model": str(out_path.resolve()), "metrics": str(metrics_file.resolve()), "sha256": new.sha256,
        "split": split["kind"], "macro_f1_before": before["macro"]["f1"], "macro_f1_after": after["macro"]["f1"],
        "per_pigment_f1": {c: [before["per_pigment"][c]["f1"], after["per_pigment"][c]["f1"]] for c in new.classes},
        "n_train": split["n_train_pixels"], "n_test": split["n_test_pixels"],
        "n_test_regions": split["n_test_regions"], "held_out_regions": split["held_out_regions"],
        "worse_than_base": rep["worse_than_base"], "kept_base_outputs": rep["kept_base_outputs"],
        "finetuned_weight": rep["finetuned_weight"], "warnings": rep["warnings"],
        "layers_recalibrated": lineage["layers_recalibrated"], "layer_macro_f1": _layer_macro(rep.get("layers")),
    }
    if register:
        entry = register_model(out_path, name=name, base_sha256=bundle.sha256, lineage=lineage,
                               metrics={"macro_f1_before": result["macro_f1_before"],
                                        "macro_f1_after": result["macro_f1_after"],
                                        "split": split["kind"], "n_test_pixels": split["n_test_pixels"],
                                        "n_test_regions": split["n_test_regions"]},
                               directory=models_directory)
        result["registered_as"] = entry.name
    progress(1.0, "done")
    return result


def _layer_macro(layers: dict | None) -> dict[str, list[float]]:
    """``{"surface": [before, after], "hidden": [...]}``: mean F1 of the layer outputs on the test pixels, over
    the pigments those pixels hold in that layer."""
    if not layers or not layers.get("macro_f1"):
        return {}
    return {h: v for h, v in layers["macro_f1"].items() if None not in v}


# -- predict ----------------------------------------------------------------------------------
@dataclass
class PredictResult:
    """What :func:`predict_maps` wrote."""

    maps: Path
    png: list[Path]
    tiff: Path | None
    n_pixels: int
    seconds: float
    covered_share: float = 1.0
    unexplained_elements: list[str] = field(default_factory=list)
    unexplained_summary: str = ""


def predict_maps(
    scan: "Scan | str | os.PathLike",
    out: str | os.PathLike,
    *,
    model: str | os.PathLike | None = None,
    batch_size: int = 256,
    rows_per_chunk: int | None = None,
    scheduler: Any = None,
    png_dir: str | os.PathLike | None = None,
    tiff: str | os.PathLike | None = None,
    allow_short_range: bool = False,
    progress: Progress = no_progress,
) -> PredictResult:
    """Pigment probability maps of a whole scan into an HDF5 maps file, optionally PNG and TIFF.

    Parameters
    ----------
    scan : Scan or path-like
        The scan (a path is opened with :func:`xrfcore.io.open_scan`).
    out : path-like
        Maps file (``.h5``/``.hdf5``), written atomically.
    model : path-like, optional
        Model file (default: the shipped default model).
    batch_size : int
        Spectra per forward pass, >= 1.
    rows_per_chunk : int, optional
        Scan rows per chunk (default: ~64 MB per chunk).
    scheduler : str or dask scheduler, optional
        ``dask.distributed`` scheduler address (default: local threads).
    png_dir, tiff : path-like, optional
        Also write one PNG per pigment into ``png_dir`` / a multi-page TIFF.
    allow_short_range : bool
        Accept a scan that stops short of the model's energy grid: the missing part is zero-padded
        and element evidence there counts as unknown (``covered_share`` says how much was covered).
    progress : Progress

    Returns
    -------
    PredictResult
        Also the unexplained elements (lines the library cannot explain) and a one-line summary.
    """
    from xrfcore.io import open_scan
    from xrfcore.maps import export_png, export_tiff, predict_to_h5, read_maps
    from xrfcore.model.bundle import load_model
    from xrfcore.scan import Scan

    out_path = Path(out)
    if out_path.suffix.lower() not in (".h5", ".hdf5"):
        raise ConfigError(f"the maps file must be an HDF5 file ending in .h5 or .hdf5, got {out_path.name!r}")
    if int(batch_size) < 1:
        raise ConfigError(f"batch size must be >= 1, got {batch_size}")
    scan_obj = scan if isinstance(scan, Scan) else open_scan(scan)

    # the same check as the CLI's, for jobs and pages too: the maps file must not replace the scan or model
    refuse_overwriting_inputs({"the maps file": out_path, "the PNG folder": png_dir, "the TIFF file": tiff},
                              {"the scan": None if isinstance(scan, Scan) else scan,
                               "the scan file": scan_obj.metadata.source or None, "the model": model})
    bundle = load_model(model)
    t0 = time.monotonic()

    def on_pixels(done: int, total: int) -> None:
        rate = done / max(time.monotonic() - t0, 1e-9)
        progress(0.95 * done / max(total, 1), f"{done}/{total} px, {rate:,.0f} px/s")

    progress(0.0, f"predicting with {bundle.describe()}")
    predict_to_h5(bundle, scan_obj, out_path, batch_size=int(batch_size), rows_per_chunk=rows_per_chunk,
                  scheduler=scheduler, progress=on_pixels, allow_short_range=allow_short_range)
    seconds = time.monotonic() - t0
    png: list[Path] = []
    tiff_path = None
    maps = read_maps(out_path)
    if png_dir or tiff:
        if png_dir:
            png = [Path(p) for p in export_png(maps.probabilities, maps.pigments, png_dir,
                                               pigment_names=maps.pigment_names)]
        if tiff:
            export_tiff(maps.probabilities, maps.pigments, tiff)
            tiff_path = Path(tiff)
    from xrfcore.elements.unexplained import summarise_unexplained

    progress(1.0, "done")
    flags = maps.unexplained if maps.unexplained is not None else np.zeros(maps.probabilities.shape[:2] + (0,))
    return PredictResult(maps=out_path, png=png, tiff=tiff_path, n_pixels=scan_obj.n_rows * scan_obj.n_cols,
                         seconds=seconds, covered_share=float(maps.attrs.get("covered_share", 1.0)),
                         unexplained_elements=list(maps.unexplained_elements),
                         unexplained_summary=summarise_unexplained(maps.unexplained_elements, flags))


# -- element maps -----------------------------------------------------------------------------
def element_maps(
    scan: "Scan | str | os.PathLike",
    *,
    elements: Sequence[str] | None = None,
    method: str = "roi",
    tube_kv: float = 40.0,
    out: str | os.PathLike | None = None,
    progress: Progress = no_progress,
) -> dict[str, np.ndarray]:
    """Element maps of a scan by ROI integration or PyMca linear fitting; optionally to HDF5.

    Parameters
    ----------
    scan : Scan or path-like
    elements : sequence of str, optional
        Element symbols; identified from the scan's sum and max-pixel spectra when None.
    method : {"roi", "fit"}
    tube_kv : float
        Tube voltage (kV): which lines are excited.
    out : path-like, optional
        Also write one ``(rows, cols)`` float32 dataset per element plus ``elements`` to this
        ``.h5`` file (atomically); attrs ``method``, ``tube_kv``, ``source``.
    progress : Progress

    Returns
    -------
    dict of str -> (rows, cols) float32 ndarray

    Raises
    ------
    ConfigError
        Unknown method, bad output name, or no element found.
    """
    from xrfcore.elements import fitted_maps, identify_elements, roi_maps
    from xrfcore.io import open_scan
    from xrfcore.scan import Scan

    if method not in ("roi", "fit"):
        raise ConfigError(f"method must be 'roi' or 'fit', got {method!r}")
    out_path = Path(out) if out is not None else None
    source = str(scan) if not isinstance(scan, Scan) else str(scan.metadata.source)
    if out_path is not None:
        if out_path.suffix.lower() not in (".h5", ".hdf5"):
            raise ConfigError(f"the element maps file must end in .h5 or .hdf5, got {str(out)!r}")
        refuse_overwriting_inputs({"--out": out_path}, {"the input scan": source or None})
    scan_obj = scan if isinstance(scan, Scan) else open_scan(scan)
    progress(0.0, "identifying elements" if not elements else f"{method} maps")
    if elements:
        els = [str(e).strip() for e in elements if str(e).strip()]
    else:
        els = list(identify_elements(scan_obj, tube_kv=tube_kv))
        if not els:
            raise ConfigError(f"no element lines found in {source}; pass the elements (e.g. Fe,Pb) explicitly")
    make = fitted_maps if method == "fit" else roi_maps
    maps = {k: np.asarray(v, dtype=np.float32) for k, v in make(scan_obj, els, tube_kv=tube_kv).items()}
    if out_path is not None:
        import h5py

        with atomic_path(out_path) as tmp:
            with h5py.File(tmp, "w") as h5:
                for el, m in maps.items():
                    h5.create_dataset(el, data=m)
                h5.create_dataset("elements", data=np.array(list(maps), dtype=h5py.string_dtype()))
                h5.attrs["method"] = method
                h5.attrs["tube_kv"] = tube_kv
                h5.attrs["source"] = source
    progress(1.0, "done")
    return maps


# -- evaluate ---------------------------------------------------------------------------------
def evaluate(
    scan: "Scan | str | os.PathLike",
    labels: str | os.PathLike,
    *,
    model: str | os.PathLike | None = None,
    threshold: float = 0.5,
    batch_size: int = 256,
    json_out: str | os.PathLike | None = None,
    csv_out: str | os.PathLike | None = None,
    include_training_pixels: bool = False,
    progress: Progress = no_progress,
) -> dict[str, Any]:
    """Per-pigment metrics of a model on the labelled pixels of a scan; optionally JSON and CSV.

    Pixels of this scan that finetuned the model (its lineage records them) are left out unless
    ``include_training_pixels``; the result says how many (``excluded_training_pixels``).

    Parameters
    ----------
    scan : Scan or path-like
    labels : path-like
        Region JSON, CSV of rectangles or dense HDF5 (:func:`xrfcore.labels.load_labels`).
    model : path-like, optional
        Model file (default: the shipped default model).
    threshold : float
        Probability threshold, 0 < t < 1.
    batch_size : int
    json_out, csv_out : path-like, optional
        Write the metrics as JSON / the per-pigment table as CSV (atomically).
    include_training_pixels : bool
        Also score the pixels that trained the model (their scores measure memory).
    progress : Progress

    Returns
    -------
    dict
        :func:`xrfcore.model.per_pigment_metrics` plus ``model``, ``model_sha256``, ``scan``, ``labels``,
        ``n_labelled``, ``excluded_training_pixels``, ``training_pixels_included``.
    """
    from xrfcore.io import open_scan
    from xrfcore.model.bundle import load_model
    from xrfcore.model.metrics import evaluate_scan, metrics_to_csv
    from xrfcore.scan import Scan

    if not 0.0 < float(threshold) < 1.0:
        raise ConfigError(f"threshold must be between 0 and 1, got {threshold}")
    progress(0.0, "loading model and scan")
    bundle = load_model(model)
    scan_obj = scan if isinstance(scan, Scan) else open_scan(scan)
    progress(0.1, "predicting the labelled pixels")
    metrics = evaluate_scan(bundle, scan_obj, labels, threshold=float(threshold), batch_size=int(batch_size),
                            include_training_pixels=bool(include_training_pixels))
    if json_out:
        atomic_write_text(json_out, json.dumps(metrics, indent=1) + "\n")
    if csv_out:
        metrics_to_csv(metrics, csv_out)
    progress(1.0, "done")
    return metrics
