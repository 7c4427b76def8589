"""Stream image sets through dataset_examples side by side; print speed and memory per set.

Memory must stay bounded by a few batches whatever the set's size: the full Conv2D_3
activations of 60 000 images would take 60 000 × 3 × 3 × 128 × 4 B ≈ 276 MB, and a folder
of images is decoded batch by batch. ``--png-folder DIR`` first writes the embedded 10 000
MNIST test images as PNG files in class sub-folders there (if it is empty), so a folder of
files can be timed against the same images in memory.

    python bench/bench_examples.py [MODEL] [--layer Conv2D_3] [--images mnist-test,mnist]
                                   [--png-folder DIR] [--batch-size 1024]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from oipscope.model.cnn import default_subject  # noqa: E402
from oipscope.analysis.examples import dataset_examples  # noqa: E402
from oipscope.data.imagesets import embedded_examples, open_images  # noqa: E402
from oipscope.model.subject import open_subject  # noqa: E402


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def write_png_folder(folder: Path) -> None:
    """The embedded MNIST test split as PNG files, one sub-folder per class."""
    from PIL import Image

    examples = embedded_examples()
    for index in range(len(examples)):
        target = folder / str(int(examples.labels[index])) / f"{index:05d}.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(examples[index][..., 0].astype(np.uint8)).save(target)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", type=Path, default=None)
    parser.add_argument("--layer", default="Conv2D_3")
    parser.add_argument("--images", default="mnist-test,mnist", help="Comma-separated sets or paths.")
    parser.add_argument("--png-folder", type=Path, default=None, help="Also stream this folder of PNGs.")
    parser.add_argument("--batch-size", type=int, default=1024)
    args = parser.parse_args()
    subject = open_subject(args.model) if args.model else default_subject()
    specs = [spec for spec in args.images.split(",") if spec]
    if args.png_folder is not None:
        if not args.png_folder.is_dir() or not any(args.png_folder.iterdir()):
            write_png_folder(args.png_folder)
        specs.append(str(args.png_folder))
    dataset_examples(subject, args.layer, np.zeros((8, *subject.input_shape), np.uint8), batch_size=8)  # trace
    rows = []
    for spec in specs:
        images = open_images(spec, subject.input_shape)
        rss_before = _rss_mb()
        start = time.perf_counter()
        result = dataset_examples(subject, args.layer, images, batch_size=args.batch_size)
        seconds = time.perf_counter() - start
        rows.append({"images": spec, "n": result.n_images, "seconds": round(seconds, 2),
                     "images_per_s": round(result.n_images / seconds), "peak_rss_mb": round(_rss_mb()),
                     "peak_rss_growth_mb": round(_rss_mb() - rss_before, 1), "skipped": len(images.skipped),
                     "silent_maps": int(len(result.silent_maps))})
        print(json.dumps(rows[-1]), flush=True)
    for row in rows:
        ratio = f"  ({row['seconds'] / rows[0]['seconds']:.2f}x the first)" if row is not rows[0] else ""
        print(f"{args.layer}: {row['images']:<28} {row['n']:>6} images in {row['seconds']:6.1f} s = "
              f"{row['images_per_s']:>7,} images/s; peak RSS {row['peak_rss_mb']} MB "
              f"(+{row['peak_rss_growth_mb']} MB){ratio}")


if __name__ == "__main__":
    main()
