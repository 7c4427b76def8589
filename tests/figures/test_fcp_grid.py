"""`plot.activation_grid` as part IV of the series shows activation patterns (FCPs), and `activations --out`.

Each image's maps in a wrapped grid beside its input, blocks of images arranged so the
figure stays readable, one mosaic image and one colorbar.
"""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from oipscope.figures import plot
from oipscope.cli.commands import app
from oipscope.model.cnn import default_model_path
from oipscope.errors import ConfigError

runner = CliRunner()


def _grid(n: int, n_maps: int, size: int = 11, images: bool = True, seed: int = 0, **kw):
    rng = np.random.default_rng(seed)
    acts = rng.random((n, size, size, n_maps), dtype=np.float32)
    pixels = rng.random((n, 28, 28)) if images else None
    titles = [f"test #{i} 4" for i in range(n)] if images else None
    return plot.activation_grid(acts, pixels, titles, title="Conv2D_2 activations", **kw), acts, pixels


def _aspect(fig) -> float:
    width, height = fig.get_size_inches()
    return width / height


def _mosaic_axes(fig):
    return [ax for ax in fig.axes if ax.images]


def _bands(occupied: np.ndarray) -> list[tuple[int, int]]:
    """(start, stop) of each run of True."""
    edges = np.flatnonzero(np.diff(np.r_[0, occupied.astype(np.int8), 0]))
    return list(zip(edges[::2], edges[1::2]))


@pytest.mark.parametrize("n, n_maps", [(4, 64), (1, 64), (6, 128), (1, 128), (3, 6), (1, 1)])
def test_figure_is_neither_a_strip_nor_a_tower(n, n_maps):
    fig, _, _ = _grid(n, n_maps)
    assert 0.5 <= _aspect(fig) <= 2.2, fig.get_size_inches()
    width, height = fig.get_size_inches()
    assert width <= 17 and height <= 17


def test_64_maps_of_4_images_in_8x8_grids_and_2x2_blocks():
    fig, _, _ = _grid(4, 64)
    (ax,) = _mosaic_axes(fig)
    labels = [t.get_text() for t in ax.texts]
    assert [labels.count(str(first)) for first in range(0, 64, 8)] == [4] * 8  # first map of each row, per image
    assert {f"test #{i} 4" for i in range(4)} <= set(labels)  # one caption per image
    mosaic = ax.images[0].get_array()
    assert 1.5 <= mosaic.shape[1] / mosaic.shape[0] <= 2.2  # two blocks wide, two high


def test_one_mosaic_image_and_one_colorbar():
    fig, _, _ = _grid(6, 128)
    (ax,) = _mosaic_axes(fig)
    assert len(ax.images) == 1
    assert len(fig.axes) == 2  # the mosaic and the colorbar
    assert [a.get_ylabel() for a in fig.axes if a is not ax] == ["activation"]


def test_input_is_beside_its_maps_at_the_grids_height():
    fig, acts, pixels = _grid(1, 64, images=True)
    mosaic = np.asarray(_mosaic_axes(fig)[0].images[0].get_array())
    drawn = ~np.isclose(mosaic, 1.0).all(axis=-1)  # white is background only: viridis has no white
    columns = _bands(drawn.any(axis=0))
    assert len(columns) == 1 + 8  # the input, then 8 columns of maps
    (left, right), (grid_left, _), (_, grid_right) = columns[0], columns[1], columns[-1]
    assert right < grid_left  # left of its maps
    rows = _bands(drawn[:, left:right].any(axis=1))
    map_rows = _bands(drawn[:, grid_left:grid_right].any(axis=1))
    assert len(rows) == 1 and len(map_rows) == 8
    (top, bottom), grid_top, grid_bottom = rows[0], map_rows[0][0], map_rows[-1][1]
    assert abs((top + bottom) - (grid_top + grid_bottom)) <= 2  # vertically centred on its grid
    assert 0.9 <= (bottom - top) / (grid_bottom - grid_top) <= 1.1  # at the grid's height
    zoom = (bottom - top) // 28
    assert (bottom - top, right - left) == (28 * zoom, 28 * zoom)
    shown = mosaic[top:bottom:zoom, left:right:zoom]
    np.testing.assert_allclose(shown, plot.colorize(pixels[0], float(pixels[0].min()), float(pixels[0].max())))
    # and the first map, zoomed the same way in every panel, is at the grid's top left
    z = (map_rows[0][1] - map_rows[0][0]) // 11
    first = mosaic[grid_top:grid_top + 11 * z:z, grid_left:grid_left + 11 * z:z]
    np.testing.assert_allclose(first, plot.colorize(acts[0, ..., 0], 0.0, float(acts.max())), atol=1e-6)


def test_a_few_maps_are_still_readable():
    fig, _, _ = _grid(1, 2)
    width, height = fig.get_size_inches()
    assert height >= 1.2 and width >= 2.5
    mosaic = _mosaic_axes(fig)[0].images[0].get_array()
    assert mosaic.shape[0] >= 80  # the input is at least ~0.8 inch high at 100 mosaic pixels per inch


def test_selected_maps_are_labelled_one_by_one():
    fig, _, _ = _grid(2, 64, maps=[5, 9, 33])
    labels = [t.get_text() for t in _mosaic_axes(fig)[0].texts]
    assert [labels.count(m) for m in ("5", "9", "33")] == [2, 2, 2]


def test_checks_are_kept():
    acts = np.zeros((2, 3, 3, 4), np.float32)
    with pytest.raises(ConfigError, match="out of range"):
        plot.activation_grid(acts, maps=[4])
    with pytest.raises(ConfigError, match="titles"):
        plot.activation_grid(acts, titles=["a"])
    with pytest.raises(ConfigError, match="one image per row"):
        plot.activation_grid(acts, np.zeros((3, 8, 8)))
    with pytest.raises(ConfigError, match=r"\(N, h, w, n_maps\)"):
        plot.activation_grid(np.zeros((2, 3, 3, 4, 1)))


# --- the CLI --------------------------------------------------------------------------


@pytest.mark.skipif(not default_model_path().is_file(), reason=f"embedded model {default_model_path()} not built yet")
def test_cli_out_without_suffix_writes_png_and_says_so(tmp_path):
    result = runner.invoke(app, ["activations", "--layer", "Conv2D_2", "--digit", "4", "--count", "4",
                                 "--out", str(tmp_path / "act4")])
    assert result.exit_code == 0, result.output
    written = tmp_path / "act4.png"
    assert written.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not (tmp_path / "act4").exists()
    assert f"wrote {written}" in result.output.splitlines()


def test_cli_unknown_suffix_fails_before_the_work(tmp_path):
    result = runner.invoke(app, ["activations", "--layer", "Conv2D_2", "--digit", "4",
                                 "--out", str(tmp_path / "act4.v2")])
    assert isinstance(result.exception, ConfigError)
    assert "'.v2'" in str(result.exception) and ".png" in str(result.exception)
    assert list(tmp_path.iterdir()) == []
