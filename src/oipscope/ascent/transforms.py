"""Random transforms of the image before each forward pass: transformation robustness.

An OIP that still drives its map when it is padded, shifted, scaled a little and
turned a little is a pattern the map responds to, not a pixel-exact trick (Olah
et al., "Feature Visualization", Distill 2017). Four transforms, in any order:

- ``pad:N``: N pixels of the encoding's centre value around the image (the padded
  image is shown at the model's input size);
- ``jitter:N``: a shift by a whole number of pixels in -N..N, each axis;
- ``scale:LO,HI``: a zoom by a factor drawn from [LO, HI];
- ``rotate:DEG``: a turn by an angle drawn from [-DEG, DEG] degrees.

``standard`` is the robust set (Lucid's, sized to the image). Every element's
draws come from its own generator, seeded by (seed, map, replicate), so an OIP
does not depend on which maps run alongside it. The draws are made on the host
for all steps at once and composed into one affine matrix per element and step;
the compiled loop applies it with a single bilinear warp (:func:`warp`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..errors import ConfigError

__all__ = ["Transform", "parse_transforms", "resolve_transforms", "draw_matrices", "warp", "STANDARD"]

STANDARD = "standard"
_KINDS = ("pad", "jitter", "scale", "rotate")


@dataclass(frozen=True)
class Transform:
    """One random transform: ``kind`` with its ``low``/``high`` bound (pixels, factor or degrees)."""

    kind: str
    low: float
    high: float

    def text(self) -> str:
        if self.kind == "scale":
            return f"scale:{self.low:g},{self.high:g}"
        return f"{self.kind}:{self.high:g}"


def _parse_one(text: str) -> Transform | str:
    name, _, arg = str(text).strip().lower().partition(":")
    if name == STANDARD and not arg:
        return STANDARD
    if name not in _KINDS:
        raise ConfigError(f"unknown transform {text!r}; use pad:N, jitter:N, scale:LO,HI, rotate:DEG or standard")
    try:
        values = [float(v) for v in arg.split(",")] if arg else []
    except ValueError:
        values = []
    if name == "scale":
        if len(values) != 2 or not (0 < values[0] <= values[1]) or not all(map(math.isfinite, values)):
            raise ConfigError(f"scale takes two factors LO,HI with 0 < LO <= HI (e.g. scale:0.9,1.1), got {text!r}")
        return Transform("scale", values[0], values[1])
    if len(values) != 1 or not math.isfinite(values[0]) or values[0] < 0:
        raise ConfigError(f"{name} takes one number >= 0 (e.g. {name}:4), got {text!r}")
    if name in ("pad", "jitter") and values[0] != int(values[0]):
        raise ConfigError(f"{name} takes whole pixels (e.g. {name}:4), got {text!r}")
    return Transform(name, -values[0], values[0]) if name != "pad" else Transform("pad", values[0], values[0])


def parse_transforms(items: Sequence[str]) -> tuple[Transform | str, ...]:
    """Check the transform texts of a config; ``"standard"`` stays symbolic until the image size is known.

    Raises:
        ConfigError: an unknown transform or a bad argument.
    """
    if isinstance(items, str):
        items = [part for part in items.split() if part]
    return tuple(_parse_one(item) for item in items)


def resolve_transforms(items: Sequence[str], height: int, width: int) -> tuple[Transform, ...]:
    """The transforms for an image of ``height`` x ``width``; ``standard`` becomes the robust set.

    The robust set follows Lucid's for 224 pixels (pad 12, jitter 8, scale
    0.9..1.1, rotate 10 degrees, jitter 4), with the shifts sized to the image
    (a sixteenth and a thirty-second of its side, at least one pixel).
    """
    side = min(height, width)
    out: list[Transform] = []
    for item in parse_transforms(items):
        if item == STANDARD:
            big, small = max(1, round(side / 16)), max(1, round(side / 32))
            out += [Transform("pad", big, big), Transform("jitter", -big, big), Transform("scale", 0.9, 1.1),
                    Transform("rotate", -10, 10), Transform("jitter", -small, small)]
        else:
            out.append(item)
    return tuple(out)


def _about_centre(matrix: np.ndarray, cy: float, cx: float) -> np.ndarray:
    """``matrix`` (..., 3, 3) acting on (x, y, 1) applied about the image centre."""
    to_centre = np.array([[1, 0, -cx], [0, 1, -cy], [0, 0, 1]], np.float64)
    back = np.array([[1, 0, cx], [0, 1, cy], [0, 0, 1]], np.float64)
    return back @ matrix @ to_centre


def draw_matrices(transforms: Sequence[Transform], rngs: Sequence[np.random.Generator], steps: int,
                  height: int, width: int) -> np.ndarray:
    """Per element and step, the output-to-input warp of the composed transforms, (B, steps, 8) float32.

    Element ``b`` draws from ``rngs[b]`` only. The 8 numbers are the first eight
    entries of the inverse of the composed forward matrix, as :func:`warp` takes them.
    """
    n = len(rngs)
    forward = np.broadcast_to(np.eye(3), (n, steps, 3, 3)).copy()
    cy, cx = (height - 1) / 2, (width - 1) / 2
    for transform in transforms:
        step = np.broadcast_to(np.eye(3), (n, steps, 3, 3)).copy()
        if transform.kind == "pad":
            step[..., 0, 0] = width / (width + 2 * transform.high)
            step[..., 1, 1] = height / (height + 2 * transform.high)
        elif transform.kind == "jitter":
            reach = int(transform.high)
            shifts = np.stack([rng.integers(-reach, reach + 1, (steps, 2)) for rng in rngs]).astype(np.float64)
            step[..., 0, 2], step[..., 1, 2] = shifts[..., 1], shifts[..., 0]
        elif transform.kind == "scale":
            factor = np.stack([rng.uniform(transform.low, transform.high, steps) for rng in rngs])
            step[..., 0, 0] = step[..., 1, 1] = factor
        else:  # rotate
            angle = np.radians(np.stack([rng.uniform(transform.low, transform.high, steps) for rng in rngs]))
            cos, sin = np.cos(angle), np.sin(angle)
            step[..., 0, 0], step[..., 0, 1], step[..., 1, 0], step[..., 1, 1] = cos, -sin, sin, cos
        forward = _about_centre(step, cy, cx) @ forward
    inverse = np.linalg.inv(forward)
    inverse = inverse / inverse[..., 2:3, 2:3]
    return inverse.reshape(n, steps, 9)[..., :8].astype(np.float32)


def warp(images, matrices, fill: float = 0.0):
    """Each image (B, H, W, C) seen through its matrix (B, 8): bilinear, ``fill`` outside the image.

    Differentiable with respect to the images (the gradient flows back through the warp).
    """
    import tensorflow as tf

    shape = tf.shape(images)[1:3]
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images, transforms=matrices, output_shape=shape, fill_value=tf.constant(fill, tf.float32),
        interpolation="BILINEAR", fill_mode="CONSTANT")
