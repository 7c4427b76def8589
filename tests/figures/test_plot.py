"""Figures of oipscope.figures.plot on a small real OIP result (tiny CNN, 20 ascent steps)."""

from __future__ import annotations

import dataclasses
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import pytest
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from conftest import build_tiny_model

from oipscope.figures import plot
from oipscope.figures.card import MapCard, card_layout
from oipscope.errors import ConfigError
from oipscope.figures.text import tick_strings
from oipscope.figures.tiles import tile_images

SILENT_MAP = 2


def _tiny_cnn():
    model = build_tiny_model("tiny_plot", output_activation="softmax")
    kernel, bias = model.get_layer("c1").get_weights()
    bias[SILENT_MAP] = -100.0  # this map can never fire: its OIP search ends silent
    model.get_layer("c1").set_weights([kernel, bias])
    return model


@pytest.fixture(scope="module")
def setup():
    """A tiny model, its OIPs for c1 (one map silent) and c2, assessed on random data."""
    from oipscope.ascent.pixels import OipConfig
    from oipscope.analysis.examples import dataset_examples
    from oipscope.analysis.assessment import assess_oips
    from oipscope.search.pipeline import find_oips

    model = _tiny_cnn()
    config = OipConfig(steps=20, n_candidates=4, restarts=1, seed=3)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (40, 12, 12), dtype=np.uint8)
    labels = rng.integers(0, 3, 40)
    c1 = find_oips(model, "c1", config=config)
    examples = dataset_examples(model, "c2", images, labels, k=4)
    c2 = assess_oips(find_oips(model, "c2", config=config), model, examples)
    return {"model": model, "c1": c1, "c2": c2, "examples": examples, "images": images, "labels": labels}


def _image_axes(fig: Figure) -> list:
    return [ax for ax in fig.axes if ax.images]


def _texts(fig: Figure) -> list[str]:
    out = [t.get_text() for t in fig.texts]
    for ax in fig.axes:
        out += [ax.get_title()] + [t.get_text() for t in ax.texts]
    return out


@pytest.mark.slow
def test_the_silent_map_is_silent(setup):
    statuses = [m.status for m in setup["c1"].maps]
    assert statuses[SILENT_MAP] == "silent"
    assert [s for i, s in enumerate(statuses) if i != SILENT_MAP].count("silent") == 0


def test_oip_grid_marks_silent_maps(setup):
    result = setup["c1"]
    fig = plot.oip_grid(result)
    assert isinstance(fig, Figure)
    assert len(_image_axes(fig)) == len(result.maps) - 1  # the silent map has no image ...
    marked = [ax for ax in fig.axes if ax.get_gid() == "oip-silent"]
    assert len(marked) == 1  # ... but a hatched panel labelled "silent"
    assert not marked[0].images
    assert any(isinstance(p, Rectangle) and p.get_hatch() for p in marked[0].patches)
    assert "silent" in [t.get_text() for t in marked[0].texts]
    assert marked[0].get_title().startswith(f"map {SILENT_MAP} / act ")
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert f"map 0 / act {result.maps[0].activation:.2f} / {result.maps[0].status}" in titles
    assert not any(ax.get_ylabel() for ax in fig.axes)  # per-tile contrast: no shared colorbar
    fig.savefig(os.devnull, format="png")
    shared = plot.oip_grid(result, contrast="shared")
    assert any(ax.get_ylabel() == "standardized value" for ax in shared.axes)  # one scale, one colorbar


def test_oip_grid_selection_and_columns(setup):
    fig = plot.oip_grid(setup["c2"], maps="1-3", ncols=2)
    assert len(_image_axes(fig)) == 3
    with pytest.raises(ConfigError, match="no OIP for map"):
        plot.oip_grid(setup["c2"], maps=[99])


def test_evolution_strip(setup):
    oip = setup["c2"].maps[0]
    fig = plot.evolution(oip)
    axes = _image_axes(fig)
    assert len(axes) == len(oip.snapshot_steps)
    for ax, step in zip(axes, oip.snapshot_steps):
        assert ax.get_title().startswith(f"step {step}\nactivation ")
    fig.savefig(os.devnull, format="png")


def test_activation_curves_legend_by_map(setup):
    result = setup["c2"]
    fig = plot.activation_curves(result)
    (ax,) = fig.axes
    curves = [line for line in ax.lines if len(line.get_xdata()) > 1]
    assert len(curves) == len(result.maps)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [f"map {m.map_index}" for m in result.maps]
    single = plot.activation_curves(list(result.maps), maps=[1])
    assert len([line for line in single.axes[0].lines if len(line.get_xdata()) > 1]) == 1


def test_activation_grid_rows_and_columns(setup):
    from oipscope.analysis.activations import layer_activations

    images = setup["images"][:3]
    acts = layer_activations(setup["model"], "c2", images)
    n_maps = acts.shape[-1]
    fig = plot.activation_grid(acts, images, titles=["a", "b", "c"], title="c2")
    (grid,) = _image_axes(fig)  # one mosaic: per image its caption, its input and its 6 maps in 2 rows of 3
    texts = [t.get_text() for t in grid.texts]
    assert {"a", "b", "c"} <= set(texts)
    assert texts.count("0") == texts.count("3") == 3  # first map of each grid row, per image
    assert fig._suptitle.get_text() == "c2"
    assert any(ax.get_ylabel() == "activation" for ax in fig.axes)  # the colorbar
    # the brightest map value is drawn in the top colour of the shared scale (no inputs: only maps drawn)
    (grid,) = _image_axes(plot.activation_grid(acts))
    top_colour = plot.colorize(np.ones((1, 1)), 0, 1)[0, 0]
    assert np.isclose(grid.images[0].get_array(), top_colour, atol=1e-6).all(axis=-1).any()

    fig = plot.activation_grid(acts[0], maps=[0, 2])
    (grid,) = _image_axes(fig)
    assert [t.get_text() for t in grid.texts] == ["0", "2"]  # a selection: each map labelled
    with pytest.raises(ConfigError, match="out of range"):
        plot.activation_grid(acts, maps=[n_maps])
    with pytest.raises(ConfigError, match="titles"):
        plot.activation_grid(acts, titles=["a"])


def test_examples_figure_marks_strongest_unit(setup):
    ex, images = setup["examples"], setup["images"]
    live = int(ex.live_maps[0])
    fig = plot.examples_figure(ex, live, images, map_shape=(3, 3), labels=setup["labels"])
    axes = _image_axes(fig)
    assert len(axes) == ex.k
    for ax, value, (r, c) in zip(axes, ex.top_values[live], ex.top_positions[live]):
        marks = [p for p in ax.patches if isinstance(p, Rectangle)]
        if value > 0:  # a 12x12 image over a 3x3 map: 4x4 pixels per unit
            (mark,) = marks
            assert mark.get_xy() == pytest.approx((c * 4 - 0.5, r * 4 - 0.5))
            assert (mark.get_width(), mark.get_height()) == pytest.approx((4, 4))
        else:
            assert not marks
    # no grid shape known: no marker, still a figure
    fig = plot.examples_figure(ex, live, images, k=2)
    assert len(_image_axes(fig)) == 2
    assert not any(ax.patches for ax in fig.axes)


def _rarely_firing(ex, live: int):
    """The examples with map ``live`` firing on only 2 of its images (the rest tie at 0)."""
    values = ex.top_values.copy()
    values[live, 2:] = 0.0
    fire = ex.fire_fraction.copy()
    fire[live] = 2 / ex.n_images
    return dataclasses.replace(ex, top_values=values, fire_fraction=fire)


def test_images_that_leave_the_map_off_are_not_shown_as_examples(setup):
    ex, images = setup["examples"], setup["images"]
    live = int(ex.live_maps[0])
    rare = _rarely_firing(ex, live)
    fig = plot.examples_figure(rare, live, images, map_shape=(3, 3))
    assert len(_image_axes(fig)) == 2
    assert _texts(fig).count("off") == ex.k - 2
    assert f"fires on only 2 of {ex.n_images} images" in fig._suptitle.get_text()

    card = plot.map_card(setup["c2"].maps[live], rare, images, map_shape=(3, 3), labels=setup["labels"])
    texts = _texts(card)
    assert texts.count("off") == ex.k - 2
    assert f"fires on only 2 of {ex.n_images} images" in texts
    none = dataclasses.replace(rare, top_values=np.zeros_like(rare.top_values))
    assert "none makes the map fire" in _texts(plot.map_card(setup["c2"].maps[live], none, images))
    assert "fires on only" not in " ".join(_texts(plot.map_card(setup["c2"].maps[live], ex, images)))


def test_map_card_has_everything(setup):
    oip = setup["c2"].maps[0]
    fig = plot.map_card(oip, setup["examples"], setup["images"], ["zero", "one", "two"],
                        map_shape=(3, 3), labels=setup["labels"], layer_name="c2")
    assert isinstance(fig, Figure)
    assert len(_image_axes(fig)) == 3  # OIP, evolution strip, dataset examples strip
    texts = "\n".join(_texts(fig))
    assert "superstimulus ratio" in texts and "evoked classes" in texts
    bars = [p for ax in fig.axes for p in ax.patches if ax.get_title() == "evoked classes"]
    assert len(bars) == 3
    assert [t.get_text() for t in fig.axes[3].get_xticklabels()] == ["zero", "one", "two"]
    fig.savefig(os.devnull, format="png")


def test_map_card_silent_map_without_examples(setup):
    oip = setup["c1"].maps[SILENT_MAP]
    fig = plot.map_card(oip)
    oip_ax = fig.axes[0]
    assert not oip_ax.images[0].get_visible()
    hatch = [p for p in oip_ax.patches if p.get_hatch()]
    assert hatch and hatch[0].get_visible()
    assert "silent" in [t.get_text() for t in oip_ax.texts if t.get_visible()]
    assert "not assessed" in "\n".join(_texts(fig))
    assert len(_image_axes(fig)) == 2  # the (hidden) OIP image and the evolution strip
    fig.savefig(os.devnull, format="png")


def test_figures_stay_out_of_pyplot(setup):
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    plot.oip_grid(setup["c1"])
    plot.activation_curves(setup["c1"])
    assert plt.get_fignums() == before


def test_figures_show_in_notebooks_without_pyplot(setup):
    """Jupyter shows a cell's Figure value through _repr_png_ when pyplot's inline backend is off."""
    import io

    from PIL import Image

    fig = plot.oip_grid(setup["c1"])
    png = fig._repr_png_()
    assert png.startswith(b"\x89PNG")
    with Image.open(io.BytesIO(png)) as image:
        width, height = image.size
        assert width > 100 and height > 100
        assert np.asarray(image.convert("L")).std() > 10  # drawn, not a blank canvas


def test_rgb_images_are_shown_in_colour(setup):
    oip = setup["c2"].maps[0]
    rgb = dataclasses.replace(oip, image=np.repeat(oip.image, 3, axis=-1),
                              snapshots=np.repeat(oip.snapshots, 3, axis=-1))
    fig = plot.oip_grid([rgb])
    assert _image_axes(fig)[0].images[0].get_array().shape[-1] == 3
    plot.map_card(rgb).savefig(os.devnull, format="png")


def test_fast_card_for_the_gallery(setup):
    """The gallery's reused card (static background, Pillow text) has the map card's size and changes per map."""
    import io

    from PIL import Image

    ex, images, labels = setup["examples"], setup["images"], setup["labels"]
    oips = setup["c2"].maps
    layout = card_layout(oips[0], ex, images, labels)
    card = MapCard(layout, dpi=50, blit=True, limits=(-3.0, 3.0), class_names=["a", "b", "c"])
    pngs = []
    for oip in oips[:2]:
        card.paint(oip, ex, images, ["a", "b", "c"], (3, 3), labels, "c2")
        pngs.append(card.png())
    assert pngs[0] != pngs[1]
    reference = io.BytesIO()
    plot.map_card(oips[0], ex, images, ["a", "b", "c"], map_shape=(3, 3), labels=labels, dpi=50).savefig(reference)
    sizes = {Image.open(io.BytesIO(png)).size for png in pngs + [reference.getvalue()]}
    assert len(sizes) == 1
    title = np.asarray(Image.open(io.BytesIO(pngs[0])).convert("L"))[:20]
    assert title.min() < 100  # the title text was drawn


def test_tick_strings():
    assert tick_strings([0.0, 0.5, 1.0]) == ["0.0", "0.5", "1.0"]
    assert tick_strings([0, 150, 300]) == ["0", "150", "300"]
    assert tick_strings([-0.0001, 0.0, 0.0001]) == ["-0.0001", "0.0000", "0.0001"]
    assert tick_strings([]) == []


def test_tile_images_places_tiles_row_by_row():
    tiles = [np.full((2, 3), v, np.float32) for v in (1.0, 2.0, 3.0)]
    out = tile_images(tiles, ncols=2, gap=(1, 2), fill=0.0)
    assert out.dtype == np.float32 and out.shape == (2 * 2 + 1, 2 * 3 + 2)
    expected = np.zeros((5, 8), np.float32)
    expected[0:2, 0:3], expected[0:2, 5:8], expected[3:5, 0:3] = 1.0, 2.0, 3.0
    np.testing.assert_array_equal(out, expected)
    assert tile_images(tiles[:1], ncols=1, gap=4).shape == (2, 3)
    with pytest.raises(ConfigError, match="one shape"):
        tile_images([np.zeros((2, 2)), np.zeros((3, 3))], ncols=2)
    with pytest.raises(ConfigError, match="at least one"):
        tile_images([], ncols=2)


def test_fast_card_looks_like_the_figure(setup):
    """Two routes to one card agree: the gallery's (numpy pixels, Pillow glyphs) and matplotlib's full draw."""
    ex, images, labels = setup["examples"], setup["images"], setup["labels"]
    oip = setup["c2"].maps[0]
    layout = card_layout(oip, ex, images, labels)
    cards = [MapCard(layout, dpi=50, blit=blit, limits=(-3.0, 3.0), class_names=["a", "b", "c"])
             for blit in (True, False)]
    for card in cards:
        card.paint(oip, ex, images, ["a", "b", "c"], (3, 3), labels, "c2")
    fast, full = (card.pixels()[..., :3].astype(int) for card in cards)
    assert fast.shape == full.shape
    assert np.abs(fast - full).mean() < 8  # text and anti-aliasing differ a little, nothing else
    assert (np.abs(fast - full).max(-1) > 64).mean() < 0.06
    x0, y0, x1, y1 = (int(round(v)) for v in cards[0]._box(cards[0].ax_oip))
    inner = (slice(y0 + 2, y1 - 2), slice(x0 + 2, x1 - 2))  # the OIP: the same pixels inside its frame
    assert np.abs(fast[inner] - full[inner]).max() <= 2


def test_fast_card_of_a_silent_map(setup):
    oip = setup["c1"].maps[SILENT_MAP]
    card = MapCard(card_layout(oip), dpi=50, blit=True)
    card.paint(oip)
    pixels = card.pixels()
    x0, y0, x1, y1 = (int(round(v)) for v in card._box(card.ax_oip))
    panel = pixels[y0 + 2:y1 - 2, x0 + 2:x1 - 2, :3].astype(int)
    assert np.abs(panel - panel.mean(axis=(0, 1))).max(-1).mean() < 40  # grey hatching, not the viridis image
    assert (np.abs(panel[..., 0] - panel[..., 2]) < 30).mean() > 0.9


def test_quality_caption(setup):
    """The quality numbers in short: two decimals, n/a where undefined (NaN), a None number left out."""
    from oipscope.figures.captions import quality_text

    oip = setup["c2"].maps[0]
    assert quality_text(dataclasses.replace(oip, jitter_robustness=0.6312, hf_share=0.3419)) == \
        "jitter 0.63 · hf 0.34"
    assert quality_text(dataclasses.replace(oip, jitter_robustness=float("nan"), hf_share=0.0)) == \
        "jitter n/a · hf 0.00"
    assert quality_text(dataclasses.replace(oip, jitter_robustness=None, hf_share=0.5)) == "hf 0.50"
    assert quality_text(dataclasses.replace(oip, jitter_robustness=None, hf_share=None)) == ""


@pytest.mark.slow
@pytest.mark.parametrize("rgb", [False, True])
def test_map_card_shows_quality_numbers(setup, rgb):
    """The card's text box has a quality line, inside the card and clear of the other texts (grey and RGB,
    with the longest lines there are); an OIP of an older result (None) renders without the line."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    ex, images, labels = setup["examples"], setup["images"], setup["labels"]
    base = setup["c2"].maps[0]
    if rgb:
        base = dataclasses.replace(base, image=np.repeat(base.image, 3, axis=-1),
                                   snapshots=np.repeat(base.snapshots, 3, axis=-1))
    oip = dataclasses.replace(base, jitter_robustness=0.6312, hf_share=0.3419, superstimulus_ratio=float("nan"))
    old = dataclasses.replace(oip, jitter_robustness=None, hf_share=None)
    layout = card_layout(oip, ex, images, labels)
    assert card_layout(old, ex, images, labels) == layout  # one card for maps with and without the numbers
    card = MapCard(layout, dpi=80, class_names=["zero", "one", "two"])
    card.paint(oip, ex, images, ["zero", "one", "two"], (3, 3), labels, "c2")
    lines = [t.get_text() for t in card.info if t.get_text()]
    assert "quality: jitter 0.63 · hf 0.34" in lines
    assert lines[-1].startswith("evoked class:")  # all seven lines in use
    renderer = FigureCanvasAgg(card.fig).get_renderer()
    boxes = [t.get_window_extent(renderer) for t in card.info if t.get_text()]
    width, height = card.fig.bbox.width, card.fig.bbox.height
    assert all(0 <= b.x0 and b.x1 <= width and 0 <= b.y0 and b.y1 <= height for b in boxes)
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:])
    others = [ax.get_tightbbox(renderer) for ax in card.fig.axes if ax.get_visible()]  # RGB cards hide the bar
    others += [t.get_window_extent(renderer) for t in card.fig.texts if t.get_text() and t not in card.info]
    assert not any(b.overlaps(o) for b in boxes for o in others)

    card.paint(old, ex, images, ["zero", "one", "two"], (3, 3), labels, "c2")
    assert not any("quality" in t.get_text() for t in card.info)
    card.fig.savefig(os.devnull, format="png")

    fast = MapCard(layout, dpi=50, blit=True, class_names=["zero", "one", "two"])  # the gallery's card
    pixels = []
    for each in (oip, old):
        fast.paint(each, ex, images, ["zero", "one", "two"], (3, 3), labels, "c2")
        pixels.append(fast.pixels()[..., :3].astype(int))
    changed = np.nonzero(np.abs(pixels[0] - pixels[1]).max(-1) > 64)
    assert changed[0].size  # the line is drawn, in the text box right of the class bars
    assert changed[1].min() >= fast._box(fast.ax_prob)[2]


def test_colorize_is_matplotlibs_colormap():
    """colorize's table look-up gives matplotlib's colours: Normalize(clip=True), then the colormap."""
    import matplotlib
    from matplotlib.colors import Normalize

    from oipscope.figures.tiles import CMAP, colorize, to_uint8

    rng = np.random.default_rng(1)
    image = (rng.normal(size=(30, 40)) * 3).astype(np.float32)
    image[0, :5] = [np.nan, np.inf, -np.inf, -1.0, 1.0]  # non-finite pixels grey; -1 and 1 exact limits
    out = colorize(image, -1.0, 1.0)
    expected = matplotlib.colormaps[CMAP](Normalize(-1.0, 1.0, clip=True)(np.nan_to_num(image)))[..., :3]
    finite = np.isfinite(image)
    np.testing.assert_array_equal(out[finite], expected[finite].astype(np.float32))
    np.testing.assert_array_equal(out[~finite], np.float32(0.6))
    assert out.dtype == np.float32
    np.testing.assert_array_equal(to_uint8(np.array([0.0, 0.5, 1.0, 2.0])), [0, 128, 255, 255])


def test_many_activation_curves_are_one_collection(setup):
    """Beyond 32 curves (no legend) the curves and their convergence dots are collections, not lines."""
    from matplotlib.collections import LineCollection, PathCollection

    base = setup["c2"].maps[0]
    oips = [dataclasses.replace(base, map_index=m) for m in range(40)]
    fig = plot.activation_curves(oips)
    ax = fig.axes[0]
    (lines,) = [c for c in ax.collections if isinstance(c, LineCollection)]
    assert len(lines.get_segments()) == 40 and not ax.lines
    assert ax.get_legend() is None
    dots = [c for c in ax.collections if isinstance(c, PathCollection)]
    assert len(dots) == (1 if 0 <= int(base.converged_step) < len(base.activation_history) else 0)
    lo, hi = ax.get_ylim()
    assert lo <= float(np.min(base.activation_history)) and hi >= float(np.max(base.activation_history))
    fig.savefig(os.devnull, format="png")
