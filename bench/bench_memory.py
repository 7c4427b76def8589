"""Peak resident memory and batch sizes of oipscope's passes on a 224 px CNN, at a memory budget.

Each pass runs in a fresh process (the peak of one must not hide another's): dataset examples
(the old default: 1024 images a batch), the forward measure of OIPs and the ascent, with the
batch sizes sized from ``--budget`` (oipscope.model.memory) against the old ones.

    python bench/bench_memory.py [--model vgg16|mobilenetv2] [--layer block3_conv3] [--budget 512] [--images 96]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

from _machine import describe_machine

CHILD = r"""
import ctypes, gc, json, os, sys, time
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import keras, numpy as np
from oipscope.config import Execution, OipConfig
from oipscope.model.memory import batch_for_budget

name, layer, budget, n_images, passage, batch = sys.argv[1:7]
budget, n_images, batch = float(budget), int(n_images), (None if batch == "auto" else int(batch))
build = {"vgg16": keras.applications.VGG16, "mobilenetv2": keras.applications.MobileNetV2}[name]
base = build(weights=None, include_top=False, input_shape=(224, 224, 3))
model = keras.Model(base.inputs, base.get_layer(layer).output)
images = np.random.default_rng(0).uniform(0, 255, (n_images, 224, 224, 3)).astype(np.float32)

def mb(field):
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith(field + ":")) / 1024

gc.collect(); ctypes.CDLL("libc.so.6").malloc_trim(0)
with open("/proc/self/clear_refs", "w") as fh:
    fh.write("5")
before, began = mb("VmRSS"), time.perf_counter()
execution = Execution(memory_budget_mb=budget)
if passage == "examples":
    from oipscope.analysis.examples import dataset_examples
    dataset_examples(model, layer, images, batch_size=batch, execution=execution)
    used = batch or batch_for_budget(model, budget, extra_bytes=12 * 224 * 224 * 3, limit=n_images)
else:
    from oipscope.search.pipeline import find_oips
    from oipscope.ascent.pixels import estimate_chunk_size
    find_oips(model, layer, list(range(4)), OipConfig(steps=3, precursor=False, restarts=0), execution=execution)
    used = estimate_chunk_size(model, 0, 3, budget)
print("RESULT " + json.dumps({"batch": used, "peak_mb": mb("VmHWM") - before, "seconds": time.perf_counter() - began}))
"""


def run(*args: str) -> dict:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run([sys.executable, "-c", CHILD, *map(str, args)], capture_output=True, text=True, env=env)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if not lines:
        sys.exit(proc.stderr[-3000:])
    return json.loads(lines[-1][len("RESULT "):])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="vgg16", choices=("vgg16", "mobilenetv2"))
    parser.add_argument("--layer", default="block3_conv3")
    parser.add_argument("--budget", type=float, default=512.0)
    parser.add_argument("--images", type=int, default=96)
    args = parser.parse_args()
    print(f"{args.model} up to {args.layer}, 224 px, budget {args.budget:g} MB, {describe_machine()}")
    common = (args.model, args.layer, args.budget, args.images)
    for label, passage, batch in (("examples, old default", "examples", 1024), ("examples, budget", "examples", "auto"),
                                  ("ascent (4 maps, 3 steps)", "ascent", "auto")):
        r = run(*common, passage, batch)
        print(f"{label:<26} batch {min(r['batch'], args.images):>5}  peak +{r['peak_mb']:7.0f} MB  {r['seconds']:6.1f} s")


if __name__ == "__main__":
    main()
