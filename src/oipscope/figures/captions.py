"""The words figures write about OIPs and dataset examples.

One home for every caption the notebook figures (:mod:`oipscope.figures.plot`) and the
map card (:mod:`oipscope.figures.card`) share, so both say the same thing the same way.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from .parts import dataset_item

__all__ = [
    "map_label",
    "activation_after",
    "captioned_snapshots",
    "short_number",
    "item_name",
    "class_label",
    "class_names_for",
    "example_title",
    "firing_note",
    "ratio_text",
    "quality_text",
]


def map_label(oip) -> str:
    """``map i``."""
    return f"map {int(oip.map_index)}"


def activation_after(oip, step: int) -> float:
    """The map's mean activation after ``step``: the history entry before the next step."""
    hist = np.asarray(oip.activation_history).reshape(-1)
    entry = (step + 1) // getattr(oip, "history_every", 1)  # the nearest kept entry of a thinned history
    if 0 <= entry < hist.size:
        return float(hist[entry])
    return float(oip.activation)


def captioned_snapshots(oip) -> list[tuple[np.ndarray, str, str]]:
    """(image, "step s", "activation x.xx") per snapshot; the final OIP if there are none."""
    snaps = np.asarray(oip.snapshots)
    steps = tuple(oip.snapshot_steps)
    if snaps.ndim == 4 and len(snaps) and len(steps) == len(snaps):
        return [(snaps[i], f"step {s}", f"activation {activation_after(oip, s):.2f}") for i, s in enumerate(steps)]
    return [(np.asarray(oip.image), "final", f"activation {float(oip.activation):.2f}")]


def short_number(value: float) -> str:
    """Two decimals, or two significant digits for values too small to show that way."""
    return f"{value:.2f}" if value == 0 or abs(value) >= 0.01 else f"{value:.2g}"


def item_name(names, index) -> str:
    """The name of dataset image ``index`` for a title: its file name if known, else ``#index``."""
    index = int(index)
    if names is None:
        return f"#{index}"
    name = names(index) if callable(names) else names[index]
    name = str(name).rsplit("/", 1)[-1]
    return name if len(name) <= 14 else name[:6] + "…" + name[-7:]


def class_label(class_names: Sequence[str] | None, index: int) -> str:
    """The name of class ``index``, or the index itself if no name is known."""
    if class_names is not None and 0 <= index < len(class_names):
        return str(class_names[index])
    return str(index)


def class_names_for(class_names: Sequence[str] | None, n: int) -> list[str]:
    """Names of ``n`` classes: the given ones if there are enough, else ``"0"``, ``"1"``, ..."""
    if class_names is not None and len(class_names) >= n:
        return [str(c) for c in class_names]
    return [str(c) for c in range(n)]


def example_title(names, index: int, value: float, labels=None, class_names: Sequence[str] | None = None) -> str:
    """"image name / mean activation", and its class on a second line if the image has a label."""
    title = f"{item_name(names, index)} / {short_number(float(value))}"
    label = int(dataset_item(labels, index, "label")) if labels is not None else -1
    if label >= 0:  # -1: no label for this image
        title += f"\n{class_label(class_names, label)}"
    return title


def firing_note(examples, map_index: int, shown_values) -> str:
    """'' when every shown example drives the map, else how many images do at all.

    A mean activation of exactly 0 means the map is off on the whole image
    (ReLU); such images fill the top-k only by tie order and are not shown.
    """
    if all(float(v) != 0 for v in shown_values):
        return ""
    firing = int(round(float(examples.fire_fraction[map_index]) * examples.n_images))
    if firing == 0 or float(shown_values[0]) == 0:
        return "none makes the map fire"
    return f"fires on only {firing} of {examples.n_images} images"


def ratio_text(ratio: float | None) -> str:
    """The superstimulus ratio for a card, or why there is none."""
    if ratio is None:
        return "not assessed"
    ratio = float(ratio)
    if not math.isfinite(ratio):
        return "n/a (silent on data)"
    return f"{ratio:.2f}"


def quality_text(oip) -> str:
    """The OIP's quality numbers in short, e.g. ``"jitter 0.63 · hf 0.34"``; ``""`` if it has none.

    Jitter robustness and high-frequency share (:mod:`oipscope.search.quality`), two
    decimals each, ``n/a`` where not defined (NaN: an OIP that does not drive its
    map); a number that is None (results of older versions) is left out.
    """
    parts = []
    for name, value in (("jitter", getattr(oip, "jitter_robustness", None)), ("hf", getattr(oip, "hf_share", None))):
        if value is not None:
            value = float(value)
            parts.append(f"{name} {value:.2f}" if math.isfinite(value) else f"{name} n/a")
    return " · ".join(parts)
