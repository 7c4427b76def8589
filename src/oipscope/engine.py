"""The batched gradient-ascent engine: many OIPs at once in one compiled loop.

Batch element ``b`` maximizes the mean activation of map ``map_indices[b]``.
The elements are independent (a conv net without batch coupling in inference
mode), so one gradient of the summed losses yields every element's own
gradient. Each element's gradient is RMS-normalized, the image updated by
``epsilon * grad`` (in units of the encoding's spread) and kept inside the
model's :class:`~oipscope.encoding.InputEncoding` by its ``project``: for the
series' per-image standardization that is the seed's re-standardization after
every step, for a value range a clip to the range. The whole step loop runs inside a single
``tf.function`` (a ``tf.while_loop``), traced once per sub-model and image shape.
"""

from __future__ import annotations

import math
import weakref
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from .encoding import InputEncoding
from .errors import ConfigError

__all__ = [
    "STATUS_CONVERGED",
    "STATUS_STEP_LIMIT",
    "STATUS_SILENT",
    "STATUS_NONFINITE",
    "STATUS_NAMES",
    "OipConfig",
    "AscentArrays",
    "default_snapshot_steps",
    "ascend",
    "estimate_chunk_size",
]

STATUS_CONVERGED = 0
STATUS_STEP_LIMIT = 1
STATUS_SILENT = 2
STATUS_NONFINITE = 3
STATUS_NAMES: dict[int, str] = {0: "converged", 1: "step_limit", 2: "silent", 3: "nonfinite"}


def default_snapshot_steps(steps: int) -> tuple[int, ...]:
    """Log-spaced snapshot steps: 0, 9, 18, 36, 72, ... below ``steps-1``, and ``steps-1``."""
    out = {0, steps - 1}
    s = 9
    while s < steps - 1:
        out.add(s)
        s *= 2
    return tuple(sorted(out))


def _check(cond: bool, msg: str) -> None:
    if not cond:
        raise ConfigError(msg)


def _is_int(x: Any) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, bool)


@dataclass(frozen=True)
class OipConfig:
    """All parameters of an OIP search, validated on creation.

    Attributes:
        epsilon: step size of the normalized gradient (the seed's 0.01).
        steps: maximum ascent steps (strategy 0).
        conv_criterion: relative loss change below which a step counts as converged.
        conv_patience: successive converged steps (after step 10) that stop a map.
        stop_on_convergence: freeze converged maps (else run all steps).
        scales: length scales of the initial noise; None = the seed's (3, 7, 14, 28)
            relative to the image height.
        factors: one amplitude per scale; None = 0.5 each.
        smoothing: one more bicubic resize pass over the initial image.
        strategy: 0 = one loop from the full mix; 1 = coarse-to-fine evolution.
        strategy1_steps: steps per stage of strategy 1 (one per scale).
        start: "scales" (the seed's noise) or "fourier" (1/f^alpha noise).
        fourier_alpha: spectral exponent of the Fourier start.
        precursor: pick the best of ``n_candidates`` starts per map first.
        n_candidates: candidate starts per map for the precursor.
        restarts: extra rounds with other starts for maps that end silent.
        rescue_steps: for maps still silent after the restarts, steps of ascent on
            the layer's pre-activation (before its ReLU) before the ordinary
            ascent; 0 turns the rescue off.
        n_per_map: OIPs per map (different seeds).
        seed: RNG seed; the same seed gives identical results.
        snapshot_steps: steps after which the image is recorded; None = log-spaced.
        memory_budget_mb: batch chunking budget.
        jit_compile: compile the loop with XLA.
    """

    epsilon: float = 0.01
    steps: int = 600
    conv_criterion: float = 5e-4
    conv_patience: int = 4
    stop_on_convergence: bool = True
    scales: tuple[int, ...] | None = None
    factors: tuple[float, ...] | None = None
    smoothing: bool = False
    strategy: int = 0
    strategy1_steps: tuple[int, ...] = (20, 40, 80, 400)
    start: str = "scales"
    fourier_alpha: float = 1.0
    precursor: bool = True
    n_candidates: int = 32
    restarts: int = 3
    rescue_steps: int = 100
    n_per_map: int = 1
    seed: int = 0
    snapshot_steps: tuple[int, ...] | None = None
    memory_budget_mb: float = 512.0
    jit_compile: bool = False

    def __post_init__(self) -> None:
        def norm(name: str, conv: Callable) -> None:
            value = getattr(self, name)
            if value is not None and not isinstance(value, tuple):
                try:
                    object.__setattr__(self, name, tuple(conv(v) for v in value))
                except TypeError:
                    raise ConfigError(f"{name} must be a sequence, got {value!r}") from None

        norm("scales", int)
        norm("factors", float)
        norm("strategy1_steps", int)
        norm("snapshot_steps", int)
        _check(isinstance(self.epsilon, (int, float)) and math.isfinite(self.epsilon) and self.epsilon > 0,
               f"epsilon must be > 0, got {self.epsilon!r}")
        _check(_is_int(self.steps) and self.steps >= 1, f"steps must be an integer >= 1, got {self.steps!r}")
        _check(isinstance(self.conv_criterion, (int, float)) and math.isfinite(self.conv_criterion)
               and self.conv_criterion >= 0, f"conv_criterion must be >= 0, got {self.conv_criterion!r}")
        _check(_is_int(self.conv_patience) and self.conv_patience >= 1,
               f"conv_patience must be an integer >= 1, got {self.conv_patience!r}")
        if self.scales is not None:
            _check(len(self.scales) >= 1 and all(s >= 1 for s in self.scales),
                   f"scales must be positive integers, got {self.scales!r}")
        if self.factors is not None:
            n = len(self.scales) if self.scales is not None else None
            _check(n is None or len(self.factors) == n,
                   f"{len(self.factors)} factors for {n} scales; give one factor per scale")
            _check(all(math.isfinite(f) for f in self.factors), f"factors must be finite, got {self.factors!r}")
            _check(all(f >= 0 for f in self.factors),
                   f"factors must be >= 0 (amplitudes of the noise on each scale), got {self.factors!r}")
            _check(any(f > 0 for f in self.factors),
                   "factors are all 0, the initial image would be blank; give at least one factor > 0")
        _check(self.strategy in (0, 1) and _is_int(self.strategy), f"strategy must be 0 or 1, got {self.strategy!r}")
        _check(len(self.strategy1_steps) >= 1 and all(s >= 1 for s in self.strategy1_steps),
               f"strategy1_steps must be integers >= 1, got {self.strategy1_steps!r}")
        _check(self.start in ("scales", "fourier"), f"start must be 'scales' or 'fourier', got {self.start!r}")
        _check(isinstance(self.fourier_alpha, (int, float)) and math.isfinite(self.fourier_alpha)
               and self.fourier_alpha >= 0, f"fourier_alpha must be >= 0, got {self.fourier_alpha!r}")
        _check(_is_int(self.n_candidates) and self.n_candidates >= 1,
               f"n_candidates must be an integer >= 1, got {self.n_candidates!r}")
        _check(_is_int(self.restarts) and self.restarts >= 0, f"restarts must be an integer >= 0, got {self.restarts!r}")
        _check(_is_int(self.rescue_steps) and self.rescue_steps >= 0,
               f"rescue_steps must be an integer >= 0, got {self.rescue_steps!r}")
        _check(_is_int(self.n_per_map) and self.n_per_map >= 1,
               f"n_per_map must be an integer >= 1, got {self.n_per_map!r}")
        _check(_is_int(self.seed) and self.seed >= 0, f"seed must be an integer >= 0, got {self.seed!r}")
        if self.snapshot_steps is not None:
            bad = [s for s in self.snapshot_steps if not 0 <= s < self.total_steps]
            _check(not bad, f"snapshot steps {bad} outside 0..{self.total_steps - 1}")
        _check(isinstance(self.memory_budget_mb, (int, float)) and self.memory_budget_mb > 0,
               f"memory_budget_mb must be > 0, got {self.memory_budget_mb!r}")

    @property
    def total_steps(self) -> int:
        """Steps of the final ascent: ``steps`` (strategy 0) or the last stage of strategy 1."""
        return self.steps if self.strategy == 0 else self.strategy1_steps[-1]

    def resolved_scales(self, height: int) -> tuple[int, ...]:
        """The length scales for an image of this height."""
        from .initial import default_scales

        return self.scales if self.scales is not None else default_scales(height)

    def check_image_size(self, height: int, width: int) -> None:
        """Check the scales and factors against an image of ``height`` x ``width`` pixels.

        Raises:
            ConfigError: a length scale is larger than the image, or the number of
                factors does not match the (default) scales.
        """
        too_big = [s for s in self.resolved_scales(height) if s > min(height, width)]
        _check(not too_big,
               f"length scale {too_big[0] if len(too_big) == 1 else too_big} is larger than the "
               f"{height}x{width} model input; use scales between 1 and {min(height, width)}")
        self.resolved_factors(height)

    def resolved_factors(self, height: int) -> tuple[float, ...]:
        """One factor per resolved scale."""
        n = len(self.resolved_scales(height))
        if self.factors is None:
            return (0.5,) * n
        _check(len(self.factors) == n, f"{len(self.factors)} factors for {n} scales; give one factor per scale")
        return self.factors

    def resolved_snapshot_steps(self, steps: int | None = None) -> tuple[int, ...]:
        """Snapshot steps for a run of ``steps`` steps (default ``total_steps``)."""
        steps = self.total_steps if steps is None else steps
        if self.snapshot_steps is not None:
            return tuple(sorted({s for s in self.snapshot_steps if s < steps}))
        return default_snapshot_steps(steps)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (tuples become lists)."""
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "OipConfig":
        """Inverse of :meth:`to_dict`; unknown keys raise ConfigError."""
        names = {f for f in cls.__dataclass_fields__}
        unknown = set(data) - names
        _check(not unknown, f"unknown OipConfig fields: {sorted(unknown)}")
        return cls(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in data.items()})


@dataclass(frozen=True)
class AscentArrays:
    """Per-element outcome of :func:`ascend` (B = batch size).

    Attributes:
        images: final images (B, H, W, C).
        activations: final mean activation of each element's map (B,).
        status: status codes (B,): 0 converged, 1 step limit, 2 silent, 3 non-finite.
        converged_step: step at which convergence was met, -1 if never (B,).
        history: loss before each step (B, steps); frozen elements repeat their loss.
        snapshots: images after each snapshot step (B, S, H, W, C).
        snapshot_steps: the S steps.
    """

    images: np.ndarray
    activations: np.ndarray
    status: np.ndarray
    converged_step: np.ndarray
    history: np.ndarray
    snapshots: np.ndarray
    snapshot_steps: tuple[int, ...] = field(default=())


def _activation_bytes(submodel) -> int:
    total = 0
    for layer in submodel.layers:
        try:
            shape = layer.output.shape
        except (AttributeError, ValueError):
            continue
        n = 1
        for d in shape[1:]:
            n *= int(d or 1)
        total += n
    return 4 * total


def estimate_chunk_size(submodel, n_snapshots: int, steps: int, budget_mb: float) -> int:
    """How many batch elements fit in ``budget_mb`` (activations ×4 for fwd/bwd, snapshots, history)."""
    h, w, c = (int(d) for d in submodel.inputs[0].shape[1:])
    per = 4 * _activation_bytes(submodel) + 4 * h * w * c * (n_snapshots + 6) + 4 * steps
    return max(1, int(budget_mb * 2**20 // per))


_LOOPS: "weakref.WeakKeyDictionary[Any, dict]" = weakref.WeakKeyDictionary()


def _build_loop(submodel, jit: bool, encoding: InputEncoding):
    import tensorflow as tf

    h, w, c = (int(d) for d in submodel.inputs[0].shape[1:])
    spread = tf.constant(encoding.spread(c))  # ones for standardization: the seed's step exactly
    spec = [
        tf.TensorSpec((None, h, w, c), tf.float32),  # images
        tf.TensorSpec((None,), tf.int32),  # map indices
        tf.TensorSpec((), tf.int32),  # steps
        tf.TensorSpec((), tf.float32),  # epsilon
        tf.TensorSpec((), tf.float32),  # conv criterion
        tf.TensorSpec((), tf.int32),  # conv patience
        tf.TensorSpec((), tf.bool),  # stop on convergence
        tf.TensorSpec((None,), tf.int32),  # snapshot slot per step (-1 none)
        tf.TensorSpec((), tf.int32),  # number of snapshots
    ]

    def loss_and_grad(x, maps):
        with tf.GradientTape() as tape:
            tape.watch(x)
            act = submodel(x, training=False)
            sel = tf.gather(act, maps, axis=3, batch_dims=1)  # (B, h', w')
            loss = tf.reduce_mean(sel, axis=[1, 2])
            total = tf.reduce_sum(loss)
        return loss, tape.gradient(total, x)

    @tf.function(input_signature=spec, jit_compile=jit, reduce_retracing=True)
    def loop(x0, maps, steps, eps, crit, patience, stop, snap_slot, n_snap):
        b = tf.shape(x0)[0]
        zeros_b = tf.zeros([b], tf.int32)
        hist = tf.zeros([steps, b], tf.float32)
        snaps = tf.zeros(tf.concat([[n_snap], tf.shape(x0)], 0), tf.float32)
        loss_old = tf.zeros([b], tf.float32)
        active = tf.ones([b], tf.bool)
        status = tf.fill([b], STATUS_STEP_LIMIT)
        conv_step = tf.fill([b], -1)

        def cond(i, x, loss_old, last, active, status, conv_step, run, hist, snaps):
            return tf.logical_and(i < steps, tf.reduce_any(active))

        def body(i, x, loss_old, last, active, status, conv_step, run, hist, snaps):
            loss, grad = loss_and_grad(x, maps)
            finite = tf.logical_and(
                tf.math.is_finite(loss), tf.reduce_all(tf.math.is_finite(grad), axis=[1, 2, 3])
            )
            grad = encoding.free_gradient(x, grad)
            rms = tf.sqrt(tf.reduce_mean(tf.square(grad), axis=[1, 2, 3]))
            silent = tf.logical_and(tf.equal(loss, 0.0), tf.equal(rms, 0.0))
            rel = (loss - loss_old) / (loss + 1e-7)
            hit = tf.logical_and(i > 10, rel < crit)
            run = tf.where(hit, run + 1, zeros_b)
            newly_conv = tf.logical_and(tf.logical_and(run >= patience, conv_step < 0), active)
            newly_conv = tf.logical_and(newly_conv, tf.logical_and(finite, tf.logical_not(silent)))
            conv_step = tf.where(newly_conv, i, conv_step)
            # record the loss of every element; frozen ones keep their last loss
            cur = tf.where(active, tf.where(finite, loss, last), last)
            hist = tf.tensor_scatter_nd_update(hist, [[i]], [cur])
            bad = tf.logical_and(active, tf.logical_not(finite))
            sil = tf.logical_and(tf.logical_and(active, finite), silent)
            status = tf.where(bad, STATUS_NONFINITE, status)
            status = tf.where(sil, STATUS_SILENT, status)
            status = tf.where(tf.logical_and(newly_conv, tf.logical_not(sil)), STATUS_CONVERGED, status)
            stop_now = tf.logical_and(newly_conv, stop)
            update = tf.logical_and(active, tf.logical_not(tf.logical_or(tf.logical_or(bad, sil), stop_now)))
            g = grad / (rms[:, None, None, None] + 1e-7)
            g = tf.where(finite[:, None, None, None], g, tf.zeros_like(g))
            x_new = encoding.project(x + eps * spread * g)
            x = tf.where(update[:, None, None, None], x_new, x)
            active = update
            slot = snap_slot[i]
            snaps = tf.cond(
                slot >= 0,
                lambda: tf.tensor_scatter_nd_update(snaps, [[slot]], [x]),
                lambda: snaps,
            )
            return i + 1, x, cur, cur, active, status, conv_step, run, hist, snaps

        i0 = tf.constant(0)
        out = tf.while_loop(
            cond,
            body,
            (i0, x0, loss_old, loss_old, active, status, conv_step, zeros_b, hist, snaps),
            maximum_iterations=steps,
        )
        i, x, _, last, active, status, conv_step, _, hist, snaps = out
        final_loss, _ = loss_and_grad(x, maps)
        return i, x, final_loss, status, conv_step, hist, snaps

    return loop


def _get_loop(submodel, jit: bool, encoding: InputEncoding):
    try:
        cache = _LOOPS.setdefault(submodel, {})
    except TypeError:  # not weak-referenceable
        return _build_loop(submodel, jit, encoding)
    if (jit, encoding) not in cache:
        cache[jit, encoding] = _build_loop(submodel, jit, encoding)
    return cache[jit, encoding]


def ascend(
    submodel,
    images: np.ndarray,
    map_indices: Sequence[int],
    config: OipConfig = OipConfig(),
    *,
    steps: int | None = None,
    snapshot_steps: Sequence[int] | None = None,
    stop_on_convergence: bool | None = None,
    encoding: InputEncoding | None = None,
) -> AscentArrays:
    """Run the gradient ascent for a batch; element ``b`` maximizes map ``map_indices[b]``.

    Args:
        submodel: Keras model from the image input to the feature-map layer.
        images: initial images (B, H, W, C) in the model's input encoding.
        map_indices: B map indices.
        config: epsilon, convergence and memory parameters.
        steps: override ``config.steps``.
        snapshot_steps: override the snapshot steps.
        stop_on_convergence: override ``config.stop_on_convergence``.
        encoding: the model's input encoding, which every step keeps the images in
            (default: the series' per-image standardization).

    Returns:
        AscentArrays with the per-element images, losses, statuses and histories.
    """
    import tensorflow as tf

    images = np.asarray(images, np.float32)
    maps = np.asarray(map_indices, np.int32).reshape(-1)
    h, w, c = (int(d) for d in submodel.inputs[0].shape[1:])
    if images.ndim != 4 or images.shape[1:] != (h, w, c):
        raise ConfigError(f"images must have shape (B, {h}, {w}, {c}), got {images.shape}")
    if len(maps) != len(images):
        raise ConfigError(f"{len(maps)} map indices for {len(images)} images")
    n_maps = int(submodel.outputs[0].shape[-1])
    if len(maps) and (maps.min() < 0 or maps.max() >= n_maps):
        raise ConfigError(f"map indices must be in 0..{n_maps - 1}, got {sorted(set(maps.tolist()))}")
    steps = config.steps if steps is None else int(steps)
    _check(steps >= 1, f"steps must be >= 1, got {steps}")
    snaps = (config.resolved_snapshot_steps(steps) if snapshot_steps is None
             else tuple(sorted({int(s) for s in snapshot_steps if 0 <= int(s) < steps})))
    stop = config.stop_on_convergence if stop_on_convergence is None else bool(stop_on_convergence)
    slot = np.full(steps, -1, np.int32)
    for k, s in enumerate(snaps):
        slot[s] = k
    b = len(images)
    if b == 0:
        return AscentArrays(images, np.zeros(0, np.float32), np.zeros(0, np.int8), np.zeros(0, np.int32),
                            np.zeros((0, steps), np.float32), np.zeros((0, len(snaps), h, w, c), np.float32), snaps)
    loop = _get_loop(submodel, config.jit_compile, encoding or InputEncoding.standardize())
    chunk = estimate_chunk_size(submodel, len(snaps), steps, config.memory_budget_mb)
    parts = []
    for start in range(0, b, chunk):
        sl = slice(start, start + chunk)
        i, x, loss, status, conv_step, hist, snap = loop(
            tf.constant(images[sl]), tf.constant(maps[sl]), tf.constant(steps, tf.int32),
            tf.constant(config.epsilon, tf.float32), tf.constant(config.conv_criterion, tf.float32),
            tf.constant(config.conv_patience, tf.int32), tf.constant(stop), tf.constant(slot),
            tf.constant(len(snaps), tf.int32),
        )
        n_done = int(i)
        hist = hist.numpy().T.copy()  # (B, steps)
        snap = np.moveaxis(snap.numpy(), 0, 1).copy()  # (B, S, H, W, C)
        x = x.numpy()
        if n_done < steps:  # everything frozen early: the rest of the history/snapshots stay put
            hist[:, n_done:] = hist[:, n_done - 1 : n_done]
            for k, s in enumerate(snaps):
                if s >= n_done:
                    snap[:, k] = x
        parts.append((x, loss.numpy(), status.numpy(), conv_step.numpy(), hist, snap))
    cat = [np.concatenate([p[k] for p in parts]) for k in range(6)]
    return AscentArrays(
        images=cat[0].astype(np.float32),
        activations=cat[1].astype(np.float32),
        status=cat[2].astype(np.int8),
        converged_step=cat[3].astype(np.int32),
        history=cat[4].astype(np.float32),
        snapshots=cat[5].astype(np.float32),
        snapshot_steps=snaps,
    )
