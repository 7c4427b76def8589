"""What the ``oipscope`` commands take from the user: the shared options, and turning them into
a model, its input encoding, images and output folders, with one clear error each when they are wrong.
"""

from __future__ import annotations

import json
import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from ..errors import ConfigError, OutputError

__all__ = [
    "console", "err_console", "LOG_WIDTH", "state", "ModelArg", "UnsafeOpt", "RangeOpt", "MeanOpt", "StdOpt", "StandardizeOpt",
    "PreprocessOpt", "BgrOpt", "InputSizeOpt",
    "ImagesOpt", "DatasetOpt", "RayOpt", "WorkersOpt", "RayCpusOpt", "RayGpusOpt", "backend_option",
    "start_tensorflow", "load_model_option", "subject_option", "input_size_option", "canvas_note", "encoding_option",
    "images_option", "skipped_note",
    "numbers_option", "check_output", "output_errors", "kept_chunks", "ObjectiveOpt", "MethodOpt", "RobustOpt",
    "TransformsOpt", "ParametrizationOpt", "OptimizerOpt", "WarmupOpt", "SizeOpt", "PrecisionOpt", "method_config",
    "method_option", "method_line", "subject_method_config", "default_layer_option",
]

LOG_WIDTH = 10_000
"""Characters per line without a terminal: a log or a pipe gets whole lines, never cut at 80 columns."""


def _console(stderr: bool = False) -> Console:
    """A console as wide as the terminal; without one (piped, redirected) whole lines, never wrapped."""
    console = Console(stderr=stderr)
    return console if console.is_terminal else Console(stderr=stderr, width=LOG_WIDTH, soft_wrap=True)


console = _console()
err_console = _console(stderr=True)
state = {"debug": False}  # --debug: tracebacks instead of one-line errors

ModelArg = typer.Argument(None, help="A .keras or .h5 model file (default: the embedded MNIST CNN).")
UnsafeOpt = typer.Option(False, "--unsafe-load", help="Allow model files that contain code (Lambda layers). Only for files you trust.")
RangeOpt = typer.Option(None, "--input-range", metavar="LO,HI",
                        help="The model takes pixels scaled to LO..HI, e.g. 0,1 or -1,1 (0,255: raw pixels).")
MeanOpt = typer.Option(None, "--mean", metavar="M1[,M2,M3]",
                       help="Per-channel mean subtracted after --input-range (ImageNet: 0.485,0.456,0.406).")
StdOpt = typer.Option(None, "--std", metavar="S1[,S2,S3]",
                      help="Per-channel std divided after --input-range (ImageNet: 0.229,0.224,0.225).")
StandardizeOpt = typer.Option(False, "--standardize",
                              help="The model takes per-image standardized input (the series' CNN).")
PreprocessOpt = typer.Option(
    None, "--preprocess", metavar="caffe|tf|torch",
    help="The model takes what keras.applications' preprocess_input(mode=...) gives: caffe (VGG16/19, "
         "ResNet50/101/152: BGR, ImageNet mean subtracted), tf (MobileNet(V2), Inception, Xception: -1..1), "
         "torch (DenseNet: 0..1, ImageNet mean/std).")
BgrOpt = typer.Option(False, "--bgr", help="The model takes its colour channels in BGR order (OpenCV); "
                                           "--mean/--std are then in that order.")
InputSizeOpt = typer.Option(
    None, "--input-size", metavar="H[,W]",
    help="Image size for a model that takes any size (input (None, None, C), e.g. a keras.applications base "
         "without input_shape), e.g. 224 or 224,224.")
ImagesOpt = typer.Option(
    None, "--images", metavar="PATH|NAME",
    help="Images to compare the OIPs with: a folder (searched recursively; class sub-folders become labels), "
         "a .npz/.npy file, or a named set (mnist-test, mnist, fashion-mnist, cifar10, cifar100). "
         "Default: the embedded MNIST test split for the embedded model, none for other models.")
DatasetOpt = typer.Option(None, "--dataset", hidden=True, help="Old name of --images NAME.")
RayOpt = typer.Option(None, "--ray", metavar="ADDRESS",
                      help="Run the chunks on a Ray cluster: local (start one on this machine), auto (the cluster "
                           "this machine joined with `ray start`), or HOST:PORT of its head. Needs oipscope\\[ray].")
WorkersOpt = typer.Option(None, "--workers", help="With --ray local: chunks at once (default: the CPU count).")
RayCpusOpt = typer.Option(1.0, "--ray-cpus-per-task", help="With --ray: CPUs per chunk (TensorFlow threads).")
RayGpusOpt = typer.Option(0.0, "--ray-gpus-per-task", help="With --ray: GPUs per chunk, e.g. 1 or 0.5.")
ObjectiveOpt = typer.Option("channel", "--objective", metavar="EXPR",
                            help="What each OIP maximizes: channel (default), neuron, neuron:Y,X, region:Y0:Y1,X0:X1, "
                                 "class, direction:V0,V1,..., diversity; image terms tv, l1, l2, blur; combine them "
                                 "with weights, e.g. 'channel - 0.5*diversity - 0.05*tv'.")
MethodOpt = typer.Option("auto", "--method", metavar="auto|series|robust",
                         help="How OIPs climb: series (the series' pixel ascent), robust (readable OIPs on deep "
                              "models: random transforms, a decorrelated Fourier image of fixed contrast, Adam, "
                              "a ReLU warm-up; 512 steps unless --steps), or auto: series for inputs up to 32 px, "
                              "else robust.")
RobustOpt = typer.Option(False, "--robust", help="Same as --method robust.")
TransformsOpt = typer.Option(None, "--transforms", metavar="LIST",
                             help="Random transforms before each step, space-separated: pad:N jitter:N scale:LO,HI "
                                  "rotate:DEG, or standard (the --robust set).")
ParametrizationOpt = typer.Option(None, "--parametrization", help="pixels (the series) or fourier (1/f spectrum).")
OptimizerOpt = typer.Option(None, "--optimizer", help="normalized (the series' step) or adam.")
WarmupOpt = typer.Option(None, "--warmup-steps", help="Steps in which a ReLU that is off still passes gradient.")
SizeOpt = typer.Option(None, "--size", metavar="N",
                       help="Canvas in px for layers whose path is convolutional (default: the model's size up to "
                            "160, 128 above); dense and class layers use the model's size.")
PrecisionOpt = typer.Option("auto", "--precision",
                            help="What the model computes in: auto (bfloat16 where a probe shows it faster here, "
                                 "mixed precision on a GPU, else float32), float32, bfloat16 or float16.")



def start_tensorflow() -> None:
    """Import Keras and TensorFlow, keeping TensorFlow's C++ start-up lines off the terminal.

    TensorFlow prints them (absl, oneDNN, CUDA stub) before its logging is set up,
    so ``TF_CPP_MIN_LOG_LEVEL`` cannot silence them; file descriptor 2 is pointed
    at /dev/null for the import only. Python errors still raise; ``--debug`` or
    ``TF_CPP_MIN_LOG_LEVEL=0`` shows the lines.
    """
    if "tensorflow" in sys.modules or state["debug"] or os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0") == "0":
        import keras  # noqa: F401
        if state["debug"]:
            _print_devices()
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            import keras  # noqa: F401 - starts TensorFlow
    finally:
        os.dup2(saved, 2)
        os.close(saved)
    import tensorflow as tf

    # Each layer's compiled loop is traced once; TensorFlow's "triggered tf.function retracing"
    # warning counts those first traces across layers and would only alarm the user.
    tf.get_logger().setLevel("ERROR")


def _print_devices() -> None:
    """``--debug``: the devices TensorFlow found; the ascent runs on the first GPU if there is one."""
    import tensorflow as tf

    devices = [device.name for device in tf.config.list_logical_devices()]
    gpus = [name for name in devices if ":GPU:" in name]
    console.print(f"debug: TensorFlow {tf.__version__} devices: {', '.join(devices)}; the ascent runs on "
                  f"{gpus[0] if gpus else devices[0]}", markup=False, highlight=False, soft_wrap=True)


def load_model_option(model_path: Optional[Path], unsafe_load: bool):
    """The model of the MODEL argument (default: the embedded CNN); the path is checked before TensorFlow starts."""
    from ..model.cnn import default_model_path
    from ..model.loading import check_model_file, load_model

    path = check_model_file(model_path or default_model_path())  # a bad path fails before TensorFlow starts
    if unsafe_load:
        err_console.print("[yellow]warning:[/] --unsafe-load: code inside the model file may run")
    start_tensorflow()
    return load_model(path, safe_mode=not unsafe_load)


def input_size_option(text: Optional[str]) -> Optional[tuple[int, int]]:
    """``--input-size H[,W]`` as (height, width); None when not given."""
    if text is None:
        return None
    try:
        sides = [int(part) for part in text.split(",")]
    except ValueError:
        sides = []
    if len(sides) not in (1, 2) or min(sides) < 1:
        raise ConfigError(f"--input-size takes a positive size H or H,W in pixels (e.g. 224 or 224,224), "
                          f"got {text!r}")
    return sides[0], sides[-1]


def subject_option(model_path: Optional[Path], unsafe_load: bool, input_range: Optional[str], mean: Optional[str],
                   std: Optional[str], standardize: bool, preprocess: Optional[str] = None, bgr: bool = False,
                   input_size: Optional[str] = None, any_size: Optional[tuple[int, int]] = None):
    """Load the model (its size fixed by ``--input-size``, else ``any_size`` for a model that takes
    any) and resolve its input encoding once; say so when it is only assumed."""
    from ..model.cnn import default_model_path
    from ..model.encoding import parse_encoding
    from ..model.loading import flattened
    from ..model.subject import Subject

    given = parse_encoding(input_range, mean, std, standardize, preprocess, bgr)  # bad options fail before TF starts
    size = input_size_option(input_size)
    keras_model = flattened(load_model_option(model_path, unsafe_load))  # nested models' layers inlined
    shapes = [tuple(tensor.shape) for tensor in getattr(keras_model, "inputs", None) or []]
    if size is None and any_size is not None and len(shapes) == 1 and len(shapes[0]) == 4 and None in shapes[0][1:3]:
        size = any_size
    subject = Subject(keras_model, encoding_option(keras_model, model_path, given), model_path or default_model_path(),
                      size)
    source = subject.encoding.source
    if source == "assumed":
        console.print(f"note: nothing says how {subject.name} expects its pixels; assuming per-image "
                      "standardization (the series'). If it was trained on scaled pixels, give --input-range "
                      "0,1 (or -1,1, or 0,255), with --mean/--std for ImageNet-style inputs, or --preprocess "
                      "caffe|tf|torch for a keras.applications model", markup=False)
    elif source.startswith("model layers"):
        layers = source[len("model layers"):].strip(" ()")
        console.print(f"input: raw pixels 0..255 (the model begins with {layers})", markup=False)
    return subject


def encoding_option(keras_model, model_path: Optional[Path], given=None):
    """The input encoding: given, the embedded model's, recognised from the model's layers, or assumed."""
    from ..model.encoding import InputEncoding, preprocessing_layers, resolve_encoding

    if given is None and model_path is None:
        given = InputEncoding.standardize(source="embedded model")
    inside = preprocessing_layers(keras_model) if given is not None and model_path is not None else []
    def meaning(encoding) -> dict:
        return {k: v for k, v in encoding.to_dict().items() if k != "source"}

    if inside and meaning(given) != meaning(resolve_encoding(keras_model)):
        verb = "takes" if len(inside) == 1 else "take"
        console.print(f"warning: the model begins with {', '.join(inside)}, which {verb} raw pixels 0..255; the "
                      "encoding you gave replaces that (leave out --input-range/--mean/--std/--standardize/--preprocess "
                      "to feed it raw pixels)", markup=False)
    return resolve_encoding(keras_model, given)


def images_option(spec: Optional[str], subject, model_path: Optional[Path], *, dataset: Optional[str] = None):
    """The image set to compare with: --images, else the embedded examples for the embedded model, else None."""
    from ..data.imagesets import embedded_examples, open_images

    if spec is None:
        spec = dataset
    if spec is None:
        if model_path is None:
            return embedded_examples(subject.input_shape)
        console.print("note: no images to compare the OIPs with (no dataset examples, no superstimulus ratios); "
                      "add --images FOLDER (or a .npz file, or a set name such as mnist)", markup=False)
        return None
    image_set = open_images(spec, subject.input_shape)
    for _, batch in image_set.batches(16):  # a folder of unreadable files fails now, not after the OIPs
        if len(batch):
            break
    return image_set


def skipped_note(images) -> None:
    """One line naming the images an image set skipped (unreadable files, NaN or infinite arrays), if any."""
    skipped = images.skipped if images is not None else ()
    if skipped:
        shown = ", ".join(skipped[:3]) + (", ..." if len(skipped) > 3 else "")
        what = "unreadable image file(s)" if hasattr(images, "files") else "image(s) with NaN or infinite values"
        console.print(f"note: skipped {len(skipped)} {what} in {images.name}: {shown}", markup=False)


def numbers_option(text: Optional[str], convert, option: str, example: str) -> Optional[tuple]:
    """A comma-separated option such as ``--scales 3,7,14`` as a tuple (None when not given)."""
    if text is None:
        return None
    try:
        return tuple(convert(part.strip()) for part in text.split(","))
    except ValueError:
        raise ConfigError(f"{option} must be comma-separated numbers like {example}, got {text!r}") from None


def method_option(method: str, robust: bool) -> str:
    """``--method`` with ``--robust`` (its alias) folded in: ``auto``, ``series`` or ``robust``."""
    if method not in ("auto", "series", "robust"):
        raise ConfigError(f"--method must be auto, series or robust, got {method!r}")
    if robust and method == "series":
        raise ConfigError("--robust is --method robust; give one of --robust and --method series")
    return "robust" if robust else method


def subject_method_config(method: str, subject, image_set, steps: Optional[int], **fields) -> "OipConfig":
    """The OipConfig for ``subject``: ``auto`` resolved by its input size, and for the robust method on
    an RGB model with ``image_set``, the colour matrix measured from those images (saved with the
    result, so a resume measures and finds the same)."""
    from ..config import resolve_method

    height, width, channels = subject.input_shape
    chosen = resolve_method(method, height, width)
    config = method_config(chosen == "robust", steps, **fields)
    if config.decorrelate and channels == 3 and image_set is not None and config.colour_matrix is None:
        from dataclasses import replace

        config = replace(config, colour_matrix=tuple(float(v) for v in image_colour_matrix(image_set).ravel()))
    return config


def method_line(method: str, config: "OipConfig", subject) -> str:
    """The run's first line about its method: which one, why (for ``auto``), and the colours' source."""
    from ..config import AUTO_SERIES_SIZE

    height, width, channels = subject.input_shape
    why = ""
    if method == "auto":
        side = "up to" if max(height, width) <= AUTO_SERIES_SIZE else "over"
        why = f" (auto: input {height}x{width}, {side} {AUTO_SERIES_SIZE} px; --method series|robust to choose)"
    colours = ""
    if config.decorrelate and channels == 3:
        colours = ", colours of the images given" if config.colour_matrix is not None else ", ImageNet's colours"
    return f"method: {config.method}{why}{colours}"


def image_colour_matrix(image_set, limit: int = 512) -> "np.ndarray":
    """The colour matrix (:func:`~oipscope.ascent.parametrization.colour_sqrt`) of the first ``limit`` images
    of a set, rounded to 4 decimals so that the saved settings read back the same."""
    import numpy as np

    from ..ascent.parametrization import colour_sqrt

    pixels, n = [], 0
    for _, batch in image_set.batches(64):
        take = batch[: limit - n, ::2, ::2]  # every other pixel: the covariance, at a quarter of the work
        pixels.append(take.reshape(-1, take.shape[-1]) / 255.0)
        n += len(take)
        if n >= limit:
            break
    return np.round(colour_sqrt(np.concatenate(pixels)), 4)


def method_config(robust: bool, steps: Optional[int], **fields) -> "OipConfig":
    """The OipConfig of the command line: the series' defaults, or ``--robust``'s; given options win.

    ``fields`` are OipConfig fields; None means "not given".
    """
    from ..config import OipConfig

    given = {name: value for name, value in fields.items() if value is not None}
    if "transforms" in given:
        from ..ascent.transforms import parse_transforms

        given["transforms"] = tuple(item.text() if hasattr(item, "text") else item
                                    for item in parse_transforms(given["transforms"]))
    if steps is not None:
        given["steps"] = steps
    return OipConfig.robust(**given) if robust else OipConfig(**given)


def canvas_note(subject, config) -> Optional[str]:
    """The run's first line about the canvas, where it is not the model's own size (else None)."""
    from ..model.canvas import default_canvas

    height, width = subject.input_shape[:2]
    side = max(height, width)
    canvas = config.canvas if config.canvas is not None else default_canvas(side)
    if canvas == side:
        return None
    how = f"--size {side} grows them at the model's size" if config.canvas is None else "chosen with --size"
    return (f"canvas: OIPs of layers whose path from the input is convolutional are grown at {canvas} px "
            f"(the model takes {height}x{width}; dense and class layers use that); {how}")


def default_layer_option(layer: Optional[str], keras_model, objective: str) -> str:
    """``--layer`` as given, else the output layer for ``class`` objectives, else the last default layer."""
    if layer is not None:
        return layer
    from ..ascent.objective import parse_objective

    if parse_objective(objective).logits:
        return keras_model.layers[-1].name
    from ..model.layers import default_layers

    layers = default_layers(keras_model)
    if not layers:
        raise ConfigError(f"model {keras_model.name!r} has no layer with feature maps; give --layer")
    return layers[-1]


def check_output(path: Path, option: str = "--out") -> None:
    """Fail at once (not after the work) when the output ``path`` cannot be created.

    ``path`` is a folder or file still to be written; its nearest existing
    ancestor must be a writable folder.
    """
    probe = path
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    if probe != path and not probe.is_dir():
        raise OutputError(f"cannot write output {path}: {probe} is a file, not a folder; "
                          f"choose another {option}")
    folder = probe if probe.is_dir() else probe.parent
    if not os.access(folder, os.W_OK):
        raise OutputError(f"cannot write output {path}: no write permission in {folder}; "
                          f"choose another {option}")


@contextmanager
def output_errors(path: Path, option: str = "--out"):
    """Turn an OSError while writing results into a one-line OutputError (exit code 6)."""
    try:
        yield
    except OSError as exc:
        raise OutputError(f"cannot write output {path}: {exc}; choose another {option} "
                          "(a folder you can write to, with free space)") from exc


def kept_chunks(out: Path) -> tuple[int, int]:
    """(finished chunks, OIPs in them) that an interrupted ``find`` left in ``out/parts``."""
    n_chunks = n_oips = 0
    for meta in sorted((out / "parts").glob("maps-*/result.json")):
        try:
            n_oips += len(json.loads(meta.read_text())["maps"])
            n_chunks += 1
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return n_chunks, n_oips


@contextmanager
def backend_option(ray: Optional[str], workers: Optional[int], ray_cpus_per_task: float, ray_gpus_per_task: float,
                   unsafe_load: bool):
    """The backend of ``--ray`` (None: this process), its cluster started or joined here and left on exit."""
    if ray is None:
        if workers is not None:
            raise ConfigError("--workers needs --ray local (without --ray the chunks run in this process)")
        yield None
        return
    from ..runs.cluster import LOCAL, RayBackend

    if workers is not None and ray != LOCAL:
        raise ConfigError("--workers only applies to --ray local; a joined cluster has the workers it has")
    backend = RayBackend(ray, workers=workers, cpus_per_task=ray_cpus_per_task, gpus_per_task=ray_gpus_per_task,
                         safe_mode=not unsafe_load)
    console.print(f"ray: {backend.slots} chunk(s) at once on {ray}", markup=False)
    try:
        yield backend
    finally:
        backend.close()
