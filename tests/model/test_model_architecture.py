"""build_model shapes and the analytic FLOP count."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from xrfcore.model.architecture import architecture_flops, build_model, model_flops  # noqa: E402


@pytest.mark.parametrize("n_channels,n_classes", [(256, 4), (300, 11)])
def test_output_shape_and_range(n_channels, n_classes):
    model = build_model(n_channels, n_classes, filters=(4, 4, 8), kernel_sizes=(5, 3, 3), post_conv=(8, 3))
    x = np.random.default_rng(0).random((3, n_channels, 1), dtype=np.float32)
    y = np.asarray(model(x, training=False))
    assert y.shape == (3, n_classes)
    assert np.all((y >= 0) & (y <= 1))
    assert model.input_shape == (None, n_channels, 1)


def test_reference_architecture_layers():
    model = build_model(1360, 11)
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv1D)]
    assert [c.filters for c in convs] == [64, 64, 64, 64, 128, 128]  # 5 blocks + post-conv
    assert [c.kernel_size[0] for c in convs] == [5, 3, 3, 3, 3, 3]
    pools = [layer for layer in model.layers if isinstance(layer, keras.layers.MaxPooling1D)]
    assert len(pools) == 5
    acts = [layer for layer in model.layers if isinstance(layer, keras.layers.LeakyReLU)]
    assert all(a.negative_slope == pytest.approx(0.01) for a in acts)
    assert model.get_layer("dropout").rate == pytest.approx(0.25)
    bns = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert len(bns) == 6 and all(b.momentum == pytest.approx(0.9) for b in bns)
    assert model.get_layer("probabilities").units == 11


def test_flops_hand_count():
    # 16 channels, one block (2 filters, kernel 3), post-conv (3 filters, kernel 1), 2 classes:
    # conv1: 2 * 16 positions * 3 taps * 1 in * 2 out = 192; pool -> 8 positions
    # post:  2 * 8 * 1 * 2 * 3 = 96; dense: 2 * (8 * 3) * 2 = 96  -> 384
    sizes = dict(filters=(2,), kernel_sizes=(3,), post_conv=(3, 1))
    assert architecture_flops(16, 2, **sizes) == 384
    assert model_flops(build_model(16, 2, **sizes)) == 384
    assert model_flops({"n_channels": 16, "n_classes": 2, **sizes}) == 384


def test_flops_reference_model_matches_field_notes():
    # FIELD-NOTES: ~110 MFLOP per spectrum at 3815 inputs, conv2 alone ~47 M.
    flops = architecture_flops(3815, 11)
    assert 100e6 < flops < 120e6
    assert model_flops(build_model(3815, 11)) == flops


def test_bad_sizes_raise():
    with pytest.raises(ValueError, match="same length"):
        build_model(256, 4, filters=(4, 4), kernel_sizes=(3,))
    with pytest.raises(ValueError, match="too short"):
        build_model(8, 4, filters=(4,) * 5, kernel_sizes=(3,) * 5)
