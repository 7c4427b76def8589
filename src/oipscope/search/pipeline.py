"""Orchestration of an OIP search: starts, precursor, strategies, restarts.

:func:`find_oips` builds one batch element per (map, replicate), picks a good
start for each (precursor: the best of K candidate starts, scored in one
batched forward pass), runs the batched ascent of :mod:`oipscope.ascent.pixels`
(strategy 0: one loop; strategy 1: coarse-to-fine stages), and gives maps that
end silent fresh starts of other kinds. Every random draw comes from an RNG
seeded by ``(config.seed, map, replicate, purpose)``, so a map's OIP does not
depend on which other maps are searched alongside it.
"""

from __future__ import annotations

import dataclasses
import os
import time
from typing import Callable, Iterable, Sequence

import numpy as np

from ..config import Execution, OipConfig
from ..model.encoding import InputEncoding
from ..ascent.pixels import AscentArrays, ascend, mean_activations
from ..model.memory import batch_for_budget
from ..errors import ConfigError
from ..files import file_sha256
from .starts import combine_grids, draw_grids, fourier_noise, parse_maps, scale_noise
from ..ascent.own_map import preactivation_through_head
from .quality import hf_share, jitter_robustness
from ..ascent.parameters import parametrization_of, render
from .results import MapOip, OipResult
from .status import Status, is_better, needs_retry
from ..model.canvas import canvas_size, check_canvas
from ..model.rebuild import rebuilt
from ..model.subject import as_subject
from ..ascent.precision import resolve_precision

__all__ = ["find_oips", "retry_from", "file_sha256", "RESTART_KINDS"]

RESTART_KINDS: tuple[str, ...] = ("coarse", "fourier", "mix")
"""Start kinds tried, in turn, by the restart rounds for silent maps."""

_PRECURSOR, _RESTART, _STAGE, _TRANSFORM, _WARM = 1, 2, 3, 4, 5


def _rng(config: OipConfig, m: int, r: int, purpose: int, extra: int = 0) -> np.random.Generator:
    return np.random.default_rng([config.seed, m, r, purpose, extra])


@dataclasses.dataclass(frozen=True)
class _Prepared:
    """The sub-model an ascent climbs, on its canvas and in its precision."""

    exact: object  # on the canvas, in float32: the quality numbers are measured with it
    sub: object  # on the canvas, in ``precision``: the ascent climbs it
    shape: tuple[int, int, int]  # the canvas (height, width, channels)
    precision: str

    def adapt(self, model):
        """Another sub-model of the same model (e.g. the pre-activation) on this canvas and precision."""
        return rebuilt(rebuilt(model, self.shape[:2]), None, self.precision)


def _prepared(subject, layer_name: str, config: OipConfig, execution: Execution) -> _Prepared:
    """The layer's sub-model on the canvas of ``config`` and in the precision of ``execution``."""
    sub = subject.target_submodel(layer_name, config.objective)
    size = canvas_size(config.canvas, subject.input_shape, sub)
    exact = rebuilt(sub, size)
    check_canvas(exact, size, max(subject.input_shape[:2]))
    precision = resolve_precision(execution.precision, exact)
    return _Prepared(exact, rebuilt(exact, None, precision), (*size, subject.input_shape[2]), precision)


class _Search:
    def __init__(self, sub, shape: tuple[int, int, int], config: OipConfig, encoding: InputEncoding,
                 execution: Execution, prepared: _Prepared | None = None):
        self.sub = sub
        self.prepared = prepared
        self.h, self.w, self.c = shape
        self.config = config
        self.encoding = encoding
        self.execution = execution
        self.objective = config.parsed_objective
        self.objective.check(tuple(sub.outputs[0].shape))
        self.parametrization = parametrization_of(config, shape, encoding)
        config.check_image_size(self.h, self.w)
        self.scales = config.resolved_scales(self.h)
        self.factors = config.resolved_factors(self.h)

    # ---- starts ----------------------------------------------------------
    def _mix(self, rng: np.random.Generator, kind: str, n: int):
        """Draw n candidates of one kind: (grids per scale, factors (n, S)) or fourier images."""
        h, w, c, cfg = self.h, self.w, self.c, self.config
        scales = self.scales
        if cfg.strategy == 1 and kind != "fourier":
            scales = scales[:1]  # strategy 1 starts from the coarsest scale only
        if kind == "fourier":
            lo = max(cfg.fourier_alpha, 1.0) if n > 1 else cfg.fourier_alpha
            alphas = rng.uniform(lo, lo + 1.5, n) if n > 1 else np.full(n, cfg.fourier_alpha)
            return None, fourier_noise(rng, n, h, w, c, alphas)
        if kind == "coarse":
            scales = scales[:2]
            fac = np.column_stack([np.ones(n)] + [rng.uniform(0.0, 0.5, n) for _ in scales[1:]])
        elif kind == "mix":
            fac = np.column_stack([rng.uniform(0.05, 1.0, n) * 0.7**i for i in range(len(scales))])
        elif kind == "precursor":  # long-wavelength-heavy mixes
            fac = np.column_stack([np.ones(n)] + [rng.uniform(0.05, 1.0, n) * 0.6**i
                                                  for i in range(1, len(scales))])
        else:  # "default": the configured mix
            fac = np.tile(np.asarray(self.factors[: len(scales)], np.float32), (n, 1))
        return (scales, draw_grids(rng, n, h, w, c, scales)), fac

    def _starts(self, elems: Sequence[tuple[int, int]], kind: str, purpose: int, extra: int,
                n_candidates: int) -> tuple[np.ndarray, list[str]]:
        """One start per element; with n_candidates > 1 the best candidate by activation."""
        e, k = len(elems), n_candidates
        draws = [self._mix(_rng(self.config, m, r, purpose, extra), kind, k) for m, r in elems]
        if draws[0][0] is None:
            cand = np.concatenate([d[1] for d in draws])
        else:
            n_s = len(draws[0][0][0])
            grids = [np.concatenate([d[0][1][j] for d in draws]) for j in range(n_s)]
            fac = np.concatenate([d[1] for d in draws])
            cand = combine_grids(grids, fac, self.h, self.w, self.config.smoothing)
        cand = self.encoding.start(cand).reshape((e, k, self.h, self.w, self.c))
        if k == 1:
            return cand[:, 0], [kind] * e
        scores = mean_activations(self.sub, cand.reshape((e * k, self.h, self.w, self.c)),
                                  np.repeat([m for m, _ in elems], k), self.execution, self.objective)
        best = scores.reshape(e, k).argmax(axis=1)
        return cand[np.arange(e), best], [f"{kind}#{b}" for b in best]

    def starts(self, elems: Sequence[tuple[int, int]], kind: str, purpose: int, extra: int,
               n_candidates: int) -> tuple[np.ndarray, list[str]]:
        """:meth:`_starts` in batches whose candidates fit the memory budget."""
        candidate = 8 * self.h * self.w * self.c  # its pixels, drawn and encoded
        batch = max(1, batch_for_budget(self.sub, self.execution.memory_budget_mb, extra_bytes=candidate)
                    // n_candidates)
        parts = [self._starts(elems[s : s + batch], kind, purpose, extra, n_candidates)
                 for s in range(0, len(elems), batch)]
        return np.concatenate([p[0] for p in parts]), [label for p in parts for label in p[1]]

    # ---- ascent ----------------------------------------------------------
    def ascend(self, x0: np.ndarray, maps: Sequence[int], *, steps: int | None = None,
               final: bool = True, submodel=None, on_stopped: Callable[[int], None] | None = None,
               preactivation: bool = False):
        """One ascent of all elements; ``final=False``: all steps, no snapshots (an intermediate stage)."""
        extra = {} if final else {"snapshot_steps": (), "stop_on_convergence": False}
        return ascend(submodel or self.sub, x0, maps, self.config, steps=steps, encoding=self.encoding,
                      execution=self.execution, on_stopped=on_stopped, preactivation=preactivation, **extra)

    def wake(self, x0: np.ndarray, maps: Sequence[int], pre) -> np.ndarray:
        """The rescue's first stage: climb the layer's pre-activation (``pre``: its sub-model, or None
        to climb it through the own-map head, in the ascent's own compiled loop)."""
        return self.ascend(x0, maps, steps=self.config.rescue_steps, final=False, submodel=pre,
                           preactivation=pre is None).images

    def evolve(self, elems: Sequence[tuple[int, int]], x0: np.ndarray, salt: int,
               on_stopped: Callable[[int], None] | None = None) -> AscentArrays:
        """Strategy 0: one ascent; strategy 1: coarse-to-fine stages."""
        cfg = self.config
        maps = [m for m, _ in elems]
        if cfg.strategy == 0:
            return self.ascend(x0, maps, on_stopped=on_stopped)
        x = x0
        stages = cfg.strategy1_steps
        for k, n in enumerate(stages):
            if k > 0 and k < len(self.scales):
                add = np.concatenate([
                    scale_noise(_rng(cfg, m, r, _STAGE, salt * 100 + k), 1, self.h, self.w, self.c,
                                (self.scales[k],), (1.0,), cfg.smoothing)
                    for m, r in elems
                ])
                spread = self.encoding.spread(self.c)
                x = self.encoding.project(x + self.factors[k] * spread * add).numpy()
            if k == len(stages) - 1:
                return self.ascend(x, maps, steps=n, on_stopped=on_stopped)
            x = self.ascend(x, maps, steps=n, final=False).images
        raise AssertionError("unreachable")

    def run(self, elems: Sequence[tuple[int, int]], kind: str, purpose: int, extra: int, n_candidates: int,
            on_stopped: Callable[[int], None] | None = None) -> tuple[AscentArrays, list[str]]:
        """Starts + one ascent for the elements."""
        if not self.config.uses_series_loop:
            return self.render(elems, purpose, extra, on_stopped)
        x0, labels = self.starts(elems, kind, purpose, extra, n_candidates)
        return self.evolve(elems, x0, extra, on_stopped), labels

    def render(self, elems: Sequence[tuple[int, int]], purpose: int, extra: int,
               on_stopped: Callable[[int], None] | None = None,
               images: np.ndarray | None = None) -> tuple[AscentArrays, list[str]]:
        """The readable ascent (:mod:`oipscope.ascent.parameters`) from seeded parameters, or from ``images``."""
        cfg, param = self.config, self.parametrization
        if images is not None:
            params = param.params_of(images)
        else:
            params = np.stack([param.initial(_rng(cfg, m, r, purpose, extra)) for m, r in elems])
        rngs = [_rng(cfg, m, r, _TRANSFORM, extra) for m, r in elems]
        arrays = render(self.sub, param, params, [m for m, _ in elems], cfg, rngs,
                        execution=self.execution, on_stopped=on_stopped)
        return arrays, [param.kind] * len(elems)


def _map_oip(arrays: AscentArrays, row: int, map_index: int, start: str) -> MapOip:
    """The OIP of one element of an ascent."""
    return MapOip(
        map_index=int(map_index),
        image=arrays.images[row],
        activation=float(arrays.activations[row]),
        status=Status.from_code(arrays.status[row]),
        converged_step=int(arrays.converged_step[row]),
        snapshots=arrays.snapshots[row],
        snapshot_steps=tuple(arrays.snapshot_steps),
        activation_history=arrays.history[row],
        start=start,
        history_every=arrays.history_every,
    )


def _keep_better(oips: list[MapOip], positions: Sequence[int], arrays: AscentArrays,
                 labels: Sequence[str], rows: Sequence[int] | None = None) -> None:
    """Replace ``oips[p]`` by the OIP of its row of a second-chance ascent where that is better.

    ``rows[j]`` is the row of ``positions[j]`` in ``arrays`` (default ``j``).
    """
    for j, position in enumerate(positions):
        old = oips[position]
        new = _map_oip(arrays, j if rows is None else rows[j], old.map_index, labels[j])
        if is_better(new.status, new.activation, old.status, old.activation):
            oips[position] = new


def _measured(sub, oips: list[MapOip], execution: Execution, objective="channel") -> list[MapOip]:
    """The OIPs with their quality numbers (:mod:`oipscope.search.quality`), measured where missing."""
    todo = [i for i, oip in enumerate(oips) if oip.jitter_robustness is None]
    if not todo:
        return oips
    images = np.stack([oips[i].image for i in todo])
    jitter = jitter_robustness(sub, images, [oips[i].map_index for i in todo], execution, objective)
    high = hf_share(images)
    out = list(oips)
    for k, i in enumerate(todo):
        out[i] = dataclasses.replace(oips[i], jitter_robustness=float(jitter[k]), hf_share=float(high[k]))
    return out


def _to_retry(oips: Sequence[MapOip], positions: Iterable[int], rectified: bool = True) -> list[int]:
    return [i for i in positions if needs_retry(oips[i].status, oips[i].activation, rectified)]


def _restart_labels(round_: int, labels: Sequence[str]) -> list[str]:
    return [f"restart{round_}:{label.split('#')[0]}" for label in labels]


def _rescue_labels(oips: Sequence[MapOip], positions: Sequence[int]) -> list[str]:
    return [f"rescue:pre-activation({oips[i].start})" for i in positions]


def _second_chance_candidates(config: OipConfig) -> int:
    """Candidate starts scored per map for a second chance: the precursor's number, or 8 without it."""
    return max(config.n_candidates, 1) if config.precursor else 8


def _second_chances(search: _Search, subject, layer_name: str, elems: Sequence[tuple[int, int]],
                    oips: list[MapOip]) -> None:
    """Restarts, the pre-activation rescue, then a warm-up round, for the OIPs that show nothing; in place."""
    _restarts_and_rescue(search, subject, layer_name, elems, oips)
    _warm_round(search, elems, oips)


def _warm_round(search: _Search, elems: Sequence[tuple[int, int]], oips: list[MapOip]) -> None:
    """The last chance of a map still silent: fresh starts of every kind, climbed with the ReLU warm-up
    (``warmup_round_steps``, at most a quarter of the steps).

    Measured on the embedded CNN (``bench/bench_warmup.py``): run this way, after the
    restarts and the rescue, the warm-up wakes maps they leave silent, costs nothing when
    none is left, and changes no OIP of a live map (a warm-up in the main ascent would).
    """
    config = search.config
    steps = config.warmup_round_steps
    rectified = search.objective.primary.rectified
    todo = _to_retry(oips, range(len(oips)), rectified)
    if not steps or config.total_steps < 4 or not todo or not config.uses_series_loop:
        return
    n_candidates = _second_chance_candidates(config)
    kinds = ("precursor",) + RESTART_KINDS
    starts, labels = [], []
    for k, kind in enumerate(kinds):
        x0, found = search.starts([elems[i] for i in todo], kind, _WARM, k, n_candidates)
        starts.append(x0)
        labels.append([f"warm-up{steps}:{label.split('#')[0]}" for label in found])
    maps = [elems[i][0] for i in todo]
    outcome = ascend(search.sub, np.concatenate(starts), maps * len(kinds), config, steps=config.total_steps,
                     encoding=search.encoding, execution=search.execution,
                     warmup_steps=min(steps, config.total_steps // 4))  # leave steps to see it is still silent
    for k in range(len(kinds)):
        still = _to_retry(oips, todo, rectified)
        _keep_better(oips, still, outcome, [labels[k][todo.index(i)] for i in still],
                     [k * len(todo) + todo.index(i) for i in still])


def _restarts_and_rescue(search: _Search, subject, layer_name: str, elems: Sequence[tuple[int, int]],
                         oips: list[MapOip]) -> None:
    """Restarts, then the pre-activation rescue, for the OIPs that show nothing; in place.

    Restart round ``r`` (start kind ``RESTART_KINDS[r-1]``) replaces an OIP that
    still needs a retry when its turn comes, if :func:`~oipscope.search.status.is_better`;
    the rescue climbs the layer's pre-activation (its gradient is not cut by ReLU)
    until the map wakes, then runs the ordinary ascent from there. With strategy 0
    every round and the rescue ascend together in one batch from the start, and
    their outcomes are applied in turn: since each element climbs on its own, that
    gives exactly the OIPs of one round after another, in fewer, fuller loops.
    """
    config = search.config
    rectified = search.objective.primary.rectified

    def to_retry(positions: Iterable[int]) -> list[int]:
        return _to_retry(oips, positions, rectified)

    todo = to_retry(range(len(oips)))
    if not todo:
        return
    n_restart = _second_chance_candidates(config)
    pre, can_rescue = None, False  # the pre-activation sub-model (None: through the own-map head)
    if config.rescue_steps and not search.objective.logits:
        can_rescue = preactivation_through_head(search.sub, search.objective, search.execution.own_maps)
        if not can_rescue:
            pre = subject.preactivation_submodel(layer_name)
            can_rescue = pre is not None
            if pre is not None and search.prepared is not None:
                pre = search.prepared.adapt(pre)

    def rescue(positions: list[int]) -> None:
        maps = [elems[i][0] for i in positions]
        woken = search.wake(np.stack([oips[i].image for i in positions]), maps, pre)
        _keep_better(oips, positions, search.ascend(woken, maps, steps=config.total_steps),
                     _rescue_labels(oips, positions))

    if not config.uses_series_loop:  # the readable ascent: fresh seeds, round after round
        for round_ in range(1, config.restarts + 1):
            todo = to_retry(todo)
            if not todo:
                return
            again, labels = search.render([elems[i] for i in todo], _RESTART, round_)
            _keep_better(oips, todo, again, _restart_labels(round_, labels))
        return

    if config.strategy != 0:  # coarse-to-fine stages: one round after another
        for round_ in range(1, config.restarts + 1):
            todo = to_retry(todo)
            if not todo:
                return
            kind = RESTART_KINDS[(round_ - 1) % len(RESTART_KINDS)]
            again, labels = search.run([elems[i] for i in todo], kind, _RESTART, round_, n_restart)
            _keep_better(oips, todo, again, _restart_labels(round_, labels))
        todo = to_retry(todo)
        if can_rescue and todo:
            rescue(todo)
        return

    first = list(oips)
    starts, pieces = [], []  # pieces: (round, labels); round 0 is the rescue
    for round_ in range(1, config.restarts + 1):
        kind = RESTART_KINDS[(round_ - 1) % len(RESTART_KINDS)]
        x0, labels = search.starts([elems[i] for i in todo], kind, _RESTART, round_, n_restart)
        starts.append(x0)
        pieces.append((round_, _restart_labels(round_, labels)))
    maps = [elems[i][0] for i in todo]
    if can_rescue:
        starts.append(search.wake(np.stack([oips[i].image for i in todo]), maps, pre))
        pieces.append((0, None))
    if not starts:
        return
    outcome = search.ascend(np.concatenate(starts), maps * len(pieces), steps=config.total_steps)
    for k, (round_, labels) in enumerate(pieces):
        rows = {i: k * len(todo) + j for j, i in enumerate(todo)}
        still = to_retry(todo)
        if round_:
            _keep_better(oips, still, outcome, [labels[todo.index(i)] for i in still], [rows[i] for i in still])
            continue
        fresh = [i for i in still if oips[i] is first[i]]  # the rescue climbed from the image these still have
        replaced = [i for i in still if oips[i] is not first[i]]
        _keep_better(oips, fresh, outcome, _rescue_labels(oips, fresh), [rows[i] for i in fresh])
        if replaced:
            rescue(replaced)


def _versions() -> dict[str, str]:
    import keras
    import tensorflow as tf

    from .. import __version__

    return {"oipscope": __version__, "tensorflow": tf.__version__, "keras": keras.__version__,
            "numpy": np.__version__}


def find_oips(
    model,
    layer_name: str,
    maps: str | int | Iterable[int] | None = "all",
    config: OipConfig = OipConfig(),
    on_progress: Callable[[int, int], None] | None = None,
    *,
    model_path: str | os.PathLike | None = None,
    execution: Execution = Execution(),
) -> OipResult:
    """Find the OIPs of the selected maps of a layer, all in batched ascents.

    Args:
        model: a :class:`~oipscope.model.subject.Subject`, or a Keras model with one image
            input (its encoding is then resolved from its layers, or assumed).
        layer_name: a layer with 4-D feature-map output.
        maps: "all", "0-15,40", an int or a list of ints.
        config: the search parameters.
        on_progress: called as ``on_progress(done, total)`` with OIP counts.
        model_path: the model file, to record its sha256.
        execution: how the work is carried out (memory budget, XLA); never changes an OIP.

    Returns:
        An OipResult with ``n_per_map`` MapOips per selected map, in map order.

    Raises:
        LayerError: unknown layer or map index out of range.
        ConfigError: bad map selection or parameters not fitting the model.
    """
    if not isinstance(config, OipConfig):
        raise ConfigError(f"config must be an OipConfig, got {type(config).__name__}")
    t0 = time.perf_counter()
    subject = as_subject(model, path=model_path)
    prepared = _prepared(subject, layer_name, config, execution)
    n_maps = int(prepared.sub.outputs[0].shape[-1])
    selected = parse_maps(maps, n_maps)
    search = _Search(prepared.sub, prepared.shape, config, subject.encoding, execution, prepared)
    elems = [(m, r) for m in selected for r in range(config.n_per_map)]
    total = len(elems)
    done = [0]

    def stopped(n: int) -> None:
        done[0] += n
        if on_progress:
            on_progress(min(done[0], total), total)

    fourier = config.start == "fourier"
    if config.precursor:
        kind, n_candidates = ("fourier" if fourier else "precursor"), config.n_candidates
    else:
        kind, n_candidates = ("fourier" if fourier else "default"), 1
    first, labels = search.run(elems, kind, _PRECURSOR, 0, n_candidates, stopped)
    if not config.precursor and config.uses_series_loop:
        labels = ["fourier" if fourier else "scales"] * total
    oips = [_map_oip(first, i, m, labels[i]) for i, (m, _) in enumerate(elems)]

    _second_chances(search, subject, layer_name, elems, oips)
    oips = _measured(prepared.exact, oips, execution, config.objective)
    if on_progress and done[0] < total:
        on_progress(total, total)

    return OipResult(
        layer_name=layer_name,
        model_name=subject.name,
        model_hash=subject.model_hash,
        config=config,
        encoding=subject.encoding,
        maps=tuple(oips),
        versions=_versions(),
        seconds=time.perf_counter() - t0,
        precision=prepared.precision,
    )


def _on_canvas(pixels: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """Images (N, H, W, C) resized (bicubic, antialiased) to the canvas where their size differs."""
    if tuple(pixels.shape[1:3]) == tuple(shape[:2]):
        return pixels
    from .starts import _resize

    return _resize(pixels, *shape[:2])


def retry_from(model, result: OipResult, positions: Sequence[int], starts: np.ndarray,
               labels: Sequence[str], *, execution: Execution = Execution()) -> OipResult:
    """Ascend some of a result's OIPs again from given start images; keep what is better.

    Args:
        model: the model (or :class:`~oipscope.model.subject.Subject`) of ``result``.
        result: OIPs found by :func:`find_oips`; its config and encoding are used again.
        positions: indices into ``result.maps`` to retry.
        starts: one start image per position, (N, H, W, C), in pixels (0..255),
            encoded with the result's input encoding.
        labels: one ``start`` label per position, e.g. ``"data#1234"``.
        execution: how the work is carried out.

    Returns:
        ``result`` where a retried OIP replaces the old one if it is better
        (:func:`oipscope.search.status.is_better`: it wakes a silent map or climbs
        higher); a replaced OIP is no longer assessed. ``seconds`` includes the retry.
    """
    positions = [int(p) for p in positions]
    if not (len(positions) == len(starts) == len(labels)):
        raise ConfigError(f"{len(positions)} positions, {len(starts)} start images and {len(labels)} labels: "
                          "give one start image and one label per position")
    if not positions:
        return result
    t0 = time.perf_counter()
    config = result.config
    subject = as_subject(model, result.encoding)
    prepared = _prepared(subject, result.layer_name, config, execution)
    sub = prepared.sub
    x0 = result.encoding.encode(_on_canvas(np.asarray(starts, np.float32), prepared.shape)).numpy()
    map_indices = [result.maps[p].map_index for p in positions]
    if config.uses_series_loop:
        again = ascend(sub, x0, map_indices, config, steps=config.total_steps, encoding=result.encoding,
                       execution=execution)
    else:
        search = _Search(sub, prepared.shape, config, result.encoding, execution, prepared)
        again, _ = search.render([(m, p) for m, p in zip(map_indices, positions)], _RESTART, 0, images=x0)
    maps = list(result.maps)
    _keep_better(maps, positions, again, [str(label) for label in labels])
    maps = _measured(prepared.exact, maps, execution, config.objective)
    return dataclasses.replace(result, maps=tuple(maps), seconds=result.seconds + time.perf_counter() - t0)
