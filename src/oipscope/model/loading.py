"""Access to Keras models: safe loading, layer lookup, feature sub-models, summaries."""

from __future__ import annotations

import difflib
import os
import re
import weakref
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from ..errors import ConfigError, LayerError, ModelError

if TYPE_CHECKING:  # keras (TensorFlow) is imported on use: a bad path fails in a blink
    import keras

__all__ = [
    "LayerInfo",
    "MAX_DESCRIPTION_BYTES",
    "load_model",
    "check_model_file",
    "get_layer",
    "image_input_shape",
    "feature_layers",
    "feature_submodel",
    "output_submodel",
    "traceable",
    "flattened",
    "with_input_size",
    "submodel_name",
    "preactivation_submodel",
    "describe",
]


def submodel_name(prefix: str, layer_name: str) -> str:
    """A sub-model name TensorFlow accepts as a name scope, whatever the layer is called."""
    return prefix + re.sub(r"[^A-Za-z0-9_.-]", "_", layer_name)


@dataclass(frozen=True)
class LayerInfo:
    """One layer of a model: name, class, output shape and number of feature maps.

    ``n_maps`` is the channel count for layers with 4-D (N, H, W, C) output,
    else None.
    """

    name: str
    class_name: str
    output_shape: tuple
    n_params: int

    @property
    def n_maps(self) -> int | None:
        return int(self.output_shape[-1]) if len(self.output_shape) == 4 else None


_DAMAGED = "the file is damaged, truncated or not a Keras model: re-save or re-download it"
MAX_DESCRIPTION_BYTES = 32 << 20
"""Largest ``config.json`` / ``metadata.json`` a ``.keras`` archive may unpack to (32 MiB; a large
CNN's is under 1 MiB): a bigger one is a zip bomb, refused from the archive's directory unread."""
_DESCRIPTIONS = ("config.json", "metadata.json")


def check_model_file(path: str | os.PathLike) -> Path:
    """Fail fast, before TensorFlow starts, on a path that cannot be a Keras model file.

    Raises:
        ModelError: the path is missing or a folder, has another suffix, a ``.keras`` file is no zip
            archive, or its description unpacks to more than :data:`MAX_DESCRIPTION_BYTES`.
    """
    path = Path(path)
    if path.is_dir():
        raise ModelError(f"{path} is a directory, not a model file; give the .keras or .h5 file itself "
                         "(a SavedModel directory: load it in Keras and save it with model.save('model.keras'))")
    if not path.is_file():
        raise ModelError(f"model file not found: {path}; check the path (a .keras or .h5 file)")
    suffix = path.suffix.lower()
    if suffix not in (".keras", ".h5", ".hdf5"):
        raise ModelError(f"{path} is not a Keras model file: expected a .keras or .h5 file "
                         "(save one with model.save('model.keras'))")
    if suffix == ".keras":
        _check_keras_archive(path)
    return path


def _check_keras_archive(path: Path) -> None:
    """Refuse a ``.keras`` file that is no zip archive or whose description would unpack too large."""
    not_zip = (f"{path} is not a valid .keras file (not a zip archive: truncated or wrong format); "
               "re-save or re-download the model")
    if not zipfile.is_zipfile(path):
        raise ModelError(not_zip)
    try:
        with zipfile.ZipFile(path) as archive:  # reads the directory only
            sizes = {info.filename: info.file_size for info in archive.infolist() if info.filename in _DESCRIPTIONS}
    except (zipfile.BadZipFile, OSError, ValueError):
        raise ModelError(not_zip) from None
    for name, size in sizes.items():
        if size > MAX_DESCRIPTION_BYTES:
            raise ModelError(f"{path}: its {name} unpacks to {size / (1 << 20):,.0f} MiB, over the cap of "
                             f"{MAX_DESCRIPTION_BYTES >> 20} MiB for a model description (a zip bomb?); "
                             "refused unread: use a model file from a source you trust, or re-save it")


def _condensed(message: str, limit: int = 300) -> tuple[str, bool]:
    """The line of a Keras error that says what is wrong, and whether anything was left out.

    Keras nests deserialization errors ("... could not be deserialized properly ... config={...}
    Exception encountered: ..."), the innermost cause last; its first line otherwise.
    """
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    causes = [line for line in lines if line.startswith("Exception encountered:")]
    line = causes[-1].removeprefix("Exception encountered:").strip() if causes else (lines[0] if lines else "")
    for marker in (" Full object config:", " config={", "config={"):
        if marker in line:
            line = line[:line.index(marker)].rstrip(" .:,") + " ..."
    if len(line) > limit:
        line = line[:limit].rstrip() + " ..."
    return line, line != message.strip()


_LEGACY_KEYS = ("groups", "kernel_initializer", "kernel_regularizer", "kernel_constraint")
_LENIENT_CLASSES = ("SeparableConv1D", "SeparableConv2D", "DepthwiseConv1D", "DepthwiseConv2D",
                    "Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose")


def _legacy_h5_objects() -> dict[str, Any]:
    """Loaders for layer configs that tf.keras >= 2.3 wrote into ``.h5`` files and Keras 3 refuses.

    tf.keras saved ``groups`` (and for separable convolutions ``kernel_*``) in the
    configs of these layers; Keras 3 raises "Unrecognized keyword arguments".
    Each loader drops just the keys the Keras 3 class does not accept, so the
    layers stay plain Keras classes with the same weights.
    """
    import inspect

    import keras

    objects: dict[str, Any] = {}
    for name in _LENIENT_CLASSES:
        base = getattr(keras.layers, name, None)
        if base is None:
            continue
        accepted = inspect.signature(base.__init__).parameters
        drop = frozenset(key for key in _LEGACY_KEYS if key not in accepted)

        def from_config(config, base=base, drop=drop):
            return base.from_config({key: value for key, value in config.items() if key not in drop})

        objects[name] = type(name, (), {"from_config": staticmethod(from_config)})
    return objects


def load_model(path: str | os.PathLike, *, safe_mode: bool = True) -> keras.Model:
    """Load a ``.keras`` or legacy ``.h5`` model, without compiling it.

    Keras' safe mode stays on unless ``safe_mode=False``: a ``.keras`` file with
    a ``Lambda`` layer (arbitrary code) is then refused.

    Raises:
        ModelError: the file is missing, not a Keras model, truncated, or unsafe (one line: the
            meaningful line of Keras' message; the exception's cause holds all of it).
    """
    path = check_model_file(path)
    import keras

    try:
        legacy = _legacy_h5_objects() if path.suffix.lower() in (".h5", ".hdf5") else None
        model = keras.saving.load_model(path, compile=False, safe_mode=safe_mode, custom_objects=legacy)
    except ValueError as exc:
        if "safe_mode" in str(exc) or "Lambda" in str(exc):
            raise ModelError(
                f"{path} contains code (e.g. a Lambda layer) and was refused in safe mode; "
                "load it only if you trust its source, with --unsafe-load (safe_mode=False)"
            ) from exc
        raise ModelError(_load_error(path, str(exc))) from exc
    except Exception as exc:  # h5py/zip/deserialization errors come in many types
        raise ModelError(_load_error(path, str(exc), type(exc).__name__, _DAMAGED)) from exc
    if not isinstance(model, keras.Model):
        raise ModelError(f"{path} holds a {type(model).__name__}, not a Keras model")
    return model


def _load_error(path: Path, message: str, kind: str = "", advice: str = "") -> str:
    """One line for a Keras load error: its meaningful line, the advice, and where the rest is."""
    line, cut = _condensed(message)
    text = f"cannot load model {path}: {kind + ': ' if kind else ''}{line}{'; ' + advice if advice else ''}"
    return text + ("; oipscope --debug ... shows Keras' full message" if cut else "")


def image_input_shape(model: keras.Model) -> tuple[int, int, int]:
    """Return (height, width, channels) of the model's single image input.

    Raises:
        ModelError: the model has several inputs or its input is not an image.
    """
    inputs = model.inputs
    if len(inputs) != 1:
        raise ModelError(f"model {model.name!r} has {len(inputs)} inputs; oipscope needs exactly one image input")
    shape = tuple(inputs[0].shape)
    if len(shape) != 4 or any(dim is None for dim in shape[1:]):
        raise ModelError(
            f"model {model.name!r} input has shape {shape}; oipscope needs an image input "
            "(batch, height, width, channels) with fixed size; for a model that takes any size, give "
            "--input-size H,W (in Python: oipscope.model.loading.with_input_size)"
        )
    if shape[3] not in (1, 3):
        raise ModelError(f"model {model.name!r} input has {shape[3]} channels; oipscope supports 1 or 3")
    return int(shape[1]), int(shape[2]), int(shape[3])


def _layer_info(layer) -> LayerInfo:
    try:
        shape = tuple(layer.output.shape)
    except (AttributeError, ValueError):
        shape = ()
    return LayerInfo(layer.name, type(layer).__name__, shape, int(layer.count_params()))


def get_layer(model: keras.Model, name: str):
    """Return the layer called ``name``; an unknown name lists the closest names."""
    names = [layer.name for layer in model.layers]
    if name in names:
        return model.get_layer(name)
    close = difflib.get_close_matches(name, names, n=5, cutoff=0.4)
    hint = f"did you mean {', '.join(close)}?" if close else f"layers are: {', '.join(names)}"
    raise LayerError(f"no layer named {name!r} in model {model.name!r}; {hint}")


def feature_layers(model: keras.Model) -> list[LayerInfo]:
    """Layers with feature maps (4-D outputs), in model order."""
    return [info for info in map(_layer_info, model.layers) if info.n_maps is not None and info.class_name != "InputLayer"]


_SCOPE_SAFE = re.compile(r"[A-Za-z0-9.][A-Za-z0-9_.-]*")  # what tf.name_scope accepts in a graph
_TRACEABLE: "weakref.WeakKeyDictionary[Any, tuple[Any, dict[str, str]]]" = weakref.WeakKeyDictionary()
_SUBMODELS: "weakref.WeakKeyDictionary[Any, dict[tuple[str, str], Any]]" = weakref.WeakKeyDictionary()


def _scope_safe_names(names: list[str]) -> dict[str, str]:
    """Map each layer name TensorFlow refuses as a name scope to a unique one it accepts."""
    taken = set(names)
    renamed: dict[str, str] = {}
    for name in names:
        if _SCOPE_SAFE.fullmatch(name):
            continue
        base = "L" + re.sub(r"[^A-Za-z0-9_.-]", "_", name)
        candidate, n = base, 1
        while candidate in taken:
            candidate, n = f"{base}_{n}", n + 1
        taken.add(candidate)
        renamed[name] = candidate
    return renamed


def traceable(model: keras.Model) -> tuple[keras.Model, dict[str, str]]:
    """The model, or a copy of it whose layer names work inside a ``tf.function``.

    Keras accepts any layer name (``"conv 1"``, ``"a<b>"``) but TensorFlow
    refuses such names as graph name scopes. Such a model is cloned once with
    cleaned names; its weights are copied from the original on every call, so
    the copy follows further training. Returns ``(model, {old: new name})``.
    """
    import keras

    inputs = {id(layer) for layer in model.layers if type(layer).__name__ == "InputLayer"}
    renamed = _scope_safe_names([layer.name for layer in model.layers if id(layer) not in inputs])
    if not renamed:
        return model, {}
    cached = _TRACEABLE.get(model)
    if cached is None or cached[1] != renamed:
        def rename(layer):
            config = layer.get_config()
            config["name"] = renamed.get(layer.name, layer.name)
            return type(layer).from_config(config)

        cached = (keras.models.clone_model(model, clone_function=rename), renamed)
        _TRACEABLE[model] = cached
    clone = cached[0]
    for layer in model.layers:
        if layer.weights:
            clone.get_layer(renamed.get(layer.name, layer.name)).set_weights(layer.get_weights())
    return clone, renamed


_FLAT: "weakref.WeakKeyDictionary[Any, tuple[Any, list[tuple[Any, Any]]]]" = weakref.WeakKeyDictionary()
_SIZED: "weakref.WeakKeyDictionary[Any, dict]" = weakref.WeakKeyDictionary()


def _is_nested_model(layer) -> bool:
    import keras

    return isinstance(layer, keras.Model)


def _flat_graph(model: keras.Model, batch_shape: tuple | None = None, dtype_policy: str | None = None):
    """A functional model computing what ``model`` does, its nested models' layers inlined as
    fresh copies (on an input of ``batch_shape``, default the model's; computing in ``dtype_policy``,
    default each layer's own); returns it and the (original, copy) pairs of layers with weights."""
    import keras

    copies: dict[int, Any] = {}
    pairs: list[tuple[Any, Any]] = []

    def copy_of(layer):
        if id(layer) not in copies:
            try:
                config = layer.get_config()
                if dtype_policy is not None:
                    config["dtype"] = dtype_policy
                copies[id(layer)] = type(layer).from_config(config)
            except Exception as exc:  # noqa: BLE001 - any failure to rebuild a layer is reported the same way
                raise ModelError(f"model {model.name!r} nests models, and its layer {layer.name!r} "
                                 f"({type(layer).__name__}) cannot be copied to inline them ({exc}); "
                                 "give the nested model itself, or a model without nesting") from None
            pairs.append((layer, copies[id(layer)]))
        return copies[id(layer)]

    def operation(op):
        if _is_nested_model(op):
            return lambda *args, **kwargs: apply(op, args[0])  # kwargs such as training=False: inference anyway
        return copy_of(op)

    def apply(net, x):
        if type(net).__name__ == "Sequential":
            for layer in net.layers:
                x = apply(layer, x) if _is_nested_model(layer) else copy_of(layer)(x)
            return x
        if not hasattr(net, "_run_through_graph"):
            raise ModelError(f"model {model.name!r} nests the subclassed model {net.name!r}, whose layers "
                             "cannot be inlined; give a model built with the Sequential or functional API")
        return net._run_through_graph(x, operation_fn=operation)

    source = model.inputs[0]
    history = getattr(source, "_keras_history", None)  # the InputLayer, whose name the summary shows
    image = keras.Input(batch_shape=batch_shape or tuple(source.shape), dtype=source.dtype,
                        name=getattr(history[0] if history else source, "name", None))
    try:
        flat = keras.Model(image, apply(model, image), name=model.name)
    except ValueError as exc:  # e.g. an inner layer named like an outer one
        raise ModelError(f"model {model.name!r} nests models whose layers cannot be inlined ({exc}); "
                         "rename the clashing layers, or give the nested model itself") from None
    return flat, pairs


def _with_copied_weights(cached) -> keras.Model:
    flat, pairs = cached
    for original, copy in pairs:
        if original.weights:
            copy.set_weights(original.get_weights())
    return flat


def with_input_size(model: keras.Model, height: int, width: int) -> keras.Model:
    """The model with an image input of ``height`` × ``width`` pixels where it takes any size
    (``None``, e.g. ``keras.applications`` bases built without ``input_shape``).

    A model of fixed size is returned as it is when the size matches. Otherwise an equal
    functional model is built on the fixed input (nested models inlined, as :func:`flattened`
    does), once per model and size; it takes the original's weights on every call.

    Raises:
        ConfigError: the size is not positive, or the model has another fixed size.
        ModelError: the model has no single image input, or is subclassed.
    """
    if height < 1 or width < 1:
        raise ConfigError(f"--input-size must be positive, got {height},{width}")
    inputs = getattr(model, "inputs", None) or []
    shape = tuple(inputs[0].shape) if len(inputs) == 1 else ()
    if len(shape) != 4 or shape[3] is None:
        raise ModelError(f"model {model.name!r} has no single image input (batch, height, width, channels) "
                         "whose size could be set")
    if shape[1] is not None and shape[2] is not None:
        if (int(shape[1]), int(shape[2])) == (height, width):
            return model
        raise ConfigError(f"model {model.name!r} takes {shape[1]}x{shape[2]} images; --input-size "
                          f"{height},{width} only fixes the size of models that take any size")
    for given, dim in ((height, shape[1]), (width, shape[2])):
        if dim is not None and int(dim) != given:
            raise ConfigError(f"model {model.name!r} input has shape {shape}; --input-size "
                              f"{height},{width} does not fit its fixed side of {dim}")
    if type(model).__name__ not in ("Functional", "Sequential"):
        raise ModelError(f"the input size of the subclassed model {model.name!r} cannot be set here; build it "
                         f"on keras.Input(shape=({height}, {width}, {shape[3]}))")
    sizes = _SIZED.setdefault(model, {})
    if (height, width) not in sizes:
        sizes[(height, width)] = _flat_graph(model, (None, height, width, shape[3]))
    return _with_copied_weights(sizes[(height, width)])


def flattened(model: keras.Model) -> keras.Model:
    """The model, or, if it nests models (a pretrained base inside a classifier), an equal
    functional model with the nested models' layers inlined, so that every layer can be chosen.

    The copy is made once per model; its weights are copied from the original on every
    call, so it follows further training.

    Raises:
        ModelError: a nested model or layer that cannot be inlined (subclassed, clashing names).
    """
    if (type(model).__name__ not in ("Functional", "Sequential") or len(model.inputs) != 1
            or not any(_is_nested_model(layer) for layer in model.layers)):
        return model  # nothing nested, or a model other checks refuse with their own message
    cached = _FLAT.get(model)
    if cached is None:
        cached = _FLAT[model] = _flat_graph(model)
    return _with_copied_weights(cached)


def _cached_submodel(model: keras.Model, kind: str, layer_name: str, build: Callable[[], Any]):
    """One sub-model per (model, kind, layer): ``tf.function`` loops built on it are reused."""
    try:
        per_model = _SUBMODELS.setdefault(model, {})
    except TypeError:  # not weak-referenceable
        return build()
    key = (kind, layer_name)
    if key not in per_model:
        per_model[key] = build()
    return per_model[key]


def output_submodel(model: keras.Model, layer_name: str, prefix: str = "out_") -> keras.Model:
    """Sub-model from the model's image input to the output of any layer (cached)."""
    import keras

    image_input_shape(model)
    layer = get_layer(model, layer_name)
    graph_model, renamed = traceable(model)
    inner = graph_model.get_layer(renamed.get(layer.name, layer.name))
    return _cached_submodel(
        graph_model, prefix, layer_name,
        lambda: keras.Model(graph_model.inputs[0], inner.output, name=submodel_name(prefix, layer_name)),
    )


_REARRANGING = ("Flatten", "Reshape")  # 2-D outputs whose units are only the positions of the maps before


def feature_submodel(model: keras.Model, layer_name: str) -> keras.Model:
    """Sub-model from the model's image input to the output of ``layer_name``.

    Works for Sequential and Functional models (the seed's ``_build_oip_model``).
    Repeated calls return the same sub-model, so compiled loops are reused.

    A dense (or global pooling) layer's units count as its maps (a 2-D output),
    so the OIPs of a classifier's outputs use the same machinery; a ``Flatten``
    only rearranges the maps before it, so it is refused.

    Raises:
        LayerError: unknown layer, or the layer has neither 4-D feature maps nor 2-D units.
    """
    image_input_shape(model)
    info = _layer_info(get_layer(model, layer_name))
    if info.n_maps is None and (len(info.output_shape) != 2 or info.class_name in _REARRANGING):
        with_maps = ", ".join(f.name for f in feature_layers(model)) or "none"
        raise LayerError(
            f"layer {layer_name!r} has output shape {info.output_shape}, no feature maps; "
            f"layers with maps: {with_maps}"
        )
    return output_submodel(model, layer_name, "oip_")


def preactivation_submodel(model: keras.Model, layer_name: str) -> keras.Model | None:
    """Like :func:`feature_submodel`, but the layer's own activation (e.g. ReLU) left out.

    Its gradient is non-zero where the layer's ReLU is off everywhere, so an
    ascent on it can wake a silent map. Returns None when the layer has no
    built-in non-linear activation or more than one input.
    """
    import keras

    layer = get_layer(model, layer_name)
    activation = getattr(layer, "activation", None)
    if activation is None or activation is keras.activations.linear or isinstance(layer.input, (list, tuple)):
        return None
    graph_model, renamed = traceable(model)
    inner = graph_model.get_layer(renamed.get(layer.name, layer.name))

    def build():
        config = inner.get_config()
        config["activation"] = "linear"
        config["name"] = inner.name + "_preactivation"
        linear_copy = type(inner).from_config(config)
        outputs = linear_copy(inner.input)
        return keras.Model(graph_model.inputs[0], outputs, name=submodel_name("oip_pre_", layer_name))

    submodel = _cached_submodel(graph_model, "oip_pre_", layer_name, build)
    submodel.get_layer(inner.name + "_preactivation").set_weights(layer.get_weights())  # follows the model's current weights
    return submodel


def describe(model: keras.Model) -> list[LayerInfo]:
    """Every layer of the model with its output shape and map count."""
    return [_layer_info(layer) for layer in model.layers]
