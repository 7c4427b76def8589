"""Deep Dream (issue 12, item 6): octaves of ascent on a real image, at the image's own size."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from oipscope.cli.commands import app
from oipscope.analysis.dream import DreamConfig, dream
from oipscope.errors import ConfigError

runner = CliRunner()
FAST = DreamConfig(octaves=3, octave_scale=1.3, steps=15)


def _picture(height: int, width: int, channels: int) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width]
    grey = 128 + 90 * np.sin(x / 7.0) * np.cos(y / 11.0)
    return np.repeat(grey[..., None], channels, axis=2).astype(np.float32)


def test_dream_raises_the_activation_at_the_images_own_size(tiny_model):
    picture = _picture(40, 52, 1)  # the model takes 12 x 12
    result = dream(tiny_model, picture, "c2", [0, 1], FAST)
    assert result.image.shape == (40, 52, 1) and len(result.frames) == 3
    assert all(frame.shape == (40, 52, 1) for frame in result.frames)
    assert result.image.min() >= 0 and result.image.max() <= 255
    assert result.activations[-1] > result.start_activation
    assert not np.allclose(result.image, picture, atol=1.0)


@pytest.mark.slow
def test_dream_on_an_rgb_model_with_rescaling_stays_in_its_pixel_range():
    from real_models import build_rgb_rescaling

    model = build_rgb_rescaling(32)
    result = dream(model, _picture(48, 64, 3), "block2_relu", "all", FAST)
    assert result.image.shape == (48, 64, 3)
    assert 0 <= result.image.min() and result.image.max() <= 255
    assert result.activations[-1] > result.start_activation


@pytest.fixture(scope="module")
def embedded_digit():
    """The embedded CNN and the first embedded MNIST test digit (a 7), offline."""
    from oipscope.model.cnn import default_subject
    from oipscope.data.imagesets import embedded_examples

    examples = embedded_examples()
    assert int(examples.labels[0]) == 7
    return default_subject(), np.asarray(examples.images[0], np.float32)


@pytest.mark.parametrize("layer", [pytest.param("Conv2D_1", marks=pytest.mark.slow), pytest.param("Conv2D_2", marks=pytest.mark.slow), "Conv2D_3"])
def test_dream_with_the_defaults_amplifies_a_real_digit_at_least_1_5_times(embedded_digit, layer):
    # issue 12's target, on every conv layer; Conv2D_3 takes 18 px at least, so the smallest
    # default octaves (10 and 14 px) climb at 18 px instead of failing
    subject, digit = embedded_digit
    result = dream(subject, digit, layer)
    assert result.image.shape == digit.shape and len(result.frames) == DreamConfig().octaves
    assert result.activations[-1] >= 1.5 * result.start_activation
    # the number is the saved image's own: dream.png (8-bit) re-encoded keeps the activation
    import tensorflow as tf

    saved = np.round(result.image)[None]
    value = float(tf.reduce_mean(subject.feature_submodel(layer)(subject.encoding.encode(saved))))
    assert value == pytest.approx(result.activations[-1], rel=0.02)
    # the digit amplified, not noise in its place
    assert np.corrcoef(digit.ravel(), result.image.ravel())[0, 1] > 0.5


@pytest.mark.parametrize("kwargs,message", [
    ({"octave_scale": 1.0}, "octave scale must be > 1"),
    ({"octaves": 0}, "octaves must be an integer >= 1"),
    ({"steps": 0}, "steps must be an integer >= 1"),
])
def test_bad_dream_settings(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        DreamConfig(**kwargs)


def test_dream_refuses_other_channels_and_too_small_images(tiny_model):
    with pytest.raises(ConfigError, match=r"\(H, W\) or \(H, W, 1\)"):
        dream(tiny_model, _picture(20, 20, 3), "c2", "all", FAST)
    with pytest.raises(ConfigError, match="too small"):
        dream(tiny_model, _picture(5, 5, 1), "c2", "all", DreamConfig(octaves=1, steps=2))


def test_dream_command_writes_the_dream_and_its_evolution(tiny_model_file, tmp_path):
    source = tmp_path / "in.png"
    Image.fromarray(_picture(30, 45, 1)[..., 0].astype(np.uint8)).save(source)
    out = tmp_path / "dream"
    result = runner.invoke(app, ["dream", str(source), "--model", str(tiny_model_file), "--layer", "c2",
                                 "--maps", "0-1", "--octaves", "2", "--steps", "10", "--out", str(out)])
    assert result.exit_code == 0, result.output
    with Image.open(out / "dream.png") as dreamed, Image.open(out / "evolution.png") as evolution:
        assert dreamed.size == (45, 30)
        assert evolution.size == (3 * 45 + 2 * 4, 30)  # the input and two octaves
    assert "in the dream" in result.output


def test_dream_command_on_a_file_that_is_no_image(tiny_model_file, tmp_path):
    bad = tmp_path / "notes.png"
    bad.write_text("not a picture")
    result = runner.invoke(app, ["dream", str(bad), "--model", str(tiny_model_file), "--layer", "c2",
                                 "--out", str(tmp_path / "o")])
    from oipscope.errors import DataError

    assert isinstance(result.exception, DataError) and result.exception.exit_code == 3  # main() exits with it
    assert "notes.png is not an image file Pillow can read (PNG, JPEG, ...)" in str(result.exception)
    assert not (tmp_path / "o").exists()


def test_dream_refuses_a_layer_without_feature_maps(tiny_model):
    from oipscope.errors import LayerError

    dense = tiny_model.layers[-1].name  # the tiny model's classifier output: (N, classes), no maps
    with pytest.raises(LayerError, match=f"layer '{dense}' has output shape .*no feature maps"):
        dream(tiny_model, _picture(12, 12, 1), dense, "all", FAST)


def test_dream_command_on_a_model_of_any_size_dreams_at_the_images_size(tmp_path):
    from real_models import build_residual_base

    path = tmp_path / "any_size.keras"
    build_residual_base((None, None, 3)).save(path)
    source = tmp_path / "in.png"
    Image.fromarray(_picture(30, 36, 3).astype(np.uint8)).save(source)
    result = runner.invoke(app, ["dream", str(source), "--model", str(path), "--layer", "block_out",
                                 "--preprocess", "caffe", "--octaves", "2", "--steps", "5",
                                 "--out", str(tmp_path / "dream")])
    assert result.exit_code == 0, result.output
    with Image.open(tmp_path / "dream" / "dream.png") as dreamed:
        assert dreamed.size == (36, 30)
