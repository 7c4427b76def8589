"""Text of a rendered matplotlib figure drawn with Pillow: the fast path of the gallery's cards.

Agg's text path costs about 1-2 ms per text; Pillow with the same font
(matplotlib's DejaVu Sans) costs a few hundredths of that. The map card
(:class:`oipscope.card.MapCard`) renders its changing artists with Agg and
then writes its texts, tick labels included, with :class:`PilText`.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

from matplotlib.figure import Figure

__all__ = ["PilText", "tick_strings"]

_BOLD = ("bold", "heavy", "extra bold", "black", "semibold", "demibold")
_TICK_OFFSET_PT = 7.0  # Agg: tick length 3.5 pt + pad 3.5 pt


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


class PilText:
    """Draws the text of matplotlib ``Text`` artists with Pillow onto a rendered figure.

    Handles what the card uses: unrotated, single- or multi-line, ha
    left/center/right, va top/bottom/center/baseline, normal or bold, any
    transform. Call :meth:`start` with each new image, then draw.
    """

    def __init__(self, fig: Figure):
        self.fig = fig
        self.fonts: dict[tuple[bool, float], Any] = {}
        self.draw = None
        self.height = 0

    def start(self, image) -> "PilText":
        """Draw onto the PIL ``image`` (the figure rendered at its dpi) from now on."""
        from PIL import ImageDraw

        self.draw = ImageDraw.Draw(image)
        self.height = image.size[1]
        return self

    def font(self, bold: bool, size_px: float):
        """DejaVu Sans at ``size_px`` (to a quarter pixel), loaded once."""
        key = (bold, round(size_px * 4) / 4)
        if key not in self.fonts:
            from matplotlib.font_manager import FontProperties, findfont
            from PIL import ImageFont

            path = findfont(FontProperties(family="DejaVu Sans", weight="bold" if bold else "normal"))
            self.fonts[key] = ImageFont.truetype(path, size=max(1, int(round(key[1]))))
        return self.fonts[key]

    def text(self, artist) -> None:
        """A matplotlib ``Text`` where Agg would draw it (nothing if hidden or empty)."""
        if not artist.get_visible() or not artist.get_text():
            return
        px, py = artist.get_transform().transform(artist.get_unitless_position())
        weight = artist.get_fontweight()
        bold = weight in _BOLD or (isinstance(weight, (int, float)) and weight >= 600)
        self.raw(artist.get_text(), px, py, artist.get_fontsize(), artist.get_ha(), artist.get_va(), bold,
                 artist.get_color(), _linespacing(artist))

    def raw(self, text: str, px: float, py: float, size_pt: float, ha: str, va: str, bold: bool = False,
            color="black", linespacing: float = 1.2) -> None:
        """``text`` anchored at display pixel (px, py), counted from the bottom as matplotlib does."""
        from matplotlib.colors import to_rgba

        size = size_pt * self.fig.dpi / 72.0
        font = self.font(bold, size)
        fill = tuple(int(round(c * 255)) for c in to_rgba(color)[:3])
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
        for i, line in enumerate(lines):
            if line:
                self.draw.text((px, first + i * step), line, font=font, fill=fill, anchor=h + v)

    def tick_labels(self, ax, size_pt: float = 6) -> None:
        """The major tick labels of ``ax``'s x and y axes, placed as Agg would place them."""
        off = _TICK_OFFSET_PT * self.fig.dpi / 72.0
        x0, x1 = ax.get_xlim()
        y0, y1 = ax.get_ylim()
        for axis, lo, hi in ((ax.xaxis, x0, x1), (ax.yaxis, y0, y1)):
            locs = [v for v in axis.get_majorticklocs() if min(lo, hi) - 1e-12 <= v <= max(lo, hi) + 1e-12]
            for v, label in zip(locs, tick_strings(locs)):
                if axis is ax.xaxis:
                    px, py = ax.transData.transform((v, y0))
                    self.raw(label, px, py - off, size_pt, "center", "top")
                else:
                    px, py = ax.transData.transform((x0, v))
                    self.raw(label, px - off, py, size_pt, "right", "center")
