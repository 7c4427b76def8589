"""What an ascent maximizes: objectives as small terms that combine with arithmetic.

Every batch element ``b`` climbs its own target ``maps[b]`` (a map, a unit or a
class). An :class:`Objective` is a weighted sum of terms; each term turns a
:class:`Context` (the layer's output, the images, the targets) into one value per
element. Terms combine like numbers::

    channel() - 0.5 * diversity() - 0.05 * tv()

The default, :func:`channel`, is the series' objective: the mean activation of a
map (:func:`map_means`). The first term that reads the layer is the *primary*
one: its value is an OIP's reported activation, and its rules decide when a map
is silent and whether a map is expected to end above zero. Convergence compares
changes to the value's magnitude, so it also holds for negative values such as
logits. :func:`parse_objective` reads the command line's short grammar.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ConfigError

__all__ = [
    "map_means",
    "Context",
    "Term",
    "Objective",
    "channel",
    "neuron",
    "region",
    "direction",
    "class_logit",
    "diversity",
    "tv",
    "l1",
    "l2",
    "blur",
    "parse_objective",
    "OBJECTIVE_HELP",
]


def map_means(features, map_indices):
    """Each element's mean over the positions of its own map.

    Args:
        features: a layer's output, (B, h, w, M) tensor, or (B, M) for a dense layer.
        map_indices: (B,) int32 tensor, the map each element climbs.

    Returns:
        (B,) tensor.
    """
    import tensorflow as tf

    selected = tf.gather(features, map_indices, axis=-1, batch_dims=1)  # (B, h, w) or (B,)
    if len(features.shape) == 2:
        return selected
    return tf.reduce_mean(selected, axis=[1, 2])


@dataclass(frozen=True)
class Context:
    """What a term sees in one step (tensors; B = batch size).

    Attributes:
        features: the layer's output, (B, h, w, M) or (B, M).
        images: the model input the features came from, (B, H, W, C).
        maps: (B,) int32, each element's target.
        groups: (B,) int32, elements with equal values are replicates of one map.
        centre: (C,) middle of the input encoding (0 for standardized images).
        spread: (C,) size of typical pixel variations in model units.
    """

    features: Any
    images: Any
    maps: Any
    groups: Any = None
    centre: Any = 0.0
    spread: Any = 1.0


class _Arithmetic:
    """``+``, ``-``, ``*`` and ``/`` by numbers, shared by terms and objectives."""

    def _objective(self) -> "Objective":
        raise NotImplementedError

    def __add__(self, other: Any) -> "Objective":
        return Objective(self._objective().terms + _as_objective(other).terms)

    def __radd__(self, other: Any) -> "Objective":
        if other == 0:  # sum([...]) starts from 0
            return self._objective()
        return _as_objective(other) + self

    def __sub__(self, other: Any) -> "Objective":
        return self + (-1.0) * _as_objective(other)

    def __neg__(self) -> "Objective":
        return (-1.0) * self

    def __mul__(self, factor: Any) -> "Objective":
        if not isinstance(factor, (int, float, np.integer, np.floating)) or isinstance(factor, bool):
            raise ConfigError(f"an objective can only be multiplied by a number, got {factor!r}")
        return Objective(tuple((float(factor) * w, t) for w, t in self._objective().terms))

    __rmul__ = __mul__

    def __truediv__(self, divisor: Any) -> "Objective":
        return self * (1.0 / float(divisor))


def _as_objective(value: Any) -> "Objective":
    if isinstance(value, _Arithmetic):
        return value._objective()
    raise ConfigError(f"cannot combine an objective with {value!r}")


@dataclass(frozen=True)
class Term(_Arithmetic):
    """One named part of an objective; subclasses define :meth:`value`.

    Attributes (class level):
        reads_layer: the term reads the layer's output (else only the images).
        logits: the term wants the layer before its activation (class logits).
        rectified: its value is expected above zero when the map responds at all
            (a map after a ReLU); False for values that are naturally signed.
        couples: the term mixes the replicates of a map (diversity).
        own_map: the term reads nothing of the layer but the element's own map.
    """

    reads_layer = True
    logits = False
    rectified = True
    couples = False
    own_map = True

    def value(self, ctx: Context):
        """(B,) tensor: each element's value of this term."""
        raise NotImplementedError

    def check(self, output_shape: tuple) -> None:
        """Raise ConfigError when the term does not fit a layer output of ``output_shape`` (with batch)."""

    def text(self) -> str:
        """The term in the command-line grammar."""
        raise NotImplementedError

    def silent(self, value, gradient_rms):
        """(B,) bool: the element cannot move (the default: value and gradient exactly zero)."""
        import tensorflow as tf

        return tf.logical_and(tf.equal(value, 0.0), tf.equal(gradient_rms, 0.0))

    def _objective(self) -> "Objective":
        return Objective(((1.0, self),))

    def __str__(self) -> str:
        return self.text()


@dataclass(frozen=True)
class _Channel(Term):
    def value(self, ctx: Context):
        return map_means(ctx.features, ctx.maps)

    def text(self) -> str:
        return "channel"


@dataclass(frozen=True)
class _Neuron(Term):
    y: int | None = None
    x: int | None = None

    def value(self, ctx: Context):
        import tensorflow as tf

        features = ctx.features
        if len(features.shape) == 2:
            return map_means(features, ctx.maps)
        y, x = self._position(tuple(features.shape))
        return tf.gather(features[:, y, x, :], ctx.maps, axis=1, batch_dims=1)

    def _position(self, output_shape: tuple) -> tuple[int, int]:
        h, w = int(output_shape[1]), int(output_shape[2])
        y = h // 2 if self.y is None else self.y
        x = w // 2 if self.x is None else self.x
        if not (0 <= y < h and 0 <= x < w):
            raise ConfigError(f"neuron {y},{x} is outside the layer's {h}x{w} positions; "
                              f"use Y in 0..{h - 1} and X in 0..{w - 1}")
        return y, x

    def check(self, output_shape: tuple) -> None:
        if len(output_shape) == 4:
            self._position(output_shape)

    def text(self) -> str:
        return "neuron" if self.y is None else f"neuron:{self.y},{self.x}"


@dataclass(frozen=True)
class _Region(Term):
    y0: int
    y1: int
    x0: int
    x1: int

    def check(self, output_shape: tuple) -> None:
        if len(output_shape) != 4:
            raise ConfigError("region needs a layer with feature maps; a dense layer has no positions")
        h, w = int(output_shape[1]), int(output_shape[2])
        if not (0 <= self.y0 < self.y1 <= h and 0 <= self.x0 < self.x1 <= w):
            raise ConfigError(f"region {self.y0}:{self.y1},{self.x0}:{self.x1} does not fit the layer's "
                              f"{h}x{w} positions; use 0 <= Y0 < Y1 <= {h} and 0 <= X0 < X1 <= {w}")

    def value(self, ctx: Context):
        features = ctx.features
        self.check(tuple(features.shape))
        return map_means(features[:, self.y0 : self.y1, self.x0 : self.x1, :], ctx.maps)

    def text(self) -> str:
        return f"region:{self.y0}:{self.y1},{self.x0}:{self.x1}"


@dataclass(frozen=True)
class _Direction(Term):
    vector: tuple[float, ...]
    rectified = False
    own_map = False

    def value(self, ctx: Context):
        import tensorflow as tf

        features = ctx.features
        self.check(tuple(features.shape))
        unit = np.asarray(self.vector, np.float32)
        unit = unit / max(float(np.linalg.norm(unit)), 1e-12)
        projected = tf.tensordot(features, tf.constant(unit), axes=[[-1], [0]])
        if len(features.shape) == 2:
            return projected
        return tf.reduce_mean(projected, axis=[1, 2])

    def check(self, output_shape: tuple) -> None:
        if int(output_shape[-1]) != len(self.vector):
            raise ConfigError(f"direction has {len(self.vector)} values but the layer has "
                              f"{int(output_shape[-1])} maps; give one value per map")

    def text(self) -> str:
        return "direction:" + ",".join(f"{v:g}" for v in self.vector)


@dataclass(frozen=True)
class _ClassLogit(Term):
    logits = True
    rectified = False

    def value(self, ctx: Context):
        return map_means(ctx.features, ctx.maps)

    def silent(self, value, gradient_rms):
        import tensorflow as tf

        return tf.equal(gradient_rms, 0.0)  # a logit of exactly 0 is an ordinary value

    def text(self) -> str:
        return "class"


@dataclass(frozen=True)
class _Diversity(Term):
    couples = True
    own_map = False

    def value(self, ctx: Context):
        """The mean cosine similarity of this element's Gram matrix to its map's other replicates."""
        import tensorflow as tf

        features = ctx.features
        if len(features.shape) == 4:
            b = tf.shape(features)[0]
            flat = tf.reshape(features, [b, -1, int(features.shape[-1])])
            style = tf.reshape(tf.matmul(flat, flat, transpose_a=True), [b, -1])  # Gram matrices
        else:
            style = features
        unit = tf.math.l2_normalize(style, axis=1)
        similarity = tf.matmul(unit, unit, transpose_b=True)
        groups = ctx.maps if ctx.groups is None else ctx.groups
        same = tf.cast(tf.equal(groups[:, None], groups[None, :]), similarity.dtype)
        others = same - tf.eye(tf.shape(same)[0], dtype=similarity.dtype)
        count = tf.maximum(tf.reduce_sum(others, axis=1), 1.0)
        return tf.reduce_sum(similarity * others, axis=1) / count

    def text(self) -> str:
        return "diversity"


@dataclass(frozen=True)
class _ImageTerm(Term):
    """A penalty on the image itself (a regularizer; subtract it with a weight)."""

    reads_layer = False

    def _scaled(self, ctx: Context):
        return (ctx.images - ctx.centre) / ctx.spread


@dataclass(frozen=True)
class _TotalVariation(_ImageTerm):
    def value(self, ctx: Context):
        import tensorflow as tf

        x = self._scaled(ctx)
        dy = tf.reduce_mean(tf.abs(x[:, 1:] - x[:, :-1]), axis=[1, 2, 3])
        dx = tf.reduce_mean(tf.abs(x[:, :, 1:] - x[:, :, :-1]), axis=[1, 2, 3])
        return dy + dx

    def text(self) -> str:
        return "tv"


@dataclass(frozen=True)
class _L1(_ImageTerm):
    def value(self, ctx: Context):
        import tensorflow as tf

        return tf.reduce_mean(tf.abs(self._scaled(ctx)), axis=[1, 2, 3])

    def text(self) -> str:
        return "l1"


@dataclass(frozen=True)
class _L2(_ImageTerm):
    def value(self, ctx: Context):
        import tensorflow as tf

        return tf.reduce_mean(tf.square(self._scaled(ctx)), axis=[1, 2, 3])

    def text(self) -> str:
        return "l2"


@dataclass(frozen=True)
class _Blur(_ImageTerm):
    def value(self, ctx: Context):
        """Squared distance to the image's own 3x3-blurred copy (the copy is held fixed)."""
        import tensorflow as tf

        x = self._scaled(ctx)
        c = int(x.shape[-1])
        kernel = tf.constant(np.full((3, 3, c, 1), 1 / 9, np.float32))
        padded = tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]], mode="SYMMETRIC")
        blurred = tf.stop_gradient(tf.nn.depthwise_conv2d(padded, kernel, [1, 1, 1, 1], "VALID"))
        return tf.reduce_mean(tf.square(x - blurred), axis=[1, 2, 3])

    def text(self) -> str:
        return "blur"


@dataclass(frozen=True)
class Objective(_Arithmetic):
    """A weighted sum of terms; what every element of an ascent maximizes.

    Attributes:
        terms: (weight, term) pairs.
    """

    terms: tuple[tuple[float, Term], ...]

    def validate(self) -> "Objective":
        """The objective itself, when it can drive an ascent (parts built on the way need not).

        Raises:
            ConfigError: no terms, no term that reads the layer, a first layer term with a
                weight <= 0, or class logits mixed with other layer terms.
        """
        if not self.terms:
            raise ConfigError("an objective needs at least one term")
        if self.primary is None:
            raise ConfigError(f"objective {self.text()!r} reads no layer; add a term such as channel, "
                              "neuron or class (tv, l1, l2 and blur only shape the image)")
        if self.terms[0][1] is self.primary and self.terms[0][0] <= 0:
            raise ConfigError(f"objective {self.text()!r}: its first layer term must have a positive weight")
        kinds = {term.logits for _, term in self.terms if term.reads_layer}
        if len(kinds) > 1:
            raise ConfigError(f"objective {self.text()!r} mixes class logits with other layer terms; "
                              "use class alone (with image terms)")
        return self

    def _objective(self) -> "Objective":
        return self

    @property
    def primary(self) -> Term | None:
        """The first term that reads the layer: its value is the OIP's activation."""
        return next((term for _, term in self.terms if term.reads_layer and not term.couples), None)

    @property
    def logits(self) -> bool:
        """Whether the objective reads the layer before its activation."""
        return self.primary.logits

    @property
    def couples(self) -> bool:
        """Whether the replicates of a map climb together (a diversity term)."""
        return any(term.couples for _, term in self.terms)

    @property
    def own_map(self) -> bool:
        """Whether the objective reads nothing of the layer but each element's own map."""
        return all(term.own_map for _, term in self.terms)

    @property
    def is_series(self) -> bool:
        """Whether this is the series' objective, the channel mean alone."""
        return self.terms == ((1.0, _Channel()),)

    def value(self, ctx: Context):
        """(B,) tensor: the weighted sum of the terms."""
        total = None
        for weight, term in self.terms:
            part = term.value(ctx)
            part = part if weight == 1.0 else weight * part
            total = part if total is None else total + part
        return total

    def check(self, output_shape: tuple) -> None:
        """Raise ConfigError when a term does not fit a layer output of ``output_shape`` (with batch)."""
        for _, term in self.terms:
            term.check(tuple(output_shape))

    def measure(self, ctx: Context):
        """(B,) tensor: the primary term alone (the OIP's reported activation)."""
        return self.primary.value(ctx)

    def silent(self, value, gradient_rms):
        """(B,) bool: elements whose ascent cannot move, by the primary term's rule."""
        return self.primary.silent(value, gradient_rms)

    @staticmethod
    def change(value, previous):
        """(B,) relative change of the value, against its magnitude (valid for negative values)."""
        import tensorflow as tf

        return (value - previous) / (tf.abs(value) + 1e-7)

    def text(self) -> str:
        """The objective in the command-line grammar (parsed back by :func:`parse_objective`)."""
        parts = []
        for weight, term in self.terms:
            sign = "-" if weight < 0 else "+"
            size = abs(weight)
            body = term.text() if size == 1.0 else f"{size:g}*{term.text()}"
            parts.append((sign, body))
        first_sign, first = parts[0]
        out = ("-" if first_sign == "-" else "") + first
        return out + "".join(f" {sign} {body}" for sign, body in parts[1:])

    def __str__(self) -> str:
        return self.text()


# ---- constructors ----------------------------------------------------------------------------

def channel() -> Term:
    """The mean activation of the element's map (the series' objective)."""
    return _Channel()


def neuron(y: int | None = None, x: int | None = None) -> Term:
    """One position of the element's map; default the centre one."""
    if (y is None) != (x is None):
        raise ConfigError("give both Y and X of the neuron (neuron:Y,X), or neither for the centre")
    if y is not None and (y < 0 or x < 0):
        raise ConfigError(f"neuron position must be >= 0, got {y},{x}")
    return _Neuron(y, x)


def region(y0: int, y1: int, x0: int, x1: int) -> Term:
    """The mean of the element's map over positions ``y0:y1, x0:x1`` of the layer."""
    if not (0 <= y0 < y1 and 0 <= x0 < x1):
        raise ConfigError(f"region {y0}:{y1},{x0}:{x1} is empty; use Y0 < Y1 and X0 < X1, e.g. region:2:5,2:5")
    return _Region(int(y0), int(y1), int(x0), int(x1))


def direction(vector) -> Term:
    """The mean projection of the layer's output onto a direction over its maps (the map index is ignored)."""
    values = np.asarray(vector, np.float64).reshape(-1)
    if values.size == 0 or not np.all(np.isfinite(values)) or not np.any(values):
        raise ConfigError("a direction needs finite values, not all zero, one per map")
    return _Direction(tuple(float(v) for v in values))


def class_logit() -> Term:
    """The element's output unit before the layer's activation (the pre-softmax logit)."""
    return _ClassLogit()


def diversity() -> Term:
    """The similarity of the replicates of a map (Gram matrices); subtract it with a weight to spread them."""
    return _Diversity()


def tv() -> Term:
    """Total variation of the image (subtract it with a weight to smooth the OIP)."""
    return _TotalVariation()


def l1() -> Term:
    """Mean absolute deviation of the image from the encoding's centre, in spread units."""
    return _L1()


def l2() -> Term:
    """Mean squared deviation of the image from the encoding's centre, in spread units."""
    return _L2()


def blur() -> Term:
    """Squared distance of the image to its blurred copy (subtract it to suppress fine grain)."""
    return _Blur()


# the command-line grammar has its own module; its names stay importable from here
from .grammar import OBJECTIVE_HELP, parse_objective  # noqa: E402
