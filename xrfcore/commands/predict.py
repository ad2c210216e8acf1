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
import time
from typing import TextIO

NAME = "predict"
HELP = "pigment probability maps of a scan (HDF5, PNG, TIFF)"

__all__ = ["NAME", "HELP", "add_arguments", "run", "PixelProgressBar"]


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
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    add_reader_arguments(parser)


class PixelProgressBar:
    """``fn(pixels_done, pixels_total)`` -> a one-line bar with pixels/s and ETA on ``stream``."""

    def __init__(self, *, stream: TextIO | None = None, width: int = 28) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self.t0 = time.monotonic()

    def __call__(self, done: int, total: int) -> None:
        elapsed = max(time.monotonic() - self.t0, 1e-9)
        rate = done / elapsed
        eta = (total - done) / rate if rate > 0 else float("inf")
        n = int(round(self.width * done / max(total, 1)))
        self.stream.write(
            f"\r[{'#' * n}{'-' * (self.width - n)}] {done}/{total} px  {rate:,.0f} px/s  "
            f"ETA {_fmt_s(eta)}  elapsed {_fmt_s(elapsed)}"
        )
        if done >= total:
            self.stream.write("\n")
        self.stream.flush()


def _fmt_s(s: float) -> str:
    if s == float("inf"):
        return "?"
    m, sec = divmod(int(round(s)), 60)
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m{sec:02d}s" if h else (f"{m}m{sec:02d}s" if m else f"{sec}s")


def run(args: argparse.Namespace) -> int:
    from xrfcore.atomic import refuse_overwriting_inputs

    refuse_overwriting_inputs({"--out": args.out, "--tiff": args.tiff}, {"the input scan": args.file, "--model": args.model})
    from pathlib import Path

    from xrfcore.commands.info import open_from_args
    from xrfcore.errors import ConfigError
    from xrfcore.maps import export_png, export_tiff, predict_to_h5, read_maps
    from xrfcore.model import load_model

    out = Path(args.out)
    if out.suffix.lower() not in (".h5", ".hdf5"):
        raise ConfigError(f"--out must be an HDF5 file ending in .h5 or .hdf5, got {out.name!r}")
    if args.batch < 1:
        raise ConfigError(f"--batch must be >= 1, got {args.batch}")
    scan = open_from_args(args)
    bundle = load_model(args.model)
    print(f"scan {scan.shape} ({scan.metadata.format}); model {bundle.describe()}", file=sys.stderr)
    t0 = time.monotonic()
    predict_to_h5(bundle, scan, out, batch_size=args.batch, rows_per_chunk=args.rows_per_chunk,
                  scheduler=args.scheduler, progress=None if args.quiet else PixelProgressBar())
    dt = time.monotonic() - t0
    n_px = scan.n_rows * scan.n_cols
    print(f"wrote {out}: {n_px} pixels in {dt:.1f} s ({n_px / max(dt, 1e-9):,.0f} px/s)")
    if args.png or args.tiff:
        maps = read_maps(out)
        if args.png:
            files = export_png(maps.probabilities, maps.pigments, args.png, pigment_names=maps.pigment_names)
            print(f"wrote {len(files)} PNG files to {args.png}")
        if args.tiff:
            export_tiff(maps.probabilities, maps.pigments, args.tiff)
            print(f"wrote {args.tiff}")
    return 0
