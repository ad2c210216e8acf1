"""xrfcore.views: the numbers the app shows (display copies, shares above a threshold, region
means, a pixel's evidence beside the model's probabilities)."""

from __future__ import annotations

import numpy as np
import pytest

from xrfcore import views
from xrfcore.io import open_scan
from xrfcore.library import load_library
from xrfcore.scan import Scan

DEMO = "xrfcore/data/demo_mockup.h5"


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.uint16])
def test_downsample_block_means_and_centres(dtype):
    image = np.arange(35, dtype=dtype).reshape(5, 7)
    small = views.downsample(image, 2)
    assert small.shape == (3, 4) and small.dtype == np.float32
    assert small[0, 0] == pytest.approx(image[:2, :2].astype(float).mean())
    assert small[-1, -1] == pytest.approx(float(image[4, 6]))  # a partial block: only its pixel
    assert views.block_centres(7, 2).tolist() == [0.5, 2.5, 4.5, 6.0]
    assert views.display_factor((1300, 700)) == 3 and views.display_factor((10, 10)) == 1


def test_share_above_and_mean_probability():
    rng = np.random.default_rng(0)
    cube = rng.random((6, 5, 3))
    share = views.share_above(cube, 0.5)
    assert share.shape == (3,)
    np.testing.assert_allclose(share, [(cube[..., k] >= 0.5).sum() / 30 for k in range(3)])
    np.testing.assert_allclose(views.mean_probability(cube), cube.reshape(-1, 3).mean(axis=0))
    assert views.share_above(cube, 0.0).tolist() == [1.0, 1.0, 1.0]


def test_region_mean_is_the_mean_of_exactly_the_masked_pixels():
    counts = np.random.default_rng(1).poisson(4, (4, 5, 32)).astype(np.uint16)
    from xrfcore.scan import EnergyCalibration

    scan = Scan(counts, EnergyCalibration(0.0, 0.1))
    mask = np.zeros((4, 5), bool)
    mask[1:3, 2:4] = True
    spec, probs, n = views.region_mean(scan, mask)
    assert n == 4 and probs is None
    np.testing.assert_allclose(spec, counts[1:3, 2:4].reshape(-1, 32).mean(axis=0))
    empty = views.region_mean(scan, np.zeros((4, 5), bool))
    assert empty[2] == 0 and empty[1] is None


def test_grid_channels_end_inside_the_scan():
    assert views.grid_channels_for(20.0) == 860
    assert 2.8 + 0.02 * views.grid_channels_for(20.0) <= 20.0 + 1e-9
    assert views.grid_channels_for(41.0) == 1360  # at most the default 30 keV end
    assert views.grid_channels_for(3.0) == 16


def test_pixel_evidence_lists_key_elements_and_flags_an_unexplained_line():
    scan = open_scan(DEMO)
    lib = load_library()
    spectrum = scan.spectrum(32, 32).astype(np.float64)
    ev = views.pixel_evidence(spectrum, scan.calibration, library=lib)
    assert [r["pigment"] for r in ev.rows] == list(lib.classes)
    crg = ev.rows[list(lib.classes).index("CrG")]
    assert [k[0] for k in crg["key_elements"]] == ["Cr"] and crg["any"] is None
    np.testing.assert_allclose(ev.fit.residual, ev.fit.counts - ev.fit.fitted)
    assert not any(el == "Ti" for el, _, _ in ev.unexplained)
    # a strong titanium line (titanium white is not in the library) is flagged at its Ka energy
    e = scan.energy_kev
    spiked = spectrum + 4e4 * np.exp(-0.5 * ((e - 4.51) / 0.06) ** 2) * float(e[1] - e[0]) / (0.06 * np.sqrt(2 * np.pi))
    flagged = {el: (sig, energy) for el, sig, energy in
               views.pixel_evidence(spiked, scan.calibration, library=lib).unexplained}
    assert "Ti" in flagged and flagged["Ti"][0] >= 6 and flagged["Ti"][1] == pytest.approx(4.51, abs=0.03)


def test_pixel_evidence_gives_the_probabilities_the_maps_show():
    """The Inspector's numbers for a pixel equal that pixel's value in the pigment maps (same evidence config)."""
    from pathlib import Path

    from xrfcore.elements.evidence import config_for_scan
    from xrfcore.io import open_scan
    from xrfcore.library import load_library
    from xrfcore.maps import predict_maps
    from xrfcore.model import load_model
    from xrfcore.model.evidence_model import spec_of
    from xrfcore.scan import Scan

    demo = open_scan(Path(__file__).resolve().parents[1] / "xrfcore" / "data" / "demo_mockup.h5")
    scan = Scan.from_array(demo.read_rows(20, 28)[:, ::4], demo.calibration)  # 8 x 16 pixels
    bundle = load_model()
    maps = predict_maps(bundle, scan, unexplained=False)
    spec = spec_of(bundle)
    config = config_for_scan(scan, spec.evidence) if spec is not None else None
    lib = load_library()
    for r in range(scan.n_rows):  # with the standard config instead, 98 of these 1,408 values differ, by up to 0.93
        for c in range(scan.n_cols):
            ev = views.pixel_evidence(scan.spectrum(r, c), scan.calibration, library=lib, bundle=bundle, config=config)
            # float32 rounding of one spectrum against a batch, through the steepest part of the calibration
            # map, reaches 2e-5; a different evidence config moves values by up to 0.93
            np.testing.assert_allclose(ev.layers["any"], maps["any"][r, c], atol=1e-4, err_msg=f"pixel {r}, {c}")
            # and the same "lines seen" verdict as the maps' key_elements_seen
            assert [int(row["seen"]) for row in ev.rows] == maps["seen"][r, c].tolist(), f"pixel {r}, {c}"
            for row in ev.rows:
                assert row["verdict"] == "lines seen" if row["seen"] else "cannot tell" in row["verdict"]
    assert 0 < maps["seen"].mean() < 1
