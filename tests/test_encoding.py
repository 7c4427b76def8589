"""Input encodings: exact values of encode/decode/project, option parsing, recognition from model layers,
and the ascent keeping images inside the encoding."""

from __future__ import annotations

import numpy as np
import pytest

from oipscope.encoding import InputEncoding, parse_encoding, preprocessing_layers, resolve_encoding
from oipscope.errors import ConfigError

IMAGENET = InputEncoding.value_range(0, 1, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


def test_standardize_is_the_series_per_image_standardization():
    import tensorflow as tf

    pixels = np.random.default_rng(0).integers(0, 256, (3, 8, 8, 1)).astype(np.float32)
    got = InputEncoding.standardize().encode(pixels).numpy()
    np.testing.assert_array_equal(got, tf.image.per_image_standardization(pixels).numpy())
    np.testing.assert_array_equal(InputEncoding.standardize().decode(got), got)  # no pixel units to go back to


@pytest.mark.parametrize("low, high", [(0, 1), (-1, 1), (0, 255)])
def test_a_range_maps_0_and_255_onto_its_ends_and_decodes_back(low, high):
    encoding = InputEncoding.value_range(low, high)
    pixels = np.array([0, 51, 255], np.float32).reshape(1, 1, 3, 1)
    encoded = encoding.encode(pixels).numpy().reshape(-1)
    np.testing.assert_allclose(encoded, [low, low + (high - low) * 0.2, high], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(encoding.decode(encoded.reshape(1, 1, 3, 1)).reshape(-1), [0, 51, 255], atol=1e-4)


def test_imagenet_mean_and_std_apply_per_channel_after_the_range():
    pixels = np.array([[[[255.0, 0.0, 127.5]]]], np.float32)
    got = IMAGENET.encode(pixels).numpy().reshape(-1)
    expected = (np.array([1.0, 0.0, 0.5]) - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225]
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    np.testing.assert_allclose(IMAGENET.decode(got.reshape(1, 1, 1, 3)).reshape(-1), [255, 0, 127.5], atol=1e-3)
    lo, hi = IMAGENET.bounds(3)
    np.testing.assert_allclose(lo, -np.array([0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225], rtol=1e-6)
    np.testing.assert_allclose(hi, (1 - np.array([0.485, 0.456, 0.406])) / [0.229, 0.224, 0.225], rtol=1e-6)


def test_project_clips_to_the_range_and_start_stays_inside():
    import tensorflow as tf

    encoding = InputEncoding.value_range(-1, 1)
    x = tf.constant([[[[-3.0], [0.25], [7.0]]]])
    np.testing.assert_array_equal(encoding.project(x).numpy().reshape(-1), [-1.0, 0.25, 1.0])
    noise = np.random.default_rng(1).standard_normal((4, 6, 6, 3)).astype(np.float32)
    start = IMAGENET.start(noise)
    lo, hi = IMAGENET.bounds(3)
    assert np.all(start >= lo) and np.all(start <= hi)
    assert start.std() > 0.2  # the noise survives: not everything clipped to one value
    np.testing.assert_array_equal(InputEncoding.standardize().start(noise), noise)


def test_free_gradient_drops_only_pushes_past_a_bound():
    import tensorflow as tf

    encoding = InputEncoding.value_range(0, 1)
    x = tf.constant([[[[0.0], [0.0], [1.0], [1.0], [0.5]]]])
    grad = tf.constant([[[[-2.0], [3.0], [4.0], [-5.0], [6.0]]]])
    np.testing.assert_array_equal(encoding.free_gradient(x, grad).numpy().reshape(-1), [0, 3, 0, -5, 6])


@pytest.mark.parametrize("kwargs, message", [
    ({"input_range": "1,0"}, "LO must be below HI"),
    ({"input_range": "0,0"}, "LO must be below HI"),
    ({"input_range": "0,1,2"}, "two numbers"),
    ({"input_range": "a,b"}, "comma-separated numbers"),
    ({"mean": "0.5"}, "need --input-range"),
    ({"input_range": "0,1", "standardize": True}, "cannot be combined"),
    ({"input_range": "0,1", "std": "0,1"}, "must be > 0"),
    ({"input_range": "0,1", "mean": "0.1,0.2", "std": "0.1,0.2,0.3"}, "give one per channel"),
])
def test_bad_encoding_options_name_the_problem(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        parse_encoding(**kwargs)


def test_options_give_the_encoding_or_none():
    assert parse_encoding() is None
    assert parse_encoding(standardize=True) == InputEncoding.standardize()
    assert parse_encoding("-1,1") == InputEncoding.value_range(-1, 1)
    assert parse_encoding("0,1", "0.485,0.456,0.406", "0.229,0.224,0.225") == IMAGENET


def test_mean_std_length_is_checked_against_the_model_channels():
    with pytest.raises(ConfigError, match=r"3 values but the model has 1 channel\(s\); give 1 value$"):
        IMAGENET.check_channels(1)
    with pytest.raises(ConfigError, match="give 1 value or 3, one per channel"):
        InputEncoding.value_range(0, 1, (0.5, 0.5), (0.25,)).check_channels(3)
    InputEncoding.value_range(0, 1, (0.5,), (0.25,)).check_channels(3)  # one value for all channels is fine


def test_round_trip_through_dict_and_old_results():
    for encoding in (InputEncoding.standardize(), InputEncoding.value_range(-1, 1), IMAGENET):
        assert InputEncoding.from_dict(encoding.to_dict()) == encoding
    assert InputEncoding.from_dict(None) == InputEncoding.standardize()
    assert IMAGENET.describe() == "range [0, 1], mean (0.485, 0.456, 0.406), std (0.229, 0.224, 0.225)"


def _model(first_layers):
    import keras

    inputs = keras.Input((8, 8, 3))
    x = inputs
    for layer in first_layers:
        x = layer(x)
    x = keras.layers.Conv2D(2, 3, activation="relu", name="conv")(x)
    return keras.Model(inputs, x)


def test_rescaling_and_normalization_first_layers_mean_raw_pixels():
    import keras

    rescaled = _model([keras.layers.Rescaling(1 / 255, name="scale")])
    assert preprocessing_layers(rescaled) == ["scale"]
    encoding = resolve_encoding(rescaled)
    assert encoding == InputEncoding.value_range(0, 255) and encoding.source == "model layers (scale)"
    augmented = _model([keras.layers.RandomFlip(name="flip"), keras.layers.Rescaling(1 / 127.5, -1, name="s")])
    assert preprocessing_layers(augmented) == ["s"]
    plain = _model([])
    assert preprocessing_layers(plain) == []
    assumed = resolve_encoding(plain)
    assert assumed == InputEncoding.standardize() and assumed.source == "assumed"
    assert resolve_encoding(rescaled, InputEncoding.value_range(0, 1)) == InputEncoding.value_range(0, 1)


def test_ascent_in_a_range_stays_inside_it_and_raises_the_activation():
    import keras

    from oipscope.engine import OipConfig, ascend

    keras.utils.set_random_seed(3)
    inputs = keras.Input((10, 10, 3))
    outputs = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(inputs)
    sub = keras.Model(inputs, outputs)
    encoding = IMAGENET
    noise = np.random.default_rng(0).standard_normal((4, 10, 10, 3)).astype(np.float32)
    start = encoding.start(noise)
    out = ascend(sub, start, [0, 1, 2, 3], OipConfig(steps=60), encoding=encoding)
    lo, hi = encoding.bounds(3)
    assert np.all(out.images >= lo - 1e-6) and np.all(out.images <= hi + 1e-6)
    assert np.all(out.history[:, -1] > out.history[:, 0])
    standardized = ascend(sub, noise[:2], [0, 1], OipConfig(steps=20))
    same = ascend(sub, noise[:2], [0, 1], OipConfig(steps=20), encoding=InputEncoding.standardize())
    np.testing.assert_array_equal(standardized.images, same.images)
