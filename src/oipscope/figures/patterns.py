"""Activation patterns (FCPs) of several images: each image's feature maps in a grid beside it.

:func:`activation_grid` draws everything as one mosaic image (one ``imshow``),
so hundreds of maps for several images draw in well under a second;
:func:`fcp_layout` is the pure arithmetic of where each part of the mosaic goes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from ..errors import ConfigError
from .parts import NotebookFigure, colorbar
from .tiles import CMAP, colorize, display_limits, tile_images

__all__ = ["activation_grid", "FcpLayout", "fcp_layout"]

_PX_PER_INCH = 100.0  # mosaic pixels per inch: one screen pixel per mosaic pixel at dpi 100
_MAX_WIDTH = 16.0  # inches; wider mosaics are drawn at a finer scale
_ASPECT = 1.5  # preferred width / height of the whole figure
_MAP_GAP = 2  # px between maps
_BLOCK_GAP = 36  # px between the blocks of two images
_CAPTION = 18  # px band above a block for its caption
_LABEL_PT = 6.5  # map-index labels
_MIN_INPUT = 84  # px: the input is at least this tall, however small its grid
_MARGINS = (0.1, 1.0, 0.1, 0.1)  # inches: left, right (colorbar), top, bottom
_TITLE = 0.3  # inches above the mosaic for the figure title


@dataclass(frozen=True, eq=False)
class FcpLayout:
    """Where an :func:`activation_grid` mosaic puts each part (pixels, (row, col) of top-left corners).

    Each image is a block: its caption above, its input on the left, then its maps
    in a ``grid`` of rows × columns, map ``j`` at ``panels[b, j]``. The blocks sit in
    a ``blocks`` grid of their own, chosen so the figure is not much wider than high.
    """

    shape: tuple[int, int]  # mosaic (height, width)
    grid: tuple[int, int]  # map rows, map columns per image
    blocks: tuple[int, int]  # block rows, block columns
    zoom: int  # each map pixel is zoom × zoom mosaic pixels
    map_size: tuple[int, int]  # a zoomed map (height, width)
    map_gap: int  # px between neighbouring maps (rows also leave label_band)
    panels: np.ndarray  # (n_images, n_maps, 2)
    inputs: tuple[tuple[int, int, int, int], ...]  # (top, left, height, width) of each input
    captions: tuple[tuple[int, int], ...]  # (row, col) of each caption's baseline start
    row_labels: tuple[tuple[int, int, int, int], ...]  # (block, grid row, row, col): right end of a row's label
    label_band: int  # px above each map row for per-map labels (0: labels at the row's left)
    px_per_inch: float

    def figure_size(self, title: bool) -> tuple[float, float]:
        """(width, height) in inches of the figure around the mosaic."""
        left, right, top, bottom = _MARGINS
        h, w = self.shape
        return (left + w / self.px_per_inch + right,
                top + (_TITLE if title else 0.0) + h / self.px_per_inch + bottom)


def _input_size(image_hw: tuple[int, int], height: int) -> tuple[int, int]:
    """The input's shown size: an integer zoom to about ``height`` (or shrunk to it)."""
    ih, iw = image_hw
    scale = max(1, round(height / ih)) if ih <= height else height / ih
    return max(1, round(ih * scale)), max(1, round(iw * scale))


def fcp_layout(n: int, map_hw: tuple[int, int], n_maps: int, image_hw: tuple[int, int] | None,
               captions: bool, label_digits: int, per_map_labels: bool,
               px_per_inch: float = _PX_PER_INCH) -> FcpLayout:
    """The layout of ``n`` images' maps (pure arithmetic, no drawing)."""
    h, w = map_hw
    gcols = math.ceil(math.sqrt(n_maps))
    grows = math.ceil(n_maps / gcols)
    scale = px_per_inch / _PX_PER_INCH
    zoom = max(1, round(min(56.0, max(24.0, 300.0 / gcols)) * scale / max(h, w)))
    mh, mw = h * zoom, w * zoom
    gap = max(1, round(_MAP_GAP * scale))
    band = round(11 * scale) if per_map_labels else 0
    grid_h = grows * (mh + gap + band) - gap
    grid_w = gcols * (mw + gap) - gap
    gutter = (round((label_digits * 0.62 * _LABEL_PT / 72 * px_per_inch) + 6 * scale)
              if not per_map_labels else round(8 * scale))
    if image_hw is not None:
        ih, iw = _input_size(image_hw, max(grid_h, round(_MIN_INPUT * scale)))
    else:
        ih, iw, gutter = 0, 0, (gutter if not per_map_labels else 0)
    caption = round(_CAPTION * scale) if captions else 0
    body_h = max(grid_h, ih)
    block_h, block_w = caption + body_h, iw + gutter + grid_w
    bgap = round(_BLOCK_GAP * scale)

    def size(bcols: int) -> tuple[int, int]:
        brows = math.ceil(n / bcols)
        return brows * (block_h + bgap) - bgap, bcols * (block_w + bgap) - bgap

    def aspect(bcols: int) -> float:
        mh_, mw_ = size(bcols)
        left, right, top, bottom = _MARGINS
        return (left + mw_ / px_per_inch + right) / (top + _TITLE + mh_ / px_per_inch + bottom)

    bcols = min(range(1, n + 1), key=lambda c: (abs(math.log(aspect(c) / _ASPECT)), c))
    brows = math.ceil(n / bcols)
    shape = size(bcols)
    panels = np.zeros((n, n_maps, 2), np.int64)
    inputs, caption_at, row_labels = [], [], []
    j = np.arange(n_maps)
    for b in range(n):
        top, left = (b // bcols) * (block_h + bgap), (b % bcols) * (block_w + bgap)
        caption_at.append((top + caption - round(5 * scale), left))
        gtop, gleft = top + caption + (body_h - grid_h) // 2, left + iw + gutter
        panels[b, :, 0] = gtop + (j // gcols) * (mh + gap + band) + band
        panels[b, :, 1] = gleft + (j % gcols) * (mw + gap)
        inputs.append((top + caption + (body_h - ih) // 2, left, ih, iw))
        if not per_map_labels:
            for r in range(grows):
                row_labels.append((b, r, gtop + r * (mh + gap) + mh // 2, gleft - round(3 * scale)))
    return FcpLayout(shape=shape, grid=(grows, gcols), blocks=(brows, bcols), zoom=zoom, map_size=(mh, mw),
                     map_gap=gap, panels=panels, inputs=tuple(inputs), captions=tuple(caption_at),
                     row_labels=tuple(row_labels), label_band=band, px_per_inch=px_per_inch)


def activation_grid(activations, images=None, titles: Sequence[str] | None = None, *, maps=None,
                    title: str | None = None) -> Figure:
    """Activations of several images as feature-map grids, each beside its input image.

    Every image gets a block: its title as caption, the input on the left (at the
    grid's height), and its maps in a wrapped grid of ``ceil(sqrt(n_maps))``
    columns (8 × 8 for 64 maps), read row by row; the number at the left of a
    row is the index of its first map (for a selection of ``maps`` that is not
    a contiguous range, each map is labelled instead). The blocks themselves
    are arranged in a grid so that the figure stays about 1.5 times as wide as
    it is high.

    Args:
        activations: (N, h, w, n_maps) layer outputs (one image: (h, w, n_maps);
            dense layers (N, units) are shown as 1×1 maps).
        images: optional input images (N, H, W[, C]) shown beside their maps.
        titles: optional caption of each image (e.g. its name and class).
        maps: optional map indices to show, in this order; default all.
        title: optional figure title.

    All activations share one colour scale, shown in one colorbar. Everything
    is one mosaic image drawn with a single ``imshow``, so hundreds of maps
    for several images draw in well under a second.

    Example:
        >>> fig = activation_grid(np.random.rand(4, 11, 11, 64), np.random.rand(4, 28, 28))
        >>> fig.savefig("fcp.png")  # doctest: +SKIP
    """
    a = np.asarray(activations, dtype=np.float32)
    if a.ndim == 3:
        a = a[None]
    elif a.ndim == 2:
        a = a[:, None, None, :]
    if a.ndim != 4 or a.shape[0] == 0:
        raise ConfigError(f"activations must be (N, h, w, n_maps), got shape {np.shape(activations)}")
    n, h, w, n_maps = a.shape
    cols = list(range(n_maps)) if maps is None else [int(m) for m in np.atleast_1d(maps)]
    bad = [m for m in cols if not 0 <= m < n_maps]
    if bad:
        raise ConfigError(f"maps {bad} out of range: the activations have {n_maps} maps")
    if not cols:
        raise ConfigError("maps selects no map; give at least one map index")
    if images is not None:
        images = np.asarray(images)
        if images.ndim == 2:
            images = images[None]
        if len(images) != n:
            raise ConfigError(f"{len(images)} images for {n} rows of activations; give one image per row")
    if titles is not None and len(titles) != n:
        raise ConfigError(f"{len(titles)} titles for {n} rows; give one title per image")

    contiguous = cols == list(range(cols[0], cols[0] + len(cols)))
    gcols = math.ceil(math.sqrt(len(cols)))
    digits = len(str(cols[-1 - (len(cols) - 1) % gcols])) if contiguous else 1
    args = (n, (h, w), len(cols), None if images is None else images.shape[1:3], titles is not None,
            digits, not contiguous)
    layout = fcp_layout(*args)
    for _ in range(3):  # very large maps or inputs: more mosaic pixels per inch, to keep the figure on a page
        if layout.figure_size(bool(title))[0] <= _MAX_WIDTH * 1.05:
            break
        layout = fcp_layout(*args, px_per_inch=layout.shape[1] / (_MAX_WIDTH - sum(_MARGINS[:2])))

    vmin, vmax = display_limits([a[..., cols]])
    vmin = min(vmin, 0.0)
    mosaic = _mosaic(layout, a[..., cols], images, vmin, vmax)

    fig_w, fig_h = layout.figure_size(bool(title))
    left, _, _, bottom = _MARGINS
    mosaic_h, mosaic_w = (s / layout.px_per_inch for s in layout.shape)
    fig = NotebookFigure(figsize=(fig_w, fig_h))
    ax = fig.add_axes((left / fig_w, bottom / fig_h, mosaic_w / fig_w, mosaic_h / fig_h))
    ax.imshow(mosaic, interpolation="nearest" if layout.px_per_inch >= _PX_PER_INCH else "antialiased")
    ax.set_axis_off()
    _label(ax, layout, cols, titles)
    scale = ScalarMappable(Normalize(vmin, vmax), CMAP)
    bar_h = min(mosaic_h, 3.5)
    colorbar(fig, scale, ((fig_w - 0.8) / fig_w, (bottom + mosaic_h - bar_h) / fig_h, 0.12 / fig_w, bar_h / fig_h),
             "activation")
    if title:
        fig.suptitle(title, fontsize=9, y=1 - 0.08 / fig_h, va="top")
    return fig


def _mosaic(layout: FcpLayout, acts: np.ndarray, images, vmin: float, vmax: float) -> np.ndarray:
    """The RGB mosaic: per image its input (resized to the layout) and its zoomed maps in a grid."""
    n, h, w, n_maps = acts.shape
    mosaic = np.ones((*layout.shape, 3), np.float32)
    z = layout.zoom
    rgb = colorize(acts.transpose(0, 3, 1, 2).reshape(-1, w), vmin, vmax).reshape(n, n_maps, h, w, 3)
    rgb = rgb.repeat(z, axis=2).repeat(z, axis=3)
    gaps = (layout.map_gap + layout.label_band, layout.map_gap)
    for b in range(n):
        grid = tile_images(rgb[b], layout.grid[1], gaps)
        y, x = layout.panels[b, 0]
        mosaic[y:y + grid.shape[0], x:x + grid.shape[1]] = grid
        if images is not None:
            top, left, ih, iw = layout.inputs[b]
            lo, hi = display_limits([images[b]])
            shown = colorize(images[b], lo, hi)
            rows = (np.arange(ih) * shown.shape[0] // ih)
            columns = (np.arange(iw) * shown.shape[1] // iw)
            mosaic[top:top + ih, left:left + iw] = shown[rows][:, columns]
    return mosaic


def _label(ax, layout: FcpLayout, cols: list[int], titles: Sequence[str] | None) -> None:
    """Map indices (per grid row, or per map for a selection) and the image captions."""
    label = {"fontsize": _LABEL_PT, "color": "#555555", "clip_on": False}
    for _, r, y, x in layout.row_labels:
        ax.text(x, y, str(cols[r * layout.grid[1]]), ha="right", va="center", **label)
    if layout.label_band:
        mw = layout.map_size[1]
        for panels in layout.panels:
            for j, (y, x) in enumerate(panels):
                ax.text(x + mw / 2, y - 1, str(cols[j]), ha="center", va="bottom", **label)
    if titles is not None:
        for (y, x), text in zip(layout.captions, titles):
            ax.text(x, y, str(text), ha="left", va="baseline", fontsize=8, clip_on=False)
