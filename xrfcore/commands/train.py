"""Train the pigment CNN on a simulated dataset (k-fold cross-validation, held-out test part).

Writes MODEL.keras and, next to it, MODEL.report.json (settings, per-fold and per-pigment
metrics, learning curves), MODEL.curves.png (loss curves per fold, test F1 per pigment) and MODEL.metrics.csv
(held-out test metrics per pigment).

Example:
    python -m xrfcore train --data sim.h5 --out models/default.keras --folds 5 --seed 0
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

NAME = "train"
HELP = "train the pigment CNN on a simulated dataset"


def _int_tuple(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers such as 64,64,128, got {text!r}") from exc
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, help="simulated training set (.h5)")
    parser.add_argument("--out", required=True, help="model file to write (.keras)")
    parser.add_argument("--folds", type=int, default=5, help="cross-validation folds; 1 = one 4:1 split (default 5)")
    parser.add_argument("--epochs", type=int, default=150, help="maximum epochs per fold (default 150)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--batch-size", type=int, default=64, help="training batch (default 64)")
    parser.add_argument("--learning-rate", type=float, default=1e-3, help="Adam learning rate (default 1e-3)")
    parser.add_argument("--patience", type=int, default=10, help="early-stopping patience in epochs (default 10)")
    parser.add_argument("--test-fraction", type=float, default=0.2, help="held-out test part (default 0.2)")
    parser.add_argument("--class-weighting", choices=("sqrt", "balanced", "none"), default="sqrt",
                        help="per-class positive weights in the loss (default sqrt)")
    parser.add_argument("--grid-start-kev", type=float, default=2.8, help="energy grid start, keV (default 2.8)")
    parser.add_argument("--grid-step-kev", type=float, default=0.02, help="energy grid step, keV (default 0.02)")
    parser.add_argument("--grid-channels", type=int, default=None,
                        help="energy grid length (default: up to 30 keV, e.g. 1360 at 0.02 keV)")
    parser.add_argument("--snip", action="store_true", help="subtract a SNIP background before the transform")
    parser.add_argument("--max-spectra", type=int, default=None, help="use a seeded random subset of this size")
    parser.add_argument("--filters", type=_int_tuple, default=None, help="filters per conv block (default 64,64,64,64,128)")
    parser.add_argument("--kernel-sizes", type=_int_tuple, default=None, help="kernel per conv block (default 5,3,3,3,3)")
    parser.add_argument("--post-conv", type=_int_tuple, default=None,
                        help="post-conv layer FILTERS,KERNEL (default 128,3)")
    parser.add_argument("--bn-momentum", type=float, default=None,
                        help="BatchNorm moving-statistics momentum (default 0.9)")
    parser.add_argument("--checkpoint-dir", default=None, help="keep per-fold checkpoints here (default: temporary)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def _check_paths(args: argparse.Namespace) -> tuple[Path, Path]:
    from xrfcore.errors import ConfigError

    data, out = Path(args.data), Path(args.out)
    if not data.is_file():
        raise ConfigError(f"--data {data} does not exist; make a training set with `python -m xrfcore simulate`")
    if out.suffix != ".keras":
        raise ConfigError(f"--out must end in .keras, got {out.name!r}")
    if out.resolve() == data.resolve():
        raise ConfigError("--out must not be the training data file")
    return data, out


def _config(args: argparse.Namespace):
    from xrfcore.preprocess import EnergyGrid, PreprocessConfig

    n = args.grid_channels or int(math.floor((30.0 - args.grid_start_kev) / args.grid_step_kev + 1e-9))
    return PreprocessConfig(grid=EnergyGrid(args.grid_start_kev, args.grid_step_kev, n), snip=args.snip)


def _rows(data: Path, max_spectra: int | None, seed: int):
    import h5py
    import numpy as np

    if max_spectra is None:
        return None
    with h5py.File(data, "r") as f:
        n = f["spectra"].shape[0] if "spectra" in f else 0
    if max_spectra >= n:
        return None
    return np.sort(np.random.default_rng(seed).choice(n, size=max_spectra, replace=False))


def write_curves_png(report: dict[str, Any], path: Path) -> None:
    """Loss per epoch for each fold and held-out per-pigment F1/sensitivity (matplotlib Agg), atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from xrfcore.atomic import atomic_path

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


def run(args: argparse.Namespace) -> int:
    from xrfcore.atomic import refuse_overwriting_inputs

    refuse_overwriting_inputs({"--out": args.out}, {"--data": args.data})
    import json
    import sys

    from xrfcore.atomic import atomic_write_text
    from xrfcore.model.bundle import json_safe, save_model
    from xrfcore.model.callbacks import TextProgressBar
    from xrfcore.model.data import dataset_info, load_dataset
    from xrfcore.model.metrics import metrics_table, metrics_to_csv
    from xrfcore.model.train import train_model

    data, out = _check_paths(args)
    config = _config(args)
    info = dataset_info(data)
    rows = _rows(data, args.max_spectra, args.seed)
    print(f"reading {info['n_spectra'] if rows is None else len(rows)} spectra from {data}; {config.describe()}",
          file=sys.stderr)
    X, Y, names = load_dataset(data, config, rows=rows)
    info["n_used"] = int(X.shape[0])
    model_kwargs = {k: v for k, v in (("filters", args.filters), ("kernel_sizes", args.kernel_sizes),
                                      ("post_conv", args.post_conv), ("bn_momentum", args.bn_momentum))
                    if v is not None}
    bar = None if args.quiet else TextProgressBar()
    bundle, report = train_model(
        X, Y, classes=names, config=config, epochs=args.epochs, batch_size=args.batch_size,
        learning_rate=args.learning_rate, folds=args.folds, test_fraction=args.test_fraction, seed=args.seed,
        patience=args.patience, class_weighting=args.class_weighting, progress=bar, out_dir=args.checkpoint_dir,
        model_kwargs=model_kwargs, data_info=info, library_version=info["attrs"].get("library_version"),
    )
    if bar is not None:
        bar.close()
    save_model(bundle, out)
    stem = out.with_suffix("")
    report = json_safe({**report, "model": str(out), "sha256": bundle.sha256, "data": info,
                     "preprocess": config.to_dict(), "classes": bundle.classes})
    atomic_write_text(f"{stem}.report.json", json.dumps(report, indent=1) + "\n")
    write_curves_png(report, Path(f"{stem}.curves.png"))
    if report["test"]:
        metrics_to_csv(report["test"], f"{stem}.metrics.csv")
        print(metrics_table(report["test"]))
    print(f"wrote {out} (best fold {report['best_fold']}), {stem}.report.json, {stem}.curves.png")
    return 0
