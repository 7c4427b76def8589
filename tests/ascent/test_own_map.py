"""The own-map head (oipscope.ascent.own_map) and the exact fast max-pool gradient (oipscope.ascent.pooling)."""

from __future__ import annotations

import numpy as np
import pytest

from oipscope.config import Execution, OipConfig
from oipscope.ascent.objective import parse_objective
from oipscope.ascent.own_map import ascent_layer, own_map_head
from oipscope.ascent.pooling import first_max_pooling, tiled_max_pool
from real_models import build_mini_xception, randomize_batchnorm


def _means_and_gradients(submodel, images, maps):
    """Each element's own-map mean and its input gradient, through the whole sub-model and the head."""
    import tensorflow as tf

    head = own_map_head(submodel)
    assert head is not None
    x, m = tf.constant(images), tf.constant(maps, tf.int32)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        full = tf.reduce_mean(tf.gather(submodel(x, training=False), m, axis=-1, batch_dims=1), axis=[1, 2])
        own = tf.reduce_mean(head(x, m)[..., 0], axis=[1, 2])
    return [t.numpy() for t in (full, own, tape.gradient(full, x), tape.gradient(own, x))]


def _assert_head_matches(submodel, seed=0):
    h, w, c = (int(d) for d in submodel.inputs[0].shape[1:])
    n_maps = int(submodel.outputs[0].shape[-1])
    rng = np.random.default_rng(seed)
    images = rng.normal(size=(6, h, w, c)).astype(np.float32)
    maps = rng.integers(0, n_maps, 6)
    full, own, full_grad, own_grad = _means_and_gradients(submodel, images, maps)
    np.testing.assert_allclose(own, full, rtol=1e-4, atol=1e-5 * max(1.0, np.abs(full).max()))
    np.testing.assert_allclose(own_grad, full_grad, atol=1e-5 * max(1e-3, np.abs(full_grad).max()))
    assert np.abs(full_grad).max() > 0  # the comparison is not between zeros


@pytest.mark.parametrize("layer", ["Conv2D_1", "Conv2D_2", "Conv2D_3"])
def test_head_equals_the_embedded_cnns_layer(layer):
    from oipscope.model.cnn import default_subject

    submodel = default_subject().feature_submodel(layer)
    head = own_map_head(submodel)
    assert head.after == () and head.conv.name == layer
    assert (head.body is None) == (layer == "Conv2D_1")  # the first convolution reads the image itself
    _assert_head_matches(submodel)


@pytest.fixture(scope="module")
def mini_xception():
    return build_mini_xception()


@pytest.mark.parametrize("layer, after", [
    ("activation_1", ["batch_normalization_1", "activation_1"]),  # conv (no bias) → BN → ReLU
    ("batch_normalization_3", ["batch_normalization_3"]),  # 1x1 conv, strides 2, "same" → BN
    ("conv2d_4", []),  # 3x3 "same" with bias, after residual adds
])
def test_head_follows_batchnorm_and_activations_of_a_keras2_style_model(mini_xception, layer, after):
    from oipscope.model.loading import feature_submodel

    submodel = feature_submodel(mini_xception, layer)
    assert [lay.name for lay in own_map_head(submodel).after] == after
    _assert_head_matches(submodel)


def test_head_handles_strides_dilation_padding_and_activation_layers():
    import keras

    inputs = keras.Input((21, 19, 3))
    x = keras.layers.Conv2D(5, 3, strides=2, padding="same", activation="elu", name="strided")(inputs)
    x = keras.layers.Conv2D(6, 3, dilation_rate=2, padding="same", use_bias=False, name="dilated")(x)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.LeakyReLU(negative_slope=0.2, name="leaky")(x)
    y = keras.layers.Conv2D(4, (2, 3), name="oblong")(x)
    y = keras.layers.ReLU(max_value=2.0, name="capped")(y)
    model = keras.Model(inputs, y)
    randomize_batchnorm(model)
    for name in ("strided", "leaky", "capped"):
        _assert_head_matches(keras.Model(inputs, model.get_layer(name).output), seed=len(name))


def test_head_refuses_what_is_not_a_plain_convolution(mini_xception):
    import keras

    from oipscope.model.loading import feature_submodel

    for layer in ("activation_3", "add_1", "global_average_pooling2d_1"):  # separable conv, residual add, 2-D
        assert own_map_head(feature_submodel(mini_xception, layer)) is None, layer
    inputs = keras.Input((10, 10, 4))
    for conv in (keras.layers.Conv2D(4, 3, activation="softmax"),  # mixes the maps
                 keras.layers.Conv2D(4, 3, groups=2), keras.layers.Conv2D(4, 3, strides=(1, 2)),
                 keras.layers.DepthwiseConv2D(3)):
        assert own_map_head(keras.Model(inputs, conv(inputs))) is None, conv
    any_size = keras.Input((None, None, 1))
    assert own_map_head(keras.Model(any_size, keras.layers.Conv2D(2, 3)(any_size))) is None


def test_ascent_layer_reads_own_maps_only_when_the_objective_allows():
    import tensorflow as tf

    from oipscope.model.cnn import default_subject

    submodel = default_subject().feature_submodel("Conv2D_2")
    x = tf.zeros((3, 28, 28, 1))
    maps = tf.constant([5, 0, 63])
    for text, own_maps, width, expected in [
        ("channel", True, 1, [0, 0, 0]),
        ("neuron:5,5 - 0.1*tv", True, 1, [0, 0, 0]),
        ("channel", False, 64, [5, 0, 63]),
        ("channel - 0.5*diversity", True, 64, [5, 0, 63]),  # reads every map of the layer
    ]:
        features, read = ascent_layer(submodel, parse_objective(text), own_maps)(x, maps)
        assert features.shape[-1] == width and read.numpy().tolist() == expected, text


@pytest.mark.slow
def test_own_map_oips_equal_the_whole_layers_within_rounding():
    """Same starts; the ascents differ by summation order only, which docs/oips.md states as a tolerance."""
    from oipscope.model.cnn import default_subject
    from oipscope.search.pipeline import find_oips

    subject = default_subject()
    config = OipConfig(steps=120, restarts=0, rescue_steps=0)
    own = find_oips(subject, "Conv2D_2", range(8), config)
    whole = find_oips(subject, "Conv2D_2", range(8), config, execution=Execution(own_maps=False))
    assert [m.start for m in own.maps] == [m.start for m in whole.maps]
    correlation = [np.corrcoef(a.image.ravel(), b.image.ravel())[0, 1] for a, b in zip(own.maps, whole.maps)]
    assert min(correlation) > 0.95 and np.median(correlation) > 0.999
    activations = np.array([[a.activation, b.activation] for a, b in zip(own.maps, whole.maps)])
    np.testing.assert_allclose(activations[:, 0], activations[:, 1], rtol=0.05)


def test_execution_checks_own_maps():
    from oipscope.errors import ConfigError

    with pytest.raises(ConfigError, match="own_maps"):
        Execution(own_maps="yes")


# ---- pooling --------------------------------------------------------------------------------

def _pool_gradients(x, size, upstream, ours: bool):
    import tensorflow as tf

    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        pooled = tiled_max_pool(x, size) if ours else tf.nn.max_pool(x, size, size, "VALID")
    return pooled.numpy(), tape.gradient(pooled, x, output_gradients=tf.constant(upstream)).numpy()


@pytest.mark.parametrize("shape, size", [((3, 8, 8, 2), 2), ((2, 13, 11, 5), 2), ((2, 10, 9, 3), 3), ((1, 7, 7, 1), 1)])
def test_tiled_max_pool_gradient_is_tensorflows_bit_for_bit(shape, size):
    rng = np.random.default_rng(size)
    x = np.maximum(rng.normal(size=shape), 0.0).astype(np.float32)  # ReLU'd: windows of tied zeros
    x[:, ::3, ::2, :] = 1.0  # and tied positive values
    out_shape = (shape[0], shape[1] // size, shape[2] // size, shape[3])
    upstream = rng.normal(size=out_shape).astype(np.float32)
    plain_pooled, plain_grad = _pool_gradients(x, size, upstream, ours=False)
    our_pooled, our_grad = _pool_gradients(x, size, upstream, ours=True)
    assert np.array_equal(our_pooled, plain_pooled)
    assert np.array_equal(our_grad, plain_grad)
    assert np.count_nonzero(our_grad) > 0


def test_first_max_pooling_swaps_only_tiling_pools_and_only_inside():
    import keras
    import tensorflow as tf

    plain = tf.nn.max_pool
    tiling, overlapping = keras.layers.MaxPooling2D(2), keras.layers.MaxPooling2D(3, strides=2, padding="same")
    x = tf.constant(np.random.default_rng(0).normal(size=(2, 12, 12, 3)).astype(np.float32))

    def gradient(layer):
        with tf.GradientTape() as tape:
            tape.watch(x)
            total = tf.reduce_sum(layer(x) ** 2)
        return tape.gradient(total, x).numpy()

    expected = {layer: gradient(layer) for layer in (tiling, overlapping)}
    with first_max_pooling():
        assert tf.nn.max_pool is not plain
        for layer, grad in expected.items():
            assert np.array_equal(gradient(layer), grad)
    assert tf.nn.max_pool is plain


# ---- the pre-activation through the head --------------------------------------------------

@pytest.mark.parametrize("layer", ["Conv2D_2", "activation_1", "relu_layer"])
def test_head_preactivation_is_the_layer_before_its_last_activation(mini_xception, layer):
    import keras
    import tensorflow as tf

    from oipscope.model.cnn import default_subject
    from oipscope.model.loading import feature_submodel, preactivation_submodel

    if layer == "Conv2D_2":  # a convolution with its own ReLU
        model = default_subject().model
        expected_model = preactivation_submodel(model, layer)
    elif layer == "activation_1":  # conv → BN → Activation("relu"): before the Activation
        model = mini_xception
        expected_model = preactivation_submodel(model, layer)
    else:  # conv → BN → ReLU(): no pre-activation sub-model, the head still knows it is BN's output
        inputs = keras.Input((10, 10, 3))
        normed = keras.layers.BatchNormalization(name="bn")(keras.layers.Conv2D(3, 3, name="conv")(inputs))
        model = keras.Model(inputs, keras.layers.ReLU(name=layer)(normed))
        randomize_batchnorm(model)
        assert preactivation_submodel(model, layer) is None
        expected_model = keras.Model(inputs, normed)
    submodel = feature_submodel(model, layer)
    head = own_map_head(submodel)
    assert head.has_activation
    h, w, c = (int(d) for d in submodel.inputs[0].shape[1:])
    images = tf.constant(np.random.default_rng(1).normal(size=(4, h, w, c)).astype(np.float32))
    maps = tf.constant([0, 1, 2, 1])
    expected = tf.gather(expected_model(images), maps, axis=-1, batch_dims=1).numpy()
    own = head(images, maps, tf.constant(True))[..., 0].numpy()
    np.testing.assert_allclose(own, expected, atol=1e-5 * max(1.0, np.abs(expected).max()))
    assert np.array_equal(head(images, maps, tf.constant(False)).numpy(), head(images, maps).numpy())
    assert (expected < 0).any()  # the pre-activation is not the activated map


def test_a_layer_without_activation_has_no_preactivation_through_the_head(mini_xception):
    from oipscope.ascent.pixels import ascend
    from oipscope.errors import ConfigError
    from oipscope.model.loading import feature_submodel
    from oipscope.ascent.own_map import preactivation_through_head

    submodel = feature_submodel(mini_xception, "batch_normalization_3")  # conv → BN: nothing to leave out
    assert not preactivation_through_head(submodel, parse_objective("channel"))
    with pytest.raises(ConfigError, match="pre-activation"):
        ascend(submodel, np.zeros((1, 32, 32, 1), np.float32), [0], OipConfig(steps=2), preactivation=True)


@pytest.mark.slow
def test_the_rescue_climbs_through_the_head_without_a_loop_of_its_own(monkeypatch):
    """With the own-map head, the rescue's pre-activation stage runs in the layer's one compiled loop."""
    from oipscope.model.cnn import default_subject
    from oipscope.ascent import pixels as engine
    from oipscope.search.pipeline import find_oips

    subject = default_subject()
    calls = []
    real = engine.ascend

    def recording(submodel, images, maps, config=OipConfig(), **kwargs):
        calls.append((submodel.name, kwargs.get("preactivation", False)))
        return real(submodel, images, maps, config, **kwargs)

    monkeypatch.setattr("oipscope.search.pipeline.ascend", recording)
    config = OipConfig(steps=30, n_candidates=2, restarts=1, rescue_steps=5, precursor=False)
    find_oips(subject, "Conv2D_2", range(64), config)
    assert ("oip_Conv2D_2", True) in calls  # the rescue ran through the head...
    assert all(name == "oip_Conv2D_2" for name, _ in calls)  # ...and no pre-activation sub-model was used
    calls.clear()
    find_oips(subject, "Conv2D_2", range(64), config, execution=Execution(own_maps=False))
    assert ("oip_pre_Conv2D_2", False) in calls and not any(pre for _, pre in calls)
