"""Whole-scan pigment maps: chunked Dask inference equals per-spectrum inference."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from xrfcore.errors import CalibrationError
from xrfcore.maps import predict_cube, predict_to_h5, read_maps
from xrfcore.maps import inference as inf
from xrfcore.scan import EnergyCalibration, Scan


def _reference(bundle, scan):
    from xrfcore.model import predict_spectra

    h, w, c = scan.shape
    return predict_spectra(bundle, np.asarray(scan.counts).reshape(-1, c), scan.calibration).reshape(h, w, -1)


@pytest.mark.parametrize("rows_per_chunk", [1, 5, None])
def test_predict_cube_equals_predict_spectra(bundle, scan, rows_per_chunk):
    maps = predict_cube(bundle, scan, rows_per_chunk=rows_per_chunk)
    assert maps.shape == scan.shape[:2] + (bundle.n_classes,)
    assert maps.dtype == np.float32
    np.testing.assert_allclose(maps, _reference(bundle, scan), rtol=0, atol=1e-6)
    # the maps are not trivially constant: different pixels get different probabilities
    assert np.ptp(maps, axis=(0, 1)).max() > 1e-4


def test_parallel_chunks_equal_sequential(bundle, scan):
    # blocks run on a pool, a new one started as each finishes, and arrive in any order
    maps = predict_cube(bundle, scan, rows_per_chunk=2, n_parallel=3)
    np.testing.assert_allclose(maps, _reference(bundle, scan), rtol=0, atol=1e-6)


def test_failure_in_a_parallel_chunk_is_raised_and_writes_nothing(bundle, scan, tmp_path, monkeypatch):
    real = inf._infer_block

    def failing(block, **kw):
        if block.shape[0] and np.asarray(block).sum() == np.asarray(scan.counts)[2:4].sum():
            raise RuntimeError("chunk 2 failed")
        return real(block, **kw)

    monkeypatch.setattr(inf, "_infer_block", failing)
    with pytest.raises(RuntimeError, match="chunk 2 failed"):
        predict_to_h5(bundle, scan, tmp_path / "maps.h5", rows_per_chunk=2, n_parallel=2)
    assert list(tmp_path.iterdir()) == []


def test_progress_reports_every_pixel(bundle, scan):
    calls = []
    predict_cube(bundle, scan, rows_per_chunk=4, progress=lambda done, total: calls.append((done, total)))
    h, w = scan.shape[:2]
    assert [c[0] for c in calls] == [4 * w, 8 * w, 12 * w]
    assert all(t == h * w for _, t in calls)


def test_predict_to_h5_matches_in_memory(bundle, scan, tmp_path):
    out = predict_to_h5(bundle, scan, tmp_path / "maps.h5", rows_per_chunk=5)
    maps = read_maps(out)
    np.testing.assert_array_equal(maps.probabilities, predict_cube(bundle, scan, rows_per_chunk=5))
    assert maps.pigments == bundle.classes
    assert maps.pigment_names == bundle.class_names
    np.testing.assert_array_equal(maps.total_counts, np.asarray(scan.counts).sum(axis=-1))
    assert maps.attrs["model_sha256"] == bundle.sha256
    assert maps.attrs["complete"]
    from xrfcore.preprocess import PreprocessConfig

    assert PreprocessConfig.from_json(maps.attrs["preprocess"]) == bundle.preprocess
    assert [p.name for p in tmp_path.iterdir()] == ["maps.h5"]


def test_predict_to_h5_from_lazy_hdf5_scan(bundle, scan, tmp_path):
    from xrfcore.io import open_scan, write_scan_h5

    path = write_scan_h5(tmp_path / "scan.h5", np.asarray(scan.counts), scan.calibration)
    lazy = open_scan(path)
    assert not isinstance(lazy.counts, np.ndarray)
    out = predict_to_h5(bundle, lazy, tmp_path / "maps.h5", rows_per_chunk=3)
    with h5py.File(out, "r") as f:
        np.testing.assert_allclose(f["probabilities"][()], _reference(bundle, scan), atol=1e-6)


def test_interrupted_write_leaves_no_output(bundle, scan, tmp_path, monkeypatch):
    real = inf._infer_block
    calls = {"n": 0}

    def failing(block, **kw):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt  # like Ctrl-C in the middle of the scan
        return real(block, **kw)

    monkeypatch.setattr(inf, "_infer_block", failing)
    target = tmp_path / "maps.h5"
    with pytest.raises(KeyboardInterrupt):
        predict_to_h5(bundle, scan, target, rows_per_chunk=2, n_parallel=1)
    assert calls["n"] == 2
    assert list(tmp_path.iterdir()) == []


def test_interrupt_keeps_previous_output(bundle, scan, tmp_path, monkeypatch):
    target = tmp_path / "maps.h5"
    target.write_bytes(b"previous result")

    def boom(block, **kw):
        raise RuntimeError("worker died")

    monkeypatch.setattr(inf, "_infer_block", boom)
    with pytest.raises(RuntimeError, match="worker died"):
        predict_to_h5(bundle, scan, target, rows_per_chunk=4)
    assert target.read_bytes() == b"previous result"
    assert [p.name for p in tmp_path.iterdir()] == ["maps.h5"]


def test_scan_outside_model_grid_is_refused(bundle):
    # 0-2 keV only: the model grid starts at 2.8 keV
    low = Scan.from_array(np.ones((2, 2, 100), np.uint16), EnergyCalibration(0.0, 0.02))
    with pytest.raises(CalibrationError, match="covers"):
        predict_cube(bundle, low)


def test_distributed_run_needs_saved_model(bundle, scan):
    import copy

    unsaved = copy.copy(bundle)
    unsaved.path = None
    with pytest.raises(Exception, match="saved model file"):
        predict_cube(unsaved, scan, scheduler="tcp://127.0.0.1:1")


def test_evidence_model_maps_file_holds_layers_and_where_the_key_elements_are_seen(tmp_path):
    """The shipped model's maps file: surface/hidden probabilities and key_elements_seen, equal to the in-memory
    maps; a pigment is "seen" exactly where all its key elements pass the model's gate."""
    from pathlib import Path

    from xrfcore.elements.evidence import config_for_scan, fit_evidence
    from xrfcore.io import open_scan
    from xrfcore.maps import predict_maps
    from xrfcore.model import load_model
    from xrfcore.model.evidence_model import element_significance, spec_of
    from xrfcore.scan import Scan

    demo = open_scan(Path(__file__).resolve().parents[2] / "xrfcore" / "data" / "demo_mockup.h5")
    scan = Scan.from_array(demo.read_rows(16, 24)[:, ::4], demo.calibration)  # 8 x 16 pixels
    bundle = load_model()
    spec = spec_of(bundle)
    mem = predict_maps(bundle, scan, unexplained=False)
    out = predict_to_h5(bundle, scan, tmp_path / "maps.h5", unexplained=False)
    m = read_maps(out)
    np.testing.assert_allclose(m.hidden, mem["hidden"], atol=1e-6)
    np.testing.assert_array_equal(m.seen, mem["seen"])
    assert m.seen.dtype == np.uint8 and m.seen.shape == m.probabilities.shape and 0 < m.seen.mean() < 1
    ev = fit_evidence(np.asarray(scan.counts).reshape(-1, scan.n_channels), scan.calibration,
                      config_for_scan(scan, spec.evidence))
    z, known = element_significance(ev, spec.feature_elements)
    hg = z[:, list(spec.feature_elements).index("Hg")] >= spec.gate_significance
    np.testing.assert_array_equal(m.seen.reshape(-1, len(bundle.classes))[:, list(bundle.classes).index("VM")], hg)
