"""Notebook figures of OIPs, their evolution, activation curves, activations and dataset examples.

Every function builds and returns a new :class:`matplotlib.figure.Figure`
(not registered with pyplot, so nothing piles up in pyplot's figure list and
no backend is chosen here): show it in a notebook, or save it with
``fig.savefig("x.png")``. Single-channel images and maps use one colormap,
``viridis``, throughout. OIPs are shown in pixel units (decoded with their
result's input encoding) with a per-tile robust contrast by default (the
``ROBUST`` and ``100 - ROBUST`` percentiles of each tile), so a few extreme
pixels do not flatten a tile; ``contrast="shared"`` puts every tile on one scale
with a colorbar. Silent or non-finite OIPs are drawn as grey hatched panels
labelled with their status, never as blank squares.

The pieces live in their own modules and are re-exported here:
:mod:`oipscope.figures.tiles` (colours, contrast, tiling), :mod:`oipscope.figures.card` (the
map card), :mod:`oipscope.figures.patterns` (:func:`activation_grid`).
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from matplotlib.cm import ScalarMappable
from matplotlib.collections import LineCollection
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from .captions import captioned_snapshots, example_title, firing_note, map_label
from .card import MapCard, card_layout
from ..errors import ConfigError
from .patterns import activation_grid
from .parts import (HATCH_EDGE, HATCH_FACE, MARK_COLOUR, NotebookFigure, bare, colorbar, dataset_item,
                           map_grid, unit_box)
from ..search.status import Status
from .crops import crops_shown, example_crop
from .tiles import (CMAP, CONTRASTS, PIXEL_LIMITS, ROBUST, check_contrast, colorize, display_image, display_limits,
                    is_rgb, pixel_images, rgb_limits, scale_caption)

__all__ = [
    "CMAP",
    "NotebookFigure",
    "oip_grid",
    "evolution",
    "activation_curves",
    "activation_grid",
    "examples_figure",
    "map_card",
    "display_image",
    "display_limits",
    "colorize",
    "CONTRASTS",
    "ROBUST",
    "pixel_images",
]

_LINE = "#31688e"


# ---- helpers -------------------------------------------------------------------------


def _oips_of(source) -> list:
    """The MapOips of an OipResult, a single MapOip or a sequence of MapOips."""
    if hasattr(source, "maps") and not hasattr(source, "map_index"):
        return list(source.maps)
    if hasattr(source, "map_index"):
        return [source]
    return list(source)


def _select(oips: list, maps) -> list:
    """The OIPs of the selected map indices, in their original order."""
    if maps is None:
        return oips
    available = sorted({int(m.map_index) for m in oips})
    if isinstance(maps, str):
        from ..search.starts import parse_maps

        wanted = set(parse_maps(maps, (max(available) + 1) if available else 1))
    elif isinstance(maps, (int, np.integer)) and not isinstance(maps, bool):
        wanted = {int(maps)}
    else:
        wanted = {int(m) for m in maps}
    missing = sorted(wanted.difference(available))
    if missing:
        shown = ", ".join(map(str, available[:20])) + (" ..." if len(available) > 20 else "")
        raise ConfigError(f"no OIP for map(s) {missing}; the result has maps {shown}")
    return [m for m in oips if int(m.map_index) in wanted]


def _marked_panel(ax, text: str, aspect: float = 1.0, fontsize: float = 8) -> None:
    """A grey hatched panel with ``text`` in the middle (silent/nonfinite OIPs)."""
    bare(ax)
    ax.set_facecolor(HATCH_FACE)
    ax.add_patch(Rectangle((0, 0), 1, 1, transform=ax.transAxes, facecolor=HATCH_FACE,
                           edgecolor=HATCH_EDGE, hatch="///", linewidth=0, zorder=0))
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", fontsize=fontsize,
            fontweight="bold", color="#333333", zorder=2,
            bbox={"boxstyle": "round,pad=0.25", "facecolor": "white", "edgecolor": "none", "alpha": 0.85})
    ax.set_box_aspect(aspect)
    for spine in ax.spines.values():
        spine.set_edgecolor(HATCH_EDGE)
    ax.set_gid(f"oip-{text}")


def _show(ax, image, vmin=None, vmax=None, rgb_limits=None):
    """imshow an image (viridis for one channel, RGB scaled from ``rgb_limits``) without ticks; returns the
    AxesImage."""
    a, rgb = display_image(image, rgb_limits)
    im = ax.imshow(a, cmap=None if rgb else CMAP, vmin=None if rgb else vmin, vmax=None if rgb else vmax,
                   interpolation="nearest")
    bare(ax)
    return im


def _draw_oip(ax, oip, vmin, vmax, fontsize: float = 8, image=None, rgb_limits=None):
    """The OIP image (or ``image``, e.g. in pixel units), or a hatched panel for silent/nonfinite
    maps; returns the AxesImage or None."""
    if Status(oip.status).marked:
        h, w = np.asarray(oip.image).shape[:2]
        _marked_panel(ax, oip.status, h / w, fontsize)
        return None
    return _show(ax, oip.image if image is None else image, vmin, vmax, rgb_limits)


def _grid_figure(nrows: int, ncols: int, panel: float, title_h: float, right: float, top: float,
                 left: float = 0.15, bottom: float = 0.15, gap: float = 0.12):
    """A figure with a fixed-size grid of panels (inches), fast to lay out for many panels."""
    width = left + ncols * panel + (ncols - 1) * gap + right
    height = top + nrows * (panel + title_h) + (nrows - 1) * gap + bottom
    fig = NotebookFigure(figsize=(width, height))
    axes = []
    for r in range(nrows):
        row = []
        for c in range(ncols):
            x0 = left + c * (panel + gap)
            y0 = height - top - (r + 1) * (panel + title_h) - r * gap
            row.append(fig.add_axes((x0 / width, y0 / height, panel / width, panel / height)))
        axes.append(row)
    return fig, axes, width, height


def _frames(oip) -> list[tuple[np.ndarray, str]]:
    """(image, "step s\\nactivation x.xx") per snapshot."""
    return [(f, f"{a}\n{b}") for f, a, b in captioned_snapshots(oip)]


# ---- public figures ------------------------------------------------------------------


def oip_grid(result, maps=None, ncols: int | None = None, *, title: str | None = None,
             contrast: str = "tile") -> Figure:
    """The OIPs of a layer in a grid, each titled "map i / act x.xx / status".

    Args:
        result: an :class:`~oipscope.search.results.OipResult` (or a list of MapOips).
        maps: map indices to show ("0-7,12", an int or a list); default all.
        ncols: panels per row; default about the square root of the count.
        title: figure title; default "model · layer".
        contrast: ``"tile"`` (default): each OIP on its own robust scale;
            ``"shared"``: all on one scale, shown in a colorbar.

    OIPs are shown in pixel units (``result.encoding.decode``); RGB OIPs in pixel
    units are not stretched (0–255, :func:`~oipscope.figures.tiles.rgb_limits`), and
    the title says which scale their colours are on. Silent and non-finite maps are
    grey hatched panels with their status written on them.
    """
    check_contrast(contrast)
    encoding = getattr(result, "encoding", None)
    oips = _select(_oips_of(result), maps)
    if not oips:
        raise ConfigError("no OIPs to show: the result is empty")
    n = len(oips)
    ncols = int(ncols) if ncols else min(n, max(1, math.ceil(math.sqrt(n * 1.4))))
    if ncols < 1:
        raise ConfigError(f"ncols must be >= 1, got {ncols}")
    nrows = math.ceil(n / ncols)
    pixels = pixel_images([m.image for m in oips], encoding)
    shown = [p for p, m in zip(pixels, oips) if not Status(m.status).marked]
    vmin, vmax = display_limits(shown)
    shared = contrast == "shared"
    rgb = rgb_limits(encoding, (vmin, vmax) if shared else None)
    fig, axes, width, height = _grid_figure(nrows, ncols, panel=1.5, title_h=0.22, right=0.95 if shared else 0.2,
                                            top=0.45)
    im = None
    for k, ax in enumerate(a for row in axes for a in row):
        if k >= n:
            fig.delaxes(ax)
            continue
        oip = oips[k]
        limits = (vmin, vmax) if shared else display_limits([pixels[k]], robust=ROBUST)
        img = _draw_oip(ax, oip, *limits, image=pixels[k], rgb_limits=rgb)
        im = im or img
        ax.set_title(f"{map_label(oip)} / act {float(oip.activation):.2f} / {oip.status}", fontsize=6.5, pad=2)
    if title is None and hasattr(result, "layer_name"):
        title = f"{result.model_name} · {result.layer_name}"
    colour = is_rgb(pixels[0])
    if colour:  # what the colours of an RGB picture are on
        title = f"{title} ({scale_caption(rgb)})" if title else scale_caption(rgb)
    if title:
        fig.suptitle(title, fontsize=10, y=1 - 0.12 / height, va="top")
    if im is not None and shared and not colour:
        unit = encoding.display_unit if encoding is not None else "standardized value"
        colorbar(fig, im, ((width - 0.75) / width, 0.15 / height + 0.05 * (1 - 0.6 / height),
                           0.12 / width, 0.9 * (1 - 0.6 / height)), unit)
    return fig


def _evolution_into(axes: Sequence, oip, fontsize: float = 7, encoding=None):
    frames = _frames(oip)
    pixels = pixel_images([f for f, _ in frames], encoding)
    vmin, vmax = display_limits(pixels, robust=ROBUST)
    im = None
    for ax, frame, (_, title) in zip(axes, pixels, frames):
        im = _show(ax, frame, vmin, vmax, rgb_limits(encoding))
        ax.set_title(title, fontsize=fontsize, pad=2)
    return im


def evolution(map_oip, encoding=None) -> Figure:
    """The snapshots of one OIP's ascent in a strip, titled with step and activation.

    The activation (the map's mean activation, which the ascent maximizes) in
    each title is the one reached after that step. All snapshots share one
    robust colour scale, in pixel units when the result's ``encoding`` is given.
    """
    n = len(_frames(map_oip))
    fig, axes, width, height = _grid_figure(1, n, panel=1.5, title_h=0.35, right=0.95, top=0.4)
    im = _evolution_into(axes[0], map_oip, encoding=encoding)
    fig.suptitle(f"{map_label(map_oip)}: evolution ({map_oip.status}, start {map_oip.start})",
                 fontsize=9, y=1 - 0.08 / height, va="top")
    unit = encoding.display_unit if encoding is not None else "standardized value"
    colorbar(fig, im, ((width - 0.75) / width, 0.15 / height, 0.12 / width, 1.5 / height), unit)
    return fig


def _activation_into(ax, oips: list, legend: bool = True, fontsize: float = 7) -> None:
    n = len(oips)
    cmap = ScalarMappable(norm=Normalize(0, max(n - 1, 1)), cmap=CMAP)
    legend = legend and 1 < n <= 32
    curves, dots = [], []
    for k, oip in enumerate(oips):
        hist = np.asarray(oip.activation_history, dtype=np.float64).reshape(-1)
        color = cmap.to_rgba(k) if n > 1 else _LINE
        style = ":" if Status(oip.status).marked else "-"
        every, c = int(getattr(oip, "history_every", 1)), int(oip.converged_step)
        steps = np.arange(hist.size) * every  # a long ascent keeps every ``every``-th step's activation
        dot = (c, hist[c // every]) if 0 <= c // every < hist.size else None
        if legend or n == 1:  # a line per curve: the legend's handles
            ax.plot(steps, hist, style, color=color, lw=1.0, label=map_label(oip))
            if dot is not None:
                ax.plot(*([v] for v in dot), "o", color=color, ms=3)
        else:  # many curves: one collection each for lines and dots, drawn many times faster
            curves.append((np.column_stack([steps, hist]), color, style))
            if dot is not None:
                dots.append((dot, color))
    if curves:
        lines = LineCollection([xy for xy, _, _ in curves], colors=[c for _, c, _ in curves], linewidths=1.0,
                               linestyles=["dotted" if s == ":" else "solid" for _, _, s in curves], zorder=2)
        ax.add_collection(lines, autolim=True)
        if dots:  # markersize 3 pt with an edge of 1 pt, as ax.plot draws them
            ax.scatter([d[0] for d, _ in dots], [d[1] for d, _ in dots], s=16, c=[c for _, c in dots],
                       linewidths=0, zorder=2.01)
        ax.autoscale_view()
    ax.set_xlabel("step", fontsize=fontsize)
    ax.set_ylabel("mean activation", fontsize=fontsize)
    ax.tick_params(labelsize=fontsize - 1)
    ax.grid(alpha=0.3, lw=0.5)
    if legend and 1 < n <= 32:
        ax.legend(fontsize=fontsize - 1, ncol=math.ceil(n / 16), loc="upper left", bbox_to_anchor=(1.01, 1.0),
                  borderaxespad=0, frameon=False)


def activation_curves(result, maps=None, *, title: str | None = None) -> Figure:
    """The map's mean activation before each ascent step, one curve per OIP.

    Args:
        result: an OipResult, a list of MapOips or one MapOip.
        maps: map indices to show; default all.

    Up to 32 curves get a legend by map index; more are coloured by map index
    with a colorbar. A dot marks the convergence step; silent maps are dotted.
    """
    oips = _select(_oips_of(result), maps)
    if not oips:
        raise ConfigError("no OIPs to show: the result is empty")
    n = len(oips)
    fig = NotebookFigure(figsize=(7.5 if 1 < n <= 32 else 6.4, 4.0))
    right = 0.97
    if 1 < n <= 32:
        right = 0.78 if n <= 16 else 0.68
    elif n > 32:
        right = 0.84
    ax = fig.add_axes((0.11, 0.12, right - 0.11, 0.78))
    _activation_into(ax, oips)
    if n > 32:
        idx = [int(m.map_index) for m in oips]
        mappable = ScalarMappable(norm=Normalize(min(idx), max(idx)), cmap=CMAP)
        colorbar(fig, mappable, (0.87, 0.12, 0.025, 0.78), "map index")
    if title is None:
        title = f"{result.layer_name}: activation curves" if hasattr(result, "layer_name") else (
            f"{map_label(oips[0])}: activation curve" if n == 1 else "activation curves")
    ax.set_title(title, fontsize=9)
    return fig


def _examples_into(axes: Sequence, examples, map_index: int, images, map_shape, labels, class_names,
                   fontsize: float = 7, names=None) -> None:
    idx = examples.top_indices[map_index]
    vals = examples.top_values[map_index]
    pos = examples.top_positions[map_index]
    grid = map_grid(examples, map_shape)
    field = getattr(examples, "receptive_field", None)
    for j, ax in enumerate(axes):
        if j >= len(idx):
            ax.set_visible(False)
            continue
        if float(vals[j]) == 0:  # the map is off on this image: not an example of what drives it
            bare(ax)
            ax.set_facecolor("#f0f0f0")
            ax.text(0.5, 0.5, "off", ha="center", va="center", color="#888888", fontsize=fontsize,
                    transform=ax.transAxes)
            continue
        image = np.asarray(dataset_item(images, idx[j], "image"))
        view = example_crop(image, field, pos[j])
        _show(ax, image if view is None else view[0], rgb_limits=PIXEL_LIMITS)
        ax.set_title(example_title(names, idx[j], vals[j], labels, class_names), fontsize=fontsize, pad=2)
        box = unit_box(grid, image.shape[:2], pos[j], vals[j]) if view is None else view[1]
        if box is not None:
            x, y, w, h = box
            ax.add_patch(Rectangle((x, y), w, h, fill=False, edgecolor=MARK_COLOUR, linewidth=1.5))


def examples_figure(examples, map_index: int, images, *, map_shape=None, labels=None,
                    class_names: Sequence[str] | None = None, k: int | None = None,
                    ncols: int | None = None, names=None) -> Figure:
    """The dataset images that drive a map hardest, strongest unit marked.

    Args:
        examples: the layer's :class:`~oipscope.analysis.examples.DatasetExamples`
            (from :func:`oipscope.analysis.examples.dataset_examples`).
        map_index: the map.
        images: the raw dataset images the examples were computed on (N, H, W[, C]),
            or a mapping from dataset index to image.
        map_shape: (rows, cols) of the map grid (or the layer's output shape), to
            place the marker; default ``examples.map_shape`` if present. Without
            it no marker is drawn.
        labels, class_names: optional labels (array or mapping) and class names
            for the titles.
        k: show only the best k; default all kept.
        ncols: panels per row; default all in one row (up to 10).
        names: image names (e.g. ``image_set.item_name``, or an array/mapping by index);
            default ``#index``.

    Each panel is titled "image name (or #index) / mean activation". Where the
    examples know the layer's receptive field (``examples.receptive_field``) and it
    covers less than 70 % of the image's side, each image is cropped to the field of
    its strongest unit (:mod:`oipscope.figures.crops`: centred on the unit, padded with
    the image's mean colour past its border, at least 32 px, resized to the image's
    size; a field smaller than the crop is outlined in red). Otherwise the whole image
    is shown and the red square is the strongest unit of the map, scaled from the map
    grid to the image by (H / map rows, W / map cols). Images where the map does not
    fire get no square. RGB images are shown in pixel units 0–255.
    """
    n_maps = examples.top_indices.shape[0]
    if not 0 <= int(map_index) < n_maps:
        raise ConfigError(f"map {map_index} out of range: the examples have {n_maps} maps")
    total = examples.top_indices.shape[1]
    k = total if k is None else max(1, min(int(k), total))
    ncols = int(ncols) if ncols else min(k, 10)
    nrows = math.ceil(k / ncols)
    title_h = 0.38 if labels is not None else 0.25
    fig, axes, _, height = _grid_figure(nrows, ncols, panel=1.2, title_h=title_h, right=0.15, top=0.4)
    flat = [a for row in axes for a in row]
    _examples_into(flat[:k], examples, int(map_index), images, map_shape, labels, class_names, names=names)
    for ax in flat[k:]:
        fig.delaxes(ax)
    note = firing_note(examples, int(map_index), examples.top_values[int(map_index), :k])
    note = f" ({note})" if note else ""
    first = np.asarray(dataset_item(images, examples.top_indices[int(map_index), 0], "image"))
    if crops_shown(getattr(examples, "receptive_field", None), first.shape[:2]):
        note += ", cropped to the strongest unit's receptive field"
    fig.suptitle(f"{examples.layer_name} · map {int(map_index)}: top {k} of {examples.n_images} images{note}",
                 fontsize=9, y=1 - 0.08 / height, va="top")
    return fig


def map_card(map_oip, examples=None, images=None, class_names: Sequence[str] | None = None, *,
             map_shape=None, labels=None, layer_name: str | None = None, max_examples: int = 9,
             dpi: float | None = None, encoding=None, names=None) -> Figure:
    """Everything about one map in one figure (a :class:`~oipscope.figures.card.MapCard`).

    Top row: the OIP (with colorbar; a hatched panel if silent), its activation
    curve, the class probabilities the full model gives the OIP (the evoked
    class in green), and a text box with status, activation, start and the
    superstimulus ratio (OIP activation ÷ the best dataset image's). Middle
    row: the evolution snapshots (on the OIP's colour scale). Bottom row (with
    ``examples`` and ``images``): the top dataset images, strongest unit marked
    as in :func:`examples_figure`.

    Args:
        map_oip: the MapOip.
        examples: the layer's DatasetExamples, optional.
        images: the dataset images the examples index (array or mapping), optional.
        class_names: names for the probability bars and labels (default "0", "1", ...).
        map_shape: the map grid (rows, cols) for the example markers.
        labels: dataset labels (array or mapping) for the example titles.
        layer_name: shown in the title.
        max_examples: dataset examples shown at most.
        dpi: figure dpi (default matplotlib's).
        encoding: the result's input encoding: the OIP is shown in pixel units.
        names: names of the dataset images (file names; array, mapping or
            callable by index); default ``#index``.
    """
    layout = card_layout(map_oip, examples, images, labels, max_examples)
    card = MapCard(layout, dpi=dpi, class_names=class_names,
                   unit=encoding.display_unit if encoding is not None else "standardized value", encoding=encoding)
    return card.paint(map_oip, examples, images, class_names, map_shape, labels, layer_name, encoding, names)
