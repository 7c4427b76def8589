"""How an image is described while it climbs: its parameters and the map to model input.

- ``pixels``: the parameters are the image (the series);
- ``fourier``: the parameters are the image's spectrum, each frequency scaled by
  1/f, so a normalized step changes coarse structure as readily as fine grain
  (Lucid's ``fft_image``);
- ``decorrelate`` (RGB): the three channels are mixed by the square root of a
  natural-image colour covariance, so a step moves colours, not single channels;
- ``bounded``: a sigmoid maps the result onto the encoding's range, so the image
  never leaves it and needs no clipping;
- ``contrast`` (with ``bounded``): each channel is scaled to unit RMS before the
  colour mixing, and the image to this RMS before the sigmoid: the sigmoid stays
  in its soft part (few pixels at the range's bounds, no hard edges) and the
  colours keep the natural covariance's proportions (a photograph's saturation).

A :class:`Parametrization` is a pure description; :meth:`~Parametrization.image`
is the differentiable map from parameters to model input used in the compiled
loop, and :meth:`~Parametrization.initial` draws seeded starting parameters.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..model.encoding import InputEncoding

__all__ = ["Parametrization", "fourier_scale", "as_complex", "colour_sqrt", "COLOR_SQRT"]

COLOR_SQRT = np.array([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]], np.float32)
"""Square root of a natural-image RGB covariance (Lucid's, from ImageNet), by rows."""
_COLOR = COLOR_SQRT / np.max(np.linalg.norm(COLOR_SQRT, axis=0))
_RMS_FLOOR = 1e-6  # keeps the contrast's division finite for a blank channel


def colour_sqrt(pixels: np.ndarray) -> np.ndarray:
    """The square root of the colour covariance of RGB ``pixels`` (..., 3), as :data:`COLOR_SQRT`:
    U·sqrt(S) of its SVD, columns from the strongest component (luminance, signed to be positive) down.

    Example:
        >>> m = colour_sqrt(np.random.default_rng(0).random((1000, 3)))
        >>> m.shape
        (3, 3)
    """
    x = np.asarray(pixels, np.float64).reshape(-1, 3)
    u, s, _ = np.linalg.svd(np.cov(x, rowvar=False))
    u = u * np.where(u.sum(axis=0) < 0, -1.0, 1.0)  # each component's sign fixed: the matrix is reproducible
    return (u * np.sqrt(np.maximum(s, 1e-12))).astype(np.float32)
_START_SD = 0.01  # starting parameters: small noise, an almost flat image (Lucid's)


def fourier_scale(height: int, width: int, decay: float = 1.0) -> np.ndarray:
    """1/f^decay for each frequency of a real 2-D FFT, (height, width//2 + 1), lowest clipped at 1/side."""
    fy = np.fft.fftfreq(height)[:, None]
    fx = np.fft.rfftfreq(width)[None, :]
    frequency = np.sqrt(fx * fx + fy * fy)
    return (1.0 / np.maximum(frequency, 1.0 / max(height, width)) ** decay).astype(np.float32)


def as_complex(pairs):
    """(..., 2) float32 (real, imaginary) → (...) complex64, without a copy, and back for the gradient.

    The same numbers as ``tf.complex(pairs[..., 0], pairs[..., 1])`` and the same gradient
    (real and imaginary parts of the upstream gradient), but a bitcast each way instead of two
    strided slices forward and two zero-filled scatters back (about half the parametrization's
    cost per step at 224 pixels).
    """
    import tensorflow as tf

    @tf.custom_gradient
    def bitcast(pairs):
        return tf.bitcast(pairs, tf.complex64), lambda upstream: tf.bitcast(upstream, tf.float32)

    return bitcast(pairs)


@dataclass(frozen=True)
class Parametrization:
    """The map from parameters to an image in the model's input encoding.

    Attributes:
        kind: ``"pixels"`` or ``"fourier"``.
        shape: (H, W, C) of the model input.
        encoding: the model's input encoding.
        decorrelate: mix RGB channels by :data:`COLOR_SQRT` (ignored for grey).
        bounded: sigmoid onto the encoding's range (for per-image standardization
            the image is standardized instead, which bounds it as well).
        contrast: with ``bounded``, the RMS of the image before the sigmoid, each
            channel first scaled to unit RMS; None: as the parameters make it.
        colour: the colour matrix's 9 numbers by rows (RGB); None: :data:`COLOR_SQRT`.
    """

    kind: str
    shape: tuple[int, int, int]
    encoding: InputEncoding
    decorrelate: bool = False
    bounded: bool = False
    contrast: float | None = None
    colour: tuple[float, ...] | None = None

    @property
    def param_shape(self) -> tuple[int, ...]:
        """Shape of one element's parameters."""
        h, w, c = self.shape
        if self.kind == "fourier":
            return (c, h, w // 2 + 1, 2)
        return (h, w, c)

    def _mixes_colour(self) -> bool:
        return self.decorrelate and self.shape[2] == 3

    def _colour_matrix(self) -> np.ndarray:
        """The colour mixing in the model's channel order: RGB rows reversed for a BGR model."""
        matrix = _COLOR
        if self.colour is not None:
            matrix = np.reshape(np.asarray(self.colour, np.float32), (3, 3))
            matrix = matrix / np.max(np.linalg.norm(matrix, axis=0))
        return matrix[::-1] if self.encoding.channel_order == "bgr" else matrix

    def _fixes_contrast(self) -> bool:
        return self.contrast is not None and self.bounded and self.encoding.kind != "standardize"

    def initial(self, rng: np.random.Generator, start: np.ndarray | None = None) -> np.ndarray:
        """One element's starting parameters: a start image (plain pixels), else small seeded noise."""
        if start is not None and self.kind == "pixels" and not self.bounded and not self._mixes_colour():
            return np.asarray(start, np.float32)
        return (_START_SD * rng.standard_normal(self.param_shape)).astype(np.float32)

    def params_of(self, images: np.ndarray) -> np.ndarray:
        """The parameters of given images (N, H, W, C) in the model's encoding: the inverse of :meth:`image`
        (values at the range's bounds are pulled just inside, where the sigmoid can reach them; with a
        fixed contrast the image comes back at that contrast)."""
        x = np.asarray(images, np.float64)
        h, w, c = self.shape
        if self.bounded and self.encoding.kind != "standardize":
            lo, hi = self.encoding.bounds(c)
            unit = np.clip((x - lo) / (hi - lo), 1e-3, 1 - 1e-3)
            x = np.log(unit / (1 - unit))
        if self._mixes_colour():
            x = x @ np.linalg.inv(self._colour_matrix().T.astype(np.float64))
        if self.kind == "fourier":
            scale = fourier_scale(h, w) * np.sqrt(h * w) / 4.0
            spectrum = np.fft.rfft2(np.transpose(x, (0, 3, 1, 2)), s=(h, w)) / scale
            x = np.stack([spectrum.real, spectrum.imag], axis=-1)
        return x.astype(np.float32)

    def image(self, params):
        """Parameters (B, *param_shape) → images (B, H, W, C) in the model's input encoding."""
        import tensorflow as tf

        h, w, c = self.shape
        if self.kind == "fourier":
            scale = (fourier_scale(h, w) * np.sqrt(h * w) / 4.0).astype(np.float32)
            spectrum = as_complex(params * tf.constant(np.repeat(scale[..., None], 2, axis=-1)))
            x = tf.transpose(tf.signal.irfft2d(spectrum, fft_length=[h, w]), [0, 2, 3, 1])
        else:
            x = params
        if self._fixes_contrast():
            x = x / tf.sqrt(tf.reduce_mean(tf.square(x), axis=[1, 2], keepdims=True) + _RMS_FLOOR**2)
        if self._mixes_colour():
            x = tf.tensordot(x, tf.constant(np.ascontiguousarray(self._colour_matrix().T)), axes=[[3], [0]])
        if self._fixes_contrast():
            x = x * (self.contrast / tf.sqrt(tf.reduce_mean(tf.square(x), axis=[1, 2, 3], keepdims=True)
                                             + _RMS_FLOOR**2))
        if self.bounded and self.encoding.kind != "standardize":
            lo, hi = self.encoding.bounds(c)
            return tf.constant(lo) + tf.constant(hi - lo) * tf.sigmoid(x)
        return self.encoding.project(x)
