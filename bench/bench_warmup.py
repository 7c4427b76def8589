"""Benchmark: the ReLU warm-up vs restarts + pre-activation rescue for dead (silent) maps.

For every conv layer of the embedded CNN (all maps), side by side in one process:

  a          no second chance             OipConfig(restarts=0, rescue_steps=0)
  b          today's default              OipConfig()  (precursor + restarts + rescue)
  c:wW       warm-up only                 OipConfig(restarts=0, rescue_steps=0, warmup_steps=W)
  d:wW       warm-up + second chances     OipConfig(warmup_steps=W)
  e:wW       (b), then (d) on the maps (b) leaves silent, keeping the better OIP
             (a warm-up only for dead maps: live maps keep (b)'s OIPs by construction;
             starts are seeded per map, so (d) on a subset gives (d)'s OIPs of those maps)

Per layer and method it prints: silent maps (status silent, or activation <= 0),
maps woken relative to (a) (and maps lost: live in (a), silent here), wall and CPU
time, extra time relative to (a) and per woken map, the median activation of all
maps, and how many of the maps live in (a) got a different OIP image than in (b)
(with the median activation ratio of those to (b)).

When (a) leaves no silent map on a layer, a harder case is added: a copy of the
CNN whose biases of that layer are shifted down so that about half its maps never
fire on random start images (``--hard`` chooses the layers: ``auto``, ``all``,
``none`` or a comma list).

Usage: python bench/bench_warmup.py [--layers Conv2D_1,Conv2D_2,Conv2D_3] [--steps 600]
                                    [--warmup 50,150] [--hard auto]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time
from types import SimpleNamespace

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np


def _silent(result) -> np.ndarray:
    from oipscope.search.status import needs_retry

    return np.array([needs_retry(m.status, m.activation) for m in result.maps])


def _device() -> str:
    import tensorflow as tf

    phys = [f"{d.device_type}:{d.name.split(':')[-1]}" for d in tf.config.list_physical_devices()]
    with tf.device(None):
        where = (tf.constant(1.0) + 1.0).device
    gpus = tf.config.list_physical_devices("GPU")
    return (f"TensorFlow {tf.__version__}; physical devices {phys}; ops run on {where or '?'}"
            f"{'' if gpus else ' (no GPU)'}; {os.cpu_count()} logical CPUs visible")


def _shifted_subject(subject, layer: str, seed: int, n_random: int):
    """A copy of the model with ``layer``'s biases lowered by c: about half its maps
    never fire on ``n_random`` random start images like the precursor's (long-wavelength
    heavy scale noise); c = the median over maps of the map's highest pre-activation on
    those images."""
    import keras

    from oipscope.model.encoding import InputEncoding
    from oipscope.search.starts import combine_grids, default_scales, draw_grids
    from oipscope.model.subject import Subject

    h, w, ch = subject.input_shape
    rng = np.random.default_rng(seed)
    scales = default_scales(h)
    fac = np.column_stack([np.ones(n_random)] + [rng.uniform(0.05, 1.0, n_random) * 0.6**i
                                                 for i in range(1, len(scales))]).astype(np.float32)
    x = subject.encoding.start(combine_grids(draw_grids(rng, n_random, h, w, ch, scales), fac, h, w, False))
    pre = subject.preactivation_submodel(layer)
    p = np.asarray(pre(x, training=False))  # (N, H', W', M)
    per_map = p.reshape(-1, p.shape[-1]).max(axis=0)
    c = float(np.median(per_map))
    clone = keras.models.clone_model(subject.model)
    clone.set_weights(subject.model.get_weights())
    kernel, bias = clone.get_layer(layer).get_weights()
    clone.get_layer(layer).set_weights([kernel, bias - c])
    dead = int(np.sum(per_map - c <= 0))
    enc = InputEncoding.standardize(source="embedded model, biases shifted")
    return Subject(clone, enc), c, dead, len(per_map)


def _methods(warmups: list[int]):
    from oipscope import OipConfig

    out = [("a  none", OipConfig(restarts=0, rescue_steps=0)), ("b  default", OipConfig())]
    out += [(f"c  warm{w}", OipConfig(restarts=0, rescue_steps=0, warmup_steps=w)) for w in warmups]
    out += [(f"d  warm{w}+2nd", OipConfig(warmup_steps=w)) for w in warmups]
    return out


def _run(subject, layer: str, config):
    import oipscope

    t0, c0 = time.perf_counter(), time.process_time()
    result = oipscope.find_oips(subject, layer, "all", config)
    return result, time.perf_counter() - t0, time.process_time() - c0


def _then_warm(subject, layer: str, first, config):
    """(b)'s result, with the maps it leaves silent searched again with ``config``; keep the better."""
    import oipscope
    from oipscope.search.status import is_better

    todo = [i for i, dead in enumerate(_silent(first)) if dead]
    maps = list(first.maps)
    if todo:
        again = oipscope.find_oips(subject, layer, [maps[i].map_index for i in todo], config)
        for i, new in zip(todo, again.maps):
            if is_better(new.status, new.activation, maps[i].status, maps[i].activation):
                maps[i] = new
    return SimpleNamespace(maps=tuple(maps))


def _warm_tf(subject, layer: str, methods, steps: int) -> None:
    """Trace every compiled function the methods use (plain / warm-up segment, pre-activation)."""
    for _, cfg in methods:
        short = dataclasses.replace(cfg, steps=min(steps, 40), warmup_steps=min(cfg.warmup_steps, 20),
                                    rescue_steps=min(cfg.rescue_steps, 10), snapshot_steps=None)
        _run(subject, layer, short)


def _fmt(v, spec: str) -> str:
    width = int("".join(ch for ch in spec.split(".")[0] if ch.isdigit()) or 0)
    return "-".rjust(width) if v is None else format(v, spec)


def bench_case(title: str, subject, layer: str, methods, steps: int, repeat: int = 1) -> dict:
    _warm_tf(subject, layer, methods, steps)
    runs = {}
    for _ in range(max(repeat, 1)):
        for name, cfg in methods:
            res, wall, cpu = _run(subject, layer, dataclasses.replace(cfg, steps=steps))
            if name in runs:
                wall, cpu = min(wall, runs[name][1]), min(cpu, runs[name][2])
            runs[name] = (res, wall, cpu)
        for name, cfg in methods:
            if name.startswith("d"):  # e: (b) then (d) on the maps (b) leaves silent
                first, wall_b, cpu_b = runs[methods[1][0]]
                t0, c0 = time.perf_counter(), time.process_time()
                res = _then_warm(subject, layer, first, dataclasses.replace(cfg, steps=steps))
                wall, cpu = wall_b + time.perf_counter() - t0, cpu_b + time.process_time() - c0
                e = "e  b+" + name.split()[1].replace("+2nd", "") + "@silent"
                if e in runs:
                    wall, cpu = min(wall, runs[e][1]), min(cpu, runs[e][2])
                runs[e] = (res, wall, cpu)
    base, wall_a, cpu_a = runs[methods[0][0]]
    ref = runs[methods[1][0]][0]
    dead_a = _silent(base)
    live_a = ~dead_a
    ref_img = [m.image for m in ref.maps]
    ever = np.zeros_like(dead_a)
    n = len(base.maps)

    print(f"\n== {title}: {layer}, {n} maps, {steps} steps; silent under (a): {int(dead_a.sum())}")
    head = (f"{'method':<20}{'silent':>7}{'woken':>6}{'lost':>5}{'wall s':>8}{'cpu s':>8}{'+wall':>8}{'+cpu':>8}"
            f"{'wall/woken':>11}{'cpu/woken':>10}{'med act':>9}{'live changed':>14}{'chg act/b':>10}")
    print(head)
    print("-" * len(head))
    rows = {}
    for name, (res, wall, cpu) in runs.items():
        dead = _silent(res)
        ever |= ~dead
        woken = int(np.sum(dead_a & ~dead))
        lost = int(np.sum(live_a & dead))
        act = np.array([m.activation for m in res.maps], float)
        differs = [i for i in range(n) if live_a[i] and not np.array_equal(res.maps[i].image, ref_img[i])]
        ratio = (float(np.median([res.maps[i].activation / ref.maps[i].activation for i in differs]))
                 if differs else None)
        extra_w, extra_c = wall - wall_a, cpu - cpu_a
        per_w = extra_w / woken if woken else None
        per_c = extra_c / woken if woken else None
        print(f"{name:<20}{int(dead.sum()):>7}{woken:>6}{lost:>5}{wall:>8.1f}{cpu:>8.1f}{extra_w:>+8.1f}{extra_c:>+8.1f}"
              f"{_fmt(per_w, '>11.2f')}{_fmt(per_c, '>10.2f')}{np.median(act):>9.3f}"
              f"{f'{len(differs)}/{int(live_a.sum())}':>14}{_fmt(ratio, '>10.3f')}")
        rows[name] = {"silent": int(dead.sum()), "woken": woken, "lost": lost, "wall": wall, "cpu": cpu,
                      "changed": len(differs), "median": float(np.median(act))}
    print(f"woken by at least one method: {int(np.sum(dead_a & ever))} of {int(dead_a.sum())} silent under (a)")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--layers", default="Conv2D_1,Conv2D_2,Conv2D_3")
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--warmup", default="50,150", help="warm-up lengths W, comma-separated")
    ap.add_argument("--hard", default="auto",
                    help="layers that also get the shifted-bias case: auto (those (a) leaves without a "
                         "silent map), all, none, or a comma list")
    ap.add_argument("--seed", type=int, default=0, help="seed of the random starts that set the bias shift")
    ap.add_argument("--repeat", type=int, default=1, help="runs per method; the times are the fastest")
    args = ap.parse_args()

    from oipscope.model.cnn import default_subject

    warmups = [int(w) for w in args.warmup.split(",") if w]
    layers = [s for s in args.layers.split(",") if s]
    methods = _methods(warmups)
    print(_device())
    print("methods: a = OipConfig(restarts=0, rescue_steps=0); b = OipConfig(); "
          "c = a + warmup_steps=W; d = OipConfig(warmup_steps=W); "
          "e = b, then d on the maps b leaves silent")
    print("silent = status silent or activation <= 0; woken/lost relative to (a); +wall/+cpu = extra over (a); "
          "live changed = maps live under (a) whose OIP image differs from (b); "
          "chg act/b = median activation ratio of those to (b)")
    subject = default_subject()
    t0 = time.perf_counter()
    for layer in layers:
        rows = bench_case("embedded CNN", subject, layer, methods, args.steps, args.repeat)
        hard = (args.hard == "all" or layer in args.hard.split(",")
                or (args.hard == "auto" and rows[methods[0][0]]["silent"] == 0))
        if hard:
            shifted, c, dead, n = _shifted_subject(subject, layer, args.seed + 1, 256)
            title = (f"embedded CNN, {layer} biases - {c:.3f} ({dead}/{n} maps never fire "
                     f"on 256 random precursor-like starts)")
            bench_case(title, shifted, layer, methods, args.steps, args.repeat)
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
