"""Dataset examples per map: exact top-k on a synthetic set, batching invariance, silent maps."""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402

from oipscope.analysis import examples as examples_module  # noqa: E402
from oipscope.errors import ConfigError, DataError, LayerError  # noqa: E402
from oipscope.analysis.examples import (  # noqa: E402
    DatasetExamples,
    _order_keys,
    dataset_examples,
    evoked_classes,
    superstimulus_ratio,
)

N_IMAGES = 30


def _np_standardize(images: np.ndarray) -> np.ndarray:
    x = images.astype(np.float64)
    mean = x.mean(axis=(1, 2, 3), keepdims=True)
    std = np.maximum(x.std(axis=(1, 2, 3), keepdims=True), 1.0 / np.sqrt(np.prod(x.shape[1:])))
    return (x - mean) / std


def _pixel_model() -> keras.Model:
    """1x1 conv + ReLU on 8x8 images: map 0 = bright pixels, map 1 = dark pixels, map 2 silent."""
    model = keras.Sequential(
        [keras.Input((8, 8, 1)), keras.layers.Conv2D(3, 1, activation="relu", name="pix"),
         keras.layers.Flatten(name="flat"), keras.layers.Dense(2, activation="relu", name="dense")],
        name="pixel",
    )
    model.get_layer("pix").set_weights([np.array([[[[1.0, -1.0, 0.0]]]], np.float32),
                                        np.array([0.0, 0.0, -10.0], np.float32)])
    return model


@pytest.fixture()
def pixel_model() -> keras.Model:
    return _pixel_model()  # fresh per test: compiled forwards are cached per model


@pytest.fixture(scope="module")
def synthetic():
    """Image i has n_i lit pixels (value 100) and one peak (250) at a random place; n_i all distinct.

    Under per-image standardization the mean ReLU of the bright map grows with the
    number of lit pixels (below half the image), so the top images are known.
    """
    rng = np.random.default_rng(7)
    n_lit = rng.permutation(np.arange(1, N_IMAGES + 1))
    images = np.zeros((N_IMAGES, 8, 8, 1), np.uint8)
    peaks = np.zeros((N_IMAGES, 2), np.int64)
    for i, n in enumerate(n_lit):
        flat = rng.permutation(64)[:n]
        images[i].reshape(-1)[flat] = 100
        images[i].reshape(-1)[flat[0]] = 250
        peaks[i] = divmod(flat[0], 8)
    labels = n_lit % 3
    return images, labels, n_lit, peaks


def test_top_k_is_known_answer(pixel_model, synthetic):
    images, labels, n_lit, peaks = synthetic
    result = dataset_examples(pixel_model, "pix", images, labels, k=4, hist_top=6, batch_size=8)
    x = _np_standardize(images)
    bright = np.maximum(x, 0).mean(axis=(1, 2, 3))
    assert np.all(np.diff(bright[np.argsort(n_lit)]) > 0)  # sanity: score grows with n_lit
    expected = np.argsort(-n_lit)[:4]
    assert result.top_indices[0].tolist() == expected.tolist()
    np.testing.assert_allclose(result.top_values[0], bright[expected], rtol=1e-5)
    assert result.top_positions[0].tolist() == peaks[expected].tolist()
    assert result.top_indices.shape == (3, 4) and result.top_positions.shape == (3, 4, 2)
    np.testing.assert_allclose(result.max_activation[0], np.maximum(x, 0).max(), rtol=1e-5)
    np.testing.assert_allclose(result.mean_activation[:2],
                               [bright.mean(), np.maximum(-x, 0).mean()], rtol=1e-5)
    assert result.fire_fraction.tolist() == [1.0, 1.0, 0.0]
    top6 = np.argsort(-n_lit)[:6]
    assert result.class_histogram[0].tolist() == np.bincount(labels[top6], minlength=3).tolist()
    assert result.class_histogram[2].tolist() == [0, 0, 0]
    assert result.n_images == N_IMAGES and result.k == 4


@pytest.mark.parametrize("as_set", [False, True])
def test_images_with_nan_are_left_out(pixel_model, synthetic, as_set):
    """A NaN or inf image counts in neither n_images nor the fire fractions, as an array or an image set."""
    from oipscope.data.imagesets import array_images

    images, labels, n_lit, _ = synthetic
    spoiled = images.astype(np.float32)
    best = int(np.argmax(n_lit))
    spoiled[best, 0, 0, 0], spoiled[0, 1, 1, 0] = np.nan, np.inf
    given = array_images(spoiled, (8, 8, 1), labels=labels) if as_set else spoiled
    result = dataset_examples(pixel_model, "pix", given, None if as_set else labels, k=3, batch_size=8)
    clean = dataset_examples(pixel_model, "pix", np.delete(images, [0, best], axis=0), k=3, batch_size=8)
    assert result.n_images == N_IMAGES - 2 and best not in result.top_indices[0]
    np.testing.assert_allclose(result.top_values, clean.top_values, rtol=1e-6)
    np.testing.assert_allclose(result.mean_activation, clean.mean_activation, rtol=1e-5)
    assert result.fire_fraction.tolist() == clean.fire_fraction.tolist()
    if as_set:
        assert given.skipped == (f"#{min(0, best)}", f"#{max(0, best)}")


def test_silent_map_and_superstimulus_ratio(pixel_model, synthetic):
    images, labels, _, _ = synthetic
    result = dataset_examples(pixel_model, "pix", images, labels, k=3)
    assert result.silent_maps.tolist() == [2] and result.live_maps.tolist() == [0, 1]
    ratio = superstimulus_ratio(2 * result.top_values[:, 0] + np.array([0, 0, 1]), result)
    np.testing.assert_allclose(ratio[:2], [2.0, 2.0])
    assert np.isnan(ratio[2]) and not np.isinf(ratio).any()
    with pytest.raises(ConfigError, match="3 maps"):
        superstimulus_ratio(np.ones(5), result)


def test_batches_bounded_and_batching_invariant(pixel_model, synthetic, monkeypatch):
    images, labels, _, _ = synthetic
    seen: list[int] = []
    make_forward = examples_module._make_forward

    def spying_make_forward(submodel, input_shape, encoding):
        forward = make_forward(submodel, input_shape, encoding)

        def spy(batch):
            seen.append(len(batch))
            return forward(batch)

        return spy

    monkeypatch.setattr(examples_module, "_make_forward", spying_make_forward)
    progress: list[tuple[int, int]] = []
    small = dataset_examples(pixel_model, "pix", images, labels, k=5, hist_top=10, batch_size=7,
                             on_progress=lambda done, total: progress.append((done, total)))
    assert max(seen) <= 7 and sum(seen) == N_IMAGES
    assert progress[-1] == (N_IMAGES, N_IMAGES) and len(progress) == 5
    large = dataset_examples(_pixel_model(), "pix", images, labels, k=5, hist_top=10, batch_size=1000)
    for name, value in small.to_dict().items():
        if isinstance(value, np.ndarray):
            np.testing.assert_allclose(value, getattr(large, name), rtol=1e-5, atol=1e-7, err_msg=name)
        else:
            assert value == getattr(large, name), name
    # map 2 is silent: all its values tie at 0, and ties go to the lower index however batched
    assert small.top_indices.tolist() == large.top_indices.tolist()
    assert small.top_indices[2].tolist() == [0, 1, 2, 3, 4]


def test_dense_layer_and_errors(pixel_model, synthetic):
    images, labels, _, _ = synthetic
    result = dataset_examples(pixel_model, "dense", images[..., 0], labels, k=50)
    assert result.k == N_IMAGES and result.top_indices.shape == (2, N_IMAGES)
    assert (result.top_positions == 0).all()
    with pytest.raises(LayerError):
        dataset_examples(pixel_model, "nope", images, labels)
    with pytest.raises(ConfigError, match="labels"):
        dataset_examples(pixel_model, "pix", images, labels[:-1])
    with pytest.raises(ConfigError, match="k must"):
        dataset_examples(pixel_model, "pix", images, labels, k=0)


def test_order_keys_total_order():
    values = np.array([0.5, -2.0, 0.0, -0.0, 3.0, 0.5, -1e-30, 1e-30], np.float32)
    indices = np.arange(len(values))
    keys = _order_keys(values, indices)
    expected = np.lexsort((indices, -values.astype(np.float64)))
    assert np.argsort(-keys).tolist() == expected.tolist()


def test_save_load_roundtrip(pixel_model, synthetic, tmp_path):
    images, labels, _, _ = synthetic
    result = dataset_examples(pixel_model, "pix", images, labels, k=3)
    path = result.save(tmp_path / "sub" / "pix.npz")
    assert [p.name for p in path.parent.iterdir()] == ["pix.npz"]  # no temporary file left
    loaded = DatasetExamples.load(path)
    assert loaded.layer_name == "pix" and loaded.k == 3 and loaded.n_images == N_IMAGES
    for name in ("top_indices", "top_values", "top_positions", "fire_fraction", "class_histogram"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(result, name))
    assert loaded.silent_maps.tolist() == [2]
    (tmp_path / "junk.npz").write_text("junk")
    with pytest.raises(DataError, match="junk.npz"):
        DatasetExamples.load(tmp_path / "junk.npz")
    with pytest.raises(DataError, match="missing.npz"):
        DatasetExamples.load(tmp_path / "missing.npz")


@pytest.mark.parametrize("activation", ["softmax", "linear", "sigmoid"])
def test_evoked_classes_rows_are_probabilities(activation):
    model = keras.Sequential([keras.Input((2, 2, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(3, activation=activation, name="out")])
    weights = np.array([[1, 0, 0], [0, 2, 0], [0, 0, 1], [1, 1, 1]], np.float32)
    model.get_layer("out").set_weights([weights, np.zeros(3, np.float32)])
    images = np.array([[1.0, 0.0, 0.0, -1.0], [0.0, 1.0, 0.5, 0.0]], np.float32).reshape(2, 2, 2, 1)
    probs = evoked_classes(model, images)
    logits = images.reshape(2, 4) @ weights
    if activation == "sigmoid":
        s = 1 / (1 + np.exp(-logits))
        expected = s / s.sum(axis=1, keepdims=True)
    else:
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        expected = e / e.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(probs, expected, rtol=1e-5)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-6)
    with pytest.raises(ConfigError, match="standardized"):
        evoked_classes(model, images[:, :, :1])
