"""OIPs measured against the data: superstimulus ratios, the classes they evoke, and both at once.

:func:`superstimulus_ratio` compares an OIP's activation with the best real image of its map
(:class:`~oipscope.analysis.examples.DatasetExamples`), :func:`evoked_classes` says which class the
network sees in an OIP, and :func:`assess_oips` puts both into a result.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..config import Execution
from ..errors import ConfigError
from ..model.memory import batch_for_budget
from ..model.subject import Subject, as_subject

if TYPE_CHECKING:
    from .examples import DatasetExamples

__all__ = ["superstimulus_ratio", "evoked_classes", "assess_oips"]


def _check_positive(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ConfigError(f"{name} must be an integer >= 1, got {value!r}")


def superstimulus_ratio(oip_activation, examples: DatasetExamples, map_indices=None) -> np.ndarray:
    """How much more an OIP drives each map than the best dataset image does.

    Args:
        oip_activation: (n_maps,) mean activation of each map's OIP.
        examples: the layer's dataset examples; the denominator is
            ``top_values[:, 0]``, the largest mean activation over the dataset.
        map_indices: the map of each value of ``oip_activation``; default all
            maps in order.

    Returns:
        (n_maps,) ratios; NaN (not inf) for maps whose best dataset mean is <= 0
        (silent on the data).
    """
    oip = np.asarray(oip_activation, dtype=np.float64).reshape(-1)
    if map_indices is None:
        if oip.size != examples.n_maps:
            raise ConfigError(
                f"oip_activation has {oip.size} values but layer {examples.layer_name!r} "
                f"has {examples.n_maps} maps; give one value per map or pass map_indices"
            )
        map_indices = np.arange(examples.n_maps)
    map_indices = np.asarray(map_indices, dtype=np.int64).reshape(-1)
    if map_indices.size != oip.size:
        raise ConfigError(f"{oip.size} activations for {map_indices.size} map indices; give one index per value")
    best = examples.top_values[map_indices, 0].astype(np.float64)
    ratio = np.full(oip.shape, np.nan)
    np.divide(oip, best, out=ratio, where=best > 0)
    return ratio


def _output_activation(model) -> str:
    activation = getattr(model.layers[-1], "activation", None)
    return getattr(activation, "__name__", "") if activation is not None else ""


def evoked_classes(model, images, batch_size: int | None = None, *, resize: bool = False,
                   execution: Execution = Execution()) -> np.ndarray:
    """Class probabilities the full model assigns to (OIP) images.

    The images are fed as they are (they must already be in the model's input
    encoding, as OIPs from the engine are). The output is turned into probabilities by the last
    layer's activation: ``softmax`` is kept, a linear output gets a softmax, and
    ``sigmoid`` outputs (the series' original net) are divided by their sum, so
    each row sums to 1 (a relative "how much of each class", not a calibrated
    probability). Other outputs get a softmax unless they already are
    non-negative rows summing to 1.

    Args:
        model: the full classifier (a Keras model or a :class:`~oipscope.model.subject.Subject`).
        images: (N, H, W, C) float images in the model's input encoding (as OIPs are).
        batch_size: images per forward pass; None: as many as ``execution.memory_budget_mb`` allows.
        resize: images of another height and width (OIPs grown on a canvas) are resized to the
            model's; else they are refused.
        execution: its memory budget sizes the batches when ``batch_size`` is None.

    Returns:
        (N, n_classes) float32, rows summing to 1.
    """
    import tensorflow as tf

    _check_positive("batch_size", 1 if batch_size is None else batch_size)
    subject = as_subject(model)
    model, input_shape = subject.model, subject.input_shape
    images = np.asarray(images)
    other_size = images.ndim == 4 and images.shape[3] == input_shape[2] and tuple(images.shape[1:3]) != input_shape[:2]
    if resize and other_size:
        from ..search.starts import _resize  # OIPs grown on a smaller canvas, shown at the model's size

        images = _resize(images.astype(np.float32), *input_shape[:2])
    if images.ndim != 4 or tuple(images.shape[1:]) != input_shape:
        raise ConfigError(
            f"images must be encoded model inputs (standardized for the series' CNN) "
            f"(N, H, W, C) = (N, {', '.join(map(str, input_shape))}), "
            f"got {images.shape}"
        )
    if batch_size is None:
        batch_size = batch_for_budget(model, execution.memory_budget_mb, extra_bytes=images[0].nbytes,
                                      limit=len(images))
    outputs = np.concatenate([
        np.asarray(model(tf.convert_to_tensor(images[start:start + batch_size], tf.float32), training=False))
        for start in range(0, len(images), batch_size)
    ]).astype(np.float64)
    if outputs.ndim != 2:
        raise ConfigError(f"model output has shape {outputs.shape}; evoked_classes needs (N, n_classes)")
    name = _output_activation(model)
    if name == "sigmoid":
        sums = outputs.sum(axis=1, keepdims=True)
        probs = np.divide(outputs, sums, out=np.full_like(outputs, 1.0 / outputs.shape[1]), where=sums > 0)
    elif name == "softmax" or (
        name != "linear" and outputs.min() >= 0 and np.allclose(outputs.sum(axis=1), 1.0, atol=1e-4)
    ):
        probs = outputs
    else:
        shifted = np.exp(outputs - outputs.max(axis=1, keepdims=True))
        probs = shifted / shifted.sum(axis=1, keepdims=True)
    return probs.astype(np.float32)


def _classifies(subject: Subject) -> bool:
    """Whether the model ends in one (N, classes) output, whose classes an OIP can evoke."""
    outputs = subject.model.outputs
    return len(outputs) == 1 and len(outputs[0].shape) == 2 and (outputs[0].shape[-1] or 0) >= 2


def assess_oips(model, result, examples: DatasetExamples, *, execution: Execution = Execution()):
    """Return ``result`` with each OIP's superstimulus ratio and evoked class probabilities
    (None for a model without a classifier output, such as a base built with ``include_top=False``).

    Args:
        model: the full model (or :class:`~oipscope.model.subject.Subject`), to see which
            class each OIP evokes.
        result: an :class:`~oipscope.search.results.OipResult` for the layer of ``examples``.
        examples: dataset examples of the same layer (all its maps).
        execution: its memory budget sizes the batches of the evoked classes.
    """
    import dataclasses
    import warnings

    from ..search.results import OipResult

    if isinstance(model, OipResult) and not isinstance(result, OipResult):  # the order before 0.2
        warnings.warn("assess_oips(result, model, examples) is now assess_oips(model, result, examples), "
                      "like every other function", DeprecationWarning, stacklevel=2)
        model, result = result, model

    if examples.layer_name != result.layer_name:
        raise ConfigError(
            f"dataset examples are of layer {examples.layer_name!r}, the OIPs of {result.layer_name!r}; "
            "compute examples for the same layer"
        )
    ratios = superstimulus_ratio([oip.activation for oip in result.maps], examples,
                                 [oip.map_index for oip in result.maps])
    subject = as_subject(model, result.encoding)
    if _classifies(subject):
        probabilities = evoked_classes(subject, np.stack([oip.image for oip in result.maps]), resize=True,
                                       execution=execution)
    else:  # a feature extractor (e.g. include_top=False): no classes to evoke
        probabilities = [None] * len(result.maps)
    maps = tuple(
        dataclasses.replace(oip, superstimulus_ratio=float(ratio),
                            evoked_probabilities=None if probs is None else probs.astype(np.float32))
        for oip, ratio, probs in zip(result.maps, ratios, probabilities)
    )
    return dataclasses.replace(result, maps=maps)
