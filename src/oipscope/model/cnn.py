"""The small CNN of the blog series, its training, and the embedded default model."""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import Callable, Literal

import numpy as np

from ..data.datasets import load_dataset, standardize
from ..errors import ConfigError

__all__ = [
    "DEFAULT_MODEL_NAME",
    "TrainConfig",
    "TrainResult",
    "build_cnn",
    "train",
    "default_model_path",
    "default_model",
    "default_subject",
]

DEFAULT_MODEL_NAME = "mnist_cnn.keras"


def build_cnn(
    input_shape: tuple[int, int, int] = (28, 28, 1),
    n_classes: int = 10,
    output_activation: Literal["sigmoid", "softmax"] = "softmax",
    l2: float = 1e-4,
):
    """The series' CNN: Conv2D_1 32 → pool → Conv2D_2 64 → pool → Conv2D_3 128 → Dense_1 70 → Dense_2.

    Layer names follow the series, so ``Conv2D_3`` has 128 maps of 3×3 for MNIST.
    """
    import keras
    from keras import layers, regularizers

    if output_activation not in ("sigmoid", "softmax"):
        raise ConfigError(f"output_activation must be 'sigmoid' or 'softmax', got {output_activation!r}")
    return keras.Sequential(
        [
            keras.Input(shape=input_shape, name="image"),
            layers.Conv2D(32, 3, activation="relu", name="Conv2D_1"),
            layers.MaxPooling2D(2, name="Max_Pool_1"),
            layers.Conv2D(64, 3, activation="relu", name="Conv2D_2"),
            layers.MaxPooling2D(2, name="Max_Pool_2"),
            layers.Conv2D(128, 3, activation="relu", name="Conv2D_3"),
            layers.Flatten(name="Flatten"),
            layers.Dense(70, activation="relu", kernel_regularizer=regularizers.l2(l2), name="Dense_1"),
            layers.Dense(n_classes, activation=output_activation, name="Dense_2"),
        ],
        name="series_cnn",
    )


@dataclass(frozen=True)
class TrainConfig:
    """How to train the series' CNN (part III: SGD + momentum, exponential LR decay, L2).

    ``augment_shift`` randomly shifts training images by up to that many pixels,
    which lifts MNIST test accuracy above the series' 99.35 %.
    """

    dataset: str = "mnist"
    epochs: int = 20
    batch_size: int = 64
    learning_rate: float = 0.05
    lr_decay: float = 0.85
    momentum: float = 0.9
    l2: float = 1e-4
    validation_split: float = 0.1
    augment_shift: int = 2
    output_activation: str = "softmax"
    seed: int = 42
    train_limit: int | None = None
    data_dir: str | None = None

    def __post_init__(self) -> None:
        checks = [
            (self.epochs >= 1, f"epochs must be >= 1, got {self.epochs}"),
            (self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}"),
            (self.learning_rate > 0, f"learning_rate must be > 0, got {self.learning_rate}"),
            (0 < self.lr_decay <= 1, f"lr_decay must be in (0, 1], got {self.lr_decay}"),
            (0 <= self.momentum < 1, f"momentum must be in [0, 1), got {self.momentum}"),
            (self.l2 >= 0, f"l2 must be >= 0, got {self.l2}"),
            (0 < self.validation_split < 1, f"validation_split must be in (0, 1), got {self.validation_split}"),
            (0 <= self.augment_shift <= 4, f"augment_shift must be in 0..4 pixels, got {self.augment_shift}"),
            (self.output_activation in ("sigmoid", "softmax"),
             f"output_activation must be 'sigmoid' or 'softmax', got {self.output_activation!r}"),
            (self.train_limit is None or self.train_limit >= 10,
             f"train_limit must be >= 10 images, got {self.train_limit}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)


@dataclass(frozen=True)
class TrainResult:
    """Outcome of :func:`train`: test accuracy, seconds, and the file written."""

    test_accuracy: float
    test_loss: float
    best_val_accuracy: float
    seconds: float
    path: str
    config: TrainConfig

    def to_dict(self) -> dict:
        return {**asdict(self), "config": asdict(self.config)}


def _shift_dataset(images: np.ndarray, labels: np.ndarray, config: TrainConfig):
    import tensorflow as tf

    pad = config.augment_shift
    height, width = images.shape[1:3]
    data = tf.data.Dataset.from_tensor_slices((images, labels))
    data = data.shuffle(len(images), seed=config.seed, reshuffle_each_iteration=True)
    if pad:
        def shift(image, label):
            padded = tf.pad(image, [[pad, pad], [pad, pad], [0, 0]])
            return tf.image.random_crop(padded, (height, width, image.shape[-1])), label

        data = data.map(shift, num_parallel_calls=tf.data.AUTOTUNE)
    return data.batch(config.batch_size).map(
        lambda x, y: (standardize(x), y), num_parallel_calls=tf.data.AUTOTUNE
    ).prefetch(tf.data.AUTOTUNE)


def train(
    config: TrainConfig = TrainConfig(),
    out: str | os.PathLike = DEFAULT_MODEL_NAME,
    *,
    save_h5: bool = False,
    on_epoch_end: Callable[[int, dict], None] | None = None,
) -> TrainResult:
    """Train the series' CNN and save the best model (by validation accuracy).

    Args:
        config: training settings.
        out: ``.keras`` file to write (a ``.h5`` copy next to it when ``save_h5``).
        on_epoch_end: called with (epoch, logs) after each epoch, e.g. for progress.
    """
    import keras

    out = Path(out)
    if out.suffix != ".keras":
        raise ConfigError(f"output file must end in .keras, got {out}")
    out.parent.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(config.seed)
    dataset = load_dataset(config.dataset, config.data_dir)
    images, labels = dataset.train.images[..., np.newaxis], dataset.train.labels
    if config.train_limit:
        images, labels = images[: config.train_limit], labels[: config.train_limit]
    rng = np.random.default_rng(config.seed)
    order = rng.permutation(len(images))
    n_val = max(1, int(round(len(images) * config.validation_split)))
    val_idx, train_idx = order[:n_val], order[n_val:]
    one_hot = lambda y: keras.utils.to_categorical(y, len(dataset.class_names))  # noqa: E731
    train_data = _shift_dataset(images[train_idx], one_hot(labels[train_idx]), config)
    val_x, val_y = standardize(images[val_idx]).numpy(), one_hot(labels[val_idx])

    model = build_cnn(images.shape[1:], len(dataset.class_names), config.output_activation, config.l2)
    steps_per_epoch = int(np.ceil(len(train_idx) / config.batch_size))
    schedule = keras.optimizers.schedules.ExponentialDecay(
        config.learning_rate, decay_steps=steps_per_epoch, decay_rate=config.lr_decay
    )
    model.compile(
        optimizer=keras.optimizers.SGD(schedule, momentum=config.momentum),
        loss="categorical_crossentropy",
        metrics=["accuracy"],
    )
    callbacks = [keras.callbacks.ModelCheckpoint(out, monitor="val_accuracy", save_best_only=True)]
    if on_epoch_end is not None:
        callbacks.append(keras.callbacks.LambdaCallback(on_epoch_end=on_epoch_end))
    start = time.perf_counter()
    history = model.fit(train_data, epochs=config.epochs, validation_data=(val_x, val_y),
                        shuffle=False, callbacks=callbacks, verbose=0)  # train_data shuffles itself
    seconds = time.perf_counter() - start
    best = keras.saving.load_model(out)
    test_loss, test_accuracy = best.evaluate(
        standardize(dataset.test.images[..., np.newaxis]).numpy(),
        one_hot(dataset.test.labels), batch_size=512, verbose=0,
    )
    if save_h5:
        best.save(out.with_suffix(".h5"))
    return TrainResult(
        test_accuracy=float(test_accuracy),
        test_loss=float(test_loss),
        best_val_accuracy=float(max(history.history["val_accuracy"])),
        seconds=seconds,
        path=str(out),
        config=config,
    )


def default_model_path() -> Path:
    """Path of the trained MNIST CNN shipped inside the package."""
    return Path(str(resources.files("oipscope") / "assets" / DEFAULT_MODEL_NAME))


def default_model():
    """Load the embedded MNIST CNN (trained by ``oipscope train`` with seed 42)."""
    from .loading import load_model

    return load_model(default_model_path())


def default_subject():
    """The embedded MNIST CNN as a :class:`~oipscope.model.subject.Subject`: per-image standardized input."""
    from .encoding import InputEncoding
    from .subject import Subject

    return Subject(default_model(), InputEncoding.standardize(source="embedded model"), default_model_path())
