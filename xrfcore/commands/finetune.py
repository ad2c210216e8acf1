"""Finetune a model on labelled pixels of your own scans (transfer learning), scored on pixels it never saw.

By default each labelled region goes wholly to training or to test (--split regions; regions
larger than --block-size pixels are cut into blocks first; seeded, stratified so every labelled
pigment is trained where possible and test keeps a region of each pigment where possible);
--train-fraction (20 %) is then the share of regions. --split pixels is the paper's random-pixel
split, for comparison. Early stopping uses validation regions taken from the training part.
Besides the labelled pixels, training sees augmented copies of them (binomial thinning, peak
broadening, calibration jitter), simulated spectra of the stated layer stacks on the scan's
calibration, and generic simulated spectra (rehearsal of pretraining). Stage 1 trains the dense
head with the convolutions frozen; stage 2 trains all layers at lr 5e-4; batch 64.

The base and the finetuned model are scored on the same test pixels, printed and saved as
NEW.finetune.json next to the model, with the number of test regions and pixels; a warning is
printed when fewer than 3 regions per pigment were held out, and loudly when the finetuned model
is worse than the base model for a pigment. Per pigment, the new model mixes the finetuned and the
base model's output with the weight (0, 1/4, ..., 1) that gives the lowest loss on the validation
regions without lowering their F1 below the base model's, so a pigment finetuning did not help
keeps the base model's output (--no-keep-base: the
finetuned output everywhere). The new model records its
lineage, including which pixels of which scan trained it (so `evaluate` leaves them out), and is
added to the models index. The base model and the shipped default model are never overwritten.
Labels: region JSON, CSV (x0,y0,x1,y1,top,bottom) or dense HDF5 (see xrfcore.labels).

Example::

    python -m xrfcore finetune --model models/default.keras --scan mockup.h5 --labels regions.json \\
        --out user_data/models/mockup-ft.keras --split regions --train-fraction 0.2 --seed 1
"""

from __future__ import annotations

import argparse

NAME = "finetune"
HELP = "finetune a model on labelled pixels (label JSON/CSV/HDF5) of one or more scans"

__all__ = ["NAME", "HELP", "add_arguments", "run", "finetune_summary"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", help="base model .keras (default: the shipped default model)")
    parser.add_argument("--scan", action="append", required=True, help="scan file; repeat with --labels for several")
    parser.add_argument("--labels", action="append", required=True, help="label file of the preceding --scan")
    parser.add_argument("--out", required=True, help="new model file (.keras); must not exist")
    parser.add_argument("--train-fraction", type=float, default=0.2,
                        help="share of the labelled regions (with --split pixels: pixels) for training (0.2)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (split and training)")
    parser.add_argument("--stage1-epochs", type=int, default=20, help="max epochs, head only (20)")
    parser.add_argument("--stage2-epochs", type=int, default=30, help="max epochs, all layers (30)")
    parser.add_argument("--batch", type=int, default=64, help="batch size (64)")
    parser.add_argument("--split", choices=("regions", "pixels"), default="regions",
                        help="whole regions (default) or random pixels to training/test")
    parser.add_argument("--block-size", type=int, default=16, help="cut regions larger than this (pixels) into blocks (16)")
    parser.add_argument("--validation-fraction", type=float, default=0.2,
                        help="share of the training regions held out for early stopping (0.2; 0 = none)")
    parser.add_argument("--augment-copies", type=int, default=2, help="augmented copies of each training pixel (2)")
    parser.add_argument("--simulate-per-stack", type=int, default=64,
                        help="simulated spectra per stated layer stack of the training regions (64; 0 = off)")
    parser.add_argument("--rehearsal-ratio", type=float, default=1.0,
                        help="generic simulated spectra per training pixel (1.0; 0 = off)")
    parser.add_argument("--no-keep-base", action="store_true",
                        help="use the finetuned output for every pigment (default: mix in the base model's output where "
                             "that lowers the validation loss)")
    parser.add_argument("--name", help="name in the models index (default: file name)")
    parser.add_argument("--no-register", action="store_true", help="do not add the model to the models index")


def run(args: argparse.Namespace) -> int:
    from xrfcore.atomic import refuse_overwriting_inputs

    refuse_overwriting_inputs({"--out": args.out}, {"--model": args.model, "--scan": args.scan, "--labels": args.labels})
    import json

    from xrfcore.errors import LabelError
    from xrfcore.model import metrics_table
    from xrfcore.workflows import ConsoleProgress, FinetuneConfig, finetune

    if len(args.scan) != len(args.labels):
        raise LabelError(f"give one --labels per --scan: got {len(args.scan)} --scan and {len(args.labels)} --labels")
    config = FinetuneConfig(train_fraction=args.train_fraction, seed=args.seed, stage1_epochs=args.stage1_epochs,
                            stage2_epochs=args.stage2_epochs, batch_size=args.batch, split=args.split,
                            block_size=args.block_size, validation_fraction=args.validation_fraction,
                            augment_copies=args.augment_copies, simulate_per_stack=args.simulate_per_stack,
                            rehearsal_ratio=args.rehearsal_ratio, keep_base_where_worse=not args.no_keep_base)
    bar = ConsoleProgress()
    try:
        result = finetune(model=args.model, scans=args.scan, labels=args.labels, out=args.out, config=config,
                          name=args.name, register=not args.no_register, progress=bar)
    finally:
        bar.close()
    report = json.loads(open(result["metrics"], encoding="utf-8").read())
    print(finetune_summary(result))
    print("\nBASE model on the test pixels")
    print(metrics_table(report["before"]))
    print("\nFINETUNED model on the same test pixels")
    print(metrics_table(report["after"]))
    print(f"\nwrote {result['model']} and {result['metrics']}")
    return 0


def finetune_summary(result: dict) -> str:
    """The lines a user must read first: split, test regions/pixels, base vs finetuned, warnings."""
    held = result.get("held_out_regions") or {}
    lines = [
        f"split: {result['split']}; test: {result['n_test']} pixels in {result['n_test_regions']} regions wholly held "
        f"out; training: {result['n_train']} pixels",
        f"macro F1 on the test pixels: base model {result['macro_f1_before']:.3f}, finetuned "
        f"{result['macro_f1_after']:.3f}",
        "held-out regions per pigment: " + ", ".join(f"{c} {n}" for c, n in held.items()),
    ]
    mixed = {c: w for c, w in (result.get("finetuned_weight") or {}).items() if w < 1.0}
    if mixed:
        lines.append("the saved model uses the base model's output for "
                     + ", ".join(f"{c} ({100 * (1 - w):.0f} %)" for c, w in mixed.items())
                     + ": finetuning did not help them on the validation regions")
    layer_f1 = result.get("layer_macro_f1") or {}
    if layer_f1:
        rec = result.get("layers_recalibrated") or []
        lines.append("layer outputs on the test pixels (mean F1, base -> finetuned): "
                     + ", ".join(f"{h} {v[0]:.3f} -> {v[1]:.3f}" for h, v in layer_f1.items())
                     + (f"; recalibrated to this scan: {', '.join(rec)}" if rec else "; none recalibrated"))
    for w in result.get("warnings") or []:
        lines.append("WARNING: " + w)
    if result.get("worse_than_base"):
        lines.append("!" * 72)
        lines.append("THE FINETUNED MODEL IS WORSE THAN THE BASE MODEL FOR " + ", ".join(result["worse_than_base"])
                     + " ON PIXELS IT NEVER SAW")
        lines.append("!" * 72)
    return "\n".join(lines)
