"""Floating-point operations of a model's forward pass, counted from its layers' shapes.

A gradient-ascent step through a sub-model costs about three forward passes (the
forward pass and a backward pass twice as dear), so :func:`ascent_flops` lets a zoo's
plan scale one timed probe to every layer without compiling each one.

Example:
    >>> import keras
    >>> x = keras.Input((8, 8, 1))
    >>> y = keras.layers.Conv2D(4, 3, padding="same")(x)
    >>> forward_flops(keras.Model(x, y))  # 2 * 3*3 * 1 * 4 * 8*8
    4608
"""

from __future__ import annotations

import numpy as np

__all__ = ["FORWARD_AND_BACKWARD", "layer_flops", "forward_flops", "ascent_flops"]

FORWARD_AND_BACKWARD = 3
"""A step of gradient ascent costs about this many forward passes."""


def _shape(tensor) -> tuple[int, ...]:
    return tuple(int(d) if d is not None else 1 for d in tensor.shape[1:])


def layer_flops(layer) -> int:
    """Operations of one call of ``layer`` on one image: multiply-adds count two.

    Convolutions (plain, grouped, depthwise, separable, transposed) and dense layers are
    counted exactly; any other layer counts one operation per output element.
    """
    kind = type(layer).__name__
    try:
        inputs, outputs = layer.input, layer.output
    except (AttributeError, ValueError):  # a layer used more than once, or never
        return 0
    if isinstance(inputs, (list, tuple)) or isinstance(outputs, (list, tuple)):
        return int(sum(np.prod(_shape(t)) for t in (outputs if isinstance(outputs, (list, tuple)) else [outputs])))
    cin, out = _shape(inputs)[-1], _shape(outputs)
    positions, cout = int(np.prod(out[:-1])), out[-1]
    kernel = int(np.prod(getattr(layer, "kernel_size", (1,))))
    if kind in ("Conv1D", "Conv2D", "Conv3D"):
        return 2 * kernel * (cin // max(1, int(getattr(layer, "groups", 1)))) * cout * positions
    if kind in ("DepthwiseConv1D", "DepthwiseConv2D"):
        return 2 * kernel * cout * positions  # cout = cin * depth_multiplier
    if kind in ("SeparableConv1D", "SeparableConv2D"):
        depthwise = cin * int(getattr(layer, "depth_multiplier", 1))
        return 2 * kernel * depthwise * positions + 2 * depthwise * cout * positions
    if kind in ("Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose"):
        return 2 * kernel * cin * cout * int(np.prod(_shape(inputs)[:-1]))
    if kind == "Dense":
        return 2 * cin * cout * positions
    return positions * cout


def forward_flops(model) -> int:
    """Operations of one forward pass of ``model`` on one image (every layer it holds)."""
    return int(sum(layer_flops(layer) for layer in model.layers if type(layer).__name__ != "InputLayer"))


def ascent_flops(model) -> int:
    """Operations of one ascent step of one image through ``model``: forward and backward."""
    return FORWARD_AND_BACKWARD * forward_flops(model)
