"""Element maps of a scan (ROI integration or PyMca linear fit), written to HDF5.

Writes one (rows, cols) float32 dataset per element plus an ``elements`` string dataset.
Without --elements, the elements are identified automatically from the scan's sum and
max-pixel spectra.

Example:
    python -m xrfcore elements scan.h5 --out maps.h5 --method fit --elements Fe,Pb,Hg --tube-kv 40
"""

from __future__ import annotations

import argparse

NAME = "elements"
HELP = "element maps (ROI or PyMca fit) of a scan -> HDF5"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("scan", help="scan file (any format xrfcore.io reads)")
    parser.add_argument("--out", required=True, help="output HDF5 file (.h5)")
    parser.add_argument("--method", choices=("roi", "fit"), default="roi", help="ROI integration or PyMca fit (default roi)")
    parser.add_argument("--elements", default=None, help="comma-separated symbols, e.g. Fe,Pb,Hg (default: auto-identify)")
    parser.add_argument("--tube-kv", type=float, default=40.0, help="X-ray tube voltage in kV (default 40)")


def run(args: argparse.Namespace) -> int:
    from xrfcore.atomic import refuse_overwriting_inputs

    refuse_overwriting_inputs({"--out": args.out}, {"the input scan": args.scan})
    from xrfcore.workflows import element_maps

    elements = [e.strip() for e in args.elements.split(",") if e.strip()] if args.elements else None
    maps = element_maps(args.scan, elements=elements, method=args.method, tube_kv=args.tube_kv, out=args.out)
    print(f"elements ({args.method}): {', '.join(maps)}")
    print(f"wrote {args.out}")
    return 0
