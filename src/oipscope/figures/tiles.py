"""Arrays as display tiles: one colormap, robust contrast, pixel units, and tiling.

The notebook figures, the map card and the gallery all turn images and maps
into RGB tiles here, so an image looks the same wherever it is shown. Pure
numpy plus matplotlib's colormap table: no figures.

Example:
    >>> maps = np.random.rand(6, 5, 5)
    >>> tile_images([colorize(m, 0.0, 1.0) for m in maps], ncols=3, gap=1).shape
    (11, 17, 3)
"""

from __future__ import annotations

import functools
import math
from typing import Any, Iterable, Sequence

import numpy as np

from ..errors import ConfigError

__all__ = [
    "CMAP",
    "ROBUST",
    "CONTRASTS",
    "check_contrast",
    "pixel_images",
    "display_image",
    "display_limits",
    "PIXEL_LIMITS",
    "rgb_limits",
    "is_rgb",
    "scale_caption",
    "colorize",
    "colormap_table",
    "to_uint8",
    "tile_images",
]

CMAP = "viridis"
"""The colormap of every single-channel image and map."""

ROBUST = 1.0
"""Per-tile contrast: a tile's colour scale runs from this percentile to ``100 - ROBUST``."""

CONTRASTS = ("tile", "shared")
"""``"tile"``: each image its own robust scale (default); ``"shared"``: one scale for all."""


PIXEL_LIMITS = (0.0, 255.0)
"""The scale of RGB images in pixel units: shown as they are, 0 black and 255 full colour."""


def rgb_limits(encoding=None, shared: tuple[float, float] | None = None) -> tuple[float, float] | None:
    """The scale of RGB OIPs decoded with ``encoding``: :data:`PIXEL_LIMITS` when they are in pixel units,
    else ``shared`` (one scale for all tiles) or None (each tile stretched on its own).

    A per-tile stretch helps single-channel maps (viridis shows the pattern whatever its range) but
    exaggerates the colours of an RGB picture, so RGB OIPs in pixel units are shown unstretched.
    """
    if encoding is not None and getattr(encoding, "display_unit", "") == "pixel value":
        return PIXEL_LIMITS
    return shared


def is_rgb(image) -> bool:
    """Whether ``image`` is shown as an RGB picture (3 or more channels), not through the colormap."""
    shape = np.shape(image)
    return len(shape) == 3 and shape[-1] >= 3


def scale_caption(limits: tuple[float, float] | None) -> str:
    """What the colours of RGB tiles shown on ``limits`` mean, for a figure's caption."""
    if limits is None:
        return "contrast stretched per tile"
    if tuple(float(v) for v in limits) == PIXEL_LIMITS:
        return "pixel units 0–255"
    return f"one scale for all tiles ({limits[0]:.3g} to {limits[1]:.3g})"


def check_contrast(contrast: str) -> None:
    """Raise :class:`ConfigError` unless ``contrast`` is one of :data:`CONTRASTS`."""
    if contrast not in CONTRASTS:
        raise ConfigError(f"contrast must be one of {', '.join(CONTRASTS)}, got {contrast!r}")


def pixel_images(images, encoding=None) -> list[np.ndarray]:
    """Images in the model's input encoding → pixel units for display (``encoding.decode``).

    Without an encoding (or for per-image standardization) the images stay as they are.
    """
    if encoding is None:
        return [np.asarray(image, np.float32) for image in images]
    return [encoding.decode(image) for image in images]


def display_image(image, rgb_limits: tuple[float, float] | None = None) -> tuple[np.ndarray, bool]:
    """An image ready for ``imshow``: (H, W) for one channel, or (H, W, 3) RGB in [0, 1].

    Args:
        image: (H, W), (H, W, 1) or (H, W, 3+) values.
        rgb_limits: the (low, high) an RGB image is scaled from (e.g. :data:`PIXEL_LIMITS`);
            default its own ``ROBUST`` and ``100 - ROBUST`` percentiles (per-tile stretch).

    Returns:
        (array, is_rgb). Single-channel images keep their values (colour-mapped
        with :data:`CMAP`); RGB images are scaled to [0, 1].
    """
    a = np.asarray(image, dtype=np.float32)
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if a.ndim == 2:
        return a, False
    if a.ndim != 3 or a.shape[-1] < 3:
        raise ConfigError(f"cannot display an image of shape {a.shape}; expected (H, W), (H, W, 1) or (H, W, 3)")
    a = a[..., :3]
    finite = np.isfinite(a)
    if not finite.any():
        return np.zeros(a.shape, np.float32), True
    lo, hi = display_limits([a], robust=ROBUST) if rgb_limits is None else (float(v) for v in rgb_limits)
    return np.clip(np.nan_to_num((a - lo) / ((hi - lo) or 1.0)), 0.0, 1.0), True


def display_limits(images: Iterable[Any], robust: float | None = None) -> tuple[float, float]:
    """Common (vmin, vmax) over the finite values of several images.

    With ``robust`` (a percentage, e.g. 0.5) the limits are the ``robust`` and
    ``100 - robust`` percentiles instead of min and max, so one outlier image
    does not wash out the others.
    """
    lo, hi = math.inf, -math.inf
    if robust is not None:
        values = [np.asarray(image, dtype=np.float32).reshape(-1) for image in images]
        values = np.concatenate(values) if values else np.zeros(0, np.float32)
        values = values[np.isfinite(values)]
        if values.size:
            lo, hi = (float(v) for v in np.percentile(values, [robust, 100.0 - robust]))
    else:
        for image in images:
            a = np.asarray(image, dtype=np.float32)
            finite = a[np.isfinite(a)]
            if finite.size:
                lo, hi = min(lo, float(finite.min())), max(hi, float(finite.max()))
    if not math.isfinite(lo):
        return 0.0, 1.0
    if hi <= lo:
        hi = lo + 1.0
    return lo, hi


def colorize(image, vmin: float | None = None, vmax: float | None = None,
             rgb_limits: tuple[float, float] | None = None) -> np.ndarray:
    """An image as RGB float32 in [0, 1]: one channel through :data:`CMAP` on [vmin, vmax]
    (default: the image's own robust limits; non-finite pixels grey), RGB scaled from
    ``rgb_limits`` (default its own robust limits, see :func:`display_image`).

    The colours are the colormap's own table entries, looked up as matplotlib does
    (``Normalize(vmin, vmax, clip=True)`` then ``Colormap``), without its per-call overhead.
    """
    a, rgb = display_image(image, rgb_limits)
    if rgb:
        return np.asarray(a, np.float32)
    if vmin is None or vmax is None:
        vmin, vmax = display_limits([a], robust=ROBUST)
    table = colormap_table(CMAP)
    bad = ~np.isfinite(a)
    vmin, vmax = float(vmin), float(vmax)
    if vmax <= vmin:
        out = table[np.zeros(a.shape, np.intp)]
    else:  # in float64 from the clipped values, as Normalize then Colormap compute it (same bins)
        scaled = np.minimum(np.maximum(np.where(bad, vmin, a).astype(np.float64), vmin), vmax)
        out = table[np.minimum(((scaled - vmin) / (vmax - vmin) * len(table)).astype(np.intp), len(table) - 1)]
    out[bad] = 0.6
    return out


@functools.lru_cache(maxsize=8)
def colormap_table(name: str) -> np.ndarray:
    """The RGB entries of colormap ``name`` as a read-only (N, 3) float32 array (N = 256 for viridis)."""
    import matplotlib

    cmap = matplotlib.colormaps[name]
    table = np.asarray(cmap(np.arange(cmap.N))[:, :3], np.float32)
    table.flags.writeable = False
    return table


def to_uint8(rgb: np.ndarray) -> np.ndarray:
    """Colours in [0, 1] as uint8 levels (rounded; values outside [0, 1] clipped)."""
    return np.round(np.clip(np.asarray(rgb, np.float32), 0.0, 1.0) * 255).astype(np.uint8)


def tile_images(tiles: Sequence[np.ndarray], ncols: int, gap: int | tuple[int, int] = 1,
                fill: float = 1.0) -> np.ndarray:
    """Tiles of one shape in rows of ``ncols``, ``gap`` pixels apart, as one float32 array.

    Args:
        tiles: arrays of one shape, (h, w) or (h, w, c), placed row by row.
        ncols: tiles per row; cells after the last tile stay ``fill``.
        gap: pixels between neighbouring tiles, or (between rows, between columns).
        fill: the value of gaps and empty cells (1.0: white for RGB tiles).

    Returns:
        (rows * h + (rows - 1) * row_gap, ncols * w + (ncols - 1) * col_gap, ...),
        with ``rows = ceil(len(tiles) / ncols)``.

    Example:
        >>> tile_images([np.zeros((2, 2))] * 3, ncols=2, gap=1).shape
        (5, 5)
    """
    tiles = [np.asarray(tile) for tile in tiles]
    if not tiles:
        raise ConfigError("no tiles to lay out; give at least one image")
    if int(ncols) < 1:
        raise ConfigError(f"ncols must be >= 1, got {ncols}")
    shapes = {tile.shape for tile in tiles}
    if len(shapes) > 1:
        raise ConfigError(f"tiles must share one shape, got {sorted(shapes)}")
    ncols = int(ncols)
    row_gap, col_gap = (gap, gap) if isinstance(gap, (int, np.integer)) else gap
    h, w, *rest = tiles[0].shape
    nrows = math.ceil(len(tiles) / ncols)
    out = np.full((nrows * h + (nrows - 1) * row_gap, ncols * w + (ncols - 1) * col_gap, *rest), fill, np.float32)
    for k, tile in enumerate(tiles):
        r, c = divmod(k, ncols)
        y, x = r * (h + row_gap), c * (w + col_gap)
        out[y:y + h, x:x + w] = tile
    return out
