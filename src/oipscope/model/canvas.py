"""The canvas: the image size OIPs of a convolutional layer are grown at.

A layer whose path from the input is convolutional (no dense layer, flattening or
global pooling before it) computes on an image of any size, so its OIPs can be grown
on a smaller canvas than the model's input: a 128 px canvas costs a third of a 224 px
one. By default (:func:`default_canvas`) a model of up to 160 px keeps its own size and
a larger one gets 128 px, as Lucid did for 224 px models; ``--size N`` chooses. Layers
whose path is not convolutional (dense heads, class OIPs) always use the model's size.

Example::

    >>> default_canvas(224), default_canvas(28)
    (128, 28)
"""

from __future__ import annotations

from ..errors import ConfigError

__all__ = ["DEFAULT_CANVAS", "LARGEST_OWN_SIZE", "default_canvas", "convolutional_path", "canvas_size", "check_canvas",
           "layer_canvas"]

DEFAULT_CANVAS = 128
"""The canvas of a model larger than :data:`LARGEST_OWN_SIZE` px."""
LARGEST_OWN_SIZE = 160
"""The largest model input (its longer side) whose own size is the default canvas."""

# layers that fix the spatial size or leave the image's grid
_NOT_SPATIAL = ("Flatten", "Reshape", "Dense", "EinsumDense", "Permute", "RepeatVector", "Lambda",
                "GlobalAveragePooling2D", "GlobalMaxPooling2D", "GlobalAveragePooling1D", "GlobalMaxPooling1D")


def default_canvas(side: int) -> int:
    """The default canvas of a model whose input's longer side is ``side`` pixels."""
    return side if side <= LARGEST_OWN_SIZE else DEFAULT_CANVAS


def convolutional_path(sub) -> bool:
    """Whether every layer from the input to the sub-model's output keeps the image's grid
    (4-D outputs; no dense, flattening, reshaping or global pooling layer)."""
    for layer in sub.layers:
        if type(layer).__name__ == "InputLayer":
            continue
        if type(layer).__name__ in _NOT_SPATIAL:
            return False
        try:
            outputs = layer.output if isinstance(layer.output, (list, tuple)) else [layer.output]
        except (AttributeError, ValueError):  # a layer used more than once: no single output
            return False
        if any(len(out.shape) != 4 for out in outputs):
            return False
    return len(sub.outputs) == 1 and len(sub.outputs[0].shape) == 4


def canvas_size(canvas: int | None, input_shape: tuple[int, int, int], sub) -> tuple[int, int]:
    """The (height, width) OIPs of ``sub``'s layer are grown at.

    Args:
        canvas: ``OipConfig.canvas``: the canvas's longer side in pixels; None: :func:`default_canvas`.
        input_shape: the model's (height, width, channels).
        sub: the sub-model the ascent climbs.

    Returns:
        The model's own size where the layer's path is not convolutional; else the canvas,
        with the model's aspect ratio.
    """
    height, width = int(input_shape[0]), int(input_shape[1])
    side = max(height, width)
    wanted = default_canvas(side) if canvas is None else int(canvas)
    if wanted == side or not convolutional_path(sub):
        return height, width
    return max(1, round(height * wanted / side)), max(1, round(width * wanted / side))


def check_canvas(sub_on_canvas, size: tuple[int, int], side: int) -> None:
    """Refuse a canvas on which the layer has no output pixel left.

    Raises:
        ConfigError: the layer's output on the canvas is empty.
    """
    out = tuple(sub_on_canvas.outputs[0].shape[1:3])
    if any(d is not None and int(d) < 1 for d in out):
        raise ConfigError(f"the layer has no output on a {size[0]}x{size[1]} canvas; give a larger --size "
                          f"(the model's own is {side} px)")


def layer_canvas(subject, layer_name: str, config) -> tuple[int, int] | None:
    """The canvas a layer's OIPs are grown on for ``config``, or None where it is the model's own size."""
    sub = subject.target_submodel(layer_name, config.objective)
    size = canvas_size(config.canvas, subject.input_shape, sub)
    return None if size == tuple(subject.input_shape[:2]) else size
