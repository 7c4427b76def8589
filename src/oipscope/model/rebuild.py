"""A sub-model computed on another canvas size or in another precision, with the same weights.

:func:`rebuilt` copies a functional (sub-)model layer by layer onto an image input of
another height and width (a fully convolutional path computes on any size) and/or with
a Keras mixed-precision policy (float32 weights, bfloat16 or float16 arithmetic). Its
output is cast back to float32, so the ascent's image, update and criteria stay float32.
The copy is built once per (model, size, precision); it takes the original's weights on
every call, so it follows further training.

Example::

    >>> low = rebuilt(sub, (128, 128), "bfloat16")   # doctest: +SKIP
    >>> low.outputs[0].dtype
    'float32'
"""

from __future__ import annotations

import weakref
from typing import Any

from ..config import PRECISIONS
from ..errors import ModelError

__all__ = ["PRECISIONS", "COMPUTE_PRECISIONS", "rebuilt"]

COMPUTE_PRECISIONS: dict[str, str | None] = {"float32": None, "bfloat16": "mixed_bfloat16",
                                            "float16": "mixed_float16"}
"""Each precision's Keras dtype policy (None: the layers' own, float32 for ordinary models)."""

_REBUILT: "weakref.WeakKeyDictionary[Any, dict]" = weakref.WeakKeyDictionary()


def rebuilt(model, size: tuple[int, int] | None = None, precision: str = "float32"):
    """``model`` on an image input of ``size`` (height, width; None: its own) computing in ``precision``.

    Returns ``model`` itself when nothing changes.

    Raises:
        ModelError: the model is not functional/Sequential, or a layer cannot be copied or
            does not compute at that size.
    """
    import keras

    from .loading import _flat_graph, _with_copied_weights

    if precision not in COMPUTE_PRECISIONS:
        raise ModelError(f"precision must be one of {', '.join(COMPUTE_PRECISIONS)}, got {precision!r}")
    shape = tuple(model.inputs[0].shape)
    same_size = size is None or tuple(shape[1:3]) == tuple(size)
    if same_size and precision == "float32":
        return model
    key = (None if same_size else tuple(int(s) for s in size), precision)
    per_model = _REBUILT.setdefault(model, {})
    if key not in per_model:
        batch_shape = shape if key[0] is None else (None, *key[0], shape[3])
        try:
            flat, pairs = _flat_graph(model, batch_shape, COMPUTE_PRECISIONS[precision])
        except (ValueError, TypeError) as exc:
            raise ModelError(f"model {model.name!r} cannot be computed on {batch_shape[1]}x{batch_shape[2]} "
                             f"images in {precision} ({exc}); use --size {shape[1]} or --precision float32") from None
        if any(str(out.dtype) != "float32" for out in flat.outputs):
            outputs = [keras.ops.cast(out, "float32") for out in flat.outputs]
            flat = keras.Model(flat.inputs, outputs[0] if len(outputs) == 1 else outputs, name=flat.name)
        per_model[key] = (flat, pairs)
    return _with_copied_weights(per_model[key])
