"""The ReLU warm-up for dead units: gradient through a ReLU that is off, while it would turn it on.

A map whose ReLU is off at every position has zero gradient, so an ascent cannot
start. During a warm-up (Lucid's "redirected ReLU", Xplique's warm-up), for a
warming element whose ordinary ReLU gradient is zero everywhere, the gradient is
let through to the units below zero where it pushes them up; once anything
responds, the ordinary gradient takes over.

:func:`redirected_relu` is a context manager used only while a compiled loop is
traced: Keras' TensorFlow backend computes every plain ReLU (``activation="relu"``,
``Activation("relu")``, ``ReLU()``) with ``tf.nn.relu``, which is swapped for the
redirected one for that trace; the finished graph carries the new gradient.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

__all__ = ["redirected_relu"]


def _redirected(plain, warm):
    import tensorflow as tf

    @tf.custom_gradient
    def relu(features):
        out = plain(features)

        def grad(upstream):
            ordinary = tf.where(features > 0, upstream, tf.zeros_like(upstream))
            if len(features.shape) < 2:
                return ordinary
            # in an ascent, upstream > 0 asks the unit to grow: let that through where it is off
            redirected = tf.where(tf.logical_and(features <= 0, upstream < 0), tf.zeros_like(upstream), upstream)
            axes = list(range(1, len(features.shape)))
            stuck = tf.equal(tf.reduce_max(tf.abs(ordinary), axis=axes), 0.0)
            use = tf.logical_and(stuck, warm)
            use = tf.reshape(use, [-1] + [1] * len(axes))
            return tf.where(use, redirected, ordinary)

        return out, grad

    def patched(features, name=None):
        return relu(features)

    return patched


@contextlib.contextmanager
def redirected_relu(warm) -> Iterator[None]:
    """While tracing inside: ReLUs of elements with ``warm[b]`` true pass gradient that wakes them.

    Args:
        warm: (B,) bool tensor, the elements in their warm-up steps.
    """
    import tensorflow as tf

    plain = tf.nn.relu
    tf.nn.relu = _redirected(plain, warm)
    try:
        yield
    finally:
        tf.nn.relu = plain
