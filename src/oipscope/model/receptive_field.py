"""Where a feature map looks: the receptive field of a layer's units in input pixels.

A unit's receptive field is the window of input pixels that can change its value.
Walking the Keras graph from the input to a layer, each convolution or pooling
widens the field by ``(kernel - 1) * jump`` pixels (``kernel`` dilated), multiplies
the jump (the distance in input pixels between neighbouring units) by its stride,
and moves the start by its leading padding; layers that act per pixel
(normalization, activations, rescaling) leave it as it is, and where branches
meet (``Add``, ``Concatenate``, ...) the field is the union of theirs. A layer
whose units see the whole image, or one the walk cannot reason about (``Dense``,
``Flatten``, global pooling, ``Resizing``, up-sampling, a ``Lambda``), gives
``None``: the whole image.

Example:
    >>> field = receptive_field(model, "block4_conv3")  # doctest: +SKIP
    >>> field.size, field.jump, field.box(3, 5)  # doctest: +SKIP
    ((196, 196), (8, 8), (-74, -58, 122, 138))
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ConfigError

if TYPE_CHECKING:
    import keras

__all__ = ["MERGE_CLASSES", "POINTWISE_CLASSES", "ReceptiveField", "receptive_field"]

POINTWISE_CLASSES: tuple[str, ...] = (
    "InputLayer", "BatchNormalization", "LayerNormalization", "UnitNormalization",
    "Activation", "ReLU", "LeakyReLU", "PReLU", "ELU", "Softmax", "Dropout", "SpatialDropout2D",
    "GaussianNoise", "GaussianDropout", "AlphaDropout", "ActivityRegularization", "Rescaling", "Normalization",
    "Identity",
)
"""Keras layer classes that act on each pixel on its own (over channels): the field passes unchanged
(batch normalization and ``Normalization`` with their fixed statistics; ``LayerNormalization``,
``UnitNormalization`` and ``Softmax`` over the channel axis only)."""

MERGE_CLASSES: tuple[str, ...] = ("Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate")
"""Keras layer classes that merge branches pixel by pixel: the field is the union of the branches' fields."""

_OVER_AXIS = ("LayerNormalization", "UnitNormalization", "Softmax")
"""Pointwise classes whose statistics run over their ``axis``: a spatial axis makes them see the whole image."""

_Axis = tuple[int, int, int]  # (size, jump, start) along one axis


@dataclass(frozen=True)
class ReceptiveField:
    """The receptive field of the units of one layer, per axis (rows, columns), in input pixels.

    The field of the unit at (row, col) covers input rows ``start[0] + row * jump[0]``
    up to (not including) that plus ``size[0]``, and likewise for the columns; it may
    reach past the image where the layers pad.

    Attributes:
        size: (rows, cols) of input pixels one unit sees.
        jump: input pixels between neighbouring units (the product of the strides).
        start: first input row and column of the field of unit (0, 0) (negative under padding).
        input_hw: (height, width) of the model input these pixels refer to.
    """

    size: tuple[int, int]
    jump: tuple[int, int]
    start: tuple[int, int]
    input_hw: tuple[int, int]

    def __post_init__(self) -> None:
        for name in ("size", "jump", "start", "input_hw"):
            value = tuple(int(v) for v in getattr(self, name))
            if len(value) != 2:
                raise ConfigError(f"receptive field {name} must be (rows, cols), got {getattr(self, name)!r}")
            object.__setattr__(self, name, value)
        if min(self.size + self.jump + self.input_hw) < 1:
            raise ConfigError(f"receptive field sizes, jumps and input size must be >= 1, got {self}")

    def box(self, row: int, col: int) -> tuple[int, int, int, int]:
        """(top, left, bottom, right) of unit (row, col)'s field in input pixels; bottom and right excluded."""
        top = self.start[0] + int(row) * self.jump[0]
        left = self.start[1] + int(col) * self.jump[1]
        return top, left, top + self.size[0], left + self.size[1]

    def to_array(self) -> np.ndarray:
        """The field as 8 integers (size, jump, start, input size; rows before columns), for ``.npz`` files."""
        return np.asarray([*self.size, *self.jump, *self.start, *self.input_hw], np.int64)

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        """NumPy sees the field as :meth:`to_array` (so a saved ``.npz`` holds 8 integers)."""
        return self.to_array() if dtype is None else self.to_array().astype(dtype)

    @classmethod
    def from_array(cls, values) -> ReceptiveField:
        """Inverse of :meth:`to_array`."""
        v = [int(x) for x in np.asarray(values).reshape(-1)]
        if len(v) != 8:
            raise ConfigError(f"a receptive field is 8 integers, got {len(v)}")
        return cls(size=(v[0], v[1]), jump=(v[2], v[3]), start=(v[4], v[5]), input_hw=(v[6], v[7]))


def _pair(value) -> tuple[int, int]:
    values = tuple(int(v) for v in (value if isinstance(value, (tuple, list)) else (value, value)))
    return values if len(values) == 2 else (values[0], values[0])


def _windowed(field: tuple[_Axis, _Axis], kernel, strides, dilation, padding: str,
              in_hw: tuple, out_hw: tuple) -> tuple[_Axis, _Axis] | None:
    """The field after a sliding window (convolution or pooling) over both axes."""
    result = []
    for (size, jump, start), k, s, d, n_in, n_out in zip(field, _pair(kernel), _pair(strides), _pair(dilation),
                                                          in_hw, out_hw):
        reach = d * (k - 1) + 1
        if padding == "valid":
            before = 0
        elif padding == "same":
            if n_in is None or n_out is None:  # TensorFlow pads (total // 2) before: needs the sizes
                if s != 1:
                    return None
                before = (reach - 1) // 2
            else:
                before = max((int(n_out) - 1) * s + reach - int(n_in), 0) // 2
        else:  # "causal" and the like: not a 2-D image layer
            return None
        result.append((size + (reach - 1) * jump, jump * s, start - before * jump))
    return result[0], result[1]


def _union(fields: list[tuple[_Axis, _Axis]]) -> tuple[_Axis, _Axis] | None:
    """The smallest field covering every branch's; None when the branches step differently."""
    merged = []
    for axis in range(2):
        axes = [f[axis] for f in fields]
        if len({jump for _, jump, _ in axes}) != 1:
            return None
        start = min(s for _, _, s in axes)
        end = max(s + size for size, _, s in axes)
        merged.append((end - start, axes[0][1], start))
    return merged[0], merged[1]


def _is(layer, names: tuple[str, ...]) -> bool:
    import keras

    return isinstance(layer, tuple(c for c in (getattr(keras.layers, n, None) for n in names) if c is not None))


def _hw(tensor) -> tuple:
    shape = tuple(tensor.shape)
    return shape[1:3] if len(shape) == 4 else (None, None)


def _step(layer, parents: list, inputs: list, output) -> tuple[_Axis, _Axis] | None:
    """The field of ``layer``'s output from its inputs' fields (None: the whole image)."""
    if any(p is None for p in parents) or not parents or len(tuple(output.shape)) != 4:
        return None
    if getattr(layer, "data_format", "channels_last") != "channels_last":
        return None
    if _is(layer, MERGE_CLASSES):
        if _is(layer, ("Concatenate",)) and int(getattr(layer, "axis", -1)) not in (-1, 3):
            return None
        return _union(parents)
    if len(parents) != 1:
        return None
    (field,), in_hw, out_hw = parents, _hw(inputs[0]), _hw(output)
    if _is(layer, POINTWISE_CLASSES):
        if _is(layer, _OVER_AXIS):  # statistics over ``axis``: per pixel only over the channels
            axis = getattr(layer, "axis", -1)
            axes = tuple(axis) if isinstance(axis, (tuple, list)) else (axis,)
            if any(a is None or int(a) not in (-1, 3) for a in axes):
                return None
        return field
    if _is(layer, ("Conv2DTranspose",)):
        return None
    if _is(layer, ("Conv2D", "DepthwiseConv2D", "SeparableConv2D")):
        return _windowed(field, layer.kernel_size, layer.strides, layer.dilation_rate, layer.padding,
                         in_hw, out_hw)
    if _is(layer, ("MaxPooling2D", "AveragePooling2D")):
        return _windowed(field, layer.pool_size, layer.strides, 1, layer.padding, in_hw, out_hw)
    if _is(layer, ("ZeroPadding2D", "Cropping2D")):
        (top, _), (left, _) = getattr(layer, "padding", None) or layer.cropping
        sign = -1 if _is(layer, ("ZeroPadding2D",)) else 1
        (sy, jy, y0), (sx, jx, x0) = field
        return (sy, jy, y0 + sign * int(top) * jy), (sx, jx, x0 + sign * int(left) * jx)
    return None


def _history(tensor):
    history = getattr(tensor, "_keras_history", None)
    if history is None:
        return None, None
    operation, node_index = history[0], history[1]
    nodes = getattr(operation, "_inbound_nodes", None) or []
    return operation, (nodes[node_index] if node_index < len(nodes) else None)


def receptive_field(model: keras.Model, layer_name: str) -> ReceptiveField | None:
    """The receptive field of the units of ``layer_name`` in ``model``'s input pixels.

    A pure walk over the Keras graph (nested models inlined first, as
    :func:`oipscope.model.loading.flattened` does); nothing is computed on data.

    Args:
        model: a Keras model with one 4-D image input (NHWC).
        layer_name: the layer whose units are meant.

    Returns:
        The field, or None where its units see the whole image or the walk meets a
        layer it cannot reason about (``Dense``, ``Flatten``, global pooling,
        ``Resizing``, up-sampling, ``Lambda``, channels-first layers, ...).

    Raises:
        LayerError: no layer of that name.
    """
    from .loading import get_layer

    layer = get_layer(model, layer_name)
    source = model.inputs[0]
    if len(tuple(source.shape)) != 4:
        return None
    in_h, in_w = _hw(source)
    if in_h is None or in_w is None:
        return None
    memo: dict[int, Any] = {id(source): ((1, 1, 0), (1, 1, 0))}

    def field_of(tensor):
        key = id(tensor)
        if key not in memo:
            memo[key] = None  # a cycle or a dead end reads as the whole image
            operation, node = _history(tensor)
            if operation is not None and node is not None:
                inputs = list(node.input_tensors)
                parents = [field_of(t) for t in inputs]
                memo[key] = _step(operation, parents, inputs, tensor)
        return memo[key]

    field = field_of(layer.output)
    if field is None:
        return None
    (sy, jy, y0), (sx, jx, x0) = field
    return ReceptiveField(size=(sy, sx), jump=(jy, jx), start=(y0, x0), input_hw=(int(in_h), int(in_w)))
