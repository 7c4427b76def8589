"""Models that take images of any size (``keras.applications`` bases without ``input_shape``) get one
fixed size (oipscope.model.loading.with_input_size, ``--input-size``); ``--preprocess caffe`` for BGR models."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from oipscope.cli.commands import app
from oipscope.model.encoding import InputEncoding
from oipscope.errors import ConfigError, ModelError
from oipscope.model.loading import image_input_shape, with_input_size
from oipscope.runs.jobs import _run_key
from oipscope.config import OipConfig
from oipscope.model.subject import Subject
from real_models import build_residual_base

runner = CliRunner()


def _any_size_base(name: str = "resnet_like"):
    """A ResNet-like base as ``keras.applications`` builds it with ``include_top=False`` and no
    ``input_shape``: input (None, None, 3)."""
    return build_residual_base((None, None, 3), name)


def _pixels(size: int = 20, n: int = 2) -> np.ndarray:
    return np.random.default_rng(1).uniform(0, 255, (n, size, size, 3)).astype(np.float32)


def test_a_fixed_size_computes_what_the_any_size_model_does():
    base = _any_size_base()
    sized = with_input_size(base, 20, 24)
    assert image_input_shape(sized) == (20, 24, 3)
    assert [layer.name for layer in sized.layers] == [layer.name for layer in base.layers]
    x = np.random.default_rng(0).standard_normal((2, 20, 24, 3)).astype(np.float32)
    np.testing.assert_allclose(sized(x).numpy(), base(x).numpy(), rtol=1e-5, atol=1e-5)
    assert with_input_size(base, 20, 24) is sized  # built once per model and size


def test_the_fixed_size_copy_follows_the_original_weights():
    base = _any_size_base()
    sized = with_input_size(base, 16, 16)
    conv = base.get_layer("top_conv")
    kernel, bias = conv.get_weights()
    conv.set_weights([kernel * 2, bias + 1])
    again = with_input_size(base, 16, 16)
    x = np.random.default_rng(0).standard_normal((1, 16, 16, 3)).astype(np.float32)
    np.testing.assert_allclose(again(x).numpy(), base(x).numpy(), rtol=1e-5, atol=1e-5)
    assert again is sized


def test_a_nested_any_size_base_is_inlined_at_the_size():
    import keras

    base = _any_size_base()
    image = keras.Input(shape=(None, None, 3))
    x = keras.layers.GlobalAveragePooling2D(name="gap")(base(image, training=False))
    classifier = keras.Model(image, keras.layers.Dense(3, name="classes")(x), name="transfer")
    subject = Subject(classifier, InputEncoding.preset("caffe"), input_size=(18, 18))
    assert subject.input_shape == (18, 18, 3)
    assert "block_out" in [layer.name for layer in subject.model.layers]  # the base's own layers can be chosen
    x = _pixels(18)
    np.testing.assert_allclose(subject.model(x).numpy(), classifier(x).numpy(), rtol=1e-5, atol=1e-5)


def test_sizes_that_do_not_fit_are_refused_clearly():
    import keras

    fixed = keras.Sequential([keras.Input((12, 12, 1)), keras.layers.Conv2D(2, 3)])
    assert with_input_size(fixed, 12, 12) is fixed
    with pytest.raises(ConfigError, match=r"takes 12x12 images; --input-size 16,16 only fixes"):
        with_input_size(fixed, 16, 16)
    with pytest.raises(ConfigError, match="must be positive"):
        with_input_size(_any_size_base(), 0, 8)
    with pytest.raises(ModelError, match=r"fixed size; for a model that takes any size, give --input-size H,W"):
        image_input_shape(_any_size_base())


def test_a_subject_keeps_a_size_only_where_it_changed_the_model():
    import keras

    fixed = keras.Sequential([keras.Input((12, 12, 3)), keras.layers.Conv2D(2, 3)])
    assert Subject(fixed, input_size=(12, 12)).input_size is None  # runs keep their keys
    assert Subject(_any_size_base(), input_size=(16, 12)).input_size == (16, 12)


def test_the_size_decides_a_resumed_run():
    key = _run_key("block_out", (0, 1), OipConfig(), "abc", InputEncoding.standardize(), (32, 32))
    assert key["input_size"] == [32, 32]
    assert key != _run_key("block_out", (0, 1), OipConfig(), "abc", InputEncoding.standardize(), (64, 64))
    assert "input_size" not in _run_key("block_out", (0, 1), OipConfig(), "abc", InputEncoding.standardize())


def _write_images(folder, size: int = 20) -> None:
    from PIL import Image

    for label in ("cats", "dogs"):
        (folder / label).mkdir(parents=True)
        for index, pixels in enumerate(_pixels(size, 3)):
            Image.fromarray(pixels.astype(np.uint8)).save(folder / label / f"{index}.png")


@pytest.mark.slow
def test_cli_finds_oips_of_an_any_size_caffe_model(tmp_path):
    path = tmp_path / "resnet_like.keras"
    _any_size_base().save(path)
    _write_images(tmp_path / "pictures")
    refused = runner.invoke(app, ["find", str(path), "--layer", "block_out", "--out", str(tmp_path / "no")])
    assert isinstance(refused.exception, ModelError) and "--input-size" in str(refused.exception)
    result = runner.invoke(app, ["find", str(path), "--layer", "block_out", "--maps", "0-1", "--steps", "10",
                                 "--input-size", "20", "--preprocess", "caffe", "--images", str(tmp_path / "pictures"),
                                 "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    saved = json.loads((tmp_path / "out" / "result.json").read_text())
    assert saved["encoding"]["channel_order"] == "bgr" and saved["encoding"]["mean"] == [103.939, 116.779, 123.68]
    run = json.loads((tmp_path / "out" / "run.json").read_text())
    assert run["input_size"] == [20, 20]
    other = runner.invoke(app, ["find", str(path), "--layer", "block_out", "--maps", "0-1", "--steps", "10",
                                "--input-size", "24", "--preprocess", "caffe", "--resume",
                                "--out", str(tmp_path / "out")])
    assert isinstance(other.exception, ConfigError) and "other settings" in str(other.exception)
    assert "None" not in other.output  # no empty "OIPs 0/None" bar before the error


def test_info_names_an_any_size_input_and_shows_the_model_at_a_given_size(tmp_path):
    import keras

    base = _any_size_base()
    image = keras.Input(shape=(None, None, 3))
    nested = keras.Model(image, keras.layers.GlobalAveragePooling2D(name="gap")(base(image)), name="transfer")
    path = tmp_path / "transfer.keras"
    nested.save(path)
    any_size = runner.invoke(app, ["info", str(path)])
    assert any_size.exit_code == 0, any_size.output
    text = " ".join(any_size.output.split())
    assert "image input of any size, 3 channel(s): give --input-size H,W" in text
    assert "block_out (8)" in text  # the nested base's layers, as find and zoo see them
    assert "--preprocess caffe|tf|torch" in text
    sized = runner.invoke(app, ["info", str(path), "--input-size", "20"])
    assert sized.exit_code == 0, sized.output
    assert "image input: 20x20, 3 channel(s)" in sized.output and "(None, 20, 20, 8)" in sized.output
