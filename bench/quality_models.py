"""Two deeper CNNs for the quality benchmark: BatchNormalization, residual blocks, grey and RGB.

Both are the same small ResNet on 64×64 images, built for a Keras module ``k``
(``keras`` 3 or ``tf_keras``), that takes raw pixels 0..255 and scales them in
its first layer, so oipscope recognises its encoding::

    image → Rescaling → stem Conv-BN-ReLU, stride 2 (32×32)
          → stage1 residual block, 16 maps (32×32)
          → stage2 residual block, 32 maps, stride 2 (16×16)
          → stage3 residual block, 64 maps, stride 2 (8×8) → ``deepest_relu``
          → GlobalAveragePooling → Dense softmax

- **grey**: Fashion-MNIST (the IDX files of ``oipscope.data.datasets``) upscaled to 64×64 as
  oipscope converts images (Lanczos), ``Rescaling(1/255)``, 10 classes.
- **rgb**: synthetic 64×64 colour images (:func:`synthetic_rgb`: oriented gratings,
  discs, rings, crosses, checkerboards in random colours on smooth noisy
  backgrounds), ``Rescaling`` onto [-1, 1], 8 classes, deterministic for a seed.

:func:`train_or_load` trains a model once (1–2 min on 2 cores) and caches it: as a
Keras-2 legacy ``.h5`` written by ``tf_keras`` in a child process (a real third-party
file, as the issue's models are) when ``tf_keras`` is installed, else as ``.keras``.
The child is this file: ``python bench/quality_models.py train KIND PATH``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "KINDS",
    "DEEPEST",
    "SIZE",
    "RGB_CLASSES",
    "Data",
    "Trained",
    "build_grey_model",
    "build_rgb_model",
    "build_sep_model",
    "build_big_model",
    "synthetic_rgb",
    "load_data",
    "train_or_load",
]

KINDS: tuple[str, ...] = ("grey", "rgb", "sep", "big")
"""grey, rgb: the 64-px ResNets; sep: a 64-px grey CNN of separable convolutions with BatchNormalization that
takes [-1, 1] (no rescaling layer: the encoding is given); big: a 160-px RGB CNN (``Rescaling(1/255)``)."""
BIG_SIZE = 160
RANGE_INPUT = {"sep": (-1.0, 1.0)}
"""Models that take pixels already scaled: their input range (the data is scaled before training)."""
DEEPEST = "deepest_relu"
"""The last activation layer before the global pooling: the layer the benchmark studies."""
SIZE = 64
WIDTHS = (16, 32, 64)
RGB_CLASSES: tuple[str, ...] = ("stripes |", "stripes /", "stripes -", "stripes \\",
                                "disc", "ring", "cross", "checkerboard")
SEED = 1234
BN_MOMENTUM = 0.9
"""Not Keras' 0.99: after a few hundred steps its moving variance still holds 2 % of its initial 1,
far above the small variances behind the stem, and the model predicts one class in inference."""
VERSION = 4  # in the cache file names: a change of data, model or training invalidates old files
_TRAINING = {  # about 4 ms per image and epoch on 2 shared CPU cores: each trains in under 2 min
    "grey": {"n_train": 10000, "n_test": 10000, "epochs": 2, "batch_size": 64, "learning_rate": 2e-3},
    "rgb": {"n_train": 8000, "n_test": 2000, "epochs": 2, "batch_size": 64, "learning_rate": 2e-3},
    "sep": {"n_train": 6000, "n_test": 2000, "epochs": 2, "batch_size": 64, "learning_rate": 3e-3},
    "big": {"n_train": 4000, "n_test": 400, "epochs": 4, "batch_size": 32, "learning_rate": 2e-3},
}


# ---- models ----------------------------------------------------------------------------------

def _residual_block(L: Any, x: Any, width: int, stride: int, prefix: str, out_name: str) -> Any:
    """Conv-BN-ReLU, Conv-BN, + shortcut (a 1×1 Conv-BN where the shape changes), ReLU."""
    y = L.Conv2D(width, 3, strides=stride, padding="same", use_bias=False, name=f"{prefix}_conv1")(x)
    y = L.BatchNormalization(momentum=BN_MOMENTUM, name=f"{prefix}_bn1")(y)
    y = L.ReLU(name=f"{prefix}_relu1")(y)
    y = L.Conv2D(width, 3, padding="same", use_bias=False, name=f"{prefix}_conv2")(y)
    y = L.BatchNormalization(momentum=BN_MOMENTUM, name=f"{prefix}_bn2")(y)
    shortcut = x
    if stride != 1 or int(x.shape[-1]) != width:
        shortcut = L.Conv2D(width, 1, strides=stride, use_bias=False, name=f"{prefix}_short_conv")(x)
        shortcut = L.BatchNormalization(momentum=BN_MOMENTUM, name=f"{prefix}_short_bn")(shortcut)
    x = L.Add(name=f"{prefix}_add")([y, shortcut])
    return L.ReLU(name=out_name)(x)


def _residual_cnn(k: Any, channels: int, scale: float, offset: float, n_classes: int, name: str) -> Any:
    """The benchmark's ResNet for Keras module ``k`` (see the module docstring)."""
    L = k.layers
    image = L.Input((SIZE, SIZE, channels), name="image")
    x = L.Rescaling(scale, offset=offset, name="rescaling")(image)
    x = L.Conv2D(WIDTHS[0], 3, strides=2, padding="same", use_bias=False, name="stem_conv")(x)
    x = L.BatchNormalization(momentum=BN_MOMENTUM, name="stem_bn")(x)
    x = L.ReLU(name="stem_relu")(x)
    for s, width in enumerate(WIDTHS, 1):
        last = s == len(WIDTHS)
        x = _residual_block(L, x, width, 1 if s == 1 else 2, f"stage{s}", DEEPEST if last else f"stage{s}_relu")
    x = L.GlobalAveragePooling2D(name="avg_pool")(x)
    output = L.Dense(n_classes, activation="softmax", name="predictions")(x)
    return k.Model(image, output, name=name)


def _keras(k: Any | None) -> Any:
    if k is None:
        import keras

        return keras
    return k


def build_grey_model(k: Any | None = None) -> Any:
    """The grey ResNet (64×64×1, raw pixels, ``Rescaling(1/255)``, 10 classes), untrained.

    Args:
        k: the Keras module to build with, ``keras`` (default) or ``tf_keras``.
    """
    return _residual_cnn(_keras(k), 1, 1 / 255, 0.0, 10, "grey_resnet")


def build_rgb_model(k: Any | None = None) -> Any:
    """The RGB ResNet (64×64×3, raw pixels, ``Rescaling`` onto [-1, 1], 8 classes), untrained.

    Args:
        k: the Keras module to build with, ``keras`` (default) or ``tf_keras``.
    """
    return _residual_cnn(_keras(k), 3, 1 / 127.5, -1.0, len(RGB_CLASSES), "rgb_resnet")


def build_sep_model(k: Any | None = None) -> Any:
    """The separable grey CNN (64×64×1 in [-1, 1], BatchNormalization, ``SeparableConv2D``, 10 classes), untrained."""
    k = _keras(k)
    L = k.layers
    image = L.Input((SIZE, SIZE, 1), name="image")
    x = L.Conv2D(16, 3, strides=2, padding="same", use_bias=False, name="stem_conv")(image)
    x = L.BatchNormalization(momentum=BN_MOMENTUM, name="stem_bn")(x)
    x = L.ReLU(name="stem_relu")(x)
    for s, width in enumerate((32, 64), 1):
        for j in (1, 2):
            x = L.SeparableConv2D(width, 3, padding="same", use_bias=False, name=f"sep{s}_{j}")(x)
            x = L.BatchNormalization(momentum=BN_MOMENTUM, name=f"sep{s}_{j}_bn")(x)
            x = L.ReLU(name=DEEPEST if (s, j) == (2, 2) else f"sep{s}_{j}_relu")(x)
        if s == 1:
            x = L.MaxPooling2D(2, name="pool1")(x)
    x = L.GlobalAveragePooling2D(name="avg_pool")(x)
    output = L.Dense(10, activation="softmax", name="predictions")(x)
    return k.Model(image, output, name="sep_cnn")


def build_big_model(k: Any | None = None) -> Any:
    """The 160-px RGB CNN (raw pixels, ``Rescaling(1/255)``, plain conv/BN/ReLU stages, 8 classes), untrained."""
    k = _keras(k)
    L = k.layers
    image = L.Input((BIG_SIZE, BIG_SIZE, 3), name="image")
    x = L.Rescaling(1 / 255, name="rescaling")(image)
    for s, width in enumerate((16, 32, 48, 64), 1):
        x = L.Conv2D(width, 3, strides=2, padding="same", use_bias=False, name=f"conv{s}")(x)
        x = L.BatchNormalization(momentum=BN_MOMENTUM, name=f"conv{s}_bn")(x)
        x = L.ReLU(name=DEEPEST if s == 4 else f"conv{s}_relu")(x)
    x = L.GlobalAveragePooling2D(name="avg_pool")(x)
    output = L.Dense(len(RGB_CLASSES), activation="softmax", name="predictions")(x)
    return k.Model(image, output, name="big_cnn")


# ---- data ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Data:
    """uint8 pixels (N, 64, 64, C) and integer labels of a training and a test split."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...]
    source: str


def _soft(d: np.ndarray) -> np.ndarray:
    """1 inside (d < 0), 0 outside, a 1-pixel soft edge: anti-aliased shapes."""
    return np.clip(0.5 - d, 0.0, 1.0)


def _mask(rng: np.random.Generator, label: int, yy: np.ndarray, xx: np.ndarray) -> np.ndarray:
    """The foreground of one image of class ``label``, values in [0, 1]."""
    cy, cx = rng.uniform(20, SIZE - 20, 2)
    r = np.hypot(yy - cy, xx - cx)
    if label < 4:  # sinusoidal stripes in a round window; the wave runs at 0/45/90/135 degrees
        theta = np.deg2rad(45 * label + rng.uniform(-8, 8))
        period, phase = rng.uniform(7, 13), rng.uniform(0, 2 * np.pi)
        wave = 0.5 + 0.5 * np.cos(2 * np.pi * (xx * np.cos(theta) + yy * np.sin(theta)) / period + phase)
        return wave * _soft(r - rng.uniform(18, 28))
    if label == 4:  # disc
        return _soft(r - rng.uniform(8, 16))
    if label == 5:  # ring
        radius, width = rng.uniform(10, 18), rng.uniform(2.5, 4.5)
        return _soft(np.abs(r - radius) - width / 2)
    if label == 6:  # cross
        arm, width = rng.uniform(10, 18), rng.uniform(3, 6)
        dy, dx = np.abs(yy - cy), np.abs(xx - cx)
        bar1 = np.minimum(_soft(dy - width / 2), _soft(dx - arm))
        bar2 = np.minimum(_soft(dx - width / 2), _soft(dy - arm))
        return np.maximum(bar1, bar2)
    # checkerboard in a square window
    period, half = rng.uniform(8, 12), rng.uniform(14, 22)
    cells = (np.floor((yy - cy) / period * 2) + np.floor((xx - cx) / period * 2)) % 2
    window = np.minimum(_soft(np.abs(yy - cy) - half), _soft(np.abs(xx - cx) - half))
    return cells * window


def synthetic_rgb(n: int, seed: int = 0, size: int = SIZE) -> tuple[np.ndarray, np.ndarray]:
    """``n`` synthetic colour images (n, size, size, 3) uint8 and their labels (n,), the same for a seed.

    Each image is a shape of class ``label`` (see :data:`RGB_CLASSES`) in a random
    colour contrasting with a random background colour, on a smooth colour gradient,
    with pixel noise. Classes are balanced and shuffled.
    """
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % len(RGB_CLASSES)
    rng.shuffle(labels)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) * (SIZE / size)  # shapes drawn on the 64-px layout
    images = np.empty((n, size, size, 3), np.uint8)
    for i, label in enumerate(labels):
        background = rng.uniform(40, 215, 3)
        foreground = np.clip(background + rng.choice([-1.0, 1.0], 3) * rng.uniform(60, 140, 3), 0, 255)
        f = rng.uniform(-1.5, 1.5, 2) / SIZE  # a gentle gradient: under 1.5 cycles across the image
        shade = np.cos(2 * np.pi * (f[0] * yy + f[1] * xx) + rng.uniform(0, 2 * np.pi))
        base = background + shade[..., None] * rng.uniform(0, 30, 3)
        mask = _mask(rng, int(label), yy, xx)[..., None]
        image = base * (1 - mask) + foreground * mask + rng.normal(0, 10, (size, size, 3))
        images[i] = np.clip(np.rint(image), 0, 255).astype(np.uint8)
    return images, labels.astype(np.int64)


def _upscaled(images: np.ndarray) -> np.ndarray:
    """(N, 28, 28) uint8 → (N, 64, 64, 1) uint8, resized as oipscope resizes any image set."""
    from oipscope.data.imagesets import array_images

    if len(images) == 0:
        return np.zeros((0, SIZE, SIZE, 1), np.uint8)
    pixels = np.concatenate([b for _, b in array_images(images, (SIZE, SIZE, 1)).batches(4096)])
    return np.clip(np.rint(pixels), 0, 255).astype(np.uint8)


def load_data(kind: str, n_train: int | None = None, n_test: int | None = None) -> Data:
    """The training and test images of model ``kind`` (defaults: the sizes it is trained with).

    Raises:
        ValueError: an unknown kind.
        oipscope.DataError: Fashion-MNIST is not on disk and cannot be downloaded.
    """
    _check_kind(kind)
    n_train = _TRAINING[kind]["n_train"] if n_train is None else n_train
    n_test = _TRAINING[kind]["n_test"] if n_test is None else n_test
    if kind in ("rgb", "big"):
        size = BIG_SIZE if kind == "big" else SIZE
        x_train, y_train = synthetic_rgb(n_train, seed=SEED, size=size)
        x_test, y_test = synthetic_rgb(n_test, seed=SEED + 1, size=size)
        return Data(x_train, y_train, x_test, y_test, RGB_CLASSES, f"synthetic {size}px (seeds {SEED}, {SEED + 1})")
    from oipscope.data.datasets import load_dataset

    ds = load_dataset("fashion-mnist")
    pick = np.random.default_rng(SEED).permutation(len(ds.train.images))[:n_train]
    return Data(_upscaled(ds.train.images[pick]), ds.train.labels[pick], _upscaled(ds.test.images[:n_test]),
                ds.test.labels[:n_test], ds.class_names, f"fashion-mnist ({ds.source}), upscaled to 64x64")


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"model kind must be one of {', '.join(KINDS)}, got {kind!r}")


# ---- training and the cache ------------------------------------------------------------------

@dataclass(frozen=True)
class Trained:
    """A trained model file and how it was made.

    Attributes:
        kind: "grey" or "rgb".
        path: the model file (``.h5`` by tf_keras, or ``.keras``).
        test_accuracy: accuracy on the test split.
        train_seconds: wall time of the training (of the run that made the file).
        cached: whether this call found the file instead of training.
        info: the rest of the training record (images, epochs, writer).
    """

    kind: str
    path: Path
    test_accuracy: float
    train_seconds: float
    cached: bool
    info: dict[str, Any]


def has_tf_keras() -> bool:
    """Whether Keras 2 (the ``tf_keras`` package) is installed."""
    return importlib.util.find_spec("tf_keras") is not None


def _fit(k: Any, kind: str) -> tuple[Any, dict[str, Any]]:
    """Build and train model ``kind`` with Keras module ``k``; its training record."""
    settings = _TRAINING[kind]
    t0 = time.perf_counter()
    data = load_data(kind)
    data_seconds = time.perf_counter() - t0
    k.utils.set_random_seed(SEED)
    model = {"grey": build_grey_model, "rgb": build_rgb_model, "sep": build_sep_model, "big": build_big_model}[kind](k)
    if kind in RANGE_INPUT:  # the model takes scaled pixels: scale the uint8 data onto its range
        lo, hi = RANGE_INPUT[kind]
        data = Data(*(x.astype(np.float32) * ((hi - lo) / 255) + lo if i in (0, 2) else x
                      for i, x in enumerate((data.x_train, data.y_train, data.x_test, data.y_test))),
                    data.class_names, data.source)
    steps = -(-len(data.x_train) // settings["batch_size"]) * settings["epochs"]
    schedule = k.optimizers.schedules.CosineDecay(settings["learning_rate"], steps)  # ends at rest: BN fits
    model.compile(optimizer=k.optimizers.Adam(schedule),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    t = time.perf_counter()
    model.fit(data.x_train, data.y_train, batch_size=settings["batch_size"], epochs=settings["epochs"],
              verbose=2, shuffle=True)
    fit_seconds = time.perf_counter() - t
    _, accuracy = model.evaluate(data.x_test, data.y_test, batch_size=256, verbose=0)
    return model, {"kind": kind, "version": VERSION, "test_accuracy": float(accuracy),
                   "train_seconds": fit_seconds, "data_seconds": data_seconds, "data": data.source,
                   "writer": f"{k.__name__} {k.__version__}", **settings}


def _record_path(path: Path) -> Path:
    return path.with_suffix(path.suffix + ".json")


def _save(model: Any, record: dict[str, Any], path: Path, **save_args: Any) -> None:
    """The model, then its record: the record marks a complete file (written last, both atomically)."""
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    model.save(tmp, **save_args)
    os.replace(tmp, path)
    tmp_record = _record_path(tmp)
    tmp_record.write_text(json.dumps(record, indent=1))
    os.replace(tmp_record, _record_path(path))


def _train_child(kind: str, path: str) -> None:
    """Child side: train with tf_keras (Keras 2 only in this process) and write a legacy ``.h5``."""
    import tf_keras

    model, record = _fit(tf_keras, kind)
    _save(model, record, Path(path), save_format="h5")


def _train_here(kind: str, path: Path) -> None:
    import keras

    model, record = _fit(keras, kind)
    _save(model, record, path)


def train_or_load(kind: str, cache: str | os.PathLike) -> Trained:
    """Model ``kind``'s file in ``cache``, trained first if no complete file is there.

    With ``tf_keras`` installed, a child process trains it with Keras 2 and writes a
    legacy ``.h5`` (its progress goes to this process' stdout); else this process
    trains it with Keras 3 and writes a ``.keras``. Load it with ``oipscope.open_subject``.

    Raises:
        ValueError: an unknown kind.
        RuntimeError: the training child failed.
    """
    _check_kind(kind)
    cache = Path(cache).expanduser()
    cache.mkdir(parents=True, exist_ok=True)
    legacy = has_tf_keras()
    stem = f"{kind}_resnet" if kind in ("grey", "rgb") else f"{kind}_cnn"
    path = cache / f"{stem}_v{VERSION}.{'h5' if legacy else 'keras'}"
    cached = path.is_file() and _record_path(path).is_file()
    if not cached:
        if legacy:
            env = {**os.environ, "TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
            sys.stdout.flush()
            done = subprocess.run([sys.executable, __file__, "train", kind, str(path)], env=env, check=False,
                                  stderr=subprocess.PIPE, text=True)
            if done.returncode != 0 or not _record_path(path).is_file():
                raise RuntimeError(f"training {kind} with tf_keras failed:\n{done.stderr[-3000:]}")
        else:
            _train_here(kind, path)
    record = json.loads(_record_path(path).read_text())
    return Trained(kind, path, float(record["test_accuracy"]), float(record["train_seconds"]), cached, record)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "train":
        _train_child(sys.argv[2], sys.argv[3])
    else:
        sys.exit(f"usage: python bench/quality_models.py train {'|'.join(KINDS)} PATH")
