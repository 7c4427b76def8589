"""Stream all MNIST training images through dataset_examples; print speed and memory.

Memory must stay bounded by a few batches: the full Conv2D_3 activations of
60 000 images would take 60 000 × 3 × 3 × 128 × 4 B ≈ 276 MB.

    python bench/bench_examples.py [MODEL] [--layer Conv2D_3] [--batch-size 1024] [--limit N] [--no-tracemalloc]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
import tracemalloc
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from oipscope.cnn import default_model_path  # noqa: E402
from oipscope.data import load_dataset  # noqa: E402
from oipscope.examples import dataset_examples  # noqa: E402
from oipscope.models import get_layer, load_model  # noqa: E402

FALLBACK_MODEL = Path("/tmp/default_model/mnist_cnn.keras")


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", type=Path, default=None)
    parser.add_argument("--layer", default="Conv2D_3")
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--limit", type=int, default=None, help="Use only the first N training images.")
    parser.add_argument("--no-tracemalloc", action="store_true", help="Skip the second, traced run.")
    args = parser.parse_args()
    model_path = args.model or (default_model_path() if default_model_path().is_file() else FALLBACK_MODEL)
    model = load_model(model_path)
    split = load_dataset("mnist").train
    images, labels = split.images[: args.limit], split.labels[: args.limit]
    dataset_examples(model, args.layer, images[:64], labels[:64], batch_size=64)  # trace once

    rss_before = _rss_mb()
    start = time.perf_counter()
    result = dataset_examples(model, args.layer, images, labels, batch_size=args.batch_size)
    seconds = time.perf_counter() - start
    rss_after = _rss_mb()
    out_shape = tuple(get_layer(model, args.layer).output.shape[1:])
    row = {
        "layer": args.layer, "images": len(images), "batch_size": args.batch_size,
        "seconds": round(seconds, 2), "images_per_s": round(len(images) / seconds),
        "peak_rss_mb_before": round(rss_before), "peak_rss_mb_after": round(rss_after),
        "peak_rss_growth_mb": round(rss_after - rss_before, 1),
        "full_activations_mb": round(len(images) * int(np.prod(out_shape)) * 4 / 2**20, 1),
        "silent_maps": int(len(result.silent_maps)), "cores": os.cpu_count(),
    }
    if not args.no_tracemalloc:
        tracemalloc.start()
        dataset_examples(model, args.layer, images, labels, batch_size=args.batch_size)
        row["tracemalloc_peak_mb"] = round(tracemalloc.get_traced_memory()[1] / 2**20, 1)
        tracemalloc.stop()
    print(json.dumps(row))
    print(f"{args.layer}: {len(images)} images in {seconds:.1f} s = {len(images) / seconds:,.0f} images/s; "
          f"peak RSS {rss_after:.0f} MB (+{rss_after - rss_before:.1f} MB during the run); "
          f"Python/NumPy peak {row.get('tracemalloc_peak_mb', 'n/a')} MB; "
          f"full activations would be {row['full_activations_mb']} MB")


if __name__ == "__main__":
    main()
