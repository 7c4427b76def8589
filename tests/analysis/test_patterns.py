"""Activation patterns by class (the series' parts IV-VI): class profiles, selectivity and the
nearest-class-pattern classifier, gathered in the dataset-examples pass and shown in the gallery."""

from __future__ import annotations

import numpy as np
import pytest

from oipscope.analysis.examples import (
    DatasetExamples,
    dataset_examples,
    nearest_centroid_accuracy,
    pattern_accuracy,
    selectivity,
)

N_IMAGES = 40


def _pixel_model():
    """Each map is one input channel, 2x2 average-pooled: a map's mean is its channel's mean."""
    import keras

    return keras.Sequential([keras.Input((4, 4, 3)), keras.layers.AveragePooling2D(2, name="pool")], name="pix")


def test_nearest_centroid_accuracy_on_known_points():
    centroids = np.array([[0.0, 0.0], [10.0, 0.0], [np.nan, np.nan]])  # class 2 has no training images
    vectors = np.array([[1.0, 0.0], [9.0, 1.0], [4.0, 0.0], [6.0, 0.0]])
    labels = np.array([0, 1, 1, 2])
    # nearest: 0, 1, 0, 1 -> correct for the first two only
    assert nearest_centroid_accuracy(centroids, vectors, labels) == pytest.approx(0.5)
    assert np.isnan(nearest_centroid_accuracy(centroids, np.zeros((0, 2)), np.zeros(0)))


def test_selectivity_of_known_profiles():
    values = selectivity(np.array([[0.0, 2.0, 0.0], [1.0, 1.0, 1.0], [0.0, 0.0, 0.0], [-1.0, 1.0, -1.0]]))
    assert values[0] == pytest.approx(1.0)  # one class only
    assert values[1] == pytest.approx(0.0)  # all classes alike
    assert np.isnan(values[2])  # silent
    assert values[3] == pytest.approx(1.0)  # shifted: lowest class at 0


def test_class_profiles_and_pattern_accuracy_from_the_stream():
    from oipscope.model.encoding import InputEncoding
    from oipscope.model.subject import Subject

    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (N_IMAGES, 4, 4, 3)).astype(np.float32)
    labels = rng.integers(0, 3, N_IMAGES)
    labels[5] = -1  # an image without a label counts nowhere
    subject = Subject(_pixel_model(), InputEncoding.value_range(0, 255))  # encoding = identity
    examples = dataset_examples(subject, "pool", images, labels, batch_size=7)
    means = images.mean(axis=(1, 2))  # (N, maps)
    for c in range(3):
        np.testing.assert_allclose(examples.class_means[:, c], means[labels == c].mean(axis=0), rtol=1e-5)
    index = np.arange(N_IMAGES)
    train, test = (labels >= 0) & (index % 2 == 0), (labels >= 0) & (index % 2 == 1)
    centroids = np.stack([means[train & (labels == c)].mean(axis=0) for c in range(3)])
    expected = nearest_centroid_accuracy(centroids, means[test], labels[test])
    assert examples.pattern_accuracy == pytest.approx(expected)
    assert pattern_accuracy(subject, "pool", images, labels) == examples.pattern_accuracy
    again = dataset_examples(subject, "pool", images, labels, batch_size=1000)  # batching changes nothing
    np.testing.assert_array_equal(again.class_means, examples.class_means)
    assert again.pattern_accuracy == examples.pattern_accuracy


def test_without_labels_there_is_no_profile(tmp_path):
    images = np.random.default_rng(1).uniform(0, 255, (10, 4, 4, 3)).astype(np.float32)
    examples = dataset_examples(_pixel_model(), "pool", images)
    assert examples.class_means is None and np.isnan(examples.pattern_accuracy)
    assert examples.class_histogram.shape == (3, 0)
    loaded = DatasetExamples.load(examples.save(tmp_path / "ex.npz"))
    assert loaded.class_means is None and np.isnan(loaded.pattern_accuracy)


def test_profiles_round_trip_and_old_files_load(tmp_path):
    images = np.random.default_rng(2).uniform(0, 255, (12, 4, 4, 3)).astype(np.float32)
    examples = dataset_examples(_pixel_model(), "pool", images, np.arange(12) % 2)
    loaded = DatasetExamples.load(examples.save(tmp_path / "ex.npz"))
    np.testing.assert_array_equal(loaded.class_means, examples.class_means)
    assert loaded.pattern_accuracy == examples.pattern_accuracy
    old = {k: v for k, v in examples.to_dict().items() if k not in ("class_means", "pattern_accuracy")}
    np.savez(tmp_path / "old.npz", **old)
    before = DatasetExamples.load(tmp_path / "old.npz")  # written before class profiles existed
    assert before.class_means is None and np.isnan(before.pattern_accuracy)


@pytest.mark.slow
def test_embedded_cnn_pattern_accuracy_rises_with_depth():
    from oipscope.model.cnn import default_subject
    from oipscope.data.imagesets import embedded_examples

    subject, images = default_subject(), embedded_examples()
    accuracy = [dataset_examples(subject, layer, images).pattern_accuracy for layer in ("Conv2D_1", "Conv2D_3")]
    assert 0.3 < accuracy[0] < accuracy[1] and accuracy[1] > 0.95  # measured 42 % and 97 %


@pytest.mark.slow
def test_gallery_shows_profiles_selectivity_and_the_accuracy_curve(tmp_path):
    from oipscope.model.cnn import default_subject
    from oipscope.ascent.pixels import OipConfig
    from oipscope.data.imagesets import embedded_examples
    from oipscope.model.loading import describe
    from oipscope.gallery.site import write_gallery
    from oipscope.runs.examine import examine_layer
    from oipscope.search.pipeline import find_oips

    subject, images = default_subject(), embedded_examples()
    pairs = []
    for layer in ("Conv2D_1", "Conv2D_2"):
        result = find_oips(subject, layer, "0-3", OipConfig(steps=20, restarts=0, rescue_steps=0))
        pairs.append(examine_layer(subject, result, images, wake=False))
    index = write_gallery(tmp_path, (subject.name, describe(subject.model)), pairs, images=images, cards=False)
    assert (tmp_path / "thumbs" / "pattern_accuracy.png").is_file()
    assert "Classification by activation patterns" in index.read_text()
    page = next((tmp_path / "layers").glob("conv2d-2-*.html")).read_text()
    accuracy = pairs[1][1].pattern_accuracy
    assert "Class profiles" in page and f"{100 * accuracy:.1f} %" in page
    assert 'value="selectivity"' in page and 'data-selectivity="' in page
    folder = next(p for p in (tmp_path / "layers").iterdir() if p.is_dir() and p.name.startswith("conv2d-2"))
    assert (folder / "profiles_selectivity.png").is_file() and (folder / "profiles_index.png").is_file()
    map_page = (folder / "map_0000.html").read_text()
    assert "Class profile" in map_page and map_page.count('class="bar"') == 10
    assert "Digit 7" in map_page


@pytest.mark.slow
def test_zoo_table_says_no_labels_for_unlabelled_images(tmp_path):
    import re

    from conftest import save_mnist_sized_model
    from typer.testing import CliRunner

    from oipscope.cli.commands import app

    model = save_mnist_sized_model(tmp_path / "tiny.keras")
    pixels = np.random.default_rng(3).integers(0, 256, (30, 28, 28), np.uint8)
    np.savez(tmp_path / "unlabelled.npz", x=pixels)
    result = CliRunner().invoke(app, ["zoo", str(model), "--images", str(tmp_path / "unlabelled.npz"), "--steps", "10",
                                      "--out", str(tmp_path / "zoo")], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    rows = [[c.strip() for c in re.split(r"[│┃]", line) if c.strip()] for line in result.output.splitlines()]
    table = {row[0]: row for row in rows if row and row[0] in ("c1", "c2")}
    assert list(table) == ["c1", "c2"] and all(row[5] == "no labels" for row in table.values())
    assert "pattern accuracy" in result.output
    assert not (tmp_path / "zoo" / "thumbs" / "pattern_accuracy.png").exists()  # no curve without labels
