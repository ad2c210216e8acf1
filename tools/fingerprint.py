"""Print a behaviour fingerprint: SHA-256 of what the shipped code computes for fixed seeds.

Run it before and after a refactor that must not change behaviour and compare the outputs
(``python tools/fingerprint.py > before.txt``; later ``... > after.txt``; ``diff`` them).
Floating-point results depend on the CPU and library builds, so compare runs on one machine.

Lines: the shipped model file; the float32 probabilities of ``predict_cube`` on the demo
scan; every dataset of a small simulated training set (``n=600, seed=5``); the arrays of a
small mock-up (``seed=3, shape=(16, 8)``) and the file ``write_mockup`` makes of it; the
identifiability analysis (JSON) of that mock-up.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _array_digest(arr: np.ndarray) -> str:
    arr = np.asarray(arr)
    if arr.dtype.kind in "OSU":
        text = json.dumps([x.decode() if isinstance(x, bytes) else str(x) for x in arr.ravel().tolist()])
        return _digest(f"{arr.shape}|".encode() + text.encode())
    return _digest(f"{arr.dtype.str}|{arr.shape}|".encode() + np.ascontiguousarray(arr).tobytes())


def _h5_lines(path: Path, prefix: str) -> list[str]:
    import h5py

    lines: list[str] = []
    with h5py.File(path, "r") as f:
        def visit(name: str, obj) -> None:
            if isinstance(obj, h5py.Dataset):
                lines.append(f"{prefix}:{name} {_array_digest(obj[()])}")

        f.visititems(visit)
        attrs = {k: (v.tolist() if hasattr(v, "tolist") else v) for k, v in sorted(f.attrs.items())}
    lines.append(f"{prefix}:attrs {_digest(json.dumps(attrs, sort_keys=True, default=str).encode())}")
    return lines


def fingerprint(*, fast: bool = False) -> list[str]:
    """Fingerprint lines (``fast``: only the simulation and the mock-up arrays)."""
    from xrfcore.simulate import make_mockup, simulate_dataset, write_mockup

    lines: list[str] = []
    if not fast:
        from xrfcore.io import open_scan
        from xrfcore.maps import predict_cube
        from xrfcore.model import load_model

        lines.append(f"model:default.keras {_digest((ROOT / 'models' / 'default.keras').read_bytes())}")
        scan = open_scan(ROOT / "xrfcore" / "data" / "demo_mockup.h5")
        probs = np.asarray(predict_cube(load_model(), scan), dtype=np.float32)
        lines.append(f"predict:demo_mockup {_array_digest(probs)}")
    with tempfile.TemporaryDirectory() as tmp:
        sim = simulate_dataset(Path(tmp) / "sim.h5", n=600, seed=5, workers=1)
        lines += _h5_lines(Path(sim), "simulate")
        counts, labels = make_mockup(seed=3, shape=(16, 8))
        lines.append(f"mockup:counts {_array_digest(counts)}")
        for key in sorted(labels):
            value = labels[key]
            if isinstance(value, np.ndarray):
                lines.append(f"mockup:{key} {_array_digest(value)}")
            else:
                lines.append(f"mockup:{key} {_digest(json.dumps(value, sort_keys=True, default=str).encode())}")
        if not fast:
            from xrfcore.scan import EnergyCalibration
            from xrfcore.simulate.identifiability import analyse_mockup

            scan_path = Path(tmp) / "mock.h5"
            regions_path = Path(tmp) / "mock_regions.json"
            write_mockup(scan_path, counts, labels, EnergyCalibration(-0.96, 0.02), regions_out=regions_path)
            lines += _h5_lines(scan_path, "mockup_file")
            lines.append(f"mockup_file:regions {_digest(regions_path.read_bytes())}")
            analysis = analyse_mockup(scan_path, regions_path)
            text = json.dumps(analysis, sort_keys=True, default=str)
            lines.append(f"identifiability:json {_digest(text.encode())}")
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fast", action="store_true", help="only the simulation and the mock-up arrays")
    args = ap.parse_args(argv)
    for line in fingerprint(fast=args.fast):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
