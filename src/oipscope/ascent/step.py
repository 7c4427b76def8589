"""One ascent step, shared by every loop: the value and gradient of an objective, and the
RMS-normalized update.

The pixel loop (:mod:`.pixels`), the parameter loop (:mod:`.parameters`) and Deep Dream
(:mod:`oipscope.analysis.dream`) differ in what they climb (pixels or parameters), how they
stop and what they record; the step itself is the series' one: the gradient of each batch
element's objective, divided by its own root mean square, so every element moves by the same
amount whatever the scale of its activation. These functions are traced inside the loops'
compiled graphs.

Example::

    value, grad = value_and_gradient(lambda x: objective(x), x)
    x = x + epsilon * normalized(grad, rms(grad))
"""

from __future__ import annotations

from typing import Callable

__all__ = ["value_and_gradient", "rms", "normalized", "RMS_FLOOR"]

RMS_FLOOR = 1e-7
"""Added to the gradient's RMS before dividing: a zero gradient gives a zero step, not NaN."""


def value_and_gradient(value_of: Callable, x):
    """Each element's objective value ``value_of(x)`` (shape ``(B,)``) and its gradient by ``x``.

    The elements are independent, so the gradient of the summed values is every element's own.
    Only ``x`` is watched: no gradients of the model's weights are traced.
    """
    import tensorflow as tf

    with tf.GradientTape(watch_accessed_variables=False) as tape:
        tape.watch(x)
        value = value_of(x)
        total = tf.reduce_sum(value)
    return value, tape.gradient(total, x)


def rms(grad):
    """The root mean square of each element's gradient, shape ``(B,)``."""
    import tensorflow as tf

    return tf.sqrt(tf.reduce_mean(tf.square(grad), axis=list(range(1, grad.shape.rank))))


def normalized(grad, grad_rms):
    """The gradient divided by its element's RMS (``grad_rms``, from :func:`rms`): a step of unit RMS."""
    import tensorflow as tf

    return grad / tf.reshape(grad_rms + RMS_FLOOR, [-1] + [1] * (grad.shape.rank - 1))
