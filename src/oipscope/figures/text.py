"""Text of a rendered matplotlib figure drawn with Pillow's glyphs: the fast path of the gallery's cards.

Agg's text path costs about 1-2 ms per text. Here each glyph of the font
(matplotlib's DejaVu Sans) is rendered once by Pillow, at a quarter-pixel
offset, and a line of text is laid out from the glyphs' advances and kerning
and composed with numpy: a few hundredths of Agg's cost, and a line met
before costs only its blend. The map card (:class:`oipscope.figures.card.MapCard`)
renders its changing parts into the canvas buffer and then writes its texts,
tick labels included, with :class:`PilText`; :func:`figure_pixels` renders
any figure that way (Agg for everything but the glyphs), for the gallery's
layer figures.
"""

from __future__ import annotations

import functools
import math
from typing import Sequence

import numpy as np
from matplotlib.figure import Figure

from .paint import blend_mask

__all__ = ["PilText", "GlyphFont", "glyph_font", "figure_pixels", "tick_strings"]

_BOLD = ("bold", "heavy", "extra bold", "black", "semibold", "demibold")
_TICK_OFFSET_PT = 7.0  # Agg: tick length 3.5 pt + pad 3.5 pt
_STEPS = 4  # sub-pixel positions of a glyph


def tick_strings(locs: Sequence[float]) -> list[str]:
    """Tick labels with just enough decimals for the tick spacing."""
    if not locs:
        return []
    step = min((abs(b - a) for a, b in zip(locs, locs[1:]) if b != a), default=1.0)
    digits = max(0, -int(math.floor(math.log10(step)))) if step > 0 else 0
    text = [f"{v:.{digits}f}" for v in locs]
    return [t[1:] if t.startswith("-") and float(t) == 0 else t for t in text]


def _linespacing(artist) -> float:
    value = getattr(artist, "_linespacing", 1.2)
    return float(value) if isinstance(value, (int, float)) else 1.2


class GlyphFont:
    """A Pillow font whose glyphs are rendered once and composed into lines of text with numpy.

    Example:
        >>> font = GlyphFont(ImageFont.truetype("DejaVuSans.ttf", 8))  # doctest: +SKIP
        >>> mask, left, top = font.line("map 3", 10.25, 20.0, "ls")  # doctest: +SKIP
    """

    _MAX_LINES = 20000  # composed lines kept (a few hundred bytes each)

    def __init__(self, font):
        self.font = font
        self.ascent, self.descent = font.getmetrics()
        self.glyphs: dict[tuple[str, int], tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self.advances: dict[str, float] = {}
        self.layouts: dict[str, tuple[list[float], float]] = {}
        self.extents: dict[str, tuple[float, float, float]] = {}
        self.lines: dict[tuple[str, int], tuple[np.ndarray, int, int]] = {}

    def _advance(self, text: str) -> float:
        if text not in self.advances:
            self.advances[text] = float(self.font.getlength(text))
        return self.advances[text]

    def _glyph(self, char: str, step: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The inked pixels of ``char`` drawn ``step / _STEPS`` px right of the pen: rows and columns
        relative to the pen on the baseline, and their coverage."""
        key = (char, step)
        if key not in self.glyphs:
            from PIL import Image, ImageDraw

            left, top, right, bottom = self.font.getbbox(char, anchor="ls")
            left, top = int(left) - 1, int(top) - 1
            image = Image.new("L", (int(right) - left + 2, int(bottom) - top + 2), 0)
            ImageDraw.Draw(image).text((step / _STEPS - left, -top), char, font=self.font, fill=255, anchor="ls")
            mask = np.asarray(image)
            rows, cols = np.nonzero(mask)
            self.glyphs[key] = (rows + top, cols + left, mask[rows, cols])
        return self.glyphs[key]

    def _layout(self, text: str) -> tuple[list[float], float]:
        """Where each glyph of ``text`` starts (pen offsets from 0), and the advance width of the line."""
        if text not in self.layouts:
            if len(self.layouts) >= self._MAX_LINES:
                self.layouts.clear()
            pens = [0.0]
            for a, b in zip(text, text[1:]):  # the advance of a, kerned against b
                pens.append(pens[-1] + self._advance(a + b) - self._advance(b))
            self.layouts[text] = (pens, pens[-1] + self._advance(text[-1]))
        return self.layouts[text]

    def _compose(self, text: str, step: int) -> tuple[np.ndarray, int, int]:
        """``text`` with its pen starting ``step / _STEPS`` px right of a whole pixel on the baseline:
        (coverage mask, its left and top relative to that pixel)."""
        pens = np.asarray(self._layout(text)[0]) + step / _STEPS
        whole = np.floor(pens)
        part = np.rint((pens - whole) * _STEPS).astype(np.intp)
        whole, part = whole + (part == _STEPS), np.where(part == _STEPS, 0, part)
        glyphs = [self._glyph(char, p) for char, p in zip(text, part.tolist())]
        rows = np.concatenate([g[0] for g in glyphs])
        if not rows.size:
            return np.zeros((0, 0), np.uint8), 0, 0
        cols = np.concatenate([g[1] for g in glyphs]) + np.repeat(whole.astype(np.intp), [g[0].size for g in glyphs])
        values = np.concatenate([g[2] for g in glyphs])
        top, left = int(rows.min()), int(cols.min())
        mask = np.zeros((int(rows.max()) - top + 1, int(cols.max()) - left + 1), np.uint8)
        np.maximum.at(mask, (rows - top, cols - left), values)
        return mask, left, top

    def extent(self, text: str) -> tuple[float, float, float]:
        """(width, height, descent) of ``text`` in pixels, as a renderer's ``get_text_width_height_descent``."""
        if text not in self.extents:
            if len(self.extents) >= self._MAX_LINES:
                self.extents.clear()
            _, top, _, bottom = self.font.getbbox(text, anchor="ls")
            self.extents[text] = (self.width(text), float(bottom - top), float(max(bottom, 0)))
        return self.extents[text]

    def width(self, text: str) -> float:
        """The advance width of ``text`` in pixels."""
        return self._layout(text)[1] if text else 0.0

    def line(self, text: str, x: float, y: float, anchor: str) -> tuple[np.ndarray, int, int]:
        """One line of text anchored at pixel (x, y) (y down): (coverage mask, left column, top row).

        ``anchor``: Pillow's two letters, horizontal ``l``/``m``/``r`` and vertical
        ``a`` (ascender), ``m`` (middle), ``s`` (baseline) or ``d`` (descender).
        """
        start = x - {"l": 0.0, "m": 0.5, "r": 1.0}[anchor[0]] * self.width(text)
        baseline = y + {"a": self.ascent, "m": (self.ascent - self.descent) / 2, "s": 0.0,
                        "d": -self.descent}[anchor[1]]
        whole = math.floor(start)
        step = int((start - whole) * _STEPS + 0.5)
        whole, step = (whole + 1, 0) if step == _STEPS else (whole, step)
        key = (text, step)
        if key not in self.lines:
            if len(self.lines) >= self._MAX_LINES:
                self.lines.clear()
            self.lines[key] = self._compose(text, step)
        mask, left, top = self.lines[key]
        return mask, whole + left, math.floor(baseline + 0.5) + top


@functools.lru_cache(maxsize=2)
def _dejavu(bold: bool) -> str:
    from matplotlib.font_manager import FontProperties, findfont

    return findfont(FontProperties(family="DejaVu Sans", weight="bold" if bold else "normal"))


@functools.lru_cache(maxsize=32)
def glyph_font(path: str, size_px: float) -> GlyphFont:
    """The :class:`GlyphFont` of the font file ``path`` at ``size_px``, shared (its glyphs are rendered once)."""
    from PIL import ImageFont

    return GlyphFont(ImageFont.truetype(path, size=max(1.0, size_px)))


class PilText:
    """Draws the text of matplotlib ``Text`` artists with Pillow onto a rendered figure.

    Handles what the card uses: unrotated, single- or multi-line, ha
    left/center/right, va top/bottom/center/baseline, normal or bold, any
    transform. Call :meth:`start` with each new image, then draw.
    """

    def __init__(self, fig: Figure):
        self.fig = fig
        self.buffer: np.ndarray | None = None
        self.height = 0

    def start(self, buffer: np.ndarray) -> PilText:
        """Draw into ``buffer`` (uint8 (H, W, 3 or 4): the figure rendered at its dpi) from now on."""
        self.buffer = buffer
        self.height = buffer.shape[0]
        return self

    def font(self, bold: bool | str, size_px: float) -> GlyphFont:
        """DejaVu Sans (or the font file ``bold`` names) at ``size_px`` (to a quarter pixel)."""
        return glyph_font(bold if isinstance(bold, str) else _dejavu(bool(bold)), round(size_px * 4) / 4)

    def text(self, artist) -> None:
        """A matplotlib ``Text`` where Agg would draw it (nothing if hidden or empty)."""
        if artist.get_visible() and artist.get_text():
            self.raw(artist.get_text(), *self.placement(artist))

    @staticmethod
    def placement(artist) -> tuple:
        """Where and how ``artist`` is drawn, the arguments of :meth:`raw` after the text: for artists
        that keep their place and style while their text changes, compute it once."""
        px, py = artist.get_transform().transform(artist.get_unitless_position())
        weight = artist.get_fontweight()
        bold = weight in _BOLD or (isinstance(weight, (int, float)) and weight >= 600)
        return (float(px), float(py), artist.get_fontsize(), artist.get_ha(), artist.get_va(), bold,
                artist.get_color(), _linespacing(artist))

    def raw(self, text: str, px: float, py: float, size_pt: float, ha: str, va: str, bold: bool = False,
            color="black", linespacing: float = 1.2) -> None:
        """``text`` anchored at display pixel (px, py), counted from the bottom as matplotlib does."""
        from matplotlib.colors import to_rgba

        size = round(size_pt * self.fig.dpi / 72.0 * 4) / 4  # the font's size, to a quarter pixel
        fill = to_rgba(color)[:3]
        lines = text.split("\n")
        step = size * linespacing
        y = self.height - py  # Pillow counts from the top
        h = {"left": "l", "center": "m", "right": "r"}.get(ha, "l")
        if va == "top":
            first, v = y, "a"
        elif va == "bottom":
            first, v = y - (len(lines) - 1) * step, "d"
        elif va == "baseline":
            first, v = y, "s"
        else:  # center, center_baseline
            first, v = y - (len(lines) - 1) * step / 2, "m"
        font = self.font(bold, size)
        for i, line in enumerate(lines):
            if line:
                blend_mask(self.buffer, *font.line(line, px, first + i * step, h + v), fill)

    def glyphs(self, text: str, x: float, y: float, font: GlyphFont, fill, alpha: float = 1.0,
               quarter_turn: bool = False) -> None:
        """One line with its baseline starting at pixel (x, y) (y down), as Agg's ``draw_text`` takes it;
        ``quarter_turn``: rotated 90° counter-clockwise about that point (a y-axis label)."""
        if not quarter_turn:
            mask, left, top = font.line(text, x, y, "ls")
        else:  # the line's offsets (right, down) become (down, left): turn the mask, then place it
            mask, along, across = font.line(text, 0.0, 0.0, "ls")
            left, top = math.floor(x + 0.5) + across, math.floor(y + 0.5) - along - mask.shape[1] + 1
            mask = np.rot90(mask)
        blend_mask(self.buffer, mask, left, top, fill, alpha)

    def tick_labels(self, ax, size_pt: float = 6,
                    locs: tuple[Sequence[float], Sequence[float]] | None = None) -> None:
        """The major tick labels of ``ax``'s x and y axes, placed as Agg would place them.

        ``locs``: the (x, y) tick locations, for axes drawn without ticks; default the axes' own.
        """
        off = _TICK_OFFSET_PT * self.fig.dpi / 72.0
        x0, x1 = ax.get_xlim()
        y0, y1 = ax.get_ylim()
        given = locs or (ax.xaxis.get_majorticklocs(), ax.yaxis.get_majorticklocs())
        for axis, lo, hi, ticks in ((ax.xaxis, x0, x1, given[0]), (ax.yaxis, y0, y1, given[1])):
            ticks = [v for v in ticks if min(lo, hi) - 1e-12 <= v <= max(lo, hi) + 1e-12]
            for v, label in zip(ticks, tick_strings(ticks)):
                if axis is ax.xaxis:
                    px, py = ax.transData.transform((v, y0))
                    self.raw(label, px, py - off, size_pt, "center", "top")
                else:
                    px, py = ax.transData.transform((x0, v))
                    self.raw(label, px - off, py, size_pt, "right", "center")


def figure_pixels(fig: Figure, dpi: float | None = None) -> np.ndarray:
    """``fig`` rendered at ``dpi`` as uint8 RGBA pixels: Agg draws all but the glyphs, Pillow's glyphs the text.

    Agg spends a few ms on each text; figures full of tick labels render several
    times faster this way. Mathematical and obliquely rotated text stays Agg's.

    Args:
        fig: the figure (its dpi is restored afterwards).
        dpi: the resolution; default the figure's.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.font_manager import findfont

    old_dpi = fig.dpi
    fig.dpi = dpi or old_dpi
    pil = PilText(fig)
    files: dict = {}

    def font_of(prop) -> GlyphFont:
        if prop not in files:
            files[prop] = findfont(prop)
        return pil.font(files[prop], prop.get_size_in_points() * fig.dpi / 72.0)

    try:
        canvas = FigureCanvasAgg(fig)
        renderer = canvas.get_renderer()
        agg_text, agg_extent = renderer.draw_text, renderer.get_text_width_height_descent
        lines: list[tuple] = []

        def record(gc, x, y, s, prop, angle, ismath=False, mtext=None):
            if ismath or angle % 360 not in (0, 90) or not s.strip():
                return agg_text(gc, x, y, s, prop, angle, ismath=ismath, mtext=mtext)
            rgba = tuple(gc.get_rgb())
            alpha = gc.get_alpha() if len(rgba) == 3 or gc.get_forced_alpha() else rgba[3]
            lines.append((s, x, y, prop.copy(), angle % 360 == 90, rgba[:3], float(alpha)))

        def extent(s, prop, ismath):  # matplotlib lays the text out with the glyphs' own sizes
            return agg_extent(s, prop, ismath) if ismath or not s else font_of(prop).extent(s)

        renderer.draw_text, renderer.get_text_width_height_descent = record, extent
        try:
            canvas.draw()
        finally:  # the renderer measures and draws its own text again (blitting after this)
            del renderer.draw_text, renderer.get_text_width_height_descent
        pixels = np.array(renderer.buffer_rgba())
        pil.start(pixels)
        for s, x, y, prop, turned, rgb, alpha in lines:
            pil.glyphs(s, x, y, font_of(prop), rgb, alpha, turned)
        return pixels
    finally:
        fig.dpi = old_dpi
