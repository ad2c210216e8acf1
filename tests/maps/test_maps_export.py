"""Map export: PNG per pigment with colourbar, multi-page TIFF with page names, HDF5."""

from __future__ import annotations

import numpy as np
import pytest

from xrfcore.maps import export_h5, export_png, export_tiff, read_maps

PIGMENTS = ["VM", "LW", "PB"]


@pytest.fixture
def probs():
    rng = np.random.default_rng(0)
    return rng.uniform(0, 1, size=(7, 11, 3)).astype(np.float32)


def test_png_per_pigment(probs, tmp_path):
    import matplotlib.image as mpimg

    files = export_png(probs, PIGMENTS, tmp_path / "png", pigment_names=["vermilion", "lead white", "Prussian blue"])
    assert [f.name for f in files] == ["VM.png", "LW.png", "PB.png"]
    img = mpimg.imread(files[0])
    assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 100
    # the colourbar makes the figure wider than the square-ish map alone and holds many colours
    assert len(np.unique(img.reshape(-1, img.shape[-1]), axis=0)) > 50
    assert not any(p.name.startswith(".") for p in (tmp_path / "png").iterdir())


def test_tiff_pages_and_names(probs, tmp_path):
    import tifffile

    path = export_tiff(probs, PIGMENTS, tmp_path / "maps.tif")
    with tifffile.TiffFile(path) as tif:
        assert len(tif.pages) == 3
        names = [p.tags["PageName"].value for p in tif.pages]
        data = np.stack([p.asarray() for p in tif.pages], axis=-1)
    assert names == PIGMENTS
    np.testing.assert_array_equal(data, probs)


def test_tiff_percent_uint8(probs, tmp_path):
    import tifffile

    path = export_tiff(probs, PIGMENTS, tmp_path / "maps.tif", percent_uint8=True)
    data = tifffile.imread(path)
    assert data.dtype == np.uint8 and data.shape == (3, 7, 11)
    np.testing.assert_array_equal(data[1], np.rint(100 * probs[..., 1]).astype(np.uint8))


def test_h5_round_trip(probs, tmp_path):
    path = export_h5(probs, PIGMENTS, tmp_path / "m.h5", total_counts=np.ones((7, 11)))
    m = read_maps(path)
    np.testing.assert_array_equal(m.probabilities, probs)
    assert m.pigments == PIGMENTS


def test_shape_mismatch_is_refused(probs, tmp_path):
    with pytest.raises(ValueError, match=r"expected probabilities of shape \(n_rows, n_cols, 2\)"):
        export_tiff(probs, ["VM", "LW"], tmp_path / "x.tif")
    assert not (tmp_path / "x.tif").exists()
