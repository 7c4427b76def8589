"""The peers the benchmarks measure oipscope against: the series' eager loop and tf-keras-vis.

- :func:`seed_loop`: the series' one-map loop (an eager GradientTape per step on one
  image, RMS-normalized gradient, re-standardization), as in ``/work/shared/seed``.
- :func:`tfkv_maximize`: tf-keras-vis ``ActivationMaximization`` with its defaults
  (regularizers, input modifiers, RMSprop optimizer, input range 0..255), one map per
  sample of one batch. ``route="legacy"`` runs it in a child process on the Keras it was
  written for (``TF_USE_LEGACY_KERAS=1``, the sub-model rebuilt in ``tf_keras`` with the
  same weights); ``route="keras3"`` runs it here on Keras 3, which it also accepts.

The child is this file: ``python bench/_peers.py tfkv SPEC.npz OUT.npz``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["seed_loop", "tfkv_maximize"]


def seed_loop(sub, image, map_index: int, steps: int, epsilon: float) -> float:
    """The seed's loop: eager GradientTape per step, one map."""
    import tensorflow as tf

    x = tf.constant(image[None])
    loss = 0.0
    for _ in range(steps):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_mean(sub(x, training=False)[..., map_index])
        g = tape.gradient(loss, x)
        g /= tf.sqrt(tf.reduce_mean(tf.square(g))) + 1e-7
        x = tf.image.per_image_standardization(x + epsilon * g)
    return float(loss)


# ---- tf-keras-vis ------------------------------------------------------------------------------

def _pixel_model(keras_module, feature_model, encoding):
    """Pixels 0..255 → the model's encoding → the feature maps: what tf-keras-vis' defaults expect."""
    h, w, c = (int(d) for d in feature_model.inputs[0].shape[1:])
    inputs = keras_module.Input((h, w, c))
    encoded = keras_module.layers.Lambda(lambda t: encoding.encode(t), name="encode")(inputs)
    return keras_module.Model(inputs, feature_model(encoded))


def _run_tfkv(model, maps: np.ndarray, steps: int, seed: int) -> tuple[np.ndarray, float, float]:
    """tf-keras-vis on ``model`` (pixels in): final images, seconds of the timed call, and of the warm-up."""
    import warnings

    import tensorflow as tf
    from tf_keras_vis.activation_maximization import ActivationMaximization

    warnings.filterwarnings("ignore")  # Keras 3 warns about the list tf-keras-vis passes as inputs
    np.random.seed(seed)  # its Jitter draws from NumPy's global generator
    maps_t = tf.constant(maps, tf.int32)

    def score(output):  # sample b scores map maps[b]; tf-keras-vis averages it over H×W per sample
        return tf.gather(output, maps_t, axis=-1, batch_dims=1)

    h, w, c = (int(d) for d in model.inputs[0].shape[1:])
    # its default seed input is uniform over the input range (0, 255), one image; we draw one per map
    seeds = np.random.default_rng(seed).uniform(0, 255, (len(maps), h, w, c)).astype(np.float32)
    visualize = ActivationMaximization(model, clone=False)
    t = time.perf_counter()
    visualize(score, seed_input=seeds, steps=2)  # warm-up: kernels and the optimizer's slots
    warm = time.perf_counter() - t
    t = time.perf_counter()
    images = visualize(score, seed_input=seeds, steps=steps)
    seconds = time.perf_counter() - t
    return np.asarray(images, np.float32), seconds, warm


def _sequential_spec(feature_model) -> list[tuple[str, dict]]:
    """(class name, config) of each layer after the input; configs without Keras-3-only entries."""
    skip = ("dtype", "trainable")
    spec = []
    for layer in feature_model.layers:
        kind = type(layer).__name__
        if kind == "InputLayer":
            continue
        cfg = {k: v for k, v in layer.get_config().items()
               if k not in skip and not k.endswith(("_initializer", "_regularizer", "_constraint"))}
        spec.append((kind, cfg))
    return spec


def _rebuild_legacy(spec: list[tuple[str, dict]], weights: list[np.ndarray], input_shape: tuple[int, ...]):
    """The feature sub-model as a tf_keras Sequential with the given weights (a chain of layers only)."""
    import tf_keras

    model = tf_keras.Sequential([tf_keras.Input(input_shape)])
    for kind, cfg in spec:
        model.add(getattr(tf_keras.layers, kind).from_config(cfg))
    model.set_weights(weights)
    return model


def tfkv_maximize(feature_model, encoding, maps: Sequence[int], steps: int, *, route: str = "legacy",
                  seed: int = 0) -> dict[str, Any]:
    """tf-keras-vis' activation maximization of ``maps`` (one per sample, one batch).

    Returns a dict: ``images`` (N, H, W, C) pixels 0..255, ``seconds`` (the timed call),
    ``route`` (the route taken: "legacy" or "keras3", and why if it fell back), and
    ``own_activations`` (the maps' mean activations as the route's own model computes them,
    to check that a rebuilt model is the same).
    """
    maps = np.asarray(list(maps), np.int32)
    if route == "legacy":
        try:
            return _legacy_in_child(feature_model, encoding, maps, steps, seed)
        except (RuntimeError, ValueError, KeyError, TypeError) as exc:
            fallback = tfkv_maximize(feature_model, encoding, maps, steps, route="keras3", seed=seed)
            fallback["route"] = f"keras3 (legacy route failed: {str(exc).strip().splitlines()[-1][:160]})"
            return fallback
    if route != "keras3":
        raise ValueError(f"route must be 'legacy' or 'keras3', got {route!r}")
    import keras

    model = _pixel_model(keras, feature_model, encoding)
    images, seconds, warm = _run_tfkv(model, maps, steps, seed)
    own = _own_activations(model, images, maps)
    return {"images": images, "seconds": seconds, "warm_up_seconds": warm, "route": "keras3",
            "own_activations": own}


def _own_activations(model, images: np.ndarray, maps: np.ndarray) -> np.ndarray:
    out = np.asarray(model(images, training=False))
    return out[np.arange(len(maps)), :, :, maps].mean(axis=(1, 2)).astype(np.float32)


def _legacy_in_child(feature_model, encoding, maps: np.ndarray, steps: int, seed: int) -> dict[str, Any]:
    spec = _sequential_spec(feature_model)
    shape = tuple(int(d) for d in feature_model.inputs[0].shape[1:])
    with tempfile.TemporaryDirectory(prefix="oipscope-tfkv-") as tmp:
        spec_file, out_file = Path(tmp) / "spec.npz", Path(tmp) / "out.npz"
        weights = feature_model.get_weights()
        meta = {"layers": spec, "input_shape": shape, "encoding": encoding.to_dict(), "steps": steps,
                "seed": seed, "n_weights": len(weights)}
        np.savez(spec_file, meta=np.array(json.dumps(meta)), maps=maps,
                 **{f"w{i}": w for i, w in enumerate(weights)})
        env = {**os.environ, "TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
        proc = subprocess.run([sys.executable, __file__, "tfkv", str(spec_file), str(out_file)],
                              capture_output=True, text=True, env=env, check=False)
        if proc.returncode != 0 or not out_file.is_file():
            raise RuntimeError(proc.stderr.strip() or f"child exited with {proc.returncode}")
        with np.load(out_file) as out:
            return {"images": out["images"], "seconds": float(out["seconds"]),
                    "warm_up_seconds": float(out["warm_up_seconds"]), "route": "legacy",
                    "own_activations": out["own_activations"]}


def _child(spec_file: str, out_file: str) -> None:
    """tf-keras-vis on tf_keras (Keras 2), the sub-model rebuilt from ``spec_file``."""
    import tensorflow as tf
    import tf_keras

    if not tf.keras.__name__.startswith("tf_keras"):
        raise RuntimeError(f"tf.keras is {tf.keras.__name__}, not tf_keras: set TF_USE_LEGACY_KERAS=1")
    from oipscope.model.encoding import InputEncoding

    with np.load(spec_file) as spec:
        meta = json.loads(str(spec["meta"]))
        maps = spec["maps"]
        weights = [spec[f"w{i}"] for i in range(meta["n_weights"])]
    feature_model = _rebuild_legacy(meta["layers"], weights, tuple(meta["input_shape"]))
    model = _pixel_model(tf_keras, feature_model, InputEncoding.from_dict(meta["encoding"]))
    images, seconds, warm = _run_tfkv(model, maps, meta["steps"], meta["seed"])
    np.savez(out_file, images=images, seconds=seconds, warm_up_seconds=warm,
             own_activations=_own_activations(model, images, maps))


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "tfkv":
        _child(sys.argv[2], sys.argv[3])
    else:
        sys.exit("usage: python bench/_peers.py tfkv SPEC.npz OUT.npz")
