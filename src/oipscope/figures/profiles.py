"""Figures of activation patterns by class (the series' parts IV-VI): class profiles and pattern accuracy.

A map's *class profile* is its mean activation over the images of each class
(:attr:`oipscope.analysis.examples.DatasetExamples.class_means`, gathered in the same
streamed pass as the dataset examples). :func:`class_profiles` draws a layer's
profiles as a maps × classes heatmap, the maps in index order or by
:func:`~oipscope.analysis.examples.selectivity`; :func:`pattern_accuracy_curve` draws how
well the layer's vector of map means alone tells the classes apart, layer by layer.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from matplotlib.figure import Figure

from ..errors import ConfigError
from ..analysis.examples import selectivity
from .plot import CMAP, NotebookFigure

__all__ = ["PROFILE_ORDERS", "profile_order", "class_profiles", "pattern_accuracy_curve"]

PROFILE_ORDERS = ("index", "selectivity")


def profile_order(examples, order: str = "selectivity") -> np.ndarray:
    """Map indices in the heatmap's row order: by index, or most selective first (flat maps last)."""
    if order not in PROFILE_ORDERS:
        raise ConfigError(f"order must be one of {', '.join(PROFILE_ORDERS)}, got {order!r}")
    n_maps = examples.n_maps
    if order == "index" or examples.class_means is None:
        return np.arange(n_maps)
    values = selectivity(examples.class_means)
    return np.lexsort((np.arange(n_maps), -np.nan_to_num(values, nan=-np.inf)))


def class_profiles(examples, class_names: Sequence[str] | None = None, *, order: str = "selectivity",
                   title: str | None = None) -> Figure:
    """A layer's class profiles as a heatmap: one row per map, one column per class.

    Each row is scaled to its own maximum (the colour shows which classes a map
    prefers, not how strongly it fires); the row label gives the map index and
    its selectivity.

    Raises:
        ConfigError: the examples were computed without labels.
    """
    if examples.class_means is None:
        raise ConfigError(f"the examples of {examples.layer_name!r} have no class profiles: "
                          "they were computed on images without labels")
    rows = profile_order(examples, order)
    profile = np.asarray(examples.class_means, np.float64)[rows]
    shifted = profile - np.nanmin(profile, axis=1, keepdims=True)
    peak = np.nanmax(shifted, axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        scaled = np.where(peak > 0, shifted / peak, 0.0)
    n_maps, n_classes = scaled.shape
    names = [str(c) for c in class_names] if class_names is not None and len(class_names) >= n_classes \
        else [str(c) for c in range(n_classes)]
    row_h = 0.16 if n_maps <= 64 else 0.09
    height = min(0.9 + n_maps * row_h, 30.0)
    width = 1.6 + 0.32 * n_classes + 0.8
    fig = NotebookFigure(figsize=(width, height))
    ax = fig.add_axes((1.2 / width, 0.75 / height, 0.32 * n_classes / width, (height - 1.2) / height))
    image = ax.imshow(scaled, aspect="auto", cmap=CMAP, vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks(range(n_classes), names, rotation=90 if max(len(n) for n in names) > 2 else 0, fontsize=7)
    sel = selectivity(examples.class_means)[rows]
    step = max(1, math.ceil(n_maps / 64))
    shown = list(range(0, n_maps, step))
    ax.set_yticks(shown, [f"map {int(rows[i])}" + ("" if np.isnan(sel[i]) else f" · {sel[i]:.2f}") for i in shown],
                  fontsize=6)
    ax.tick_params(length=0)
    bar = fig.colorbar(image, cax=fig.add_axes(((width - 0.55) / width, 0.75 / height, 0.12 / width,
                                                (height - 1.2) / height)))
    bar.set_label("mean activation, share of the map's best class", fontsize=7)
    bar.ax.tick_params(labelsize=6)
    ordering = "most selective first" if order == "selectivity" else "by map index"
    fig.suptitle(title or f"{examples.layer_name}: class profiles ({ordering})", fontsize=9,
                 y=1 - 0.1 / height, va="top")
    return fig


def pattern_accuracy_curve(layer_names: Sequence[str], accuracies: Sequence[float]) -> Figure:
    """Accuracy of the nearest-class-pattern classifier per layer, as a curve over the layers."""
    if len(layer_names) != len(accuracies) or not len(layer_names):
        raise ConfigError(f"{len(layer_names)} layer names for {len(accuracies)} accuracies; give one per layer")
    values = np.asarray(accuracies, np.float64) * 100
    rotate = len(layer_names) > 4
    width, height = max(4.0, 1.0 + 0.55 * len(layer_names)), 2.4 + (0.5 if rotate else 0.0)
    bottom = 0.95 if rotate else 0.45
    fig = NotebookFigure(figsize=(width, height))
    ax = fig.add_axes((0.7 / width, bottom / height, (width - 1.0) / width, (height - bottom - 0.45) / height))
    positions = np.arange(len(layer_names))
    ax.plot(positions, values, "o-", color="#31688e", lw=1.5, ms=4)
    for x, v in zip(positions, values):
        if np.isfinite(v):
            ax.annotate(f"{v:.0f}%", (x, v), textcoords="offset points", xytext=(0, 5), ha="center", fontsize=7)
    ax.set_xticks(positions, [str(n) for n in layer_names], rotation=30 if rotate else 0,
                  ha="right" if rotate else "center", fontsize=7)
    ax.set_xlim(-0.5, len(layer_names) - 0.5)
    ax.set_ylim(0, 110)
    ax.set_ylabel("accuracy (%)", fontsize=7)
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3, lw=0.5)
    ax.set_title("pattern accuracy: nearest class centroid of the map means", fontsize=8)
    return fig
