"""The map card: everything about one map in one figure, laid out once and repainted per map.

Top row: the OIP (with its colour bar; a hatched panel if silent), its
activation curve, the class probabilities the full model gives the OIP, and a
text box with status, activation, start, superstimulus ratio, quality numbers
(jitter robustness and high-frequency share, if measured) and evoked class. Middle row:
the evolution snapshots on the OIP's colour scale. Bottom row (with dataset
examples): the top dataset images, each cropped to the receptive field of its
strongest unit (:mod:`oipscope.figures.crops`) where that field is a small part of
the image, else whole with the strongest unit marked. RGB OIPs are shown in pixel
units 0–255 (no per-tile stretch, which would exaggerate their colours) when the
input encoding gives pixel units.

A :class:`MapCard` is built for one :class:`CardLayout` and painted with any
map that has that layout; :func:`oipscope.figures.plot.map_card` paints one card for a
notebook, the gallery (:mod:`oipscope.gallery.site`) repaints one card per layout
with ``blit=True``: matplotlib draws what all maps share once, the per-map
pixels are written with numpy (:mod:`oipscope.figures.paint`) and the text with
Pillow (:mod:`oipscope.figures.text`), a few ms per map.

Example:
    >>> layout = card_layout(result.maps[0], examples, images)  # doctest: +SKIP
    >>> card = MapCard(layout, blit=True)  # doctest: +SKIP
    >>> for oip in result.maps:  # doctest: +SKIP
    ...     card.paint(oip, examples, images)
    ...     png = card.png()
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.cm import ScalarMappable
from matplotlib import rcParams
from matplotlib.colors import Normalize, to_rgb
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.ticker import MaxNLocator, NullFormatter
from matplotlib.transforms import offset_copy

from .captions import (captioned_snapshots, class_names_for, example_title, firing_note, map_label,
                       quality_text, ratio_text)
from ..errors import ConfigError
from .parts import (HATCH_EDGE, HATCH_FACE, MARK_COLOUR, NotebookFigure, bare, colorbar, dataset_item,
                           map_grid, unit_box)
from .text import PilText, figure_pixels
from .png import encode_png
from .paint import blend_box, frame, paste, pixel_box, snap, snap_box
from ..search.status import Status
from .crops import crops_shown, example_crop
from .tiles import (CMAP, PIXEL_LIMITS, ROBUST, colorize, display_image, display_limits, is_rgb, pixel_images,
                    rgb_limits, scale_caption, tile_images, to_uint8)

__all__ = ["CardLayout", "card_layout", "MapCard"]

# The card's geometry, in inches.
_WIDTH = 10.4
_MAX_PANEL = 0.95  # height of the evolution and example strips
_TOP_TITLE, _TOP_H, _TOP_GAP = 0.45, 1.9, 0.42  # the card title band, the top row, the gap below it
_LABEL_H, _TITLES_H = 0.22, 0.32  # a strip's heading, the captions above its tiles
_CURVE_W, _CLASSES_W = 2.3, 1.9
_LINE = "#31688e"
_HIGHLIGHT = "#35b779"
_OFF_GREY = 0.94  # an example tile whose image leaves the map off
_GRID_LW, _GRID_ALPHA = 0.5, 0.3  # the curve's grid: line width (points) and opacity
_INFO_LINES = 7  # the text box: status, activation, converged, start, ratio, quality, evoked class


@dataclass(frozen=True)
class CardLayout:
    """What fixes a card's layout: maps with equal layouts share one :class:`MapCard`.

    Attributes:
        frame_shape: (height, width) of the OIP and its snapshots.
        steps: the caption above each snapshot (``"step 10"``, or ``"final"``).
        n_examples: dataset examples shown (0: no example strip).
        example_shape: (height, width) of the dataset images, if shown.
        n_classes: class probabilities shown (0: not assessed).
        with_labels: the example titles have a second line for the class.
        cropped: the examples are crops of the receptive field of their strongest unit.
        rgb: the OIP is an RGB picture (no colour bar; its scale is written in its title).
    """

    frame_shape: tuple[int, int]
    steps: tuple[str, ...]
    n_examples: int = 0
    example_shape: tuple[int, int] | None = None
    n_classes: int = 0
    with_labels: bool = False
    cropped: bool = False
    rgb: bool = False


def card_layout(oip, examples=None, images=None, labels=None, max_examples: int = 9) -> CardLayout:
    """The layout of ``oip``'s card, with its dataset examples if ``examples`` and ``images`` are given."""
    image = np.asarray(oip.image)
    with_examples = examples is not None and images is not None
    n_examples = min(int(examples.top_indices.shape[1]), max_examples) if with_examples else 0
    example_shape = None
    if n_examples:
        first = np.asarray(dataset_item(images, examples.top_indices[int(oip.map_index)][0], "image"))
        example_shape = tuple(first.shape[:2])
    probs = getattr(oip, "evoked_probabilities", None)
    return CardLayout(
        frame_shape=tuple(image.shape[:2]),
        steps=tuple(step for _, step, _ in captioned_snapshots(oip)),
        n_examples=n_examples,
        example_shape=example_shape,
        n_classes=0 if probs is None else int(np.asarray(probs).size),
        with_labels=labels is not None and n_examples > 0,
        cropped=n_examples > 0 and crops_shown(getattr(examples, "receptive_field", None), example_shape),
        rgb=is_rgb(image),
    )


class MapCard:
    """A map card laid out once for a :class:`CardLayout` and repainted per map.

    Args:
        layout: the card's layout (:func:`card_layout`).
        dpi: figure dpi (default matplotlib's).
        blit: draw the static card once and per map only what changes (:meth:`pixels`): fast, for galleries.
        limits: one (vmin, vmax) for every map; default each map on its own robust scale.
        class_names: names of the probability bars (default "0", "1", ...).
        unit: the unit of the OIP's colour bar (single-channel OIPs).
        encoding: the input encoding of the OIPs this card will show, for the scale of RGB OIPs
            (:func:`~oipscope.figures.tiles.rgb_limits`); :meth:`paint` may give it too.
    """

    def __init__(self, layout: CardLayout, *, dpi: float | None = None, blit: bool = False,
                 limits: tuple[float, float] | None = None, class_names: Sequence[str] | None = None,
                 unit: str = "standardized value", encoding=None):
        self.layout = layout
        self.rgb_limits = rgb_limits(encoding, limits)
        self.steps = tuple(layout.steps)
        self.n_frames, self.n_examples, self.n_classes = len(self.steps), layout.n_examples, layout.n_classes
        self.blit = blit
        self.limits = limits
        self.frame_shape = tuple(layout.frame_shape)
        self._background: np.ndarray | None = None  # the static card, drawn once (blit)
        self._spines: list[tuple[slice, slice]] | None = None  # the curve's frame, in pixels
        self._placed: list[tuple] = []  # (text, where and how PilText draws it)
        self._axes_boxes: dict = {}  # axes → its box in the canvas buffer, once laid out
        self._pil: PilText | None = None
        fw = self.frame_shape[1]
        self.gap = max(1, fw // 8)
        slots = max(self.n_frames, self.n_examples, 1)
        self.panel = min(_MAX_PANEL, (_WIDTH - 0.4) / max(self._strip_ratio(slots, fw, self.gap), 1e-9))
        self._ex_titles_h = 0.42 if layout.with_labels else 0.3
        height = _TOP_TITLE + _TOP_H + _TOP_GAP + _LABEL_H + _TITLES_H + self.panel
        if self.n_examples:
            height += 0.15 + _LABEL_H + self._ex_titles_h + self.panel
        self.height = height + 0.12
        self.fig = NotebookFigure(figsize=(_WIDTH, self.height), dpi=dpi)
        self.title = self.fig.text(0.5, 1 - self._fy(0.08), "", ha="center", va="top", fontsize=11,
                                   fontweight="bold")

        y0 = self.height - _TOP_TITLE - _TOP_H
        self._add_oip(y0, unit)
        x = 0.3 + _TOP_H + 1.2
        self._add_curve(x, y0)
        x += _CURVE_W + 0.45
        self._add_classes(x, y0, class_names)
        x += _CLASSES_W + 0.12
        # one Text per line: most lines repeat from map to map, so their layout is cached
        self.info = [self.fig.text(self._fx(x), self._fy(y0 + _TOP_H - j * 0.17), "", fontsize=7.5, va="top",
                                   ha="left") for j in range(_INFO_LINES)]
        y1 = y0 - _TOP_GAP - _LABEL_H - _TITLES_H - self.panel
        self._add_evolution(y1)
        self.ax_ex = None
        if self.n_examples:
            self._add_examples(y1 - 0.15 - _LABEL_H - self._ex_titles_h - self.panel)

        # with blit: drawn per map by Agg (the curve, the silent panel), as pixels (the rest), or by Pillow (texts)
        self._agg = [self.activation_line, self.conv_dot, self.hatch, self.hatch_text]
        pixels = [self.oip_image, self.evo_image, *(self.bars or [])]
        self._texts = [self.title, *self.info, *self.evo_titles]
        if self.n_examples:
            pixels += [self.ex_image, *self.ex_marks]
            self._texts += [*self.ex_titles, self.ex_label]
        if blit:  # left out of the static card
            for artist in self._agg + pixels + self._texts:
                artist.set_animated(True)

    # ---- layout ----------------------------------------------------------------------

    def _fx(self, x: float) -> float:
        return x / _WIDTH

    def _fy(self, y: float) -> float:
        return y / self.height

    def _strip_ratio(self, n: int, w: int, gap: int) -> float:
        """Width / height of a strip of ``n`` tiles ``w`` wide, measured in frame heights."""
        return (n * w + (n - 1) * gap) / self.frame_shape[0]

    def _add_oip(self, y0: float, unit: str) -> None:
        """The OIP with its colour bar (shared with the evolution strip) and the hatched silent panel."""
        fig, fx, fy, limits = self.fig, self._fx, self._fy, self.limits
        self.ax_oip = ax = fig.add_axes((fx(0.2), fy(y0), fx(_TOP_H), fy(_TOP_H)))
        if self.layout.rgb:
            title = f"OIP ({scale_caption(self.rgb_limits)})"
        else:
            title = "OIP" if limits is not None or not self.blit else f"OIP ({unit})"
        ax.set_title(title, fontsize=8, pad=2)
        lo, hi = limits if limits is not None else (0.0, 1.0)
        self.oip_image = ax.imshow(np.zeros(self.frame_shape), cmap=CMAP, vmin=lo, vmax=hi, interpolation="nearest")
        bare(ax)
        self.hatch = Rectangle((0, 0), 1, 1, transform=ax.transAxes, facecolor=HATCH_FACE, edgecolor=HATCH_EDGE,
                               hatch="///", linewidth=0, zorder=3)
        ax.add_patch(self.hatch)
        self.hatch_text = ax.text(0.5, 0.5, "", transform=ax.transAxes, ha="center", va="center", fontsize=11,
                                  fontweight="bold", color="#333333", zorder=4,
                                  bbox={"boxstyle": "round,pad=0.25", "facecolor": "white", "edgecolor": "none",
                                        "alpha": 0.85})
        # Each card on its own colour scale (no limits) and blitted: a static 0..1 bar whose three tick
        # labels are written per card, so the bar is not redrawn (and re-ticked) for every map.
        self._free_scale = limits is None and self.blit and not self.layout.rgb
        bar_rect = (fx(0.3 + _TOP_H), fy(y0), fx(0.1), fy(_TOP_H))
        if self._free_scale:
            self.colorbar = colorbar(fig, ScalarMappable(Normalize(0.0, 1.0), CMAP), bar_rect, unit)
            self.colorbar.set_ticks([0.0, 0.5, 1.0])
            self.colorbar.ax.yaxis.set_major_formatter(NullFormatter())
            self.colorbar.ax.set_ylabel("")  # the unit goes into the OIP's title: the labels need the room
        else:
            self.colorbar = colorbar(fig, self.oip_image, bar_rect, unit)
        self.colorbar.ax.set_visible(not self.layout.rgb)  # an RGB picture has no colour scale
        self._clim = (lo, hi)

    def _add_curve(self, x: float, y0: float) -> None:
        """The activation curve; its title and axis labels are figure texts, in the static background."""
        fig, fx, fy = self.fig, self._fx, self._fy
        self.ax_activation = ax = fig.add_axes((fx(x), fy(y0), fx(_CURVE_W), fy(_TOP_H)))
        (self.activation_line,) = ax.plot([0, 1], [0, 0], "-", color=_LINE, lw=1.2)
        (self.conv_dot,) = ax.plot([0], [0], "o", color=_HIGHLIGHT, ms=4)
        middle = x + _CURVE_W / 2
        fig.text(fx(middle), fy(y0 + _TOP_H + 0.03), "activation curve", fontsize=8, ha="center", va="bottom")
        fig.text(fx(middle), fy(y0 - 0.24), "step", fontsize=7, ha="center", va="top")
        fig.text(fx(x - 0.5), fy(y0 + _TOP_H / 2), "mean activation", fontsize=7, ha="center", va="center",
                 rotation=90)
        self._locators = (MaxNLocator(4, integer=True), MaxNLocator(4))
        if self.blit:  # a bare frame in the background: grid, ticks and their labels are drawn per map (png)
            bare(ax)
            return
        ax.tick_params(labelsize=6)
        ax.xaxis.set_major_locator(self._locators[0])
        ax.yaxis.set_major_locator(self._locators[1])
        ax.grid(alpha=_GRID_ALPHA, lw=_GRID_LW)

    def _add_classes(self, x: float, y0: float, class_names: Sequence[str] | None) -> None:
        """The bars of the class probabilities the full model gives the OIP, or "not assessed"."""
        self.ax_prob = ax = self.fig.add_axes((self._fx(x), self._fy(y0), self._fx(_CLASSES_W), self._fy(_TOP_H)))
        ax.set_title("evoked classes", fontsize=8, pad=2)
        self.bars = None
        n = self.n_classes
        if not n:
            bare(ax)
            ax.text(0.5, 0.5, "not assessed", transform=ax.transAxes, ha="center", va="center", fontsize=8,
                    color="#555555")
            return
        self.bars = ax.bar(np.arange(n), np.zeros(n), color=_LINE)
        ax.set_xticks(np.arange(n))
        ax.set_ylim(0, 1)
        ax.set_yticks([0, 0.5, 1])
        ax.tick_params(labelsize=6)
        ax.set_ylabel("probability", fontsize=7)
        names = class_names_for(class_names, n)
        ax.set_xticklabels(names, rotation=90 if max(len(s) for s in names) > 2 else 0)

    def _add_evolution(self, y1: float) -> None:
        """The strip of snapshots, a step caption (static) and an activation caption above each."""
        fig, fx, fy, panel = self.fig, self._fx, self._fy, self.panel
        (fh, fw), gap, n = self.frame_shape, self.gap, self.n_frames
        fig.text(fx(0.2), fy(y1 + panel + _TITLES_H + 0.04), "evolution (colour scale as the OIP)", fontsize=8,
                 fontweight="bold")
        width = panel * self._strip_ratio(n, fw, gap)
        self.ax_evo = ax = fig.add_axes((fx(0.2), fy(y1), fx(width), fy(panel)))
        self.evo_image = ax.imshow(np.ones((fh, n * fw + (n - 1) * gap, 3)), interpolation="nearest")
        bare(ax)
        ax.axis("off")
        above = offset_copy(ax.transData, fig=fig, y=8, units="points")
        for j, step in enumerate(self.steps):  # the steps are the same for every map: static
            ax.text(j * (fw + gap) + fw / 2 - 0.5, -1.0, step, ha="center", va="bottom", fontsize=6.5,
                    clip_on=False, transform=above)
        self.evo_titles = [ax.text(j * (fw + gap) + fw / 2 - 0.5, -1.0, "", ha="center", va="bottom",
                                   fontsize=6.5, clip_on=False) for j in range(n)]

    def _add_examples(self, y2: float) -> None:
        """The strip of top dataset images with a title and a strongest-unit marker each."""
        fig, fx, fy, panel, n = self.fig, self._fx, self._fy, self.panel, self.n_examples
        eh, ew = self.example_shape = tuple(self.layout.example_shape)
        self.ex_gap = gap = max(1, ew // 8)
        heading = fy(y2 + panel + self._ex_titles_h + 0.04)
        what = ("cropped to the receptive field of the strongest unit" if self.layout.cropped
                else "red square: strongest unit")
        fig.text(fx(0.2), heading, f"top dataset images (#index / mean activation; {what})",
                 fontsize=8, fontweight="bold")
        self.ex_label = fig.text(fx(_WIDTH - 0.2), heading, "none makes the map fire", fontsize=8, ha="right",
                                 color="#c0392b")
        width = panel * (n * ew + (n - 1) * gap) / eh
        self.ax_ex = ax = fig.add_axes((fx(0.2), fy(y2), fx(width), fy(panel)))
        self.ex_image = ax.imshow(np.ones((eh, n * ew + (n - 1) * gap, 3)), interpolation="nearest")
        ax.axis("off")
        self.ex_titles = [ax.text(j * (ew + gap) + ew / 2 - 0.5, -1.0, "", ha="center", va="bottom", fontsize=6,
                                  clip_on=False) for j in range(n)]
        self.ex_marks = [ax.add_patch(Rectangle((0, 0), 1, 1, fill=False, edgecolor=MARK_COLOUR, linewidth=1.2))
                         for _ in range(n)]

    # ---- painting --------------------------------------------------------------------

    def paint(self, oip, examples=None, images=None, class_names: Sequence[str] | None = None, map_shape=None,
              labels=None, layer_name: str | None = None, encoding=None, image_names=None) -> Figure:
        """Show ``oip`` (and its dataset examples) on the card; returns the card's figure.

        Args:
            oip: a MapOip with this card's layout.
            examples, images: the layer's DatasetExamples and the images they index (if the layout shows them).
            class_names: names for the probabilities, the evoked class and the labels.
            map_shape: the map grid (rows, cols) for the example markers.
            labels: dataset labels (array or mapping) for the example titles.
            layer_name: shown in the title.
            encoding: the result's input encoding: the OIP is shown in pixel units.
            image_names: names of the dataset images (array, mapping or callable by index).
        """
        frames = captioned_snapshots(oip)
        if tuple(step for _, step, _ in frames) != self.steps:
            raise ConfigError(f"card laid out for snapshots {self.steps}, the OIP has other snapshot steps")
        marked = Status(oip.status).marked
        if encoding is not None:
            self.rgb_limits = rgb_limits(encoding, self.limits)
        image, *frame_pixels = pixel_images([oip.image] + [f for f, _, _ in frames], encoding)
        vmin, vmax = self.limits or display_limits(([] if marked else [image]) + frame_pixels, robust=ROBUST)
        self.title.set_text(f"{layer_name} · {map_label(oip)}" if layer_name else map_label(oip))
        self._paint_oip(oip, image, marked, vmin, vmax)
        self._paint_curve(oip, marked)
        self._paint_classes_and_info(oip, class_names)
        self.evo_image.set_data(tile_images([colorize(f, vmin, vmax, self.rgb_limits) for f in frame_pixels],
                                            self.n_frames, self.gap))
        for text, (_, _, activation) in zip(self.evo_titles, frames):
            text.set_text(activation)
        if self.ax_ex is not None:
            self._paint_examples(oip, examples, images, map_shape, labels, class_names, image_names)
        return self.fig

    def _paint_oip(self, oip, image: np.ndarray, marked: bool, vmin: float, vmax: float) -> None:
        self.oip_image.set_data(display_image(image, self.rgb_limits)[0] if not marked else np.zeros(self.frame_shape))
        self._clim = (vmin, vmax)
        if self.limits is None:
            self.oip_image.set_clim(vmin, vmax)
        self.oip_image.set_visible(not marked)
        self.hatch.set_visible(marked)
        self.hatch_text.set_visible(marked)
        self.hatch_text.set_text(oip.status)

    def _paint_curve(self, oip, marked: bool) -> None:
        hist = np.asarray(oip.activation_history, dtype=np.float64).reshape(-1)
        if hist.size == 0:
            hist = np.array([float(oip.activation)])
        every = int(getattr(oip, "history_every", 1))  # a long ascent keeps every ``every``-th step's
        self.activation_line.set_data(np.arange(hist.size) * every, hist)
        self.activation_line.set_linestyle(":" if marked else "-")
        c = int(oip.converged_step)
        self.conv_dot.set_visible(0 <= c // every < hist.size)
        if 0 <= c // every < hist.size:
            self.conv_dot.set_data([c], [hist[c // every]])
        finite = hist[np.isfinite(hist)]
        lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        pad = 0.05 * (hi - lo) if hi > lo else 0.05 * max(abs(hi), 1.0)
        self.ax_activation.set_xlim(0, max((hist.size - 1) * every, 1))
        self.ax_activation.set_ylim(lo - pad, hi + pad)

    def _paint_classes_and_info(self, oip, class_names: Sequence[str] | None) -> None:
        probs = getattr(oip, "evoked_probabilities", None)
        names = None
        if probs is not None and self.bars is not None:
            probs = np.asarray(probs, dtype=np.float64).reshape(-1)
            names = class_names_for(class_names, probs.size)
            best = int(np.argmax(probs))
            for j, bar in enumerate(self.bars):
                bar.set_height(probs[j] if j < probs.size else 0.0)
                bar.set_color(_HIGHLIGHT if j == best else _LINE)
        step = int(oip.converged_step)
        lines = [
            f"status: {oip.status}",
            f"activation: {float(oip.activation):.3f}",
            f"converged: {f'at step {step}' if step >= 0 else 'no'}",
            f"start: {oip.start}",
            f"superstimulus ratio: {ratio_text(getattr(oip, 'superstimulus_ratio', None))}",
        ]
        quality = quality_text(oip)
        if quality:  # None in results of older versions: no line
            lines.append(f"quality: {quality}")
        if probs is not None and names is not None:
            best = int(np.argmax(probs))
            lines.append(f"evoked class: {names[best]} ({probs[best]:.2f})")
        for text, line in zip(self.info, lines + [""] * len(self.info)):
            text.set_text(line)

    def _paint_examples(self, oip, examples, images, map_shape, labels, class_names, image_names=None) -> None:
        m, n = int(oip.map_index), self.n_examples
        idx = examples.top_indices[m][:n]
        vals = examples.top_values[m][:n]
        pos = examples.top_positions[m][:n]
        on = [float(v) != 0 for v in vals]  # images where the map is off are left blank
        field = getattr(examples, "receptive_field", None)
        views = [example_crop(dataset_item(images, i, "image"), field, p, self.example_shape) if fires else None
                 for i, p, fires in zip(idx, pos, on)]
        pics = [np.asarray(dataset_item(images, i, "image")) if view is None else view[0]
                for i, view in zip(idx, views)]
        lo, hi = display_limits([p for p, fires in zip(pics, on) if fires] or pics)
        tiles = [colorize(p, lo, hi, PIXEL_LIMITS) if fires else np.full((*self.example_shape, 3), _OFF_GREY,
                                                                          np.float32)
                 for p, fires in zip(pics, on)]
        self.ex_image.set_data(tile_images(tiles, n, self.ex_gap))
        grid = map_grid(examples, map_shape)
        step = self.example_shape[1] + self.ex_gap
        for j in range(n):
            title = example_title(image_names, idx[j], vals[j], labels, class_names)
            self.ex_titles[j].set_text(title if on[j] else "off")
            box = unit_box(grid, self.example_shape, pos[j], vals[j]) if views[j] is None else views[j][1]
            mark = self.ex_marks[j]
            mark.set_visible(box is not None)
            if box is not None:
                x, y, w, h = box
                mark.set_xy((j * step + x, y))
                mark.set_width(w)
                mark.set_height(h)
        note = firing_note(examples, m, vals)
        self.ex_label.set_text(note)
        self.ex_label.set_visible(bool(note))

    # ---- rendering -------------------------------------------------------------------

    def png(self, compress_level: int = 3) -> bytes:
        """The painted card as PNG bytes (zlib ``compress_level``)."""
        return encode_png(self.pixels()[..., :3], compress_level)

    def pixels(self) -> np.ndarray:
        """The painted card as uint8 RGBA pixels (a copy); with ``blit`` only what changes from map to map
        is drawn: the static card once by Agg, images and bars with numpy, the curve by Agg, text with Pillow."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        if not self.blit:
            canvas = FigureCanvasAgg(self.fig)
            canvas.draw()
            return np.array(canvas.buffer_rgba())
        if self._background is None:  # lays the axes out (image aspect) and draws everything static
            self._pil = PilText(self.fig)
            self._background = figure_pixels(self.fig)
            self._spines = self._frame_windows(self.ax_activation)
            self._placed = [(text, PilText.placement(text)) for text in self._texts]
        buffer = np.asarray(self.fig.canvas.buffer_rgba())
        np.copyto(buffer, self._background)
        self._draw_pixels(buffer)
        locs = self._draw_grid(buffer)
        for artist in self._agg:
            if artist.get_visible():
                self.fig.draw_artist(artist)
        for window in self._spines:  # the curve's frame stays on top of the curve
            buffer[window] = self._background[window]
        pil = self._pil.start(buffer)
        for text, place in self._placed:  # the texts keep their places: only their strings change
            if text.get_visible():
                pil.raw(text.get_text(), *place)
        pil.tick_labels(self.ax_activation, locs=locs)
        if self._free_scale:  # the colour bar's three labels for this card's scale
            lo, hi = self._clim
            off = 5.5 * self.fig.dpi / 72.0
            for fraction in (0.0, 0.5, 1.0):
                px, py = self.colorbar.ax.transAxes.transform((1.0, fraction))
                pil.raw(f"{lo + fraction * (hi - lo):.3g}", px + off, py, 6, "left", "center")
        return buffer.copy()

    def _box(self, item) -> tuple[float, float, float, float]:
        """An axes' (fixed once laid out) or a rectangle's box in the canvas buffer (pixels, y down)."""
        if isinstance(item, Axes):
            if item not in self._axes_boxes:
                self._axes_boxes[item] = pixel_box(item.bbox, self.fig.canvas.get_renderer().height)
            return self._axes_boxes[item]
        return self._boxes([item])[0]

    def _boxes(self, rects: Sequence[Rectangle]) -> list[tuple[float, float, float, float]]:
        """The boxes of rectangles of one axes, through its data transform at once (cheaper than their extents)."""
        corners = [[(r.get_x(), r.get_y()), (r.get_x() + r.get_width(), r.get_y() + r.get_height())] for r in rects]
        (x0, y0), (x1, y1) = np.moveaxis(rects[0].get_data_transform().transform(
            np.reshape(corners, (-1, 2))).reshape(-1, 2, 2), 0, -1)
        height = self.fig.canvas.get_renderer().height
        return [(min(a, c), height - max(b, d), max(a, c), height - min(b, d))
                for a, b, c, d in zip(x0.tolist(), y0.tolist(), x1.tolist(), y1.tolist())]

    def _draw_pixels(self, buffer: np.ndarray) -> None:
        """The images, bars and example marks of the painted map, written into the canvas ``buffer``."""
        if self.oip_image.get_visible():
            data = np.asarray(self.oip_image.get_array())
            rgb = data if data.ndim == 3 else colorize(data, *self.oip_image.get_clim())
            paste(buffer, to_uint8(rgb), self._box(self.ax_oip))
        paste(buffer, to_uint8(self.evo_image.get_array()), self._box(self.ax_evo))
        if self.bars is not None:
            clip = snap_box(self._box(self.ax_prob))  # Agg clips to the axes box, rounded to whole pixels
            width = self.bars[0].get_linewidth() * self.fig.dpi / 72.0
            for bar, box in zip(self.bars, self._boxes(self.bars)):  # filled as Agg fills them: snapped, stroke-wide
                x0, y0, x1, y1 = snap_box(box, width)
                blend_box(buffer, (x0 - width / 2, y0 - width / 2, x1 + width / 2, y1 + width / 2),
                          bar.get_facecolor(), clip=clip)
        if self.ax_ex is None:
            return
        paste(buffer, to_uint8(self.ex_image.get_array()), self._box(self.ax_ex))
        marks = [mark for mark in self.ex_marks if mark.get_visible()]
        clip = snap_box(self._box(self.ax_ex))
        for mark, box in zip(marks, self._boxes(marks) if marks else []):
            width = mark.get_linewidth() * self.fig.dpi / 72.0
            frame(buffer, snap_box(box, width), width, mark.get_edgecolor(), clip=clip)

    def _frame_windows(self, ax) -> list[tuple[slice, slice]]:
        """The pixels of the four spines of ``ax``, as (rows, cols) slices of the canvas buffer."""
        width = max(spine.get_linewidth() for spine in ax.spines.values()) * self.fig.dpi / 72.0
        left, top, right, bottom = snap_box(self._box(ax), width)

        def span(a: float, b: float) -> slice:
            return slice(math.floor(a - width / 2), math.ceil(b + width / 2))

        return [(span(top, bottom), span(x, x)) for x in (left, right)] + \
               [(span(y, y), span(left, right)) for y in (top, bottom)]

    def _draw_grid(self, buffer: np.ndarray) -> tuple[list[float], list[float]]:
        """The activation curve's grid lines and tick marks for its current limits; returns the (x, y) ticks."""
        ax, px = self.ax_activation, self.fig.dpi / 72.0
        (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
        xlocs, ylocs = (_inside(loc.tick_values(lo, hi), lo, hi)
                        for loc, lo, hi in zip(self._locators, (x0, y0), (x1, y1)))
        grid_w, grid_colour = _GRID_LW * px, to_rgb(rcParams["grid.color"])  # as ax.grid and the ticks would be
        tick_w, tick_len = rcParams["xtick.major.width"] * px, rcParams["xtick.major.size"] * px
        box = self._box(ax)
        left, top, right, bottom = snap_box(box, tick_w)  # the spines' centres
        inner = (left + 0.5, top + 0.5, right - 0.5, bottom - 0.5)  # the grid stays off the spines
        points = ax.transData.transform([(v, y0) for v in xlocs] + [(x0, v) for v in ylocs])
        height = self.fig.canvas.get_renderer().height
        for x in points[:len(xlocs), 0].tolist():
            c = snap(x, grid_w)
            blend_box(buffer, (c - grid_w / 2, top, c + grid_w / 2, bottom), grid_colour, _GRID_ALPHA, inner)
            c = snap(x, tick_w)
            blend_box(buffer, (c - tick_w / 2, bottom, c + tick_w / 2, snap(box[3] + tick_len, tick_w)), (0, 0, 0))
        for y in (height - points[len(xlocs):, 1]).tolist():
            r = snap(y, grid_w)
            blend_box(buffer, (left, r - grid_w / 2, right, r + grid_w / 2), grid_colour, _GRID_ALPHA, inner)
            r = snap(y, tick_w)
            blend_box(buffer, (snap(box[0] - tick_len, tick_w), r - tick_w / 2, left, r + tick_w / 2), (0, 0, 0))
        return xlocs, ylocs


def _inside(locs, lo: float, hi: float) -> list[float]:
    """The tick locations within [lo, hi] (matplotlib's locators return some beyond it)."""
    lo, hi = min(lo, hi), max(lo, hi)
    return [float(v) for v in locs if lo - 1e-12 <= v <= hi + 1e-12]
