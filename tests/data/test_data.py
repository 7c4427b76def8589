"""oipscope.data.datasets: IDX reading and validation, dataset lookup, standardization."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from oipscope.data import datasets as data
from oipscope.data.datasets import (
    DATASETS,
    find_dataset_dir,
    load_dataset,
    read_idx,
    standardize,
    to_model_input,
)
from oipscope.errors import ConfigError, DataError

FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}


# --- helpers: valid synthetic IDX files --------------------------------------


def idx_bytes(array: np.ndarray) -> bytes:
    """IDX encoding of a uint8 array: magic 0x0000 0x08 ndim, big-endian dims, data."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.tobytes()


def write_idx(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wb") as handle:
        handle.write(idx_bytes(array))
    return path


def write_dataset(folder: Path, n_train: int = 6, n_test: int = 4, size: int = 5, seed: int = 0) -> Path:
    """Write the four IDX .gz files of a tiny dataset into ``folder``."""
    rng = np.random.default_rng(seed)
    for split, n in (("train", n_train), ("test", n_test)):
        image_file, label_file = FILES[split]
        write_idx(folder / image_file, rng.integers(0, 256, (n, size, size), dtype=np.uint8))
        write_idx(folder / label_file, rng.integers(0, 10, n, dtype=np.uint8))
    return folder


@pytest.fixture
def isolated_env(monkeypatch, tmp_path):
    """No $OIPSCOPE_DATA_DIR and an empty system data root."""
    monkeypatch.delenv("OIPSCOPE_DATA_DIR", raising=False)
    empty = tmp_path / "system-root"
    empty.mkdir()
    monkeypatch.setattr(data, "SYSTEM_DATA_ROOT", empty)
    return empty


# --- read_idx on real MNIST --------------------------------------------------


def test_read_idx_real_mnist_train(mnist_dir):
    images = read_idx(mnist_dir / "train-images-idx3-ubyte.gz")
    labels = read_idx(mnist_dir / "train-labels-idx1-ubyte.gz")
    assert images.shape == (60000, 28, 28)
    assert images.dtype == np.uint8
    assert labels.shape == (60000,)
    assert labels.min() == 0 and labels.max() == 9
    assert set(np.unique(labels)) == set(range(10))
    assert images.max() > 200  # real pixel data, not zeros


def test_load_dataset_real_mnist(mnist_dir):
    ds = load_dataset("mnist", mnist_dir)
    assert ds.train.images.shape == (60000, 28, 28)
    assert ds.test.images.shape == (10000, 28, 28)
    assert ds.test.labels.shape == (10000,)
    assert ds.train.labels.dtype == np.int64
    assert ds.class_names == DATASETS["mnist"]
    assert ds.source == str(mnist_dir)


# --- read_idx on synthetic and corrupted files -------------------------------


def test_read_idx_round_trip_gz_and_plain(tmp_path):
    array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    np.testing.assert_array_equal(read_idx(write_idx(tmp_path / "a.gz", array)), array)
    plain = tmp_path / "a.idx"
    plain.write_bytes(idx_bytes(array))
    np.testing.assert_array_equal(read_idx(plain), array)


def test_read_idx_big_endian_int32(tmp_path):
    values = np.array([1, -2, 70000], dtype=">i4")
    path = tmp_path / "ints.idx"
    path.write_bytes(struct.pack(">BBBBI", 0, 0, 0x0C, 1, 3) + values.tobytes())
    out = read_idx(path)
    assert out.tolist() == [1, -2, 70000]
    assert out.dtype.isnative


def _assert_names_file(exc_info, path: Path) -> None:
    assert str(path) in str(exc_info.value)


def test_read_idx_missing_file(tmp_path):
    path = tmp_path / "nope.gz"
    with pytest.raises(DataError) as exc_info:
        read_idx(path)
    _assert_names_file(exc_info, path)


def test_read_idx_truncated_payload(tmp_path):
    raw = idx_bytes(np.zeros((3, 4, 4), dtype=np.uint8))
    path = tmp_path / "truncated.gz"
    path.write_bytes(gzip.compress(raw[:-5]))
    with pytest.raises(DataError, match="truncated") as exc_info:
        read_idx(path)
    _assert_names_file(exc_info, path)


def test_read_idx_too_long_payload(tmp_path):
    path = tmp_path / "long.gz"
    path.write_bytes(gzip.compress(idx_bytes(np.zeros((2, 2), dtype=np.uint8)) + b"\x00"))
    with pytest.raises(DataError, match="too long") as exc_info:
        read_idx(path)
    _assert_names_file(exc_info, path)


def test_read_idx_truncated_header(tmp_path):
    raw = idx_bytes(np.zeros((3, 4, 4), dtype=np.uint8))
    path = tmp_path / "header.gz"
    path.write_bytes(gzip.compress(raw[:9]))  # magic + 1 of 3 dims + 1 byte
    with pytest.raises(DataError, match="truncated") as exc_info:
        read_idx(path)
    _assert_names_file(exc_info, path)


def test_read_idx_shorter_than_magic(tmp_path):
    path = tmp_path / "tiny.gz"
    path.write_bytes(gzip.compress(b"\x00\x00"))
    with pytest.raises(DataError) as exc_info:
        read_idx(path)
    _assert_names_file(exc_info, path)


def test_read_idx_truncated_gzip_stream(tmp_path):
    blob = gzip.compress(idx_bytes(np.arange(200, dtype=np.uint8).reshape(10, 20)))
    path = tmp_path / "cut.gz"
    path.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(DataError) as exc_info:
        read_idx(path)
    _assert_names_file(exc_info, path)


@pytest.mark.parametrize(
    "magic",
    [b"\x01\x00\x08\x01", b"\x00\x00\x07\x01", b"\x00\x00\x08\x00", b"PK\x03\x04"],
    ids=["nonzero-first-byte", "bad-type-code", "zero-dims", "zip-header"],
)
def test_read_idx_bad_magic(tmp_path, magic):
    path = tmp_path / "magic.gz"
    path.write_bytes(gzip.compress(magic + b"\x00\x00\x00\x01" + b"\x00"))
    with pytest.raises(DataError, match="magic") as exc_info:
        read_idx(path)
    _assert_names_file(exc_info, path)


def test_read_idx_not_gzip(tmp_path):
    path = tmp_path / "plain-but-named.gz"
    path.write_bytes(idx_bytes(np.zeros((2, 2), dtype=np.uint8)))
    with pytest.raises(DataError) as exc_info:
        read_idx(path)
    _assert_names_file(exc_info, path)


def test_label_count_mismatch(tmp_path, isolated_env):
    folder = write_dataset(tmp_path / "ds")
    label_file = folder / FILES["train"][1]
    write_idx(label_file, np.zeros(5, dtype=np.uint8))  # 6 images, 5 labels
    with pytest.raises(DataError) as exc_info:
        load_dataset("mnist", folder)
    message = str(exc_info.value)
    assert str(label_file) in message
    assert "6 images" in message


def test_images_wrong_ndim(tmp_path, isolated_env):
    folder = write_dataset(tmp_path / "ds")
    image_file = folder / FILES["test"][0]
    write_idx(image_file, np.zeros((4, 25), dtype=np.uint8))
    with pytest.raises(DataError) as exc_info:
        load_dataset("mnist", folder)
    assert str(image_file) in str(exc_info.value)


# --- find_dataset_dir / load_dataset -----------------------------------------


def test_find_explicit_path(tmp_path, isolated_env, monkeypatch):
    explicit = write_dataset(tmp_path / "explicit")
    monkeypatch.setenv("OIPSCOPE_DATA_DIR", str(write_dataset(tmp_path / "env" / "mnist").parent))
    assert find_dataset_dir("mnist", explicit) == explicit
    assert find_dataset_dir("mnist", str(explicit)) == explicit


def test_find_explicit_path_with_name_subfolder(tmp_path, isolated_env):
    sub = write_dataset(tmp_path / "root" / "mnist")
    assert find_dataset_dir("mnist", tmp_path / "root") == sub


def test_find_explicit_path_missing_files_is_error_not_fallback(tmp_path, isolated_env, monkeypatch):
    monkeypatch.setenv("OIPSCOPE_DATA_DIR", str(write_dataset(tmp_path / "env").parent))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError) as exc_info:
        find_dataset_dir("mnist", empty)
    assert str(empty) in str(exc_info.value)
    assert "train-images-idx3-ubyte.gz" in str(exc_info.value)


def test_find_explicit_path_partial_files(tmp_path, isolated_env):
    folder = write_dataset(tmp_path / "ds")
    (folder / FILES["test"][1]).unlink()
    with pytest.raises(DataError):
        find_dataset_dir("mnist", folder)


def test_find_env_with_name_subfolder(tmp_path, isolated_env, monkeypatch):
    sub = write_dataset(tmp_path / "env" / "mnist")
    monkeypatch.setenv("OIPSCOPE_DATA_DIR", str(tmp_path / "env"))
    assert find_dataset_dir("mnist") == sub


def test_find_env_holding_files_directly(tmp_path, isolated_env, monkeypatch):
    env = write_dataset(tmp_path / "env")
    monkeypatch.setenv("OIPSCOPE_DATA_DIR", str(env))
    assert find_dataset_dir("mnist") == env


def test_find_env_subfolder_preferred_over_direct_files(tmp_path, isolated_env, monkeypatch):
    env = write_dataset(tmp_path / "env")
    sub = write_dataset(env / "mnist", seed=1)
    monkeypatch.setenv("OIPSCOPE_DATA_DIR", str(env))
    assert find_dataset_dir("mnist") == sub


def test_find_env_wrong_dataset_subfolder_is_ignored(tmp_path, isolated_env, monkeypatch):
    write_dataset(tmp_path / "env" / "fashion-mnist")
    monkeypatch.setenv("OIPSCOPE_DATA_DIR", str(tmp_path / "env"))
    assert find_dataset_dir("mnist") is None
    assert find_dataset_dir("fashion-mnist") == tmp_path / "env" / "fashion-mnist"


def test_find_system_root_after_env(tmp_path, isolated_env, monkeypatch):
    system = write_dataset(isolated_env / "mnist")
    assert find_dataset_dir("mnist") == system
    env = write_dataset(tmp_path / "env")
    monkeypatch.setenv("OIPSCOPE_DATA_DIR", str(env))
    assert find_dataset_dir("mnist") == env


def test_find_nothing_returns_none(isolated_env):
    assert find_dataset_dir("mnist") is None


@pytest.mark.parametrize("name", ["MNIST", "cifar10", ""])
def test_unknown_dataset_name(name, tmp_path):
    with pytest.raises(ConfigError, match="unknown dataset"):
        find_dataset_dir(name)
    with pytest.raises(ConfigError):
        load_dataset(name, write_dataset(tmp_path / "ds"))


def test_load_dataset_synthetic(tmp_path, isolated_env):
    folder = write_dataset(tmp_path / "ds", n_train=6, n_test=4, size=5)
    ds = load_dataset("fashion-mnist", folder)
    assert ds.name == "fashion-mnist"
    assert ds.train.images.shape == (6, 5, 5) and ds.train.images.dtype == np.uint8
    assert ds.test.labels.shape == (4,) and ds.test.labels.dtype == np.int64
    assert ds.class_names == DATASETS["fashion-mnist"] and len(ds.class_names) == 10
    assert ds.source == str(folder)


# --- standardize / to_model_input --------------------------------------------


def test_standardize_hand_computed():
    image = np.array([[0, 1], [2, 3]], dtype=np.uint8).reshape(2, 2, 1)
    expected = (np.array([0, 1, 2, 3], dtype=np.float64) - 1.5) / np.sqrt(1.25)
    out = np.asarray(standardize(image))
    assert out.shape == (2, 2, 1)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out.ravel(), expected, rtol=1e-5, atol=1e-6)


def test_standardize_constant_image_is_zero():
    out = np.asarray(standardize(np.full((1, 4, 4, 1), 77, dtype=np.uint8)))
    np.testing.assert_array_equal(out, np.zeros((1, 4, 4, 1), dtype=np.float32))


def test_standardize_std_floor():
    # std of [0,0,0,0.2] is ~0.0866, below the floor 1/sqrt(4) = 0.5
    image = np.array([0, 0, 0, 0.2], dtype=np.float32).reshape(2, 2, 1)
    out = np.asarray(standardize(image))
    np.testing.assert_allclose(out.ravel(), (image.ravel() - 0.05) / 0.5, rtol=1e-5, atol=1e-6)


def test_standardize_batch_images_independent():
    rng = np.random.default_rng(3)
    batch = np.stack([
        np.array([[0, 1], [2, 3]]),
        np.array([[10, 10], [10, 10]]),
        rng.integers(0, 256, (2, 2)),
    ]).astype(np.uint8)[..., None]
    out = np.asarray(standardize(batch))
    assert out.shape == (3, 2, 2, 1)
    for i in range(3):
        np.testing.assert_allclose(out[i], np.asarray(standardize(batch[i])), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(out[0].ravel(), (np.arange(4) - 1.5) / np.sqrt(1.25), rtol=1e-5)
    np.testing.assert_array_equal(out[1], 0)
    # each image has zero mean and unit std (non-constant ones)
    np.testing.assert_allclose(out[2].mean(), 0, atol=1e-5)
    np.testing.assert_allclose(out[2].std(), 1, atol=1e-4)


def test_to_model_input_adds_channel():
    images = np.random.default_rng(0).integers(0, 256, (3, 6, 5), dtype=np.uint8)
    out = to_model_input(images)
    assert isinstance(out, np.ndarray)
    assert out.shape == (3, 6, 5, 1)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out.reshape(3, -1).mean(axis=1), 0, atol=1e-5)


def test_to_model_input_keeps_channels():
    images = np.random.default_rng(1).integers(0, 256, (2, 4, 4, 3), dtype=np.uint8)
    out = to_model_input(images)
    assert out.shape == (2, 4, 4, 3) and out.dtype == np.float32


@pytest.mark.parametrize("shape", [(4, 4), (1, 2, 2, 1, 1), (5,)])
def test_to_model_input_bad_shape(shape):
    with pytest.raises(ConfigError, match="shape"):
        to_model_input(np.zeros(shape, dtype=np.uint8))
