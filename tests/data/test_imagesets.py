"""Image sets: named sets, folders of image files, .npz/.npy arrays, and the embedded MNIST test split."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import oipscope.data.datasets
from conftest import write_png_header
from oipscope.data import imagesets
from oipscope.analysis.activations import load_image_file
from oipscope.data.datasets import DATASETS, Dataset, Split, read_idx
from oipscope.errors import ConfigError, DataError
from oipscope.data.imagesets import NAMED_SETS, embedded_examples, open_images


def _png(path: Path, pixels: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels.astype(np.uint8)).save(path)


def _grey(value: int, size: tuple[int, int] = (28, 28)) -> np.ndarray:
    return np.full(size, value, dtype=np.uint8)


def _stream(image_set, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    parts = list(image_set.batches(batch_size))
    return np.concatenate([i for i, _ in parts]), np.concatenate([p for _, p in parts])


@pytest.fixture
def class_folder(tmp_path) -> Path:
    """cats/{a,b}.png, dogs/{bad.png (corrupt), c.PNG, deep/d.png}, an empty zebras/, a notes.txt."""
    root = tmp_path / "pets"
    _png(root / "cats" / "a.png", _grey(10))
    _png(root / "cats" / "b.png", np.arange(28 * 28).reshape(28, 28) % 256)
    (root / "dogs").mkdir()
    (root / "dogs" / "bad.png").write_bytes(np.random.default_rng(0).bytes(300))
    _png(root / "dogs" / "c.PNG", _grey(30))
    _png(root / "dogs" / "deep" / "d.png", _grey(40))
    (root / "zebras").mkdir()
    (root / "notes.txt").write_text("not an image")
    return root


# --- named sets ----------------------------------------------------------------------------


def test_named_sets_list():
    assert set(NAMED_SETS) == {
        f"{name}{tail}" for name in ("mnist", "fashion-mnist", "cifar10", "cifar100")
        for tail in ("", "-train", "-test")
    }


@pytest.mark.parametrize("name, shape, have", [
    ("mnist", (64, 64, 1), "28x28x1"),
    ("mnist-test", (28, 28, 3), "28x28x1"),
    ("fashion-mnist-test", (32, 32, 1), "28x28x1"),
    ("cifar10", (28, 28, 1), "32x32x3"),
    ("cifar100-test", (32, 32, 1), "32x32x3"),
])
def test_named_set_of_other_shape_fails_before_loading_anything(monkeypatch, name, shape, have):
    def forbidden(*args, **kwargs):
        raise AssertionError("a named set was loaded although it does not fit the model")

    monkeypatch.setattr(oipscope.data.datasets, "load_dataset", forbidden)
    monkeypatch.setattr(imagesets, "_load_cifar", forbidden)
    monkeypatch.setattr(imagesets.np, "load", forbidden)
    with pytest.raises(DataError) as caught:
        open_images(name, shape)
    message = str(caught.value)
    assert have in message and "x".join(map(str, shape)) in message and "--images FOLDER" in message
    assert caught.value.exit_code == 3


@pytest.mark.parametrize("name, split", [("mnist", "train"), ("mnist-train", "train"),
                                         ("fashion-mnist", "train"), ("fashion-mnist-test", "test")])
def test_mnist_sets_come_from_load_dataset(monkeypatch, name, split):
    calls = []
    splits = {split: Split(np.full((3, 28, 28), k, np.uint8), np.array([k, 1, 2]))
              for k, split in ((5, "train"), (7, "test"))}

    def fake_load(dataset, path=None):
        calls.append((dataset, path))
        return Dataset(dataset, splits["train"], splits["test"], DATASETS[dataset], "fake")

    monkeypatch.setattr(oipscope.data.datasets, "load_dataset", fake_load)
    images = open_images(name, (28, 28, 1), data_dir="/somewhere")
    source = name.removesuffix("-train").removesuffix("-test")
    assert calls == [(source, "/somewhere")]
    assert images.class_names == DATASETS[source] and images.name == name
    assert images.labels.dtype == np.int64 and images.labels.tolist() == splits[split].labels.tolist()
    assert np.array_equal(images[0], np.full((28, 28, 1), splits[split].images[0, 0, 0], np.float32))


def test_cifar_labels_are_flattened_and_named(monkeypatch):
    x = np.zeros((4, 32, 32, 3), np.uint8)
    data = ((x, np.array([[0], [9], [3], [3]], np.uint8)), (x[:2], np.array([[1], [2]], np.uint8)))
    monkeypatch.setattr(imagesets, "_load_cifar", lambda source: data)
    train = open_images("cifar10", (32, 32, 3))
    assert train.labels.tolist() == [0, 9, 3, 3] and train.class_names[9] == "truck"
    test = open_images("cifar100-test", (32, 32, 3))
    assert test.labels.tolist() == [1, 2] and test.class_names == tuple(str(i) for i in range(100))


def test_embedded_examples_are_the_labelled_mnist_test_split():
    images = embedded_examples()
    assert len(images) == 10_000 and images.input_shape == (28, 28, 1) and images.name == "mnist-test"
    assert images.labels.dtype == np.int64 and sorted(set(images.labels.tolist())) == list(range(10))
    assert images.labels[:5].tolist() == [7, 2, 1, 0, 4]
    assert images.class_names == DATASETS["mnist"] and images.skipped == ()
    assert images.item_name(17) == "#17" and images[0].shape == (28, 28, 1) and images[0].dtype == np.float32


def test_embedded_examples_equal_the_idx_files(mnist_dir):
    indices, pixels = _stream(open_images("mnist-test", (28, 28, 1)), 4096)
    assert np.array_equal(indices, np.arange(10_000))
    expected = read_idx(mnist_dir / "t10k-images-idx3-ubyte.gz")
    assert np.array_equal(pixels[..., 0], expected.astype(np.float32))
    labels = read_idx(mnist_dir / "t10k-labels-idx1-ubyte.gz")
    assert np.array_equal(embedded_examples().labels, labels)


# --- folders -------------------------------------------------------------------------------


def test_folder_labels_come_from_first_level_sub_folders(class_folder):
    images = open_images(class_folder, (28, 28, 1))
    assert [images.item_name(i) for i in range(len(images))] == [
        "cats/a.png", "cats/b.png", "dogs/bad.png", "dogs/c.PNG", "dogs/deep/d.png"]
    assert images.class_names == ("cats", "dogs", "zebras")  # empty sub-folders are classes, as in Keras
    assert images.labels.dtype == np.int64 and images.labels.tolist() == [0, 0, 1, 1, 1]
    assert images.name == str(class_folder) and images.skipped == ()


def test_folder_batches_stream_every_readable_image_once_in_order(class_folder):
    images = open_images(class_folder, (28, 28, 1))
    parts = list(images.batches(2))
    assert [i.tolist() for i, _ in parts] == [[0, 1], [3], [4]]  # the corrupt file is skipped
    assert all(p.dtype == np.float32 and p.shape == (len(i), 28, 28, 1) for i, p in parts)
    pixels = np.concatenate([p for _, p in parts])
    assert np.array_equal(pixels[1, ..., 0], (np.arange(28 * 28).reshape(28, 28) % 256).astype(np.float32))
    assert [float(p.max()) for p in pixels[[0, 2, 3]]] == [10.0, 30.0, 40.0]
    assert images.skipped == ("dogs/bad.png",)
    with pytest.raises(DataError, match="bad.png"):
        images[2]
    assert np.array_equal(images[-1], np.full((28, 28, 1), 40, np.float32))


def test_folder_decodes_batch_by_batch(class_folder, monkeypatch):
    decoded = []

    def counting(path, input_shape):
        decoded.append(Path(path).name)
        return load_image_file(path, input_shape)

    monkeypatch.setattr(imagesets, "load_image_file", counting)
    stream = open_images(class_folder, (28, 28, 1)).batches(1)
    first, _ = next(stream)
    assert first.tolist() == [0] and len(decoded) <= 2  # this batch and at most the next one
    stream.close()


def test_folder_without_sub_folders_has_no_labels(tmp_path):
    _png(tmp_path / "z.png", _grey(1))
    _png(tmp_path / "sub" / "a.jpeg", _grey(2))
    images = open_images(tmp_path, (28, 28, 1))
    assert images.labels is None and images.class_names is None
    assert [images.item_name(i) for i in range(2)] == ["sub/a.jpeg", "z.png"]


def test_folder_images_are_converted_to_the_model_input(tmp_path):
    rgb = np.zeros((30, 40, 3), np.uint8)
    rgb[...] = (200, 100, 50)
    _png(tmp_path / "rgb.png", rgb)
    _png(tmp_path / "grey.png", _grey(90, (50, 20)))
    grey_model = open_images(tmp_path, (12, 12, 1))
    assert np.array_equal(grey_model[1], np.full((12, 12, 1), 124, np.float32))  # 601 luma of the colour
    rgb_model = open_images(tmp_path, (8, 16, 3))
    _, pixels = _stream(rgb_model, 8)
    assert pixels.shape == (2, 8, 16, 3)
    assert np.array_equal(pixels[0], np.full((8, 16, 3), 90, np.float32))
    assert np.array_equal(pixels[1], np.broadcast_to(np.float32([200, 100, 50]), (8, 16, 3)))


def test_folder_without_images_is_an_error(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(DataError, match=r"no images in .*PNG/JPG/JPEG.*searched recursively"):
        open_images(tmp_path, (28, 28, 1))


def test_folder_of_only_unreadable_files_fails_after_a_pass(tmp_path):
    for name in ("a.png", "b.jpg"):
        (tmp_path / name).write_bytes(b"not an image")
    images = open_images(tmp_path, (28, 28, 1))
    with pytest.raises(DataError, match="none of the 2 image files"):
        list(images.batches(1))
    assert images.skipped == ("a.png", "b.jpg")


def test_folder_skips_decompression_bombs_silently_beside_good_images(tmp_path):
    _png(tmp_path / "a.png", _grey(10))
    write_png_header(tmp_path / "bomb.png", 100_000, 100_000)  # over twice Pillow's own limit: it raises
    write_png_header(tmp_path / "big.png", 12_000, 12_000)  # over Pillow's limit: it warns, then decodes 144 MB
    _png(tmp_path / "c.png", _grey(30))
    images = open_images(tmp_path, (28, 28, 1))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Pillow's DecompressionBombWarning would fail here
        indices, pixels = _stream(images, 2)
    assert indices.tolist() == [0, 3] and pixels[:, 0, 0, 0].tolist() == [10.0, 30.0]
    assert images.skipped == ("big.png", "bomb.png")
    with pytest.raises(DataError, match=r"big.png has 144,000,000 pixels \(12000 x 12000\), over the limit"):
        images[1]


# --- array files ---------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".npz", ".npy"])
def test_arrays_skip_and_count_images_with_nan_or_inf(tmp_path, suffix):
    x = np.random.default_rng(3).uniform(0, 255, (5, 6, 6, 1)).astype(np.float32)
    x[1, 2, 3, 0], x[3, 0, 0, 0] = np.nan, -np.inf
    path = tmp_path / f"set{suffix}"
    np.savez(path, x=x) if suffix == ".npz" else np.save(path, x)
    images = open_images(path, (6, 6, 1))
    indices, pixels = _stream(images, 2)
    assert indices.tolist() == [0, 2, 4] and np.array_equal(pixels, x[[0, 2, 4]])
    assert images.skipped == ("#1", "#3") and len(images) == 5
    with pytest.raises(DataError, match="image #3 of .* holds NaN or infinite values"):
        images[3]


def test_arrays_of_only_nan_images_fail_after_a_pass(tmp_path):
    images = imagesets.array_images(np.full((3, 4, 4), np.nan, np.float32), (4, 4, 1), name="nans")
    with pytest.raises(DataError, match="all 3 images of nans hold NaN or infinite values"):
        list(images.batches(2))
    assert images.skipped == ("#0", "#1", "#2")


# --- array files (shapes, keys, scales) -----------------------------------------------------


def test_npz_with_x_and_y(tmp_path):
    x = np.random.default_rng(1).integers(0, 256, (5, 10, 10, 3), dtype=np.uint8)
    np.savez(tmp_path / "set.npz", x=x, y=np.array([3, 0, 2, 2, 1], np.uint8))
    images = open_images(tmp_path / "set.npz", (10, 10, 3))
    assert len(images) == 5 and images.item_name(2) == "#2" and images.class_names is None
    assert images.labels.dtype == np.int64 and images.labels.tolist() == [3, 0, 2, 2, 1]
    indices, pixels = _stream(images, 2)
    assert indices.tolist() == [0, 1, 2, 3, 4] and np.array_equal(pixels, x.astype(np.float32))


def test_npz_with_images_and_labels_keys_and_alpha(tmp_path):
    x = np.zeros((2, 4, 4, 4), np.uint8)
    x[..., :3], x[..., 3] = (10, 20, 30), 0  # a transparent alpha is dropped, not applied
    np.savez(tmp_path / "set.npz", images=x, labels=np.array([1.0, 0.0]))
    images = open_images(tmp_path / "set.npz", (4, 4, 3))
    assert images.labels.tolist() == [1, 0]
    assert np.array_equal(images[0], np.broadcast_to(np.float32([10, 20, 30]), (4, 4, 3)))


def test_array_conversion_agrees_with_image_files(tmp_path):
    x = np.random.default_rng(2).integers(0, 256, (3, 20, 15, 3), dtype=np.uint8)
    np.save(tmp_path / "set.npy", x)
    for i, image in enumerate(x):
        _png(tmp_path / "files" / f"{i}.png", image)
    for shape in ((28, 28, 1), (9, 7, 3), (20, 15, 1)):
        _, from_array = _stream(open_images(tmp_path / "set.npy", shape), 2)
        _, from_files = _stream(open_images(tmp_path / "files", shape), 2)
        assert from_array.shape == from_files.shape == (3, *shape)
        assert np.abs(from_array - from_files).max() <= 1.5  # files are rounded to uint8 twice by Pillow


def test_npy_floats_in_unit_range_are_scaled_to_pixels(tmp_path):
    x = np.linspace(0.0, 1.0, 2 * 6 * 6, dtype=np.float32).reshape(2, 6, 6)
    x[0, 0, 0] = np.nan
    np.save(tmp_path / "unit.npy", x)
    images = open_images(tmp_path / "unit.npy", (6, 6, 1))
    assert images.labels is None and images[1][-1, -1, 0] == 255.0  # the NaN does not hide the 0..1 range
    assert np.allclose(images[1][..., 0], x[1] * 255)
    np.save(tmp_path / "pixels.npy", x * 200 + 1)  # not within [0, 1]: taken as 0..255 as they are
    assert np.allclose(open_images(tmp_path / "pixels.npy", (6, 6, 1))[1][..., 0], x[1] * 200 + 1)


def test_resize_matrix_is_pillows_lanczos():
    image = np.random.default_rng(3).random((13, 21)).astype(np.float32) * 255
    expected = np.asarray(Image.fromarray(image).resize((8, 30), Image.Resampling.LANCZOS))
    got = imagesets._resize_matrix(13, 30).T @ image @ imagesets._resize_matrix(21, 8)
    assert np.allclose(got, expected, atol=1e-3)


@pytest.mark.parametrize("arrays, message", [
    ({"a": np.zeros((2, 4, 4)), "b": np.zeros(2)}, r"holds the arrays a, b; expected the images under 'x'"),
    ({"x": np.zeros((2, 4, 4), np.uint8), "y": np.zeros(3)}, r"labels have shape \(3,\) for 2 images"),
    ({"x": np.zeros((2, 4, 4), np.uint8), "y": np.array([0, -1])}, r"integers >= 0, found -1"),
    ({"x": np.zeros((2, 4, 4), np.uint8), "y": np.array([0.5, 1])}, r"integers >= 0, found 0.5"),
    ({"x": np.zeros((2, 4, 4, 2), np.uint8)}, r"images have shape \(2, 4, 4, 2\)"),
    ({"x": np.zeros((0, 4, 4), np.uint8)}, r"holds no images"),
])
def test_malformed_npz_is_a_data_error(tmp_path, arrays, message):
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(DataError, match=message):
        open_images(tmp_path / "bad.npz", (4, 4, 1))


# --- bad input -----------------------------------------------------------------------------


def test_bad_paths_name_the_path_and_what_is_accepted(tmp_path):
    with pytest.raises(DataError, match=r"mnist_tset: no such file or folder; .*did you mean 'mnist-test'"):
        open_images("mnist_tset", (28, 28, 1))
    (tmp_path / "model.keras").write_bytes(b"zip")
    with pytest.raises(DataError, match=r"model.keras is not an image set: give a folder of images, a .npz"):
        open_images(tmp_path / "model.keras", (28, 28, 1))
    (tmp_path / "broken.npy").write_bytes(b"junk")
    with pytest.raises(DataError, match="cannot read .*broken.npy"):
        open_images(tmp_path / "broken.npy", (28, 28, 1))


def test_bad_arguments(class_folder):
    with pytest.raises(ConfigError, match="input_shape"):
        open_images(class_folder, (28, 28, 2))
    images = open_images(class_folder, (28, 28, 1))
    with pytest.raises(ConfigError, match="batch_size"):
        next(images.batches(0))
    with pytest.raises(IndexError, match="0..4"):
        images[5]


def test_import_does_not_load_tensorflow():
    code = "import sys, oipscope.data.imagesets; assert not {'tensorflow', 'keras'} & set(sys.modules)"
    subprocess.run([sys.executable, "-c", code], check=True)
