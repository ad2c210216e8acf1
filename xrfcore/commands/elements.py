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
    from pathlib import Path

    import h5py
    import numpy as np

    from xrfcore.atomic import atomic_path
    from xrfcore.elements import fitted_maps, identify_elements, roi_maps
    from xrfcore.errors import ConfigError
    from xrfcore.io import open_scan

    out = Path(args.out)
    if out.suffix.lower() not in (".h5", ".hdf5"):
        raise ConfigError(f"--out must end in .h5 or .hdf5, got {args.out!r}")
    if out.resolve() == Path(args.scan).resolve():
        raise ConfigError("--out must not be the input scan; choose another file name")
    scan = open_scan(args.scan)
    if args.elements:
        elements = [e.strip() for e in args.elements.split(",") if e.strip()]
    else:
        elements = identify_elements(scan, tube_kv=args.tube_kv)
        if not elements:
            raise ConfigError(f"no element lines found in {args.scan}; pass --elements Fe,Pb,... explicitly")
    make = fitted_maps if args.method == "fit" else roi_maps
    maps = make(scan, elements, tube_kv=args.tube_kv)
    with atomic_path(out) as tmp:
        with h5py.File(tmp, "w") as h5:
            for el, m in maps.items():
                h5.create_dataset(el, data=np.asarray(m, dtype=np.float32))
            h5.create_dataset("elements", data=np.array(list(maps), dtype=h5py.string_dtype()))
            h5.attrs["method"] = args.method
            h5.attrs["tube_kv"] = args.tube_kv
            h5.attrs["source"] = str(args.scan)
    print(f"elements ({args.method}): {', '.join(maps)}")
    print(f"wrote {out}")
    return 0
