"""Painting straight into a rendered figure's pixels: images into boxes, anti-aliased boxes and frames.

The gallery's map cards (:class:`oipscope.figures.card.MapCard`) draw what all maps
share once with matplotlib and what changes per map here, a few numpy slices
instead of a matplotlib redraw. Boxes are ``(x0, y0, x1, y1)`` in pixels of
the buffer, y counted down from its top edge (:func:`pixel_box`); a pixel
``(row, col)`` covers ``[col, col + 1) × [row, row + 1)``. Buffers are uint8
(H, W, 3 or 4) arrays, changed in place; pasted images are opaque, blends
leave the alpha channel alone.

Example:
    >>> buffer = np.full((4, 6, 3), 255, np.uint8)
    >>> paste(buffer, np.array([[[0, 0, 0], [255, 0, 0]]], np.uint8), (1.0, 1.0, 5.0, 3.0))
    >>> buffer[1, :, 0].tolist()
    [255, 0, 0, 255, 255, 255]
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["Box", "pixel_box", "snap", "snap_box", "paste", "blend_box", "blend_mask", "frame"]

Box = tuple[float, float, float, float]
"""(x0, y0, x1, y1) in buffer pixels, y down."""


def pixel_box(bbox, height: int) -> Box:
    """A matplotlib display ``Bbox`` (y up) as a box in a buffer ``height`` rows high (y down)."""
    return float(bbox.xmin), float(height - bbox.ymax), float(bbox.xmax), float(height - bbox.ymin)


def snap(value: float, width: float = 0.0) -> float:
    """Where Agg puts a rectilinear path's vertex at ``value`` (pixels, y down) for a stroke ``width`` pixels wide.

    Whole pixels, or pixel centres for strokes an odd number of pixels wide, so that lines come out crisp.
    """
    return math.floor(value + 0.5) + (0.5 if round(width) % 2 else 0.0)


def snap_box(box: Box, width: float = 0.0) -> Box:
    """The box's corners as Agg snaps a rectangle with a stroke ``width`` pixels wide (:func:`snap`)."""
    x0, y0, x1, y1 = (snap(v, width) for v in box)
    return x0, y0, x1, y1


def _runs(lo: float, hi: float, n_source: int, limit: int) -> tuple[int, int, np.ndarray]:
    """The pixels whose centres lie in [lo, hi) (clipped to ``0 .. limit``), and how many show each source pixel."""
    start, stop = max(math.ceil(lo - 0.5), 0), min(math.ceil(hi - 0.5), limit)
    # the source pixel under each centre; a centre on a boundary shows the pixel before it, as Agg does
    source = np.ceil((np.arange(start, max(stop, start)) + 0.5 - lo) * (n_source / (hi - lo))).astype(np.intp) - 1
    return start, max(stop, start), np.bincount(np.clip(source, 0, n_source - 1), minlength=n_source)


def paste(buffer: np.ndarray, image: np.ndarray, box: Box) -> None:
    """Draw the uint8 RGB ``image`` (opaque) stretched over ``box`` by nearest neighbour, as ``imshow`` does.

    A pixel is painted if its centre lies in the box; it shows the image pixel under its centre.
    """
    x0, y0, x1, y1 = box
    if x1 <= x0 or y1 <= y0:
        return
    r0, r1, rows = _runs(y0, y1, image.shape[0], buffer.shape[0])
    c0, c1, cols = _runs(x0, x1, image.shape[1], buffer.shape[1])
    if buffer.shape[-1] == 4 and buffer.flags.c_contiguous:  # whole RGBA pixels as uint32: 4x faster
        rgba = np.full(image.shape[:2] + (4,), 255, np.uint8)
        rgba[..., :3] = image[..., :3]
        target, image = buffer.view(np.uint32)[..., 0], rgba.view(np.uint32)[..., 0]
    else:
        target, image = buffer[..., :3], image[..., :3]
    target[r0:r1, c0:c1] = np.repeat(np.repeat(image, rows, axis=0), cols, axis=1)


def _coverage(lo: float, hi: float, start: int, stop: int) -> np.ndarray:
    """How much of each pixel ``start .. stop - 1`` the interval [lo, hi] covers (0 to 1)."""
    edges = np.arange(start, stop, dtype=np.float64)
    return np.clip(np.minimum(edges + 1, hi) - np.maximum(edges, lo), 0.0, 1.0)


def _window(buffer: np.ndarray, box: Box) -> tuple[int, int, int, int] | None:
    h, w = buffer.shape[:2]
    x0, y0, x1, y1 = box
    ix0, iy0 = max(math.floor(x0), 0), max(math.floor(y0), 0)
    ix1, iy1 = min(math.ceil(x1), w), min(math.ceil(y1), h)
    return (ix0, iy0, ix1, iy1) if ix1 > ix0 and iy1 > iy0 else None


def _blend(buffer: np.ndarray, window: tuple[int, int, int, int], cover: np.ndarray, colour) -> None:
    ix0, iy0, ix1, iy1 = window
    region = buffer[iy0:iy1, ix0:ix1, :3]
    rgb = np.asarray(colour[:3], np.float32) * 255.0
    old = region.astype(np.float32)
    region[...] = (old + (rgb - old) * cover[..., None].astype(np.float32) + 0.5).astype(np.uint8)


def blend_mask(buffer: np.ndarray, mask: np.ndarray, x0: int, y0: int, colour, alpha: float = 1.0) -> None:
    """Paint ``colour`` (RGB in [0, 1]) through a uint8 coverage ``mask`` whose top left is pixel (x0, y0)."""
    h, w = buffer.shape[:2]
    window = (max(x0, 0), max(y0, 0), min(x0 + mask.shape[1], w), min(y0 + mask.shape[0], h))
    if window[2] > window[0] and window[3] > window[1]:
        cover = mask[window[1] - y0:window[3] - y0, window[0] - x0:window[2] - x0] * np.float32(alpha / 255.0)
        _blend(buffer, window, cover, colour)


def _clipped(box: Box, clip: Box | None) -> Box:
    """The part of ``box`` inside ``clip`` (all of it without a clip)."""
    if clip is None:
        return box
    return (max(box[0], clip[0]), max(box[1], clip[1]), min(box[2], clip[2]), min(box[3], clip[3]))


def blend_box(buffer: np.ndarray, box: Box, colour, alpha: float = 1.0, clip: Box | None = None) -> None:
    """Paint ``box`` (within ``clip``) in ``colour`` (RGB in [0, 1]) with opacity ``alpha``.

    Pixels along the edges get the colour in proportion to the share of them the box covers.
    """
    box = _clipped(box, clip)
    window = _window(buffer, box)
    if window is None:
        return
    ix0, iy0, ix1, iy1 = window
    x0, y0, x1, y1 = box
    cover = np.outer(_coverage(y0, y1, iy0, iy1), _coverage(x0, x1, ix0, ix1)) * alpha
    _blend(buffer, window, cover, colour)


def frame(buffer: np.ndarray, box: Box, width: float, colour, alpha: float = 1.0, clip: Box | None = None) -> None:
    """The outline of ``box`` (within ``clip``): a line ``width`` pixels wide centred on its edges."""
    x0, y0, x1, y1 = box
    half = width / 2
    outer = _clipped((x0 - half, y0 - half, x1 + half, y1 + half), clip)
    window = _window(buffer, outer)
    if window is None:
        return
    ix0, iy0, ix1, iy1 = window
    cover = np.outer(_coverage(outer[1], outer[3], iy0, iy1), _coverage(outer[0], outer[2], ix0, ix1))
    if x1 - x0 > width and y1 - y0 > width:
        inner = np.outer(_coverage(y0 + half, y1 - half, iy0, iy1), _coverage(x0 + half, x1 - half, ix0, ix1))
        cover = np.clip(cover - inner, 0.0, 1.0)
    _blend(buffer, window, cover * alpha, colour)
