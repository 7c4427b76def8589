"""Is oipscope ready for this accelerator? One short run that checks and times it.

It prints the device TensorFlow uses, then, on that device:

1. runs every ascent loop there: the pixel loop (``find``), the parameter loop (``--robust``)
   and Deep Dream; each runs its steps inside compiled ``tf.function`` loops (no host round
   trip per step), and the check counts the host calls per ascent;
2. times one input-gradient step per map in float32 against bfloat16 and float16 for
   ``keras.applications.VGG16(weights=None)`` up to ``block4_conv3`` at 224 px, and a 64-map
   ``find`` of that layer in float32 and with ``--precision auto``;
3. checks the device's OIPs against a CPU run of the same search (the embedded CNN, 40 steps):
   decoded pixels within the contract of :mod:`oipscope.backend` for a GPU (``rtol`` 1e-3,
   ``atol`` 0.05 grey levels, on the maps' activations; the images within 2 grey levels at the 99th
   percentile, since rounding grows along an ascent).

Under 8 minutes on one GPU. ``--cpu`` runs it on the CPU (GPUs hidden); ``--quick`` shrinks every
size (VGG16 at 64 px, 8 maps, few steps) for a test. Exit code 0: all checks passed::

    python bench/device_check.py [--cpu] [--quick]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
if "--cpu" in sys.argv[1:]:
    os.environ["CUDA_VISIBLE_DEVICES"] = "-1"  # before TensorFlow starts

import numpy as np  # noqa: E402

ACTIVATION_RTOL = 1e-3
PIXEL_P99 = 2.0


def _device() -> str:
    import tensorflow as tf

    gpus = tf.config.list_logical_devices("GPU")
    return gpus[0].name if gpus else tf.config.list_logical_devices("CPU")[0].name


def _counting_calls():
    """Count the host calls of the pixel loop's compiled segments (one per segment of steps)."""
    from oipscope.ascent import pixels

    calls = [0]
    original = pixels._get_segment

    def counted(*args, **kwargs):
        segment = original(*args, **kwargs)

        def call(*a, **k):
            calls[0] += 1
            return segment(*a, **k)

        return call

    pixels._get_segment = counted
    return calls, lambda: setattr(pixels, "_get_segment", original)


def check_loops(steps: int) -> bool:
    """The three loops on the device; the pixel loop's host calls per ascent."""
    import oipscope
    from oipscope.analysis.dream import DreamConfig, dream

    subject = oipscope.default_subject()
    layer = "Conv2D_3"
    calls, restore = _counting_calls()
    try:
        t = time.perf_counter()
        pixel = oipscope.find_oips(subject, layer, "0-7", oipscope.OipConfig(steps=steps, restarts=0))
        pixel_s = time.perf_counter() - t
    finally:
        restore()
    t = time.perf_counter()
    robust = oipscope.find_oips(subject, layer, "0-7", oipscope.OipConfig.robust(steps=steps, restarts=0))
    robust_s = time.perf_counter() - t
    t = time.perf_counter()
    image = np.random.default_rng(0).uniform(0, 255, (28, 28)).astype(np.float32)
    dreamed = dream(subject, image, layer, "0-3", DreamConfig(octaves=2, steps=steps))
    dream_s = time.perf_counter() - t
    segments = max(1, calls[0])
    ok = calls[0] * 4 <= steps * 8 and all(np.isfinite(m.activation) for m in pixel.maps + robust.maps)
    print(f"loops: pixel loop {pixel_s:.1f} s ({calls[0]} host calls for 8 OIPs x {steps} steps: "
          f"{steps * 8 / segments:.0f} OIP-steps per call), parameter loop {robust_s:.1f} s, dream {dream_s:.1f} s "
          f"(activation {dreamed.start_activation:.3f} -> {dreamed.activations[-1]:.3f}): {'ok' if ok else 'FAILED'}")
    return ok


def time_precisions(size: int, batch: int) -> dict[str, float]:
    """Seconds per map-step of one input-gradient step of VGG16 up to block4_conv3, per precision."""
    import keras

    from oipscope.ascent.precision import _step_timer
    from oipscope.model.rebuild import rebuilt

    vgg = keras.applications.VGG16(weights=None, include_top=False, input_shape=(size, size, 3))
    sub = keras.Model(vgg.inputs, vgg.get_layer("block4_conv3").output)
    images = np.random.default_rng(0).standard_normal((batch, size, size, 3)).astype(np.float32)
    out = {}
    for precision in ("float32", "bfloat16", "float16"):
        try:
            timed = _step_timer(rebuilt(sub, None, precision), images)
            timed()
            out[precision] = float(np.median([timed() for _ in range(3)])) / batch
        except Exception as exc:  # noqa: BLE001 - a precision the device lacks is reported, not fatal
            print(f"  {precision}: not run ({type(exc).__name__}: {str(exc)[:120]})")
    return out


def time_find(size: int, maps: int, steps: int) -> dict[str, tuple[float, str]]:
    """A ``maps``-map find of VGG16's block4_conv3 in float32 and with precision auto."""
    import keras

    import oipscope

    vgg = keras.applications.VGG16(weights=None, include_top=False, input_shape=(size, size, 3))
    subject = oipscope.Subject(vgg, oipscope.InputEncoding.preset("caffe"))
    config = oipscope.OipConfig(steps=steps, restarts=0, n_candidates=4, rescue_steps=0, warmup_round_steps=0,
                                canvas=size)
    out = {}
    for precision in ("float32", "auto"):
        t = time.perf_counter()
        result = oipscope.find_oips(subject, "block4_conv3", f"0-{maps - 1}", config,
                                    execution=oipscope.Execution(precision=precision))
        out[precision] = (time.perf_counter() - t, result.precision)
    return out


def check_against_cpu(steps: int) -> bool:
    """The embedded CNN's OIPs on the device against the same search on the CPU."""
    import tensorflow as tf

    import oipscope

    subject = oipscope.default_subject()
    config = oipscope.OipConfig(steps=steps, restarts=0)
    found = oipscope.find_oips(subject, "Conv2D_3", "0-15", config)
    with tf.device("/CPU:0"):
        cpu = oipscope.find_oips(subject, "Conv2D_3", "0-15", config)
    act = np.array([m.activation for m in found.maps])
    act_cpu = np.array([m.activation for m in cpu.maps])
    pixels = np.abs(np.asarray(subject.encoding.decode(np.stack([m.image for m in found.maps])))
                    - np.asarray(subject.encoding.decode(np.stack([m.image for m in cpu.maps]))))
    p99 = float(np.percentile(pixels, 99))
    ok = bool(np.allclose(act, act_cpu, rtol=ACTIVATION_RTOL, atol=0.05)) and p99 <= PIXEL_P99
    print(f"against the CPU: activations within rtol {ACTIVATION_RTOL} (largest relative difference "
          f"{float(np.max(np.abs(act - act_cpu) / np.maximum(np.abs(act_cpu), 1e-9))):.2e}), pixels 99th "
          f"percentile {p99:.3f} grey levels (<= {PIXEL_P99}): {'ok' if ok else 'FAILED'}")
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu", action="store_true", help="Run on the CPU (GPUs hidden).")
    parser.add_argument("--quick", action="store_true", help="Tiny sizes: VGG16 at 64 px, 8 maps, few steps.")
    args = parser.parse_args(argv)
    size, batch, maps, steps, find_steps = (64, 2, 8, 12, 6) if args.quick else (224, 16, 64, 40, 100)
    started = time.perf_counter()
    import tensorflow as tf

    from oipscope.ascent.precision import cpu_features
    from oipscope.backend import reproducibility

    features = cpu_features()
    print(f"device: {_device()}; TensorFlow {tf.__version__}; backend contract: {reproducibility()}")
    print(f"CPU {features['cpu']}: AVX2 {features['avx2']}, AVX-512 {features['avx512']}, AMX {features['amx']}")
    ok = check_loops(steps)
    per_step = time_precisions(size, batch)
    base = per_step.get("float32")
    print(f"VGG16 block4_conv3 at {size} px, batch {batch}, per map-step: " + ", ".join(
        f"{name} {1000 * s:.1f} ms ({base / s:.2f}x)" for name, s in per_step.items()))
    finds = time_find(size, maps, find_steps)
    print(f"find {maps} maps of block4_conv3 at {size} px, {find_steps} steps: " + ", ".join(
        f"{name} {s:.1f} s (ran in {used})" for name, (s, used) in finds.items()))
    ok &= check_against_cpu(steps)
    print(f"{'all checks passed' if ok else 'a check FAILED'} in {time.perf_counter() - started:.0f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
