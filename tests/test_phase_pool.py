"""A first convolution and its max pool computed per pooling phase (oipscope.phase_pool)."""

from __future__ import annotations

import numpy as np
import pytest

from oipscope.config import Execution
from oipscope.errors import ConfigError
from oipscope.phase_pool import PhaseConvPool, _first_maximum, phase_pooled
from oipscope.pooling import tiled_max_pool
from real_models import randomize_batchnorm


def _values_and_gradients(model, images, seed=1):
    """The model's output and the input gradient of a random weighting of it."""
    import tensorflow as tf

    x = tf.constant(images)
    with tf.GradientTape() as tape:
        tape.watch(x)
        out = model(x, training=False)
        weighting = tf.constant(np.random.default_rng(seed).normal(size=out.shape[1:]).astype(np.float32))
        total = tf.reduce_sum(out * weighting)
    return out.numpy(), tape.gradient(total, x).numpy()


def _assert_rewritten_equal(model, n_phase_layers=1, seed=0):
    rewritten = phase_pooled(model)
    assert rewritten is not model
    assert sum(isinstance(layer, PhaseConvPool) for layer in rewritten.layers) == n_phase_layers
    shape = tuple(int(d) for d in model.inputs[0].shape[1:])
    images = np.random.default_rng(seed).normal(size=(5, *shape)).astype(np.float32)
    if shape[-1] == 3:
        images = images * 60 + 128  # raw pixels for a Rescaling model
    want, want_grad = _values_and_gradients(model, images)
    got, got_grad = _values_and_gradients(rewritten, images)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * np.abs(want).max())
    np.testing.assert_allclose(got_grad, want_grad, atol=1e-5 * np.abs(want_grad).max())
    assert np.abs(want_grad).max() > 0 and np.abs(want).max() > 0  # not a comparison of zeros
    return rewritten


def test_the_embedded_cnns_first_block_is_rewritten_and_equal():
    from oipscope.cnn import default_subject

    submodel = default_subject().feature_submodel("Conv2D_3")
    rewritten = _assert_rewritten_equal(submodel)
    assert [layer.name for layer in rewritten.layers[1:]] == ["Conv2D_1_phase_pooled", "Conv2D_2", "Max_Pool_2",
                                                             "Conv2D_3"]
    assert phase_pooled(submodel) is rewritten  # made once per model


def _rgb_student_cnn(height=31, width=29):
    """A CIFAR-style RGB CNN on raw pixels, of an odd size: Rescaling, Conv (same, no bias) → BN → ReLU → pool."""
    import keras
    from keras import layers as L

    keras.utils.set_random_seed(3)
    image = keras.Input(shape=(height, width, 3), name="image")
    x = L.Rescaling(1 / 255, name="rescaling")(image)
    x = L.Conv2D(16, 3, padding="same", use_bias=False, name="conv1")(x)
    x = L.BatchNormalization(name="bn1")(x)
    x = L.ReLU(name="relu1")(x)
    x = L.MaxPooling2D(2, name="pool1")(x)
    x = L.Conv2D(24, 3, padding="same", activation="relu", name="conv2")(x)
    x = L.MaxPooling2D(2, name="pool2")(x)  # 24 input channels: not rewritten
    x = L.GlobalAveragePooling2D(name="gap")(x)
    model = keras.Model(image, L.Dense(10, name="logits")(x), name="rgb_student")
    randomize_batchnorm(model)
    return model


def test_an_rgb_cnn_with_rescaling_and_batchnorm_of_odd_size():
    _assert_rewritten_equal(_rgb_student_cnn())


@pytest.mark.parametrize("kernel, padding, pool, chain", [
    (5, "valid", 2, ["leaky"]),
    (3, "valid", 3, ["elu"]),
    (2, "same", 2, ["relu6", "bn"]),
    (3, "same", 4, []),
])
def test_kernels_paddings_pools_and_chains(kernel, padding, pool, chain):
    import keras
    from keras import layers as L

    keras.utils.set_random_seed(5)
    image = keras.Input(shape=(30, 27, 1))
    x = L.Conv2D(8, kernel, padding=padding, activation=None if chain else "tanh")(image)
    for kind in chain:
        x = {"leaky": lambda: L.LeakyReLU(0.1), "elu": lambda: L.Activation("elu"),
             "relu6": lambda: L.ReLU(max_value=6.0), "bn": L.BatchNormalization}[kind]()(x)
    x = L.MaxPooling2D(pool)(x)
    model = keras.Model(image, L.Conv2D(4, 2)(x))
    randomize_batchnorm(model)
    _assert_rewritten_equal(model)


def _model_with(block):
    import keras

    image = keras.Input(shape=(16, 16, 2))
    return keras.Model(image, block(image))


@pytest.mark.parametrize("why, block", [
    ("eight input channels", lambda L: lambda x: L.MaxPooling2D(2)(L.Conv2D(4, 3)(L.Conv2D(8, 1)(x)))),
    ("a strided convolution", lambda L: lambda x: L.MaxPooling2D(2)(L.Conv2D(4, 3, strides=2)(x))),
    ("overlapping windows", lambda L: lambda x: L.MaxPooling2D(2, strides=1)(L.Conv2D(4, 3)(x))),
    ("a pool with padding", lambda L: lambda x: L.MaxPooling2D(2, padding="same")(L.Conv2D(4, 3)(x))),
    ("an average pool", lambda L: lambda x: L.AveragePooling2D(2)(L.Conv2D(4, 3)(x))),
    ("a dropout in between", lambda L: lambda x: L.MaxPooling2D(2)(L.Dropout(0.5)(L.Conv2D(4, 3)(x)))),
    ("no pool: the layer itself", lambda L: lambda x: L.ReLU()(L.Conv2D(4, 3)(x))),
])
def test_chains_that_are_left_alone(why, block):
    from keras import layers

    model = _model_with(block(layers))
    assert phase_pooled(model) is model, why


def test_a_convolution_read_twice_is_left_alone():
    import keras
    from keras import layers as L

    image = keras.Input(shape=(16, 16, 3))
    conv = L.Conv2D(3, 3, padding="same", activation="relu")(image)
    pooled = L.MaxPooling2D(2)(conv)
    skip = L.MaxPooling2D(2)(L.Add()([conv, image]))  # a residual reads the convolution too
    model = keras.Model(image, L.Concatenate()([pooled, skip]))
    assert phase_pooled(model) is model


def test_the_rewritten_model_follows_the_weights():
    model = _rgb_student_cnn(16, 16)
    rewritten = phase_pooled(model)
    conv = model.get_layer("conv1")
    kernel = conv.get_weights()[0]
    conv.set_weights([kernel * -2.0])
    _assert_rewritten_equal(model)  # the same rewritten model, the new kernel
    assert phase_pooled(model) is rewritten


def test_the_gradient_goes_to_the_first_maximum_as_max_pool_grad_routes_it():
    """Ties at zero and at positive values: the same routing as TensorFlow's MaxPoolGrad."""
    import tensorflow as tf

    rng = np.random.default_rng(7)
    for size in (2, 3):
        x = rng.integers(-1, 2, size=(3, 4 * size, 5 * size, 6)).astype(np.float32)  # many ties
        x = np.maximum(x, 0)
        upstream = rng.normal(size=(3, 4, 5, 6)).astype(np.float32)
        blocks = tf.constant(x.reshape(3, 4, size, 5, size, 6).transpose(0, 1, 3, 2, 4, 5).reshape(3, 4, 5, -1, 6))
        spatial = tf.constant(x)
        with tf.GradientTape(persistent=True) as tape:
            tape.watch([blocks, spatial])
            by_phase = _first_maximum(blocks)
            by_pool = tiled_max_pool(spatial, size)
            totals = [tf.reduce_sum(by_phase * upstream), tf.reduce_sum(by_pool * upstream)]
        np.testing.assert_array_equal(by_phase.numpy(), by_pool.numpy())
        phase_grad = tape.gradient(totals[0], blocks).numpy()
        pool_grad = tape.gradient(totals[1], spatial).numpy()
        back = phase_grad.reshape(3, 4, 5, size, size, 6).transpose(0, 1, 3, 2, 4, 5).reshape(x.shape)
        np.testing.assert_array_equal(back, pool_grad)


@pytest.mark.slow
def test_an_ascent_through_phases_follows_the_keras_one():
    from oipscope.cnn import default_subject
    from oipscope.engine import ascend

    subject = default_subject()
    submodel = subject.feature_submodel("Conv2D_2")
    images = np.random.default_rng(0).normal(size=(8, 28, 28, 1)).astype(np.float32)
    maps = np.arange(8) * 7
    runs = [ascend(submodel, images, maps, steps=40, stop_on_convergence=False, encoding=subject.encoding,
                   execution=Execution(phase_pools=phases)) for phases in (False, True)]
    np.testing.assert_allclose(runs[1].activations, runs[0].activations, rtol=1e-3)
    for keras_image, phase_image in zip(runs[0].images, runs[1].images):
        assert np.corrcoef(keras_image.ravel(), phase_image.ravel())[0, 1] > 0.9999
    assert not np.array_equal(runs[0].images, runs[1].images)  # the sums did run in another order


def test_execution_checks_phase_pools():
    with pytest.raises(ConfigError, match="phase_pools"):
        Execution(phase_pools="yes")


def test_a_model_for_any_image_size_is_left_alone():
    import keras
    from keras import layers as L

    image = keras.Input(shape=(None, None, 3))
    model = keras.Model(image, L.MaxPooling2D(2)(L.Conv2D(4, 3, activation="relu")(image)))
    assert phase_pooled(model) is model
