"""Simulate a training set of layered-paint XRF spectra into an HDF5 file.

Samples one or two paint layers (single pigments or mixtures of up to 4) over a CaCO3 ground,
thicknesses, count levels, backgrounds, tube voltages, detector resolutions and energy
calibrations, and writes spectra, labels and every sampled parameter.

Example:
    python -m xrfcore simulate --out sims/train.h5 --n 16224 --seed 0 --workers 2
"""

from __future__ import annotations

import argparse

NAME = "simulate"
HELP = "simulate a training set of layered-paint spectra (HDF5)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="output HDF5 file (.h5)")
    parser.add_argument("--n", type=int, required=True, help="number of spectra")
    parser.add_argument("--seed", type=int, default=0, help="random seed (same seed + config = same file)")
    parser.add_argument("--config", default=None, help="simulation config JSON (keys of SimConfig)")
    parser.add_argument("--library", default=None, help="pigment library JSON (default: the shipped one)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")


def options_from_args(args: argparse.Namespace) -> dict:
    """The simulate job's option dict of these arguments (``config`` is the JSON path or None)."""
    return {"out": args.out, "n": args.n, "seed": args.seed, "workers": args.workers, "library": args.library,
            "config": args.config}


def run(args: argparse.Namespace) -> int:
    from xrfcore.atomic import refuse_overwriting_inputs

    refuse_overwriting_inputs({"--out": args.out}, {"--config": args.config, "--library": args.library})
    import time
    from pathlib import Path

    from xrfcore.errors import ConfigError
    from xrfcore.simulate.dataset import SimConfig
    from xrfcore.workflows import ConsoleProgress, simulate_training_set

    if Path(args.out).suffix.lower() not in (".h5", ".hdf5"):
        raise ConfigError(f"--out must end in .h5 or .hdf5, got {Path(args.out).name!r}")
    if args.workers < 1:
        raise ConfigError(f"--workers must be >= 1, got {args.workers}")
    cfg = SimConfig.from_json(args.config) if args.config else SimConfig()
    t0 = time.time()
    bar = ConsoleProgress()
    try:
        out = simulate_training_set(args.out, n=args.n, seed=args.seed, config=cfg, library=args.library,
                                    workers=args.workers, progress=bar)
    finally:
        bar.close()
    print(f"wrote {args.n} spectra to {out} in {time.time() - t0:.1f} s")
    return 0
