"""The gallery's file writer: every folder resolved once, PNG files encoded beside the drawing."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import ConfigError
from ..figures.png import encode_png
from ..figures.text import figure_pixels
from ..figures.tiles import to_uint8
from ..files import atomic_write

__all__ = ["Writer", "png_image", "png_figure"]


class Writer:
    """Writes files atomically, only below ``root``.

    Each folder is resolved (symbolic links followed) once: resolving every one of a
    gallery's ~700 paths costs a stat per path component, about a second.
    """

    def __init__(self, root: Path):
        self.root = root.resolve()
        self.count = 0
        self._folders: dict[tuple[str, ...], Path] = {}

    def path(self, *parts: str) -> Path:
        *folder, name = parts
        if name in ("", ".", "..") or "/" in name or os.sep in name:
            return self._inside(self.root.joinpath(*parts).resolve())
        key = tuple(folder)
        if key not in self._folders:
            self._folders[key] = self._inside(self.root.joinpath(*folder).resolve())
        return self._folders[key] / name  # a plain name in a folder inside the gallery

    def _inside(self, path: Path) -> Path:
        if path != self.root and self.root not in path.parents:
            raise ConfigError(f"refusing to write {path}: outside the gallery folder {self.root}")
        return path

    def write(self, rel: str, data: bytes | str) -> Path:
        path = self.path(*rel.split("/"))
        atomic_write(path, data.encode("utf-8") if isinstance(data, str) else data)
        self.count += 1
        return path


def png_image(rgb: np.ndarray) -> bytes:
    """An RGB float array in [0, 1] as PNG bytes (no matplotlib figure: fast)."""
    return encode_png(to_uint8(rgb), level=6)


def png_figure(fig, dpi: float) -> bytes:
    """A figure as PNG bytes, its text drawn with Pillow's glyphs (:func:`~oipscope.figures.text.figure_pixels`)."""
    pixels = figure_pixels(fig, dpi)
    fig.clear()
    return encode_png(pixels[..., :3], level=3)
