"""oipscope.model.loading: safe loading, layer lookup, feature sub-models."""

from __future__ import annotations

import numpy as np
import pytest

import keras

from conftest import build_tiny_model, write_zip_bomb_keras
from oipscope.errors import LayerError, ModelError
from oipscope.model.loading import (
    check_model_file,
    describe,
    feature_layers,
    feature_submodel,
    get_layer,
    image_input_shape,
    load_model,
)


def _batch(n: int = 2, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, 12, 12, 1)).astype("float32")


# --- load_model ---------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_load_round_trip(tiny_model, tmp_path, suffix):
    path = tmp_path / f"tiny{suffix}"
    tiny_model.save(path)
    loaded = load_model(path)
    assert isinstance(loaded, keras.Model)
    assert [layer.name for layer in loaded.layers] == ["c1", "pool", "c2", "flat", "out"]
    x = _batch()
    np.testing.assert_allclose(loaded.predict(x, verbose=0), tiny_model.predict(x, verbose=0), rtol=1e-5, atol=1e-6)


def test_load_functional_round_trip(tiny_functional, tmp_path):
    path = tmp_path / "func.keras"
    tiny_functional.save(path)
    loaded = load_model(str(path))
    x = _batch(seed=1)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), tiny_functional.predict(x, verbose=0), rtol=1e-5, atol=1e-6)


def test_load_missing_file(tmp_path):
    path = tmp_path / "missing.keras"
    with pytest.raises(ModelError, match="not found") as exc_info:
        load_model(path)
    assert str(path) in str(exc_info.value)


def test_load_directory_is_not_a_file(tmp_path):
    with pytest.raises(ModelError, match=r"is a directory, not a model file; give the \.keras or \.h5 file"):
        load_model(tmp_path)


def test_zip_bomb_description_is_refused_unread(tiny_model_file, tmp_path):
    import time

    bomb = write_zip_bomb_keras(tmp_path / "bomb.keras", tiny_model_file, 33)  # the cap is 32 MiB
    assert bomb.stat().st_size < 1 << 20
    started = time.perf_counter()
    with pytest.raises(ModelError, match=r"bomb.keras: its config.json unpacks to 33 MiB, over the cap of 32 MiB"):
        check_model_file(bomb)
    assert time.perf_counter() - started < 0.5


def test_keras_error_is_condensed_to_its_cause(tiny_model_file, tmp_path):
    """Keras nests a bad layer config in 11 lines of configs; the error keeps the line that says what is wrong."""
    import json
    import zipfile

    with zipfile.ZipFile(tiny_model_file) as source:
        parts = {name: source.read(name) for name in source.namelist()}
    config = json.loads(parts["config.json"])
    config["config"]["layers"][1]["config"]["foo"] = 1  # c1 gets a keyword Conv2D does not take
    path = tmp_path / "kwarg.keras"
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in {**parts, "config.json": json.dumps(config).encode()}.items():
            archive.writestr(name, data)
    with pytest.raises(ModelError) as exc_info:
        load_model(path)
    message = str(exc_info.value)
    assert len(message.splitlines()) == 1 and len(message) < 400, message
    assert "Unrecognized keyword arguments passed to Conv2D: {'foo': 1}" in message
    assert "--debug" in message and "config=" in str(exc_info.value.__cause__)


@pytest.mark.parametrize("name", ["model.pt", "model.txt", "model"])
def test_load_wrong_suffix(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(b"whatever")
    with pytest.raises(ModelError, match=r"\.keras or \.h5") as exc_info:
        load_model(path)
    assert str(path) in str(exc_info.value)


def test_load_garbage_keras(tmp_path):
    path = tmp_path / "garbage.keras"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(ModelError) as exc_info:
        load_model(path)
    assert str(path) in str(exc_info.value)


def test_load_truncated_keras(tiny_model_file, tmp_path):
    raw = tiny_model_file.read_bytes()
    path = tmp_path / "truncated.keras"
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ModelError) as exc_info:
        load_model(path)
    assert str(path) in str(exc_info.value)


def test_load_zip_that_is_not_a_model(tmp_path):
    import zipfile

    path = tmp_path / "notamodel.keras"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("hello.txt", "not a keras model")
    with pytest.raises(ModelError) as exc_info:
        load_model(path)
    assert str(path) in str(exc_info.value)


def test_load_garbage_h5(tmp_path):
    path = tmp_path / "garbage.h5"
    path.write_bytes(b"\x00" * 1000)
    with pytest.raises(ModelError):
        load_model(path)


@pytest.fixture
def lambda_model_file(tmp_path):
    inputs = keras.Input(shape=(12, 12, 1))
    x = keras.layers.Lambda(lambda t: t * 2.0, name="double")(inputs)
    x = keras.layers.Conv2D(2, 3, name="c1")(x)
    model = keras.Model(inputs, x, name="with_lambda")
    path = tmp_path / "lambda.keras"
    model.save(path)
    return path, model


def test_lambda_refused_in_safe_mode(lambda_model_file):
    path, _ = lambda_model_file
    with pytest.raises(ModelError) as exc_info:
        load_model(path)
    message = str(exc_info.value)
    assert "safe mode" in message
    assert "--unsafe-load" in message
    assert str(path) in message


def test_lambda_loaded_with_safe_mode_off(lambda_model_file):
    path, model = lambda_model_file
    loaded = load_model(path, safe_mode=False)
    assert "double" in [layer.name for layer in loaded.layers]
    x = _batch()
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-5, atol=1e-6)


# --- layers -------------------------------------------------------------------


def test_get_layer_known(tiny_model):
    assert get_layer(tiny_model, "c2") is tiny_model.get_layer("c2")


def test_get_layer_unknown_suggests_close_names(tiny_model):
    with pytest.raises(LayerError) as exc_info:
        get_layer(tiny_model, "c3")
    message = str(exc_info.value)
    assert "'c3'" in message
    assert "c1" in message or "c2" in message
    assert "did you mean" in message
    assert not message.startswith('"')  # LayerError is a KeyError that does not quote its message
    assert isinstance(exc_info.value, KeyError)


def test_get_layer_unknown_without_close_names_lists_all(tiny_model):
    with pytest.raises(LayerError) as exc_info:
        get_layer(tiny_model, "zzzzzzzzzz")
    message = str(exc_info.value)
    for name in ("c1", "pool", "c2", "flat", "out"):
        assert name in message


@pytest.mark.parametrize("fixture", ["tiny_model", "tiny_functional"])
def test_feature_layers(request, fixture):
    model = request.getfixturevalue(fixture)
    maps = feature_layers(model)
    assert [info.name for info in maps] == ["c1", "pool", "c2"]
    assert [info.n_maps for info in maps] == [4, 4, 6]
    assert [info.class_name for info in maps] == ["Conv2D", "MaxPooling2D", "Conv2D"]
    assert maps[0].output_shape == (None, 10, 10, 4)


def test_describe(tiny_model):
    infos = describe(tiny_model)
    assert [info.name for info in infos] == ["c1", "pool", "c2", "flat", "out"]
    by_name = {info.name: info for info in infos}
    assert by_name["flat"].output_shape == (None, 54)
    assert by_name["flat"].n_maps is None
    assert by_name["out"].n_maps is None
    assert by_name["c1"].n_params == 4 * 9 + 4
    assert by_name["c2"].n_params == 6 * 9 * 4 + 6
    assert by_name["pool"].n_params == 0


@pytest.mark.parametrize("fixture", ["tiny_model", "tiny_functional"])
@pytest.mark.parametrize("layer, shape", [("c1", (10, 10, 4)), ("pool", (5, 5, 4)), ("c2", (3, 3, 6))])
def test_feature_submodel(request, fixture, layer, shape):
    model = request.getfixturevalue(fixture)
    sub = feature_submodel(model, layer)
    assert tuple(sub.output.shape) == (None, *shape)
    x = _batch(3)
    out = sub.predict(x, verbose=0)
    assert out.shape == (3, *shape)
    # same values as the layer inside the full model
    reference = keras.Model(model.inputs[0], model.get_layer(layer).output)
    np.testing.assert_allclose(out, reference.predict(x, verbose=0), rtol=1e-5, atol=1e-6)


def test_feature_submodel_of_loaded_model(tiny_model_file):
    sub = feature_submodel(load_model(tiny_model_file), "c2")
    assert tuple(sub.output.shape) == (None, 3, 3, 6)


def test_feature_submodel_of_units(tiny_model):
    """A dense layer's units count as maps (one OIP per class of the output layer); a Flatten's do not."""
    assert len(feature_submodel(tiny_model, "out").output.shape) == 2
    with pytest.raises(LayerError, match="'flat' has output shape"):
        feature_submodel(tiny_model, "flat")


def test_feature_submodel_without_maps():
    import keras

    inputs = keras.Input((12, 12, 1))
    x = keras.layers.Conv2D(4, 3, activation="relu", name="c1")(inputs)
    x = keras.layers.Reshape((25, 16), name="rows")(x)
    model = keras.Model(inputs, keras.layers.Dense(2, name="out")(keras.layers.Flatten()(x)))
    with pytest.raises(LayerError) as exc_info:
        feature_submodel(model, "rows")
    message = str(exc_info.value)
    assert "'rows'" in message and "c1" in message


def test_feature_submodel_unknown_layer(tiny_functional):
    with pytest.raises(LayerError, match="c1|c2"):
        feature_submodel(tiny_functional, "c3")


# --- image_input_shape ----------------------------------------------------------


@pytest.mark.parametrize("fixture", ["tiny_model", "tiny_functional"])
def test_image_input_shape(request, fixture):
    assert image_input_shape(request.getfixturevalue(fixture)) == (12, 12, 1)


def test_image_input_shape_rgb():
    model = keras.Sequential([keras.Input((8, 9, 3)), keras.layers.Conv2D(2, 3, name="c")])
    assert image_input_shape(model) == (8, 9, 3)


def test_image_input_shape_dense_only():
    model = keras.Sequential([keras.Input((10,)), keras.layers.Dense(4), keras.layers.Dense(2)])
    with pytest.raises(ModelError, match="image input"):
        image_input_shape(model)
    with pytest.raises(ModelError):
        feature_submodel(model, model.layers[0].name)


def test_image_input_shape_unknown_size():
    model = keras.Sequential([keras.Input((None, None, 1)), keras.layers.Conv2D(2, 3)])
    with pytest.raises(ModelError, match="fixed size"):
        image_input_shape(model)


def test_image_input_shape_bad_channels():
    model = keras.Sequential([keras.Input((8, 8, 2)), keras.layers.Conv2D(2, 3)])
    with pytest.raises(ModelError, match="2 channels"):
        image_input_shape(model)


def test_image_input_shape_multiple_inputs():
    a = keras.Input((12, 12, 1), name="a")
    b = keras.Input((12, 12, 1), name="b")
    x = keras.layers.Concatenate(name="cat")([a, b])
    x = keras.layers.Conv2D(2, 3, name="c1")(x)
    model = keras.Model([a, b], x, name="two_inputs")
    with pytest.raises(ModelError, match="2 inputs"):
        image_input_shape(model)
    with pytest.raises(ModelError):
        feature_submodel(model, "c1")


# --- names TensorFlow refuses, sub-model reuse ----------------------------------


def _oddly_named_model():
    """Layer names Keras accepts but tf.name_scope refuses inside a graph; one clean-up collides."""
    inputs = keras.Input((12, 12, 1), name="the image")
    x = keras.layers.Conv2D(4, 3, activation="relu", name="conv 1")(inputs)
    x = keras.layers.Conv2D(3, 3, activation="relu", name="Lconv_1")(x)  # what "conv 1" would become
    x = keras.layers.Conv2D(5, 3, activation="relu", name="<b>&\"map\"")(x)
    outputs = keras.layers.Dense(2, name="_head")(keras.layers.Flatten()(x))
    return keras.Model(inputs, outputs, name="odd model")


def test_traceable_renames_only_refused_names_uniquely():
    from oipscope.model.loading import traceable

    model = _oddly_named_model()
    clone, renamed = traceable(model)
    assert set(renamed) == {"conv 1", '<b>&"map"', "_head"}
    assert len(set(renamed.values()) | {"Lconv_1"}) == 4  # no collision with an existing name
    assert clone is not model and traceable(model)[0] is clone  # cloned once
    assert traceable(build_tiny_model())[1] == {}


@pytest.mark.parametrize("layer", ["conv 1", '<b>&"map"'])
def test_oddly_named_layer_works_inside_tf_function(layer):
    import tensorflow as tf

    model = _oddly_named_model()
    sub = feature_submodel(model, layer)
    x = _batch(2)
    graph_out = tf.function(lambda images: sub(images, training=False))(x)
    eager_reference = keras.Model(model.inputs[0], model.get_layer(layer).output)(x)
    np.testing.assert_allclose(graph_out, eager_reference, rtol=1e-5, atol=1e-6)


def test_renamed_copy_follows_new_weights():
    model = _oddly_named_model()
    sub = feature_submodel(model, "conv 1")
    layer = model.get_layer("conv 1")
    kernel, bias = layer.get_weights()
    layer.set_weights([kernel * 2, bias + 1])
    sub = feature_submodel(model, "conv 1")
    x = _batch(1)
    expected = keras.Model(model.inputs[0], layer.output)(x)
    np.testing.assert_allclose(sub(x), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_find_oips_on_oddly_named_layer():
    from oipscope import OipConfig, find_oips

    result = find_oips(_oddly_named_model(), '<b>&"map"', config=OipConfig(steps=5, restarts=0))
    assert result.layer_name == '<b>&"map"'
    assert len(result.maps) == 5


def test_feature_submodel_is_reused(tiny_model):
    assert feature_submodel(tiny_model, "c2") is feature_submodel(tiny_model, "c2")
    assert feature_submodel(tiny_model, "c1") is not feature_submodel(tiny_model, "c2")


def test_preactivation_submodel_follows_new_weights():
    from oipscope.model.loading import preactivation_submodel

    model = build_tiny_model()
    layer = model.get_layer("c2")
    first = preactivation_submodel(model, "c2")
    kernel, bias = layer.get_weights()
    layer.set_weights([-kernel, bias - 5.0])
    second = preactivation_submodel(model, "c2")
    assert second is first
    x = _batch(2)
    linear = keras.Model(model.inputs[0], layer.input)(x)
    expected = keras.ops.conv(linear, -kernel) + (bias - 5.0)
    np.testing.assert_allclose(second(x), expected, rtol=1e-4, atol=1e-5)
