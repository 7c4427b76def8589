"""An ImageNet-class CNN within time and memory: ``find --layer block4_conv3 --maps 0-3`` of
``keras.applications.VGG16(weights=None)`` at 224 px, with images to compare the OIPs with.

Two arms, each in its own child process (for its peak RSS), side by side in one run:

- **today**: float32 on the model's 224 px (``--precision float32 --size 224``);
- **new**: ``--precision auto`` (bfloat16 where a probe shows it faster here) on the default
  128 px canvas; both batch the 4 maps into one ascent and stream the images in batches.

The images are textured 224 px crops synthesized for the run (oriented gratings and smooth noise
in random colours; 400 by default). Targets: the new arm at least 8x faster with AMX (2.5x without,
from the canvas and batching), peak RSS under 3 GB, and no pass other than the ascent (dataset
examples, assessment) over 20 % of the new arm's time. The CPU's SIMD and AMX are printed::

    python bench/bench_bigmodel.py [--quick] [--images N] [--steps N] [--method auto|series|robust]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

SPEEDUP_AMX, SPEEDUP_PLAIN, RSS_LIMIT_GB = 8.0, 2.5, 3.0
ARMS = {"today": {"precision": "float32", "canvas": 224}, "new": {"precision": "auto", "canvas": None}}


def textured_crops(n: int, size: int = 224, seed: int = 0) -> np.ndarray:
    """``n`` photo-like textured RGB crops (uint8): oriented gratings over smooth coloured noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    out = np.empty((n, size, size, 3), np.uint8)
    for i in range(n):
        coarse = rng.uniform(0, 1, (8, 8, 3)).astype(np.float32)
        base = np.kron(coarse, np.ones((size // 8, size // 8, 1), np.float32))[:size, :size]
        angle, freq = rng.uniform(0, np.pi), rng.uniform(4, 30)
        grating = 0.5 + 0.5 * np.sin(2 * np.pi * freq * (xx * np.cos(angle) + yy * np.sin(angle)))
        colour = rng.uniform(0, 1, 3).astype(np.float32)
        image = 0.6 * base + 0.4 * grating[..., None] * colour + rng.normal(0, 0.03, (size, size, 3))
        out[i] = np.clip(image * 255, 0, 255).astype(np.uint8)
    return out


def run_arm(name: str, images_path: str, steps: int, out_dir: str, method: str = "auto") -> dict:
    """One arm, in this process: its seconds, precision, canvas and peak RSS."""
    import keras

    import oipscope
    from oipscope.runs.jobs import run_layer
    from oipscope.runs.phases import recording

    keras.utils.set_random_seed(0)  # the same weights=None VGG16 in both arms
    vgg = keras.applications.VGG16(weights=None, include_top=False, input_shape=(224, 224, 3))
    subject = oipscope.Subject(vgg, oipscope.InputEncoding.preset("caffe"))
    images = oipscope.open_images(images_path, subject.input_shape)
    arm = ARMS[name]
    from oipscope.config import resolve_method

    chosen = resolve_method(method, *subject.input_shape[:2])  # auto: what `find` runs at 224 px (robust)
    config = oipscope.OipConfig.for_method(chosen, steps=steps, canvas=arm["canvas"])
    t = time.perf_counter()
    with recording() as phases:
        result = run_layer(subject, "block4_conv3", "0-3", config, out_dir, images=images,
                           execution=oipscope.Execution(precision=arm["precision"]))
    seconds = time.perf_counter() - t
    phases["search"] = seconds - sum(phases.values())  # the rest: the OIPs
    return {"seconds": seconds, "precision": result.precision, "canvas": list(result.canvas), "phases": phases,
            "activation": float(np.median([m.activation for m in result.maps])),
            "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="40 images, 10 steps.")
    parser.add_argument("--images", type=int, default=400, help="Crops to compare with (default 400).")
    parser.add_argument("--steps", type=int, default=40, help="Ascent steps (default 40).")
    parser.add_argument("--method", choices=("auto", "series", "robust"), default="auto",
                        help="The OIP method, as find's --method (auto: robust at 224 px).")
    parser.add_argument("--arm", choices=sorted(ARMS), help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    n_images, steps = (40, 10) if args.quick else (args.images, args.steps)
    if args.arm:
        with tempfile.TemporaryDirectory() as out:
            print(json.dumps(run_arm(args.arm, args.data, steps, out, args.method)))
        return 0

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from oipscope.ascent.precision import cpu_features

    features = cpu_features()
    print(f"CPU {features['cpu']}: AVX2 {features['avx2']}, AVX-512 {features['avx512']}, AMX {features['amx']}; "
          f"{os.cpu_count()} cores; VGG16 (weights=None) block4_conv3 maps 0-3, {steps} steps, {n_images} images")
    measured = {}
    with tempfile.TemporaryDirectory() as folder:
        data = Path(folder) / "crops.npy"
        np.save(data, textured_crops(n_images))
        for name in ARMS:
            command = [sys.executable, __file__, "--arm", name, "--data", str(data), "--steps", str(steps),
                       "--method", args.method]
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                print(f"arm {name} failed:\n{done.stderr[-3000:]}")
                return 1
            measured[name] = json.loads(done.stdout.strip().splitlines()[-1])
            m = measured[name]
            shares = ", ".join(f"{phase} {100 * s / m['seconds']:.0f} %" for phase, s in sorted(m["phases"].items()))
            print(f"{name}: {m['seconds']:.1f} s in {m['precision']} on {m['canvas'][0]} px, median activation "
                  f"{m['activation']:.3f}, peak RSS {m['peak_rss_gb']:.2f} GB; phases: {shares}")
    speedup = measured["today"]["seconds"] / measured["new"]["seconds"]
    target = SPEEDUP_AMX if features["amx"] else SPEEDUP_PLAIN
    rss = max(m["peak_rss_gb"] for m in measured.values())
    print(f"speed-up {speedup:.2f}x (target >= {target}x {'with' if features['amx'] else 'without'} AMX): "
          f"{'met' if speedup >= target else 'NOT met'}; peak RSS {rss:.2f} GB (target < {RSS_LIMIT_GB} GB): "
          f"{'met' if rss < RSS_LIMIT_GB else 'NOT met'}")
    others = max((s / measured["new"]["seconds"] for phase, s in measured["new"]["phases"].items()
                  if phase != "search"), default=0.0)
    print(f"largest pass other than the ascent: {100 * others:.0f} % of the new find (target <= 20 %): "
          f"{'met' if others <= 0.2 else 'NOT met'}")
    return 0 if speedup >= target and rss < RSS_LIMIT_GB and others <= 0.2 else 1


if __name__ == "__main__":
    raise SystemExit(main())
