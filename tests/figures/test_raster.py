"""Pixels written without matplotlib (raster), PNG files (pngs) and text with Pillow's glyphs (pil_text)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from matplotlib.figure import Figure
from PIL import Image

from oipscope.figures.text import PilText, figure_pixels, glyph_font
from oipscope.figures.png import BackgroundPngs, encode_png
from oipscope.figures.paint import blend_box, blend_mask, frame, paste, pixel_box, snap, snap_box


def _agg_pixels(fig: Figure) -> np.ndarray:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.array(canvas.buffer_rgba())


def test_paste_shows_an_image_as_imshow_does():
    """Nearest-neighbour pasting into an axes' box gives Agg's imshow pixels (edges aside)."""
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (7, 9, 3), dtype=np.uint8)
    fig = Figure(figsize=(3, 2), dpi=50)
    ax = fig.add_axes((0.113, 0.171, 0.6, 0.7))
    ax.imshow(image, interpolation="nearest", aspect="auto")
    ax.axis("off")
    agg = _agg_pixels(fig)
    buffer = np.full_like(agg, 255)
    box = pixel_box(ax.bbox, agg.shape[0])
    paste(buffer, image, box)
    x0, y0, x1, y1 = (int(np.ceil(v)) for v in box)
    inner = (slice(y0 + 1, y1 - 1), slice(x0 + 1, x1 - 1))
    assert np.abs(buffer[inner].astype(int) - agg[inner]).max() <= 1
    assert (buffer[..., 3] == 255).all()
    rgb = np.full((6, 8, 3), 255, np.uint8)  # an RGB buffer works too, clipped at its edges
    paste(rgb, np.zeros((2, 2, 3), np.uint8), (-2.0, 1.0, 4.0, 5.0))
    assert (rgb[1:5, :4] == 0).all() and (rgb[0] == 255).all() and (rgb[:, 4:] == 255).all()


def test_boxes_cover_pixels_in_proportion():
    buffer = np.zeros((6, 8, 3), np.uint8)
    blend_box(buffer, (1.0, 1.0, 3.5, 2.0), (1.0, 1.0, 1.0))
    assert buffer[1, :5, 0].tolist() == [0, 255, 255, 128, 0]
    blend_box(buffer, (5.0, 3.0, 7.0, 5.0), (1.0, 0.0, 0.0), alpha=0.5, clip=(0.0, 0.0, 6.0, 6.0))
    assert buffer[3:5, 5, 0].tolist() == [128, 128] and buffer[3:5, 6].sum() == 0
    ring = np.zeros((8, 8, 3), np.uint8)
    frame(ring, (1.5, 1.5, 5.5, 5.5), 1.0, (0.0, 1.0, 0.0))
    assert ring[1, 1:6, 1].tolist() == [255] * 5 and ring[3, 3, 1] == 0  # a 1-pixel frame, hollow inside
    mask = np.array([[0, 255], [255, 255]], np.uint8)
    blend_mask(ring, mask, -1, 6, (0.0, 0.0, 1.0))  # clipped at the left edge
    assert ring[6, 0, 2] == 255 and ring[7, 0, 2] == 255


def test_snapping_follows_the_stroke_width():
    assert snap(10.4) == 10.0 and snap(10.6) == 11.0  # fills: whole pixels
    assert snap(10.4, 1.1) == 10.5 and snap(10.4, 2.0) == 10.0  # odd strokes: pixel centres
    assert snap_box((0.4, 0.6, 2.4, 2.6), 1.0) == (0.5, 1.5, 2.5, 3.5)


@pytest.mark.parametrize("shape", [(5, 7), (5, 7, 3), (5, 7, 4), (1, 1, 3)])
def test_encode_png_round_trip(shape):
    pixels = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    with Image.open(io.BytesIO(encode_png(pixels))) as image:
        np.testing.assert_array_equal(np.asarray(image), pixels)
    rgba = np.random.default_rng(1).integers(0, 256, (4, 6, 4), dtype=np.uint8)
    with Image.open(io.BytesIO(encode_png(rgba[..., :3], level=1))) as image:  # a strided view
        np.testing.assert_array_equal(np.asarray(image), rgba[..., :3])
    with pytest.raises(ValueError, match="uint8"):
        encode_png(np.zeros((2, 2, 3), np.float32))


def test_background_pngs_write_in_order():
    written = []
    images = [np.full((3, 4, 3), v, np.uint8) for v in range(10)]
    with BackgroundPngs(lambda name, data: written.append((name, data)), backlog=2) as pngs:
        for k, image in enumerate(images):
            pngs.add(f"{k}.png", image)
    assert [name for name, _ in written] == [f"{k}.png" for k in range(10)]
    assert all(data == encode_png(image) for (_, data), image in zip(written, images))
    written.clear()
    with pytest.raises(RuntimeError):
        with BackgroundPngs(lambda name, data: written.append(name), backlog=5) as pngs:
            pngs.add("dropped.png", images[0])
            raise RuntimeError("stop")
    assert written == []  # an error drops what was pending


def test_glyph_lines_are_anchored_as_pillow_anchors_them():
    from matplotlib.font_manager import FontProperties, findfont

    font = glyph_font(findfont(FontProperties(family="DejaVu Sans")), 10.0)
    left_mask, left, _ = font.line("map 12", 20.0, 10.0, "ls")
    right_mask, right, _ = font.line("map 12", 20.0, 10.0, "rs")
    width = font.width("map 12")
    assert left_mask.max() == 255 and 18 <= left <= 21
    assert abs((left - right) - width) <= 1.5
    _, _, top = font.line("x", 0.0, 10.0, "ls")
    _, _, top_a = font.line("x", 0.0, 10.0, "la")
    assert top_a - top == pytest.approx(font.ascent, abs=1)
    assert font.extent("map")[0] == pytest.approx(width * 3 / 6, rel=0.3)


def test_figure_pixels_match_agg_but_for_the_text():
    """A figure rendered with Pillow's glyphs: the same size and graphics as Agg's, its text in place."""
    fig = Figure(figsize=(3, 2), dpi=60)
    ax = fig.add_axes((0.25, 0.25, 0.6, 0.6))
    ax.plot([0, 1, 2], [0, 1, 0.5], lw=2)
    ax.set_title("title")
    ax.set_ylabel("a y label")
    ours = figure_pixels(fig, dpi=80)
    assert fig.dpi == 60
    fig.dpi = 80
    agg = _agg_pixels(fig)
    assert ours.shape == agg.shape
    diff = np.abs(ours[..., :3].astype(int) - agg[..., :3]).max(-1)
    assert (diff > 64).mean() < 0.03
    inked = (ours[..., :3].min(-1) < 128)
    agg_inked = (agg[..., :3].min(-1) < 128)
    assert abs(int(inked.sum()) - int(agg_inked.sum())) < 0.25 * agg_inked.sum()
    left_band = slice(0, int(0.2 * ours.shape[1]))
    assert inked[:, left_band].any()  # the rotated y label was drawn
    again = _agg_pixels(fig)  # the renderer draws its own text again afterwards
    np.testing.assert_array_equal(again, agg)


def test_pil_text_draws_a_text_artist():
    fig = Figure(figsize=(2, 1), dpi=100)
    text = fig.text(0.5, 0.5, "hello\nworld", ha="center", va="center", fontsize=10, color="red")
    buffer = np.full((100, 200, 4), 255, np.uint8)
    PilText(fig).start(buffer).text(text)
    red = (buffer[..., 0] > 200) & (buffer[..., 1] < 100)
    rows, cols = np.nonzero(red)
    assert rows.size and abs(rows.mean() - 50) < 5 and abs(cols.mean() - 100) < 8
