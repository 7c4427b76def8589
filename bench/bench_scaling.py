"""How the OIP engine scales: input size and layer depth, memory budget, a real ImageNet network.

Prints three markdown tables ready to paste into the README:

(a) time per map-step of the bare ascent (``oipscope.ascent.pixels.ascend``, no early stop) for
    input sizes 28, 64, 128 and 224 pixels, on the first and the last convolution of a
    small VGG-like CNN of random weights (grey at 28 pixels, RGB above; 4 blocks of two
    3×3 convolutions of 16, 32, 64, 128 maps, 2×2 pooling between), and on the
    embedded MNIST CNN for reference; 16 maps × 30 steps each after a warm-up (the first
    maps that respond to their start image: a silent map would stop at once);
(b) peak resident memory against ``Execution(memory_budget_mb=...)`` for one layer with
    many maps (a 32×32 RGB input into a 3×3 convolution of 512 maps, all maps), each
    budget in a fresh process: the kernel's high-water mark (VmHWM) after resetting it
    through /proc/self/clear_refs, as tests/test_memory_budget.py does;
(c) ``keras.applications.MobileNetV2(weights=None)`` at 224×224×3: 8 maps × 50 steps of
    the middle layer ``block_6_expand_relu``.

Absolute times on a shared machine are noisy; compare rows of one run.

    python bench/bench_scaling.py [--quick] [--budgets 64,256,1024] [--skip-memory] [--skip-mobilenet]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

SIZES = (28, 64, 128, 224)
WIDTHS = (16, 32, 64, 128)
WIDE_MAPS = 512


def vgg_like(size: int, channels: int):
    """A small VGG-like CNN of random (seeded) weights; conv layers ``conv{block}_{1,2}``."""
    import keras

    keras.utils.set_random_seed(0)
    x = inputs = keras.Input((size, size, channels))
    for block, width in enumerate(WIDTHS, start=1):
        if block > 1:
            x = keras.layers.MaxPooling2D(2, name=f"pool{block - 1}")(x)
        for i in (1, 2):
            # a small positive bias keeps random-weight maps from being silent (a silent map stops early)
            x = keras.layers.Conv2D(width, 3, padding="same", activation="relu", name=f"conv{block}_{i}",
                                    bias_initializer=keras.initializers.Constant(0.05))(x)
    return keras.Model(inputs, x, name=f"vgg_like_{size}")


def noise(n: int, shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """Per-image standardized Gaussian noise: start images in the default encoding."""
    x = np.random.default_rng(seed).standard_normal((n, *shape)).astype(np.float32)
    return (x - x.mean(axis=(1, 2, 3), keepdims=True)) / x.std(axis=(1, 2, 3), keepdims=True)


def time_ascent(model, layer: str, n_maps: int, steps: int) -> dict:
    """Seconds per map-step of the bare ascent of ``n_maps`` maps of ``layer`` (the first that respond)."""
    from oipscope.config import Execution, OipConfig
    from oipscope.ascent.pixels import ascend, estimate_chunk_size, mean_activations
    from oipscope.model.loading import feature_submodel
    from oipscope.search.status import Status

    sub = feature_submodel(model, layer)
    shape = tuple(int(d) for d in sub.inputs[0].shape[1:])
    out_shape = tuple(int(d) for d in sub.outputs[0].shape[1:])
    # time maps that respond to their start image: a silent map stops at once and would
    # make the steps look cheaper than they are (a few candidates per timed map suffice)
    candidates = np.arange(min(4 * n_maps, out_shape[-1]))
    starts = noise(len(candidates), shape)
    alive = np.flatnonzero(mean_activations(sub, starts, candidates) > 0)
    chosen = alive[:n_maps] if len(alive) else np.arange(min(n_maps, len(candidates)))
    maps, x0 = candidates[chosen], starts[chosen]
    config = OipConfig(steps=steps, stop_on_convergence=False)
    ascend(sub, x0[:2], maps[:2], config, steps=2)  # warm-up: traces the compiled loop
    t = time.perf_counter()
    result = ascend(sub, x0, maps, config)
    seconds = time.perf_counter() - t
    early = int(np.sum(result.status != Status.STEP_LIMIT.code))  # silent or non-finite: stopped early
    batch = estimate_chunk_size(sub, len(config.resolved_snapshot_steps(steps)), steps,
                                Execution().memory_budget_mb)
    return {"input": "×".join(map(str, shape)), "layer": layer, "maps": len(maps), "map_size": out_shape[0],
            "layer_maps": out_shape[-1], "batch": min(batch, len(maps)), "seconds": seconds,
            "ms_per_map_step": 1000 * seconds / (len(maps) * steps), "stopped_early": early}


def scaling_rows(n_maps: int, steps: int) -> list[dict]:
    from oipscope.model.cnn import default_model

    rows = []
    series = default_model()
    for layer in ("Conv2D_1", "Conv2D_3"):
        rows.append({"model": "series CNN (trained)", **time_ascent(series, layer, n_maps, steps)})
        print(json.dumps(rows[-1]), flush=True)
    for size in SIZES:
        model = vgg_like(size, 1 if size == 28 else 3)
        for layer in ("conv1_1", f"conv{len(WIDTHS)}_2"):
            rows.append({"model": "VGG-like (random)", **time_ascent(model, layer, n_maps, steps)})
            print(json.dumps(rows[-1]), flush=True)
    return rows


# ---- (b) memory: one fresh process per budget ---------------------------------------------------

def _status_mb(field: str) -> float:
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith(field + ":")) / 1024


def memory_child(budget: float, steps: int) -> None:
    """In a fresh process: the peak RSS of one ascent of all maps of a wide layer under ``budget``."""
    import keras

    from oipscope.config import Execution, OipConfig
    from oipscope.ascent.pixels import estimate_chunk_size
    from oipscope.model.loading import feature_submodel
    from oipscope.search.pipeline import find_oips

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((32, 32, 3)),
                              keras.layers.Conv2D(WIDE_MAPS, 3, padding="same", activation="relu", name="wide",
                                                  bias_initializer=keras.initializers.Constant(0.05))])
    config = OipConfig(steps=steps, precursor=False, restarts=0, rescue_steps=0, stop_on_convergence=False)
    execution = Execution(memory_budget_mb=budget)
    find_oips(model, "wide", [0, 1], config, execution=execution)  # tracing memory is not the batch's
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")  # high-water mark := current RSS
    before = _status_mb("VmRSS")
    t = time.perf_counter()
    result = find_oips(model, "wide", "all", config, execution=execution)
    seconds = time.perf_counter() - t
    batch = estimate_chunk_size(feature_submodel(model, "wide"), len(config.resolved_snapshot_steps(steps)), steps,
                                budget)
    print("RESULT " + json.dumps({
        "budget_mb": budget, "maps": len(result.maps), "batch": min(batch, WIDE_MAPS), "seconds": seconds,
        "rss_before_mb": before, "peak_mb": _status_mb("VmHWM"), "growth_mb": _status_mb("VmHWM") - before,
    }))


def memory_rows(budgets: list[float], steps: int) -> list[dict]:
    if not os.path.exists("/proc/self/clear_refs"):
        print("memory: skipped, needs Linux /proc/self/clear_refs to reset the peak")
        return []
    rows = []
    for budget in budgets:
        proc = subprocess.run([sys.executable, __file__, "--memory-child", str(budget), "--steps", str(steps)],
                              capture_output=True, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
                              check=False)
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
        if proc.returncode != 0 or not lines:
            raise RuntimeError(f"memory run for {budget} MB failed:\n{proc.stderr[-3000:]}")
        rows.append(json.loads(lines[-1][len("RESULT "):]))
        print(json.dumps(rows[-1]), flush=True)
    return rows


# ---- (c) a real ImageNet network ----------------------------------------------------------------

def mobilenet_row(n_maps: int, steps: int, layer: str = "block_6_expand_relu") -> dict:
    import keras

    keras.utils.set_random_seed(0)
    model = keras.applications.MobileNetV2(weights=None, input_shape=(224, 224, 3))
    return {"model": "MobileNetV2 (weights=None)", **time_ascent(model, layer, n_maps, steps), "steps": steps}


# ---- output -------------------------------------------------------------------------------------

def print_tables(scaling: list[dict], steps: int, memory: list[dict], mobile: dict | None) -> None:
    print(f"\n**Bare ascent, time per map-step** ({scaling[0]['maps'] if scaling else 0} maps × {steps} steps, "
          "default memory budget)\n")
    print("| model | input | layer | maps × size | batch | ms per map-step |")
    print("|---|---|---|---|---|---|")
    for r in scaling:
        note = f" ({r['stopped_early']} stopped early)" if r["stopped_early"] else ""
        print(f"| {r['model']} | {r['input']} | {r['layer']} | {r['layer_maps']} × {r['map_size']}² | "
              f"{r['batch']} | {r['ms_per_map_step']:.2f}{note} |")
    if memory:
        print(f"\n**Peak memory against the budget** ({memory[0]['maps']} maps of a 3×3 conv on 32×32×3, "
              "fresh process each)\n")
        print("| memory_budget_mb | OIPs at once | peak RSS growth (MB) | peak RSS (MB) | seconds |")
        print("|---|---|---|---|---|")
        for r in memory:
            print(f"| {r['budget_mb']:g} | {r['batch']} | {r['growth_mb']:.0f} | {r['peak_mb']:.0f} | "
                  f"{r['seconds']:.1f} |")
    if mobile:
        print("\n**A real network** (random weights)\n")
        print("| model | input | layer | maps × steps | seconds | ms per map-step |")
        print("|---|---|---|---|---|---|")
        note = f" ({mobile['stopped_early']} stopped early)" if mobile["stopped_early"] else ""
        print(f"| {mobile['model']} | {mobile['input']} | {mobile['layer']} | {mobile['maps']} × {mobile['steps']} | "
              f"{mobile['seconds']:.1f} | {mobile['ms_per_map_step']:.1f}{note} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="A smoke run: 4 maps × 5 steps, 3-step memory runs.")
    parser.add_argument("--maps", type=int, default=None, help="Maps per layer in (a) (default 16).")
    parser.add_argument("--steps", type=int, default=None, help="Steps per map in (a) (default 30).")
    parser.add_argument("--budgets", default="64,256,1024", help="memory_budget_mb values for (b).")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--skip-mobilenet", action="store_true")
    parser.add_argument("--memory-child", type=float, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child is not None:
        memory_child(args.memory_child, args.steps or 10)
        return

    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")  # one traced loop per model and layer is expected here, not a retracing bug
    print("devices:", ", ".join(f"{d.name} ({d.device_type})" for d in tf.config.list_logical_devices()))
    n_maps = args.maps or (4 if args.quick else 16)
    steps = args.steps or (5 if args.quick else 30)
    scaling = scaling_rows(n_maps, steps)
    memory = [] if args.skip_memory else memory_rows([float(b) for b in args.budgets.split(",") if b],
                                                     3 if args.quick else 10)
    mobile = None
    if not args.skip_mobilenet:
        mobile = mobilenet_row(2 if args.quick else 8, 5 if args.quick else 50)
        print(json.dumps(mobile), flush=True)
    print_tables(scaling, steps, memory, mobile)


if __name__ == "__main__":
    main()
