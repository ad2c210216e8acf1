"""Train the pigment CNN on a simulated dataset (k-fold cross-validation, held-out test part).

Writes MODEL.keras and, next to it, MODEL.report.json (settings, per-fold and per-pigment
metrics, learning curves), MODEL.curves.png (loss curves per fold, test F1 per pigment) and MODEL.metrics.csv
(held-out test metrics per pigment).

Example:
    python -m xrfcore train --data sim.h5 --out models/default.keras --folds 5 --seed 0
"""

from __future__ import annotations

import argparse
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


def options_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The train job's option dict of these arguments (see :func:`xrfcore.workflows.train_configs_from_options`)."""
    opts = {k: v for k, v in vars(args).items() if not k.startswith("_") and k not in ("quiet", "command")}
    return {k: v for k, v in opts.items() if v is not None and v is not False}


def run(args: argparse.Namespace) -> int:
    from xrfcore.atomic import refuse_overwriting_inputs

    refuse_overwriting_inputs({"--out": args.out}, {"--data": args.data})
    from xrfcore.model.metrics import metrics_table
    from xrfcore.workflows import ConsoleProgress, no_progress, train, train_configs_from_options

    from xrfcore.errors import ConfigError

    if not Path(args.data).is_file():
        raise ConfigError(f"--data {args.data} does not exist; make a training set with `python -m xrfcore simulate`")
    if Path(args.out).suffix != ".keras":
        raise ConfigError(f"--out must end in .keras, got {Path(args.out).name!r}")
    options = options_from_args(args)
    data, out, checkpoint_dir = options.pop("data"), options.pop("out"), options.pop("checkpoint_dir", None)
    preprocess, config = train_configs_from_options(options)
    bar = None if args.quiet else ConsoleProgress()
    try:
        result = train(data, out, preprocess=preprocess, config=config, checkpoint_dir=checkpoint_dir,
                       progress=bar or no_progress, log=lambda line: None)
    finally:
        if bar is not None:
            bar.close()
    if result.report["test"]:
        print(metrics_table(result.report["test"]))
    print(f"wrote {result.model} (best fold {result.report['best_fold']}), {result.report_path}, {result.curves}")
    return 0
