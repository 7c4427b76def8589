"""The user's images: image sets to draw dataset examples from.

An :class:`ImageSet` is a numbered list of images, each converted to one model's input shape
(H, W, C), with optional labels: a named set (``mnist-test`` is embedded, always offline), a
folder of image files or a ``.npz``/``.npy`` array file. Pixels are float32 in 0..255, not
standardized (see :func:`oipscope.data.datasets.standardize`)::

    images = open_images("photos/", (28, 28, 1))
    for indices, pixels in images.batches(256):
        ...
"""

from __future__ import annotations

import difflib
import os
import zipfile
from abc import ABC, abstractmethod
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Iterator

import numpy as np

from . import datasets as _data
from ..analysis.activations import _check_batch_size, load_image_file
from ..errors import ConfigError, DataError

__all__ = ["ImageSet", "NAMED_SETS", "IMAGE_SUFFIXES", "open_images", "embedded_examples", "array_images",
           "finite_images"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
"""File name endings of the images searched in a folder (case-insensitive)."""

_CIFAR10_NAMES = ("airplane", "automobile", "bird", "cat", "deer",
                  "dog", "frog", "horse", "ship", "truck")
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R 601, as Pillow's convert("L")
_EMBEDDED = "mnist_test.npz"


@dataclass(frozen=True)
class _Named:
    source: str  # "embedded", a key of data.DATASETS, "cifar10" or "cifar100"
    split: str  # "train" or "test"
    shape: tuple[int, int, int]


_MNIST_SHAPE, _CIFAR_SHAPE = (28, 28, 1), (32, 32, 3)
_NAMED = {
    f"{source}{tail}": _Named(source, split, shape)
    for source, shape in (("mnist", _MNIST_SHAPE), ("fashion-mnist", _MNIST_SHAPE),
                          ("cifar10", _CIFAR_SHAPE), ("cifar100", _CIFAR_SHAPE))
    for tail, split in (("", "train"), ("-train", "train"), ("-test", "test"))
}
_NAMED["mnist-test"] = _Named("embedded", "test", _MNIST_SHAPE)  # offline, from the package
NAMED_SETS: tuple[str, ...] = tuple(sorted(_NAMED))
"""Names :func:`open_images` accepts besides paths (a name in this list is never read as a path)."""


class ImageSet(ABC):
    """A numbered list of images converted to one model input shape.

    Attributes:
        name: what the user gave, e.g. ``"mnist-test"`` or a path.
        input_shape: (H, W, C) every image is converted to.
        class_names: one name per label, or None.
        labels: int64 (N,), -1 where unknown; None when the set has no labels at all.
    """

    name: str
    input_shape: tuple[int, int, int]
    class_names: tuple[str, ...] | None
    labels: np.ndarray | None

    @abstractmethod
    def __len__(self) -> int:
        """Number of entries N (unreadable files and NaN images included)."""

    @abstractmethod
    def item_name(self, i: int) -> str:
        """A name for entry ``i``: the file's path relative to the folder, or ``#i`` for arrays."""

    @abstractmethod
    def __getitem__(self, i: int) -> np.ndarray:
        """Entry ``i`` as float32 (H, W, C) pixels in 0..255 (DataError for an unreadable file or NaN image)."""

    @abstractmethod
    def batches(self, batch_size: int = 256) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Stream the set in order as (int64 indices (B,), float32 pixels (B, H, W, C) in 0..255)."""

    @property
    def skipped(self) -> tuple[str, ...]:
        """Names of the images skipped so far: unreadable files, arrays' NaN or infinite images."""
        return ()

    def _index(self, i: int) -> int:
        n = len(self)
        if isinstance(i, bool) or not isinstance(i, (int, np.integer)):
            raise TypeError(f"image index must be an integer, got {i!r}")
        if not -n <= i < n:
            raise IndexError(f"image {i} does not exist: {self.name} has {n} images (0..{n - 1})")
        return int(i) % n

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, {len(self)} images, {self.input_shape})"


@dataclass(frozen=True, repr=False, eq=False)
class _ArrayImages(ImageSet):
    """Images held in an array (N, H, W, C) of any size and 1, 3 or 4 channels, converted per batch."""

    name: str
    images: np.ndarray
    input_shape: tuple[int, int, int]
    labels: np.ndarray | None = None
    class_names: tuple[str, ...] | None = None
    scale: float = 1.0  # 255 for float images in 0..1

    _skipped: dict[int, str] = field(default_factory=dict, init=False, compare=False)  # NaN/inf images seen

    def __len__(self) -> int:
        return len(self.images)

    def item_name(self, i: int) -> str:
        return f"#{self._index(i)}"

    @property
    def skipped(self) -> tuple[str, ...]:
        return tuple(self._skipped[i] for i in sorted(self._skipped))

    def __getitem__(self, i: int) -> np.ndarray:
        i = self._index(i)
        raw = np.asarray(self.images[i:i + 1])
        if not finite_images(raw)[0]:
            self._skipped[i] = self.item_name(i)
            raise DataError(f"image {self.item_name(i)} of {self.name} holds NaN or infinite values; "
                            "choose another image or repair the array")
        return self._convert(raw)[0]

    def batches(self, batch_size: int = 256) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        _check_batch_size(batch_size)
        readable = False
        for start in range(0, len(self), batch_size):
            stop = min(start + batch_size, len(self))
            raw = np.asarray(self.images[start:stop])
            finite = finite_images(raw)
            indices = np.arange(start, stop, dtype=np.int64)
            self._skipped.update((int(i), f"#{i}") for i in indices[~finite])
            if finite.any():
                readable = True
                yield indices[finite], self._convert(raw[finite])
        if not readable:
            raise DataError(f"all {len(self)} images of {self.name} hold NaN or infinite values; "
                            "give images with finite pixel values")

    def _convert(self, raw: np.ndarray) -> np.ndarray:
        pixels = np.asarray(raw, dtype=np.float32) * np.float32(self.scale)
        return np.ascontiguousarray(np.clip(_fit_pixels(pixels, self.input_shape), 0.0, 255.0))


def finite_images(images: np.ndarray) -> np.ndarray:
    """Bool (N,): which images of a batch (N, ...) hold only finite values (integer images always do)."""
    if images.dtype.kind != "f":
        return np.ones(len(images), dtype=bool)
    return np.isfinite(images.reshape(len(images), -1)).all(axis=1)


def _fit_pixels(pixels: np.ndarray, input_shape: tuple[int, int, int]) -> np.ndarray:
    """Float32 (B, H, W, C) to the model's channels and size, as load_image_file does for one file."""
    height, width, channels = input_shape
    pixels = pixels[..., :3]  # alpha dropped
    if channels == 1 and pixels.shape[-1] == 3:
        pixels = (pixels @ _LUMA)[..., np.newaxis]
    if pixels.shape[1:3] != (height, width):  # width first, clipped in between, as Pillow does for 8 bits
        planes = np.clip(np.moveaxis(pixels, -1, 1) @ _resize_matrix(pixels.shape[2], width), 0.0, 255.0)
        pixels = np.moveaxis(_resize_matrix(pixels.shape[1], height).T @ planes, 1, -1)
    if pixels.shape[-1] != channels:  # grey to RGB after the resize: the same result, a third of the work
        pixels = np.repeat(pixels, 3, axis=-1)
    return pixels


@lru_cache(maxsize=32)
def _resize_matrix(size_in: int, size_out: int) -> np.ndarray:
    """(size_in, size_out) weights of Pillow's Lanczos resize (load_image_file's filter) on one axis.

    Pillow resizes axis by axis, linearly, so resizing an identity image gives the weights;
    a whole batch is then resized with two matrix products instead of image by image.
    """
    from PIL import Image

    identity = Image.fromarray(np.eye(size_in, dtype=np.float32))
    weights = np.array(identity.resize((size_out, size_in), Image.Resampling.LANCZOS), dtype=np.float32)
    weights.setflags(write=False)
    return weights


class _FolderImages(ImageSet):
    """Image files under a folder, decoded batch by batch in a background thread."""

    def __init__(self, name: str, root: Path, files: list[Path], input_shape: tuple[int, int, int],
                 labels: np.ndarray | None, class_names: tuple[str, ...] | None) -> None:
        self.name, self.root, self.files, self.input_shape = name, root, files, input_shape
        self.labels, self.class_names = labels, class_names
        self._skipped: dict[int, str] = {}

    def __len__(self) -> int:
        return len(self.files)

    def item_name(self, i: int) -> str:
        return self.files[self._index(i)].as_posix()

    @property
    def skipped(self) -> tuple[str, ...]:
        return tuple(self._skipped[i] for i in sorted(self._skipped))

    def __getitem__(self, i: int) -> np.ndarray:
        i = self._index(i)
        try:
            return load_image_file(self.root / self.files[i], self.input_shape)
        except DataError:
            self._skipped[i] = self.item_name(i)
            raise

    def batches(self, batch_size: int = 256) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        _check_batch_size(batch_size)
        n, readable = len(self), False
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="oipscope-images") as pool:
            pending = pool.submit(self._decode, 0, min(batch_size, n))
            for start in range(0, n, batch_size):
                indices, pixels, bad = pending.result()
                if start + batch_size < n:  # decode the next batch while the caller works on this one
                    pending = pool.submit(self._decode, start + batch_size, min(start + 2 * batch_size, n))
                self._skipped.update((i, self.files[i].as_posix()) for i in bad)
                if len(indices):
                    readable = True
                    yield indices, pixels
        if not readable:
            raise DataError(f"none of the {n} image files in {self.name} could be read "
                            f"(first: {self.files[0].as_posix()}); give PNG, JPEG, ... files Pillow reads")

    def _decode(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray, list[int]]:
        indices, pixels, bad = [], [], []
        for i in range(start, stop):
            try:
                pixels.append(load_image_file(self.root / self.files[i], self.input_shape))
                indices.append(i)
            except DataError:
                bad.append(i)
        stacked = np.stack(pixels) if pixels else np.zeros((0, *self.input_shape), np.float32)
        return np.asarray(indices, dtype=np.int64), stacked, bad


def open_images(spec: str | os.PathLike, input_shape: tuple[int, int, int], *,
                data_dir: str | os.PathLike | None = None) -> ImageSet:
    """Open a named set, a folder of images or a .npz/.npy file, converted to a model's input.

    Args:
        spec: a name of :data:`NAMED_SETS` or a path (write ``./mnist`` for a folder named like a set).
        input_shape: (H, W, C) of the model input, C 1 or 3.
        data_dir: folder of the MNIST/Fashion-MNIST IDX files (see :func:`oipscope.data.datasets.load_dataset`).

    Array files: uint8 (and other integer) values are pixels 0..255; float arrays whose finite
    values all lie in [0, 1] are read as 0..1 and scaled by 255, other floats are taken as 0..255.
    Labels, if any, are whole numbers >= 0, one per image. Images holding NaN or infinite values
    are skipped (see :attr:`ImageSet.skipped`).
    Images of another size or channel count are converted like image files (Lanczos resize,
    grey to RGB by repeating, RGB to grey with ITU-R 601 luma weights).

    Raises:
        DataError: unknown path or file kind, empty folder, malformed arrays, or a named set whose
            images do not have exactly ``input_shape`` (checked before anything is read).
        ConfigError: ``input_shape`` is not (H, W, 1) or (H, W, 3).
    """
    shape = _check_input_shape(input_shape)
    if isinstance(spec, str) and spec in _NAMED:
        return _open_named(spec, shape, data_dir)
    path = Path(spec)
    accepted = f"give a folder of images, a .npz or .npy file, or a named set: {', '.join(NAMED_SETS)}"
    if path.is_dir():
        return _open_folder(str(spec), path, shape)
    if not path.exists():
        close = difflib.get_close_matches(str(spec), NAMED_SETS, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise DataError(f"{spec}: no such file or folder; {accepted}{hint}")
    suffix = path.suffix.lower()
    if suffix not in (".npz", ".npy"):
        raise DataError(f"{spec} is not an image set: {accepted}")
    try:
        if suffix == ".npy":
            return _array_set(str(spec), np.load(path, mmap_mode="r"), None, shape)
        with np.load(path) as arrays:
            image_key = next((k for k in ("x", "images") if k in arrays.files), None)
            if image_key is None:
                raise DataError(f"{spec} holds the arrays {', '.join(arrays.files) or '(none)'}; expected "
                                "the images under 'x' or 'images' (labels optional under 'y' or 'labels')")
            label_key = next((k for k in ("y", "labels") if k in arrays.files), None)
            labels = arrays[label_key] if label_key else None
            return _array_set(str(spec), arrays[image_key], labels, shape)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"cannot read {spec} as a NumPy {suffix} file: {exc}") from exc


def embedded_examples(input_shape: tuple[int, int, int] = (28, 28, 1)) -> ImageSet:
    """The embedded MNIST test split (10 000 labelled images): ``open_images("mnist-test", input_shape)``."""
    return open_images("mnist-test", input_shape)


def _check_input_shape(input_shape: tuple[int, int, int]) -> tuple[int, int, int]:
    try:
        shape = tuple(int(v) for v in input_shape)
    except (TypeError, ValueError):
        shape = ()
    if len(shape) != 3 or min(shape) < 1 or shape[2] not in (1, 3):
        raise ConfigError(f"input_shape must be (H, W, 1) or (H, W, 3), got {input_shape!r}")
    return shape  # type: ignore[return-value]


def _open_named(name: str, shape: tuple[int, int, int], data_dir: str | os.PathLike | None) -> ImageSet:
    named = _NAMED[name]
    if named.shape != shape:
        have, want = ("x".join(map(str, s)) for s in (named.shape, shape))
        raise DataError(f"the named set {name!r} has {have} images but the model takes {want}; "
                        "give --images FOLDER (a folder of your own images) instead")
    if named.source == "embedded":
        asset = Path(str(resources.files("oipscope") / "assets" / _EMBEDDED))
        try:
            with np.load(asset) as arrays:
                images, labels = arrays["x"], arrays["y"]
        except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
            raise DataError(f"the embedded example set {_EMBEDDED} is missing or broken ({exc}); "
                            "reinstall oipscope or run examples/make_example_set.py") from exc
        class_names = _data.DATASETS["mnist"]
    elif named.source in _data.DATASETS:
        dataset = _data.load_dataset(named.source, data_dir)
        split = getattr(dataset, named.split)
        images, labels, class_names = split.images, split.labels, dataset.class_names
    else:
        images, labels = _load_cifar(named.source)[named.split == "test"]
        class_names = _CIFAR10_NAMES if named.source == "cifar10" else tuple(str(i) for i in range(100))
    return _array_set(name, images, labels, shape, class_names)


def _load_cifar(source: str) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    import keras

    try:
        return getattr(keras.datasets, source).load_data()
    except Exception as exc:  # network errors come in many types
        raise DataError(f"Keras could not download {source} ({exc}); give --images FOLDER instead") from exc


def _array_set(name: str, images: np.ndarray, labels: np.ndarray | None, shape: tuple[int, int, int],
               class_names: tuple[str, ...] | None = None) -> ImageSet:
    """Validate images (N, H, W[, C]) and labels, and wrap them as an ImageSet."""
    if images.ndim == 3:
        images = images[..., np.newaxis]
    if images.ndim != 4 or images.shape[-1] not in (1, 3, 4) or min(images.shape[1:3], default=0) < 1:
        raise DataError(f"{name}: images have shape {images.shape}; "
                        "expected (N, H, W) or (N, H, W, C) with C 1, 3 or 4")
    if images.dtype.kind not in "uif":
        raise DataError(f"{name}: images have dtype {images.dtype}; expected uint8 pixels or floats")
    if len(images) == 0:
        raise DataError(f"{name} holds no images (shape {images.shape})")
    if labels is not None:
        labels = _check_labels(np.asarray(labels), len(images), name)
    return _ArrayImages(name, images, shape, labels, class_names, _pixel_scale(images))


def _check_labels(labels: np.ndarray, n_images: int, name: str) -> np.ndarray:
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.shape != (n_images,):
        raise DataError(f"{name}: labels have shape {labels.shape} for {n_images} images; "
                        "give one label per image")
    if labels.dtype.kind not in "iuf":
        raise DataError(f"{name}: labels have dtype {labels.dtype}; expected integers >= 0")
    bad = labels[(labels < 0) | (labels != np.round(labels))]
    if bad.size:
        raise DataError(f"{name}: labels must be integers >= 0, found {bad[0].item()}")
    return labels.astype(np.int64)


def _pixel_scale(images: np.ndarray, chunk: int = 4096) -> float:
    """255 for float images whose finite values all lie in [0, 1], else 1 (read in chunks for memmaps)."""
    if images.dtype.kind != "f":
        return 1.0
    for start in range(0, len(images), chunk):
        block = np.asarray(images[start:start + chunk])
        finite = block[np.isfinite(block)]
        if finite.size and (finite.min() < 0.0 or finite.max() > 1.0):
            return 1.0
    return 255.0


def _open_folder(name: str, root: Path, shape: tuple[int, int, int]) -> ImageSet:
    files = []
    for folder, subfolders, names in os.walk(root):
        subfolders.sort()
        files += [Path(folder, f).relative_to(root) for f in names
                  if Path(f).suffix.lower() in IMAGE_SUFFIXES]
    if not files:
        raise DataError(f"no images in {name}: expected {'/'.join(s[1:].upper() for s in IMAGE_SUFFIXES)} "
                        "files, searched recursively")
    files.sort(key=lambda p: p.parts)
    labels = class_names = None
    if all(len(p.parts) > 1 for p in files):  # as keras.utils.image_dataset_from_directory infers them
        class_names = tuple(sorted(d.name for d in root.iterdir() if d.is_dir()))
        index = {c: i for i, c in enumerate(class_names)}
        labels = np.array([index[p.parts[0]] for p in files], dtype=np.int64)
    return _FolderImages(name, root, files, shape, labels, class_names)


def array_images(images: np.ndarray, input_shape: tuple[int, int, int], *, labels: np.ndarray | None = None,
                 class_names: tuple[str, ...] | None = None, name: str = "array") -> ImageSet:
    """Images already in memory (N, H, W[, C]) as an ImageSet, converted to ``input_shape`` per batch.

    Pixel values are read as for ``.npz`` files (see :func:`open_images`).
    """
    return _array_set(name, np.asarray(images), labels, _check_input_shape(input_shape),
                      None if class_names is None else tuple(str(c) for c in class_names))
