"""The batched gradient-ascent engine: many OIPs at once in one compiled loop.

Batch element ``b`` maximizes its target ``map_indices[b]`` under an
:class:`~oipscope.ascent.objective.Objective` (default the series': the mean activation
of the map). The elements are independent (a conv net without batch coupling in
inference mode), so one gradient of the summed objective yields every element's
own gradient. Each element's gradient is
RMS-normalized, the image updated by ``epsilon * grad`` (in units of the
encoding's spread) and kept inside the model's
:class:`~oipscope.model.encoding.InputEncoding` by its ``project``: for the series'
per-image standardization that is the seed's re-standardization after every
step, for a value range a clip to the range.

The steps run inside one ``tf.function`` (a ``tf.while_loop``), traced once per
sub-model and encoding, in segments of :attr:`Execution.segment_steps` steps.
The loops are written with explicit ``tf.while_loop``/``tf.cond`` and traced
without AutoGraph (its first conversion alone took about 2 s of a zoo).
Between segments the batch is compacted: elements that stopped (converged,
silent, non-finite, out of steps) leave it and waiting elements take their
places, so every step is spent on elements that still climb. Each element
carries its own step count, so its OIP is the same whichever elements share
its batch.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from .traces import shared_function, weight_specs, weights_of, with_weights
from ..config import Execution, OipConfig
from ..model.encoding import InputEncoding
from ..model.memory import batch_for_budget
from ..errors import ConfigError
from .objective import Context, Objective, parse_objective
from .own_map import preactivation_through_head
from .step import normalized, value_and_gradient
from .step import rms as step_rms
from ..search.status import Status

__all__ = [
    "AscentArrays",
    "ascend",
    "mean_activations",
    "estimate_chunk_size",
    "HISTORY_SAMPLES",
    "history_every",
    "sample_history",
]

HISTORY_SAMPLES = 4096
"""The most activation-history entries kept per OIP: a longer ascent keeps every
``history_every(steps)``-th step's, evenly spaced (the default 600 steps keep all)."""


def history_every(steps: int) -> int:
    """The spacing of the kept history entries of a ``steps``-step ascent: 1 up to :data:`HISTORY_SAMPLES` steps."""
    return max(1, -(-int(steps) // HISTORY_SAMPLES))


def sample_history(history: np.ndarray, rows, first: int, values: np.ndarray, every: int) -> None:
    """Keep the activations of steps ``first, first+1, ...`` (``values``, steps along axis 0) that fall on
    every ``every``-th step, into ``history[rows, step // every]``."""
    start = -(-first // every) * every  # the first kept step at or after ``first``
    kept = values[start - first :: every]
    if len(kept):
        history[rows, start // every : start // every + len(kept)] = kept.T if kept.ndim > 1 else kept

_RUNNING = Status.STEP_LIMIT.code  # the status of an element until something else happens


@dataclass(frozen=True)
class AscentArrays:
    """Per-element outcome of :func:`ascend` (B = batch size).

    Attributes:
        images: final images (B, H, W, C).
        activations: final mean activation of each element's map (B,).
        status: :attr:`~oipscope.search.status.Status.code` of each element (B,);
            :meth:`statuses` gives the :class:`~oipscope.search.status.Status` values.
        converged_step: step at which convergence was met, -1 if never (B,).
        history: the activation before each step (B, steps); a stopped element
            repeats its last one. An ascent of more than :data:`HISTORY_SAMPLES`
            steps keeps only every ``history_every``-th step's.
        snapshots: images after each snapshot step (B, S, H, W, C).
        snapshot_steps: the S steps.
        history_every: the steps between two history entries (1: every step).
    """

    images: np.ndarray
    activations: np.ndarray
    status: np.ndarray
    converged_step: np.ndarray
    history: np.ndarray
    snapshots: np.ndarray
    snapshot_steps: tuple[int, ...] = field(default=())
    history_every: int = 1

    def statuses(self) -> list[Status]:
        """The status of each element."""
        return [Status.from_code(code) for code in self.status]


def estimate_chunk_size(submodel, n_snapshots: int, steps: int, budget_mb: float) -> int:
    """How many batch elements fit in ``budget_mb``: a gradient pass
    (:func:`~oipscope.model.memory.gradient_bytes_per_image`), snapshots, history."""
    h, w, c = (int(d) for d in submodel.inputs[0].shape[1:])
    return batch_for_budget(submodel, budget_mb, gradient=True,
                            extra_bytes=4 * h * w * c * (n_snapshots + 6) + 4 * steps)


def _build_segment(submodel, jit: bool, encoding: InputEncoding, objective: Objective, warm: bool,
                   own_maps: bool = True):
    """The compiled segment: up to ``seg_len`` steps of every element still running.

    ``warm``: the segment of the warm-up steps: ReLUs redirected (:mod:`oipscope.ascent.warmup`) for
    elements below the warm-up step, the ordinary gradient (equal bit for bit) for the others.
    :func:`ascend` runs it only while an element warms up, and the plain segment after.
    ``own_maps``: compute only each element's own map of the target layer where
    :func:`~oipscope.ascent.own_map.ascent_layer` allows it.
    """
    import tensorflow as tf

    from .own_map import ascent_layer
    from .warmup import redirected_relu

    h, w, c = (int(d) for d in submodel.inputs[0].shape[1:])
    spread = tf.constant(encoding.spread(c))  # ones for standardization: the seed's step exactly
    vector = tf.TensorSpec((None,), tf.int32)
    spec = [
        tf.TensorSpec((None, h, w, c), tf.float32),  # images
        vector,  # map index per element
        vector,  # steps done per element
        tf.TensorSpec((None,), tf.float32),  # activation before the last step done
        vector,  # successive steps below the convergence criterion
        vector,  # status code
        vector,  # converged step (-1: not yet)
        tf.TensorSpec((), tf.int32),  # segment length
        tf.TensorSpec((), tf.int32),  # total steps
        tf.TensorSpec((), tf.float32),  # epsilon
        tf.TensorSpec((), tf.float32),  # convergence criterion
        tf.TensorSpec((), tf.int32),  # convergence patience
        tf.TensorSpec((), tf.bool),  # stop on convergence
        vector,  # snapshot slot of every step (-1: none)
        tf.TensorSpec((), tf.int32),  # snapshots one element can take in this segment
        tf.TensorSpec((), tf.int32),  # warm-up steps
        tf.TensorSpec((), tf.bool),  # climb the layer's pre-activation (through the own-map head)
        weight_specs(submodel),  # the weights of the model it runs for (one trace per architecture)
    ]
    centre = tf.constant(encoding.centre(c))
    layer_output = ascent_layer(submodel, objective, own_maps)

    def plain_gradient(x, maps, preactivation, warming=None):
        def value_of(x):
            if warming is not None:
                with redirected_relu(warming):
                    features, own = layer_output(x, maps, preactivation)
            else:
                features, own = layer_output(x, maps, preactivation)
            return objective.value(Context(features, x, own, centre=centre, spread=spread))

        return value_and_gradient(value_of, x)

    def activation_and_gradient(x, maps, preactivation, warming):
        return plain_gradient(x, maps, preactivation, warming if warm else None)

    @tf.function(input_signature=spec, jit_compile=jit, reduce_retracing=True, autograph=False)
    def segment(x, maps, step, prev, run, status, conv_step, seg_len, total_steps, eps, crit, patience, stop,
                snap_slot, snap_capacity, warmup, preactivation, weights):
        with with_weights(submodel, weights):
            return run_steps(x, maps, step, prev, run, status, conv_step, seg_len, total_steps, eps, crit,
                             patience, stop, snap_slot, snap_capacity, warmup, preactivation)

    def run_steps(x, maps, step, prev, run, status, conv_step, seg_len, total_steps, eps, crit, patience, stop,
                  snap_slot, snap_capacity, warmup, preactivation):
        b = tf.shape(x)[0]
        rows = tf.range(b)
        zeros_b = tf.zeros([b], tf.int32)
        hist = tf.zeros([seg_len, b], tf.float32)
        # one slot at least: XLA refuses a scatter into an empty buffer, even in a branch never taken
        snaps = tf.zeros(tf.concat([[tf.maximum(snap_capacity, 1)], tf.shape(x)], 0), tf.float32)
        taken = zeros_b
        active = step < total_steps

        def cond(i, x, step, prev, active, status, conv_step, run, hist, snaps, taken):
            return tf.logical_and(i < seg_len, tf.reduce_any(active))

        def body(i, x, step, prev, active, status, conv_step, run, hist, snaps, taken):
            activation, grad = activation_and_gradient(x, maps, preactivation, tf.logical_and(active, step < warmup))
            finite = tf.logical_and(
                tf.math.is_finite(activation), tf.reduce_all(tf.math.is_finite(grad), axis=[1, 2, 3])
            )
            grad = encoding.free_gradient(x, grad)
            rms = step_rms(grad)
            silent = objective.silent(activation, rms)
            rel = objective.change(activation, prev)
            hit = tf.logical_and(tf.logical_and(step > 10, step >= warmup), rel < crit)
            run = tf.where(active, tf.where(hit, run + 1, zeros_b), run)
            newly_conv = tf.logical_and(tf.logical_and(run >= patience, conv_step < 0), active)
            newly_conv = tf.logical_and(newly_conv, tf.logical_and(finite, tf.logical_not(silent)))
            conv_step = tf.where(newly_conv, step, conv_step)
            # the activation before this step; a frozen element keeps its last one
            cur = tf.where(active, tf.where(finite, activation, prev), prev)
            hist = tf.tensor_scatter_nd_update(hist, [[i]], [cur])
            bad = tf.logical_and(active, tf.logical_not(finite))
            sil = tf.logical_and(tf.logical_and(active, finite), silent)
            status = tf.where(bad, Status.NONFINITE.code, status)
            status = tf.where(sil, Status.SILENT.code, status)
            status = tf.where(tf.logical_and(newly_conv, tf.logical_not(sil)), Status.CONVERGED.code, status)
            stop_now = tf.logical_and(newly_conv, stop)
            update = tf.logical_and(active, tf.logical_not(tf.logical_or(tf.logical_or(bad, sil), stop_now)))
            g = normalized(grad, rms)
            g = tf.where(finite[:, None, None, None], g, tf.zeros_like(g))
            x_new = encoding.project(x + eps * spread * g)
            x = tf.where(update[:, None, None, None], x_new, x)
            # the image after this step, for elements whose step is a snapshot step
            slot = tf.gather(snap_slot, tf.minimum(step, total_steps - 1))
            take = tf.logical_and(active, slot >= 0)
            snaps = tf.cond(  # most steps take no snapshot: skip the copy of the buffer
                tf.reduce_any(take),
                lambda: tf.tensor_scatter_nd_update(
                    snaps, tf.boolean_mask(tf.stack([taken, rows], axis=1), take), tf.boolean_mask(x, take)),
                lambda: snaps,
            )
            taken = tf.where(take, taken + 1, taken)
            step = tf.where(active, step + 1, step)
            active = tf.logical_and(update, step < total_steps)
            return i + 1, x, step, cur, active, status, conv_step, run, hist, snaps, taken

        out = tf.while_loop(
            cond, body, (tf.constant(0), x, step, prev, active, status, conv_step, run, hist, snaps, taken),
            maximum_iterations=seg_len,
        )
        _, x, step, prev, active, status, conv_step, run, hist, snaps, taken = out
        return x, step, prev, active, status, conv_step, run, hist, snaps, taken

    return segment


def _get_segment(submodel, jit: bool, encoding: InputEncoding, objective: Objective, warm: bool,
                 own_maps: bool = True):
    """The compiled segment for the sub-model's architecture; call it with ``weights_of(submodel)`` last."""
    key = ("segment", jit, encoding, objective, warm, own_maps)
    return shared_function(submodel, key, lambda owner: _build_segment(owner, jit, encoding, objective, warm, own_maps))


def _build_forward(submodel, objective: Objective, own_maps: bool = True):
    import tensorflow as tf

    from .own_map import ascent_layer

    h, w, c = (int(d) for d in submodel.inputs[0].shape[1:])
    spec = [tf.TensorSpec((None, h, w, c), tf.float32), tf.TensorSpec((None,), tf.int32), weight_specs(submodel)]
    layer_output = ascent_layer(submodel, objective.primary, own_maps)  # as the ascent computes it

    @tf.function(input_signature=spec, reduce_retracing=True, autograph=False)
    def forward(x, maps, weights):
        with with_weights(submodel, weights):
            features, own = layer_output(x, maps)
            return objective.measure(Context(features, x, own))

    return forward


def _forward(submodel, objective: Objective, own_maps: bool = True):
    """The compiled measure for the sub-model's architecture; call it with ``weights_of(submodel)`` last."""
    return shared_function(submodel, ("forward", objective.primary, own_maps),
                           lambda owner: _build_forward(owner, objective, own_maps))


def mean_activations(submodel, images: np.ndarray, map_indices: Sequence[int],
                     execution: Execution = Execution(), objective: Objective | str = "channel") -> np.ndarray:
    """The objective's measure without its gradient: by default each image's mean activation of its map, (N,).

    Args:
        submodel: Keras model from the image input to the layer.
        images: (N, H, W, C) in the model's input encoding.
        map_indices: N map indices.
        execution: its memory budget sets the batch size of the forward passes; the layer is
            computed as the ascent computes it (own maps).
        objective: its primary term is measured (the OIP's reported activation).
    """
    import tensorflow as tf

    images = np.asarray(images, np.float32)
    maps = np.asarray(map_indices, np.int32).reshape(-1)
    if len(images) == 0:
        return np.zeros(0, np.float32)
    forward = _forward(submodel, parse_objective(objective), execution.own_maps)
    weights = weights_of(submodel)
    batch = batch_for_budget(submodel, execution.memory_budget_mb, extra_bytes=images[0].nbytes)  # no gradient
    return np.concatenate([
        forward(tf.constant(images[s : s + batch]), tf.constant(maps[s : s + batch]), weights).numpy()
        for s in range(0, len(images), batch)
    ]).astype(np.float32)


class _Pool:
    """The per-element state of an ascent, between segments (host memory)."""

    def __init__(self, images: np.ndarray, steps: int, snapshot_steps: tuple[int, ...]):
        n, h, w, c = images.shape
        self.x = images.copy()
        self.step = np.zeros(n, np.int32)
        self.prev = np.zeros(n, np.float32)
        self.run = np.zeros(n, np.int32)
        self.status = np.full(n, _RUNNING, np.int32)
        self.conv_step = np.full(n, -1, np.int32)
        self.every = history_every(steps)
        self.steps = steps
        self.history = np.zeros((n, -(-steps // self.every)), np.float32)  # bounded, whatever the steps
        self.snapshots = np.zeros((n, len(snapshot_steps), h, w, c), np.float32)
        self.snapshot_steps = np.asarray(snapshot_steps, np.int64)

    def take(self, rows: np.ndarray, out) -> np.ndarray:
        """Store a segment's outcome for ``rows``; return the rows still running."""
        x, step, prev, active, status, conv_step, run, hist, snaps, taken = (t.numpy() for t in out)
        first = self.step[rows]
        self.x[rows], self.prev[rows], self.run[rows] = x, prev, run
        self.status[rows], self.conv_step[rows], self.step[rows] = status, conv_step, step
        for j, row in enumerate(rows):
            done = int(step[j] - first[j])
            sample_history(self.history, row, int(first[j]), hist[:done, j], self.every)
            if taken[j]:
                k0 = int(np.searchsorted(self.snapshot_steps, first[j]))
                self.snapshots[row, k0 : k0 + taken[j]] = snaps[: taken[j], j]
        return rows[active]

    def finish(self) -> None:
        """Frozen elements repeat their last activation and image to the end."""
        for row in np.flatnonzero(self.step < self.steps):
            last = int(self.step[row])
            self.history[row, -(-last // self.every):] = self.prev[row]  # its last activation
            self.snapshots[row, self.snapshot_steps >= last] = self.x[row]


def _snapshot_capacity(snapshot_steps: tuple[int, ...], seg_len: int) -> int:
    """The most snapshot steps any window of ``seg_len`` steps holds."""
    s = np.asarray(snapshot_steps, np.int64)
    if s.size == 0:
        return 0
    return int(max(np.searchsorted(s, v + seg_len) - k for k, v in enumerate(s)))


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
    execution: Execution = Execution(),
    on_stopped: Callable[[int], None] | None = None,
    warmup_steps: int | None = None,
    preactivation: bool = False,
) -> AscentArrays:
    """Run the gradient ascent for a batch; element ``b`` maximizes map ``map_indices[b]``.

    Args:
        submodel: Keras model from the image input to the feature-map layer.
        images: initial images (B, H, W, C) in the model's input encoding.
        map_indices: B map indices.
        config: epsilon and convergence parameters.
        steps: override ``config.steps``.
        snapshot_steps: override the snapshot steps.
        stop_on_convergence: override ``config.stop_on_convergence``.
        encoding: the model's input encoding, which every step keeps the images in
            (default: the series' per-image standardization).
        execution: memory budget (elements ascended at once), segment length, XLA.
        on_stopped: called after each segment with the number of elements that
            stopped in it.
        warmup_steps: override ``config.warmup_steps`` (the ReLU warm-up).
        preactivation: climb the layer before its last activation, through the
            own-map head (:func:`~oipscope.ascent.own_map.preactivation_through_head` must
            allow it); the returned activations are still the layer's own.

    The objective is ``config.objective``; the reported activation is its primary
    term on the final image (:func:`mean_activations`).

    Returns:
        AscentArrays with the per-element images, activations, statuses and histories.
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
    loop = config.pixel_loop
    steps = loop.steps if steps is None else int(steps)
    if steps < 1:
        raise ConfigError(f"steps must be >= 1, got {steps}")
    snaps = (config.resolved_snapshot_steps(steps) if snapshot_steps is None
             else tuple(sorted({int(s) for s in snapshot_steps if 0 <= int(s) < steps})))
    stop = loop.stop_on_convergence if stop_on_convergence is None else bool(stop_on_convergence)
    objective = config.parsed_objective
    if objective.couples:
        raise ConfigError(f"objective {objective.text()!r} couples the replicates of a map; "
                          "it runs in oipscope.ascent.parameters, not the series' loop")
    if preactivation and not preactivation_through_head(submodel, objective, execution.own_maps):
        raise ConfigError(f"no pre-activation of {submodel.name!r} through its own-map head; "
                          "use the layer's pre-activation sub-model (oipscope.model.loading.preactivation_submodel)")
    pool = _Pool(images, steps, snaps)
    if len(images):
        slot = np.full(steps, -1, np.int32)
        slot[list(snaps)] = np.arange(len(snaps), dtype=np.int32)
        # XLA compiles once per batch size: keep whole batches there
        whole = execution.jit_compile or execution.segment_steps is None
        seg_len = steps if whole else min(execution.segment_steps, steps)
        capacity = min(estimate_chunk_size(submodel, len(snaps), steps, execution.memory_budget_mb),
                       execution.batch_limit())
        warmup = config.warmup_steps if warmup_steps is None else int(warmup_steps)
        segments = [_get_segment(submodel, execution.jit_compile, encoding or InputEncoding.standardize(),
                                 objective, warm, execution.own_maps) for warm in (False, True)[: 1 + (warmup > 0)]]
        constants = [tf.constant(v, dtype) for v, dtype in (
            (steps, tf.int32), (loop.epsilon, tf.float32),
            (loop.conv_criterion, tf.float32), (loop.conv_patience, tf.int32), (stop, tf.bool),
            (slot, tf.int32), (_snapshot_capacity(snaps, seg_len), tf.int32), (warmup, tf.int32),
            (preactivation, tf.bool))] + [weights_of(submodel)]
        waiting = deque(range(len(images)))
        running = np.zeros(0, np.int64)
        while waiting or running.size:
            if waiting and running.size < capacity:
                fill = [waiting.popleft() for _ in range(min(capacity - running.size, len(waiting)))]
                running = np.concatenate([running, np.asarray(fill, np.int64)])
            # the redirected ReLUs cost extra ops: their segment runs up to the warm-up's end only
            first = int(pool.step[running].min())
            warming = first < warmup
            length = min(seg_len, warmup - first) if warming else seg_len
            out = segments[warming](*(tf.constant(a[running]) for a in (pool.x, maps, pool.step, pool.prev,
                                                                         pool.run, pool.status, pool.conv_step)),
                                    tf.constant(length, tf.int32), *constants)
            before = running.size
            running = pool.take(running, out)
            if on_stopped:
                on_stopped(before - running.size)
        pool.finish()
    return AscentArrays(
        images=pool.x,
        activations=mean_activations(submodel, pool.x, maps, execution, objective),
        status=pool.status.astype(np.int8),
        converged_step=pool.conv_step,
        history=pool.history,
        snapshots=pool.snapshots,
        snapshot_steps=snaps,
        history_every=pool.every,
    )
