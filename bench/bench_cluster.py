"""Benchmark: the zoo's OIPs in this process and on a local Ray cluster with 1 and 2 workers,
and, on paper, what a ResNet-50 zoo costs on N GPUs.

Usage: python bench/bench_cluster.py [--maps all] [--steps 600] [--skip-ray]

The three runs search the same maps of the embedded CNN's three layers (no dataset
examples, no gallery) and give the same OIPs (the table prints the largest pixel
difference: 0, or a few float32 roundings where oneDNN summed in another order); the
throughput ratios are measured side by side in one process. The projection counts every convolution map of
keras.applications.ResNet50 (weights=None, no download) and the multiply-accumulates of
the sub-model up to its layer; an ascent step costs about 3x a forward pass (forward,
backward to the input).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402


def _zoo(subject, config, maps, backend) -> tuple[float, list]:
    from oipscope.runs.jobs import run_zoo

    with tempfile.TemporaryDirectory() as out:
        began = time.perf_counter()
        runs = run_zoo(subject, None, config, out, maps=maps, backend=backend)
        return time.perf_counter() - began, [run.result for run in runs]


def _largest_difference(a: list, b: list) -> float:
    """The largest pixel difference between the OIPs of two runs (0: identical)."""
    return max(float(np.abs(x.image - y.image).max()) for ra, rb in zip(a, b) for x, y in zip(ra.maps, rb.maps))


def resnet50_projection(steps: int = 600, gpu_tflops: float = 19.5, utilization: float = 0.35) -> None:
    """Maps, FLOPs per map and hours for a zoo of every conv layer of ResNet-50 at 224 px."""
    import keras

    model = keras.applications.ResNet50(weights=None)
    macs_so_far, n_maps, flops = 0, 0, 0.0
    for layer in model.layers:  # model order is a topological order: the sub-model up to a layer
        if isinstance(layer, keras.layers.Conv2D):
            kernel = layer.kernel.shape
            out = layer.output.shape
            macs_so_far += int(np.prod(out[1:])) * int(np.prod(kernel[:-1]))
            maps = int(out[-1])
            n_maps += maps
            flops += maps * steps * 3 * 2 * macs_so_far  # ~3 forward passes per step, 2 FLOPs per MAC
    per_map = flops / n_maps
    print(f"\nResNet-50 zoo on paper: {n_maps} conv maps, {steps} steps each; "
          f"{per_map / 1e12:.1f} TFLOP per map on average, {flops / 1e15:.0f} PFLOP in all")
    rate = gpu_tflops * 1e12 * utilization
    print(f"at {gpu_tflops} TFLOP/s fp32 per GPU (A100-class) and {utilization:.0%} utilization:")
    print("| GPUs | hours |\n|---:|---:|")
    for n in (1, 8, 32, 128):
        print(f"| {n} | {flops / (rate * n) / 3600:.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--maps", default="all", help="maps of every layer (default all: 224 maps)")
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--skip-ray", action="store_true", help="only the projection")
    args = parser.parse_args()

    if not args.skip_ray:
        import oipscope
        from oipscope.runs.cluster import RayBackend
        from oipscope.config import OipConfig

        subject = oipscope.default_subject()
        config = OipConfig(steps=args.steps)
        _zoo(subject, OipConfig(steps=5), "0-1", None)  # compile the loops once
        local_s, local = _zoo(subject, config, args.maps, None)
        n_oips = sum(len(r.maps) for r in local)
        rows = [("this process", local_s, 0.0)]
        for workers in (1, 2):
            backend = RayBackend("local", workers=workers)
            try:
                seconds, results = _zoo(subject, config, args.maps, backend)
            finally:
                backend.close()
            rows.append((f"Ray, {workers} worker(s)", seconds, _largest_difference(local, results)))
        print(f"zoo of the embedded CNN: {n_oips} OIPs, {args.steps} steps, on {os.cpu_count()} CPUs")
        print("| run | seconds | OIPs/s | vs this process | largest pixel difference |\n|---|---:|---:|---:|---:|")
        for name, seconds, difference in rows:
            print(f"| {name} | {seconds:.1f} | {n_oips / seconds:.1f} | {local_s / seconds:.2f}x | {difference:.1g} |")
        one, two = rows[1][1], rows[2][1]
        print(f"2 workers / 1 worker throughput: {one / two:.2f}x")
    resnet50_projection(args.steps)


if __name__ == "__main__":
    main()
