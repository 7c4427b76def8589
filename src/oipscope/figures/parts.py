"""Pieces shared by the notebook figures (:mod:`oipscope.figures.plot`) and the map card (:mod:`oipscope.figures.card`).

The figure class that shows itself in Jupyter, bare axes and colour bars, the
look of marked (silent or non-finite) OIPs, and where a dataset example's
strongest unit is marked.
"""

from __future__ import annotations

from typing import Any

from matplotlib.figure import Figure

from ..errors import ConfigError

__all__ = [
    "NotebookFigure",
    "HATCH_FACE",
    "HATCH_EDGE",
    "MARK_COLOUR",
    "bare",
    "colorbar",
    "dataset_item",
    "map_grid",
    "unit_box",
]

HATCH_FACE = "#d4d4d4"
"""Fill of the hatched panel that stands for a silent or non-finite OIP."""

HATCH_EDGE = "#8a8a8a"
"""Hatch lines and frame of that panel."""

MARK_COLOUR = "#ff3b30"
"""The strongest-unit rectangle: visible on every viridis colour."""


class NotebookFigure(Figure):
    """A :class:`~matplotlib.figure.Figure` that shows itself in Jupyter as PNG.

    The figures here are not registered with pyplot, so Jupyter's inline
    backend never sees them unless pyplot was imported; this makes them show
    up as the value of a cell either way.
    """

    def _repr_png_(self) -> bytes:
        import io

        buf = io.BytesIO()
        self.savefig(buf, format="png", bbox_inches="tight")
        return buf.getvalue()


def bare(ax) -> None:
    """Remove the ticks of an image panel."""
    ax.set_xticks([])
    ax.set_yticks([])


def colorbar(fig: Figure, mappable, rect: tuple[float, float, float, float], label: str):
    """A colour bar for ``mappable`` in its own axes at ``rect`` (figure fractions), labelled small."""
    cax = fig.add_axes(rect)
    bar = fig.colorbar(mappable, cax=cax)
    bar.set_label(label, fontsize=8)
    bar.ax.tick_params(labelsize=7)
    return bar


def dataset_item(container, index: int, what: str) -> Any:
    """``container[index]`` (an array or a mapping), or an error that says which images to pass."""
    try:
        return container[int(index)]
    except (IndexError, KeyError):
        raise ConfigError(
            f"no {what} for dataset index {int(index)}: pass the same images/labels the examples were computed on"
        ) from None


def map_grid(examples, map_shape) -> tuple[int, int] | None:
    """The (rows, cols) of the map grid: from ``map_shape`` (or a layer output shape), else the examples'."""
    shape = map_shape if map_shape is not None else getattr(examples, "map_shape", None)
    if shape is None:
        return None
    shape = tuple(int(s) for s in tuple(shape)[-3:-1]) if len(tuple(shape)) >= 3 else tuple(int(s) for s in shape)
    if len(shape) != 2 or min(shape) < 1:
        raise ConfigError(f"map_shape must be (rows, cols) of the map grid, got {map_shape!r}")
    return shape


def unit_box(grid: tuple[int, int] | None, image_hw: tuple[int, int], position,
             value: float) -> tuple[float, float, float, float] | None:
    """Where a dataset example's strongest unit lies on its image: (x, y, width, height) in imshow pixels.

    The unit at (row, col) of the map ``grid`` covers (H / rows, W / cols) image
    pixels. None when there is nothing to mark: no grid known, a 1×1 map, or the
    map does not fire on the image (``value <= 0``).
    """
    if grid is None or grid == (1, 1) or not float(value) > 0:
        return None
    h, w = image_hw
    sy, sx = h / grid[0], w / grid[1]
    return int(position[1]) * sx - 0.5, int(position[0]) * sy - 0.5, sx, sy
