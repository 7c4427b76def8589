"""A first convolution and the max pool after it, computed one pooling phase at a time.

The first convolution of a CNN reads 1 (grey) or 3 (RGB) channels: its matrix
products are too thin for the CPU's vector units (TensorFlow reached 7 GFLOP/s on the
embedded CNN's ``Conv2D_1``, a tenth of what its second convolution reaches), and
the max pool after it adds its own gradient. When a pool of size ``s`` tiles the
convolution's output (``pool_size == strides``, "valid"), every pooled value is the
maximum over the ``s x s`` *phases* of the output: the convolution evaluated at
rows ``s*i + a`` and columns ``s*j + b`` for ``a, b < s``. Folding the image's
``s x s`` blocks into channels (``space_to_depth``) turns the convolution into a
small stride-1 convolution of ``s*s*C`` input and ``s*s*F`` output channels, one
output channel group per phase, and the pool into a maximum over the phase axis.
The arithmetic grows (a 3x3 kernel becomes a 4x4 window per phase: 16/9) but the
products get wide enough to run several times faster; with 32 or more input
channels they are already wide, and the larger window loses (measured: 3x slower
for the embedded CNN's second convolution), so only inputs of at most
:data:`MAX_INPUT_CHANNELS` channels are rewritten.

:func:`phase_pooled` rewrites a model's eligible ``Conv2D -> [per-channel layers]
-> MaxPooling2D`` chains as one :class:`PhaseConvPool` layer that shares the
convolution's weights. The values equal the original's up to float rounding (the
sums run in another order); the gradient goes, as TensorFlow's ``MaxPoolGrad``
routes it, to the first phase (in row-major window order) that holds the maximum.
"""

from __future__ import annotations

import weakref
from typing import Any

import keras
import tensorflow as tf

from .layer_kinds import apply_per_channel, computes_in_float32, is_elementwise, is_per_channel

__all__ = ["MAX_INPUT_CHANNELS", "PhaseConvPool", "phase_pooled"]

MAX_INPUT_CHANNELS = 4
"""Widest convolution input that is rewritten (measured on 28 px, 32 maps, batch 64, forward and input
gradient: 1 channel 12.4 -> 6.5 ms, 3: 11.8 -> 8.1, 4: 12.7 -> 9.4, 8: 13.3 -> 12.3, 16: 16.4 -> 17.4)."""

_REWRITTEN: "weakref.WeakKeyDictionary[Any, Any]" = weakref.WeakKeyDictionary()


def _first_maximum(phases):
    """Maximum over axis 3; the gradient goes to the first phase holding it (as ``MaxPoolGrad`` routes it)."""

    @tf.custom_gradient
    def reduce(z):
        peak = tf.reduce_max(z, axis=3)

        def gradient(upstream):
            routed, taken = [], None
            for k in range(int(z.shape[3])):
                hit = tf.equal(z[:, :, :, k], peak)
                routed.append(hit if taken is None else tf.logical_and(hit, tf.logical_not(taken)))
                taken = hit if taken is None else tf.logical_or(taken, hit)
            zero = tf.zeros([], upstream.dtype)
            return tf.stack([tf.where(first, upstream, zero) for first in routed], axis=3)

        return peak, gradient

    return reduce(phases)


class PhaseConvPool(keras.layers.Layer):
    """``pool(chain(conv(x)))`` computed per pooling phase; see :mod:`oipscope.phase_pool`.

    Args:
        conv: the ``Conv2D`` (stride 1, no dilation, one group, "valid" or "same").
        chain: the per-channel layers between it and the pool, in order.
        pool: the pool's size, equal to its strides.
    """

    def __init__(self, conv, chain, pool: int, **kwargs):
        super().__init__(name=f"{conv.name}_phase_pooled", **kwargs)
        self.conv, self.chain, self.pool = conv, list(chain), int(pool)

    def _geometry(self, height: int, width: int):
        """Padding, pooled size and the kernel window of a phase (in blocks), per axis."""
        kh, kw = self.conv.kernel_size
        s = self.pool
        if self.conv.padding == "same":
            pads = ((kh - 1) // 2, kh - 1 - (kh - 1) // 2), ((kw - 1) // 2, kw - 1 - (kw - 1) // 2)
            height, width = height + kh - 1, width + kw - 1
        else:
            pads = ((0, 0), (0, 0))
        pooled = ((height - kh + 1) // s, (width - kw + 1) // s)
        blocks = (-(-(s + kh - 1) // s), -(-(s + kw - 1) // s))
        return pads, pooled, blocks

    def compute_output_shape(self, input_shape):
        _, pooled, _ = self._geometry(int(input_shape[1]), int(input_shape[2]))
        return (input_shape[0], *pooled, self.conv.filters)

    def _kernel(self, blocks):
        """(kh, kw, C, F) -> (blocks_h, blocks_w, s*s*C, s*s*F); phase (a, b) is output group a*s + b."""
        kernel = tf.convert_to_tensor(self.conv.kernel)
        kh, kw, depth, filters = (int(d) for d in kernel.shape)
        s, (bh, bw) = self.pool, blocks
        phases = [tf.pad(kernel, [[a, s * bh - kh - a], [b, s * bw - kw - b], [0, 0], [0, 0]])
                  for a in range(s) for b in range(s)]
        window = tf.reshape(tf.stack(phases, axis=3), [bh, s, bw, s, depth, s * s * filters])
        return tf.reshape(tf.transpose(window, [0, 2, 1, 3, 4, 5]), [bh, bw, s * s * depth, s * s * filters])

    def build(self, input_shape):
        self.input_size = (int(input_shape[1]), int(input_shape[2]), int(input_shape[3]))
        self.built = True

    def call(self, inputs):
        inputs = tf.ensure_shape(inputs, [None, *self.input_size])  # a warped image may lose its size
        s, filters = self.pool, self.conv.filters
        pads, (ph, pw), (bh, bw) = self._geometry(int(inputs.shape[1]), int(inputs.shape[2]))
        need_h, need_w = s * (ph + bh - 1), s * (pw + bw - 1)  # rows past the image meet zero weights only
        height, width = int(inputs.shape[1]) + sum(pads[0]), int(inputs.shape[2]) + sum(pads[1])
        x = tf.pad(inputs, [[0, 0], [pads[0][0], pads[0][1] + max(0, need_h - height)],
                            [pads[1][0], pads[1][1] + max(0, need_w - width)], [0, 0]])
        blocks = tf.nn.space_to_depth(x[:, :need_h, :need_w, :], s)
        z = tf.nn.conv2d(blocks, self._kernel((bh, bw)), 1, "VALID")  # channels: phase-major, then maps
        phases = s * s

        def tiled(weight):
            return tf.tile(tf.convert_to_tensor(weight), [phases])

        if self.conv.use_bias:
            z = tf.nn.bias_add(z, tiled(self.conv.bias))
        z = self.conv.activation(z)
        for layer in self.chain:
            z = apply_per_channel(layer, z, tiled)
        return _first_maximum(tf.reshape(z, [-1, ph, pw, phases, filters]))


def _eligible_conv(layer) -> bool:
    return (type(layer) is keras.layers.Conv2D and layer.groups == 1 and layer.data_format == "channels_last"
            and tuple(layer.strides) == (1, 1) and tuple(layer.dilation_rate) == (1, 1)
            and layer.padding in ("valid", "same") and is_elementwise(layer.activation)
            and computes_in_float32(layer) and len(layer.kernel.shape) == 4
            and int(layer.kernel.shape[2]) <= MAX_INPUT_CHANNELS)


def _tiling_pool(layer) -> int | None:
    if type(layer) is not keras.layers.MaxPooling2D or layer.padding != "valid" or layer.data_format != "channels_last":
        return None
    sizes = set(layer.pool_size) | set(layer.strides)
    return sizes.pop() if len(sizes) == 1 else None


def _chains(model) -> dict[int, tuple[Any, list, Any, int]]:
    """``id(conv) -> (conv, per-channel layers, pool, pool size)`` for each chain to rewrite.

    Every layer of a chain is called once in the model, each output but the pool's is
    read by the next layer only and is not an output of the model.
    """
    graph = getattr(model, "_functional", None) or model
    by_depth = getattr(graph, "_nodes_by_depth", None)
    if by_depth is None:
        return {}
    nodes = [node for level in by_depth.values() for node in level]
    calls: dict[int, int] = {}
    readers: dict[int, list] = {}
    for node in nodes:
        calls[id(node.operation)] = calls.get(id(node.operation), 0) + 1
        for parent in node.parent_nodes:
            readers.setdefault(id(parent.operation), []).append(node.operation)
    outputs = {id(tensor._keras_history.operation) for tensor in graph.outputs}
    chains = {}
    for node in nodes:
        conv = node.operation
        if not _eligible_conv(conv):
            continue
        chain, current = [], conv
        while True:
            if calls.get(id(current)) != 1 or id(current) in outputs or len(readers.get(id(current), ())) != 1:
                break
            (follower,) = readers[id(current)]
            size = _tiling_pool(follower)
            if size is not None and calls.get(id(follower)) == 1:
                height, width = node.output_tensors[0].shape[1:3]
                if height is not None and width is not None and min(height, width) >= size:  # fixed size only
                    chains[id(conv)] = (conv, chain, follower, size)
                break
            if not is_per_channel(follower):
                break
            chain.append(follower)
            current = follower
    return chains


def phase_pooled(model):
    """``model`` with its first-convolution-and-pool chains computed per pooling phase, or ``model``
    itself when it has none (made once per model; the layers, and so the weights, are shared).

    A chain is a float32 ``Conv2D`` of at most :data:`MAX_INPUT_CHANNELS` input channels (stride 1,
    no dilation, "valid" or "same"), the per-channel layers after it (``BatchNormalization`` in
    inference, elementwise activations) and a ``MaxPooling2D`` whose windows tile its input.
    """
    try:
        if model not in _REWRITTEN:
            _REWRITTEN[model] = _rewrite(model)  # None: nothing to rewrite (a value must not hold its key)
    except TypeError:  # not weak-referenceable
        return _rewrite(model) or model
    return _REWRITTEN[model] or model


def _rewrite(model):
    """The rewritten model, or None when there is nothing to rewrite."""
    if type(model).__name__ not in ("Functional", "Sequential") or len(model.inputs) != 1:
        return None
    chains = _chains(model)
    if not chains:
        return None
    fused = {id(conv): PhaseConvPool(conv, chain, size) for conv, chain, _, size in chains.values()}
    skipped = {id(layer) for _, chain, pool, _ in chains.values() for layer in (*chain, pool)}

    def operation(op):
        if id(op) in fused:
            return lambda x, *args, **kwargs: fused[id(op)](x)
        if id(op) in skipped:
            return lambda x, *args, **kwargs: x  # already inside the phase layer's output
        return op

    graph = getattr(model, "_functional", None) or model
    source = model.inputs[0]
    image = keras.Input(batch_shape=tuple(source.shape), dtype=source.dtype)
    return keras.Model(image, graph._run_through_graph(image, operation_fn=operation),
                       name=f"{model.name}_phased")
