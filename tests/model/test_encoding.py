"""Input encodings: exact values of encode/decode/project, option parsing, recognition from model layers,
and the ascent keeping images inside the encoding."""

from __future__ import annotations

import numpy as np
import pytest

from oipscope.model.encoding import InputEncoding, parse_encoding, preprocessing_layers, resolve_encoding
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


@pytest.mark.slow
def test_ascent_in_a_range_stays_inside_it_and_raises_the_activation():
    import keras

    from oipscope.ascent.pixels import OipConfig, ascend

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


# ---- BGR channel order and Keras' preprocess_input modes ----------------------------------------------

@pytest.mark.parametrize("mode", ["caffe", "tf", "torch"])
def test_presets_encode_exactly_what_keras_preprocess_input_gives(mode):
    from keras.applications import imagenet_utils

    pixels = np.random.default_rng(2).integers(0, 256, (2, 5, 4, 3)).astype(np.float32)
    expected = imagenet_utils.preprocess_input(pixels.copy(), mode=mode)
    encoding = InputEncoding.preset(mode)
    np.testing.assert_allclose(encoding.encode(pixels).numpy(), expected, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(encoding.decode(expected), pixels, atol=2e-3)  # back to RGB pixels
    assert parse_encoding(preprocess=mode.upper()) == encoding


def test_bgr_reverses_the_channels_into_the_model_and_back_for_display():
    red = np.zeros((1, 2, 2, 3), np.float32)
    red[..., 0] = 255.0
    encoding = InputEncoding.value_range(0, 1, channel_order="bgr")
    into_model = encoding.encode(red).numpy()
    np.testing.assert_array_equal(into_model[..., 2], 1.0)  # red is the model's last channel
    np.testing.assert_array_equal(into_model[..., :2], 0.0)
    np.testing.assert_array_equal(encoding.decode(into_model), red)
    standardized = InputEncoding.standardize().with_channel_order("bgr")
    np.testing.assert_array_equal(standardized.decode(standardized.encode(red).numpy()),
                                  InputEncoding.standardize().encode(red).numpy())
    assert "BGR" in encoding.describe() and "BGR" not in InputEncoding.value_range(0, 1).describe()


def test_bgr_round_trips_through_dict_and_rgb_dicts_stay_as_before():
    caffe = InputEncoding.preset("caffe")
    assert caffe.channel_order == "bgr"
    assert InputEncoding.from_dict(caffe.to_dict()) == caffe
    assert "channel_order" not in IMAGENET.to_dict()  # keys of runs saved before stay valid
    assert InputEncoding.from_dict(IMAGENET.to_dict()) == IMAGENET
    assert caffe != caffe.with_channel_order("rgb")


@pytest.mark.parametrize("kwargs, message", [
    ({"preprocess": "vgg"}, "choose one of caffe, tf, torch"),
    ({"preprocess": "caffe", "input_range": "0,255"}, "--preprocess sets the whole encoding"),
    ({"preprocess": "tf", "standardize": True}, "--preprocess sets the whole encoding"),
    ({"bgr": True}, "--bgr goes with"),
])
def test_bad_preprocess_and_bgr_options_name_the_problem(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        parse_encoding(**kwargs)


def test_bgr_options_give_the_encoding():
    assert parse_encoding("0,255", "103.939,116.779,123.68", bgr=True) == InputEncoding.preset("caffe")
    assert parse_encoding(standardize=True, bgr=True).channel_order == "bgr"
    assert parse_encoding(preprocess="tf", bgr=True) == InputEncoding.value_range(-1, 1, channel_order="bgr")
    torch_bgr = parse_encoding(preprocess="torch", bgr=True)  # the means follow their channels
    assert torch_bgr.mean == (0.406, 0.456, 0.485) and torch_bgr.std == (0.225, 0.224, 0.229)
    assert torch_bgr.with_channel_order("rgb") == InputEncoding.preset("torch")


@pytest.mark.parametrize("mode", ["caffe", "tf", "torch"])
def test_a_preset_on_a_grey_model_says_it_is_for_colour_models(mode):
    with pytest.raises(ConfigError, match=f"--preprocess {mode} is for colour models .3 channels.; the model has 1"):
        parse_encoding(preprocess=mode).check_channels(1)


def test_bgr_needs_three_channels():
    with pytest.raises(ConfigError, match="BGR channel order needs a colour model"):
        InputEncoding.preset("caffe").check_channels(1)
    with pytest.raises(ConfigError, match="BGR channel order needs a colour model"):
        InputEncoding.standardize().with_channel_order("bgr").encode(np.zeros((1, 4, 4, 1)))


def test_a_bgr_model_sees_through_a_bgr_encoding_what_its_rgb_twin_sees():
    """A model trained on BGR input is an RGB model after a channel flip: both see the same from RGB pixels."""
    import keras

    from oipscope.model.subject import Subject

    rgb_input = keras.Input((8, 8, 3))
    rgb = keras.Model(rgb_input, keras.layers.Conv2D(4, 3, activation="relu")(rgb_input))
    bgr_input = keras.Input((8, 8, 3))
    conv = keras.layers.Conv2D(4, 3, activation="relu")
    bgr = keras.Model(bgr_input, conv(bgr_input))
    kernel, bias = rgb.layers[-1].get_weights()
    conv.set_weights([kernel[:, :, ::-1, :], bias])  # the same filters, reading channels in BGR order
    pixels = np.random.default_rng(3).integers(0, 256, (2, 8, 8, 3)).astype(np.float32)
    caffe_rgb = InputEncoding.value_range(0, 255, (123.68, 116.779, 103.939))
    seen_rgb = rgb(Subject(rgb, caffe_rgb).encode(pixels)).numpy()
    seen_bgr = bgr(Subject(bgr, InputEncoding.preset("caffe")).encode(pixels)).numpy()
    np.testing.assert_allclose(seen_bgr, seen_rgb, rtol=1e-5, atol=1e-4)
    assert seen_rgb.max() > 0


def test_decorrelated_colour_follows_the_channel_order():
    from oipscope.ascent.parametrization import Parametrization

    rng = np.random.default_rng(4)
    params = rng.standard_normal((2, 6, 6, 3)).astype(np.float32)
    rgb = Parametrization("pixels", (6, 6, 3), InputEncoding.standardize(), decorrelate=True)
    bgr = Parametrization("pixels", (6, 6, 3), InputEncoding.standardize().with_channel_order("bgr"),
                          decorrelate=True)
    # the same parameters give the same colours, in the other order (standardization is order-free)
    np.testing.assert_allclose(bgr.image(params).numpy(), rgb.image(params).numpy()[..., ::-1], atol=1e-5)
    images = bgr.image(params).numpy()
    np.testing.assert_allclose(bgr.image(bgr.params_of(images)).numpy(), images, atol=1e-4)
