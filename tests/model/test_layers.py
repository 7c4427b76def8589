"""Which layers to visualize: default_layers and select_layers on series, tiny and real-world-like models."""

from __future__ import annotations

import numpy as np
import pytest
from real_models import (build_mini_xception, build_rgb_imagenet, build_rgb_rescaling, has_tf_keras,
                         imagenet_normalize)

from oipscope.errors import LayerError
from oipscope.model.layers import default_layers, select_layers
from oipscope.model.loading import feature_layers, load_model

# Written by hand from the architecture: each conv's output after its BN and ReLU;
# the shortcut BN (batch_normalization_3/6) and the block's last BN (_5/_8) feed
# a MaxPooling2D or the Add, so they end their chains; conv2d_5 feeds the pooling head.
MINI_XCEPTION_DEFAULT = [
    "activation_1", "activation_2",
    "activation_3", "batch_normalization_5", "batch_normalization_3",
    "activation_4", "batch_normalization_8", "batch_normalization_6",
    "conv2d_5",
]


@pytest.fixture(scope="module")
def xception():
    return build_mini_xception()


@pytest.fixture(scope="module")
def rgb():
    return build_rgb_rescaling()


def _names(model) -> list[str]:
    return [layer.name for layer in model.layers]


def _in_model_order(model, names: list[str]) -> bool:
    order = _names(model)
    return [order.index(n) for n in names] == sorted(order.index(n) for n in names)


# --- default_layers --------------------------------------------------------------------


def test_default_layers_series_cnn():
    from oipscope.model.cnn import default_model

    assert default_layers(default_model()) == ["Conv2D_1", "Conv2D_2", "Conv2D_3"]


def test_default_layers_tiny_sequential_and_functional(tiny_model, tiny_functional):
    assert default_layers(tiny_model) == ["c1", "c2"]
    assert default_layers(tiny_functional) == ["c1", "c2"]


def test_default_layers_sequential_follows_bn_and_activation():
    import keras
    from keras import layers as L

    model = keras.Sequential([
        keras.Input((12, 12, 1)),
        L.Conv2D(4, 3, name="conv_a"), L.BatchNormalization(name="bn_a"), L.LeakyReLU(name="act_a"),
        L.MaxPooling2D(name="pool"),
        L.Conv2D(4, 3, name="conv_b"), L.ELU(name="act_b"),
        L.Flatten(name="flat"), L.Dense(2, name="out"),
    ])
    assert default_layers(model) == ["act_a", "act_b"]


def test_default_layers_mini_xception(xception):
    assert default_layers(xception) == MINI_XCEPTION_DEFAULT
    assert _in_model_order(xception, MINI_XCEPTION_DEFAULT)


def test_default_layers_rgb_models(rgb):
    assert default_layers(rgb) == ["stem_relu", "block1_relu1", "block1_bn2", "block2_relu"]
    assert default_layers(build_rgb_imagenet()) == [
        "conv1_relu", "conv_dw_1_relu", "conv_pw_1_relu", "conv_dw_2_relu", "conv_pw_2_relu"]


def test_default_layers_conv_feeding_two_layers_is_itself():
    import keras
    from keras import layers as L

    image = keras.Input((8, 8, 1))
    x = L.Conv2D(4, 3, name="conv")(image)
    a = L.ReLU(name="relu")(x)
    b = L.BatchNormalization(name="bn")(x)
    model = keras.Model(image, L.Add(name="add")([a, b]))
    assert default_layers(model) == ["conv"]


def test_default_layers_without_convolution_falls_back_to_feature_layers():
    import keras
    from keras import layers as L

    inner = keras.Sequential([keras.Input((8, 8, 1)), L.Conv2D(4, 3), L.ReLU()], name="backbone")
    nested = keras.Sequential([keras.Input((8, 8, 1)), inner, L.GlobalAveragePooling2D(), L.Dense(2)])
    assert default_layers(nested) == ["backbone"]  # the sub-model is opaque
    plain = keras.Sequential([keras.Input((8, 8, 1)), L.MaxPooling2D(name="pool"), L.Flatten(), L.Dense(2)])
    assert default_layers(plain) == ["pool"]


# --- select_layers ---------------------------------------------------------------------


@pytest.mark.parametrize("spec", [None, "", "  ", [], " , "])
def test_select_empty_spec_is_default(xception, spec):
    assert select_layers(xception, spec) == MINI_XCEPTION_DEFAULT


def test_select_names_and_globs_in_model_order(xception, rgb):
    assert select_layers(xception, "activation_2, conv2d_1") == ["conv2d_1", "activation_2"]
    assert select_layers(xception, "activation_*") == ["activation_1", "activation_2", "activation_3", "activation_4"]
    assert select_layers(xception, ["separable_conv2d_[13]", "add_?"]) == [
        "separable_conv2d_1", "add_1", "separable_conv2d_3", "add_2"]
    assert select_layers(rgb, "block*_relu*") == ["block1_relu1", "block2_relu"]


def test_select_removes_duplicates(xception):
    assert select_layers(xception, "activation_1,activation_1,activation_?,activation_1") == [
        "activation_1", "activation_2", "activation_3", "activation_4"]


def test_select_all_is_every_layer_with_maps(xception):
    every = [info.name for info in feature_layers(xception)]
    assert select_layers(xception, "all") == every
    assert select_layers(xception, "conv2d_1,all") == every
    assert "predictions" not in every and "input_1" not in every


def test_select_glob_matching_nothing(xception):
    with pytest.raises(LayerError) as info:
        select_layers(xception, "activation_1, block*_relu")
    assert info.value.exit_code == 5
    assert "'block*_relu'" in str(info.value) and "conv2d_1" in str(info.value)


def test_select_unknown_name_suggests_close_names(xception):
    with pytest.raises(LayerError) as info:
        select_layers(xception, "activaton_1")
    assert info.value.exit_code == 5
    assert "did you mean" in str(info.value) and "activation_1" in str(info.value)


@pytest.mark.parametrize("name", ["predictions", "global_average_pooling2d_1", "input_1"])
def test_select_layer_without_feature_maps(xception, name):
    with pytest.raises(LayerError, match="no feature maps"):
        select_layers(xception, name)


def test_select_exact_name_with_glob_characters_and_bad_items():
    import keras
    from keras import layers as L

    model = keras.Sequential([keras.Input((8, 8, 1)), L.Conv2D(2, 3, name="c[1]"), L.Conv2D(2, 3, name="c1")])
    assert select_layers(model, "c[1]") == ["c[1]"]
    assert select_layers(model, "c?") == ["c1"]
    with pytest.raises(LayerError, match="strings"):
        select_layers(model, ["c1", 3])


def test_names_with_spaces_around_them_are_kept_exactly():
    """A zoo hands the plan's names back to select_layers: " conv b " must not become "conv b"."""
    import keras
    from keras import layers as L

    from oipscope.files import safe_filename
    from oipscope.runs.plan import plan_zoo

    inputs = keras.Input((12, 12, 1))
    x = L.Conv2D(2, 3, name="conv a")(inputs)
    x = L.Conv2D(2, 3, name=" conv b ")(x)
    x = L.Conv2D(2, 3, name="conv b")(x)
    model = keras.Model(inputs, L.Conv2D(2, 3, name="conv c ")(x))
    names = ["conv a", " conv b ", "conv b", "conv c "]
    assert default_layers(model) == names
    assert select_layers(model, names) == names  # the names a plan holds select the same layers again
    assert [plan.layer_name for plan in plan_zoo(model, names)] == names
    assert select_layers(model, " conv b ,conv a") == ["conv a", " conv b "]  # typed exactly: that layer
    assert select_layers(model, "  conv a , conv b") == ["conv a", "conv b"]  # typed loosely: stripped
    files = [safe_filename(name) for name in names]
    assert len(set(files)) == len(names)
    assert all(file == file.strip() and " " not in file and file[0] != "-" for file in files)


# --- real-world-like models --------------------------------------------------------------


def _same_outputs(original, loaded, images: np.ndarray) -> None:
    np.testing.assert_allclose(loaded.predict(images, verbose=0), original.predict(images, verbose=0),
                               rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_models_are_small_and_bn_is_not_identity(xception, rgb):
    import keras

    images = np.random.default_rng(0).uniform(0, 255, (64, 32, 32, 3)).astype("float32")
    assert rgb.predict(images, verbose=0).shape == (64, 5)
    assert build_rgb_imagenet().predict(imagenet_normalize(images), verbose=0).shape == (64, 5)
    bn = xception.get_layer("batch_normalization_1")
    gamma, beta, mean, variance = bn.get_weights()
    assert np.ptp(mean) > 0.1 and np.ptp(variance) > 0.1 and not np.allclose(gamma, 1)
    assert isinstance(bn, keras.layers.BatchNormalization)


@pytest.mark.slow
def test_legacy_h5_by_keras3_loads_and_matches(xception, tmp_path):
    import keras

    path = tmp_path / "mini_xception_k3.h5"
    xception.save(path)  # the legacy HDF5 writer of Keras 3
    loaded = load_model(path)
    images = np.random.default_rng(1).uniform(-1, 1, (64, 32, 32, 1)).astype("float32")
    _same_outputs(xception, loaded, images)
    assert _names(loaded) == _names(xception)
    assert default_layers(loaded) == MINI_XCEPTION_DEFAULT
    assert isinstance(loaded.get_layer("separable_conv2d_1"), keras.layers.SeparableConv2D)


@pytest.mark.slow
@pytest.mark.skipif(not has_tf_keras(), reason="Keras 2 (tf_keras) not installed")
def test_legacy_h5_by_keras2_loads_and_matches(tmp_path):
    path = tmp_path / "mini_xception_k2.h5"
    original = build_mini_xception(path=path)  # the Keras 2 writer checks its outputs equal the original's
    loaded = load_model(path)
    images = np.random.default_rng(1).uniform(-1, 1, (64, 32, 32, 1)).astype("float32")
    _same_outputs(original, loaded, images)
    assert default_layers(loaded) == MINI_XCEPTION_DEFAULT
