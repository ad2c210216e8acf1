"""Evaluate a model on a labelled scan: per-pigment accuracy, sensitivity, precision, F1.

LABELS is a region JSON, a CSV of rectangles, or a dense HDF5 (``labels`` (H, W, K) +
``label_names``); only labelled pixels count. Also prints pooled (micro/macro) numbers and the
confusion between pigments with the same elements (PB/IO, LW/RL, CrG/CrY). Pixels of this scan
that finetuned the model (recorded in the model file) are left out and counted, unless
--include-training-pixels.

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
    parser.add_argument("--include-training-pixels", action="store_true",
                        help="also score pixels of this scan that finetuned the model (left out by default)")


def run(args: argparse.Namespace) -> int:
    from xrfcore.atomic import refuse_overwriting_inputs

    refuse_overwriting_inputs({"--json": args.json, "--csv": args.csv},
                              {"--scan": args.scan, "--labels": args.labels, "--model": args.model})
    from xrfcore.model.metrics import metrics_table
    from xrfcore.workflows import evaluate

    metrics = evaluate(args.scan, args.labels, model=args.model, threshold=args.threshold,
                       batch_size=args.batch_size, json_out=args.json, csv_out=args.csv,
                       include_training_pixels=args.include_training_pixels)
    print(metrics_table(metrics))
    for layer in ("surface", "hidden"):
        if metrics.get(layer):
            print(f"\n{layer} layer (macro F1 {metrics[layer]['macro']['f1']:.3f})")
            print(metrics_table(metrics[layer]))
    blind = {c: v for c, v in (metrics.get("hidden_cannot_tell") or {}).items() if v["share_not_seen"]}
    if blind:
        print("hidden labels where the spectrum shows no line of the pigment (the hidden map cannot tell there): "
              + ", ".join(f"{c} {100 * v['share_not_seen']:.0f} % of {v['labelled_hidden']}" for c, v in blind.items()))
    if metrics["excluded_training_pixels"]:
        print(f"excluded {metrics['excluded_training_pixels']} of {metrics['n_labelled']} labelled pixels: they "
              "finetuned this model (--include-training-pixels scores them too)")
    elif metrics["training_pixels_included"]:
        print(f"WARNING: {metrics['training_pixels_included']} of the scored pixels finetuned this model; "
              "these scores partly measure memory")
    return 0
