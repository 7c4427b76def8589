"""The readable ascent: parametrized images, random transforms, regularizers, Adam, all in one compiled loop.

Where the series' loop (:mod:`oipscope.ascent.pixels`) climbs the pixels themselves,
this loop climbs parameters (:class:`~oipscope.ascent.parametrization.Parametrization`):
each step turns them into an image, shows the model a randomly transformed copy
(:mod:`oipscope.ascent.transforms`, drawn per element), and moves the parameters up
the gradient of the :class:`~oipscope.ascent.objective.Objective` with the series'
normalized step or with Adam. Every element runs all steps (transforms make the
objective noisy, so a convergence test would stop at random), so a batch never
needs compaction; the replicates of a map stay in one batch, so a diversity
term can compare them.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from .traces import shared_function, weight_specs, weights_of, with_weights
from ..config import Execution, OipConfig
from ..model.encoding import InputEncoding
from .pixels import AscentArrays, estimate_chunk_size, history_every, mean_activations, sample_history
from ..errors import ConfigError
from .objective import Context, Objective
from .parametrization import Parametrization
from ..search.status import Status
from .step import normalized, value_and_gradient
from .step import rms as step_rms
from .transforms import draw_matrices, resolve_transforms, warp

__all__ = ["render", "parametrization_of"]

_BETA1, _BETA2 = 0.9, 0.999


def parametrization_of(config: OipConfig, shape: tuple[int, int, int], encoding: InputEncoding) -> Parametrization:
    """The parametrization a config asks for, for a model input of ``shape``."""
    loop = config.parameter_loop
    return Parametrization(loop.parametrization, tuple(shape), encoding, loop.decorrelate, loop.bounded,
                           loop.contrast, loop.colour_matrix)


def _build_loop(submodel, param: Parametrization, objective: Objective, adam: bool, transformed: bool,
                warm: bool, own_maps: bool = True):
    """The compiled loop and image function; ``warm``: every step with the ReLU warm-up
    (:func:`render` runs that loop for the warm-up steps and the plain one after)."""
    import tensorflow as tf

    from .own_map import ascent_layer
    from .warmup import redirected_relu

    h, w, c = param.shape
    encoding = param.encoding
    layer_output = ascent_layer(submodel, objective, own_maps)
    centre = tf.constant(encoding.centre(c))
    spread = tf.constant(encoding.spread(c))
    vector = tf.TensorSpec((None,), tf.int32)
    params_spec = tf.TensorSpec((None, *param.param_shape), tf.float32)
    spec = [
        params_spec, params_spec, params_spec,  # parameters, Adam's first and second moments
        vector, vector,  # target and group per element
        tf.TensorSpec((None, None, 8), tf.float32),  # transform matrices per element and step
        tf.TensorSpec((), tf.int32),  # steps done before this segment
        tf.TensorSpec((), tf.int32),  # steps in this segment
        tf.TensorSpec((), tf.float32),  # step size (epsilon or learning rate)
        weight_specs(submodel),  # the weights of the model it runs for (one trace per architecture)
    ]

    def objective_and_gradient(params, maps, groups, matrices, warming=None):
        def value_of(params):
            image = param.image(params)
            seen = warp(image - centre, matrices) + centre if transformed else image
            if warming is not None:
                with redirected_relu(warming):
                    features, own = layer_output(seen, maps)
            else:
                features, own = layer_output(seen, maps)
            return objective.value(Context(features, image, own, groups, centre, spread))

        return value_and_gradient(value_of, params)

    @tf.function(input_signature=spec, reduce_retracing=True, autograph=False)
    def loop(params, m, v, maps, groups, matrices, done, n, size, weights):
        with with_weights(submodel, weights):
            return climb(params, m, v, maps, groups, matrices, done, n, size)

    def climb(params, m, v, maps, groups, matrices, done, n, size):
        b = tf.shape(params)[0]
        axes = list(range(1, len(param.param_shape) + 1))
        shape_b = [-1] + [1] * len(param.param_shape)
        history = tf.TensorArray(tf.float32, size=n)
        finite = tf.ones([b], tf.bool)
        rms = tf.ones([b], tf.float32)
        value = tf.zeros([b], tf.float32)

        def body(i, params, m, v, history, finite, rms, value):
            step = done + i
            # a warm loop runs the warm-up steps only (render() ends a segment where the warm-up ends)
            value, grad = objective_and_gradient(params, maps, groups, matrices[:, i], tf.fill([b], True) if warm else None)
            ok = tf.logical_and(tf.math.is_finite(value), tf.reduce_all(tf.math.is_finite(grad), axis=axes))
            finite = tf.logical_and(finite, ok)
            grad = tf.where(tf.reshape(finite, shape_b), grad, tf.zeros_like(grad))
            rms = step_rms(grad)
            if adam:
                t = tf.cast(step + 1, tf.float32)
                m = _BETA1 * m + (1 - _BETA1) * grad
                v = _BETA2 * v + (1 - _BETA2) * tf.square(grad)
                update = (m / (1 - _BETA1**t)) / (tf.sqrt(v / (1 - _BETA2**t)) + 1e-8)
            else:
                update = normalized(grad, rms)
            params = params + size * update
            history = history.write(i, value)
            return i + 1, params, m, v, history, finite, rms, value

        _, params, m, v, history, finite, rms, value = tf.while_loop(
            lambda i, *_: i < n, body, (tf.constant(0), params, m, v, history, finite, rms, value))
        return params, m, v, history.stack(), finite, objective.silent(value, rms)

    @tf.function(input_signature=[params_spec], reduce_retracing=True, autograph=False)
    def image(params):
        return param.image(params)

    return loop, image


def _get_loop(submodel, *key):
    """The compiled loop (call it with ``weights_of(submodel)`` last) and image function for the architecture."""
    return shared_function(submodel, ("render", *key), lambda owner: _build_loop(owner, *key))


_WARP_BYTES_PER_STEP = 320
"""Peak host memory of :func:`~oipscope.ascent.transforms.draw_matrices` per element and step (float64 3x3
matrices of the composition and its inverse, the float32 result)."""


def _batches(groups: np.ndarray, capacity: int) -> list[np.ndarray]:
    """Consecutive row ranges of at most ``capacity`` rows that never split a group (a map's replicates)."""
    out, start = [], 0
    n = len(groups)
    while start < n:
        end = min(start + capacity, n)
        while end < n and end > start + 1 and groups[end] == groups[end - 1]:
            end -= 1
        if end < n and groups[end] == groups[end - 1]:  # one group larger than the capacity: keep it whole
            end = start + 1
            while end < n and groups[end] == groups[start]:
                end += 1
        out.append(np.arange(start, end))
        start = end
    return out


def render(
    submodel,
    parametrization: Parametrization,
    params: np.ndarray,
    map_indices: Sequence[int],
    config: OipConfig,
    rngs: Sequence[np.random.Generator],
    *,
    groups: Sequence[int] | None = None,
    steps: int | None = None,
    snapshot_steps: Sequence[int] | None = None,
    execution: Execution = Execution(),
    on_stopped: Callable[[int], None] | None = None,
) -> AscentArrays:
    """Climb ``params`` (B, *param_shape); element ``b`` maximizes its target ``map_indices[b]``.

    Args:
        submodel: Keras model from the image input to the layer.
        parametrization: how parameters become model input.
        params: starting parameters.
        map_indices: B targets.
        config: objective, transforms, optimizer, step size, warm-up.
        rngs: one generator per element for its transforms (seeded by the caller).
        groups: B group ids, the replicates of a map (default the targets).
        steps: override ``config.steps``.
        snapshot_steps: override the snapshot steps.
        execution: memory budget and batch size.
        on_stopped: called with the number of elements done after each batch.

    Returns:
        AscentArrays; ``images`` are in the model's input encoding, ``activations``
        the objective's primary term on the untransformed final images, ``history``
        the objective on the transformed image before each step.
    """
    import tensorflow as tf

    params = np.asarray(params, np.float32)
    maps = np.asarray(map_indices, np.int32).reshape(-1)
    groups = maps if groups is None else np.asarray(groups, np.int32).reshape(-1)
    if params.shape[1:] != parametrization.param_shape or not (len(params) == len(maps) == len(rngs) == len(groups)):
        raise ConfigError(f"render needs one parameter set {parametrization.param_shape}, target, group and "
                          f"generator per element; got {params.shape}, {len(maps)}, {len(groups)}, {len(rngs)}")
    loop = config.parameter_loop
    steps = loop.steps if steps is None else int(steps)
    snaps = (config.resolved_snapshot_steps(steps) if snapshot_steps is None
             else tuple(sorted({int(s) for s in snapshot_steps if 0 <= int(s) < steps})))
    h, w, c = parametrization.shape
    objective = config.parsed_objective
    transforms = resolve_transforms(loop.transforms, h, w)
    warmup = config.warmup_steps
    loops = [_get_loop(submodel, parametrization, objective, loop.optimizer == "adam", bool(transforms), warm,
                       execution.own_maps)[0] for warm in (False, True)[: 1 + (warmup > 0)]]
    to_image = _get_loop(submodel, parametrization, objective, loop.optimizer == "adam", bool(transforms), False,
                         execution.own_maps)[1]
    size = loop.learning_rate if loop.optimizer == "adam" else loop.epsilon
    n = len(params)
    images = np.zeros((n, h, w, c), np.float32)
    every = history_every(steps)
    history = np.zeros((n, -(-steps // every)), np.float32)  # bounded, whatever the steps
    snapshots = np.zeros((n, len(snaps), h, w, c), np.float32)
    status = np.full(n, Status.STEP_LIMIT.code, np.int8)
    ends = sorted({s + 1 for s in snaps} | {steps} | ({warmup} if 0 < warmup < steps else set()))
    capacity = min(estimate_chunk_size(submodel, len(snaps), steps, execution.memory_budget_mb),
                   execution.batch_limit())
    if transforms:  # a batch's warps of every step are drawn at once: they too stay within the budget
        capacity = min(capacity, max(1, int(execution.memory_budget_mb * 2**20 // (_WARP_BYTES_PER_STEP * steps))))
    weights = weights_of(submodel)
    for rows in _batches(groups, capacity):
        if transforms:
            matrices = draw_matrices(transforms, [rngs[r] for r in rows], steps, h, w)
        else:
            matrices = np.zeros((len(rows), steps, 8), np.float32)
        p = tf.constant(params[rows])
        m = v = tf.zeros_like(p)
        target, group = tf.constant(maps[rows]), tf.constant(groups[rows])
        done, finite, silent, image = 0, None, None, None
        for end in ends:
            p, m, v, hist, finite, silent = loops[done < warmup](  # the warm loop in the warm-up steps
                p, m, v, target, group, tf.constant(matrices[:, done:end]), tf.constant(done, tf.int32),
                tf.constant(end - done, tf.int32), tf.constant(size, tf.float32), weights)
            sample_history(history, rows, done, hist.numpy(), every)
            done = end
            image = to_image(p).numpy() if done - 1 in snaps or done == steps else None
            if done - 1 in snaps:
                snapshots[rows, snaps.index(done - 1)] = image
        images[rows] = image  # the last segment ends at the last step
        finite, silent = finite.numpy(), silent.numpy()
        status[rows] = np.where(~finite, Status.NONFINITE.code,
                                np.where(silent, Status.SILENT.code, Status.STEP_LIMIT.code))
        if on_stopped:
            on_stopped(len(rows))
    return AscentArrays(
        images=images,
        activations=mean_activations(submodel, images, maps, execution, objective),
        status=status,
        converged_step=np.full(n, -1, np.int32),
        history=history,
        snapshots=snapshots,
        snapshot_steps=snaps,
        history_every=every,
    )
