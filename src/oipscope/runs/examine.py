"""A finished layer meets the data: dataset examples, OIPs assessed against them, silent maps woken.

:func:`examine_layer` streams an image set through the layer once (:func:`~oipscope.analysis.examples.dataset_examples`),
retries OIPs that stayed silent from the images that drive their maps (:func:`wake_from_data`) and assesses the
OIPs against the examples; :func:`dataset_fits` and the image-set conversion check what is given first.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ..analysis.examples import DatasetExamples, dataset_examples

from ..analysis.assessment import assess_oips
from ..config import Execution
from ..data.datasets import Dataset
from ..errors import ConfigError
from ..model.subject import Subject, as_subject
from ..search.pipeline import retry_from
from ..search.results import OipResult
from ..search.status import needs_retry
from .phases import phase

__all__ = ["dataset_fits", "image_set", "wake_from_data", "examine_layer"]


def dataset_fits(subject: Subject, dataset) -> bool:
    """Whether a dataset's (or image set's) images have the model's input size and channel count."""
    height, width, channels = subject.input_shape
    if hasattr(dataset, "input_shape"):  # an ImageSet converts its images to the shape it was opened for
        return tuple(dataset.input_shape) == (height, width, channels)
    images = dataset.train.images
    image_channels = images.shape[3] if images.ndim == 4 else 1
    return images.shape[1:3] == (height, width) and image_channels == channels


def image_set(images, subject: Subject):
    """An ImageSet from an ImageSet, or from a Dataset (its training split)."""
    if images is None or hasattr(images, "batches"):
        return images
    if isinstance(images, Dataset):
        from ..data.imagesets import array_images

        if not dataset_fits(subject, images):
            raise ConfigError(f"{images.name} images do not fit the input of model {subject.name!r}; "
                              "give matching images or none")
        return array_images(images.train.images, subject.input_shape, labels=images.train.labels,
                            class_names=images.class_names, name=images.name)
    raise ConfigError(f"expected an ImageSet (oipscope.data.imagesets.open_images) or a Dataset, "
                      f"got {type(images).__name__}")


def wake_from_data(model, result: OipResult, examples: DatasetExamples, images, *,
                   execution: Execution = Execution()) -> OipResult:
    """Give silent OIPs of maps that fire on the data one more ascent, from their top dataset images.

    Random starts, restarts and the pre-activation rescue can all miss a map
    that real images do drive (a max-pooling layer has no pre-activation to
    rescue with). Such a map's ``n``-th silent OIP starts from its ``n``-th best
    dataset image; its ``start`` becomes ``"data#<dataset index>"``. Maps that
    no dataset image drives stay silent.

    Args:
        model: the model (or :class:`~oipscope.model.subject.Subject`).
        result: the layer's OIPs.
        examples: dataset examples of the same layer.
        images: the images the examples index: an ImageSet or pixels (N, H, W[, C]).
    """
    positions, starts, labels = [], [], []
    seen: dict[int, int] = {}
    for position, oip in enumerate(result.maps):
        m = oip.map_index
        if not needs_retry(oip.status, oip.activation):
            continue
        rank = seen.get(m, 0)
        seen[m] = rank + 1
        if rank >= examples.k or not float(examples.top_values[m, rank]) > 0:
            continue
        index = int(examples.top_indices[m, rank])
        image = np.asarray(images[index], np.float32)
        positions.append(position)
        starts.append(image[..., np.newaxis] if image.ndim == 2 else image)
        labels.append(f"data#{index}")
    if not positions:
        return result
    return retry_from(model, result, positions, np.stack(starts), labels, execution=execution)


def examine_layer(model, result: OipResult, images,
                  on_progress: Callable[[int, int], None] | None = None, *,
                  wake: bool = True, execution: Execution = Execution()) -> tuple[OipResult, DatasetExamples]:
    """Dataset examples of the result's layer and the result, assessed against them.

    Args:
        model: the model (or :class:`~oipscope.model.subject.Subject`).
        result: the layer's OIPs.
        images: an :class:`~oipscope.data.imagesets.ImageSet` (streamed), or a
            :class:`~oipscope.data.datasets.Dataset` (its training split).
        on_progress: ``on_progress(done, total)`` in images.
        wake: first retry silent OIPs of maps that fire on the data from their top
            dataset images (:func:`wake_from_data`).
        execution: its memory budget sizes every pass's batches.
    """
    subject = as_subject(model, result.encoding)
    images = image_set(images, subject)
    n_classes = len(images.class_names) if images.class_names is not None else None
    with phase("examples"):
        examples = dataset_examples(subject, result.layer_name, images, on_progress=on_progress,
                                    n_classes=n_classes, execution=execution)
    with phase("assessment"):
        if wake:
            result = wake_from_data(subject, result, examples, images, execution=execution)
        return assess_oips(subject, result, examples, execution=execution), examples
