"""One trace per architecture: models of the same shape share their compiled loops.

A ``tf.function`` captures the variables of the model it was traced on, so a new
model (another checkpoint, the same CNN trained twice, a model loaded again) is
traced anew: about a second per compiled loop and layer. The loops of
:mod:`oipscope.ascent.pixels` and :mod:`oipscope.ascent.parameters` take the model's weights as an
input instead (:func:`weights_of`, read inside :func:`with_weights`), and
:func:`shared_function` keeps one of them per architecture: the second model of a
shape runs in the first one's trace, with its own weights, bit for bit as in a
trace of its own.

Two models share an architecture when their layers, configurations (apart from
names) and weight shapes are equal and every layer is one of Keras' own: a custom
layer or a ``Lambda`` may hold Python state a configuration does not show, so
their models keep a trace per model object.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import weakref
from collections import OrderedDict
from typing import Any, Callable, Iterator

__all__ = ["architecture_key", "shared_function", "weight_specs", "weights_of", "with_weights"]

_OPAQUE = frozenset({"Lambda", "TFSMLayer", "TorchModuleWrapper", "JaxLayer", "FlaxLayer"})
_KEYS: "weakref.WeakKeyDictionary[Any, str | None]" = weakref.WeakKeyDictionary()
_SHARED: "OrderedDict[tuple, Callable]" = OrderedDict()
_PER_MODEL: "weakref.WeakKeyDictionary[Any, dict]" = weakref.WeakKeyDictionary()
SHARED_LIMIT = 128
"""Compiled functions kept for architectures (each keeps the sub-model it was traced on alive);
a zoo makes two or three per layer and comes back to them when it assesses the OIPs."""


def _all_layers(model) -> Iterator[Any]:
    for layer in model.layers:
        yield layer
        if hasattr(layer, "layers"):  # a nested model
            yield from _all_layers(layer)


def _built_in(model) -> bool:
    import keras

    if not isinstance(model, keras.Model) or type(model).__name__ not in ("Functional", "Sequential"):
        return False
    for layer in _all_layers(model):
        kind = type(layer)
        if not kind.__module__.startswith("keras.") or kind.__name__ in _OPAQUE:
            return False
        if isinstance(layer, keras.Model) and kind.__name__ not in ("Functional", "Sequential"):
            return False
    return True


def _anonymous(config: Any, names: frozenset[str], tokens: dict[str, str]) -> Any:
    """``config`` with the layer and model ``names`` replaced by their order of appearance."""

    def token(name: Any) -> Any:
        if not isinstance(name, str) or name not in names:
            return name
        return tokens.setdefault(name, f"#{len(tokens)}")

    if isinstance(config, (list, tuple)):
        return [_anonymous(item, names, tokens) for item in config]
    if not isinstance(config, dict):
        return config
    out = {}
    for key, value in config.items():
        if key == "name":
            out[key] = token(value)
        elif key == "trainable":
            continue  # frozen or not, the forward pass is the same
        elif key == "keras_history" and isinstance(value, (list, tuple)) and value:
            out[key] = [token(value[0]), *value[1:]]
        elif key in ("input_layers", "output_layers") and isinstance(value, (list, tuple)):
            out[key] = [[token(v[0]), *v[1:]] if isinstance(v, (list, tuple)) and v else token(v) for v in value]
        else:
            out[key] = _anonymous(value, names, tokens)
    return out


def _entry_names(config: Any) -> Iterator[str]:
    """The names of the layers a (nested) model configuration lists, its input layers included."""
    if isinstance(config, dict):
        for entry in config.get("layers", ()) if isinstance(config.get("layers"), list) else ():
            if isinstance(entry, dict) and isinstance(entry.get("name"), str):
                yield entry["name"]
        for value in config.values():
            yield from _entry_names(value)
    elif isinstance(config, (list, tuple)):
        for item in config:
            yield from _entry_names(item)


def _compute_key(model) -> str | None:
    if not _built_in(model):
        return None
    try:
        config = model.get_config()
        names = frozenset([model.name, *(layer.name for layer in _all_layers(model)), *_entry_names(config)])
        text = json.dumps([_anonymous(config, names, {}),
                           [(tuple(v.shape), str(v.dtype)) for v in model.variables]], sort_keys=True, default=str)
    except Exception:  # noqa: BLE001 - a configuration Keras cannot give or JSON cannot hold: no sharing
        return None
    return hashlib.sha256(text.encode()).hexdigest()


def architecture_key(model) -> str | None:
    """A digest equal for models of the same architecture and weight shapes; None: do not share."""
    try:
        if model in _KEYS:
            return _KEYS[model]
    except TypeError:  # not weak-referenceable
        return _compute_key(model)
    key = _KEYS[model] = _compute_key(model)
    return key


def weight_specs(model) -> list:
    """The ``tf.TensorSpec`` of each of the model's variables, in ``model.variables`` order."""
    import tensorflow as tf

    return [tf.TensorSpec(tuple(v.shape), v.dtype) for v in model.variables]


def weights_of(model) -> list:
    """The current values of the model's variables, for a loop built by :func:`shared_function`."""
    return [v.value for v in model.variables]


@contextlib.contextmanager
def with_weights(model, weights) -> Iterator[None]:
    """While tracing inside: the model's variables read as ``weights`` (a loop's input)."""
    import keras

    with keras.StatelessScope(state_mapping=list(zip(model.variables, weights))):
        yield


def shared_function(model, key: tuple, build: Callable[[Any], Callable]) -> Callable:
    """``build(model)``, made once per architecture (and ``key``) and kept.

    ``build(owner)`` traces with ``owner`` and must read its variables inside
    :func:`with_weights` from a weights input, so that any model of the same
    architecture can call the result with :func:`weights_of` itself.
    """
    arch = architecture_key(model)
    if arch is None:
        try:
            cache = _PER_MODEL.setdefault(model, {})
        except TypeError:
            return build(model)
        if key not in cache:
            cache[key] = build(model)
        return cache[key]
    full = (arch, key)
    if full in _SHARED:
        _SHARED.move_to_end(full)
        return _SHARED[full]
    function = _SHARED[full] = build(model)
    while len(_SHARED) > SHARED_LIMIT:
        _SHARED.popitem(last=False)
    return function
