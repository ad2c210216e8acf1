"""Finetune a model on labelled pixels of your own scans (transfer learning).

A seeded random split of the labelled pixels (pooled over all scans) trains the model
(--train-fraction, default 20 %) and tests it (the rest). Stage 1 trains the dense head with
the convolutions frozen; stage 2 trains all layers at lr 5e-4; batch 64; early stopping on a
validation part of the training pixels. Metrics on the test pixels before and after are printed
and saved as NEW.finetune.json next to the model. The new model records its lineage (base model
SHA-256, scans, label files, metrics) and is added to the models index. The base model and the
shipped default model are never overwritten. Labels: region JSON, CSV (x0,y0,x1,y1,top,bottom)
or dense HDF5 (see xrfcore.labels).

Example::

    python -m xrfcore finetune --model models/default.keras --scan mockup.h5 --labels regions.json \\
        --out user_data/models/mockup-ft.keras --train-fraction 0.2 --seed 1
"""

from __future__ import annotations

import argparse
import sys

NAME = "finetune"
HELP = "finetune a model on labelled pixels (label JSON/CSV/HDF5) of one or more scans"

__all__ = ["NAME", "HELP", "add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", help="base model .keras (default: the shipped default model)")
    parser.add_argument("--scan", action="append", required=True, help="scan file; repeat with --labels for several")
    parser.add_argument("--labels", action="append", required=True, help="label file of the preceding --scan")
    parser.add_argument("--out", required=True, help="new model file (.keras); must not exist")
    parser.add_argument("--train-fraction", type=float, default=0.2, help="share of labelled pixels for training (0.2)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (split and training)")
    parser.add_argument("--stage1-epochs", type=int, default=20, help="max epochs, head only (20)")
    parser.add_argument("--stage2-epochs", type=int, default=30, help="max epochs, all layers (30)")
    parser.add_argument("--batch", type=int, default=64, help="batch size (64)")
    parser.add_argument("--name", help="name in the models index (default: file name)")
    parser.add_argument("--no-register", action="store_true", help="do not add the model to the models index")


def run(args: argparse.Namespace) -> int:
    from xrfcore.atomic import refuse_overwriting_inputs

    refuse_overwriting_inputs({"--out": args.out}, {"--model": args.model, "--scan": args.scan, "--labels": args.labels})
    import json

    from xrfcore.errors import LabelError
    from xrfcore.jobs.tasks import finetune_from_files
    from xrfcore.model import metrics_table

    if len(args.scan) != len(args.labels):
        raise LabelError(f"give one --labels per --scan: got {len(args.scan)} --scan and {len(args.labels)} --labels")

    def progress(fraction: float, message: str = "") -> None:
        n = int(round(24 * fraction))
        sys.stderr.write(f"\r[{'#' * n}{'-' * (24 - n)}] {100 * fraction:3.0f}% {message[:60]:<60}")
        sys.stderr.flush()

    result = finetune_from_files(
        model=args.model, scans=args.scan, labels=args.labels, out=args.out, train_fraction=args.train_fraction,
        seed=args.seed, stage1_epochs=args.stage1_epochs, stage2_epochs=args.stage2_epochs, batch_size=args.batch,
        name=args.name, register=not args.no_register, progress=progress, log=lambda msg: None,
    )
    sys.stderr.write("\n")
    report = json.loads(open(result["metrics"], encoding="utf-8").read())
    print(f"test pixels: {result['n_test']}, training pixels: {result['n_train']}")
    print("\nBEFORE finetuning (test pixels)")
    print(metrics_table(report["before"]))
    print("\nAFTER finetuning (test pixels)")
    print(metrics_table(report["after"]))
    print(f"\nmacro F1 {result['macro_f1_before']:.3f} -> {result['macro_f1_after']:.3f}")
    print(f"wrote {result['model']} and {result['metrics']}")
    return 0
