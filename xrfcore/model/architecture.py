"""The pigment CNN of Xu et al. (2022): a 1-D convolutional network, one sigmoid per pigment.

Importing this module imports Keras (and TensorFlow); import it only where a model is needed.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import keras
from keras import layers

__all__ = ["build_model", "copy_model", "uncompiled_copy", "weighted_outputs", "model_flops", "architecture_flops",
           "DEFAULT_FILTERS", "DEFAULT_KERNEL_SIZES"]

#: Filters of the five convolutional blocks (METHOD.md "Model").
DEFAULT_FILTERS: tuple[int, ...] = (64, 64, 64, 64, 128)
#: Kernel sizes (channels) of the five blocks.
DEFAULT_KERNEL_SIZES: tuple[int, ...] = (5, 3, 3, 3, 3)
#: Post-convolutional layer: (filters, kernel_size) of one Conv1D -> LeakyReLU -> BatchNorm without pooling.
DEFAULT_POST_CONV: tuple[int, int] = (128, 3)


def _conv_block(
    x: Any, filters: int, kernel_size: int, *, leaky_alpha: float, bn_momentum: float, pool: bool, name: str
) -> Any:
    """Conv1D ('same' padding) -> LeakyReLU -> BatchNorm [-> MaxPool1D(2)]."""
    x = layers.Conv1D(filters, kernel_size, padding="same", name=f"{name}_conv")(x)
    x = layers.LeakyReLU(negative_slope=leaky_alpha, name=f"{name}_act")(x)
    x = layers.BatchNormalization(momentum=bn_momentum, name=f"{name}_bn")(x)
    if pool:
        x = layers.MaxPooling1D(2, name=f"{name}_pool")(x)
    return x


def build_model(
    n_channels: int,
    n_classes: int,
    *,
    filters: Sequence[int] = DEFAULT_FILTERS,
    kernel_sizes: Sequence[int] = DEFAULT_KERNEL_SIZES,
    leaky_alpha: float = 0.01,
    post_conv: tuple[int, int] | None = DEFAULT_POST_CONV,
    dropout: float = 0.25,
    bn_momentum: float = 0.9,
    name: str = "xrf_cnn",
) -> keras.Model:
    """Build the (uncompiled) pigment CNN.

    Parameters
    ----------
    n_channels : int
        Length of the preprocessed spectrum (energy-grid channels). Input shape is
        ``(batch, n_channels, 1)``.
    n_classes : int
        Number of pigment classes K (one sigmoid output each).
    filters, kernel_sizes : sequence of int
        One entry per convolutional block (Conv1D -> LeakyReLU -> BatchNorm -> MaxPool1D(2)).
    leaky_alpha : float
        Negative slope of the LeakyReLU activations.
    post_conv : (filters, kernel_size) or None
        The "post-convolutional layer". METHOD.md does not define it; we use one more
        Conv1D -> LeakyReLU -> BatchNorm block *without* pooling (default 128 filters, kernel 3).
        ``None`` leaves it out.
    dropout : float
        Dropout rate before the dense output layer.
    bn_momentum : float
        Momentum of the BatchNorm moving statistics used at inference. Default 0.9, not Keras'
        0.99: measured on 3,200 simulated spectra (680-channel grid, batch 64), with 0.99 the
        inference-mode validation loss *rose* from 0.62 to 0.77 over 4 epochs while the same
        weights in batch-statistics mode reached 0.42 (the moving averages lag the changing
        network); with 0.9 it fell from 0.51 to 0.39.
    name : str
        Model name.

    Returns
    -------
    keras.Model
        Functional model, output ``(batch, n_classes)`` probabilities in [0, 1].

    Raises
    ------
    ValueError
        If sizes are inconsistent or the input is too short for the pooling.

    Notes
    -----
    All convolutions use 'same' padding, so block ``i`` sees ``n_channels // 2**i`` positions.

    Examples
    --------
    >>> m = build_model(256, 11, filters=(4, 4), kernel_sizes=(5, 3), post_conv=(8, 3))
    >>> m.output_shape
    (None, 11)
    """
    if len(filters) != len(kernel_sizes):
        raise ValueError(f"filters and kernel_sizes need the same length, got {len(filters)} and {len(kernel_sizes)}")
    if n_classes < 1:
        raise ValueError(f"n_classes must be >= 1, got {n_classes}")
    if n_channels // 2 ** len(filters) < 1:
        raise ValueError(
            f"n_channels={n_channels} is too short for {len(filters)} pooling blocks; "
            f"use at least {2 ** len(filters)} channels or fewer blocks"
        )
    inputs = keras.Input(shape=(int(n_channels), 1), name="spectrum")
    x = inputs
    for i, (f, k) in enumerate(zip(filters, kernel_sizes), start=1):
        x = _conv_block(x, int(f), int(k), leaky_alpha=leaky_alpha, bn_momentum=bn_momentum, pool=True, name=f"block{i}")
    if post_conv is not None:
        x = _conv_block(x, int(post_conv[0]), int(post_conv[1]), leaky_alpha=leaky_alpha, bn_momentum=bn_momentum, pool=False, name="post")
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dropout(dropout, name="dropout")(x)
    outputs = layers.Dense(int(n_classes), activation="sigmoid", name="probabilities")(x)
    return keras.Model(inputs, outputs, name=name)


def architecture_flops(
    n_channels: int,
    n_classes: int,
    *,
    filters: Sequence[int] = DEFAULT_FILTERS,
    kernel_sizes: Sequence[int] = DEFAULT_KERNEL_SIZES,
    post_conv: tuple[int, int] | None = DEFAULT_POST_CONV,
) -> int:
    """Forward FLOPs per spectrum of :func:`build_model` with these sizes (analytic).

    Counts one multiply-add as 2 FLOPs in the convolutions and the dense layer:
    ``2 * L * k * C_in * F`` per Conv1D ('same' padding, output length ``L``) and
    ``2 * n_in * K`` for the dense layer. Bias, activation, BatchNorm and pooling
    (a few FLOPs per activation, well under 1 % here) are left out.
    """
    total = 0
    length, c_in = int(n_channels), 1
    blocks = [(f, k, True) for f, k in zip(filters, kernel_sizes)]
    if post_conv is not None:
        blocks.append((post_conv[0], post_conv[1], False))
    for f, k, pool in blocks:
        total += 2 * length * int(k) * c_in * int(f)
        c_in = int(f)
        if pool:
            length //= 2
    total += 2 * length * c_in * int(n_classes)
    return int(total)


def model_flops(model: "keras.Model | Mapping[str, Any]") -> int:
    """Forward FLOPs per spectrum of a built model, or of the :func:`build_model` arguments.

    Parameters
    ----------
    model : keras.Model or mapping
        A model (its Conv1D and Dense layers are counted, as in :func:`architecture_flops`),
        or a mapping of :func:`build_model` arguments (``n_channels``, ``n_classes``, sizes).

    Returns
    -------
    int
        FLOPs (multiply-add = 2) per spectrum.
    """
    if isinstance(model, Mapping):
        kw = dict(model)
        return architecture_flops(kw.pop("n_channels"), kw.pop("n_classes"), **kw)
    total = 0
    for layer in model.layers:
        if isinstance(layer, layers.Conv1D):
            c_in, out_len = layer.input.shape[2], layer.output.shape[1]
            total += 2 * out_len * layer.kernel_size[0] * c_in * layer.filters
        elif isinstance(layer, layers.Dense):
            total += 2 * layer.input.shape[-1] * layer.units
    return int(total)


def copy_model(model: keras.Model) -> keras.Model:
    """A copy of ``model`` with the same architecture and weights, uncompiled (no optimizer or loss).

    Saving the copy writes no training-only functions; training it leaves ``model`` unchanged.
    """
    clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    return clone


def uncompiled_copy(model: keras.Model, name: str) -> keras.Model:
    """A copy of ``model`` (same architecture and weights) named ``name``, built from its config.

    Unlike :func:`copy_model` (``clone_model``), the copy carries no compile state (loss, optimizer):
    nested inside another model it would otherwise go into the saved file, and safe loading refuses a
    custom loss.
    """
    copy = keras.Model.from_config(model.get_config())
    copy.set_weights(model.get_weights())
    copy.name = name
    return copy


def weighted_outputs(outputs: Sequence[Any], weights: Sequence[Any], *, concat_name: str, mix_name: str) -> Any:
    """``sum_m weights[m][k] * outputs[m][k]`` per output k, as built-in layers (a Concatenate and a fixed,
    non-trainable Dense), so a model made of it saves and loads in safe mode like any pigment model.

    ``outputs``: symbolic tensors of the same width ``k``; ``weights``: one ``(k,)`` vector per tensor.
    """
    import numpy as np

    k = int(outputs[0].shape[-1])
    w = np.zeros((len(outputs) * k, k), np.float32)
    for m, wm in enumerate(weights):
        w[m * k + np.arange(k), np.arange(k)] = np.asarray(wm, np.float32)
    mix = layers.Dense(k, use_bias=False, trainable=False, name=mix_name)
    out = mix(layers.Concatenate(name=concat_name)(list(outputs)))
    mix.set_weights([w])
    return out
