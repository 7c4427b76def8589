"""Benchmark: batched OIP engine vs a seed-style one-map-at-a-time eager loop.

Usage: python bench/bench_engine.py [MODEL.keras] [--layer Conv2D_3] [--steps 600] [--seed-maps 3]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _peers import seed_loop  # noqa: E402  (the series' loop, shared with bench_pipeline.py)


def _default_model() -> str:
    try:
        from oipscope.model.cnn import default_model_path

        path = str(default_model_path())
        if os.path.isfile(path):
            return path
    except Exception:
        pass
    return "/tmp/default_model/mnist_cnn.keras"


def conv_macs(sub) -> int:
    """Multiply-accumulates of the conv layers of one forward pass of one image."""
    total = 0
    for layer in sub.layers:
        if type(layer).__name__.startswith("Conv"):
            k = layer.kernel.shape
            out = layer.output.shape
            total += int(np.prod(out[1:])) * int(np.prod(k[:-1]))
    return total


def peak_gflops() -> float:
    """fp32 peak of this machine: cores x clock x SIMD lanes x 2 (FMA) x 2 FMA units.

    The lanes come from the CPU flags: 16 with AVX-512, 8 with AVX2 (the shared machines
    change from day to day: one had AVX-512 and AMX, another only AVX2).
    """
    mhz, flags = 2300.0, set()
    try:
        with open("/proc/cpuinfo") as fh:
            lines = fh.read().splitlines()
        vals = [float(l.split(":")[1]) for l in lines if l.startswith("cpu MHz")]
        mhz = max(vals) if vals else mhz
        flags = set(next((l.split(":")[1].split() for l in lines if l.startswith("flags")), []))
    except OSError:
        pass
    lanes = 16 if "avx512f" in flags else 8 if "avx2" in flags else 4
    return (os.cpu_count() or 1) * mhz / 1000 * lanes * 2 * 2


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model", nargs="?", default=_default_model())
    ap.add_argument("--layer", default="Conv2D_3")
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--seed-maps", type=int, default=3)
    args = ap.parse_args()

    from oipscope.config import Execution
    from oipscope.model.encoding import InputEncoding
    from oipscope.ascent.pixels import OipConfig, ascend
    from oipscope.search.starts import scale_noise
    from oipscope.model.loading import feature_submodel, load_model
    from oipscope.search.pipeline import _Search, find_oips

    model = load_model(args.model)
    sub = feature_submodel(model, args.layer)
    h, w, c = (int(d) for d in sub.inputs[0].shape[1:])
    n = int(sub.outputs[0].shape[-1])
    cfg = OipConfig(steps=args.steps, stop_on_convergence=False)
    x0 = scale_noise(0, n, h, w, c, cfg.resolved_scales(h))
    ascend(sub, x0, range(n), cfg, steps=2)  # trace once
    t = time.perf_counter()
    res = ascend(sub, x0, range(n), cfg)
    t_batch = time.perf_counter() - t

    seed_loop(sub, x0[0], 0, 2, cfg.epsilon)  # warm-up
    k = min(args.seed_maps, n)
    t = time.perf_counter()
    for m in range(k):
        seed_loop(sub, x0[m], m, args.steps, cfg.epsilon)
    t_seed = (time.perf_counter() - t) / k * n

    # forward + gradient w.r.t. the input (no weight gradients): about 2 passes, 2 FLOP per MAC
    flops = conv_macs(sub) * 2 * 2 * n * args.steps
    gflops = flops / t_batch / 1e9

    search = _Search(sub, (h, w, c), OipConfig(), InputEncoding.standardize(), Execution())
    t = time.perf_counter()
    search.starts([(m, 0) for m in range(n)], "precursor", 1, 0, OipConfig().n_candidates)
    t_pre = time.perf_counter() - t

    t = time.perf_counter()
    full = find_oips(model, args.layer, "all", OipConfig(steps=args.steps))
    t_full = time.perf_counter() - t
    coverage = sum(m.activation > 0 for m in full.maps)
    plain = int((res.activations > 0).sum())

    print(f"model {args.model}  layer {args.layer}  maps {n}  steps {args.steps}")
    print(f"batched engine wall time : {t_batch:8.2f} s")
    print(f"seed-style loop (scaled) : {t_seed:8.2f} s  ({k} maps measured)")
    print(f"speedup                  : {t_seed / t_batch:8.1f} x")
    print(f"achieved                 : {gflops:8.1f} GFLOP/s  (peak {peak_gflops():.0f} GFLOP/s, "
          f"{100 * gflops / peak_gflops():.1f} %)")
    print(f"precursor time           : {t_pre:8.2f} s  = {100 * t_pre / t_batch:.1f} % of ascent")
    print(f"coverage plain start     : {plain}/{n} maps with positive activation")
    print(f"coverage precursor+restart: {coverage}/{n}  (find_oips {t_full:.1f} s, {full.summary()})")


if __name__ == "__main__":
    main()
