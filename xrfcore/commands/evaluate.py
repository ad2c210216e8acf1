"""Evaluate a model on a labelled scan: per-pigment accuracy, sensitivity, precision, F1.

LABELS is a region JSON, a CSV of rectangles, or a dense HDF5 (``labels`` (H, W, K) +
``label_names``); only labelled pixels count. Also prints pooled (micro/macro) numbers and the
confusion between pigments with the same elements (PB/IO, LW/RL, CrG/CrY).

Example:
    python -m xrfcore evaluate --scan mockup.h5 --labels mockup_labels.json --json eval.json
"""

from __future__ import annotations

import argparse

NAME = "evaluate"
HELP = "per-pigment metrics of a model on a labelled scan"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default=None, help="model file (.keras); default: the shipped default model")
    parser.add_argument("--scan", required=True, help="scan file (any supported format)")
    parser.add_argument("--labels", required=True, help="label file (.json regions, .csv, or dense .h5)")
    parser.add_argument("--json", default=None, help="write the metrics as JSON here")
    parser.add_argument("--csv", default=None, help="write the per-pigment table as CSV here")
    parser.add_argument("--threshold", type=float, default=0.5, help="probability threshold (default 0.5)")
    parser.add_argument("--batch-size", type=int, default=256, help="spectra per forward pass (default 256)")


def run(args: argparse.Namespace) -> int:
    from xrfcore.atomic import refuse_overwriting_inputs

    refuse_overwriting_inputs({"--json": args.json, "--csv": args.csv}, {"--scan": args.scan, "--labels": args.labels, "--model": args.model})
    import json

    from xrfcore.atomic import atomic_write_text
    from xrfcore.errors import ConfigError
    from xrfcore.io import open_scan
    from xrfcore.model.bundle import load_model
    from xrfcore.model.metrics import evaluate_scan, metrics_table, metrics_to_csv

    if not 0.0 < args.threshold < 1.0:
        raise ConfigError(f"--threshold must be between 0 and 1, got {args.threshold}")
    bundle = load_model(args.model)
    scan = open_scan(args.scan)
    metrics = evaluate_scan(bundle, scan, args.labels, threshold=args.threshold, batch_size=args.batch_size)
    print(metrics_table(metrics))
    if args.json:
        atomic_write_text(args.json, json.dumps(metrics, indent=1) + "\n")
    if args.csv:
        metrics_to_csv(metrics, args.csv)
    return 0
