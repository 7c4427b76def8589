"""Activations of real images: any layer's output for dataset images or image files.

Images go in as pixels (uint8, or float 0..255) and are encoded with the
model's input encoding (:mod:`oipscope.model.encoding`) exactly as in training,
so the activations are those the trained network sees (parts IV–VI of the
series: the maps of one digit, several digits side by side, dense layers).
"""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np

from ..data.datasets import Split
from ..config import Execution
from ..errors import ConfigError
from ..data.imagefiles import open_image_file
from ..model.loading import output_submodel
from ..model.memory import batch_for_budget
from ..model.subject import as_subject

__all__ = [
    "layer_submodel",
    "as_image_batch",
    "layer_activations",
    "select_images",
    "load_image_file",
    "top_maps",
]


def layer_submodel(model, layer_name: str):
    """Sub-model from the model's image input to the output of any layer.

    Unlike :func:`oipscope.model.loading.feature_submodel` this accepts layers without
    feature maps too (Flatten, Dense).

    Raises:
        ModelError: the model has no single fixed-size image input.
        LayerError: no layer called ``layer_name`` (the message lists close names).
    """
    return output_submodel(model, layer_name, "act_")


def as_image_batch(images, input_shape: tuple[int, int, int]) -> np.ndarray:
    """Check raw images against a model input and view them as NHWC (no copy, no scaling).

    Args:
        images: (N, H, W) or (N, H, W, C) array; a single-channel (N, H, W)
            batch gets a channel axis.
        input_shape: (H, W, C) of the model input.

    Raises:
        ConfigError: wrong rank, empty batch or a shape that does not fit the model.
    """
    images = np.asarray(images)
    if images.ndim == 3 and input_shape[2] == 1:
        images = images[..., np.newaxis]
    if images.ndim != 4:
        raise ConfigError(
            f"images must have shape (N, H, W) or (N, H, W, C), got {images.shape}; "
            "wrap a single image in a batch of one"
        )
    if len(images) == 0:
        raise ConfigError("images is an empty batch; give at least one image")
    if tuple(images.shape[1:]) != tuple(input_shape):
        raise ConfigError(
            f"images have shape {tuple(images.shape[1:])} but the model expects {tuple(input_shape)}; "
            "resize them (load_image_file does) or use a matching model"
        )
    return images


def _check_batch_size(batch_size: int) -> None:
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ConfigError(f"batch_size must be an integer >= 1, got {batch_size!r}")


def layer_activations(model, layer_name: str, images, batch_size: int | None = None, *,
                      execution: Execution = Execution()) -> np.ndarray:
    """Activations of layer ``layer_name`` for raw input images.

    Args:
        model: a :class:`~oipscope.model.subject.Subject`, or a Keras model with one image input.
        layer_name: any layer (conv, pooling, flatten, dense).
        images: (N, H, W) or (N, H, W, C) pixels, uint8 or float 0..255; encoded
            with the model's input encoding as in training.
        batch_size: images per forward pass; None: as many as ``execution.memory_budget_mb`` allows
            (each image's activations are kept, so they count too).
        execution: its memory budget sizes the batches when ``batch_size`` is None.

    Returns:
        float32 array (N, *layer output shape), e.g. (N, 11, 11, 64) for ``Conv2D_2``
        of the series' CNN or (N, 70) for ``Dense_1``.
    """
    _check_batch_size(1 if batch_size is None else batch_size)
    subject = as_subject(model)
    images = as_image_batch(images, subject.input_shape)
    submodel = layer_submodel(subject.model, layer_name)
    if batch_size is None:  # the encoded batch, and the activations kept and concatenated
        outputs = int(np.prod([int(d or 1) for d in submodel.output.shape[1:]]))
        batch_size = batch_for_budget(submodel, execution.memory_budget_mb,
                                      extra_bytes=4 * (images[0].size + 2 * outputs), limit=len(images))
    parts = [  # eager calls: no tf.function tracing per layer for a handful of images
        np.asarray(submodel(subject.encode(images[start:start + batch_size]), training=False))
        for start in range(0, len(images), batch_size)
    ]
    return np.concatenate(parts, axis=0)


def select_images(
    split: Split,
    *,
    indices: Sequence[int] | None = None,
    label: int | None = None,
    count: int = 6,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pick images of a dataset split (or an image set) by index, by class, or at random.

    Args:
        split: a :class:`oipscope.data.datasets.Split` or an :class:`~oipscope.data.imagesets.ImageSet`.
        indices: dataset indices (takes precedence; ``count`` is ignored).
        label: a class; the first ``count`` images of it in dataset order
            (fewer if the class has fewer).
        count: how many images for ``label`` or for a random pick.
        seed: seed of the random pick used when neither ``indices`` nor ``label`` is given.

    Returns:
        (images, labels, indices) of the chosen images.

    Raises:
        ConfigError: both ``indices`` and ``label``, an index or class that does
            not exist (the message names the valid range), or ``count`` < 1.
    """
    is_set = hasattr(split, "batches")
    n_images = len(split) if is_set else len(split.images)
    all_labels = split.labels
    if indices is not None and label is not None:
        raise ConfigError("give either indices or label, not both")
    if indices is not None:
        chosen = np.asarray(indices, dtype=np.int64).reshape(-1)
        if chosen.size == 0:
            raise ConfigError("indices is empty; give at least one dataset index")
        bad = chosen[(chosen < 0) | (chosen >= n_images)]
        if bad.size:
            raise ConfigError(
                f"image index {int(bad[0])} does not exist: valid indices are 0..{n_images - 1}"
            )
    else:
        if not isinstance(count, (int, np.integer)) or count < 1:
            raise ConfigError(f"count must be an integer >= 1, got {count!r}")
        if label is not None:
            if all_labels is None:
                raise ConfigError(f"{getattr(split, 'name', 'these images')} have no labels; "
                                  "choose images by --index instead of by class")
            classes = np.unique(all_labels[all_labels >= 0])
            if int(label) not in set(classes.tolist()):
                raise ConfigError(
                    f"class {label!r} does not exist: valid classes are "
                    f"{int(classes.min())}..{int(classes.max())}"
                )
            chosen = np.flatnonzero(all_labels == int(label))[:count]
        else:
            rng = np.random.default_rng(seed)
            chosen = np.sort(rng.choice(n_images, size=min(count, n_images), replace=False))
    labels = all_labels[chosen] if all_labels is not None else np.full(len(chosen), -1, np.int64)
    if is_set:
        return np.stack([split[int(i)] for i in chosen]), labels, chosen
    return split.images[chosen], labels, chosen


def load_image_file(
    path: str | os.PathLike, input_shape: tuple[int, int, int], *, invert: bool = False
) -> np.ndarray:
    """Read a PNG/JPEG (any format Pillow reads) as a model input image.

    The image is converted to the model's channels (grayscale ``L`` for 1, ``RGB``
    for 3) and resized to (H, W) with Lanczos resampling.

    Args:
        path: the image file.
        input_shape: (H, W, C) of the model input, see :func:`oipscope.model.loading.image_input_shape`.
        invert: use ``255 - pixel``; MNIST digits are white on black, so a dark
            digit on white paper needs ``invert=True``.

    Returns:
        float32 array (H, W, C) with values in 0..255 (pixels, not encoded).

    Raises:
        DataError: the file is missing, not an image Pillow can read, or has more pixels than
            :func:`oipscope.data.imagefiles.max_image_pixels` (a JPEG is first decoded at a reduced scale).
        ConfigError: ``input_shape`` has other than 1 or 3 channels.
    """
    from PIL import Image

    height, width, channels = (int(v) for v in input_shape)
    if channels not in (1, 3):
        raise ConfigError(f"input_shape {tuple(input_shape)} has {channels} channels; 1 or 3 are supported")
    with open_image_file(path, needed=(width, height)) as image:
        image.load()
        converted = image.convert("L" if channels == 1 else "RGB")
    if converted.size != (width, height):
        converted = converted.resize((width, height), Image.Resampling.LANCZOS)
    pixels = np.clip(np.asarray(converted, dtype=np.float32), 0.0, 255.0).reshape(height, width, channels)
    return 255.0 - pixels if invert else pixels


def top_maps(activations, n: int = 10) -> list[tuple[int, float]]:
    """The ``n`` maps with the highest mean activation for one image.

    Args:
        activations: one image's layer output, (H, W, C) or (C,); a leading batch
            axis of size 1 is dropped.
        n: how many maps (fewer if the layer has fewer).

    Returns:
        [(map_index, mean_activation), ...] sorted by decreasing mean activation
        (ties by map index).
    """
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise ConfigError(f"n must be an integer >= 1, got {n!r}")
    values = np.asarray(activations, dtype=np.float64)
    if values.ndim in (2, 4):
        if values.shape[0] != 1:
            raise ConfigError(
                f"top_maps takes the activations of one image, got a batch of shape {values.shape}; "
                "pass activations[i]"
            )
        values = values[0]
    if values.ndim not in (1, 3):
        raise ConfigError(f"activations must have shape (H, W, C) or (C,), got {values.shape}")
    means = values.reshape(-1, values.shape[-1]).mean(axis=0)
    order = np.lexsort((np.arange(means.size), -means))[:n]
    return [(int(i), float(means[i])) for i in order]
