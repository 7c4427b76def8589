"""Datasets (MNIST, Fashion-MNIST) from IDX files, and the per-image standardization.

Where the files are looked for, in order:

1. an explicit ``path`` argument (a folder holding the four IDX ``.gz`` files),
2. ``$OIPSCOPE_DATA_DIR`` (a folder holding ``mnist/`` and/or ``fashion-mnist/``,
   or the four files themselves),
3. ``/usr/share/datasets/<name>/`` (where Debian's dataset packages put them),
4. Keras' own dataset download and cache (needs internet the first time).

The CNN is trained on :func:`standardize`d images and the OIP engine
re-standardizes after every step with the very same function.
"""

from __future__ import annotations

import gzip
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ConfigError, DataError

__all__ = [
    "DATASETS",
    "Dataset",
    "Split",
    "read_idx",
    "find_dataset_dir",
    "load_dataset",
    "standardize",
    "to_model_input",
]

DATASETS: dict[str, tuple[str, ...]] = {
    "mnist": (
        "Digit 0", "Digit 1", "Digit 2", "Digit 3", "Digit 4",
        "Digit 5", "Digit 6", "Digit 7", "Digit 8", "Digit 9",
    ),
    "fashion-mnist": (
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
        "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
    ),
}
"""Supported dataset names and their class names."""

_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
SYSTEM_DATA_ROOT = Path("/usr/share/datasets")


@dataclass(frozen=True)
class Split:
    """Images (N, H, W, uint8) and integer labels (N,) of one dataset split."""

    images: np.ndarray
    labels: np.ndarray


@dataclass(frozen=True)
class Dataset:
    """A dataset with its train and test splits and class names."""

    name: str
    train: Split
    test: Split
    class_names: tuple[str, ...]
    source: str


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read one IDX file (gzip-compressed or plain) and validate its header.

    Raises:
        DataError: naming the file, when it is missing, truncated or not IDX.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"IDX file not found: {path}")
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            raw = handle.read()
    except (OSError, EOFError) as exc:
        raise DataError(f"cannot read IDX file {path}: {exc} (re-download it)") from exc
    if len(raw) < 4:
        raise DataError(f"IDX file {path} is truncated: {len(raw)} bytes, no header")
    zero1, zero2, type_code, ndim = struct.unpack(">BBBB", raw[:4])
    if zero1 != 0 or zero2 != 0 or type_code not in _IDX_DTYPES or ndim == 0:
        raise DataError(
            f"{path} is not an IDX file: bad magic number 0x{raw[:4].hex()} "
            "(expected 0x0000 then a type code and the number of dimensions)"
        )
    header_end = 4 + 4 * ndim
    if len(raw) < header_end:
        raise DataError(f"IDX file {path} is truncated inside its header")
    shape = struct.unpack(f">{ndim}I", raw[4:header_end])
    dtype = np.dtype(_IDX_DTYPES[type_code])
    expected = int(np.prod(shape)) * dtype.itemsize
    payload = len(raw) - header_end
    if payload != expected:
        raise DataError(
            f"IDX file {path} is {'truncated' if payload < expected else 'too long'}: "
            f"header says shape {shape} ({expected} bytes of data), file has {payload}; re-download it"
        )
    return np.frombuffer(raw, dtype=dtype, offset=header_end).reshape(shape).astype(dtype.newbyteorder("="))


def _has_files(folder: Path) -> bool:
    return all((folder / name).is_file() for pair in _FILES.values() for name in pair)


def find_dataset_dir(name: str, path: str | os.PathLike | None = None) -> Path | None:
    """Return the folder holding the IDX files of dataset ``name``, or None.

    ``path`` given but without the files is an error, not a fallback.
    """
    _check_name(name)
    if path is not None:
        folder = Path(path)
        for candidate in (folder, folder / name):
            if _has_files(candidate):
                return candidate
        raise DataError(
            f"no {name} IDX files in {folder}: expected {', '.join(_FILES['train'] + _FILES['test'])}"
        )
    env = os.environ.get("OIPSCOPE_DATA_DIR")
    if env:
        for candidate in (Path(env) / name, Path(env)):
            if _has_files(candidate):
                return candidate
    system = SYSTEM_DATA_ROOT / name
    if _has_files(system):
        return system
    return None


def _check_name(name: str) -> None:
    if name not in DATASETS:
        raise ConfigError(f"unknown dataset {name!r}: choose one of {', '.join(DATASETS)}")


def _read_split(folder: Path, split: str) -> Split:
    image_file, label_file = (folder / f for f in _FILES[split])
    images = read_idx(image_file)
    labels = read_idx(label_file)
    if images.ndim != 3:
        raise DataError(f"{image_file} holds shape {images.shape}, expected (N, rows, cols) images")
    if labels.ndim != 1 or len(labels) != len(images):
        raise DataError(
            f"{label_file} holds {labels.shape} labels but {image_file} holds {len(images)} images; "
            "the two files do not belong together: re-download both"
        )
    return Split(images=images.astype(np.uint8), labels=labels.astype(np.int64))


def _keras_download(name: str) -> tuple[Split, Split]:
    import keras

    loader = keras.datasets.mnist if name == "mnist" else keras.datasets.fashion_mnist
    try:
        (x_train, y_train), (x_test, y_test) = loader.load_data()
    except Exception as exc:  # network errors come in many types
        raise DataError(
            f"{name} not found locally and Keras could not download it ({exc}); "
            "set OIPSCOPE_DATA_DIR to a folder holding the four IDX .gz files"
        ) from exc
    return Split(x_train, y_train.astype(np.int64)), Split(x_test, y_test.astype(np.int64))


def load_dataset(name: str = "mnist", path: str | os.PathLike | None = None) -> Dataset:
    """Load a dataset as uint8 images and integer labels.

    Args:
        name: ``"mnist"`` or ``"fashion-mnist"``.
        path: folder holding the four IDX ``.gz`` files (optional, see module doc).
    """
    folder = find_dataset_dir(name, path)
    if folder is None:
        train, test = _keras_download(name)
        source = "keras download"
    else:
        train, test = _read_split(folder, "train"), _read_split(folder, "test")
        source = str(folder)
    return Dataset(name=name, train=train, test=test, class_names=DATASETS[name], source=source)


def standardize(images):
    """Per-image standardization: zero mean and unit variance over each image.

    Works on NumPy arrays and tensors of shape (N, H, W, C) or (H, W, C); the
    standard deviation is floored at ``1/sqrt(H*W*C)`` as in
    ``tf.image.per_image_standardization``. Returns a float32 tensor.
    Used both to train the CNN and inside the OIP engine's step.
    """
    import tensorflow as tf

    return tf.image.per_image_standardization(tf.cast(images, tf.float32))


def to_model_input(images: np.ndarray) -> np.ndarray:
    """Turn uint8 images (N, H, W) or (N, H, W, C) into standardized float32 NHWC."""
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[..., np.newaxis]
    if images.ndim != 4:
        raise ConfigError(f"images must have shape (N, H, W) or (N, H, W, C), got {images.shape}")
    return standardize(images).numpy()
