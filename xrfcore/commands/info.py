"""Describe a scan file: format, shape, calibration, counts and strongest peaks.

Reads the whole cube once in row chunks (so NaN or negative counts are reported).

Example::

    python -m xrfcore info scan.h5 --json
    python -m xrfcore info cube.npy --offset-kev -0.955 --gain-kev 0.01
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import numpy as np

NAME = "info"
HELP = "show a scan's format, shape, energy calibration, total counts and strongest peaks"

__all__ = ["NAME", "HELP", "add_arguments", "run", "add_reader_arguments", "open_from_args",
           "strongest_peaks", "scan_info"]


def add_reader_arguments(parser: argparse.ArgumentParser) -> None:
    """Reader options shared with ``convert``."""
    parser.add_argument("--format", help="reader: hdf5, rpl, bruker, mca, numpy (default: from the file)")
    parser.add_argument("--dataset", help="HDF5 dataset, .npz member or .bcf index (default: automatic)")
    parser.add_argument("--channel-axis", choices=("first", "last"), help="channel axis in the file")
    parser.add_argument("--offset-kev", type=float, help="energy at channel 0 (keV); overrides the file")
    parser.add_argument("--gain-kev", type=float, help="energy per channel (keV); overrides the file")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="scan file (.h5, .rpl/.raw, .bcf, .spx, .mca, .spe, .npy, .npz)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--peaks", type=int, default=8, help="number of peaks to list (default 8)")
    add_reader_arguments(parser)


def open_from_args(args: argparse.Namespace):  # noqa: ANN201 - returns xrfcore.scan.Scan
    """Open ``args.file`` with the reader options of :func:`add_reader_arguments`."""
    from xrfcore.errors import CalibrationError
    from xrfcore.io import open_scan
    from xrfcore.scan import EnergyCalibration

    calibration = None
    if (args.offset_kev is None) != (args.gain_kev is None):
        raise CalibrationError("give both --offset-kev and --gain-kev (keV), or neither")
    if args.gain_kev is not None:
        calibration = EnergyCalibration(args.offset_kev, args.gain_kev)
    return open_scan(args.file, format=args.format, dataset=args.dataset, channel_axis=args.channel_axis,
                     calibration=calibration)


def strongest_peaks(spectrum: np.ndarray, energy_kev: np.ndarray, n: int = 8) -> list[float]:
    """Energies (keV) of the ``n`` strongest peaks of ``spectrum``, strongest first.

    Parameters
    ----------
    spectrum : (n_channels,) ndarray
    energy_kev : (n_channels,) ndarray
    n : int

    Notes
    -----
    The spectrum is smoothed (Savitzky-Golay, 7 channels), a SNIP background
    (:func:`xrfcore.preprocess.snip_background`, log-log-sqrt operator, clipping windows 20
    channels down to 1) is subtracted, and
    ``scipy.signal.find_peaks`` ranks local maxima by net height with a prominence above
    three times the Poisson noise. Energies below 0 keV are ignored. A quick overview, not
    a fit.
    """
    from scipy.signal import find_peaks, savgol_filter

    from xrfcore.preprocess import snip_background

    y = np.asarray(spectrum, dtype=np.float64)
    e = np.asarray(energy_kev, dtype=np.float64)
    if y.size < 9:
        return []
    smooth = np.clip(savgol_filter(y, 7, 2), 0, None)
    background = snip_background(smooth, 20, llsqrt=True)
    net = smooth - background
    noise = 3.0 * np.sqrt(np.maximum(background, 1.0) / 7.0)
    idx, _ = find_peaks(net, prominence=noise, distance=3)
    idx = idx[e[idx] > 0]
    order = idx[np.argsort(net[idx])[::-1]][:n]
    return [round(float(e[i]), 4) for i in order]


def scan_info(scan: Any, *, n_peaks: int = 8) -> dict[str, Any]:
    """The ``info`` report of an open Scan as a JSON-ready dict (reads the whole cube)."""
    total = scan.sum_spectrum()
    cal = scan.calibration
    return {
        "format": scan.metadata.format,
        "shape": list(scan.shape),
        "offset_keV": cal.offset_kev,
        "gain_keV": cal.gain_kev,
        "quadratic_keV": cal.quadratic_kev,
        "dtype": str(scan.dtype),
        "total_counts": float(total.sum()),
        "peaks_keV": strongest_peaks(total, scan.energy_kev, n_peaks),
        "calibration_from_file": bool(scan.metadata.calibration_from_file),
        "source": scan.metadata.source,
    }


def run(args: argparse.Namespace) -> int:
    import warnings

    from xrfcore.io import CalibrationWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", CalibrationWarning)
        scan = open_from_args(args)
    info = scan_info(scan, n_peaks=args.peaks)
    notes = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        h, w, c = info["shape"]
        print(f"file:         {info['source']}")
        print(f"format:       {info['format']}")
        print(f"shape:        {h} rows x {w} cols x {c} channels")
        print(f"dtype:        {info['dtype']}")
        src = "from file" if info["calibration_from_file"] else "NOT from file"
        print(f"calibration:  offset {info['offset_keV']:.5g} keV, gain {info['gain_keV']:.6g} keV/channel"
              + (f", quadratic {info['quadratic_keV']:.3g}" if info["quadratic_keV"] else "") + f" ({src})")
        print(f"total counts: {info['total_counts']:.6g}")
        print("peaks (keV):  " + ", ".join(f"{p:.3f}" for p in info["peaks_keV"]))
    for note in notes:
        print(f"warning: {note}", file=__import__("sys").stderr)
    return 0
