"""What a layer does to feature maps, as the graph rewrites need to know it.

:mod:`oipscope.own_map` computes a convolution's maps one at a time and
:mod:`oipscope.phase_pool` one pooling phase at a time; both may move a layer
only if it acts on each value (an elementwise activation) or each channel
(``BatchNormalization`` in inference) on its own, and only in float32.
"""

from __future__ import annotations

from typing import Callable

__all__ = ["ELEMENTWISE", "activation_name", "apply_per_channel", "computes_in_float32", "is_elementwise",
           "is_per_channel"]

ELEMENTWISE = frozenset({
    "linear", "relu", "relu6", "elu", "selu", "gelu", "silu", "swish", "sigmoid", "hard_sigmoid",
    "hard_silu", "hard_swish", "tanh", "softplus", "softsign", "exponential", "leaky_relu", "mish",
    "log_sigmoid", "celu",
})
"""Keras activations that act on every value on its own (so on one map as on all of them)."""

_ELEMENTWISE_LAYERS = ("ReLU", "LeakyReLU", "ELU")


def activation_name(function) -> str | None:
    """The Keras name of an activation function, or None for a custom one."""
    import keras

    try:
        name = keras.activations.serialize(function)
    except (ValueError, TypeError):
        return None
    return name if isinstance(name, str) else None


def is_elementwise(function) -> bool:
    """Whether an activation function is one of Keras' elementwise ones."""
    return activation_name(function) in ELEMENTWISE


def computes_in_float32(layer) -> bool:
    """Whether the layer computes in float32, unquantized."""
    policy = getattr(layer, "dtype_policy", None)
    return getattr(policy, "compute_dtype", "float32") == "float32" and not getattr(layer, "quantization_mode", None)


def is_per_channel(layer) -> bool:
    """Whether the layer acts on each channel on its own: channels-last ``BatchNormalization``
    (applied in inference), an elementwise ``Activation``, ``ReLU``, ``LeakyReLU`` or ``ELU``."""
    import keras

    kind = type(layer).__name__
    if isinstance(layer, keras.layers.BatchNormalization):
        return kind == "BatchNormalization" and layer.axis in (-1, 3) and computes_in_float32(layer)
    if kind == "Activation":
        return is_elementwise(layer.activation)
    return kind in _ELEMENTWISE_LAYERS


def apply_per_channel(layer, values, pick: Callable | None = None):
    """A layer of :func:`is_per_channel` applied in inference to ``values``, whose channels run
    along the last axis; ``pick(weight)`` takes a ``BatchNormalization`` weight's entries
    for those channels (default: the whole weight)."""
    import keras
    import tensorflow as tf

    if not isinstance(layer, keras.layers.BatchNormalization):
        return layer(values)  # elementwise: the same on any shape
    take = pick or tf.convert_to_tensor

    def weight(variable, default):
        return default if variable is None else take(variable)

    scale = tf.math.rsqrt(weight(layer.moving_variance, None) + layer.epsilon) * weight(layer.gamma, 1.0)
    return (values - weight(layer.moving_mean, None)) * scale + weight(layer.beta, 0.0)
