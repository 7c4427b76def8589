"""Dataset examples cropped to the receptive field of their strongest unit, and RGB OIPs in pixel units."""

from __future__ import annotations

import dataclasses
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import pytest
from matplotlib.patches import Rectangle

from oipscope.analysis.examples import DatasetExamples
from oipscope.figures import plot
from oipscope.figures.crops import (
    MIN_CROP,
    crop_image,
    crop_window,
    crops_shown,
    example_crop,
    outlined_strip,
)
from oipscope.figures.tiles import PIXEL_LIMITS, colorize, rgb_limits, scale_caption
from oipscope.model.encoding import InputEncoding
from oipscope.model.receptive_field import ReceptiveField

SIDE = 224
FIELD = ReceptiveField(size=(100, 100), jump=(16, 16), start=(-42, -42), input_hw=(SIDE, SIDE))


def coordinates(h: int = SIDE, w: int = SIDE) -> np.ndarray:
    """An RGB image whose pixel (r, c) is (r, c, 7): every crop shows where it came from."""
    rows, cols = np.mgrid[0:h, 0:w]
    return np.stack([rows, cols, np.full_like(rows, 7)], axis=-1).astype(np.float32)


def test_the_window_is_the_field_of_the_unit_and_its_pixels_are_the_images():
    image = coordinates()
    assert crop_window(FIELD, (7, 7), (SIDE, SIDE)) == (70, 70, 100, 100)  # 112 - 42 = 70: rows 70..169
    crop = crop_image(image, (70, 74, 100, 90), (100, 90))
    np.testing.assert_array_equal(crop, image[70:170, 74:164])
    doubled = crop_image(image, (70, 70, 100, 100), (200, 200))  # resized to the tile: each pixel twice
    np.testing.assert_array_equal(doubled[::2, ::2], image[70:170, 70:170])
    np.testing.assert_array_equal(doubled[1::2, 1::2], image[70:170, 70:170])


def test_a_field_past_the_border_is_padded_with_the_images_mean_so_the_unit_stays_centred():
    image = coordinates()
    window = crop_window(FIELD, (0, 0), (SIDE, SIDE))
    assert window == (-42, -42, 100, 100)
    crop, mark = example_crop(image, FIELD, (0, 0), (100, 100))
    assert mark is None  # the field fills its crop: nothing to outline
    mean = image.mean(axis=(0, 1))
    np.testing.assert_allclose(crop[:42, :], np.broadcast_to(mean, (42, 100, 3)))
    np.testing.assert_allclose(crop[:, :42], np.broadcast_to(mean, (100, 42, 3)))
    np.testing.assert_array_equal(crop[42:, 42:], image[:58, :58])
    grey = np.arange(16, dtype=np.uint8).reshape(4, 4)
    padded = crop_image(grey, (-1, -1, 3, 3), (3, 3))
    assert padded.dtype == np.uint8 and padded[0, 0] == 8 and padded[1, 1] == 0  # mean 7.5 rounds to 8


def test_the_field_is_scaled_to_images_of_another_size():
    half = np.zeros((112, 112, 3), np.float32)
    assert crop_window(FIELD, (7, 7), half.shape[:2]) == (35, 35, 50, 50)


def test_a_small_field_is_outlined_in_a_crop_of_at_least_min_crop_pixels():
    field = ReceptiveField(size=(3, 3), jump=(1, 1), start=(-1, -1), input_hw=(SIDE, SIDE))
    crop, mark = example_crop(coordinates(), field, (100, 60), (64, 64))
    assert crop_window(field, (100, 60), (SIDE, SIDE))[2:] == (MIN_CROP, MIN_CROP)
    x, y, w, h = mark
    assert (w, h) == (6, 6)  # 3 px of a 32 px crop shown 64 px wide
    centre_row, centre_col = crop[int(y + h / 2), int(x + w / 2), :2]
    assert (centre_row, centre_col) == (100, 60)  # the outline sits on the unit's own pixel


def test_a_field_over_most_of_the_image_shows_the_whole_image_as_before():
    wide = ReceptiveField(size=(160, 160), jump=(16, 16), start=(-42, -42), input_hw=(SIDE, SIDE))
    assert crop_window(wide, (3, 3), (SIDE, SIDE)) is None and not crops_shown(wide, (SIDE, SIDE))
    assert example_crop(coordinates(), None, (3, 3)) is None
    assert crops_shown(FIELD, (SIDE, SIDE))


@pytest.mark.slow
def test_the_series_cnn_keeps_its_whole_images():
    from oipscope.model.cnn import default_subject
    from oipscope.model.receptive_field import receptive_field

    model = default_subject().model
    fields = {name: receptive_field(model, name) for name in ("Conv2D_1", "Max_Pool_1", "Conv2D_2", "Conv2D_3")}
    assert fields["Conv2D_3"] == ReceptiveField((18, 18), (4, 4), (0, 0), (28, 28))
    assert receptive_field(model, "Dense_1") is None
    assert not any(crops_shown(field, (28, 28)) for field in fields.values())


def _examples(field) -> DatasetExamples:
    """Two maps of a 13×13 layer over three 224 px images; map 0 fires at (7, 7), (0, 0) and (12, 3)."""
    return DatasetExamples(
        layer_name="block4", k=3,
        top_indices=np.array([[2, 0, 1], [0, 1, 2]]), top_values=np.array([[3.0, 2.0, 1.0], [1.0, 0.5, 0.0]]),
        top_positions=np.array([[[7, 7], [0, 0], [12, 3]], [[1, 1], [2, 2], [0, 0]]]),
        max_activation=np.array([5.0, 1.0]), mean_activation=np.array([1.0, 0.2]),
        fire_fraction=np.array([1.0, 0.6]), class_histogram=np.zeros((2, 0), np.int64), n_images=3,
        receptive_field=field,
    )


def _rgb_images() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (3, SIDE, SIDE, 3)).astype(np.uint8)


def test_examples_figure_shows_each_image_cropped_to_its_strongest_units_field():
    images = _rgb_images()
    fig = plot.examples_figure(_examples(FIELD), 0, images, map_shape=(13, 13))
    axes = [ax for ax in fig.axes if ax.images]
    for ax, index, position in zip(axes, (2, 0, 1), ((7, 7), (0, 0), (12, 3))):
        crop, _ = example_crop(images[index], FIELD, position)
        np.testing.assert_allclose(ax.images[0].get_array(), crop / 255.0, atol=1e-6)
        assert not [p for p in ax.patches if isinstance(p, Rectangle)]  # the field fills the crop
    assert "cropped" in fig._suptitle.get_text()
    fig = plot.examples_figure(_examples(None), 0, images, map_shape=(13, 13))  # no field: whole images, as before
    first = next(ax for ax in fig.axes if ax.images)
    assert first.images[0].get_array().shape[:2] == (SIDE, SIDE)
    np.testing.assert_allclose(first.images[0].get_array(), images[2] / 255.0, atol=1e-6)
    assert len([p for p in first.patches if isinstance(p, Rectangle)]) == 1


def test_the_cards_example_strip_shows_the_crops():
    from oipscope.figures.card import MapCard, card_layout
    from oipscope.search.results import MapOip

    images = _rgb_images()
    oip = _an_oip(MapOip)
    layout = card_layout(oip, _examples(FIELD), images, max_examples=3)
    assert layout.cropped
    card = MapCard(layout)
    card.paint(oip, _examples(FIELD), images)
    strip = np.asarray(card.ex_image.get_array())
    crop, _ = example_crop(images[2], FIELD, (7, 7), (SIDE, SIDE))
    np.testing.assert_allclose(strip[:, :SIDE], crop / 255.0, atol=1e-6)
    heading = [t.get_text() for t in card.fig.texts if t.get_text().startswith("top dataset images")]
    assert "receptive field" in heading[0]


def _an_oip(cls, channels: int = 3):
    rng = np.random.default_rng(1)
    fields = {f.name for f in dataclasses.fields(cls)}
    values = {"map_index": 0, "image": rng.uniform(0.3, 0.5, (SIDE // 8, SIDE // 8, channels)).astype(np.float32),
              "activation": 1.0, "activation_history": np.linspace(0, 1, 5, dtype=np.float32), "converged_step": 3,
              "status": "converged", "start": "noise",
              "snapshots": np.zeros((1, SIDE // 8, SIDE // 8, channels), np.float32), "snapshot_steps": (4,)}
    return cls(**{k: v for k, v in values.items() if k in fields})


def test_the_map_page_strip_outlines_each_crop_on_the_whole_image():
    tiles = [np.ones((40, 40, 3), np.float32)] * 2
    strip = outlined_strip(tiles, [(10, 5, 20, 20), None], "#ff0000", gap=4, width=2.0)
    red = (strip[..., 0] == 255) & (strip[..., 1] == 0)
    rows, cols = np.nonzero(red)
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (10, 29, 5, 24)  # inside the crop's pixels
    assert not red[:, 44:].any()  # no crop on the second image


def test_rgb_oips_in_pixel_units_are_not_stretched_grey_ones_are():
    pixel = InputEncoding.value_range(0.0, 1.0)
    assert rgb_limits(pixel) == PIXEL_LIMITS and rgb_limits(InputEncoding.standardize()) is None
    dull = np.full((4, 4, 3), 100.0, np.float32)
    dull[0, 0] = (110.0, 90.0, 100.0)
    np.testing.assert_allclose(colorize(dull, rgb_limits=PIXEL_LIMITS), dull / 255.0)
    assert colorize(dull).max() == 1.0  # the per-tile stretch turns a 10-level tint into full colour
    grey = dull[..., 0]
    np.testing.assert_array_equal(colorize(grey, rgb_limits=PIXEL_LIMITS), colorize(grey))  # grey: as before
    assert scale_caption(PIXEL_LIMITS) == "pixel units 0–255"
    assert scale_caption(None) == "contrast stretched per tile"


def test_figures_of_rgb_oips_say_which_scale_they_use():
    from oipscope.figures.card import MapCard, card_layout
    from oipscope.search.results import MapOip

    oip = _an_oip(MapOip)
    pixel = InputEncoding.value_range(0.0, 1.0)
    image = pixel.decode(oip.image)
    fig = plot.oip_grid(_Result([oip], pixel))
    shown = next(ax for ax in fig.axes if ax.images).images[0].get_array()
    np.testing.assert_allclose(shown, np.clip(image / 255.0, 0, 1), atol=1e-6)
    assert "pixel units 0–255" in fig._suptitle.get_text()
    card = MapCard(card_layout(oip), encoding=pixel)
    card.paint(oip, encoding=pixel)
    assert card.ax_oip.get_title() == "OIP (pixel units 0–255)"
    np.testing.assert_allclose(card.oip_image.get_array(), np.clip(image / 255.0, 0, 1), atol=1e-6)
    grey = _an_oip(MapOip, channels=1)
    assert "pixel units" not in plot.oip_grid(_Result([grey], pixel))._suptitle.get_text()


@dataclasses.dataclass
class _Result:
    maps: list
    encoding: object
    layer_name: str = "block4"
    model_name: str = "vgg"
