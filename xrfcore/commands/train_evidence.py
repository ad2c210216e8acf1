"""Train the evidence-backed pigment model on a simulated dataset, from a pretrained paper CNN.

The CNN's convolutional trunk is kept; a small head reads its features together with the element
evidence of each spectrum and predicts, per pigment, presence in any layer, in the uppermost layer
and hidden under another layer, plus the same-element groups (PB or IO, LW or RL, CrG or CrY). Outputs
whose key elements are not significant are gated to the "not seen" level, and every output is
calibrated (isotonic) on simulated validation spectra. Writes MODEL.keras, MODEL.report.json (test
metrics per head, ECE, reliability tables) and MODEL.curves.png (reliability diagrams).

Example::

    python -m xrfcore simulate --out sim48k.h5 --n 48000 --seed 2031 --config sim.json
    python -m xrfcore train-evidence --base models/paper_cnn.keras --data sim48k.h5 --out models/default.keras
"""

from __future__ import annotations

import argparse
import sys

NAME = "train-evidence"
HELP = "train the evidence-backed model (CNN trunk + element evidence, layer outputs, calibration)"

__all__ = ["NAME", "HELP", "add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, help="simulated training set (.h5)")
    parser.add_argument("--out", required=True, help="model file to write (.keras)")
    parser.add_argument("--base", default=None, help="pretrained paper CNN (default: models/paper_cnn.keras)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (split, head initialisation)")
    parser.add_argument("--epochs", type=int, default=60, help="maximum head epochs (early stopping; default 60)")
    parser.add_argument("--gate-significance", type=float, default=3.0,
                        help="sigma an output's key elements need (default 3, the single-spectrum identification threshold)")
    parser.add_argument("--max-spectra", type=int, default=None, help="use only the first N spectra")
    parser.add_argument("--heads", type=int, default=5,
                        help="heads trained with seeds seed, seed+1, ... and averaged (default 5)")
    parser.add_argument("--trunk-epochs", type=int, default=0,
                        help="first train a copy of the base CNN's trunk end to end for up to N epochs "
                             "(default 0: the trunk stays frozen)")
    parser.add_argument("--distill", action="store_true",
                        help="replace the heads by one head trained on their averaged outputs (one head's cost "
                             "at inference)")
    parser.add_argument("--head-rank", type=int, default=0,
                        help="heads read one shared projection of the trunk features to N dimensions, fitted "
                             "after training (default 0: off; the shipped model uses 192)")
    parser.add_argument("--heads-from", default=None,
                        help="an evidence model trained on the same --data and --seed: keep its heads instead of "
                             "training new ones (with --head-rank: compress them; heads already compressed are kept whole)")
    parser.add_argument("--layer-trees", action=argparse.BooleanOptionalAction, default=True,
                        help="surface and hidden outputs come from boosted trees on the element evidence where those "
                             "rank the validation spectra clearly better than the network (default; "
                             "--no-layer-trees: all from the network)")
    parser.add_argument("--tree-thinning", type=float, nargs=2, metavar=("LO", "HI"), default=None,
                        help="the layer trees also learn from a thinned copy of every spectrum keeping a "
                             "log-uniform LO-HI share of its photons (for short dwells; e.g. 0.01 0.3; default off)")
    parser.add_argument("--tree-data", nargs="+", default=(), metavar="H5",
                        help="further simulated sets (same classes) whose spectra join the layer trees' training "
                             "part only (more spectra for the trees; heads, validation and test stay --data's)")
    parser.add_argument("--systematic", type=float, default=None,
                        help="relative model error of the element-evidence fit, added to every area's uncertainty "
                             "(default: EvidenceConfig's); saved in the model")
    parser.add_argument("--quiet", action="store_true", help="no progress messages")


def run(args: argparse.Namespace) -> int:
    from xrfcore.workflows import train_evidence

    log = (lambda m: None) if args.quiet else (lambda m: print(m, file=sys.stderr))
    result = train_evidence(args.data, args.out, base=args.base, seed=args.seed, epochs=args.epochs,
                            gate_significance=args.gate_significance, max_spectra=args.max_spectra,
                            n_heads=args.heads, trunk_epochs=args.trunk_epochs, distill=args.distill,
                            head_rank=args.head_rank, heads_from=args.heads_from, layer_trees=args.layer_trees,
                            tree_thinning=tuple(args.tree_thinning) if args.tree_thinning else None,
                            systematic=args.systematic, tree_data=args.tree_data, log=log)
    for head, m in result.report["test"].items():
        print(f"{head:8s} test macro F1 {m['macro']['f1']:.3f}  ECE {result.report['calibration'][head]['ece']:.4f}")
    print(f"wrote {result.model}, {result.report_path}, {result.curves}")
    return 0
