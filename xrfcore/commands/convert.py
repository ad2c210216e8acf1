"""Convert any supported scan to our HDF5 layout (``/xrf/counts`` + calibration).

The input is copied in row chunks, so scans larger than memory convert; the output
appears only when complete, and the input is never modified.

Example::

    python -m xrfcore convert painting.rpl painting.h5
    python -m xrfcore convert cube.npy cube.h5 --offset-kev -0.955 --gain-kev 0.01
"""

from __future__ import annotations

import argparse
from pathlib import Path

from xrfcore.commands.info import add_reader_arguments, open_from_args

NAME = "convert"
HELP = "convert a scan (.rpl/.raw, .bcf, .spx, .mca, .spe, .npy, .npz, .h5) to the xrfcore HDF5 layout"

__all__ = ["NAME", "HELP", "add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="input scan file")
    parser.add_argument("output", help="output .h5 file (replaced atomically)")
    parser.add_argument("--rows-per-chunk", type=int, default=None,
                        help="rows read per block (default: about 64 MB per block)")
    parser.add_argument("--compression", choices=("gzip", "lzf", "none"), default="gzip")
    add_reader_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from xrfcore.atomic import refuse_overwriting_inputs

    refuse_overwriting_inputs({"output": args.output}, {"the input file": args.file})
    from xrfcore.errors import ConfigError
    from xrfcore.io import write_scan_h5

    out = Path(args.output)
    if out.suffix.lower() not in (".h5", ".hdf5"):
        raise ConfigError(f"output {out} must end with .h5 or .hdf5")
    if out.exists() and out.resolve() == Path(args.file).resolve():
        raise ConfigError(f"output {out} is the input file; choose another output name")
    if args.rows_per_chunk is not None and args.rows_per_chunk < 1:
        raise ConfigError(f"--rows-per-chunk must be >= 1, got {args.rows_per_chunk}")
    scan = open_from_args(args)
    compression = None if args.compression == "none" else args.compression
    write_scan_h5(out, scan, compression=compression, rows_per_chunk=args.rows_per_chunk)
    h, w, c = scan.shape
    print(f"wrote {out}: {h} x {w} x {c} ({scan.dtype}), offset {scan.calibration.offset_kev:.5g} keV, "
          f"gain {scan.calibration.gain_kev:.6g} keV/channel")
    return 0
