"""How many images a pass through a model may take at once within a memory budget.

Every pass that pushes images through a model (the ascent, precursor scoring, the
measure of OIPs, dataset examples, activations, evoked classes) sizes its batches
with :func:`batch_for_budget`, from the bytes one image costs:

- a forward pass keeps only the tensors still to be read: about the largest layer's
  input and output at once (:func:`forward_bytes_per_image`);
- a gradient pass keeps, for the backward pass, every layer's output that is not an
  elementwise function of another (a BatchNormalization or an activation after a
  convolution is fused into it or needs no copy of its own), plus the working
  tensors of one layer (:func:`gradient_bytes_per_image`).

The factors were fitted to the peak resident memory of TensorFlow 2.21 on a CPU
(``bench/bench_memory.py``): per image, a forward pass took 29 MB on VGG16 up to
``block3_conv3`` (largest layer input + output: 24.5 MB) and 15 MB on MobileNetV2 up
to ``out_relu`` (9.3 MB); a gradient pass 61 MB (kept outputs: 50.5 MB) and 29 MB
(26.3 MB). The estimates lie 5-50 % above those.

Example:
    >>> import keras
    >>> model = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Conv2D(8, 3)])
    >>> batch_for_budget(model, 1.0) > batch_for_budget(model, 1.0, gradient=True)
    True
"""

from __future__ import annotations

__all__ = ["forward_bytes_per_image", "gradient_bytes_per_image", "batch_for_budget"]

FORWARD_FACTOR = 1.75  # × the largest (inputs + output) of one layer
GRADIENT_FACTOR = 1.25  # × the outputs a backward pass keeps ...
GRADIENT_WORK = 0.5  # ... + this × the largest (inputs + output) of one layer
_FLOAT_BYTES = 4
# layers whose output the backward pass needs no copy of: elementwise after the layer before
# (fused into it, or differentiated from their input alone), or no layer at all
_NOT_KEPT = frozenset({
    "InputLayer", "BatchNormalization", "Activation", "ReLU", "LeakyReLU", "ELU", "PReLU", "Softmax",
    "ZeroPadding2D", "Dropout", "SpatialDropout2D", "GaussianNoise", "GaussianDropout", "Rescaling",
    "Normalization", "Identity", "LayerNormalization",
})


def _elements(tensor) -> int:
    n = 1
    for d in tuple(tensor.shape)[1:]:
        n *= int(d or 1)
    return n


def _as_list(tensors) -> list:
    return list(tensors) if isinstance(tensors, (list, tuple)) else [tensors]


def _layer_sizes(model) -> list[tuple[str, int, int]]:
    """(class name, input elements, output elements) per layer of ``model`` (one image)."""
    sizes = []
    for layer in model.layers:
        try:
            outputs = _as_list(layer.output)
            inputs = [] if type(layer).__name__ == "InputLayer" else _as_list(layer.input)
            sizes.append((type(layer).__name__, sum(_elements(t) for t in inputs),
                          sum(_elements(t) for t in outputs)))
        except (AttributeError, ValueError, TypeError):  # a layer not called in this graph
            continue
    return sizes


def _largest_step(sizes: list[tuple[str, int, int]]) -> int:
    return max((inputs + outputs for _, inputs, outputs in sizes), default=0)


def forward_bytes_per_image(model) -> int:
    """Bytes one image adds to the peak of a forward pass through ``model`` (a Keras model)."""
    return int(FORWARD_FACTOR * _FLOAT_BYTES * _largest_step(_layer_sizes(model)))


def gradient_bytes_per_image(model) -> int:
    """Bytes one image adds to the peak of a forward and backward pass through ``model``."""
    sizes = _layer_sizes(model)
    kept = sum(outputs for name, _, outputs in sizes if name not in _NOT_KEPT)
    return int(_FLOAT_BYTES * (GRADIENT_FACTOR * kept + GRADIENT_WORK * _largest_step(sizes)))


def batch_for_budget(model, budget_mb: float, *, gradient: bool = False, extra_bytes: int = 0,
                     limit: int | None = None) -> int:
    """The most images one pass through ``model`` may take in ``budget_mb`` MiB (at least 1).

    Args:
        model: the Keras model the images go through (a sub-model up to a layer).
        budget_mb: the memory budget (``Execution.memory_budget_mb``).
        gradient: a forward and backward pass (the ascent) rather than a forward pass.
        extra_bytes: what each image costs besides the pass (snapshots, histories, results).
        limit: an upper bound, e.g. the number of images there are.
    """
    per = (gradient_bytes_per_image if gradient else forward_bytes_per_image)(model) + int(extra_bytes)
    batch = max(1, int(budget_mb * 2**20 // max(1, per)))
    return batch if limit is None else max(1, min(batch, int(limit)))
