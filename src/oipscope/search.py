"""Orchestration of an OIP search: starts, precursor, strategies, restarts.

:func:`find_oips` builds one batch element per (map, replicate), picks a good
start for each (precursor: the best of K candidate starts, scored in one
batched forward pass), runs the batched ascent of :mod:`oipscope.engine`
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

from .encoding import InputEncoding
from .engine import (
    STATUS_NAMES,
    STATUS_SILENT,
    AscentArrays,
    OipConfig,
    ascend,
    estimate_chunk_size,
)
from .errors import ConfigError
from .files import file_sha256
from .initial import combine_grids, draw_grids, fourier_noise, parse_maps, scale_noise
from .results import MapOip, OipResult
from .subject import as_subject

__all__ = ["find_oips", "retry_from", "file_sha256", "RESTART_KINDS"]

RESTART_KINDS: tuple[str, ...] = ("coarse", "fourier", "mix")
"""Start kinds tried, in turn, by the restart rounds for silent maps."""

_PRECURSOR, _RESTART, _STAGE = 1, 2, 3


def _rng(config: OipConfig, m: int, r: int, purpose: int, extra: int = 0) -> np.random.Generator:
    return np.random.default_rng([config.seed, m, r, purpose, extra])


class _Search:
    def __init__(self, sub, shape: tuple[int, int, int], config: OipConfig, encoding: InputEncoding):
        self.sub = sub
        self.h, self.w, self.c = shape
        self.config = config
        self.encoding = encoding
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

    def starts(self, elems: Sequence[tuple[int, int]], kind: str, purpose: int, extra: int,
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
        scores = self.score(cand.reshape((e * k, self.h, self.w, self.c)), np.repeat([m for m, _ in elems], k))
        best = scores.reshape(e, k).argmax(axis=1)
        return cand[np.arange(e), best], [f"{kind}#{b}" for b in best]

    def score(self, images: np.ndarray, maps: np.ndarray) -> np.ndarray:
        """Mean activation of each image's map, in batched forward passes."""
        import tensorflow as tf

        chunk = 4 * estimate_chunk_size(self.sub, 0, 1, self.config.memory_budget_mb)
        out = []
        for s in range(0, len(images), chunk):
            act = self.sub(tf.constant(images[s : s + chunk]), training=False)
            sel = tf.gather(act, tf.constant(maps[s : s + chunk], tf.int32), axis=3, batch_dims=1)
            out.append(tf.reduce_mean(sel, axis=[1, 2]).numpy())
        return np.concatenate(out)

    # ---- ascent ----------------------------------------------------------
    def evolve(self, elems: Sequence[tuple[int, int]], x0: np.ndarray, salt: int) -> AscentArrays:
        """Strategy 0: one ascent; strategy 1: coarse-to-fine stages."""
        cfg = self.config
        maps = [m for m, _ in elems]
        if cfg.strategy == 0:
            return ascend(self.sub, x0, maps, cfg, encoding=self.encoding)
        x = x0
        stages = cfg.strategy1_steps
        for k, n in enumerate(stages):
            last = k == len(stages) - 1
            if k > 0 and k < len(self.scales):
                add = np.concatenate([
                    scale_noise(_rng(cfg, m, r, _STAGE, salt * 100 + k), 1, self.h, self.w, self.c,
                                (self.scales[k],), (1.0,), cfg.smoothing)
                    for m, r in elems
                ])
                spread = self.encoding.spread(self.c)
                x = self.encoding.project(x + self.factors[k] * spread * add).numpy()
            if last:
                return ascend(self.sub, x, maps, cfg, steps=n, encoding=self.encoding)
            x = ascend(self.sub, x, maps, cfg, steps=n, snapshot_steps=(), stop_on_convergence=False,
                       encoding=self.encoding).images
        raise AssertionError("unreachable")

    def run(self, elems: Sequence[tuple[int, int]], kind: str, purpose: int, extra: int,
            n_candidates: int, prefix: str, on_batch: Callable[[int], None] | None = None
            ) -> tuple[AscentArrays, list[str]]:
        """Starts + ascent for the elements, in memory-sized batches."""
        cfg = self.config
        chunk = estimate_chunk_size(self.sub, len(cfg.resolved_snapshot_steps()), cfg.total_steps,
                                    cfg.memory_budget_mb)
        parts: list[AscentArrays] = []
        labels: list[str] = []
        for s in range(0, len(elems), chunk):
            batch = elems[s : s + chunk]
            x0, lab = self.starts(batch, kind, purpose, extra, n_candidates)
            parts.append(self.evolve(batch, x0, extra))
            labels += [prefix + l for l in lab]
            if on_batch:
                on_batch(len(batch))
        return _concat(parts), labels


def _concat(parts: list[AscentArrays]) -> AscentArrays:
    if len(parts) == 1:
        return parts[0]
    return AscentArrays(
        *(np.concatenate([getattr(p, f) for p in parts]) for f in
          ("images", "activations", "status", "converged_step", "history", "snapshots")),
        snapshot_steps=parts[0].snapshot_steps,
    )


def _versions() -> dict[str, str]:
    import keras
    import tensorflow as tf

    from . import __version__

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
) -> OipResult:
    """Find the OIPs of the selected maps of a layer, all in batched ascents.

    Args:
        model: a :class:`~oipscope.subject.Subject`, or a Keras model with one image
            input (its encoding is then resolved from its layers, or assumed).
        layer_name: a layer with 4-D feature-map output.
        maps: "all", "0-15,40", an int or a list of ints.
        config: the search parameters.
        on_progress: called as ``on_progress(done, total)`` with OIP counts.
        model_path: the model file, to record its sha256.

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
    sub = subject.feature_submodel(layer_name)
    n_maps = int(sub.outputs[0].shape[-1])
    selected = parse_maps(maps, n_maps)
    search = _Search(sub, subject.input_shape, config, subject.encoding)
    elems = [(m, r) for m in selected for r in range(config.n_per_map)]
    total = len(elems)
    done = [0]

    def tick(n: int) -> None:
        done[0] += n
        if on_progress:
            on_progress(min(done[0], total), total)

    if config.precursor:
        kind, n_cand, prefix = ("fourier" if config.start == "fourier" else "precursor"), config.n_candidates, ""
    else:
        kind, n_cand, prefix = ("fourier" if config.start == "fourier" else "default"), 1, ""
    res, labels = search.run(elems, kind, _PRECURSOR, 0, n_cand, prefix, tick)
    if not config.precursor:
        labels = ["fourier" if config.start == "fourier" else "scales"] * len(elems)
    images, losses = res.images.copy(), res.activations.copy()
    status, conv, hist, snaps = res.status.copy(), res.converged_step.copy(), res.history.copy(), res.snapshots.copy()

    for rnd in range(1, config.restarts + 1):
        todo = [i for i in range(total) if status[i] == STATUS_SILENT or not losses[i] > 0]
        if not todo:
            break
        rkind = RESTART_KINDS[(rnd - 1) % len(RESTART_KINDS)]
        sub_elems = [elems[i] for i in todo]
        n_c = max(config.n_candidates, 1) if config.precursor else 8
        r2, lab2 = search.run(sub_elems, rkind, _RESTART, rnd, n_c, f"restart{rnd}:")
        for j, i in enumerate(todo):
            if r2.activations[j] > losses[i] or (status[i] == STATUS_SILENT and r2.status[j] != STATUS_SILENT):
                images[i], losses[i], status[i], conv[i] = r2.images[j], r2.activations[j], r2.status[j], r2.converged_step[j]
                hist[i], snaps[i] = r2.history[j], r2.snapshots[j]
                labels[i] = lab2[j].split("#")[0]
    still_silent = [i for i in range(total) if status[i] == STATUS_SILENT or not losses[i] > 0]
    pre = subject.preactivation_submodel(layer_name) if config.rescue_steps and still_silent else None
    if pre is not None:
        # Rescue: climb the map's pre-activation (its gradient is not cut by ReLU) until
        # the map wakes up, then run the ordinary ascent from there.
        sub_maps = [elems[i][0] for i in still_silent]
        woken = ascend(pre, images[still_silent], sub_maps, config, steps=config.rescue_steps,
                       snapshot_steps=(), stop_on_convergence=False, encoding=subject.encoding).images
        r3 = ascend(search.sub, woken, sub_maps, config, steps=config.total_steps, encoding=subject.encoding)
        for j, i in enumerate(still_silent):
            if r3.activations[j] > losses[i]:
                images[i], losses[i], status[i], conv[i] = r3.images[j], r3.activations[j], r3.status[j], r3.converged_step[j]
                hist[i], snaps[i] = r3.history[j], r3.snapshots[j]
                labels[i] = f"rescue:pre-activation({labels[i]})"
    if on_progress and done[0] < total:
        on_progress(total, total)

    oips = tuple(
        MapOip(
            map_index=int(m),
            image=images[i],
            activation=float(losses[i]),
            status=STATUS_NAMES[int(status[i])],
            converged_step=int(conv[i]),
            snapshots=snaps[i],
            snapshot_steps=tuple(res.snapshot_steps),
            activation_history=hist[i],
            start=labels[i],
        )
        for i, (m, _) in enumerate(elems)
    )
    return OipResult(
        layer_name=layer_name,
        model_name=subject.name,
        model_hash=subject.model_hash,
        config=config,
        encoding=subject.encoding,
        maps=oips,
        versions=_versions(),
        seconds=time.perf_counter() - t0,
    )


def retry_from(model, result: OipResult, positions: Sequence[int], starts: np.ndarray,
               labels: Sequence[str]) -> OipResult:
    """Ascend some of a result's OIPs again from given start images; keep what is better.

    Args:
        model: the model (or :class:`~oipscope.subject.Subject`) of ``result``.
        result: OIPs found by :func:`find_oips`; its config and encoding are used again.
        positions: indices into ``result.maps`` to retry.
        starts: one start image per position, (N, H, W, C), in pixels (0..255),
            encoded with the result's input encoding.
        labels: one ``start`` label per position, e.g. ``"data#1234"``.

    Returns:
        ``result`` where a retried OIP replaces the old one if it wakes a silent
        map or reaches a higher activation; ``seconds`` includes the retry.
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
    sub = subject.feature_submodel(result.layer_name)
    x0 = result.encoding.encode(np.asarray(starts, np.float32)).numpy()
    again = ascend(sub, x0, [result.maps[p].map_index for p in positions], config, steps=config.total_steps,
                   encoding=result.encoding)
    maps = list(result.maps)
    for j, p in enumerate(positions):
        old, status = maps[p], STATUS_NAMES[int(again.status[j])]
        woke = old.status == "silent" and status != "silent"
        if woke or again.activations[j] > old.activation:
            maps[p] = dataclasses.replace(
                old, image=again.images[j], activation=float(again.activations[j]), status=status,
                converged_step=int(again.converged_step[j]), snapshots=again.snapshots[j],
                activation_history=again.history[j], start=str(labels[j]),
                superstimulus_ratio=None, evoked_probabilities=None,
            )
    return dataclasses.replace(result, maps=tuple(maps), seconds=result.seconds + time.perf_counter() - t0)
