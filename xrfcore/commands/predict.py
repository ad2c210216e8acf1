"""Pigment probability maps for a whole scan (chunked; local threads or a Dask cluster).

Writes an HDF5 file with ``probabilities`` (rows, cols, K) float32 in 0-1, ``pigments``,
``pigment_names``, ``total_counts`` and the model identity (SHA-256, classes) and the
preprocessing used; optionally a PNG per pigment and a multi-page TIFF. Without --model the
shipped default model is used. Progress (pixels/s, ETA) goes to stderr. The output appears
only when complete (an interrupted run leaves nothing under its name).

Example::

    python -m xrfcore predict mockup.h5 --out maps.h5 --png maps_png/ --tiff maps.tif
    python -m xrfcore predict painting.h5 --model my.keras --out maps.h5 --scheduler tcp://10.0.0.5:8786
"""

from __future__ import annotations

import argparse
import sys

NAME = "predict"
HELP = "pigment probability maps of a scan (HDF5, PNG, TIFF)"

__all__ = ["NAME", "HELP", "add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from xrfcore.commands.info import add_reader_arguments

    parser.add_argument("file", metavar="SCAN", help="scan file (.h5, .rpl/.raw, .bcf, .npy, ...)")
    parser.add_argument("--model", help="model .keras file (default: the shipped default model)")
    parser.add_argument("--out", required=True, help="output maps file (.h5)")
    parser.add_argument("--batch", type=int, default=256, help="spectra per forward pass (default 256)")
    parser.add_argument("--rows-per-chunk", type=int, help="scan rows per chunk (default: ~64 MB per chunk)")
    parser.add_argument("--scheduler", help="dask.distributed scheduler address, e.g. tcp://host:8786 "
                        "(default: local threads)")
    parser.add_argument("--png", metavar="DIR", help="also write one PNG per pigment into DIR")
    parser.add_argument("--tiff", metavar="FILE", help="also write a multi-page TIFF (one page per pigment)")
    parser.add_argument("--allow-short-range", action="store_true",
                        help="accept a scan that stops short of the model's energy grid (e.g. a 20 keV map): the "
                             "missing part is zero-padded and element evidence there counts as unknown")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    add_reader_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from xrfcore.atomic import refuse_overwriting_inputs

    refuse_overwriting_inputs({"--out": args.out, "--tiff": args.tiff}, {"the input scan": args.file, "--model": args.model})
    from pathlib import Path

    from xrfcore.commands.info import open_from_args
    from xrfcore.errors import ConfigError
    from xrfcore.workflows import ConsoleProgress, no_progress, predict_maps

    if Path(args.out).suffix.lower() not in (".h5", ".hdf5"):
        raise ConfigError(f"--out must be an HDF5 file ending in .h5 or .hdf5, got {Path(args.out).name!r}")
    if args.batch < 1:
        raise ConfigError(f"--batch must be >= 1, got {args.batch}")
    scan = open_from_args(args)
    print(f"scan {scan.shape} ({scan.metadata.format}); model {args.model or 'the default model'}", file=sys.stderr)
    bar = None if args.quiet else ConsoleProgress()
    try:
        result = predict_maps(scan, args.out, model=args.model, batch_size=args.batch,
                              rows_per_chunk=args.rows_per_chunk, scheduler=args.scheduler, png_dir=args.png,
                              tiff=args.tiff, allow_short_range=args.allow_short_range,
                              progress=bar or no_progress)
    finally:
        if bar is not None:
            bar.close()
    print(f"wrote {result.maps}: {result.n_pixels} pixels in {result.seconds:.1f} s "
          f"({result.n_pixels / max(result.seconds, 1e-9):,.0f} px/s)")
    if result.covered_share < 0.999:
        print(f"warning: the scan covers {100 * result.covered_share:.0f} % of the model's energy grid; the rest was "
              "zero-padded and element evidence there is unknown, not absent", file=sys.stderr)
    print(result.unexplained_summary)
    if args.png:
        print(f"wrote {len(result.png)} PNG files to {args.png}")
    if args.tiff:
        print(f"wrote {args.tiff}")
    return 0
