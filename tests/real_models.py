"""Small test models shaped like the real third-party CNNs oipscope must handle.

Plain builders, importable from any test as ``from real_models import ...``
(conftest puts tests/ on sys.path). Each is seeded, tiny (a forward pass of
64 images takes milliseconds) and has batch normalization with non-trivial
moving statistics, so BN is no identity.

- :func:`build_mini_xception`: a Keras-2 mini-Xception (grey input on [-1, 1],
  Keras 2 auto names), optionally written as a legacy ``.h5`` by real Keras 2
  (``tf_keras``) when installed, else by Keras 3.
- :func:`build_rgb_rescaling`: RGB on raw 0..255 pixels, ``Rescaling(1/255)`` first.
- :func:`build_rgb_imagenet`: RGB on ImageNet-normalized input, MobileNet-like blocks.

This module must not import Keras 3 at import time: the ``.h5`` writer runs
it in a subprocess that uses ``tf_keras`` only.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "MINI_XCEPTION_CLASSES",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "has_tf_keras",
    "build_mini_xception",
    "build_rgb_rescaling",
    "build_rgb_imagenet",
    "imagenet_normalize",
    "randomize_batchnorm",
]

MINI_XCEPTION_CLASSES = 7
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype="float32")
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype="float32")
SEED = 1234


def has_tf_keras() -> bool:
    """Whether Keras 2 (the ``tf_keras`` package) is installed."""
    return importlib.util.find_spec("tf_keras") is not None


def imagenet_normalize(pixels: np.ndarray) -> np.ndarray:
    """Raw 0..255 RGB pixels to the input of :func:`build_rgb_imagenet`."""
    return ((np.asarray(pixels, "float32") / 255.0 - IMAGENET_MEAN) / IMAGENET_STD).astype("float32")


def randomize_batchnorm(model, seed: int = SEED) -> None:
    """Give every BatchNormalization layer random gamma, beta, moving mean and variance."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if type(layer).__name__ == "BatchNormalization":
            shapes = [w.shape for w in layer.get_weights()]  # gamma, beta, moving mean, moving variance
            values = [rng.uniform(0.5, 1.5, shapes[0]), rng.normal(0, 0.2, shapes[1]),
                      rng.normal(0, 0.3, shapes[2]), rng.uniform(0.3, 2.0, shapes[3])]
            layer.set_weights([v.astype("float32") for v in values])


# --- mini-Xception (Keras 2 style) ------------------------------------------------------


def _mini_xception_graph(k: Any, input_size: int, n_classes: int = MINI_XCEPTION_CLASSES):
    """The architecture, for a Keras module ``k`` (``keras`` 3 or ``tf_keras``), with Keras 2 names.

    Same layer creation order as the original (oarriaga/face_classification):
    in each block the 1x1 shortcut comes first.
    """
    L = k.layers
    counts: dict[str, int] = {}

    def name(base: str) -> str:
        counts[base] = counts.get(base, 0) + 1
        return f"{base}_{counts[base]}"

    reg = k.regularizers.l2(0.01)
    image = L.Input(shape=(input_size, input_size, 1), name="input_1")
    x = image
    for _ in range(2):
        x = L.Conv2D(8, (3, 3), strides=(1, 1), kernel_regularizer=reg, use_bias=False, name=name("conv2d"))(x)
        x = L.BatchNormalization(name=name("batch_normalization"))(x)
        x = L.Activation("relu", name=name("activation"))(x)
    for filters in (16, 32):
        residual = L.Conv2D(filters, (1, 1), strides=(2, 2), padding="same", use_bias=False, name=name("conv2d"))(x)
        residual = L.BatchNormalization(name=name("batch_normalization"))(residual)
        x = L.SeparableConv2D(filters, (3, 3), padding="same", depthwise_regularizer=reg, use_bias=False,
                              name=name("separable_conv2d"))(x)
        x = L.BatchNormalization(name=name("batch_normalization"))(x)
        x = L.Activation("relu", name=name("activation"))(x)
        x = L.SeparableConv2D(filters, (3, 3), padding="same", depthwise_regularizer=reg, use_bias=False,
                              name=name("separable_conv2d"))(x)
        x = L.BatchNormalization(name=name("batch_normalization"))(x)
        x = L.MaxPooling2D((3, 3), strides=(2, 2), padding="same", name=name("max_pooling2d"))(x)
        x = L.Add(name=name("add"))([x, residual])
    x = L.Conv2D(n_classes, (3, 3), padding="same", name=name("conv2d"))(x)
    x = L.GlobalAveragePooling2D(name=name("global_average_pooling2d"))(x)
    output = L.Activation("softmax", name="predictions")(x)
    return k.Model(image, output, name="mini_XCEPTION")


def build_mini_xception(input_size: int = 32, path: str | os.PathLike | None = None):
    """A seeded Keras 3 mini-Xception (input: grey images on [-1, 1], 7 classes).

    With ``path``, the same model (same weights) is also written there as a
    legacy ``.h5``: by real Keras 2 (``tf_keras``, in a subprocess, compiled as
    a trained model's file would be) when installed, else by Keras 3. The
    Keras 2 writer checks that its model's outputs equal the Keras 3 model's.
    """
    import keras

    keras.utils.set_random_seed(SEED)
    model = _mini_xception_graph(keras, input_size)
    randomize_batchnorm(model)
    if path is not None:
        path = Path(path)
        if has_tf_keras():
            _write_h5_with_tf_keras(model, path, input_size)
        else:
            model.save(path)  # Keras 3's legacy HDF5 writer (the suffix selects it)
    return model


def _write_h5_with_tf_keras(model, path: Path, input_size: int) -> None:
    """Rebuild ``model`` in Keras 2 in a fresh process, copy its weights, save as ``.h5``."""
    probe = np.random.default_rng(SEED).uniform(-1, 1, (4, input_size, input_size, 1)).astype("float32")
    with tempfile.TemporaryDirectory() as tmp:
        weights = Path(tmp) / "weights.npz"
        arrays = {f"{layer.name}:{i}": w for layer in model.layers for i, w in enumerate(layer.get_weights())}
        np.savez(weights, probe=probe, expected=model.predict(probe, verbose=0), **arrays)
        code = ("import sys; sys.path.insert(0, sys.argv[1]); import real_models; "
                "real_models._tf_keras_main(sys.argv[2], sys.argv[3], int(sys.argv[4]))")
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "TF_USE_LEGACY_KERAS": "1"}
        done = subprocess.run([sys.executable, "-c", code, str(Path(__file__).parent), str(weights), str(path),
                               str(input_size)], capture_output=True, text=True, env=env, timeout=300)
    if done.returncode != 0:
        raise RuntimeError(f"writing {path} with tf_keras failed:\n{done.stderr[-3000:]}")


def _tf_keras_main(weights: str, path: str, input_size: int) -> None:
    """Subprocess side of :func:`_write_h5_with_tf_keras` (Keras 2 only in this process)."""
    import tf_keras

    arrays = np.load(weights)
    model = _mini_xception_graph(tf_keras, input_size)
    for layer in model.layers:
        count = len(layer.get_weights())
        if count:
            layer.set_weights([arrays[f"{layer.name}:{i}"] for i in range(count)])
    got = model.predict(arrays["probe"], verbose=0)
    np.testing.assert_allclose(got, arrays["expected"], rtol=1e-4, atol=1e-6)
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    model.optimizer.build(model.trainable_variables)  # a trained model's file holds optimizer weights too
    model.save(path, save_format="h5")


# --- RGB models -------------------------------------------------------------------------


def build_residual_base(input_shape: tuple = (24, 24, 3), name: str = "base"):
    """A small pretrained-like base as ``keras.applications`` build them without their top:
    Conv → BN → ReLU, a residual block, pooling, a last conv. ``input_shape`` may be
    ``(None, None, 3)``, as for a base built without ``input_shape``.

    Layers: ``stem_conv/bn/relu``, ``block_conv/bn``, ``block_add``, ``block_out``, ``pool``, ``top_conv``.
    """
    import keras
    from keras import layers as L

    keras.utils.set_random_seed(SEED)
    image = keras.Input(shape=input_shape)
    x = L.Conv2D(8, 3, padding="same", use_bias=False, name="stem_conv")(image)
    x = L.BatchNormalization(name="stem_bn")(x)
    x = L.ReLU(name="stem_relu")(x)
    y = L.Conv2D(8, 3, padding="same", name="block_conv")(x)
    y = L.BatchNormalization(name="block_bn")(y)
    x = L.ReLU(name="block_out")(L.Add(name="block_add")([x, y]))
    x = L.MaxPooling2D(2, name="pool")(x)
    x = L.Conv2D(12, 3, activation="relu", name="top_conv")(x)
    base = keras.Model(image, x, name=name)
    randomize_batchnorm(base)
    return base


def build_rgb_rescaling(input_size: int = 32):
    """RGB model on raw 0..255 pixels: ``Rescaling(1/255)``, Conv+BN+ReLU blocks, a residual, 5 classes.

    Default layers: ``stem_relu`` (feeds the block and its shortcut),
    ``block1_relu1``, ``block1_bn2`` (feeds the ``Add``), ``block2_relu``.
    """
    import keras
    from keras import layers as L

    keras.utils.set_random_seed(SEED)
    image = keras.Input(shape=(input_size, input_size, 3), name="image")
    x = L.Rescaling(1 / 255, name="rescaling")(image)
    x = L.Conv2D(8, 3, padding="same", use_bias=False, name="stem_conv")(x)
    x = L.BatchNormalization(name="stem_bn")(x)
    x = L.ReLU(name="stem_relu")(x)
    y = L.Conv2D(8, 3, padding="same", use_bias=False, name="block1_conv1")(x)
    y = L.BatchNormalization(name="block1_bn1")(y)
    y = L.ReLU(name="block1_relu1")(y)
    y = L.Conv2D(8, 3, padding="same", use_bias=False, name="block1_conv2")(y)
    y = L.BatchNormalization(name="block1_bn2")(y)
    x = L.Add(name="block1_add")([x, y])
    x = L.ReLU(name="block1_out")(x)
    x = L.MaxPooling2D(2, name="pool")(x)
    x = L.Conv2D(16, 3, padding="same", use_bias=False, name="block2_conv")(x)
    x = L.BatchNormalization(name="block2_bn")(x)
    x = L.ReLU(name="block2_relu")(x)
    x = L.GlobalAveragePooling2D(name="avg_pool")(x)
    output = L.Dense(5, activation="softmax", name="predictions")(x)
    model = keras.Model(image, output, name="rgb_rescaling")
    randomize_batchnorm(model)
    return model


def build_rgb_imagenet(input_size: int = 32):
    """MobileNet-like RGB model on ImageNet-normalized input (see :func:`imagenet_normalize`).

    Default layers: ``conv1_relu``, then ``conv_dw_N_relu`` and ``conv_pw_N_relu`` for N = 1, 2.
    """
    import keras
    from keras import layers as L

    keras.utils.set_random_seed(SEED)
    image = keras.Input(shape=(input_size, input_size, 3), name="input_1")
    x = L.Conv2D(8, 3, strides=2, padding="same", use_bias=False, name="conv1")(image)
    x = L.BatchNormalization(name="conv1_bn")(x)
    x = L.ReLU(6.0, name="conv1_relu")(x)
    for n, (filters, stride) in enumerate([(16, 1), (32, 2)], start=1):
        x = L.DepthwiseConv2D(3, strides=stride, padding="same", use_bias=False, name=f"conv_dw_{n}")(x)
        x = L.BatchNormalization(name=f"conv_dw_{n}_bn")(x)
        x = L.ReLU(6.0, name=f"conv_dw_{n}_relu")(x)
        x = L.Conv2D(filters, 1, padding="same", use_bias=False, name=f"conv_pw_{n}")(x)
        x = L.BatchNormalization(name=f"conv_pw_{n}_bn")(x)
        x = L.ReLU(6.0, name=f"conv_pw_{n}_relu")(x)
    x = L.GlobalAveragePooling2D(name="global_average_pooling2d")(x)
    x = L.Dropout(0.1, name="dropout")(x)
    output = L.Dense(5, activation="softmax", name="predictions")(x)
    model = keras.Model(image, output, name="rgb_imagenet")
    randomize_batchnorm(model)
    return model
