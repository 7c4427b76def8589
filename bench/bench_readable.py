"""The readable loop (``--robust``) against the series' pixel loop, per map-step, side by side.

Both loops climb the same maps of ``keras.applications.VGG16(weights=None)`` truncated at
``block4_conv3`` (caffe encoding), at 224 and 64 pixels: the series' loop
(:func:`oipscope.ascent.pixels.ascend`, no early stop, no snapshots) and the readable one
(:func:`oipscope.ascent.parameters.render` with the robust preset: decorrelated Fourier image,
sigmoid bound, the standard transforms, Adam), its plain steps and its ReLU warm-up steps apart
(the preset warms up an eighth of its steps). A map-step is one step of one map; its time is
the difference between the fastest run of 1 + N steps and the fastest of 1 step, divided by
N x maps, so the compile, the final forward pass and the host copies of a run cancel; wall and
CPU time (on a busy shared machine the CPU time is the steadier). The loops alternate.

Then one run of each loop under TensorFlow's profiler: the op types by time per map-step, and
the compiled-function calls per run (one loop call per segment, not per step: no host round
trip per step).

    python bench/bench_readable.py [--quick] [--sizes 224,64] [--maps 2] [--steps 3] [--repeats 2]

Absolute times on a shared machine are noisy; compare the columns of one row.
"""

from __future__ import annotations

import argparse
import collections
import glob
import os
import shutil
import tempfile
import time
from typing import Callable

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
from _machine import describe_machine  # noqa: E402

LAYER = "block4_conv3"
WARMUP_SHARE = 1 / 8  # the robust preset warms up an eighth of its steps (at most 64 of 512)


def vgg16_layer(size: int):
    """VGG16 of random (seeded) weights at ``size`` pixels, cut at :data:`LAYER`."""
    import keras

    from oipscope.model.loading import feature_submodel

    keras.utils.set_random_seed(0)
    model = keras.applications.VGG16(weights=None, include_top=False, input_shape=(size, size, 3))
    return feature_submodel(model, LAYER)


def loops(sub, size: int, maps: list[int]) -> dict[str, Callable[[int], object]]:
    """Runs of ``n`` steps of each loop on ``maps``: the series', the readable one's plain and warm-up steps."""
    from oipscope.ascent.parameters import parametrization_of, render
    from oipscope.ascent.pixels import ascend
    from oipscope.config import Execution, OipConfig
    from oipscope.model.encoding import InputEncoding

    encoding = InputEncoding.preset("caffe")
    execution = Execution(memory_budget_mb=8192)  # all maps in one batch, in both loops
    low, high = encoding.bounds(3)
    start = (low + (high - low) * np.random.default_rng(0).uniform(size=(len(maps), size, size, 3))).astype(np.float32)
    series = OipConfig(stop_on_convergence=False)
    param = parametrization_of(OipConfig.robust(), (size, size, 3), encoding)

    def pixels(n: int):
        return ascend(sub, start, maps, series, steps=n, snapshot_steps=(), encoding=encoding, execution=execution)

    def readable(n: int, warm: bool = False):
        config = OipConfig.robust(steps=n, warmup_steps=n if warm else 0)
        rngs = [np.random.default_rng(m) for m in maps]
        params = np.stack([param.initial(rng) for rng in rngs])
        return render(sub, param, params, maps, config, rngs, snapshot_steps=(), execution=execution)

    return {"pixels": pixels, "readable": readable, "readable warm-up": lambda n: readable(n, warm=True)}


def timed(run: Callable[[int], object], n: int) -> np.ndarray:
    """Wall and CPU seconds of a run of ``n`` steps."""
    start = np.array([time.perf_counter(), time.process_time()])
    run(n)
    return np.array([time.perf_counter(), time.process_time()]) - start


def op_profile(run: Callable[[int], object], steps: int) -> tuple[collections.Counter, int] | None:
    """Milliseconds per op type and compiled-function calls of one run of ``steps`` steps (None: no profiler)."""
    import tensorflow as tf

    try:
        from tensorflow.tsl.profiler.protobuf import xplane_pb2
    except ImportError:
        return None
    folder = tempfile.mkdtemp(prefix="oipscope-profile-")
    try:
        tf.profiler.experimental.start(folder)
        try:
            run(steps)
        finally:
            tf.profiler.experimental.stop()
        space = xplane_pb2.XSpace()
        with open(sorted(glob.glob(f"{folder}/**/*.xplane.pb", recursive=True))[-1], "rb") as fh:
            space.ParseFromString(fh.read())
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    times: collections.Counter = collections.Counter()
    calls = 0
    for plane in space.planes:
        for line in plane.lines:
            for event in line.events:
                meta = plane.event_metadata[event.metadata_id]
                if line.name == "python":
                    calls += any(plane.stat_metadata[s.metadata_id].name == "tf_function_call" for s in event.stats)
                elif meta.display_name and ":" in meta.name:  # an op: "name:Type"
                    times[meta.display_name] += event.duration_ps / 1e9
    return times, calls


def print_profile(size: int, n_maps: int, steps: int, profiles: dict[str, tuple[collections.Counter, int]]) -> None:
    """The op types by ms per map-step, the series' and the readable loop's side by side."""
    pixels, readable = profiles["pixels"][0], profiles["readable"][0]
    scale = 1 / (n_maps * steps)
    print(f"\nop profile at {size} px, ms per map-step (op times summed over threads; "
          f"{steps} steps of {n_maps} maps):")
    print(f"  {'op':36s} {'pixels':>9s} {'readable':>9s}")
    for op in sorted(set(pixels) | set(readable), key=lambda k: -max(pixels[k], readable[k]))[:16]:
        print(f"  {op:36s} {pixels[op] * scale:9.2f} {readable[op] * scale:9.2f}")
    own = {op: t for op, t in readable.items() if op not in pixels}
    print(f"  ops only the readable loop runs: {sum(own.values()) * scale:.2f} ms per map-step "
          f"({100 * sum(own.values()) / max(sum(readable.values()), 1e-9):.1f} % of its op time): "
          + ", ".join(f"{op} {t * scale:.2f}" for op, t in sorted(own.items(), key=lambda kv: -kv[1])[:8]))
    print("  compiled-function calls per run: " + ", ".join(
        f"{name} {calls}" for name, (_, calls) in profiles.items()) + f" (for {steps} steps: none per step)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="224 px only, 2 steps, 2 repeats")
    parser.add_argument("--sizes", default="224,64")
    parser.add_argument("--maps", type=int, default=2, help="maps climbed together (the default budget's batch "
                                                            "at 224 px)")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-profile", action="store_true")
    args = parser.parse_args()
    sizes = [224] if args.quick else [int(s) for s in args.sizes.split(",")]
    steps, repeats = (2, 2) if args.quick else (args.steps, args.repeats)
    maps = list(range(args.maps))
    print(f"machine: {describe_machine()}; VGG16(weights=None) to {LAYER}, {len(maps)} maps, "
          f"{steps} steps, best of {repeats}")
    rows = []
    for size in sizes:
        runs = loops(vgg16_layer(size), size, maps)
        for run in runs.values():
            run(1)  # compile
        # per loop, the fastest run of 1 and of 1 + steps steps (wall, CPU); the loops alternate
        fastest = {(name, n): np.full(2, np.inf) for name in runs for n in (1, 1 + steps)}
        for _ in range(repeats):
            for name, run in runs.items():
                for n in (1, 1 + steps):
                    fastest[name, n] = np.minimum(fastest[name, n], timed(run, n))
        best = {name: (fastest[name, 1 + steps] - fastest[name, 1]) / (steps * len(maps)) for name in runs}
        preset = (1 - WARMUP_SHARE) * best["readable"] + WARMUP_SHARE * best["readable warm-up"]
        rows.append((size, best, preset))
        for k, clock in enumerate(("wall", "CPU")):
            p = best["pixels"][k]
            print(f"{size:4d} px, {clock:4s} ms per map-step: pixels {p * 1e3:.1f}, readable "
                  f"{best['readable'][k] * 1e3:.1f} ({best['readable'][k] / p:.2f}x), its warm-up steps "
                  f"{best['readable warm-up'][k] * 1e3:.1f} ({best['readable warm-up'][k] / p:.2f}x), "
                  f"preset mix {preset[k] / p:.2f}x", flush=True)
        if not args.no_profile and size == sizes[0]:
            profiles = {name: op_profile(runs[name], steps) for name in ("pixels", "readable")}
            if None in profiles.values():
                print("op profile: TensorFlow's profiler protobufs are not importable here")
            else:
                print_profile(size, len(maps), steps, profiles)
    print("\nms per map-step, wall / CPU (ratios to the pixel loop):")
    for size, best, preset in rows:
        p = best["pixels"]

        def cell(t):
            return f"{t[0] * 1e3:.0f} / {t[1] * 1e3:.0f} ({t[0] / p[0]:.2f}× / {t[1] / p[1]:.2f}×)"

        print(f"| {size} px | {p[0] * 1e3:.0f} / {p[1] * 1e3:.0f} | {cell(best['readable'])} | "
              f"{cell(best['readable warm-up'])} | {preset[0] / p[0]:.2f}× / {preset[1] / p[1]:.2f}× |")


if __name__ == "__main__":
    main()
