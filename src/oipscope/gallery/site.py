"""A static HTML gallery of OIP results: one page per model, per layer and per map.

:func:`write_gallery` writes a self-contained site (no network, no CDN: inline
CSS, a few lines of inline JavaScript for sorting, PNG figures next to the
pages; it works from ``file://``)::

    out_dir/
      index.html                 model summary, one tile per layer
      thumbs/<slug>.png          layer mosaics
      layers/<slug>.html         all OIPs of a layer as sortable tiles
      layers/<slug>/map_0003.html, card_0003.png, tiles/map_0003.png, curves.png
      classes.html, classes/     a classifier's class OIPs, when given (:mod:`oipscope.gallery.class_page`)
      data/gallery.json          everything needed to rebuild the pages
      data/<slug>/result/        the layer's OipResult (OipResult.save)
      data/<slug>/examples.npz   its DatasetExamples (DatasetExamples.save)
      data/example_images.npz    the dataset images the examples show

:func:`rebuild_gallery` re-renders the site from ``data/`` without recomputing.
Layer names come from model files, so they are HTML-escaped everywhere (Jinja2
autoescape) and never used in file names as they are (:func:`safe_filename`).
Every file is written atomically (:func:`oipscope.files.atomic_write`).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from .. import __version__
from ..errors import ConfigError
from ..figures.card import MapCard
from ..figures.tiles import check_contrast
from ..files import read_saved_json, read_saved_npz, reading_saved, safe_filename
from ..runs.layout import DATA_DIR, GALLERY_JSON
from .class_page import write_class_page
from .pages import (Lookup, environment, layer_items, model_summary, render_layer, save_data, save_example_images,
                    shape_text, shown_indices)
from .writer import Writer, png_figure

__all__ = ["write_gallery", "Gallery", "rebuild_gallery", "safe_filename", "GALLERY_JSON", "DATA_DIR"]

_FORMAT = 1


def write_gallery(
    out_dir: str | os.PathLike,
    model_summary,
    layers: Iterable,
    *,
    images=None,
    labels=None,
    class_names: Sequence[str] | None = None,
    title: str | None = None,
    dpi: float = 80,
    max_examples: int = 9,
    save_data: bool = True,
    cards: bool = True,
    contrast: str = "tile",
    names=None,
    examples_source: str | None = None,
    classes=None,
) -> Path:
    """Write the static gallery into ``out_dir``; returns the path of ``index.html``.

    Args:
        out_dir: the gallery folder (created if needed). Nothing is written outside it.
        model_summary: the model's layers: ``(model_name, [LayerInfo, ...])``, a
            dict ``{"name": ..., "layers": [...]}``, or just the list of
            :class:`~oipscope.model.loading.LayerInfo` (the name is then the results'
            ``model_name``). Layer dicts with the LayerInfo fields work too.
        layers: ``(OipResult, DatasetExamples | None)`` per layer (a bare
            OipResult counts as one without examples), or the
            :class:`~oipscope.runs.jobs.LayerRun` s of :func:`~oipscope.runs.jobs.run_zoo`
            (their data, saved in this folder already, is not written again).
        images: the images the examples were computed on: an
            :class:`~oipscope.data.imagesets.ImageSet` (its labels, class names and file
            names are used unless given), pixels (N, H, W[, C]), or a mapping from
            dataset index to image; without them the cards show no dataset examples.
        labels: dataset labels (array or mapping), for the example titles.
        class_names: names of the classes (evoked class, labels).
        title: page title; default "OIPs of <model name>".
        dpi: resolution of the card figures.
        max_examples: dataset examples per card.
        save_data: also save results, examples and the shown images under
            ``data/`` so that :func:`rebuild_gallery` can redo the pages.
        cards: render a card figure per map (:class:`oipscope.figures.card.MapCard`,
            about 0.01 s each); without, map pages show the OIP and tables only.
        contrast: ``"tile"``: each OIP tile and card on its own robust colour scale
            (default); ``"shared"``: one scale per layer.
        names: names of the example images by dataset index (mapping or array);
            default the image set's file names, else ``#index``.
        examples_source: what the examples were drawn from, for the index page
            (default the image set's name).
        classes: a classifier's class OIPs (the :class:`~oipscope.runs.jobs.LayerRun` of
            :func:`~oipscope.runs.jobs.run_classes`, or an OipResult): a page ``classes.html``
            with one tile per class, linked from the index.
    """
    layers = list(layers)
    layer_items(layers)  # nothing to show fails before anything is written
    gallery = Gallery(out_dir, model_summary, images=images, labels=labels, class_names=class_names, title=title,
                      dpi=dpi, max_examples=max_examples, save_data=save_data, cards=cards, contrast=contrast,
                      names=names, examples_source=examples_source)
    for layer in layers:
        gallery.add(layer)
    return gallery.finish(classes)


class Gallery:
    """A gallery written layer by layer: each layer's pages when :meth:`add` gets its result,
    the class page, index and data at :meth:`finish` (:func:`write_gallery` in one call).
    The arguments are :func:`write_gallery`'s. :class:`oipscope.gallery.worker.BackgroundGallery`
    runs one in a worker process, so a zoo draws a finished layer's cards while it searches on.
    """

    def __init__(self, out_dir: str | os.PathLike, model_summary, *, images=None, labels=None,
                 class_names: Sequence[str] | None = None, title: str | None = None, dpi: float = 80,
                 max_examples: int = 9, save_data: bool = True, cards: bool = True, contrast: str = "tile",
                 names=None, examples_source: str | None = None):
        check_contrast(contrast)
        self._writer = Writer(Path(out_dir))
        self._writer.root.mkdir(parents=True, exist_ok=True)
        self._image_set = images if images is not None and hasattr(images, "item_name") else None
        self._names_given = names is not None
        if self._image_set is not None:  # an ImageSet: each shown image is read once, when a layer needs it
            labels = images.labels if labels is None else labels
            class_names = images.class_names if class_names is None else class_names
            examples_source = examples_source or str(images.name)
            names, images = (names if names is not None else {}), {}
        self._images = images
        self._images_lookup = None if images is None else (images if isinstance(images, np.ndarray)
                                                           else Lookup(images))
        self._labels = labels
        self._labels_lookup = None if labels is None else (np.asarray(labels) if not isinstance(labels, Mapping)
                                                           else Lookup(labels))
        self._class_names = None if class_names is None else [str(c) for c in class_names]
        self._names = names
        self._model_summary, self._title = model_summary, title
        self._dpi, self._max_examples, self._save_data = dpi, max_examples, save_data
        self._cards, self._contrast, self._examples_source = cards, contrast, examples_source
        self._env = environment()
        self._common: dict | None = None
        self._infos: list[dict] = []
        self._pairs: list[tuple[Any, Any]] = []
        self._folders: list[Path | None] = []
        self._slugs: list[str] = []
        self._rendered: list[dict] = []
        self._painters: dict[tuple, MapCard] = {}  # cards laid out already, shared by the layers

    def add(self, layer) -> None:
        """Write a layer's pages: an OipResult, a ``(result, examples)`` pair or a LayerRun."""
        [pair], [folder] = layer_items([layer])
        if self._common is None:  # the model's name may come from its first result
            model_name, self._infos = model_summary(self._model_summary, [pair])
            self._common = {"model_name": model_name, "version": __version__,
                            "title": self._title or f"OIPs of {model_name}", "data_dir": DATA_DIR}
        slug = safe_filename(pair[0].layer_name)
        base, n = slug, 2
        while slug in self._slugs:
            slug, n = f"{base}-{n}", n + 1
        self._slugs.append(slug)
        self._pairs.append(pair)
        self._folders.append(folder)
        result, examples = pair
        if self._image_set is not None and examples is not None:
            for i in shown_indices([pair]):
                if i not in self._images:
                    self._images[i] = self._image_set[i]
                    if not self._names_given:
                        self._names[i] = self._image_set.item_name(i)
        self._rendered.append(render_layer(
            self._env, self._writer, self._common, slug, result, examples, self._infos, self._images_lookup,
            self._labels_lookup, self._class_names, self._dpi, self._max_examples, self._cards, self._contrast,
            self._names, self._painters))

    def finish(self, classes=None) -> Path:
        """Write the class page (``classes``: a LayerRun or OipResult of
        :func:`~oipscope.runs.jobs.run_classes`), the index and the data; returns ``index.html``."""
        if not self._pairs:
            raise ConfigError("no layers to show: give at least one (OipResult, DatasetExamples | None)")
        env, writer, common, rendered, pairs = self._env, self._writer, self._common, self._rendered, self._pairs
        shown_classes = write_class_page(env, writer, common, classes, self._class_names)

        pages: dict[str, list[str]] = {}
        class_pages = [{"name": shown_classes["layer"], "page": shown_classes["page"]}] if shown_classes else []
        for layer in rendered + class_pages:
            pages.setdefault(layer["name"], []).append(layer["page"])
        model_layers = [dict(info, shape=shape_text(info["output_shape"]),
                             n_maps=info["output_shape"][-1] if len(info["output_shape"]) == 4 else None,
                             pages=pages.get(info["name"], [])) for info in self._infos]
        known = {info["name"] for info in self._infos}
        for layer in rendered:  # results of layers missing from the summary still get a row
            if layer["name"] not in known:
                known.add(layer["name"])
                model_layers.append({"name": layer["name"], "class_name": "", "shape": "?", "n_params": "",
                                     "n_maps": None, "pages": pages[layer["name"]]})
        curve = None
        scored = [(layer["name"], examples.pattern_accuracy) for layer, (_, examples) in zip(rendered, pairs)
                  if examples is not None and math.isfinite(examples.pattern_accuracy)]
        if scored:
            from ..figures.profiles import pattern_accuracy_curve

            curve = writer.write("thumbs/pattern_accuracy.png", png_figure(
                pattern_accuracy_curve([n for n, _ in scored], [a for _, a in scored]), self._dpi))
            curve = "thumbs/pattern_accuracy.png"
        index = writer.write("index.html", env.get_template("index.html.j2").render(
            layers=rendered, model_layers=model_layers, aspect="1 / 1", pattern_curve=curve, classes=shown_classes,
            examples_source=self._examples_source if self._images_lookup is not None else None, **common))

        if self._save_data:
            entries = [save_data(writer, slug, result, examples, folder)
                       for slug, (result, examples), folder in zip(self._slugs, pairs, self._folders)]
            meta = {
                "format": _FORMAT,
                "model_name": common["model_name"],
                "layers_info": self._infos,
                "layers": entries,
                "classes": shown_classes and save_data(writer, shown_classes["slug"], shown_classes["result"],
                                                        None, shown_classes["folder"]),
                "class_names": self._class_names,
                "title": common["title"],
                "dpi": self._dpi,
                "max_examples": self._max_examples,
                "contrast": self._contrast,
                "examples_source": self._examples_source,
                "example_images": save_example_images(writer, pairs, self._images_lookup, self._labels_lookup,
                                                       self._names),
            }
            writer.write(f"{DATA_DIR}/{GALLERY_JSON}", json.dumps(meta, indent=1))
        return index


def _find_gallery_json(results_dir: Path) -> Path:
    for candidate in (results_dir / DATA_DIR / GALLERY_JSON, results_dir / GALLERY_JSON):
        if candidate.is_file():
            return candidate
    raise ConfigError(
        f"no {DATA_DIR}/{GALLERY_JSON} in {results_dir}: give the folder of a gallery written by write_gallery"
    )


def rebuild_gallery(results_dir: str | os.PathLike, out_dir: str | os.PathLike | None = None) -> Path:
    """Re-render a gallery from its saved data (no OIP search, no model needed).

    Args:
        results_dir: a gallery folder written by :func:`write_gallery` (or its
            ``data/`` folder).
        out_dir: where to write; default the gallery folder itself.

    Returns:
        The path of the new ``index.html``.

    Raises:
        ConfigError: the folder holds no gallery data.
        DataError: its data are damaged or malformed (exit code 3).
    """
    from ..analysis.examples import DatasetExamples
    from ..search.results import OipResult
    from ..runs.jobs import LayerRun

    meta_path = _find_gallery_json(Path(results_dir))
    root = meta_path.parent.parent if meta_path.parent.name == DATA_DIR else meta_path.parent
    meta = read_saved_json(meta_path, "gallery data")
    with reading_saved(meta_path, "gallery data"):  # fields missing or of the wrong kind
        if meta.get("format") != _FORMAT:
            raise ConfigError(f"{meta_path} has format {meta.get('format')!r}; this oipscope reads {_FORMAT}")
        layers = []
        for entry in meta["layers"]:
            folder = _inside(root, entry["result"])
            examples = DatasetExamples.load(_inside(root, entry["examples"])) if entry.get("examples") else None
            layers.append(LayerRun(result=OipResult.load(folder), examples=examples, folder=folder))
        classes = meta.get("classes") and _inside(root, meta["classes"]["result"])
        classes = classes and LayerRun(result=OipResult.load(classes), examples=None, folder=classes)
        model_info = (meta["model_name"], meta["layers_info"])
    images = labels = names = None
    if meta.get("example_images"):
        images_path = _inside(root, meta["example_images"])
        arrays = read_saved_npz(images_path, "example images")
        with reading_saved(images_path, "example images"):
            indices = [int(i) for i in arrays["indices"]]
            images = dict(zip(indices, arrays["images"]))
            if "labels" in arrays:
                labels = dict(zip(indices, (int(v) for v in arrays["labels"])))
            names = dict(zip(indices, (str(v) for v in arrays["names"]))) if "names" in arrays else None
    target = Path(out_dir) if out_dir is not None else root
    return write_gallery(
        target, model_info, layers, images=images, labels=labels,
        class_names=meta.get("class_names"), title=meta.get("title"), dpi=meta.get("dpi", 80),
        max_examples=meta.get("max_examples", 9), contrast=meta.get("contrast", "tile"), names=names,
        examples_source=meta.get("examples_source"), classes=classes,
    )


def _inside(root: Path, rel: str) -> Path:
    """``root/rel``, refusing paths that leave ``root`` (the JSON might have been edited)."""
    path = (root / rel).resolve()
    if root.resolve() not in path.parents:
        raise ConfigError(f"gallery data path {rel!r} points outside {root}")
    return path
