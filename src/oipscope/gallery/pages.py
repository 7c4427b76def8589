"""What the gallery shows of a layer: its page, its map pages and cards, and the data to rebuild them.

:func:`render_layer` draws one layer; :mod:`oipscope.gallery.site` puts the layers together into a site.
"""

from __future__ import annotations

import io
import json
import math
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ..errors import ConfigError
from ..figures import plot
from ..figures.card import MapCard, card_layout
from ..figures.crops import crop_window, crops_shown, outlined_strip
from ..figures.parts import MARK_COLOUR
from ..figures.png import BackgroundPngs, encode_png
from ..figures.tiles import PIXEL_LIMITS, colorize, display_limits, is_rgb, pixel_images, rgb_limits, scale_caption
from ..runs.layout import DATA_DIR, EXAMPLE_IMAGES, EXAMPLES_NPZ
from ..search.status import Status
from .class_page import class_label as _class_name, oip_mosaic as _mosaic
from .writer import Writer, png_figure, png_image

__all__ = ["render_layer", "environment", "model_summary", "layer_items", "Lookup", "shape_text", "save_data",
           "shown_indices", "save_example_images"]

_TEMPLATES = Path(__file__).resolve().parent / "templates"


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


def model_summary(model_summary, layers: list) -> tuple[str, list[dict]]:
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


def layer_items(layers) -> tuple[list[tuple[Any, Any]], list[Path | None]]:
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


class Lookup:
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


def shape_text(shape: Sequence) -> str:
    """A shape as the pages write it, e.g. ``7×7×64`` (``N`` for an unknown size)."""
    return "×".join("N" if s is None else str(s) for s in shape) if shape else "?"


def _map_shape(infos: list[dict], layer_name: str, examples) -> tuple[int, int] | None:
    for info in infos:
        if info["name"] == layer_name and len(info["output_shape"]) == 4:
            return int(info["output_shape"][1]), int(info["output_shape"][2])
    shape = getattr(examples, "map_shape", None) if examples is not None else None
    return tuple(int(s) for s in shape)[-2:] if shape is not None else None


# ---- rendering ---------------------------------------------------------------------------


def environment():
    """The Jinja2 environment of the gallery's templates: autoescaped, strict about undefined names."""
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


def render_layer(env, writer: Writer, common: dict, slug: str, result, examples, infos: list[dict],
                  images, labels, class_names, dpi: float, max_examples: int, cards: bool = True,
                  contrast: str = "tile", image_names=None, painters: dict | None = None) -> dict:
    """Draw one layer: its page, its map pages and cards, its thumbnail; return its entry for the index."""
    oips = list(result.maps)
    if not oips:
        raise ConfigError(f"the result of layer {result.layer_name!r} holds no OIPs")
    encoding = result.encoding
    pixels = pixel_images([m.image for m in oips], encoding)
    live = [p for p, m in zip(pixels, oips) if not Status(m.status).marked]
    vmin, vmax = display_limits(live, robust=0.5)
    shared = (vmin, vmax) if contrast == "shared" else None
    rgb = rgb_limits(encoding, shared)  # RGB OIPs in pixel units: 0-255, not stretched
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
        "rgb_caption": scale_caption(rgb) if is_rgb(pixels[0]) else None,
        "encoding": encoding.describe(),
        "model_hash": result.model_hash,
        "versions": sorted(dict(result.versions).items()),
    }
    writer.write(layer["thumb"], png_image(_mosaic(oips, pixels, shared, rgb=rgb)))
    writer.write(f"{rel}/curves.png", png_figure(plot.activation_curves(result), dpi))
    layer["pattern_accuracy"] = None if examples is None else _percent(examples.pattern_accuracy, examples)
    map_selectivity = layer["profiles"] = None
    if examples is not None and examples.class_means is not None:
        from ..figures import profiles
        from ..analysis.examples import selectivity

        map_selectivity = selectivity(examples.class_means)
        for order in profiles.PROFILE_ORDERS:
            writer.write(f"{rel}/profiles_{order}.png",
                         png_figure(profiles.class_profiles(examples, class_names, order=order), dpi))
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
            writer.write(f"layers/{tile}", png_image(colorize(pixels[k], *(shared or (None, None)), rgb)))
        if cards:
            layout = card_layout(oip, examples if with_examples else None,
                                 images if with_examples else None, labels, max_examples)
            key = (layout, shared, encoding.display_unit)
            if key not in painters:
                painters[key] = MapCard(layout, dpi=dpi, blit=True, limits=shared,
                                        class_names=class_names, unit=encoding.display_unit, encoding=encoding)
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
            "whole": None,
        }
        if examples is not None and 0 <= int(oip.map_index) < examples.n_maps:
            m = int(oip.map_index)
            if with_examples and cards:
                entry["whole"] = _whole_examples(writer, f"{rel}/whole_{k:04d}.png", examples, m, images,
                                                 max_examples)
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


def _whole_examples(writer: Writer, path: str, examples, map_index: int, images, max_examples: int) -> str | None:
    """The top images of a map whole, each crop its card shows outlined, as a PNG strip; None without crops."""
    field = examples.receptive_field
    idx = [int(i) for i, v in zip(examples.top_indices[map_index][:max_examples],
                                  examples.top_values[map_index][:max_examples]) if float(v) != 0]
    if field is None or not idx:
        return None
    pics = [np.asarray(images[i]) for i in idx]
    if len({p.shape for p in pics}) > 1 or not crops_shown(field, pics[0].shape[:2]):
        return None
    lo, hi = display_limits(pics)
    positions = examples.top_positions[map_index][:len(idx)]
    windows = [crop_window(field, pos, pic.shape[:2]) for pic, pos in zip(pics, positions)]
    strip = outlined_strip([colorize(p, lo, hi, PIXEL_LIMITS) for p in pics], windows, MARK_COLOUR,
                           gap=max(1, pics[0].shape[1] // 8))
    writer.write(path, encode_png(strip, level=6))
    return path.rsplit("/", 1)[1]


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


def save_data(writer: Writer, slug: str, result, examples, saved_in: Path | None) -> dict:
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


def shown_indices(pairs) -> list[int]:
    """The dataset indices of every example image the gallery shows."""
    return sorted({int(i) for _, ex in pairs if ex is not None for i in np.asarray(ex.top_indices).reshape(-1)})


def save_example_images(writer: Writer, pairs, images, labels, names=None) -> str | None:
    """The dataset images (labels, names) that the examples show, so the gallery can be rebuilt."""
    if images is None:
        return None
    needed = shown_indices(pairs)
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
