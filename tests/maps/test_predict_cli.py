"""`python -m xrfcore predict`: maps file, PNG and TIFF exports, progress on stderr, errors."""

from __future__ import annotations

import numpy as np

from xrfcore.cli import main


def test_predict_command(bundle, scan, tmp_path, capsys):
    from xrfcore.io import write_scan_h5
    from xrfcore.maps import predict_cube, read_maps

    scan_file = write_scan_h5(tmp_path / "scan.h5", np.asarray(scan.counts), scan.calibration)
    out = tmp_path / "maps.h5"
    code = main(["predict", str(scan_file), "--model", str(bundle.path), "--out", str(out), "--batch", "64",
                 "--rows-per-chunk", "4", "--png", str(tmp_path / "png"), "--tiff", str(tmp_path / "maps.tif")])
    cap = capsys.readouterr()
    assert code == 0, cap.err
    assert "px/s" in cap.err and "ETA" in cap.err
    maps = read_maps(out)
    np.testing.assert_allclose(maps.probabilities, predict_cube(bundle, scan), atol=1e-6)
    assert sorted(p.name for p in (tmp_path / "png").iterdir()) == sorted(f"{c}.png" for c in bundle.classes)
    assert (tmp_path / "maps.tif").stat().st_size > 0


def test_predict_command_errors(bundle, tmp_path, capsys):
    assert main(["predict", str(tmp_path / "none.h5"), "--model", str(bundle.path), "--out", str(tmp_path / "m.txt")]) == 2
    assert "--out must be an HDF5 file" in capsys.readouterr().err
    assert not (tmp_path / "m.txt").exists()
