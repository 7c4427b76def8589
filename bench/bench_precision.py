"""Precision and canvas: OIPs in bfloat16 against float32, and on a 128 against a 224 px canvas.

On the two trained ResNets of ``quality_models`` (64 px, grey and RGB), layer ``deepest_relu``:

- **precision**: the same maps found with ``Execution(precision="float32")`` and ``"bfloat16"``
  (the model computes in bfloat16; image, update and criteria stay float32). Every OIP is then
  measured with the float32 model. Targets: the median activation within 3 %, the median jitter
  robustness and high-frequency share within 0.05 of float32's.
- **canvas**: the RGB model's OIPs grown at 128 against 224 px (``OipConfig.canvas``; the layer's
  path is convolutional, so it computes at any size): time, activation and the quality numbers.

Both arms run side by side in one process; the CPU's SIMD and AMX are printed with the numbers::

    python bench/bench_precision.py [--quick] [--maps N] [--steps N] [--cache DIR]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import quality_models  # noqa: E402

ACTIVATION_TOLERANCE = 0.03
QUALITY_TOLERANCE = 0.05


def _float32_activations(subject, result) -> np.ndarray:
    """Each OIP's mean activation of its map, measured with the float32 model on its own canvas."""
    from oipscope.ascent.pixels import mean_activations
    from oipscope.config import Execution
    from oipscope.model.rebuild import rebuilt

    sub = rebuilt(subject.target_submodel(result.layer_name), result.canvas)
    images = np.stack([oip.image for oip in result.maps])
    return mean_activations(sub, images, [oip.map_index for oip in result.maps], Execution())


def _medians(subject, result) -> dict[str, float]:
    return {"activation": float(np.median(_float32_activations(subject, result))),
            "jitter": float(np.median([oip.jitter_robustness for oip in result.maps])),
            "hf": float(np.median([oip.hf_share for oip in result.maps])),
            "seconds": result.seconds}


def _arm(subject, maps: str, config, precision: str) -> dict[str, float]:
    from oipscope import Execution, find_oips

    result = find_oips(subject, quality_models.DEEPEST, maps, config, execution=Execution(precision=precision))
    return {**_medians(subject, result), "precision": result.precision, "canvas": result.canvas}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="8 maps, 80 steps, the RGB model only.")
    parser.add_argument("--maps", type=int, default=16, help="Maps per model (default 16).")
    parser.add_argument("--steps", type=int, default=300, help="Ascent steps (default 300).")
    parser.add_argument("--cache", default="~/.cache/oipscope-bench", help="Trained models.")
    args = parser.parse_args(argv)
    maps, steps = (8, 80) if args.quick else (args.maps, args.steps)
    kinds = ("rgb",) if args.quick else ("grey", "rgb")

    import oipscope
    from oipscope.ascent.precision import cpu_features

    features = cpu_features()
    print(f"CPU {features['cpu']}: AVX2 {features['avx2']}, AVX-512 {features['avx512']}, AMX {features['amx']}; "
          f"{os.cpu_count()} cores; {maps} maps, {steps} steps")
    config = oipscope.OipConfig(steps=steps)
    ok = True
    for kind in kinds:
        subject = oipscope.open_subject(quality_models.train_or_load(kind, args.cache).path)
        exact = _arm(subject, f"0-{maps - 1}", config, "float32")
        low = _arm(subject, f"0-{maps - 1}", config, "bfloat16")
        d_act = abs(low["activation"] - exact["activation"]) / max(abs(exact["activation"]), 1e-12)
        d_jit, d_hf = abs(low["jitter"] - exact["jitter"]), abs(low["hf"] - exact["hf"])
        fits = d_act <= ACTIVATION_TOLERANCE and d_jit <= QUALITY_TOLERANCE and d_hf <= QUALITY_TOLERANCE
        ok &= fits
        print(f"precision {kind}: float32 activation {exact['activation']:.4f} jitter {exact['jitter']:.3f} "
              f"hf {exact['hf']:.3f} {exact['seconds']:.1f} s | bfloat16 activation {low['activation']:.4f} "
              f"jitter {low['jitter']:.3f} hf {low['hf']:.3f} {low['seconds']:.1f} s | activation "
              f"{100 * d_act:.2f} % (<= 3 %), jitter {d_jit:.3f}, hf {d_hf:.3f} (<= 0.05): "
              f"{'within' if fits else 'OUTSIDE'}; bfloat16/float32 time {low['seconds'] / exact['seconds']:.2f}x")
    subject = oipscope.open_subject(quality_models.train_or_load("rgb", args.cache).path)
    sides = {}
    for side in (224, 128):
        sides[side] = _arm(subject, f"0-{maps - 1}", dataclasses.replace(config, canvas=side), "float32")
    big, small = sides[224], sides[128]
    print(f"canvas rgb: 224 px activation {big['activation']:.4f} jitter {big['jitter']:.3f} hf {big['hf']:.3f} "
          f"{big['seconds']:.1f} s | 128 px activation {small['activation']:.4f} jitter {small['jitter']:.3f} "
          f"hf {small['hf']:.3f} {small['seconds']:.1f} s | 128/224: activation "
          f"{small['activation'] / big['activation']:.3f}, time {small['seconds'] / big['seconds']:.2f}x")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
