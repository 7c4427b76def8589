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

import io
import json
import math
import os
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from .. import __version__
from ..figures import plot
from ..figures.card import MapCard, card_layout
from .class_page import class_label as _class_name, oip_mosaic as _mosaic, write_class_page
from ..errors import ConfigError
from ..files import atomic_write, read_saved_json, read_saved_npz, reading_saved, safe_filename
from ..runs.layout import DATA_DIR, EXAMPLE_IMAGES, EXAMPLES_NPZ, GALLERY_JSON
from ..figures.text import figure_pixels
from ..figures.png import BackgroundPngs, encode_png
from ..search.status import Status
from ..figures.tiles import check_contrast, colorize, display_limits, pixel_images, to_uint8

__all__ = ["write_gallery", "Gallery", "rebuild_gallery", "safe_filename", "GALLERY_JSON", "DATA_DIR"]

_FORMAT = 1
_TEMPLATES = Path(__file__).resolve().parent / "templates"


# ---- file names and writing ---------------------------------------------------------


class _Writer:
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


def _png_image(rgb: np.ndarray) -> bytes:
    """An RGB float array in [0, 1] as PNG bytes (no matplotlib figure: fast)."""
    return encode_png(to_uint8(rgb), level=6)


def _png_figure(fig, dpi: float) -> bytes:
    """A figure as PNG bytes, its text drawn with Pillow's glyphs (:func:`~oipscope.figures.text.figure_pixels`)."""
    pixels = figure_pixels(fig, dpi)
    fig.clear()
    return encode_png(pixels[..., :3], level=3)


# ---- inputs ----------------------------------------------------------------------------


def _info_dict(info) -> dict[str, Any]:
    """A LayerInfo (or a dict with its fields) as a plain JSON-able dict."""
    get = info.get if isinstance(info, Mapping) else lambda key, default=None: getattr(info, key, default)
    shape = tuple(get("output_shape", ()) or ())
    return {
        "name": str(get("name")),
        "class_name": str(get("class_name", "")),
        "output_shape": [None if s is None else int(s) for s in shape],
        "n_params": int(get("n_params", 0) or 0),
    }


def _model_summary(model_summary, layers: list) -> tuple[str, list[dict]]:
    """(model name, layer dicts) from the accepted forms of ``model_summary``."""
    name = None
    infos = model_summary
    if isinstance(model_summary, Mapping):
        name, infos = model_summary.get("name"), model_summary.get("layers", [])
    elif (isinstance(model_summary, (tuple, list)) and len(model_summary) == 2
          and isinstance(model_summary[0], str)):
        name, infos = model_summary
    infos = [_info_dict(i) for i in (infos or [])]
    if name is None:
        name = layers[0][0].model_name if layers else "model"
    return str(name), infos


def _layer_items(layers) -> tuple[list[tuple[Any, Any]], list[Path | None]]:
    """(result, examples) per layer, and the folder each result is saved in already (LayerRun), else None."""
    pairs, folders = [], []
    for item in layers:
        if hasattr(item, "maps") and hasattr(item, "layer_name"):
            pairs.append((item, None))
            folders.append(None)
        elif hasattr(item, "result") and hasattr(item, "folder"):  # a LayerRun of run_zoo
            pairs.append((item.result, item.examples))
            folders.append(Path(item.folder))
        else:
            result, examples = item
            pairs.append((result, examples))
            folders.append(None)
    if not pairs:
        raise ConfigError("no layers to show: give at least one (OipResult, DatasetExamples | None)")
    return pairs, folders


class _Lookup:
    """Images or labels by dataset index, from an array or a mapping."""

    def __init__(self, data):
        self.data = data

    def __getitem__(self, index: int):
        return self.data[int(index)]


def _fmt(value: float | None, digits: int = 3) -> str | None:
    if value is None:
        return None
    value = float(value)
    return f"{value:.{digits}f}" if math.isfinite(value) else "n/a"


def _attr(value: float | None) -> str:
    """A numeric data attribute: '' for missing or non-finite (sorted last)."""
    if value is None or not math.isfinite(float(value)):
        return ""
    return repr(round(float(value), 6))


def _shape_text(shape: Sequence) -> str:
    return "×".join("N" if s is None else str(s) for s in shape) if shape else "?"


def _map_shape(infos: list[dict], layer_name: str, examples) -> tuple[int, int] | None:
    for info in infos:
        if info["name"] == layer_name and len(info["output_shape"]) == 4:
            return int(info["output_shape"][1]), int(info["output_shape"][2])
    shape = getattr(examples, "map_shape", None) if examples is not None else None
    return tuple(int(s) for s in shape)[-2:] if shape is not None else None


# ---- rendering ---------------------------------------------------------------------------


def _environment():
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(_TEMPLATES)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    return env


def _oip_labels(oips: list) -> list[str]:
    counts: dict[int, int] = {}
    for oip in oips:
        counts[int(oip.map_index)] = counts.get(int(oip.map_index), 0) + 1
    seen: dict[int, int] = {}
    labels = []
    for oip in oips:
        m = int(oip.map_index)
        seen[m] = seen.get(m, 0) + 1
        labels.append(f"map {m}" if counts[m] == 1 else f"map {m} (OIP {seen[m]})")
    return labels


def _render_layer(env, writer: _Writer, common: dict, slug: str, result, examples, infos: list[dict],
                  images, labels, class_names, dpi: float, max_examples: int, cards: bool = True,
                  contrast: str = "tile", image_names=None, painters: dict | None = None) -> dict:
    oips = list(result.maps)
    if not oips:
        raise ConfigError(f"the result of layer {result.layer_name!r} holds no OIPs")
    encoding = result.encoding
    pixels = pixel_images([m.image for m in oips], encoding)
    live = [p for p, m in zip(pixels, oips) if not Status(m.status).marked]
    vmin, vmax = display_limits(live, robust=0.5)
    shared = (vmin, vmax) if contrast == "shared" else None
    map_shape = _map_shape(infos, result.layer_name, examples)
    page_name = f"{slug}.html"
    rel = f"layers/{slug}"
    summary = result.summary()
    median = summary.get("median_ratio")
    layer = {
        "name": result.layer_name,
        "slug": slug,
        "page": f"layers/{page_name}",
        "page_name": page_name,
        "thumb": f"thumbs/{slug}.png",
        "curves": f"{slug}/curves.png",
        "summary": summary,
        "median_ratio": _fmt(median, 2) if median is not None else None,
        "seconds": f"{float(result.seconds):.1f}",
        "vmin": f"{vmin:.2f}",
        "vmax": f"{vmax:.2f}",
        "contrast": "one scale for all tiles" if shared else "each tile its own scale (1st-99th percentile)",
        "unit": encoding.display_unit,
        "encoding": encoding.describe(),
        "model_hash": result.model_hash,
        "versions": sorted(dict(result.versions).items()),
    }
    writer.write(layer["thumb"], _png_image(_mosaic(oips, pixels, shared)))
    writer.write(f"{rel}/curves.png", _png_figure(plot.activation_curves(result), dpi))
    layer["pattern_accuracy"] = None if examples is None else _percent(examples.pattern_accuracy, examples)
    map_selectivity = layer["profiles"] = None
    if examples is not None and examples.class_means is not None:
        from ..figures import profiles
        from ..analysis.examples import selectivity

        map_selectivity = selectivity(examples.class_means)
        for order in profiles.PROFILE_ORDERS:
            writer.write(f"{rel}/profiles_{order}.png",
                         _png_figure(profiles.class_profiles(examples, class_names, order=order), dpi))
        layer["profiles"] = {order: f"{slug}/profiles_{order}.png" for order in profiles.PROFILE_ORDERS}

    config = sorted((k, json.dumps(v) if isinstance(v, (list, tuple, dict)) or v is None else str(v))
                    for k, v in result.config.to_dict().items())
    with_examples = examples is not None and images is not None
    painters = {} if painters is None else painters  # cards laid out already, shared by the layers
    names = _oip_labels(oips)
    tiles, maps = [], []
    card_pngs = BackgroundPngs(writer.write)  # each card compresses while the next one is drawn
    for k, oip in enumerate(oips):
        marked = Status(oip.status).marked
        tile = None
        if not marked:
            tile = f"{slug}/tiles/map_{k:04d}.png"
            writer.write(f"layers/{tile}", _png_image(colorize(pixels[k], *(shared or (None, None)))))
        if cards:
            layout = card_layout(oip, examples if with_examples else None,
                                 images if with_examples else None, labels, max_examples)
            key = (layout, shared, encoding.display_unit)
            if key not in painters:
                painters[key] = MapCard(layout, dpi=dpi, blit=True, limits=shared,
                                        class_names=class_names, unit=encoding.display_unit)
            card = painters[key]
            card.paint(oip, examples if with_examples else None, images if with_examples else None,
                       class_names, map_shape, labels, result.layer_name, encoding, image_names)
            card_pngs.add(f"{rel}/card_{k:04d}.png", card.pixels()[..., :3])

        probs = getattr(oip, "evoked_probabilities", None)
        ratio = getattr(oip, "superstimulus_ratio", None)
        evoked = int(np.argmax(probs)) if probs is not None else None
        evoked_p = float(np.asarray(probs).reshape(-1)[evoked]) if evoked is not None else None
        entry = {
            "order": k,
            "map_index": int(oip.map_index),
            "label": names[k],
            "status": oip.status,
            "page": f"{slug}/map_{k:04d}.html",
            "tile": tile,
            "card": f"card_{k:04d}.png" if cards else None,
            "tile_local": None if tile is None else f"tiles/map_{k:04d}.png",
            "activation": _fmt(oip.activation, 2),
            "activation_attr": _attr(oip.activation),
            "ratio": _fmt(ratio, 2),
            "ratio_attr": _attr(ratio),
            "jitter": _fmt(oip.jitter_robustness, 2), "jitter_attr": _attr(oip.jitter_robustness),
            "hf": _fmt(oip.hf_share, 2), "hf_attr": _attr(oip.hf_share),
            "evoked": (f"{_class_name(class_names, evoked)} ({evoked_p:.2f})" if evoked is not None else None),
            "evoked_attr": "" if evoked is None else str(evoked),
            "evoked_p_attr": _attr(evoked_p),
            "converged": int(oip.converged_step) if int(oip.converged_step) >= 0 else "never",
            "start": oip.start,
            "probabilities": (None if probs is None else
                              [(_class_name(class_names, c), f"{p:.3f}")
                               for c, p in enumerate(np.asarray(probs, dtype=np.float64).reshape(-1))]),
            "data": None,
        }
        if examples is not None and 0 <= int(oip.map_index) < examples.n_maps:
            m = int(oip.map_index)
            entry["data"] = [
                ("best dataset mean activation", _fmt(examples.top_values[m, 0])),
                ("dataset max unit", _fmt(examples.max_activation[m])),
                ("dataset mean activation", _fmt(examples.mean_activation[m])),
                ("fraction of images it fires on", _fmt(examples.fire_fraction[m])),
            ]
            if image_names is not None and with_examples:
                top = [int(i) for i, v in zip(examples.top_indices[m], examples.top_values[m]) if v > 0]
                entry["data"].append(("top images", ", ".join(str(image_names[i]) for i in top) or "none"))
        m = int(oip.map_index)
        has_profile = map_selectivity is not None and 0 <= m < examples.n_maps
        entry["selectivity"] = _fmt(map_selectivity[m], 2) if has_profile else None
        entry["selectivity_attr"] = _attr(map_selectivity[m]) if has_profile else ""
        entry["profile"] = _profile_bars(examples.class_means[m], class_names) if has_profile else None
        tiles.append(entry)
        maps.append(entry)

    card_pngs.close()
    h, w = np.asarray(oips[0].image).shape[:2]
    page_common = dict(common, aspect=f"{w} / {h}", layer=layer, config=config)
    writer.write(f"layers/{page_name}", env.get_template("layer.html.j2").render(tiles=tiles, **page_common))
    template = env.get_template("map.html.j2")
    for k, entry in enumerate(maps):
        prev = f"map_{k - 1:04d}.html" if k > 0 else None
        nxt = f"map_{k + 1:04d}.html" if k + 1 < len(maps) else None
        m = dict(entry, activation=_fmt(oips[k].activation, 4))
        writer.write(f"{rel}/map_{k:04d}.html", template.render(m=m, prev=prev, next=nxt, **page_common))
    return layer


def _percent(accuracy: float, examples) -> str:
    """Pattern accuracy for a page: ``97.1 %``, or why there is none."""
    if examples.class_means is None:
        return "no labels"
    return f"{100 * accuracy:.1f} %" if math.isfinite(accuracy) else "n/a"


def _profile_bars(class_means, class_names) -> list[tuple[str, str, float]]:
    """(class name, mean activation, bar width in %) per class: a map's class profile as HTML bars."""
    values = np.asarray(class_means, np.float64)
    low = min(0.0, float(np.nanmin(values))) if np.isfinite(values).any() else 0.0
    span = (float(np.nanmax(values)) - low) if np.isfinite(values).any() else 0.0
    return [(_class_name(class_names, c), f"{v:.3g}" if math.isfinite(v) else "n/a",
             round(100 * (v - low) / span, 1) if span > 0 and math.isfinite(v) else 0.0)
            for c, v in enumerate(values)]


def _save_data(writer: _Writer, slug: str, result, examples, saved_in: Path | None) -> dict:
    """Save a layer's result and examples under ``data/<slug>/``, unless run_zoo saved them there already."""
    folder = writer.path(DATA_DIR, slug)
    entry = {"layer_name": result.layer_name, "slug": slug, "result": f"{DATA_DIR}/{slug}/result",
             "examples": None if examples is None else f"{DATA_DIR}/{slug}/{EXAMPLES_NPZ}"}
    if saved_in is not None and saved_in.resolve() == (folder / "result").resolve():
        return entry
    result.save(folder / "result")
    if examples is not None:
        examples.save(folder / EXAMPLES_NPZ)
    return entry


def _shown_indices(pairs) -> list[int]:
    """The dataset indices of every example image the gallery shows."""
    return sorted({int(i) for _, ex in pairs if ex is not None for i in np.asarray(ex.top_indices).reshape(-1)})


def _save_example_images(writer: _Writer, pairs, images, labels, names=None) -> str | None:
    """The dataset images (labels, names) that the examples show, so the gallery can be rebuilt."""
    if images is None:
        return None
    needed = _shown_indices(pairs)
    if not needed:
        return None
    shown = np.stack([np.asarray(images[i]) for i in needed])
    if shown.dtype != np.uint8 and np.all((shown >= 0) & (shown <= 255) & (shown == np.round(shown))):
        shown = shown.astype(np.uint8)  # pixels read from files: exact, and 4x smaller
    arrays: dict[str, np.ndarray] = {"indices": np.asarray(needed, np.int64), "images": shown}
    if labels is not None:
        arrays["labels"] = np.asarray([int(labels[i]) for i in needed], np.int64)
    if names is not None:
        arrays["names"] = np.asarray([str(names[i]) for i in needed])
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    writer.write(f"{DATA_DIR}/{EXAMPLE_IMAGES}", buf.getvalue())
    return f"{DATA_DIR}/{EXAMPLE_IMAGES}"


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
    _layer_items(layers)  # nothing to show fails before anything is written
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
        self._writer = _Writer(Path(out_dir))
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
                                                           else _Lookup(images))
        self._labels = labels
        self._labels_lookup = None if labels is None else (np.asarray(labels) if not isinstance(labels, Mapping)
                                                           else _Lookup(labels))
        self._class_names = None if class_names is None else [str(c) for c in class_names]
        self._names = names
        self._model_summary, self._title = model_summary, title
        self._dpi, self._max_examples, self._save_data = dpi, max_examples, save_data
        self._cards, self._contrast, self._examples_source = cards, contrast, examples_source
        self._env = _environment()
        self._common: dict | None = None
        self._infos: list[dict] = []
        self._pairs: list[tuple[Any, Any]] = []
        self._folders: list[Path | None] = []
        self._slugs: list[str] = []
        self._rendered: list[dict] = []
        self._painters: dict[tuple, MapCard] = {}  # cards laid out already, shared by the layers

    def add(self, layer) -> None:
        """Write a layer's pages: an OipResult, a ``(result, examples)`` pair or a LayerRun."""
        [pair], [folder] = _layer_items([layer])
        if self._common is None:  # the model's name may come from its first result
            model_name, self._infos = _model_summary(self._model_summary, [pair])
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
            for i in _shown_indices([pair]):
                if i not in self._images:
                    self._images[i] = self._image_set[i]
                    if not self._names_given:
                        self._names[i] = self._image_set.item_name(i)
        self._rendered.append(_render_layer(
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
        model_layers = [dict(info, shape=_shape_text(info["output_shape"]),
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

            curve = writer.write("thumbs/pattern_accuracy.png", _png_figure(
                pattern_accuracy_curve([n for n, _ in scored], [a for _, a in scored]), self._dpi))
            curve = "thumbs/pattern_accuracy.png"
        index = writer.write("index.html", env.get_template("index.html.j2").render(
            layers=rendered, model_layers=model_layers, aspect="1 / 1", pattern_curve=curve, classes=shown_classes,
            examples_source=self._examples_source if self._images_lookup is not None else None, **common))

        if self._save_data:
            entries = [_save_data(writer, slug, result, examples, folder)
                       for slug, (result, examples), folder in zip(self._slugs, pairs, self._folders)]
            meta = {
                "format": _FORMAT,
                "model_name": common["model_name"],
                "layers_info": self._infos,
                "layers": entries,
                "classes": shown_classes and _save_data(writer, shown_classes["slug"], shown_classes["result"],
                                                        None, shown_classes["folder"]),
                "class_names": self._class_names,
                "title": common["title"],
                "dpi": self._dpi,
                "max_examples": self._max_examples,
                "contrast": self._contrast,
                "examples_source": self._examples_source,
                "example_images": _save_example_images(writer, pairs, self._images_lookup, self._labels_lookup,
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
