"""Time `oipscope zoo` with no arguments, phase by phase, against its 30-second target (issue 13).

Runs the zoo the way the command does (embedded model, one layer per convolution, the
embedded MNIST test images as examples, the gallery) into a temporary folder, as a fresh
process would (the start-up of TensorFlow and the model load are timed too), and prints
each phase's seconds and share, and the total as a fraction of the 30 s target.
``--images mnist`` streams the 60 000 training images instead (needs them on disk).

As the command does, each layer's gallery pages are drawn in a worker process while the
next layer is searched (``oipscope.gallery.worker.BackgroundGallery``); the gallery phase is
what is left to draw after the class OIPs. ``--serial-gallery`` draws the whole gallery after
the search instead, as before; ``--compare N`` runs both N times each, alternating, each in a
fresh process, and prints the ratio of the medians.

    python bench/bench_zoo.py [--out DIR] [--images NAME|PATH] [--serial-gallery] [--compare N]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

TARGET_SECONDS = 30.0


def run_once(out: Path, images: str = "mnist-test", serial_gallery: bool = False) -> dict[str, float]:
    """One whole zoo; seconds per phase."""
    phases: dict[str, float] = {}
    start = time.perf_counter()
    import oipscope  # noqa: F401 - the import and TensorFlow start-up are part of the job
    from oipscope.model.cnn import default_subject
    from oipscope.ascent.pixels import OipConfig
    from oipscope.data.imagesets import open_images
    from oipscope.model.loading import describe
    from oipscope.gallery.worker import BackgroundGallery
    from oipscope.gallery.site import Gallery
    from oipscope.runs.jobs import class_layer, run_classes, run_zoo

    subject = default_subject()
    image_set = open_images(images, subject.input_shape)
    phases["start-up, model, data"] = time.perf_counter() - start

    stage_seconds = {"OIPs": 0.0, "examples": 0.0}
    last = [time.perf_counter(), None]

    def on_progress(layer: str, stage: str, done: int, total: int) -> None:
        now = time.perf_counter()
        if last[1] is not None:
            stage_seconds[last[1]] += now - last[0]
        last[0], last[1] = now, stage

    def on_layer(name: str, index: int, total: int) -> None:
        now = time.perf_counter()
        if last[1] is not None:
            stage_seconds[last[1]] += now - last[0]
        last[0], last[1] = now, "OIPs"

    gallery = (Gallery if serial_gallery else BackgroundGallery)(out, (subject.name, describe(subject.model)),
                                                                 images=image_set)
    t = time.perf_counter()
    runs = run_zoo(subject, None, OipConfig(), out, images=image_set, on_layer=on_layer, on_progress=on_progress,
                   on_finished=None if serial_gallery else gallery.add)
    stage_seconds[last[1]] += time.perf_counter() - last[0]
    searched = time.perf_counter() - t
    phases["OIP search (all layers)"] = stage_seconds["OIPs"]
    phases["dataset examples + waking + assessing"] = searched - stage_seconds["OIPs"]

    t = time.perf_counter()
    classes = run_classes(subject, OipConfig(), out, layer_name=class_layer(subject.model))
    phases["class OIPs (classes.html)"] = time.perf_counter() - t

    t = time.perf_counter()
    if serial_gallery:
        for run in runs:
            gallery.add(run)
    gallery.finish(classes)
    phases["gallery (pages, cards, PNGs)" if serial_gallery else "gallery left after the search"] = \
        time.perf_counter() - t
    phases["total"] = time.perf_counter() - start
    return phases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="Keep the gallery here (default: a temp folder).")
    parser.add_argument("--images", default="mnist-test", help="The example images (default: the embedded set).")
    parser.add_argument("--serial-gallery", action="store_true", help="Draw the gallery after the search.")
    parser.add_argument("--compare", type=int, default=0, metavar="N",
                        help="Run both ways N times each, alternating, in fresh processes; print the ratio.")
    args = parser.parse_args()
    if args.compare:
        compare(args.compare, args.images)
        return
    with tempfile.TemporaryDirectory() as tmp:
        phases = run_once(args.out or Path(tmp) / "zoo", args.images, args.serial_gallery)
    total = phases["total"]
    for name, seconds in phases.items():
        share = "" if name == "total" else f"{seconds / total:6.1%}"
        print(f"{name:40s} {seconds:7.1f} s {share}")
    print(f"total / {TARGET_SECONDS:.0f} s target: {total / TARGET_SECONDS:.2f}")
    print(json.dumps({k: round(v, 2) for k, v in phases.items()}))


def compare(repeats: int, images: str) -> None:
    """Totals of the zoo with its gallery drawn alongside and after the search, side by side."""
    totals: dict[str, list[float]] = {"alongside": [], "after": []}
    for _ in range(repeats):
        for label, extra in (("alongside", []), ("after", ["--serial-gallery"])):
            done = subprocess.run([sys.executable, __file__, "--images", images, *extra],
                                  capture_output=True, text=True, check=True)
            phases = json.loads(done.stdout.strip().splitlines()[-1])
            totals[label].append(phases["total"])
            print(f"{label:10s} total {phases['total']:5.1f} s  {json.dumps(phases)}", flush=True)
    alongside, after = statistics.median(totals["alongside"]), statistics.median(totals["after"])
    print(f"median total: gallery alongside {alongside:.1f} s, after {after:.1f} s; "
          f"after / alongside {after / alongside:.2f}x")


if __name__ == "__main__":
    main()
