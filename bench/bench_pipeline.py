"""oipscope's default pipeline against the series' eager loop and tf-keras-vis, side by side.

On the embedded CNN's layer Conv2D_3 (128 maps), 600 steps each, in one run:

- oipscope: ``find_oips(subject, "Conv2D_3", "all", OipConfig())``, the whole default
  pipeline (precursor, batched ascent, restarts, pre-activation rescue), after one short
  warm-up call that traces the compiled loop;
- the series' loop: one map at a time, an eager GradientTape per step; ``--seed-maps``
  maps are timed and the time scaled to all maps;
- tf-keras-vis ``ActivationMaximization`` with its defaults (regularizers, input
  modifiers, optimizer), all maps in one batch (see ``_peers.tfkv_maximize``).

Quality: maps whose OIP activates them (> 0) and maps whose OIP beats their best training
image (superstimulus ratio >= 1: the image set's top mean activation per map). The image
set is the 60 000 MNIST training images if they are on disk (``OIPSCOPE_DATA_DIR``), else
the embedded 10 000 test images. Targets (issue 13): the pipeline >= 100x faster than the
series' loop and >= 10x faster than tf-keras-vis.

    python bench/bench_pipeline.py [--maps N] [--steps 600] [--seed-maps 3] [--skip-tfkv]
                                   [--tfkv-route legacy|keras3] [--images NAME|PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _peers import seed_loop, tfkv_maximize  # noqa: E402

TARGETS = {"series loop": 100.0, "tf-keras-vis": 10.0}


def example_set_name() -> str:
    """The full MNIST training set if its files are on disk, else the embedded test set."""
    from oipscope.data.datasets import find_dataset_dir

    return "mnist" if find_dataset_dir("mnist") is not None else "mnist-test"


def quality(activations: np.ndarray, ratios: np.ndarray | None) -> dict:
    """Maps activated (> 0), maps beating their best image (ratio >= 1), median ratio."""
    row = {"positive": int(np.sum(np.asarray(activations) > 0)), "maps": int(len(activations))}
    if ratios is not None:
        ratios = np.asarray(ratios, np.float64)
        row["beating"] = int(np.sum(ratios >= 1))  # NaN (map silent on the data) counts as not beating
        row["median_ratio"] = float(np.nanmedian(ratios)) if np.isfinite(ratios).any() else float("nan")
    return row


def run_pipeline(subject, layer: str, maps: list[int], steps: int, examples) -> dict:
    from oipscope import OipConfig, assess_oips, find_oips

    find_oips(subject, layer, maps[:2], OipConfig(steps=20))  # warm-up: traces the compiled loop
    selection = "all" if len(maps) == int(subject.feature_submodel(layer).outputs[0].shape[-1]) else maps
    t = time.perf_counter()
    result = find_oips(subject, layer, selection, OipConfig(steps=steps))
    seconds = time.perf_counter() - t
    assessed = assess_oips(subject, result, examples)
    row = quality(np.array([m.activation for m in assessed.maps]),
                  np.array([m.superstimulus_ratio for m in assessed.maps]))
    return {"method": "oipscope find_oips (default pipeline)", "seconds": seconds, **row}


def run_series_loop(sub, maps: list[int], steps: int, seed_maps: int) -> dict:
    from oipscope import OipConfig
    from oipscope.search.starts import scale_noise

    h, w, c = (int(d) for d in sub.inputs[0].shape[1:])
    config = OipConfig()
    timed = maps[: max(1, min(seed_maps, len(maps)))]
    x0 = scale_noise(0, len(timed), h, w, c, config.resolved_scales(h))
    seed_loop(sub, x0[0], timed[0], 2, config.epsilon)  # warm-up
    t = time.perf_counter()
    final = [seed_loop(sub, x0[i], m, steps, config.epsilon) for i, m in enumerate(timed)]
    seconds = (time.perf_counter() - t) / len(timed) * len(maps)
    return {"method": f"series eager loop ({len(timed)} maps timed, scaled)", "seconds": seconds,
            "positive": int(np.sum(np.asarray(final) > 0)), "maps": len(timed)}


def run_tfkv(subject, layer: str, maps: list[int], steps: int, examples, route: str) -> dict:
    from oipscope import superstimulus_ratio
    from oipscope.ascent.pixels import mean_activations

    sub = subject.feature_submodel(layer)
    # Fairness: tf-keras-vis runs with all its defaults; only the score is ours. Sample b of one
    # batch scores map maps[b] (its scores are averaged per sample, its regularizers are per
    # sample, RMSprop is element-wise, and the CNN has no batch coupling in inference), so one
    # batched call equals len(maps) single-map calls, except that Jitter/Rotate draw one shift
    # and one angle per step for the whole batch instead of one per map: the same distribution.
    # Its default input range is pixels 0..255, so the model gets its own encoding (per-image
    # standardization) in front, exactly how oipscope feeds it dataset images. Batching gives
    # it the same use of the 2 cores that oipscope's batched ascent gets.
    out = tfkv_maximize(sub, subject.encoding, maps, steps, route=route)
    activations = mean_activations(sub, np.asarray(subject.encode(out["images"])), maps)
    mismatch = float(np.max(np.abs(activations - out["own_activations"]))) if len(maps) else 0.0
    row = quality(activations, superstimulus_ratio(activations, examples, maps))
    return {"method": f"tf-keras-vis defaults ({out['route']})", "seconds": out["seconds"],
            "model_mismatch": mismatch, **row}


def print_table(rows: list[dict], steps: int) -> None:
    base = rows[0]["seconds"]
    print(f"\n{'method':<52}{'seconds':>9}{'x oipscope':>12}{'act > 0':>10}{'>= best img':>13}{'median ratio':>14}")
    for row in rows:
        beating = f"{row['beating']}/{row['maps']}" if "beating" in row else "-"
        median = f"{row['median_ratio']:.2f}" if "median_ratio" in row else "-"
        print(f"{row['method'][:51]:<52}{row['seconds']:>9.1f}{row['seconds'] / base:>12.1f}"
              f"{row['positive']:>6}/{row['maps']:<3}{beating:>13}{median:>14}")
    print(f"(steps {steps}; 'x oipscope': that method's time over the pipeline's)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layer", default="Conv2D_3")
    parser.add_argument("--maps", type=int, default=None, help="Only the first N maps (a quick run).")
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--seed-maps", type=int, default=3, help="Maps the series' loop is timed on.")
    parser.add_argument("--skip-tfkv", action="store_true", help="Leave tf-keras-vis out.")
    parser.add_argument("--tfkv-route", choices=("legacy", "keras3"), default="legacy",
                        help="legacy: a child process on tf_keras (what tf-keras-vis targets; falls back to "
                             "keras3 if that fails); keras3: in this process.")
    parser.add_argument("--images", default=None, help="Example image set (default: mnist if on disk).")
    args = parser.parse_args()

    import tensorflow as tf

    import oipscope

    print("devices:", ", ".join(f"{d.name} ({d.device_type})" for d in tf.config.list_logical_devices()))
    subject = oipscope.default_subject()
    sub = subject.feature_submodel(args.layer)
    n_maps = int(sub.outputs[0].shape[-1])
    maps = list(range(min(args.maps or n_maps, n_maps)))
    images_name = args.images or example_set_name()
    t = time.perf_counter()
    images = oipscope.open_images(images_name, subject.input_shape)
    examples = oipscope.dataset_examples(subject, args.layer, images)
    print(f"model {subject.name}  layer {args.layer}  maps {len(maps)}/{n_maps}  steps {args.steps}")
    print(f"examples: {images_name} ({examples.n_images} images, {time.perf_counter() - t:.1f} s)")

    rows = [run_pipeline(subject, args.layer, maps, args.steps, examples)]
    print(json.dumps(rows[-1]), flush=True)
    rows.append(run_series_loop(sub, maps, args.steps, args.seed_maps))
    print(json.dumps(rows[-1]), flush=True)
    if not args.skip_tfkv:
        rows.append(run_tfkv(subject, args.layer, maps, args.steps, examples, args.tfkv_route))
        print(json.dumps(rows[-1]), flush=True)
        if rows[-1]["model_mismatch"] > 1e-3:
            print(f"warning: tf-keras-vis' model differs from oipscope's by {rows[-1]['model_mismatch']:.2g}")

    print_table(rows, args.steps)
    for row, (name, target) in zip(rows[1:], TARGETS.items()):
        speedup = row["seconds"] / rows[0]["seconds"]
        print(f"target: pipeline >= {target:.0f}x {name}: {speedup:.1f}x  {'PASS' if speedup >= target else 'FAIL'}")


if __name__ == "__main__":
    main()
