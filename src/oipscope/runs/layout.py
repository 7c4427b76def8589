"""Where a run keeps its files: the one definition of the folder layouts.

A layer run (``oipscope find``, :func:`oipscope.runs.jobs.run_layer`)::

    <out>/.oipscope.lock                who writes here now (:mod:`oipscope.runs.lock`)
    <out>/run.json                      the settings of the run (what --resume must match)
    <out>/parts/maps-00000-00127/       finished chunks while the run is under way
    <out>/result.json, arrays.npz       the merged result (:class:`~oipscope.search.results.OipResult`)
    <out>/examples.npz                  the layer's dataset examples, when images were given

A zoo (``oipscope zoo``, :func:`oipscope.runs.jobs.run_zoo`) and its gallery::

    <out>/index.html, layers/...        the pages (:mod:`oipscope.gallery.site`)
    <out>/data/gallery.json             what ``oipscope report`` rebuilds the pages from
    <out>/data/example_images.npz       the dataset images the pages show
    <out>/data/<layer>/result/          a layer run, as above
    <out>/data/<layer>/examples.npz     its dataset examples
"""

from __future__ import annotations

import os
from pathlib import Path

from ..files import safe_filename

__all__ = [
    "RUN_JSON",
    "LOCK_FILE",
    "PARTS",
    "EXAMPLES_NPZ",
    "DATA_DIR",
    "GALLERY_JSON",
    "EXAMPLE_IMAGES",
    "part_folder",
    "zoo_layer_folder",
    "zoo_examples_file",
]

RUN_JSON = "run.json"
LOCK_FILE = ".oipscope.lock"
PARTS = "parts"
EXAMPLES_NPZ = "examples.npz"
DATA_DIR = "data"
GALLERY_JSON = "gallery.json"
EXAMPLE_IMAGES = "example_images.npz"


def part_folder(out_dir: str | os.PathLike, maps: tuple[int, ...]) -> Path:
    """The folder of a finished chunk of a layer run: ``<out>/parts/maps-<first>-<last>``."""
    return Path(out_dir) / PARTS / f"maps-{maps[0]:05d}-{maps[-1]:05d}"


def zoo_layer_folder(out_dir: str | os.PathLike, layer_name: str) -> Path:
    """Where a zoo keeps the layer run of one layer: ``<out>/data/<safe name>/result``.

    The gallery (:mod:`oipscope.gallery.site`) reads the same place, so ``oipscope
    report`` can rebuild the pages from a zoo folder.
    """
    return Path(out_dir) / DATA_DIR / safe_filename(layer_name) / "result"


def zoo_examples_file(out_dir: str | os.PathLike, layer_name: str) -> Path:
    """Where a zoo keeps the dataset examples of one layer: ``<out>/data/<safe name>/examples.npz``."""
    return Path(out_dir) / DATA_DIR / safe_filename(layer_name) / EXAMPLES_NPZ
