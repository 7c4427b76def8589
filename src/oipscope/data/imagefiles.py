"""Image files decoded within a pixel limit: a decompression bomb is refused before it is decoded.

A PNG of 100 000 x 100 000 single-colour pixels is about 10 MB on disk and 10 GB in memory.
Every image file oipscope reads is opened here: the header is read first, and an image of more
than :func:`max_image_pixels` pixels (50 megapixels, or ``$OIPSCOPE_MAX_IMAGE_PIXELS``) is refused
with a :class:`~oipscope.errors.DataError` that names the file, its size and the limit. A JPEG
over the limit is decoded at 1/2, 1/4 or 1/8 scale (Pillow's ``draft``) when the caller needs
fewer pixels, so a large photo for a small model input is read, not refused::

    with open_image_file("photo.jpg", needed=(28, 28)) as image:
        pixels = image.convert("L")
"""

from __future__ import annotations

import os
import re
import threading
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from ..errors import ConfigError, DataError

if TYPE_CHECKING:
    from PIL import Image

__all__ = ["MAX_IMAGE_PIXELS", "PIXEL_LIMIT_ENV", "max_image_pixels", "open_image_file", "image_size"]

MAX_IMAGE_PIXELS = 50_000_000
"""Pixels an image file may have (width x height) unless ``$OIPSCOPE_MAX_IMAGE_PIXELS`` says otherwise."""
PIXEL_LIMIT_ENV = "OIPSCOPE_MAX_IMAGE_PIXELS"

_WARNINGS_LOCK = threading.Lock()  # catch_warnings swaps process-wide state: one image header at a time


def max_image_pixels() -> int:
    """The pixel limit: ``$OIPSCOPE_MAX_IMAGE_PIXELS`` (a whole number >= 1) or :data:`MAX_IMAGE_PIXELS`.

    Raises:
        ConfigError: the variable is set to anything but a whole number >= 1.
    """
    text = os.environ.get(PIXEL_LIMIT_ENV, "").strip()
    if not text:
        return MAX_IMAGE_PIXELS
    try:
        limit = int(text.replace("_", ""))
    except ValueError:
        limit = 0
    if limit < 1:
        raise ConfigError(f"{PIXEL_LIMIT_ENV} must be a whole number of pixels >= 1 (e.g. 100000000), "
                          f"got {text!r}")
    return limit


@contextmanager
def open_image_file(path: str | os.PathLike, *, needed: tuple[int, int] | None = None) -> Iterator[Image.Image]:
    """Open an image file whose size is within :func:`max_image_pixels`; pixels are decoded on ``load()``.

    Args:
        path: the image file.
        needed: (width, height) the caller resizes the image to, if smaller than the image;
            lets a JPEG over the limit be decoded at a reduced scale.

    Raises:
        DataError: the file is missing, not an image Pillow reads, or over the pixel limit.
    """
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    limit = max_image_pixels()
    if not path.is_file():
        raise DataError(f"image file not found: {path}")
    try:
        with _WARNINGS_LOCK, warnings.catch_warnings():  # Pillow's own, higher limit would only warn
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(path)
    except Image.DecompressionBombError as exc:  # over twice Pillow's limit: refused before its size is known
        found = re.search(r"\((\d+) pixels\)", str(exc))
        raise DataError(_too_large(path, int(found.group(1)) if found else None, None, limit)) from None
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise DataError(_unreadable(path, exc)) from exc
    with image:
        width, height = image.size
        if width * height > limit and needed is not None and image.format == "JPEG":
            image.draft(image.mode, needed)  # decode at 1/2, 1/4 or 1/8 scale, still >= needed
        if image.size[0] * image.size[1] > limit:
            raise DataError(_too_large(path, width * height, (width, height), limit))
        try:
            yield image
        except Image.DecompressionBombError as exc:  # a GIF frame larger than its screen
            raise DataError(_too_large(path, None, (width, height), limit)) from exc
        except (OSError, ValueError, SyntaxError) as exc:
            raise DataError(_unreadable(path, exc)) from exc


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """(width, height) of an image file, from its header (checked like :func:`open_image_file`)."""
    with open_image_file(path) as image:
        return image.size


def _unreadable(path: Path, exc: BaseException) -> str:
    return f"{path} is not an image file Pillow can read (PNG, JPEG, ...): {exc}"


def _too_large(path: Path, pixels: int | None, size: tuple[int, int] | None, limit: int) -> str:
    amount = f"{pixels:,} pixels" if pixels is not None else "more pixels than Pillow opens"
    shape = f" ({size[0]} x {size[1]})" if size is not None else ""
    return (f"{path} has {amount}{shape}, over the limit of {limit:,} pixels per image "
            f"(a decompression bomb?); give a smaller image, or raise the limit with {PIXEL_LIMIT_ENV}")
