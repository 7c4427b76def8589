"""Dataset examples per map: which real images drive each feature map hardest.

:func:`dataset_examples` streams a dataset through a compiled forward pass in
batches and keeps only running statistics per map (top-k images, sums, maxima,
fire counts), so memory stays bounded by a few batches whatever the dataset
size. The results put an OIP in context (:mod:`oipscope.analysis.assessment`).
"""

from __future__ import annotations

import os
import weakref
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .activations import as_image_batch
from .assessment import _check_positive
from ..config import Execution
from ..model.encoding import InputEncoding
from ..model.memory import batch_for_budget
from ..errors import ConfigError, DataError, LayerError
from ..data.imagesets import finite_images
from ..files import atomic_write, read_saved_npz, reading_saved
from ..model.loading import get_layer
from ..model.receptive_field import ReceptiveField, receptive_field
from ..model.subject import as_subject

__all__ = [
    "DatasetExamples",
    "dataset_examples",
    "nearest_centroid_accuracy",
    "pattern_accuracy",
    "selectivity",
]

_ARRAY_FIELDS = (
    "top_indices", "top_values", "top_positions", "max_activation",
    "mean_activation", "fire_fraction", "class_histogram",
)


@dataclass(frozen=True, eq=False)
class DatasetExamples:
    """Per-map statistics of one layer over a dataset.

    Attributes:
        layer_name: the layer.
        k: top images kept per map (at most the number of images).
        top_indices: (n_maps, k) dataset indices of the images with the highest
            mean activation of the map, best first (ties by lower index).
        top_values: (n_maps, k) those mean activations (mean over the map's H×W).
        top_positions: (n_maps, k, 2) (row, col) of the map's strongest unit for
            each of those images; (0, 0) for layers without spatial axes.
        max_activation: (n_maps,) largest single unit over all images.
        mean_activation: (n_maps,) mean over all images and positions.
        fire_fraction: (n_maps,) fraction of images whose strongest unit is > 0.
        class_histogram: (n_maps, n_classes) labels of the ``hist_top`` images with
            the highest mean activation; images with mean activation <= 0 are not
            counted, so a silent map has an all-zero row.
        n_images: images streamed.
        hist_top: how many top images the histogram was built from.
        class_means: (n_maps, n_classes) the map's mean activation over the images of
            each class (NaN for a class without images): the map's class profile;
            None without labels.
        pattern_accuracy: accuracy of the nearest-class-pattern classifier on the
            vector of map means (the series' part VI): class centroids from the
            labelled images with even index, accuracy on those with odd index; NaN
            without labels.
        receptive_field: the receptive field of the layer's units in input pixels
            (:mod:`oipscope.model.receptive_field`), to show each example cropped to
            where its strongest unit looks; None where the units see the whole image
            (or in files written before it was recorded).
    """

    layer_name: str
    k: int
    top_indices: np.ndarray
    top_values: np.ndarray
    top_positions: np.ndarray
    max_activation: np.ndarray
    mean_activation: np.ndarray
    fire_fraction: np.ndarray
    class_histogram: np.ndarray
    n_images: int
    hist_top: int = 100
    class_means: np.ndarray | None = None
    pattern_accuracy: float = float("nan")
    receptive_field: ReceptiveField | None = None

    @property
    def n_maps(self) -> int:
        return int(self.top_indices.shape[0])

    @property
    def silent_maps(self) -> np.ndarray:
        """Indices of maps that fire (strongest unit > 0) on no image."""
        return np.flatnonzero(self.fire_fraction == 0)

    @property
    def live_maps(self) -> np.ndarray:
        """Indices of maps that fire on at least one image."""
        return np.flatnonzero(self.fire_fraction > 0)

    def to_dict(self) -> dict:
        """Plain dict of arrays and scalars (what :meth:`save` writes; the receptive field as its 8 integers);
        no class profile without labels, no receptive field where the units see the whole image."""
        data = {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}
        if self.receptive_field is not None:
            data["receptive_field"] = self.receptive_field.to_array()
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "DatasetExamples":
        """Inverse of :meth:`to_dict`; accepts 0-d arrays for the scalars."""
        optional = ("hist_top", "class_means", "pattern_accuracy", "receptive_field")
        missing = [f.name for f in fields(cls) if f.name not in data and f.name not in optional]
        if missing:
            raise DataError(f"dataset examples lack {', '.join(missing)}; recompute them with dataset_examples")
        return cls(
            layer_name=str(np.asarray(data["layer_name"])),
            k=int(data["k"]),
            n_images=int(data["n_images"]),
            hist_top=int(data.get("hist_top", 100)),
            class_means=np.asarray(data["class_means"]) if "class_means" in data else None,
            pattern_accuracy=float(data.get("pattern_accuracy", float("nan"))),
            receptive_field=_field(data.get("receptive_field")),
            **{name: np.asarray(data[name]) for name in _ARRAY_FIELDS},
        )

    def save(self, path: str | os.PathLike) -> Path:
        """Write an ``.npz`` file atomically (temporary file, then ``os.replace``)."""
        path = Path(path)
        arrays = {key: np.asarray(value) for key, value in self.to_dict().items()}
        atomic_write(path, lambda handle: np.savez(handle, **arrays))
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "DatasetExamples":
        """Read a file written by :meth:`save`.

        Raises:
            DataError: the file is missing, not an ``.npz`` file, or lacks fields.
        """
        path = Path(path)
        if not path.is_file():
            raise DataError(f"dataset examples file not found: {path}")
        content = read_saved_npz(path, "dataset examples")
        with reading_saved(path, "dataset examples"):  # wrong types or shapes of fields
            try:
                return cls.from_dict(content)
            except DataError as exc:
                raise DataError(f"{path}: {exc}") from exc


def _field(value) -> ReceptiveField | None:
    """A receptive field from :meth:`DatasetExamples.to_dict` (as it is) or a saved file (8 integers)."""
    if value is None or isinstance(value, ReceptiveField):
        return value
    return ReceptiveField.from_array(value)


_FORWARDS: "weakref.WeakKeyDictionary[Any, dict]" = weakref.WeakKeyDictionary()


def _cached_forward(model, key: tuple, build: Callable[[], Callable]) -> Callable:
    """The compiled forward stored for (model, key), built once so repeated calls do not retrace."""
    per_model = _FORWARDS.setdefault(model, {})
    if key not in per_model:
        per_model[key] = build()
    return per_model[key]


def _make_forward(submodel, input_shape: tuple[int, int, int], encoding: InputEncoding):
    """Compiled per-batch statistics: pixels float32 NHWC → (means, maxima, argmax) per image and map.

    Only (B, n_maps) arrays leave the graph, never the full activations.
    """
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec((None, *input_shape), tf.float32)], autograph=False)
    def forward(batch):
        out = submodel(encoding.encode(batch), training=False)
        if out.shape.rank == 2:
            out = out[:, tf.newaxis, tf.newaxis, :]
        n_maps = out.shape[-1]
        flat = tf.reshape(out, (tf.shape(out)[0], -1, n_maps))
        return (
            tf.reduce_mean(flat, axis=1),
            tf.reduce_max(flat, axis=1),
            tf.argmax(flat, axis=1, output_type=tf.int32),
        )

    return forward


def _order_keys(values: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """Strictly ordered int64 keys: larger value first, then lower index.

    The float32 bits are mapped to integers of the same order (and -0.0 to +0.0)
    and the index fills the low 32 bits, so ``argpartition`` on the keys picks
    exactly the same top set however the data were batched.
    """
    bits = (values.astype(np.float32) + np.float32(0.0)).view(np.int32).astype(np.int64)
    ordered = np.where(bits < 0, bits ^ 0x7FFFFFFF, bits)
    return (ordered << 32) + (0xFFFFFFFF - indices.astype(np.int64))


def _merge_top(keys: np.ndarray, extra: list[np.ndarray], size: int):
    """Keep the ``size`` largest keys per row (and the matching columns of ``extra``)."""
    if keys.shape[1] <= size:
        return keys, extra
    cut = keys.shape[1] - size
    keep = np.argpartition(keys, cut, axis=1)[:, cut:]
    return np.take_along_axis(keys, keep, axis=1), [
        np.take_along_axis(array, keep.reshape(keep.shape + (1,) * (array.ndim - 2)), axis=1) for array in extra
    ]


def _pixel_batches(images, batch_size: int):
    """(indices, float32 pixels) batches of an image set, or of an array of images (finite ones only)."""
    if hasattr(images, "batches"):
        yield from images.batches(batch_size)
        return
    for start in range(0, len(images), batch_size):
        batch = images[start:start + batch_size]
        finite = finite_images(batch)  # an image with NaN or inf pixels is left out, as image sets do
        yield np.arange(start, start + len(batch), dtype=np.int64)[finite], batch[finite].astype(np.float32)


def dataset_examples(
    model,
    layer_name: str,
    images,
    labels=None,
    k: int = 9,
    hist_top: int = 100,
    batch_size: int | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    *,
    n_classes: int | None = None,
    execution: Execution = Execution(),
) -> DatasetExamples:
    """Stream images through the model and collect per-map dataset examples.

    Args:
        model: a :class:`~oipscope.model.subject.Subject` or a Keras model with one image input.
        layer_name: a layer with feature maps (4-D output) or a dense layer
            (each unit is a 1×1 "map").
        images: an :class:`~oipscope.data.imagesets.ImageSet` (streamed batch by batch),
            or pixels (N, H, W) or (N, H, W, C), uint8 or float 0..255; each batch
            is encoded with the model's input encoding.
        labels: (N,) integer class labels (-1: unknown), optional; default the
            image set's labels. Without labels ``class_histogram`` has no columns.
        k: top images kept per map.
        hist_top: how many top images per map enter ``class_histogram``.
        batch_size: images per forward pass; memory is bounded by a few batches.
            None: as many as ``execution.memory_budget_mb`` allows
            (:func:`oipscope.model.memory.batch_for_budget`).
        on_progress: called as ``on_progress(done, total)`` after each batch.
        n_classes: histogram width; default ``max(labels) + 1``.
        execution: its memory budget sizes the batches when ``batch_size`` is None.

    Raises:
        ConfigError: bad k/hist_top/batch_size, images or labels that do not fit.
        LayerError: unknown layer or an output that is neither 4-D nor 2-D.
    """
    for name, value in (("k", k), ("hist_top", hist_top), ("batch_size", 1 if batch_size is None else batch_size)):
        _check_positive(name, value)
    subject = as_subject(model)
    input_shape = subject.input_shape
    if not hasattr(images, "batches"):
        images = as_image_batch(images, input_shape)
    elif tuple(images.input_shape) != tuple(input_shape):
        raise ConfigError(f"the image set converts to {tuple(images.input_shape)}, the model takes "
                          f"{tuple(input_shape)}; open it with the model's input shape")
    total = len(images)
    if total == 0:
        raise ConfigError("no images to stream; give at least one image")
    if labels is None:
        labels = getattr(images, "labels", None)
    if labels is not None:
        labels = np.asarray(labels).reshape(-1)
        if len(labels) != total:
            raise ConfigError(f"got {total} images but {len(labels)} labels; give one label per image")
        if not np.issubdtype(labels.dtype, np.integer) or labels.min() < -1:
            raise ConfigError(f"labels must be integers >= 0 (-1 for unknown), got dtype {labels.dtype} "
                              f"with minimum {labels.min()}")
        top_label = int(labels.max())
        n_classes = top_label + 1 if n_classes is None else int(n_classes)
        if n_classes <= top_label:
            raise ConfigError(f"n_classes={n_classes} but labels go up to {top_label}; raise n_classes")
    else:
        n_classes = 0

    out_shape = tuple(get_layer(subject.model, layer_name).output.shape)
    if len(out_shape) not in (2, 4):
        raise LayerError(
            f"layer {layer_name!r} has output shape {out_shape}; dataset examples need "
            "feature maps (N, H, W, C) or dense units (N, C)"
        )
    width = int(out_shape[2]) if len(out_shape) == 4 else 1
    n_maps = int(out_shape[-1])
    k, hist_top = min(int(k), total), min(int(hist_top), total)
    keep = max(k, hist_top)
    forward = _cached_forward(
        subject.model, ("examples", layer_name, subject.encoding),
        lambda: _make_forward(subject.output_submodel(layer_name, "act_"), input_shape, subject.encoding),
    )

    if batch_size is None:  # the pixels of this batch and the next (decoded meanwhile), encoded: ~3 copies
        batch_size = batch_for_budget(subject.output_submodel(layer_name, "act_"), execution.memory_budget_mb,
                                      extra_bytes=12 * int(np.prod(input_shape)), limit=total)
    top_keys = np.empty((n_maps, 0), np.int64)
    top_argmax = np.empty((n_maps, 0), np.int64)
    sums = np.zeros(n_maps, np.float64)
    maxima = np.full(n_maps, -np.inf, np.float64)
    fire_counts = np.zeros(n_maps, np.int64)
    streamed = 0
    class_sums = np.zeros((n_classes, n_maps), np.float64)  # class profiles, all labelled images
    class_counts = np.zeros(n_classes, np.int64)
    centroid_sums = np.zeros((n_classes, n_maps), np.float64)  # pattern classifier: even indices ...
    centroid_counts = np.zeros(n_classes, np.int64)
    held_out: list[tuple[np.ndarray, np.ndarray]] = []  # ... judged on the odd ones
    for batch_index, batch in _pixel_batches(images, batch_size):
        if len(batch) == 0:
            continue
        means, batch_max, argmax = (np.asarray(t) for t in forward(batch))
        sums += means.sum(axis=0, dtype=np.float64)
        maxima = np.maximum(maxima, batch_max.max(axis=0))
        fire_counts += (batch_max > 0).sum(axis=0)
        streamed += len(batch)
        if labels is not None:
            batch_labels = labels[batch_index]
            known = batch_labels >= 0
            np.add.at(class_sums, batch_labels[known], means[known])
            class_counts += np.bincount(batch_labels[known], minlength=n_classes)
            even = known & (batch_index % 2 == 0)
            np.add.at(centroid_sums, batch_labels[even], means[even])
            centroid_counts += np.bincount(batch_labels[even], minlength=n_classes)
            odd = known & (batch_index % 2 == 1)
            held_out.append((means[odd].astype(np.float32), batch_labels[odd]))
        keys = _order_keys(means.T, np.broadcast_to(batch_index, (n_maps, len(batch))))
        top_keys, (top_argmax,) = _merge_top(
            np.concatenate([top_keys, keys], axis=1),
            [np.concatenate([top_argmax, argmax.T.astype(np.int64)], axis=1)],
            keep,
        )
        if on_progress is not None:
            on_progress(int(batch_index[-1]) + 1, total)
    if streamed == 0:
        raise DataError(f"none of the {total} images could be read; check the image set")
    k, hist_top = min(k, streamed), min(hist_top, streamed)

    order = np.argsort(top_keys, axis=1)[:, ::-1]  # keys are unique per row
    top_keys = np.take_along_axis(top_keys, order, axis=1)
    top_argmax = np.take_along_axis(top_argmax, order, axis=1)
    top_indices = 0xFFFFFFFF - (top_keys & 0xFFFFFFFF)
    ordered = top_keys >> 32
    bits = np.where(ordered < 0, ordered ^ 0x7FFFFFFF, ordered).astype(np.int32)
    top_values = bits.view(np.float32)

    class_histogram = np.zeros((n_maps, n_classes), np.int64)
    if labels is not None:
        hist_values, hist_labels = top_values[:, :hist_top], labels[top_indices[:, :hist_top]]
        rows = np.broadcast_to(np.arange(n_maps)[:, None], hist_labels.shape)
        counted = (hist_values > 0) & (hist_labels >= 0)
        np.add.at(class_histogram, (rows[counted], hist_labels[counted]), 1)

    class_means = accuracy = None
    if labels is not None:
        with np.errstate(invalid="ignore", divide="ignore"):
            class_means = (class_sums / class_counts[:, None]).T.astype(np.float32)
            centroids = centroid_sums / centroid_counts[:, None]
        vectors = np.concatenate([v for v, _ in held_out]) if held_out else np.zeros((0, n_maps), np.float32)
        targets = np.concatenate([t for _, t in held_out]) if held_out else np.zeros(0, np.int64)
        accuracy = nearest_centroid_accuracy(centroids, vectors, targets)

    positions = np.stack([top_argmax[:, :k] // width, top_argmax[:, :k] % width], axis=-1)
    return DatasetExamples(
        layer_name=layer_name,
        k=k,
        top_indices=top_indices[:, :k].astype(np.int64),
        top_values=top_values[:, :k].astype(np.float32),
        top_positions=positions.astype(np.int64),
        max_activation=maxima.astype(np.float32),
        mean_activation=(sums / streamed).astype(np.float32),
        fire_fraction=(fire_counts / streamed).astype(np.float64),
        class_histogram=class_histogram,
        n_images=streamed,
        hist_top=hist_top,
        class_means=class_means,
        pattern_accuracy=float("nan") if accuracy is None else accuracy,
        receptive_field=receptive_field(subject.model, layer_name) if len(out_shape) == 4 else None,
    )


def pattern_accuracy(model, layer_name: str, images, labels=None, batch_size: int | None = None) -> float:
    """How well a layer's activation patterns alone tell the classes apart (the series' part VI).

    The accuracy of a nearest-class-pattern classifier on the vector of map means,
    class centroids from the labelled images with even index, tested on those with odd
    index; one streamed pass (:func:`dataset_examples` computes it alongside the
    examples, as ``DatasetExamples.pattern_accuracy``).

    Returns:
        The accuracy in [0, 1]; NaN for images without labels.
    """
    return dataset_examples(model, layer_name, images, labels, batch_size=batch_size).pattern_accuracy


def nearest_centroid_accuracy(centroids: np.ndarray, vectors: np.ndarray, labels: np.ndarray) -> float:
    """Share of ``vectors`` whose nearest class centroid (Euclidean) is their own class.

    Args:
        centroids: (n_classes, n_features); rows of classes without training images
            are NaN and never chosen.
        vectors: (N, n_features) activation patterns to classify.
        labels: (N,) their classes.

    Returns:
        The accuracy in [0, 1]; NaN when there is nothing to classify or no centroid.
    """
    centroids = np.asarray(centroids, np.float64)
    vectors = np.asarray(vectors, np.float64)
    labels = np.asarray(labels).reshape(-1)
    usable = np.all(np.isfinite(centroids), axis=1)
    if len(vectors) == 0 or not usable.any():
        return float("nan")
    distances = (np.sum(vectors**2, axis=1)[:, None] - 2 * vectors @ centroids[usable].T
                 + np.sum(centroids[usable] ** 2, axis=1)[None, :])
    predicted = np.flatnonzero(usable)[np.argmin(distances, axis=1)]
    return float(np.mean(predicted == labels))


def selectivity(class_means: np.ndarray) -> np.ndarray:
    """How much each map prefers one class: (best - mean of the others) / (best + mean of the others).

    Computed on the class profile (``DatasetExamples.class_means``, (n_maps, n_classes));
    a profile with negative means (a layer without ReLU) is first shifted so that its
    lowest class is 0. 1 means the map responds to one class only, 0 to all classes
    alike; NaN for a map that is 0 everywhere (silent).
    """
    profile = np.asarray(class_means, np.float64)
    profile = profile - np.minimum(np.nanmin(profile, axis=1, keepdims=True), 0.0)
    best = np.nanmax(profile, axis=1)
    others = (np.nansum(profile, axis=1) - best) / np.maximum(np.sum(np.isfinite(profile), axis=1) - 1, 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(best + others > 0, (best - others) / (best + others), np.nan)


# what OIPs are measured by against these examples; importable from here as before
from .assessment import assess_oips, evoked_classes, superstimulus_ratio  # noqa: E402,F401
