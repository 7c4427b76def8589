"""How readable OIPs are: the series' method, the robust preset and tf-keras-vis, side by side.

On the same maps of one layer per model, three methods:

- **series**: ``find_oips(subject, layer, maps, OipConfig())``, the series' method (the default);
- **robust**: ``OipConfig.robust()``, the readable preset (transforms, Fourier image, Adam, ...);
  "not available" while oipscope has none, and the other columns still run;
- **tf-keras-vis**: ``ActivationMaximization`` with its defaults (``_peers.tfkv_maximize``);
  its pixel images are encoded into the model's input encoding and measured with the same
  functions as oipscope's OIPs.

Per method: median activation, maps with positive activation, median superstimulus ratio
(the OIP's activation ÷ the best image of the data set, ``oipscope.superstimulus_ratio``),
median jitter robustness and high-frequency share (``oipscope.search.quality``), and wall time
(after a short warm-up call that traces the compiled loops). NaN ratios and jitter values
(a map silent on the data, an OIP that does not drive its map) are left out of the medians.

Models (``bench/quality_models.py``):

- ``embedded``: the series' MNIST CNN, its last convolution; examples: MNIST (the training
  set if on disk, else the embedded test set);
- ``grey``: a 64×64 grey ResNet (BatchNormalization, residual blocks, ``Rescaling(1/255)``)
  trained on Fashion-MNIST, layer ``deepest_relu``; examples: the Fashion-MNIST test set;
- ``rgb``: a 64×64 RGB ResNet (``Rescaling`` onto [-1, 1]) trained on synthetic images,
  layer ``deepest_relu``; examples: a held-out synthetic set;
- ``sep``: a 64×64 grey CNN of separable convolutions with BatchNormalization that takes
  [-1, 1] (given as its encoding), trained on Fashion-MNIST;
- ``big``: a 160×160 RGB CNN (``Rescaling(1/255)``) trained on the synthetic shapes at 160 px.

Columns per model: the series' method; on the trained models the robust preset with a free
contrast (the sigmoid as it was, ``--no-old`` leaves it out), the robust preset, and on RGB
models the default a user gets (``--method auto`` with the data set as ``--images``: the
colour matrix measured from it). Besides the numbers above: the high-frequency share's ratio
to the series', the share of decoded pixels at 0 or 255, and the median HSV saturation of the
OIPs and its ratio to the data set's images'.

The models are trained on the first run (under 2 min each on 2 cores) and cached in
``--cache``. Targets (issue 26), for the default method on the models above 32 px, over the
live maps (those whose series OIP has activation > 0): median jitter robustness >= 0.9, median
high-frequency share <= 0.6 x the series method's, at most 5 % of pixels at a bound, activation
> 0 on every live map, and on RGB models a median saturation at most 1.4 x the images'.

    python bench/bench_quality.py [--models embedded,grey,rgb,sep,big] [--maps 12] [--steps N]
                                  [--cache DIR] [--no-tfkv] [--no-old] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import quality_models  # noqa: E402
from _peers import tfkv_maximize  # noqa: E402

MODELS = ("embedded", "grey", "rgb", "sep", "big")
DEFAULT_MAPS = 12
DEFAULT_CACHE = "~/.cache/oipscope-bench"
TFKV_DEFAULT_STEPS = 200  # ActivationMaximization.__call__'s default
JITTER_TARGET = 0.9
HF_TARGET = 0.6
BOUND_TARGET = 0.05
SATURATION_TARGET = 1.4
_MERGES = {"Add", "Concatenate", "Multiply", "Subtract", "Average", "Maximum", "Minimum", "Dot"}


@dataclass
class Study:
    """One model's layer and maps, with the data set's examples of that layer."""

    key: str
    subject: Any
    layer: str
    maps: list[int]
    n_maps: int
    examples: Any
    about: str
    targeted: bool
    images: Any = None
    saturation: float = float("nan")


@dataclass
class Column:
    """One method's numbers on a study's maps, or why it did not run."""

    method: str
    steps: int | None = None
    seconds: float = float("nan")
    activation: np.ndarray = field(default_factory=lambda: np.zeros(0))
    ratio: np.ndarray | None = None
    jitter: np.ndarray = field(default_factory=lambda: np.zeros(0))
    hf: np.ndarray = field(default_factory=lambda: np.zeros(0))
    at_bound: float = float("nan")
    saturation: float = float("nan")
    note: str = ""
    unavailable: str | None = None

    def summary(self) -> dict[str, Any]:
        """The medians and counts the table prints (JSON-able)."""
        if self.unavailable is not None:
            return {"method": self.method, "unavailable": self.unavailable}
        return {"method": self.method, "steps": self.steps, "seconds": round(self.seconds, 2),
                "median_activation": _median(self.activation), "positive": int(np.sum(self.activation > 0)),
                "maps": int(len(self.activation)),
                "median_ratio": None if self.ratio is None else _median(self.ratio),
                "median_jitter": _median(self.jitter), "median_hf": _median(self.hf),
                "at_bound": _finite(self.at_bound), "median_saturation": _finite(self.saturation), "note": self.note}


def _finite(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def _median(values: np.ndarray) -> float | None:
    values = np.asarray(values, np.float64)
    finite = values[np.isfinite(values)]
    return float(np.median(finite)) if finite.size else None


# ---- the models --------------------------------------------------------------------------------

def _example_set_name() -> str:
    """The full MNIST training set if its files are on disk, else the embedded test set."""
    from oipscope.data.datasets import find_dataset_dir

    return "mnist" if find_dataset_dir("mnist") is not None else "mnist-test"


def open_study(key: str, n_maps: int, cache: Path) -> Study:
    """Model ``key`` (trained or loaded from ``cache`` for the ResNets), its layer and example set."""
    import oipscope
    from oipscope.data.imagesets import array_images

    t = time.perf_counter()
    if key == "embedded":
        subject = oipscope.default_subject()
        layer = [info.name for info in oipscope.feature_layers(subject.model) if info.class_name == "Conv2D"][-1]
        images_name = _example_set_name()
        images = oipscope.open_images(images_name, subject.input_shape)
        about = f"the series' MNIST CNN (embedded); examples: {images_name} ({len(images)} images)"
    else:
        trained = quality_models.train_or_load(key, cache)
        given = quality_models.RANGE_INPUT.get(key)
        subject = oipscope.open_subject(trained.path, None if given is None else
                                        oipscope.InputEncoding.value_range(*given))
        layer = quality_models.DEEPEST
        data = quality_models.load_data(key, n_train=0)
        images = array_images(data.x_test, subject.input_shape, labels=data.y_test, name=f"{key} test")
        about = (f"{trained.path.name} ({'cached' if trained.cached else 'trained now'}: test accuracy "
                 f"{trained.test_accuracy:.3f}, training {trained.train_seconds:.0f} s, "
                 f"{trained.info['n_train']} images x {trained.info['epochs']} epochs, {trained.info['writer']}); "
                 f"examples: {data.source.split(' (')[0]} test ({len(images)} images)")
    examples = oipscope.dataset_examples(subject, layer, images)
    total = int(subject.feature_submodel(layer).outputs[0].shape[-1])
    about += f"; ready in {time.perf_counter() - t:.0f} s"
    saturation = float("nan")
    if subject.input_shape[2] == 3:
        from oipscope.search.quality import median_saturation

        saturation = median_saturation(np.concatenate([b for _, b in images.batches(256)]))
    return Study(key, subject, layer, list(range(min(n_maps, total))), total, examples, about,
                 targeted=key != "embedded", images=images, saturation=saturation)


# ---- the methods -------------------------------------------------------------------------------

def _oipscope_column(study: Study, method: str, config, warm_config) -> Column:
    from oipscope import find_oips, superstimulus_ratio

    find_oips(study.subject, study.layer, study.maps[:2], warm_config)  # warm-up: traces the loops
    t = time.perf_counter()
    result = find_oips(study.subject, study.layer, study.maps, config)
    seconds = time.perf_counter() - t
    from oipscope.search.quality import bound_share, median_saturation

    activation = np.array([m.activation for m in result.maps], np.float64)
    pixels = study.subject.encoding.decode(np.stack([m.image for m in result.maps]))
    return Column(method, config.total_steps, seconds, activation,
                  superstimulus_ratio(activation, study.examples, study.maps),
                  np.array([m.jitter_robustness for m in result.maps], np.float64),
                  np.array([m.hf_share for m in result.maps], np.float64),
                  at_bound=bound_share(pixels),
                  saturation=median_saturation(pixels) if pixels.shape[-1] == 3 else float("nan"))


def run_series(study: Study, steps: int | None) -> Column:
    """The series' method: ``OipConfig()`` (with ``steps`` if given)."""
    from oipscope import OipConfig

    config = OipConfig() if steps is None else OipConfig(steps=steps)
    return _oipscope_column(study, "series  OipConfig()", config, OipConfig(steps=20))


def run_robust(study: Study, steps: int | None, method: str = "robust  OipConfig.robust()",
               **fields: Any) -> Column:
    """The readable preset ``OipConfig.robust(**fields)``, or a column saying why it is not available."""
    from oipscope import OipConfig

    robust = getattr(OipConfig, "robust", None)
    if robust is None:
        return Column(method, unavailable="not available (oipscope has no OipConfig.robust yet)")
    try:
        config = robust(**fields) if steps is None else robust(steps=steps, **fields)
        return _oipscope_column(study, method, config, robust(steps=20, **fields))
    except Exception as exc:  # a preset under construction fails in many ways; the other columns go on
        return Column(method, unavailable=f"not available ({type(exc).__name__}: {str(exc).strip()[:200]})")


def run_default(study: Study, steps: int | None) -> Column | None:
    """What ``oipscope find`` does by default on the model (``--method auto`` with the data set as
    ``--images``); None where that is a column already shown (the series' method, or the robust
    preset with ImageNet's colours on a grey model)."""
    from oipscope import OipConfig
    from oipscope.cli.options import subject_method_config

    config = subject_method_config("auto", study.subject, study.images, steps)
    if config.method == "series" or config.colour_matrix is None:
        return None
    warm = subject_method_config("auto", study.subject, study.images, 20)
    return _oipscope_column(study, "default  auto, colours of images", config, warm)


def _tfkv_route(sub) -> str:
    """legacy (tf_keras in a child, what tf-keras-vis targets) for a chain of layers, else keras3."""
    return "keras3" if any(type(layer).__name__ in _MERGES for layer in sub.layers) else "legacy"


def run_tfkv(study: Study, steps: int | None) -> Column:
    """tf-keras-vis with its defaults; its pixel images encoded and measured as oipscope's OIPs are."""
    from oipscope import superstimulus_ratio
    from oipscope.ascent.pixels import mean_activations
    from oipscope.search.quality import hf_share, jitter_robustness

    method = "tf-keras-vis defaults"
    sub = study.subject.feature_submodel(study.layer)
    steps = TFKV_DEFAULT_STEPS if steps is None else steps
    try:
        out = tfkv_maximize(sub, study.subject.encoding, study.maps, steps, route=_tfkv_route(sub))
    except ImportError as exc:
        return Column(method, unavailable=f"not available ({exc})")
    images = np.asarray(study.subject.encode(out["images"]), np.float32)
    activation = mean_activations(sub, images, study.maps).astype(np.float64)
    mismatch = float(np.max(np.abs(activation - out["own_activations"])))
    note = f"route {out['route']}" + (f"; its model differs by {mismatch:.2g}" if mismatch > 1e-3 else "")
    return Column(method, steps, out["seconds"], activation, superstimulus_ratio(activation, study.examples, study.maps),
                  jitter_robustness(sub, images, study.maps), hf_share(images), note)


# ---- output ------------------------------------------------------------------------------------

def _fmt(value: float | None, width: int, digits: int = 2) -> str:
    return f"{'-' if value is None else f'{value:.{digits}f}':>{width}}"


def print_table(study: Study, columns: list[Column]) -> None:
    print(f"\n== {study.subject.name}  layer {study.layer}  maps {study.maps[0]}-{study.maps[-1]} "
          f"({len(study.maps)} of {study.n_maps})")
    print(f"   {study.about}")
    if np.isfinite(study.saturation):
        print(f"   median HSV saturation of the data set's images: {study.saturation:.2f}")
    hf_series = _median(columns[0].hf)
    print(f"{'method':<34}{'steps':>6}{'seconds':>9}{'median act':>11}{'live > 0':>9}{'ratio':>7}"
          f"{'jitter':>8}{'hf':>7}{'hf/ser':>7}{'bound':>7}{'sat':>6}{'sat/data':>9}")
    live = columns[0].activation > 0
    for column in columns:
        row = column.summary()
        if column.unavailable is not None:
            print(f"{column.method:<34}  {column.unavailable}")
            continue
        hf_ratio = None if row["median_hf"] is None or not hf_series else row["median_hf"] / hf_series
        sat_ratio = (None if row["median_saturation"] is None or not np.isfinite(study.saturation)
                     else row["median_saturation"] / study.saturation)
        positive = int(np.sum(column.activation[live] > 0))
        print(f"{column.method:<34}{row['steps']:>6}{row['seconds']:>9.1f}{_fmt(row['median_activation'], 11)}"
              f"{positive:>5}/{int(live.sum()):<3}{_fmt(row['median_ratio'], 7)}"
              f"{_fmt(row['median_jitter'], 8)}{_fmt(row['median_hf'], 7, 3)}{_fmt(hf_ratio, 7)}"
              f"{_fmt(None if row['at_bound'] is None else 100 * row['at_bound'], 6, 1)}%"
              f"{_fmt(row['median_saturation'], 6)}{_fmt(sat_ratio, 9)}"
              + (f"  ({column.note})" if column.note else ""))


def check_targets(study: Study, series: Column, chosen: Column) -> list[tuple[str, bool]]:
    """The issue's targets for the default method on ``study``'s live maps: (text, passed)."""
    name = f"{study.subject.name} {study.layer} ({chosen.method.split()[0]})"
    if chosen.unavailable is not None:
        return [(f"{name}: {chosen.unavailable}", False)]
    live = series.activation > 0
    if not live.any():
        return [(f"{name}: no live map (no series OIP with activation > 0)", False)]
    n_live = int(live.sum())
    jitter = float(np.median(np.nan_to_num(chosen.jitter[live], nan=0.0)))  # an OIP that fails its map: 0
    hf_chosen, hf_series = float(np.nanmedian(chosen.hf[live])), float(np.nanmedian(series.hf[live]))
    positive = int(np.sum(chosen.activation[live] > 0))
    checks = [
        (f"{name}: median jitter robustness {jitter:.2f} >= {JITTER_TARGET} ({n_live} live maps)",
         jitter >= JITTER_TARGET),
        (f"{name}: median hf share {hf_chosen:.3f} <= {HF_TARGET} x series {hf_series:.3f} "
         f"= {HF_TARGET * hf_series:.3f}", hf_chosen <= HF_TARGET * hf_series),
        (f"{name}: {100 * chosen.at_bound:.1f} % of pixels at a bound <= {100 * BOUND_TARGET:.0f} %",
         chosen.at_bound <= BOUND_TARGET),
        (f"{name}: activation > 0 on {positive}/{n_live} live maps", positive == n_live),
    ]
    if np.isfinite(study.saturation):
        checks.append((f"{name}: median saturation {chosen.saturation:.2f} <= {SATURATION_TARGET} x the images' "
                       f"{study.saturation:.2f} = {SATURATION_TARGET * study.saturation:.2f}",
                       chosen.saturation <= SATURATION_TARGET * study.saturation))
    return checks


# ---- main --------------------------------------------------------------------------------------

def _robust_steps() -> str:
    from oipscope import OipConfig

    try:
        return str(OipConfig.robust().steps)
    except Exception:  # no preset yet, or one under construction: its column says why
        return "-"


def _parse_models(text: str) -> list[str]:
    keys = [k.strip() for k in text.split(",") if k.strip()]
    bad = [k for k in keys if k not in MODELS]
    if bad or not keys:
        raise argparse.ArgumentTypeError(f"models must be among {', '.join(MODELS)}, got {text!r}")
    return keys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=_parse_models, default=list(MODELS),
                        help=f"Comma-separated, among {','.join(MODELS)} (default all).")
    parser.add_argument("--maps", type=int, default=DEFAULT_MAPS,
                        help=f"The first N maps of each layer (default {DEFAULT_MAPS}).")
    parser.add_argument("--steps", type=int, default=None,
                        help="Steps for every method (default: each method's own: series 600 with early "
                             f"stopping, the robust preset's, tf-keras-vis {TFKV_DEFAULT_STEPS}).")
    parser.add_argument("--cache", default=DEFAULT_CACHE, help=f"Trained models (default {DEFAULT_CACHE}).")
    parser.add_argument("--no-tfkv", action="store_true", help="Leave tf-keras-vis out.")
    parser.add_argument("--no-old", action="store_true",
                        help="Leave out the robust preset with a free contrast (the sigmoid as it was).")
    parser.add_argument("--json", default=None, help="Also write every table's numbers to this JSON file.")
    args = parser.parse_args(argv)
    if args.maps < 1 or (args.steps is not None and args.steps < 1):
        parser.error("--maps and --steps must be >= 1")

    import tensorflow as tf

    from oipscope import OipConfig

    warnings.filterwarnings("ignore", message="The structure of `inputs` doesn't match")
    print("devices:", ", ".join(f"{d.name} ({d.device_type})" for d in tf.config.list_logical_devices()))
    steps = (f"{args.steps} for every method" if args.steps is not None else
             f"each method's default (series {OipConfig().steps} with early stopping, robust "
             f"{_robust_steps()}, tf-keras-vis {TFKV_DEFAULT_STEPS})")
    print(f"models {','.join(args.models)}; the first {args.maps} maps of each layer; steps: {steps}")
    print(f"cache {Path(args.cache).expanduser()} (a first run trains the ResNets, 1-2 min each); the defaults "
          "need about 6.5 min of CPU after training (more wall time on shared cores); --maps 8 --steps 200 is "
          "a quick look")

    t0 = time.perf_counter()
    report, checks = [], []
    for key in args.models:
        study = open_study(key, args.maps, Path(args.cache).expanduser())
        columns = [run_series(study, args.steps)]
        if study.targeted and not args.no_old:
            columns.append(run_robust(study, args.steps, "robust, free contrast (before)", contrast=None))
        robust = run_robust(study, args.steps)
        columns.append(robust)
        default = run_default(study, args.steps) if study.targeted else None
        if default is not None:
            columns.append(default)
        if not args.no_tfkv:
            columns.append(run_tfkv(study, args.steps))
        print_table(study, columns)
        sys.stdout.flush()
        report.append({"model": study.subject.name, "layer": study.layer,
                       "maps": f"{study.maps[0]}-{study.maps[-1]}", "about": study.about,
                       "columns": [c.summary() for c in columns]})
        if study.targeted:
            checks += check_targets(study, columns[0], default if default is not None else robust)

    print("\ntargets (the default method, deepest activation layer, live maps = series OIP activation > 0):")
    if not checks:
        print("  none: give --models grey, rgb, sep and/or big")
    for text, passed in checks:
        print(f"  {'PASS' if passed else 'FAIL'}  {text}")
    print(f"total {time.perf_counter() - t0:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps({"tables": report, "targets": [
            {"target": text, "passed": passed} for text, passed in checks]}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
