"""The gallery's page of class OIPs: what each output class of a classifier wants to see.

:func:`write_class_page` adds to a gallery (:func:`oipscope.gallery.site.write_gallery`
with ``classes=``)::

    classes.html              one tile per class: its name, its OIP, and the probability
                              the model gives that OIP for its own class
    classes/class_0003.png    the OIPs, each on its own colour scale
    thumbs/classes.png        all of them in one mosaic, for the index

The class OIPs come from :func:`oipscope.runs.jobs.run_classes` (or ``find_oips`` with
``OipConfig(objective="class")`` on the output layer, assessed with
:func:`oipscope.analysis.assessment.evoked_classes`). The module also holds two tile helpers
that the layer pages share: :func:`class_label` and :func:`oip_mosaic`.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import ConfigError
from ..files import safe_filename
from ..figures.png import encode_png
from ..search.status import Status
from ..figures.tiles import colorize, is_rgb, pixel_images, rgb_limits, scale_caption, tile_images, to_uint8

__all__ = ["CLASS_PAGE", "class_label", "oip_mosaic", "class_tiles", "write_class_page"]

CLASS_PAGE = "classes.html"
"""The class page's file name in the gallery folder."""


def class_label(class_names: Sequence[str] | None, index: int | None) -> str | None:
    """The name of class ``index`` (its index as text when there are no names for it); None for None."""
    if index is None:
        return None
    if class_names is not None and 0 <= index < len(class_names):
        return str(class_names[index])
    return str(index)


def oip_mosaic(oips: list, pixels: list, limits: tuple[float, float] | None = None,
               max_tiles: int = 256, rgb: tuple[float, float] | None = None) -> np.ndarray:
    """OIPs as one RGB array (silent ones hatched grey); each tile its own contrast without ``limits``
    (``rgb``: the scale of RGB OIPs, see :func:`~oipscope.figures.tiles.rgb_limits`)."""
    oips = oips[:max_tiles]
    h, w = np.asarray(oips[0].image).shape[:2]
    yy, xx = np.mgrid[0:h, 0:w]
    hatch = np.where(((yy + xx) % 6)[..., None] < 2, 0.7, 0.83) * np.ones(3, np.float32)
    tiles = [hatch if Status(oip.status).marked
             else colorize(pixels[k], *(limits or (None, None)), rgb_limits=rgb) for k, oip in enumerate(oips)]
    return tile_images(tiles, ncols=max(1, math.ceil(math.sqrt(len(oips)))), gap=max(1, w // 14))


def class_tiles(result, class_names: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """One entry per class OIP: its class and name, status, the probability the model gives it
    for its own class (``own_p``), whether that class wins (``own``) and which class does (``seen``)."""
    tiles = []
    for k, oip in enumerate(result.maps):
        c = int(oip.map_index)
        probs = None if oip.evoked_probabilities is None else np.asarray(oip.evoked_probabilities).reshape(-1)
        evoked = None if probs is None else int(np.argmax(probs))
        own_p = float(probs[c]) if probs is not None and 0 <= c < probs.size else None
        tiles.append({
            "order": k,
            "index": c,
            "name": class_label(class_names, c),
            "status": str(oip.status),
            "own_p": None if own_p is None else f"{own_p:.2f}",
            "own": evoked is not None and evoked == c,
            "seen": None if evoked is None else f"{class_label(class_names, evoked)} ({float(probs[evoked]):.2f})",
            "activation": f"{float(oip.activation):.2f}" if math.isfinite(float(oip.activation)) else "n/a",
        })
    return tiles


def _class_item(classes) -> tuple[Any, Path | None]:
    """(result, folder it is saved in or None) from a LayerRun of run_classes or an OipResult."""
    if hasattr(classes, "result") and hasattr(classes, "folder"):
        return classes.result, Path(classes.folder)
    if hasattr(classes, "maps") and hasattr(classes, "layer_name"):
        return classes, None
    raise ConfigError(f"classes must be the class OIPs (a LayerRun of run_classes or an OipResult), "
                      f"got {type(classes).__name__}")


def write_class_page(env, writer, common: dict, classes, class_names: Sequence[str] | None = None
                     ) -> dict[str, Any] | None:
    """Write ``classes.html``, its OIP tiles and the index thumbnail; return what the index shows of it.

    Args:
        env: the gallery's Jinja2 environment.
        writer: writes a file below the gallery folder: ``writer.write(relative path, bytes or str)``.
        common: the values every page gets (model name, version, title, data folder).
        classes: the class OIPs (a :class:`~oipscope.runs.jobs.LayerRun` of
            :func:`~oipscope.runs.jobs.run_classes` or an :class:`~oipscope.search.results.OipResult`), or None.
        class_names: names of the classes; without, a class is shown by its index.

    Returns:
        None without ``classes``; else the page, thumbnail, layer, the line "the model sees
        K of N class OIPs as their own class", and the result and the folder it is saved in.
    """
    if classes is None:
        return None
    result, folder = _class_item(classes)
    oips = list(result.maps)
    if not oips:
        raise ConfigError(f"the class OIPs of layer {result.layer_name!r} hold no OIPs")
    pixels = pixel_images([oip.image for oip in oips], result.encoding)
    rgb = rgb_limits(result.encoding)
    tiles = class_tiles(result, class_names)
    for k, (tile, oip) in enumerate(zip(tiles, oips)):
        tile["tile"] = None if Status(oip.status).marked else f"classes/class_{k:04d}.png"
        if tile["tile"]:
            writer.write(tile["tile"], encode_png(to_uint8(colorize(pixels[k], rgb_limits=rgb)), level=6))
    thumb = "thumbs/classes.png"
    writer.write(thumb, encode_png(to_uint8(oip_mosaic(oips, pixels, rgb=rgb)), level=6))
    assessed = all(oip.evoked_probabilities is not None for oip in oips)
    own = sum(tile["own"] for tile in tiles) if assessed else None
    line = (f"the model sees {own} of {len(oips)} class OIPs as their own class" if assessed
            else "the class OIPs were not classified by the model")
    shown = {"page": CLASS_PAGE, "thumb": thumb, "layer": result.layer_name, "slug": safe_filename(result.layer_name),
             "own": own, "total": len(oips), "line": line, "seconds": f"{float(result.seconds):.1f}",
             "result": result, "folder": folder}
    config = sorted((k, json.dumps(v) if isinstance(v, (list, tuple, dict)) or v is None else str(v))
                    for k, v in result.config.to_dict().items())
    h, w = np.asarray(oips[0].image).shape[:2]
    writer.write(CLASS_PAGE, env.get_template("classes.html.j2").render(
        classes=shown, tiles=tiles, config=config, encoding=result.encoding.describe(),
        unit=result.encoding.display_unit, rgb_caption=scale_caption(rgb) if is_rgb(pixels[0]) else None,
        aspect=f"{w} / {h}", **common))
    return shown
