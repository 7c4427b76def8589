"""Max pooling with a faster gradient on a CPU, equal to TensorFlow's bit for bit.

TensorFlow's CPU gradient of max pooling (``MaxPoolGrad``) recomputes every
window's maximum with its position; in an ascent on the embedded CNN it took a
quarter of each step. For the common pooling whose windows tile the input
(``pool_size == strides``, "valid" padding, channels last), the gradient is
written here with whole-tensor operations: the window's first position (in
row-major order) whose value equals the pooled maximum receives the upstream
gradient, exactly as ``MaxPoolGrad`` routes it, so gradients are identical,
ties included.

:func:`first_max_pooling` is a context manager used only while a compiled loop is
traced, like :func:`oipscope.ascent.warmup.redirected_relu`: Keras' TensorFlow backend
pools with ``tf.nn.max_pool``, which is swapped for this one for that trace. Other
poolings, and any pooling when TensorFlow sees a GPU, keep TensorFlow's.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

__all__ = ["first_max_pooling", "tiled_max_pool"]


def _size(value) -> int | None:
    """The one window size of ``value`` (int, or equal entries of a 2- or 4-list), else None."""
    if isinstance(value, int):
        return value
    sizes = [int(v) for v in value]
    if len(sizes) == 4:
        if sizes[0] != 1 or sizes[3] != 1:
            return None
        sizes = sizes[1:3]
    return sizes[0] if len(sizes) == 2 and sizes[0] == sizes[1] else None


def tiled_max_pool(inputs, size: int):
    """``tf.nn.max_pool(inputs, size, size, "VALID")`` whose gradient goes to each window's first maximum.

    Args:
        inputs: (B, H, W, C) tensor.
        size: window side, equal to the stride.
    """
    import tensorflow as tf

    @tf.custom_gradient
    def pool(x):
        window = [1, size, size, 1]
        pooled = tf.raw_ops.MaxPool(input=x, ksize=window, strides=window, padding="VALID")  # not the swapped one

        def gradient(upstream):
            shape = tf.shape(pooled)
            b, h, w, c = shape[0], shape[1], shape[2], shape[3]
            windows = tf.reshape(x[:, : size * h, : size * w, :], [b, h, size, w, size, c])
            peak = pooled[:, :, None, :, None, :]
            taken = None
            rows = []
            for i in range(size):
                row = []
                for j in range(size):
                    hit = tf.equal(windows[:, :, i : i + 1, :, j : j + 1, :], peak)
                    first = hit if taken is None else tf.logical_and(hit, tf.logical_not(taken))
                    taken = hit if taken is None else tf.logical_or(taken, hit)
                    row.append(first)
                rows.append(tf.concat(row, axis=4) if size > 1 else row[0])
            routed = tf.concat(rows, axis=2) if size > 1 else rows[0]
            grad = tf.where(routed, upstream[:, :, None, :, None, :], tf.zeros([], upstream.dtype))
            grad = tf.reshape(grad, [b, size * h, size * w, c])
            full = tf.shape(x)
            return tf.pad(grad, [[0, 0], [0, full[1] - size * h], [0, full[2] - size * w], [0, 0]])

        return pooled, gradient

    return pool(inputs)


@contextlib.contextmanager
def first_max_pooling() -> Iterator[None]:
    """While tracing inside: tiling max pools (on a CPU) take :func:`tiled_max_pool`'s gradient."""
    import tensorflow as tf

    if tf.config.list_logical_devices("GPU"):
        yield
        return
    plain = tf.nn.max_pool

    def patched(input, ksize, strides, padding, data_format=None, name=None):  # noqa: A002 - TF's name
        size = _size(ksize)
        fits = (size is not None and size == _size(strides) and size <= 4 and padding == "VALID"
                and data_format in (None, "NHWC") and len(input.shape) == 4 and input.dtype == tf.float32)
        if fits:
            return tiled_max_pool(input, size)
        return plain(input, ksize, strides, padding, data_format, name)

    tf.nn.max_pool = patched
    try:
        yield
    finally:
        tf.nn.max_pool = plain
