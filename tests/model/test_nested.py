"""Models that nest models (transfer learning: a base inside a classifier) are inlined (oipscope.model.loading.flattened)."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from oipscope.cli.commands import app
from oipscope.config import OipConfig
from oipscope.errors import ModelError
from oipscope.model.loading import flattened
from oipscope.search.pipeline import find_oips
from oipscope.model.subject import as_subject
from real_models import build_residual_base


def _base(name: str = "base"):
    """A small pretrained-like base: Conv → BN → ReLU, a residual block, as keras.applications build them."""
    return build_residual_base((24, 24, 3), name)


def _transfer(base):
    """The Keras transfer-learning recipe: preprocessing, the base called with training=False, a new head."""
    import keras
    from keras import layers as L

    image = keras.Input(shape=(24, 24, 3), name="pixels")
    x = L.Rescaling(1 / 127.5, offset=-1, name="scale")(image)
    x = base(x, training=False)
    x = L.GlobalAveragePooling2D(name="gap")(x)
    return keras.Model(image, L.Dense(4, activation="softmax", name="classes")(x), name="transfer")


def _pixels(n: int = 3) -> np.ndarray:
    return np.random.default_rng(1).uniform(0, 255, (n, 24, 24, 3)).astype(np.float32)


def test_nested_layers_are_inlined_and_compute_the_same():
    base = _base()
    model = _transfer(base)
    flat = flattened(model)
    names = [layer.name for layer in flat.layers]
    assert "base" not in names and {"stem_relu", "block_add", "top_conv", "scale", "classes"} <= set(names)
    np.testing.assert_allclose(flat(_pixels()), model(_pixels()), rtol=1e-6, atol=1e-7)
    assert [layer.name for layer in model.layers] == ["pixels", "scale", "base", "gap", "classes"]  # untouched
    assert flattened(model) is flat and flattened(base) is base  # once per model; nothing to do for a flat one


def test_the_copy_follows_further_training():
    model = _transfer(_base())
    flattened(model)
    model.get_layer("base").get_layer("top_conv").kernel.assign(
        np.full(tuple(model.get_layer("base").get_layer("top_conv").kernel.shape), 0.01, np.float32))
    np.testing.assert_allclose(flattened(model)(_pixels()), model(_pixels()), rtol=1e-6, atol=1e-7)


@pytest.mark.slow
def test_oips_of_an_inner_layer_equal_those_of_the_base_itself():
    import keras

    base = _base()
    wrapped = keras.Sequential([keras.Input(shape=(24, 24, 3)), base,
                                keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(3)], name="wrapped")
    config = OipConfig(steps=40, n_candidates=4)
    inner = find_oips(wrapped, "block_out", "0-3", config)
    alone = find_oips(base, "block_out", "0-3", config)
    assert as_subject(wrapped).encoding == as_subject(base).encoding
    np.testing.assert_allclose(np.stack([o.image for o in inner.maps]), np.stack([o.image for o in alone.maps]),
                               atol=1e-5)
    assert all(o.activation > 0 for o in inner.maps)


def test_a_subclassed_nested_model_is_refused_clearly():
    import keras

    class Block(keras.Model):
        def __init__(self):
            super().__init__()
            self.conv = keras.layers.Conv2D(4, 3)

        def call(self, x):
            return self.conv(x)

    image = keras.Input(shape=(12, 12, 1))
    model = keras.Model(image, keras.layers.Flatten()(Block()(image)))
    with pytest.raises(ModelError, match="subclassed"):
        flattened(model)


@pytest.mark.slow
def test_cli_finds_oips_of_a_layer_inside_a_nested_base(tmp_path):
    path = tmp_path / "transfer.keras"
    _transfer(_base()).save(path)
    result = CliRunner().invoke(app, ["find", str(path), "--layer", "block_out", "--maps", "0-1", "--steps", "10",
                                      "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "raw pixels 0..255 (the model begins with scale)" in result.output  # the outer Rescaling is seen
    assert (tmp_path / "out" / "result.json").is_file()
