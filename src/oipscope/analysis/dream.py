"""Deep Dream (the series' follow-up): amplify what a layer, or some of its maps, sees in an image.

The image is ascended octave by octave, from a small copy to its own size: at each
octave the mean activation of the chosen maps is climbed with the series' step (the
gradient normalized by its RMS, kept in the model's input encoding), then the image
is enlarged by ``octave_scale`` and the detail lost in the small copy is put back.
Octaves smaller than the layer takes (its receptive field) climb at the smallest size
it does take, so a 28-pixel digit dreams with the defaults at every layer. Each
octave's frame is measured as it is saved: in pixels at the input's size, decoded so
that it encodes back to what was dreamed (nothing clipped away).
The layer's sub-model is rebuilt for images of any size, so a 500-pixel photo dreams
at 500 pixels through a model trained on 224.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable

import numpy as np

from ..errors import ConfigError, LayerError
from ..search.starts import parse_maps
from ..ascent.step import normalized, rms, value_and_gradient
from ..model.subject import as_subject

__all__ = ["DreamConfig", "Dream", "dream"]


@dataclass(frozen=True)
class DreamConfig:
    """The parameters of a dream.

    Attributes:
        octaves: how many sizes the image is ascended at (1: only its own).
        octave_scale: size ratio of neighbouring octaves (> 1).
        steps: ascent steps per octave.
        epsilon: step of the normalized gradient, in units of the encoding's spread.
    """

    octaves: int = 4
    octave_scale: float = 1.4
    steps: int = 50
    epsilon: float = 0.01

    def __post_init__(self) -> None:
        if not (isinstance(self.octaves, int) and self.octaves >= 1):
            raise ConfigError(f"octaves must be an integer >= 1, got {self.octaves!r}")
        if not (math.isfinite(self.octave_scale) and self.octave_scale > 1):
            raise ConfigError(f"octave scale must be > 1, got {self.octave_scale!r}")
        if not (isinstance(self.steps, int) and self.steps >= 1):
            raise ConfigError(f"steps must be an integer >= 1, got {self.steps!r}")
        if not (math.isfinite(self.epsilon) and self.epsilon > 0):
            raise ConfigError(f"epsilon must be > 0, got {self.epsilon!r}")


@dataclass(frozen=True, eq=False)
class Dream:
    """A dreamed image and how it got there.

    Attributes:
        image: the dreamed image in pixels (H, W, C), 0..255, at the input's size.
        frames: the image after each octave, in pixels at the input's size.
        activations: the mean activation of the chosen maps in each frame (as saved:
            its pixels at the input's size, encoded for the model).
        start_activation: the same for the input image.
    """

    image: np.ndarray
    frames: tuple[np.ndarray, ...]
    activations: tuple[float, ...]
    start_activation: float


def _flexible(submodel, channels: int):
    """The sub-model rebuilt for images of any height and width (its layers, shared)."""
    import keras

    try:
        return keras.models.clone_model(submodel, input_tensors=keras.Input((None, None, channels)),
                                        clone_function=lambda layer: layer)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"the layers up to {submodel.outputs[0].name} only take "
                          f"{tuple(submodel.inputs[0].shape[1:3])} images ({exc}); dream at that size") from None


def dream(model, image: np.ndarray, layer_name: str, maps: str | int | Iterable[int] | None = "all",
          config: DreamConfig = DreamConfig()) -> Dream:
    """Amplify the activation of a layer's maps in an image, octave by octave.

    Args:
        model: a :class:`~oipscope.model.subject.Subject` or a Keras model.
        image: pixels 0..255, (H, W) or (H, W, C) with the model's channels; any size
            at least as large as the layer's receptive field.
        layer_name: a layer with feature maps.
        maps: the maps whose mean activation is amplified ("all", "0-3", ...).
        config: octaves, scale, steps, step size.

    Returns:
        A :class:`Dream`, in pixels at the input image's size.
    """
    import tensorflow as tf

    subject = as_subject(model)
    channels = subject.input_shape[2]
    pixels = np.asarray(image, np.float32)
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    if pixels.ndim != 3 or pixels.shape[2] != channels:
        raise ConfigError(f"the image must be (H, W) or (H, W, {channels}) pixels for this model, "
                          f"got shape {np.shape(image)}")
    sub = subject.feature_submodel(layer_name)
    if len(sub.outputs[0].shape) != 4:
        raise LayerError(f"layer {layer_name!r} has output shape {tuple(sub.outputs[0].shape)}, no feature maps "
                         "to amplify in an image; choose a convolutional layer (see `oipscope info`)")
    chosen = tf.constant(parse_maps(maps, int(sub.outputs[0].shape[-1])), tf.int32)
    net = _flexible(sub, channels)
    encoding = subject.encoding
    spread = tf.constant(encoding.spread(channels))
    height, width = pixels.shape[:2]

    def objective(x):
        return tf.reduce_mean(tf.gather(net(x, training=False), chosen, axis=3))

    @tf.function(input_signature=[tf.TensorSpec((1, None, None, channels), tf.float32), tf.TensorSpec((), tf.int32)],
                 reduce_retracing=True)
    def climb(x, steps):
        for _ in tf.range(steps):
            _, grad = value_and_gradient(objective, x)
            grad = encoding.free_gradient(x, grad)
            x = encoding.project(x + config.epsilon * spread * normalized(grad, rms(grad)))
        return x

    def size(k: int) -> tuple[int, int]:
        shrink = config.octave_scale ** (config.octaves - 1 - k)
        return max(1, round(height / shrink)), max(1, round(width / shrink))

    def resize(x, shape):
        return tf.image.resize(x, shape, method="bicubic")

    def fits(shape) -> bool:
        try:
            objective(tf.zeros((1, *shape, channels)))
        except (tf.errors.InvalidArgumentError, ValueError):
            return False
        return True

    def measure(frame: np.ndarray) -> float:
        """The activation of a frame as saved (pixels at the input's size), the number reported."""
        return float(objective(encoding.encode(frame[None])))

    base = encoding.encode(pixels[None])
    try:
        start = measure(pixels)
    except (tf.errors.InvalidArgumentError, ValueError) as exc:
        raise ConfigError(f"a {height}x{width} image is too small for layer {layer_name!r} ({exc}); "
                          "give a larger image") from None
    # octaves smaller than the layer's receptive field climb at the smallest size it takes
    smallest = next(k for k in range(config.octaves) if k == config.octaves - 1 or fits(size(k)))
    sizes = [size(max(k, smallest)) for k in range(config.octaves)]
    x = resize(base, sizes[0])
    frames, activations = [], []
    for k, shape in enumerate(sizes):
        if k and shape != sizes[k - 1]:  # enlarge, and put back the detail the smaller copy had lost
            lost = resize(base, shape) - resize(resize(base, sizes[k - 1]), shape)
            x = encoding.project(resize(x, shape) + lost)
        x = climb(x, tf.constant(config.steps))
        frames.append(_to_pixels(encoding.project(resize(x, (height, width)))[0].numpy(), pixels, encoding))
        activations.append(measure(frames[-1]))
    return Dream(image=frames[-1], frames=tuple(frames), activations=tuple(activations), start_activation=start)


def _to_pixels(x: np.ndarray, original: np.ndarray, encoding) -> np.ndarray:
    """Model input → pixels 0..255 that encode back to the same model input.

    A standardized image is shown with the original's mean and spread as far as
    0..255 allows: where the dream reaches past them, the contrast is lowered and the
    brightness shifted rather than clipped (standardization undoes both, so the saved
    image keeps the activation it was dreamed to). Range encodings were kept in range.
    """
    if encoding.kind == "standardize":
        spread = max(float(original.std()), 1.0 / math.sqrt(original.size))
        low, high = float(x.min()), float(x.max())
        scale = min(spread, 255.0 / (high - low)) if high > low else spread
        offset = min(max(float(original.mean()), -scale * low), 255.0 - scale * high)
        out = x * scale + offset
    else:
        out = encoding.decode(x)
    return np.clip(out, 0.0, 255.0).astype(np.float32)
