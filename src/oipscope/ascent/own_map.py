"""The target layer computed for each element's own map only.

In an ascent, element ``b`` climbs one map of the target layer. The sub-model
computes all ``M`` maps of that layer, forward and backward, and the objective
then reads one: when the target layer is a convolution, ``M - 1`` of its maps are
wasted work. For the first layers of a small CNN that layer is most of the cost
(the embedded CNN's Conv2D_2 holds 92 % of its sub-model's multiply-adds).

:func:`own_map_head` splits a sub-model into its *body* (the image up to the
input of the last convolution) and a *head* that computes, per element, only its
own map: the convolution with that map's kernel and bias, then the per-channel
layers that follow it in the sub-model (BatchNormalization in inference,
elementwise activations). Everything else returns None and the whole sub-model
runs, as before.

The head's values equal the full layer's up to float rounding (the sums run in
another order), so an ascent through it follows the same path within that
rounding; like any change of summation order (another CPU, oneDNN on or off) the
rounding can grow along an ascent into small differences of the OIP.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["OwnMapHead", "ascent_layer", "own_map_head", "preactivation_through_head"]

# activations that act on every value on its own (so on one map as on all of them)
_ELEMENTWISE = frozenset({
    "linear", "relu", "relu6", "elu", "selu", "gelu", "silu", "swish", "sigmoid", "hard_sigmoid",
    "hard_silu", "hard_swish", "tanh", "softplus", "softsign", "exponential", "leaky_relu", "mish",
    "log_sigmoid", "celu",
})
_ELEMENTWISE_LAYERS = ("ReLU", "LeakyReLU", "ELU")


def _activation_name(function) -> str | None:
    import keras

    try:
        name = keras.activations.serialize(function)
    except (ValueError, TypeError):
        return None
    return name if isinstance(name, str) else None


def _float32(layer) -> bool:
    policy = getattr(layer, "dtype_policy", None)
    return getattr(policy, "compute_dtype", "float32") == "float32" and not getattr(layer, "quantization_mode", None)


def _is_own_map_conv(layer) -> bool:
    import keras

    return (type(layer) is keras.layers.Conv2D and layer.groups == 1 and layer.data_format == "channels_last"
            and layer.padding in ("valid", "same") and _activation_name(layer.activation) in _ELEMENTWISE
            and len(set(layer.strides)) == 1 and len(set(layer.dilation_rate)) == 1  # as a depthwise conv needs
            and _float32(layer))


def _is_per_channel(layer) -> bool:
    import keras

    kind = type(layer).__name__
    if isinstance(layer, keras.layers.BatchNormalization):
        return kind == "BatchNormalization" and layer.axis in (-1, 3) and _float32(layer)
    if kind == "Activation":
        return _activation_name(layer.activation) in _ELEMENTWISE
    return kind in _ELEMENTWISE_LAYERS


def _producer(tensor):
    """(layer, its one input tensor) that made ``tensor``, or None."""
    history = getattr(tensor, "_keras_history", None)
    if history is None:
        return None
    layer = history.operation
    inputs = layer._inbound_nodes[history.node_index].input_tensors
    if len(inputs) != 1:
        return None
    return layer, inputs[0]


@dataclass(frozen=True, eq=False)
class OwnMapHead:
    """A sub-model cut before its last convolution; call it for the own maps.

    Attributes:
        body: Keras model from the image to the convolution's input (None: the image itself).
        conv: the last convolution (a ``Conv2D``).
        after: per-channel layers applied after it, in order.
        conv_input_shape: (H, W, C) of the convolution's input.
    """

    body: Any
    conv: Any
    after: tuple = ()
    conv_input_shape: tuple[int, int, int] = (0, 0, 0)

    @property
    def has_activation(self) -> bool:
        """Whether the layer ends in a non-linear activation (which a pre-activation leaves out)."""
        if self.after:
            return not isinstance(self.after[-1], _batchnorm_class())
        return _activation_name(self.conv.activation) != "linear"

    def __call__(self, images, map_indices, preactivation=None):
        """(B, h, w, 1) tensor: each element's own map of the target layer.

        ``preactivation``: a scalar bool tensor; where true, the map before the
        layer's last activation (the convolution's own, or the last activation layer
        after it), as :func:`oipscope.model.loading.preactivation_submodel` gives it.
        """
        import tensorflow as tf

        inputs = images if self.body is None else self.body(images, training=False)
        inputs = tf.ensure_shape(inputs, [None, *self.conv_input_shape])  # a warped image may lose its size
        before = self._convolve(inputs, map_indices)
        own = self.conv.activation(before)
        for layer in self.after:
            before, own = own, _per_channel(layer, own, map_indices)
        if preactivation is not None and self.has_activation:
            own = tf.where(preactivation, before, own)
        return own[..., None]

    def _convolve(self, inputs, map_indices):
        """The convolution of each element with its own map's kernel and bias, (B, h, w), before its activation.

        One depthwise convolution does it: the batch is laid out as channels
        (element ``b``'s input channel ``c`` is channel ``b * C + c``), each with
        its own map's kernel slice, and the C results of an element are summed.
        """
        import tensorflow as tf

        conv = self.conv
        kh, kw = conv.kernel_size
        height, width, depth = (int(d) for d in inputs.shape[1:])
        kernel = tf.gather(tf.convert_to_tensor(conv.kernel), map_indices, axis=3)  # (kh, kw, C, B)
        kernel = tf.reshape(tf.transpose(kernel, [0, 1, 3, 2]), [kh, kw, -1, 1])
        laid = tf.reshape(tf.transpose(inputs, [1, 2, 0, 3]), [1, height, width, -1])
        out = tf.nn.depthwise_conv2d(laid, kernel, [1, *conv.strides, 1], conv.padding.upper(),
                                     dilations=conv.dilation_rate)
        out_h, out_w = int(out.shape[1]), int(out.shape[2])
        total = tf.transpose(tf.reduce_sum(tf.reshape(out, [out_h, out_w, -1, depth]), axis=-1), [2, 0, 1])
        if conv.use_bias:
            total = total + tf.gather(tf.convert_to_tensor(conv.bias), map_indices)[:, None, None]
        return total


def _batchnorm_class():
    import keras

    return keras.layers.BatchNormalization


def _per_channel(layer, own, map_indices):
    """A per-channel layer applied to each element's own map (B, h, w)."""
    import keras
    import tensorflow as tf

    if not isinstance(layer, keras.layers.BatchNormalization):
        return layer(own)  # elementwise: the same on one map as on all of them

    def pick(weight, default):
        return default if weight is None else tf.gather(tf.convert_to_tensor(weight), map_indices)[:, None, None]

    scale = tf.math.rsqrt(pick(layer.moving_variance, None) + layer.epsilon) * pick(layer.gamma, 1.0)
    return (own - pick(layer.moving_mean, None)) * scale + pick(layer.beta, 0.0)


def own_map_head(submodel) -> OwnMapHead | None:
    """The sub-model as body + own-map head, or None when its last layers are not a plain convolution.

    Eligible: the sub-model's output comes from a float32 ``Conv2D`` (one group,
    channels last, "valid" or "same" padding, equal strides and dilations along both
    axes, an elementwise activation), possibly followed by ``BatchNormalization``,
    ``Activation`` (elementwise), ``ReLU``, ``LeakyReLU`` or ``ELU`` layers.
    """
    import keras

    tensor = submodel.outputs[0]
    if len(tensor.shape) != 4:
        return None
    after = []
    while True:
        made = _producer(tensor)
        if made is None:
            return None
        layer, tensor = made
        if _is_own_map_conv(layer):
            break
        if not _is_per_channel(layer):
            return None
        after.append(layer)
    if any(d is None for d in tensor.shape[1:]):
        return None  # a model for any image size: the whole sub-model
    if any(tensor is image for image in submodel.inputs):
        body = None
    else:
        body = keras.Model(submodel.inputs[0], tensor, name=f"{submodel.name}_body")
    return OwnMapHead(body=body, conv=layer, after=tuple(reversed(after)),
                      conv_input_shape=tuple(int(d) for d in tensor.shape[1:]))


def ascent_layer(submodel, objective, own_maps: bool = True):
    """What a compiled ascent computes of the layer: ``f(images, maps[, preactivation])``.

    ``f`` returns the features and each element's map in them.

    Through the own-map head when ``own_maps``, the objective reads only the
    element's own map (:attr:`~oipscope.ascent.objective.Objective.own_map`) and the
    sub-model allows it (the features are then (B, h, w, 1) and every element's map
    is 0); else the whole sub-model. Max pools that tile their input take the exact
    faster gradient of :func:`~oipscope.ascent.pooling.first_max_pooling`. ``preactivation``
    (a scalar bool tensor) switches the head to the layer's pre-activation. Call ``f``
    only while a ``tf.function`` traces (the pooling swap lasts for the call).
    """
    from .pooling import first_max_pooling

    head = own_map_head(submodel) if own_maps and objective.own_map else None

    def layer(images, map_indices, preactivation=None):
        import tensorflow as tf

        with first_max_pooling():
            if head is None:
                return submodel(images, training=False), map_indices
            return head(images, map_indices, preactivation), tf.zeros_like(map_indices)

    return layer


def preactivation_through_head(submodel, objective, own_maps: bool = True) -> bool:
    """Whether an ascent of ``submodel`` can climb the layer's pre-activation through its own-map head.

    Then the rescue needs no sub-model (and no compiled loop) of its own: the
    ascent's loop takes the pre-activation as a switch (:func:`ascent_layer`).
    """
    if not (own_maps and objective.own_map):
        return False
    head = own_map_head(submodel)
    return head is not None and head.has_activation
