"""Activations of real images: hand-computed convolution, selection, image files, CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
from PIL import Image  # noqa: E402

from oipscope.analysis.activations import (  # noqa: E402
    as_image_batch,
    layer_activations,
    load_image_file,
    select_images,
    top_maps,
)
from oipscope.data.datasets import Split  # noqa: E402
from oipscope.errors import ConfigError, DataError, LayerError  # noqa: E402


def _np_standardize(images: np.ndarray) -> np.ndarray:
    """Per-image standardization written out by hand (as tf.image.per_image_standardization)."""
    x = images.astype(np.float64)
    axes = tuple(range(1, x.ndim))
    mean = x.mean(axis=axes, keepdims=True)
    floor = 1.0 / np.sqrt(np.prod(x.shape[1:]))
    std = np.maximum(x.std(axis=axes, keepdims=True), floor)
    return (x - mean) / std


@pytest.fixture(scope="module")
def conv_model():
    """One 3x3 Conv2D with two maps on 6x6 gray images, weights set by hand, no activation."""
    model = keras.Sequential(
        [keras.Input((6, 6, 1)), keras.layers.Conv2D(2, 3, name="conv"),
         keras.layers.Flatten(name="flat"), keras.layers.Dense(4, activation="relu", name="dense")],
        name="tiny",
    )
    kernel = np.zeros((3, 3, 1, 2), np.float32)
    kernel[..., 0, 0] = [[1, 0, -1], [2, 0, -2], [1, 0, -1]]  # Sobel-like
    kernel[1, 1, 0, 1] = 1.0  # identity on the centre pixel
    model.get_layer("conv").set_weights([kernel, np.array([0.5, -0.25], np.float32)])
    return model, kernel


def test_conv_activations_match_hand_computed_convolution(conv_model):
    model, kernel = conv_model
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, size=(5, 6, 6), dtype=np.uint8)
    got = layer_activations(model, "conv", images, batch_size=2)
    x = _np_standardize(images)
    expected = np.zeros((5, 4, 4, 2))
    for i in range(4):
        for j in range(4):
            patch = x[:, i:i + 3, j:j + 3]
            expected[:, i, j, :] = np.einsum("nab,abm->nm", patch, kernel[:, :, 0, :])
    expected += np.array([0.5, -0.25])
    assert got.shape == (5, 4, 4, 2)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_float_images_in_pixel_range_give_same_activations(conv_model):
    model, _ = conv_model
    images = np.random.default_rng(2).integers(0, 256, size=(3, 6, 6, 1), dtype=np.uint8)
    np.testing.assert_allclose(
        layer_activations(model, "conv", images), layer_activations(model, "conv", images.astype(np.float32)),
        atol=1e-6,
    )


def test_dense_and_flatten_activation_shapes(conv_model):
    model, _ = conv_model
    images = np.zeros((3, 6, 6), np.uint8)
    images[:, 2, 3] = 255
    assert layer_activations(model, "dense", images).shape == (3, 4)
    assert layer_activations(model, "flat", images).shape == (3, 32)


def test_layer_and_shape_errors(conv_model):
    model, _ = conv_model
    with pytest.raises(LayerError, match="conv"):
        layer_activations(model, "cnv", np.zeros((1, 6, 6), np.uint8))
    with pytest.raises(ConfigError, match=r"\(7, 7, 1\)"):
        layer_activations(model, "conv", np.zeros((1, 7, 7), np.uint8))
    with pytest.raises(ConfigError, match="batch_size"):
        layer_activations(model, "conv", np.zeros((1, 6, 6), np.uint8), batch_size=0)
    with pytest.raises(ConfigError, match="empty"):
        as_image_batch(np.zeros((0, 6, 6), np.uint8), (6, 6, 1))


@pytest.fixture()
def split() -> Split:
    labels = np.array([0, 1, 2, 1, 0, 1, 2, 1, 1, 0])
    images = (np.arange(10, dtype=np.uint8)[:, None, None] * np.ones((1, 4, 4), np.uint8))
    return Split(images=images, labels=labels)


def test_select_images_by_index_and_class(split):
    images, labels, indices = select_images(split, indices=[3, 0, 9])
    assert indices.tolist() == [3, 0, 9] and labels.tolist() == [1, 0, 0]
    assert images[:, 0, 0].tolist() == [3, 0, 9]
    images, labels, indices = select_images(split, label=1, count=3)
    assert indices.tolist() == [1, 3, 5] and set(labels.tolist()) == {1}
    _, _, indices = select_images(split, label=2, count=6)  # fewer than asked
    assert indices.tolist() == [2, 6]
    _, _, first = select_images(split, count=4, seed=3)
    _, _, again = select_images(split, count=4, seed=3)
    assert first.tolist() == again.tolist() and len(set(first.tolist())) == 4


def test_select_images_errors_name_valid_range(split):
    with pytest.raises(ConfigError, match=r"10 does not exist.*0\.\.9"):
        select_images(split, indices=[10])
    with pytest.raises(ConfigError, match=r"0\.\.9"):
        select_images(split, indices=[-1])
    with pytest.raises(ConfigError, match=r"class 7 does not exist.*0\.\.2"):
        select_images(split, label=7)
    with pytest.raises(ConfigError, match="not both"):
        select_images(split, indices=[1], label=1)
    with pytest.raises(ConfigError, match="count"):
        select_images(split, label=1, count=0)


def test_load_image_file_resizes_and_converts(tmp_path):
    gray = np.zeros((20, 12), np.uint8)
    gray[5:15, 4:8] = 255
    Image.fromarray(gray, "L").save(tmp_path / "digit.png")
    loaded = load_image_file(tmp_path / "digit.png", (10, 6, 1))
    assert loaded.shape == (10, 6, 1) and loaded.dtype == np.float32
    assert 0 <= loaded.min() and loaded.max() <= 255 and loaded[5, 3, 0] > 200 and loaded[0, 0, 0] < 10

    rgb = np.zeros((8, 8, 3), np.uint8)
    rgb[..., 1] = 200  # green → gray 0.587 * 200
    Image.fromarray(rgb, "RGB").save(tmp_path / "green.jpg", quality=100)
    loaded = load_image_file(tmp_path / "green.jpg", (8, 8, 1))
    assert loaded.shape == (8, 8, 1)
    np.testing.assert_allclose(loaded, 0.587 * 200, atol=3)
    assert load_image_file(tmp_path / "green.jpg", (8, 8, 3)).shape == (8, 8, 3)
    inverted = load_image_file(tmp_path / "green.jpg", (8, 8, 1), invert=True)
    np.testing.assert_allclose(inverted, 255 - loaded)


def test_load_image_file_errors_name_the_file(tmp_path):
    bad = tmp_path / "notes.png"
    bad.write_text("not an image")
    with pytest.raises(DataError, match="notes.png"):
        load_image_file(bad, (28, 28, 1))
    with pytest.raises(DataError, match="missing.png"):
        load_image_file(tmp_path / "missing.png", (28, 28, 1))


def test_load_image_file_refuses_a_decompression_bomb_in_one_line(tmp_path):
    from conftest import write_png_header

    bomb = write_png_header(tmp_path / "bomb.png", 100_000, 100_000)
    with pytest.raises(DataError) as exc_info:
        load_image_file(bomb, (28, 28, 1))
    message = str(exc_info.value)
    assert "bomb.png has 10,000,000,000 pixels, over the limit of 50,000,000 pixels" in message
    assert "OIPSCOPE_MAX_IMAGE_PIXELS" in message and len(message.splitlines()) == 1


def test_pixel_limit_reads_a_large_jpeg_at_reduced_scale(tmp_path, monkeypatch):
    """Over the limit, a JPEG is decoded at 1/8 scale for an 8x8 input; a PNG cannot be and is refused."""
    pixels = np.random.default_rng(4).integers(0, 256, (64, 64), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "photo.jpg", quality=95)
    Image.fromarray(pixels).save(tmp_path / "photo.png")
    full = load_image_file(tmp_path / "photo.jpg", (8, 8, 1))
    monkeypatch.setenv("OIPSCOPE_MAX_IMAGE_PIXELS", "1000")
    reduced = load_image_file(tmp_path / "photo.jpg", (8, 8, 1))
    assert reduced.shape == (8, 8, 1) and np.abs(reduced - full).mean() < 12
    with pytest.raises(DataError, match=r"photo.png has 4,096 pixels \(64 x 64\), over the limit of 1,000 pixels"):
        load_image_file(tmp_path / "photo.png", (8, 8, 1))
    monkeypatch.setenv("OIPSCOPE_MAX_IMAGE_PIXELS", "lots")
    with pytest.raises(ConfigError, match="OIPSCOPE_MAX_IMAGE_PIXELS must be a whole number of pixels >= 1"):
        load_image_file(tmp_path / "photo.png", (8, 8, 1))


def test_top_maps_order_and_shapes():
    acts = np.zeros((2, 2, 4))
    acts[..., 1] = 3.0
    acts[0, 0, 2] = 8.0  # mean 2
    acts[..., 3] = -1.0
    assert top_maps(acts, n=2) == [(1, 3.0), (2, 2.0)]
    assert [i for i, _ in top_maps(acts[None], n=10)] == [1, 2, 0, 3]
    assert top_maps(np.array([0.5, 2.0, 1.0]), n=1) == [(1, 2.0)]
    with pytest.raises(ConfigError, match="one image"):
        top_maps(np.zeros((3, 2, 2, 4)))
    with pytest.raises(ConfigError, match="n must"):
        top_maps(acts, n=0)


# --- CLI -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cnn_file(tmp_path_factory) -> Path:
    from oipscope.model.cnn import build_cnn

    path = tmp_path_factory.mktemp("cli") / "cnn.keras"
    build_cnn().save(path)
    return path


def _run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    env.setdefault("OIPSCOPE_DATA_DIR", "/work/shared/data")
    return subprocess.run([sys.executable, "-m", "oipscope", "activations", *args],
                          capture_output=True, text=True, env=env, cwd=cwd, timeout=120)


@pytest.mark.slow
def test_cli_activations_writes_png(cnn_file, tmp_path):
    out = tmp_path / "grid.png"
    result = _run_cli(str(cnn_file), "--layer", "Conv2D_2", "--digit", "4", "--count", "2", "--images", "mnist-test",
                      "--out", str(out), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "Digit 4" in result.stdout and "Conv2D_2" in result.stdout


@pytest.mark.slow
def test_cli_bad_layer_is_one_line_error(cnn_file, tmp_path):
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(tmp_path / "blank.png")
    result = _run_cli(str(cnn_file), "--layer", "Conv2D_9", "--image", str(tmp_path / "blank.png"), cwd=tmp_path)
    assert result.returncode == LayerError.exit_code
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Conv2D_9" in errors[0] and "Conv2D_2" in errors[0]
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "activations.png").exists()
