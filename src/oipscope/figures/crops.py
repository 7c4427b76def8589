"""Dataset examples cropped to where the map fires: the receptive field of the strongest unit.

A unit of a deep layer of a photo CNN sees a patch of its image (about 100 px of
224 for a VGG16 ``block4`` map), so its top images are shown as that patch: the
crop of the image under the receptive field
(:class:`~oipscope.model.receptive_field.ReceptiveField`) of the strongest unit,
resized to the tile. The crop is centred on the field; where the field reaches
past the image's border the crop is padded with the image's own mean colour, so
the unit stays in the middle of its tile. A crop is at least :data:`MIN_CROP`
image pixels wide (a 3 px field in a 3 px crop shows nothing; the field is then
outlined inside the wider crop), and where it would cover :data:`WHOLE_SHARE`
of the image's side or more, the whole image is shown instead, as for the
series' 28 px MNIST CNN.

Example:
    >>> from oipscope.model.receptive_field import ReceptiveField
    >>> field = ReceptiveField((100, 100), (16, 16), (-42, -42), (224, 224))
    >>> crop_window(field, (7, 7), (224, 224))
    (70, 70, 100, 100)
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "MIN_CROP",
    "WHOLE_SHARE",
    "crop_image",
    "crop_window",
    "crops_shown",
    "example_crop",
    "outlined_strip",
    "window_box",
]

WHOLE_SHARE = 0.7
"""A crop covering this share of the image's height or width (or more) shows the whole image instead."""

MIN_CROP = 32
"""Smallest side of a crop in image pixels: a smaller field is outlined inside a crop this wide."""

Window = tuple[int, int, int, int]
"""(top, left, height, width) of a crop in image pixels; it may reach past the image."""


def _field_in_image(field, position, image_hw) -> tuple[float, float, float, float]:
    """(top, left, bottom, right) of the unit's field in the pixels of an image of ``image_hw``."""
    top, left, bottom, right = field.box(int(position[0]), int(position[1]))
    sy, sx = image_hw[0] / field.input_hw[0], image_hw[1] / field.input_hw[1]
    return top * sy, left * sx, bottom * sy, right * sx


def crop_window(field, position, image_hw: tuple[int, int]) -> Window | None:
    """The crop that shows unit ``position`` (row, col) of a map with receptive ``field`` on an image.

    Args:
        field: the layer's receptive field, or None (the whole image).
        position: (row, col) of the unit on the map.
        image_hw: (height, width) of the shown image (the field is scaled from the model's input size).

    Returns:
        (top, left, height, width) in image pixels, centred on the field and at least
        :data:`MIN_CROP` wide; None when the whole image is to be shown (no field, or a
        crop of :data:`WHOLE_SHARE` of the image's side or more).
    """
    if field is None:
        return None
    box = _field_in_image(field, position, image_hw)
    window = []
    for axis in range(2):
        lo, hi = box[axis], box[axis + 2]
        side = max(round(hi - lo), MIN_CROP)
        if side >= WHOLE_SHARE * image_hw[axis]:
            return None
        window.append((round((lo + hi) / 2 - side / 2), side))
    (top, height), (left, width) = window
    return top, left, height, width


def crops_shown(field, image_hw: tuple[int, int] | None) -> bool:
    """Whether examples of a layer with receptive ``field`` on images of ``image_hw`` are shown as crops
    (the choice depends on the field's size, not on where the unit lies)."""
    return field is not None and image_hw is not None and crop_window(field, (0, 0), tuple(image_hw)) is not None


def crop_image(image, window: Window, out_hw: tuple[int, int]) -> np.ndarray:
    """The ``window`` of ``image`` resized to ``out_hw`` by nearest neighbour; outside the image its mean.

    Args:
        image: (H, W) or (H, W, C) pixels of any dtype (kept).
        window: (top, left, height, width) in image pixels (:func:`crop_window`).
        out_hw: (height, width) of the tile.
    """
    image = np.asarray(image)
    top, left, height, width = window
    rows = top + ((np.arange(out_hw[0]) + 0.5) * height / out_hw[0]).astype(np.intp)
    cols = left + ((np.arange(out_hw[1]) + 0.5) * width / out_hw[1]).astype(np.intp)
    inside = ((rows >= 0) & (rows < image.shape[0]))[:, None] & ((cols >= 0) & (cols < image.shape[1]))[None, :]
    out = image[np.clip(rows, 0, image.shape[0] - 1)][:, np.clip(cols, 0, image.shape[1] - 1)]
    if not inside.all():
        values = image.astype(np.float64)
        finite = np.where(np.isfinite(values), values, np.nan)
        mean = np.nanmean(finite.reshape(-1, *image.shape[2:]), axis=0)
        if np.issubdtype(image.dtype, np.integer):
            mean = np.round(mean)
        out = out.copy()
        out[~inside] = np.asarray(mean).astype(image.dtype)
    return out


def window_box(window: Window) -> tuple[float, float, float, float]:
    """A window as an imshow rectangle (x, y, width, height) on its image (pixel centres at integers)."""
    top, left, height, width = window
    return left - 0.5, top - 0.5, float(width), float(height)


def example_crop(image, field, position, out_hw: tuple[int, int] | None = None):
    """A dataset example as its tile shows it: the crop under the strongest unit's field, or None.

    Args:
        image: the dataset image, (H, W) or (H, W, C).
        field: the layer's :class:`~oipscope.model.receptive_field.ReceptiveField`, or None.
        position: (row, col) of the strongest unit.
        out_hw: the tile's (height, width); default the image's.

    Returns:
        None where the whole image is shown (see :func:`crop_window`); else
        ``(crop, mark)``: the crop resized to ``out_hw``, and the field's imshow rectangle
        (x, y, width, height) inside it where the crop is wider than the field (None
        where the field fills the crop).
    """
    image = np.asarray(image)
    image_hw = tuple(image.shape[:2])
    out_hw = image_hw if out_hw is None else tuple(out_hw)
    window = crop_window(field, position, image_hw)
    if window is None:
        return None
    top, left, bottom, right = _field_in_image(field, position, image_hw)
    sy, sx = out_hw[0] / window[2], out_hw[1] / window[3]
    y0, x0 = (top - window[0]) * sy, (left - window[1]) * sx
    h, w = (bottom - top) * sy, (right - left) * sx
    fills = y0 <= 0.5 and x0 <= 0.5 and y0 + h >= out_hw[0] - 0.5 and x0 + w >= out_hw[1] - 0.5
    mark = None if fills else (x0 - 0.5, y0 - 0.5, w, h)
    return crop_image(image, window, out_hw), mark


def outlined_strip(tiles: list[np.ndarray], windows: list, colour, gap: int, width: float = 2.0) -> np.ndarray:
    """Whole example images (RGB in [0, 1], one shape) in a row, each crop ``window`` outlined (None: none).

    Returns:
        uint8 RGB pixels, for the map pages beside the cards' crops.
    """
    from matplotlib.colors import to_rgb

    from .paint import frame
    from .tiles import tile_images, to_uint8

    strip = to_uint8(tile_images(tiles, ncols=len(tiles), gap=gap))
    h, w = tiles[0].shape[:2]
    half = width / 2
    for j, window in enumerate(windows):
        if window is None:
            continue
        top, left, height, wide = window
        x0 = j * (w + gap)
        frame(strip, (x0 + left + half, top + half, x0 + left + wide - half, top + height - half), width,
              to_rgb(colour), clip=(x0, 0, x0 + w, h))
    return strip
