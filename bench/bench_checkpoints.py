"""Benchmark: OIPs of two checkpoints of one architecture, the second in the first one's traces (issue 13).

Finds the OIPs of the same maps of every convolution of the embedded CNN, then, in the
same process, of a copy with other weights (another "checkpoint") in the compiled loops
traced for the first model (:mod:`oipscope.ascent.traces`), and of that copy loaded again
and traced anew, as every model was before; prints the seconds and compiled loops of the two
copies and their ratio.

    python bench/bench_checkpoints.py [--maps 0-15] [--steps 600]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--maps", default="0-15")
    ap.add_argument("--steps", type=int, default=600)
    args = ap.parse_args()

    import numpy as np

    from oipscope.ascent import traces as architecture
    from oipscope.model.cnn import default_model_path
    from oipscope.config import OipConfig
    from oipscope.model.layers import default_layers
    from oipscope.model.loading import load_model
    from oipscope.search.pipeline import find_oips

    def checkpoint(seed: int):  # the embedded CNN with its weights moved a little
        model = load_model(default_model_path())
        rng = np.random.default_rng(seed)
        for variable in model.trainable_variables:
            variable.assign(variable.numpy() * rng.uniform(0.9, 1.1, tuple(variable.shape)).astype(np.float32))
        return model

    first = load_model(default_model_path())
    layers = default_layers(first)
    config = OipConfig(steps=args.steps)

    def search(model) -> tuple[float, int]:
        before = len(architecture._SHARED)
        start = time.perf_counter()
        for layer in layers:
            find_oips(model, layer, args.maps, config)
        return time.perf_counter() - start, len(architecture._SHARED) - before

    search(first)  # the process's first traces and runs
    shared, made = search(checkpoint(1))
    architecture._SHARED.clear()  # as before: a new model is traced anew
    alone, made_alone = search(checkpoint(1))  # the same weights: the same OIPs, the same work
    print(f"layers {', '.join(layers)}, maps {args.maps}, {args.steps} steps")
    print(f"checkpoint in the first model's traces: {shared:6.1f} s, {made} compiled loops made")
    print(f"checkpoint traced anew (as before)    : {alone:6.1f} s, {made_alone} compiled loops made")
    print(f"anew / shared: {alone / shared:.2f}x")


if __name__ == "__main__":
    main()
