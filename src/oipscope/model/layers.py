"""Which layers to visualize: one per convolution by default, or names, globs and ``all``.

A convolution's maps are shown as the network uses them: after the
normalization and activation layers that directly follow it. For a Keras-2
mini-Xception that is ``activation_1`` for ``conv2d_1 -> batch_normalization_1
-> activation_1``, and ``batch_normalization_5`` for a separable convolution
whose normalized output goes into a max-pooling and a residual ``Add``.

Example:
    >>> select_layers(model, "block*_relu, conv2d_1")   # doctest: +SKIP
    ['conv2d_1', 'block1_relu', 'block2_relu']
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..errors import LayerError
from .loading import feature_layers, get_layer

if TYPE_CHECKING:
    import keras

__all__ = [
    "CONV_CLASSES",
    "CHAIN_CLASSES",
    "default_layers",
    "select_layers",
]

CONV_CLASSES: tuple[str, ...] = ("Conv1D", "Conv2D", "SeparableConv2D", "DepthwiseConv2D", "Conv2DTranspose")
"""Keras layer classes that count as convolutions (a subclass counts too)."""

CHAIN_CLASSES: tuple[str, ...] = (
    "BatchNormalization", "LayerNormalization", "GroupNormalization",
    "Activation", "ReLU", "LeakyReLU", "PReLU", "ELU",
)
"""Layers that belong to the convolution before them: its maps are taken after them."""

_GLOB_CHARS = frozenset("*?[")


def _classes(names: tuple[str, ...]) -> tuple[type, ...]:
    import keras

    return tuple(getattr(keras.layers, name) for name in names)


def _consumers(model: keras.Model) -> dict[int, dict[int, object]]:
    """``id(layer) -> {id(node): layer of that node}`` for each call reading the layer's output.

    Only this model's graph counts (Keras 3's nodes; a Sequential's inner
    Functional); a Sequential without one is the chain its layer list describes.
    """
    graph = getattr(model, "_functional", None) or model
    by_depth = getattr(graph, "_nodes_by_depth", None)
    layers = model.layers
    if by_depth is None:
        return {id(a): {id(b): b} for a, b in zip(layers, layers[1:])}
    consumers: dict[int, dict[int, object]] = {}
    for nodes in by_depth.values():
        for node in nodes:
            for parent in node.parent_nodes:
                consumers.setdefault(id(parent.operation), {})[id(node)] = node.operation
    return consumers


def default_layers(model: keras.Model) -> list[str]:
    """One layer per convolution, in model order, taken after its normalization and activation.

    From each convolution the chain of directly following normalization and
    activation layers (:data:`CHAIN_CLASSES`) is followed while the current
    output feeds exactly one layer; the last layer reached is picked. Only
    layers with 4-D (feature-map) outputs count. A sub-model used as a layer
    is opaque. A model without such convolutions gets all its layers with feature maps.
    """
    with_maps = [info.name for info in feature_layers(model)]
    convs, chain = _classes(CONV_CLASSES), _classes(CHAIN_CLASSES)
    consumers = _consumers(model)
    picked: set[str] = set()
    for layer in model.layers:
        if not isinstance(layer, convs):
            continue
        current = layer
        while len(readers := consumers.get(id(current), {})) == 1:
            (follower,) = readers.values()
            if not isinstance(follower, chain):
                break
            current = follower
        picked.add(current.name)
    return [name for name in with_maps if name in picked] or with_maps


def _is_glob(item: str) -> bool:
    return any(char in _GLOB_CHARS for char in item)


def _sample(names: list[str], n: int = 8) -> str:
    return ", ".join(names[:n]) + (f", ... ({len(names)} in all)" if len(names) > n else "") if names else "none"


def _items(spec: str | Sequence[str], names: frozenset[str] = frozenset()) -> list[str]:
    """The items of a selection: an exact layer name as it is (``" conv b "`` keeps its spaces),
    anything else with the spaces around it removed, empty ones left out."""
    parts = spec.split(",") if isinstance(spec, str) else list(spec)
    for part in parts:
        if not isinstance(part, str):
            raise LayerError(f"layer spec items must be strings, got {part!r} ({type(part).__name__})")
    return [part if part in names else part.strip() for part in parts if part.strip()]


def select_layers(model: keras.Model, spec: str | Sequence[str] | None = None) -> list[str]:
    """Layer names to visualize, in model order, without duplicates.

    Args:
        model: a Keras model.
        spec: None or "" for :func:`default_layers`; else a comma-separated
            string or a sequence of items, each a layer name, a shell glob
            (``activation_*``, ``block*_relu``) or ``all`` (every layer with
            feature maps). An item that is an exact layer name is a name even
            if it contains glob characters or spaces around it (so the names
            this function returns select exactly those layers again).

    Raises:
        LayerError: an unknown name (with close names), a glob matching no
            layer with feature maps, or a named layer without feature maps.
    """
    if spec is None or (isinstance(spec, str) and not spec.strip()):
        return default_layers(model)
    all_names = frozenset(layer.name for layer in model.layers)
    items = _items(spec, all_names)
    if not items:
        return default_layers(model)
    with_maps = [info.name for info in feature_layers(model)]
    chosen: set[str] = set()
    for item in items:
        if item == "all":
            chosen.update(with_maps)
        elif item not in all_names and _is_glob(item):
            matches = [name for name in with_maps if fnmatch.fnmatchcase(name, item)]
            if not matches:
                raise LayerError(f"layer pattern {item!r} matches no layer with feature maps in model "
                                 f"{model.name!r}; layers with maps: {_sample(with_maps)}")
            chosen.update(matches)
        else:
            layer = get_layer(model, item)
            if item not in with_maps:
                shape = tuple(getattr(getattr(layer, "output", None), "shape", ()) or ())
                what = "is the model's input" if type(layer).__name__ == "InputLayer" else f"has output shape {shape}"
                raise LayerError(f"layer {item!r} {what}, no feature maps; layers with maps: {_sample(with_maps)}")
            chosen.add(item)
    return [name for name in with_maps if name in chosen]
