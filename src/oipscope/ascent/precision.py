"""Which precision the model computes in during an ascent: ``Execution.precision``.

``float32`` is the series' arithmetic. ``bfloat16`` and ``float16`` compute the model
with a Keras mixed policy (float32 weights, low-precision arithmetic) while the image,
its update and the convergence criteria stay float32 (:func:`oipscope.model.rebuild.rebuilt`).

``auto`` (the default) chooses per machine and layer:

- a sub-model of less than :data:`MIN_PROBED_MACS` multiply-adds per image (e.g. the
  series' CNN) computes in float32 without a probe, so its OIPs stay bit-identical;
- on a GPU: bfloat16 from compute capability 8.0 (Ampere), float16 from 7.0, else float32;
- on a CPU, a short timed probe of one input-gradient step in float32 and in bfloat16:
  bfloat16 where it is at least :data:`MIN_SPEEDUP` times faster and the layer's output
  agrees within :data:`AGREEMENT` (relative), else float32. Measured on VGG16: about 5× faster
  with AMX, about 2× on an AVX-512 CPU with AVX512_BF16; on AVX2 alone it can be slower.

The probe's verdict is cached per machine (CPU model and SIMD flags, or the GPU) and layer
shape in ``precision.json`` under :func:`cache_dir` (``$OIPSCOPE_CACHE_DIR``, else
``$XDG_CACHE_HOME/oipscope``, else ``~/.cache/oipscope``).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import time
from pathlib import Path
from typing import Callable

import numpy as np

from ..model.rebuild import PRECISIONS, rebuilt

__all__ = ["MIN_PROBED_MACS", "MIN_SPEEDUP", "AGREEMENT", "cache_dir", "cpu_features", "machine_key",
           "multiply_adds", "resolve_precision", "probe", "PRECISIONS"]

MIN_PROBED_MACS = 200_000_000
"""Below this many multiply-adds per image a sub-model computes in float32 (no probe)."""
MIN_SPEEDUP = 1.25
"""How much faster bfloat16 must be for ``auto`` to take it."""
AGREEMENT = 0.03
"""Largest relative difference of the layer's output (bfloat16 against float32) ``auto`` accepts."""
_CACHE_FILE = "precision.json"


def cache_dir() -> Path:
    """Where oipscope caches what it measured about this machine."""
    if os.environ.get("OIPSCOPE_CACHE_DIR"):
        return Path(os.environ["OIPSCOPE_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "oipscope"


def cpu_features() -> dict[str, object]:
    """The CPU's model name and whether it has AVX2, AVX-512 and AMX (from /proc/cpuinfo on Linux)."""
    name, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and value.strip():
                name = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
                break
    except OSError:
        pass
    return {"cpu": name, "avx2": "avx2" in flags, "avx512": "avx512f" in flags,
            "amx": bool({"amx_bf16", "amx_tile"} & flags)}


def _gpu_capability() -> tuple[str, tuple[int, int]] | None:
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return None
    details = tf.config.experimental.get_device_details(gpus[0])
    return str(details.get("device_name", "GPU")), tuple(details.get("compute_capability") or (0, 0))


def machine_key() -> str:
    """What the probe's verdict depends on: the CPU (model, SIMD) or GPU, TensorFlow and oneDNN."""
    import tensorflow as tf

    from ..backend import onednn_enabled

    gpu = _gpu_capability()
    parts = {"tf": tf.__version__, "onednn": onednn_enabled(), **cpu_features()}
    if gpu:
        parts["gpu"] = [gpu[0], list(gpu[1])]
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def multiply_adds(sub) -> int:
    """Multiply-adds of one image through the sub-model's convolutions and dense layers."""
    total = 0
    for layer in sub.layers:
        kernel = getattr(layer, "kernel", None)
        if kernel is None or not hasattr(layer, "output"):
            continue
        try:
            out = layer.output.shape
        except (AttributeError, ValueError):
            continue
        spatial = int(np.prod([d for d in out[1:-1] if d is not None])) if len(out) > 2 else 1
        total += spatial * int(np.prod(kernel.shape)) // max(1, int(getattr(layer, "groups", 1) or 1))
    return total


def _layer_key(sub, batch: int) -> str:
    return "|".join([sub.name, str(tuple(sub.inputs[0].shape[1:])), str(tuple(sub.outputs[0].shape[1:])),
                     str(sub.count_params()), str(batch)])


def _step_timer(model, images: np.ndarray) -> Callable[[], float]:
    import tensorflow as tf

    x = tf.constant(images)

    @tf.function(autograph=False, reduce_retracing=True)
    def step(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            value = tf.reduce_mean(model(x, training=False))
        return tape.gradient(value, x)

    def timed() -> float:
        t0 = time.perf_counter()
        step(x).numpy()
        return time.perf_counter() - t0

    return timed


def probe(sub, batch: int = 2, repeats: int = 3, seed: int = 0) -> dict[str, float]:
    """Time one input-gradient step of ``sub`` in float32 and bfloat16 and compare their outputs.

    Returns:
        ``{"float32": s, "bfloat16": s, "difference": relative L2 difference of the outputs}``
        (seconds: the median of ``repeats`` after one warm-up step).
    """
    shape = (batch, *(int(d) for d in sub.inputs[0].shape[1:]))
    images = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    low = rebuilt(sub, None, "bfloat16")
    out = {}
    for name, model in (("float32", sub), ("bfloat16", low)):
        timed = _step_timer(model, images)
        timed()
        out[name] = float(np.median([timed() for _ in range(repeats)]))
    a = np.asarray(sub(images, training=False), np.float64)
    b = np.asarray(low(images, training=False), np.float64)
    out["difference"] = float(np.linalg.norm(a - b) / max(np.linalg.norm(a), 1e-12))
    return out


def _read_cache(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _write_cache(path: Path, data: dict) -> None:
    try:
        from ..files import atomic_write

        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda fh: fh.write(json.dumps(data, indent=1, sort_keys=True).encode()))
    except OSError:
        pass  # a read-only home: the probe runs again next time


def resolve_precision(precision: str, sub, batch: int = 2) -> str:
    """The precision ``sub`` computes in: ``precision`` itself, or for ``"auto"`` the machine's choice.

    Args:
        precision: one of :data:`PRECISIONS`.
        sub: the sub-model the ascent climbs (at its canvas size).
        batch: the images per probe step.
    """
    if precision != "auto":
        return precision
    if multiply_adds(sub) < MIN_PROBED_MACS:
        return "float32"
    gpu = _gpu_capability()
    if gpu is not None:
        capability = gpu[1]
        return "bfloat16" if capability >= (8, 0) else "float16" if capability >= (7, 0) else "float32"
    path = cache_dir() / _CACHE_FILE
    data = _read_cache(path)
    machine = data.setdefault(machine_key(), {})
    key = _layer_key(sub, batch)
    if key not in machine:
        measured = probe(sub, batch)
        faster = measured["float32"] >= MIN_SPEEDUP * measured["bfloat16"]
        machine[key] = {**measured, "verdict": "bfloat16" if faster and measured["difference"] <= AGREEMENT
                        else "float32"}
        _write_cache(path, data)
    return str(machine[key]["verdict"])
