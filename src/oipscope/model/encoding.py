"""How a model expects its pixels: the input encoding, resolved once per model.

Three conventions cover nearly every Keras CNN:

- **per-image standardization** (the series' CNN and the embedded model): each
  image is shifted and scaled to mean 0 and standard deviation 1;
- **a value range**: pixels 0..255 mapped linearly onto ``[low, high]``, e.g.
  ``0,1``, ``-1,1`` or ``0,255`` (raw pixels, for models whose first layers are
  Keras ``Rescaling``/``Normalization``);
- **a range with per-channel mean/std** on top (the ImageNet convention:
  ``(pixel/255 - mean) / std``).

Any of them can take the channels in BGR order (OpenCV, and Keras' ``caffe`` models
such as VGG16 and ResNet50). :data:`PRESETS` names the three ``mode`` s of Keras'
``imagenet_utils.preprocess_input``: ``caffe``, ``tf`` and ``torch``.

An :class:`InputEncoding` turns pixels into model input (:meth:`~InputEncoding.encode`),
keeps an image inside the encoding during the ascent (:meth:`~InputEncoding.project`:
the series' re-standardization, or clipping to the range), places unit noise in it
(:meth:`~InputEncoding.start`) and turns model input back into pixels for display
(:meth:`~InputEncoding.decode`). Every saved result carries its encoding.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from ..errors import ConfigError

__all__ = [
    "STANDARDIZE",
    "RANGE",
    "RGB",
    "BGR",
    "PRESETS",
    "InputEncoding",
    "parse_encoding",
    "preprocessing_layers",
    "resolve_encoding",
]

STANDARDIZE = "standardize"
RANGE = "range"
RGB = "rgb"
BGR = "bgr"
_PREPROCESSING = ("Rescaling", "Normalization")
_PASS_THROUGH_PREFIXES = ("Random",)  # augmentation layers: the identity at inference


def _floats(values, name: str) -> tuple[float, ...] | None:
    if values is None:
        return None
    if isinstance(values, (int, float)):
        values = (values,)
    try:
        out = tuple(float(v) for v in values)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be numbers, got {values!r}") from None
    if not out or not all(math.isfinite(v) for v in out):
        raise ConfigError(f"{name} must be finite numbers, got {values!r}")
    return out


@dataclass(frozen=True)
class InputEncoding:
    """How pixels (0..255) become model input.

    Attributes:
        kind: ``"standardize"`` (per image) or ``"range"``.
        low, high: for ``"range"``: pixel 0 maps to ``low``, pixel 255 to ``high``.
        mean, std: for ``"range"``: optional per-channel (or one shared) mean and
            std subtracted and divided after the range mapping (ImageNet style).
        channel_order: ``"rgb"``, or ``"bgr"`` for a model that takes its colour
            channels reversed (mean/std are then given in the model's, BGR, order).
        source: where the encoding came from (``"given"``, ``"model layers"``,
            ``"assumed"``, ...); informative only, not part of equality.
    """

    kind: str = STANDARDIZE
    low: float = 0.0
    high: float = 1.0
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    channel_order: str = RGB
    source: str = field(default="given", compare=False)

    def __post_init__(self) -> None:
        if self.kind not in (STANDARDIZE, RANGE):
            raise ConfigError(f"input encoding kind must be {STANDARDIZE!r} or {RANGE!r}, got {self.kind!r}")
        if self.channel_order not in (RGB, BGR):
            raise ConfigError(f"channel order must be {RGB!r} or {BGR!r}, got {self.channel_order!r}")
        object.__setattr__(self, "mean", _floats(self.mean, "mean"))
        object.__setattr__(self, "std", _floats(self.std, "std"))
        low, high = _floats((self.low, self.high), "input range")
        object.__setattr__(self, "low", low)
        object.__setattr__(self, "high", high)
        if self.kind == STANDARDIZE:
            if self.mean is not None or self.std is not None:
                raise ConfigError("--mean/--std go with an input range (e.g. --input-range 0,1), "
                                  "not with per-image standardization")
            return
        if not low < high:
            raise ConfigError(f"input range {low:g},{high:g}: LO must be below HI, e.g. --input-range 0,1")
        if self.mean is None and self.std is not None:  # std alone: mean 0 for every channel
            object.__setattr__(self, "mean", (0.0,))
        if self.std is None and self.mean is not None:  # mean alone: std 1 for every channel
            object.__setattr__(self, "std", (1.0,))
        if self.std is not None:
            if any(s <= 0 for s in self.std):
                raise ConfigError(f"--std values must be > 0, got {','.join(f'{s:g}' for s in self.std)}")
            if 1 not in (len(self.mean), len(self.std)) and len(self.mean) != len(self.std):
                raise ConfigError(f"{len(self.mean)} mean value(s) but {len(self.std)} std value(s); "
                                  "give one per channel (or one for all)")

    # ---- constructors -------------------------------------------------------------------
    @classmethod
    def standardize(cls, source: str = "given") -> "InputEncoding":
        """The series' per-image standardization."""
        return cls(STANDARDIZE, source=source)

    @classmethod
    def value_range(cls, low: float, high: float, mean: Sequence[float] | None = None,
                    std: Sequence[float] | None = None, source: str = "given",
                    channel_order: str = RGB) -> "InputEncoding":
        """Pixels mapped onto ``[low, high]``, then optionally ``(x - mean) / std`` per channel."""
        return cls(RANGE, low, high, mean, std, channel_order, source=source)

    @classmethod
    def preset(cls, mode: str, source: str = "given") -> "InputEncoding":
        """The encoding of a Keras ``preprocess_input`` ``mode``: ``"caffe"``, ``"tf"`` or ``"torch"``."""
        if mode not in PRESETS:
            raise ConfigError(f"unknown preprocessing {mode!r}; choose one of {', '.join(PRESETS)} "
                              "(the mode of keras.applications' preprocess_input for your model)")
        return dataclasses.replace(PRESETS[mode], source=source)

    def with_channel_order(self, channel_order: str) -> "InputEncoding":
        """The same encoding with the colour channels in ``channel_order`` (``"rgb"`` or ``"bgr"``);
        per-channel mean and std follow their channels (reversed when the order changes)."""
        if channel_order == self.channel_order:
            return self
        def reordered(values):
            return values[::-1] if values is not None and len(values) == 3 else values
        return dataclasses.replace(self, channel_order=channel_order, mean=reordered(self.mean),
                                   std=reordered(self.std))

    # ---- checks and per-channel constants -----------------------------------------------
    def check_channels(self, channels: int) -> None:
        """Raise ConfigError when mean/std or BGR order do not fit a model with ``channels`` channels."""
        if self.source.startswith("--preprocess") and channels != 3:
            raise ConfigError(f"{self.source} is for colour models (3 channels); the model has {channels}. "
                              "Give --input-range (e.g. 0,1 or -1,1) or --standardize instead")
        if self.channel_order == BGR and channels != 3:
            raise ConfigError(f"BGR channel order needs a colour model (3 channels); the model has {channels}. "
                              "Leave out --bgr")
        for name, values in (("--mean", self.mean), ("--std", self.std)):
            if values is not None and len(values) not in (1, channels):
                what = "1 value" if channels == 1 else f"1 value or {channels}, one per channel"
                raise ConfigError(f"{name} has {len(values)} values but the model has {channels} channel(s); "
                                  f"give {what}")

    def _mean_std(self, channels: int) -> tuple[np.ndarray, np.ndarray]:
        self.check_channels(channels)
        mean = np.broadcast_to(np.asarray(self.mean or (0.0,), np.float32), (channels,))
        std = np.broadcast_to(np.asarray(self.std or (1.0,), np.float32), (channels,))
        return mean, std

    def bounds(self, channels: int) -> tuple[np.ndarray, np.ndarray] | None:
        """Per-channel (lowest, highest) model-input value; None for standardization."""
        if self.kind == STANDARDIZE:
            return None
        mean, std = self._mean_std(channels)
        return ((self.low - mean) / std).astype(np.float32), ((self.high - mean) / std).astype(np.float32)

    def centre(self, channels: int) -> np.ndarray:
        """Per-channel middle of the encoding in model units (0 for standardized images)."""
        if self.kind == STANDARDIZE:
            return np.zeros(channels, np.float32)
        lo, hi = self.bounds(channels)
        return ((lo + hi) / 2).astype(np.float32)

    def spread(self, channels: int) -> np.ndarray:
        """Per-channel size of typical pixel variations in model units (the step's unit).

        1 for standardized images; a quarter of the range otherwise (about the
        standard deviation of natural images), so ``epsilon`` keeps its meaning.
        """
        if self.kind == STANDARDIZE:
            return np.ones(channels, np.float32)
        lo, hi = self.bounds(channels)
        return ((hi - lo) / 4.0).astype(np.float32)

    # ---- the four operations ------------------------------------------------------------
    def encode(self, pixels):
        """Pixels (0..255, NHWC or HWC, array or tensor) → model input (float32 tensor)."""
        import tensorflow as tf

        x = tf.cast(pixels, tf.float32)
        if self.channel_order == BGR:
            self.check_channels(int(x.shape[-1]))
            x = tf.reverse(x, axis=[-1])
        if self.kind == STANDARDIZE:
            return tf.image.per_image_standardization(x)
        mean, std = self._mean_std(int(x.shape[-1]))
        x = self.low + (self.high - self.low) / 255.0 * x
        if self.mean is None:
            return x
        return (x - tf.constant(mean)) / tf.constant(std)

    def project(self, x):
        """Keep images (NHWC tensor) inside the encoding: re-standardize, or clip to the range."""
        import tensorflow as tf

        if self.kind == STANDARDIZE:
            return tf.image.per_image_standardization(x)
        lo, hi = self.bounds(int(x.shape[-1]))
        return tf.clip_by_value(x, tf.constant(lo), tf.constant(hi))

    def free_gradient(self, x, grad):
        """The gradient without the components that push a pixel past its bound (range only).

        At a bound the projection would undo such a component, so leaving it in
        would only shrink the normalized step of the pixels that can still move.
        """
        import tensorflow as tf

        if self.kind == STANDARDIZE:
            return grad
        lo, hi = self.bounds(int(x.shape[-1]))
        blocked = tf.logical_or(tf.logical_and(x >= hi, grad > 0), tf.logical_and(x <= lo, grad < 0))
        return tf.where(blocked, tf.zeros_like(grad), grad)

    def start(self, noise: np.ndarray) -> np.ndarray:
        """Unit noise (standardized, NHWC) placed in the encoding: the initial images of an ascent."""
        noise = np.asarray(noise, np.float32)
        if self.kind == STANDARDIZE:
            return noise
        lo, hi = self.bounds(noise.shape[-1])
        return np.clip(self.centre(noise.shape[-1]) + self.spread(noise.shape[-1]) * noise, lo, hi).astype(np.float32)

    def decode(self, x) -> np.ndarray:
        """Model input → pixel units (0..255) for display; standardized images stay as they are."""
        x = np.asarray(x, np.float32)
        if self.kind == RANGE:
            mean, std = self._mean_std(x.shape[-1])
            x = ((x * std + mean - self.low) * (255.0 / (self.high - self.low))).astype(np.float32)
        if self.channel_order == BGR:
            self.check_channels(x.shape[-1])
            x = np.ascontiguousarray(x[..., ::-1])
        return x

    @property
    def display_unit(self) -> str:
        """What decoded values are: ``"pixel value"`` or ``"standardized value"``."""
        return "standardized value" if self.kind == STANDARDIZE else "pixel value"

    # ---- text and files -----------------------------------------------------------------
    def describe(self) -> str:
        """One line: e.g. ``range [-1, 1]`` or ``range [0, 1], mean (0.485, ...), std (...)``."""
        if self.kind == STANDARDIZE:
            text = "per-image standardization"
        else:
            text = f"range [{self.low:g}, {self.high:g}]"
            if self.mean is not None:
                text += (f", mean ({', '.join(f'{v:g}' for v in self.mean)}),"
                         f" std ({', '.join(f'{v:g}' for v in self.std)})")
        return text + (", BGR channels" if self.channel_order == BGR else "")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict."""
        data = {"kind": self.kind, "low": self.low, "high": self.high,
                "mean": None if self.mean is None else list(self.mean),
                "std": None if self.std is None else list(self.std), "source": self.source}
        if self.channel_order != RGB:  # results and run keys of RGB encodings stay as before
            data["channel_order"] = self.channel_order
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> "InputEncoding":
        """Inverse of :meth:`to_dict`; None (results saved before encodings existed) is standardization."""
        if data is None:
            return cls.standardize(source="saved")
        return cls(data.get("kind", STANDARDIZE), data.get("low", 0.0), data.get("high", 1.0),
                   data.get("mean"), data.get("std"), data.get("channel_order", RGB),
                   source=data.get("source", "saved"))


PRESETS: dict[str, InputEncoding] = {
    "caffe": InputEncoding.value_range(0.0, 255.0, mean=(103.939, 116.779, 123.68), channel_order=BGR),
    "tf": InputEncoding.value_range(-1.0, 1.0),
    "torch": InputEncoding.value_range(0.0, 1.0, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)),
}
"""Keras' ``preprocess_input`` modes: ``caffe`` (VGG16/19, ResNet50/101/152: BGR, ImageNet mean
subtracted from 0..255), ``tf`` (MobileNet, MobileNetV2, Inception, Xception: -1..1) and ``torch``
(DenseNet: 0..1 with ImageNet mean/std). EfficientNet, ConvNeXt and MobileNetV3 carry their
preprocessing as layers, which oipscope recognises."""


def parse_encoding(input_range: str | None = None, mean: str | None = None, std: str | None = None,
                   standardize: bool = False, preprocess: str | None = None,
                   bgr: bool = False) -> InputEncoding | None:
    """The encoding the command-line options give
    (``--input-range LO,HI --mean --std --standardize --preprocess MODE --bgr``).

    Returns None when no option is given (the model's layers or the default decide).

    Raises:
        ConfigError: malformed numbers, LO >= HI, mean/std without a range, an unknown
            ``--preprocess`` mode, or options that contradict each other.
    """
    def numbers(text: str | None, option: str, example: str) -> tuple[float, ...] | None:
        if text is None:
            return None
        try:
            return tuple(float(part) for part in text.split(","))
        except ValueError:
            raise ConfigError(f"{option} must be comma-separated numbers like {example}, got {text!r}") from None

    bounds = numbers(input_range, "--input-range", "0,1 or -1,1")
    means, stds = numbers(mean, "--mean", "0.485,0.456,0.406"), numbers(std, "--std", "0.229,0.224,0.225")
    order = BGR if bgr else RGB
    if preprocess is not None:
        if standardize or bounds is not None or means is not None or stds is not None:
            raise ConfigError("--preprocess sets the whole encoding; leave out --input-range, --mean, --std "
                              "and --standardize, or give those without --preprocess")
        preset = InputEncoding.preset(preprocess.lower(), source=f"--preprocess {preprocess.lower()}")
        return preset.with_channel_order(BGR) if bgr else preset
    if standardize:
        if bounds is not None or means is not None or stds is not None:
            raise ConfigError("--standardize cannot be combined with --input-range, --mean or --std; choose one")
        return InputEncoding.standardize().with_channel_order(order)
    if bounds is None:
        if means is not None or stds is not None:
            raise ConfigError("--mean/--std need --input-range (the range they apply to), "
                              "e.g. --input-range 0,1 --mean 0.485,0.456,0.406 --std 0.229,0.224,0.225")
        if bgr:
            raise ConfigError("--bgr goes with the encoding it reverses the channels of: add --input-range "
                              "(e.g. --input-range 0,255 --mean 103.939,116.779,123.68), --standardize, "
                              "or use --preprocess caffe")
        return None
    if len(bounds) != 2:
        raise ConfigError(f"--input-range takes two numbers LO,HI (e.g. 0,1 or -1,1), got {input_range!r}")
    return InputEncoding.value_range(bounds[0], bounds[1], means, stds, channel_order=order)


def _leading_layers(model):
    """The model's layers from its input on, nested models opened."""
    for layer in model.layers:
        if type(layer).__name__ == "InputLayer":
            continue
        inner = getattr(layer, "layers", None)
        if inner is not None and hasattr(layer, "inputs"):
            yield from _leading_layers(layer)
            return
        yield layer


def preprocessing_layers(model) -> list[str]:
    """Names of the ``Rescaling``/``Normalization`` layers the model begins with (augmentation skipped)."""
    found = []
    for layer in _leading_layers(model):
        kind = type(layer).__name__
        if kind in _PREPROCESSING:
            found.append(layer.name)
        elif not kind.startswith(_PASS_THROUGH_PREFIXES):
            break
    return found


def resolve_encoding(model, given: InputEncoding | None = None) -> InputEncoding:
    """The input encoding of a model: given, recognised from its layers, or the series' default.

    A model that begins with Keras ``Rescaling``/``Normalization`` layers takes raw
    pixels (range 0..255). Without either, per-image standardization is assumed
    (``source="assumed"``: callers tell the user so).
    """
    if given is not None:
        return given
    layers = preprocessing_layers(model)
    if layers:
        return InputEncoding.value_range(0.0, 255.0, source=f"model layers ({', '.join(layers)})")
    return InputEncoding.standardize(source="assumed")
