"""The ``oipscope`` command line: a thin layer over the library API.

Each command is one function whose docstring is its help text. Errors of
oipscope are printed as one line and exit with the error's code (see README);
``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import json
import os
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from .errors import ConfigError, OipscopeError, OutputError

app = typer.Typer(
    help="See what the feature maps of a Keras CNN respond to.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)
_state = {"debug": False}

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
ImagesOpt = typer.Option(
    None, "--images", metavar="PATH|NAME",
    help="Images to compare the OIPs with: a folder (searched recursively; class sub-folders become labels), "
         "a .npz/.npy file, or a named set (mnist-test, mnist, fashion-mnist, cifar10, cifar100). "
         "Default: the embedded MNIST test split for the embedded model, none for other models.")
DatasetOpt = typer.Option(None, "--dataset", hidden=True, help="Old name of --images NAME.")


@app.callback()
def _root(debug: bool = typer.Option(False, "--debug", help="Show tracebacks on errors.")) -> None:
    _state["debug"] = debug


def _start_tensorflow() -> None:
    """Import Keras and TensorFlow, keeping TensorFlow's C++ start-up lines off the terminal.

    TensorFlow prints them (absl, oneDNN, CUDA stub) before its logging is set up,
    so ``TF_CPP_MIN_LOG_LEVEL`` cannot silence them; file descriptor 2 is pointed
    at /dev/null for the import only. Python errors still raise; ``--debug`` or
    ``TF_CPP_MIN_LOG_LEVEL=0`` shows the lines.
    """
    if "tensorflow" in sys.modules or _state["debug"] or os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0") == "0":
        import keras  # noqa: F401
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


def _load(model_path: Optional[Path], unsafe_load: bool):
    from .cnn import default_model_path
    from .models import check_model_file, load_model

    path = check_model_file(model_path or default_model_path())  # a bad path fails before TensorFlow starts
    if unsafe_load:
        err_console.print("[yellow]warning:[/] --unsafe-load: code inside the model file may run")
    _start_tensorflow()
    return load_model(path, safe_mode=not unsafe_load)


def _subject(model_path: Optional[Path], unsafe_load: bool, input_range: Optional[str], mean: Optional[str],
             std: Optional[str], standardize: bool):
    """Load the model and resolve its input encoding once; say so when it is only assumed."""
    from .cnn import default_model_path
    from .encoding import parse_encoding
    from .subject import Subject

    given = parse_encoding(input_range, mean, std, standardize)  # bad options fail before TensorFlow starts
    keras_model = _load(model_path, unsafe_load)
    subject = Subject(keras_model, _encoding(keras_model, model_path, given), model_path or default_model_path())
    source = subject.encoding.source
    if source == "assumed":
        console.print(f"note: nothing says how {subject.name} expects its pixels; assuming per-image "
                      "standardization (the series'). If it was trained on scaled pixels, give --input-range "
                      "0,1 (or -1,1, or 0,255), with --mean/--std for ImageNet-style inputs", markup=False)
    elif source.startswith("model layers"):
        layers = source[len("model layers"):].strip(" ()")
        console.print(f"input: raw pixels 0..255 (the model begins with {layers})", markup=False)
    return subject


def _encoding(keras_model, model_path: Optional[Path], given=None):
    """The input encoding: given, the embedded model's, recognised from the model's layers, or assumed."""
    from .encoding import InputEncoding, resolve_encoding

    if given is None and model_path is None:
        given = InputEncoding.standardize(source="embedded model")
    return resolve_encoding(keras_model, given)


def _images(spec: Optional[str], subject, model_path: Optional[Path], *, dataset: Optional[str] = None):
    """The image set to compare with: --images, else the embedded examples for the embedded model, else None."""
    from .imagesets import embedded_examples, open_images

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


def _skipped_note(images) -> None:
    """One line naming the unreadable files an image set skipped, if any."""
    skipped = images.skipped if images is not None else ()
    if skipped:
        shown = ", ".join(skipped[:3]) + (", ..." if len(skipped) > 3 else "")
        console.print(f"note: skipped {len(skipped)} unreadable image file(s) in {images.name}: {shown}",
                      markup=False)


def _numbers(text: Optional[str], convert, option: str, example: str) -> Optional[tuple]:
    """A comma-separated option such as ``--scales 3,7,14`` as a tuple (None when not given)."""
    if text is None:
        return None
    try:
        return tuple(convert(part.strip()) for part in text.split(","))
    except ValueError:
        raise ConfigError(f"{option} must be comma-separated numbers like {example}, got {text!r}") from None


def _check_output(path: Path, option: str = "--out") -> None:
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
def _output_errors(path: Path, option: str = "--out"):
    """Turn an OSError while writing results into a one-line OutputError (exit code 6)."""
    try:
        yield
    except OSError as exc:
        raise OutputError(f"cannot write output {path}: {exc}; choose another {option} "
                          "(a folder you can write to, with free space)") from exc


def _kept_chunks(out: Path) -> tuple[int, int]:
    """(finished chunks, OIPs in them) that an interrupted ``find`` left in ``out/parts``."""
    n_chunks = n_oips = 0
    for meta in sorted((out / "parts").glob("maps-*/result.json")):
        try:
            n_oips += len(json.loads(meta.read_text())["maps"])
            n_chunks += 1
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return n_chunks, n_oips


@app.command()
def train(
    dataset: str = typer.Option("mnist", help="mnist or fashion-mnist."),
    epochs: int = typer.Option(20, help="Training epochs."),
    batch_size: int = typer.Option(64, help="Mini-batch size."),
    learning_rate: float = typer.Option(0.05, help="Initial SGD learning rate."),
    lr_decay: float = typer.Option(0.85, help="Learning-rate factor per epoch (exponential schedule)."),
    output_activation: str = typer.Option("softmax", help="softmax, or sigmoid as in the series."),
    seed: int = typer.Option(42, help="Random seed."),
    train_limit: Optional[int] = typer.Option(None, help="Use only the first N training images."),
    data_dir: Optional[Path] = typer.Option(None, help="Folder with the four IDX .gz files."),
    out: Path = typer.Option(Path("cnn.keras"), help="Model file to write (.keras)."),
    h5: bool = typer.Option(False, "--h5", help="Also write a legacy .h5 copy."),
) -> None:
    """Train the series' CNN and save the best model.

    Example: oipscope train --dataset fashion-mnist --epochs 10 --out fashion.keras
    """
    from .cnn import TrainConfig
    from .cnn import train as run_training

    config = TrainConfig(
        dataset=dataset, epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
        lr_decay=lr_decay, output_activation=output_activation, seed=seed,
        train_limit=train_limit, data_dir=str(data_dir) if data_dir else None,
    )
    _start_tensorflow()
    with Progress(TextColumn("epoch {task.completed}/{task.total}"), BarColumn(),
                  TextColumn("{task.description}"), TimeElapsedColumn(), console=console) as progress:
        task = progress.add_task("", total=epochs)

        def on_epoch_end(epoch: int, logs: dict) -> None:
            progress.update(task, completed=epoch + 1, description=(
                f"loss {logs.get('loss', 0):.4f}  val_accuracy {logs.get('val_accuracy', 0):.4f}"))

        result = run_training(config, out, save_h5=h5, on_epoch_end=on_epoch_end)
    console.print(f"test accuracy {result.test_accuracy:.4f} in {result.seconds:.0f} s; wrote {result.path}")


@app.command()
def info(model: Optional[Path] = ModelArg, unsafe_load: bool = UnsafeOpt) -> None:
    """Show a model's input shape, its layers and which layers have feature maps.

    Example: oipscope info cnn.keras
    """
    from .models import describe, feature_layers, image_input_shape

    keras_model = _load(model, unsafe_load)
    table = Table(title=f"{keras_model.name}  (input {keras_model.inputs[0].shape})")
    for column in ("layer", "type", "output shape", "maps", "params"):
        table.add_column(column)
    for layer in describe(keras_model):
        table.add_row(layer.name, layer.class_name, str(layer.output_shape),
                      str(layer.n_maps or ""), f"{layer.n_params:,}")
    console.print(table, markup=False)
    try:
        height, width, channels = image_input_shape(keras_model)
        console.print(f"image input: {height}x{width}, {channels} channel(s)")
    except OipscopeError as exc:
        console.print(f"no image input: {exc}")
    maps = feature_layers(keras_model)
    listing = ", ".join(f"{layer.name} ({layer.n_maps})" for layer in maps) or "none"
    console.print(f"layers with feature maps: {listing}", markup=False)
    if maps:
        from .layers import default_layers

        console.print(f"zoo's default layers (one per convolution): {', '.join(default_layers(keras_model))}",
                      markup=False)
    encoding = _encoding(keras_model, model)
    if encoding.source == "assumed":
        console.print("input encoding: not recorded in the model; give --input-range LO,HI (with --mean/--std) "
                      "or --standardize to find, zoo and activations (default: --standardize)", markup=False)
    else:
        console.print(f"input encoding: {encoding.describe()} ({encoding.source})", markup=False)


@app.command()
def find(
    model: Optional[Path] = ModelArg,
    layer: str = typer.Option("Conv2D_3", help="Layer whose maps to visualize."),
    maps: str = typer.Option("all", help='Maps: "all", or indices and ranges like "0-15,40".'),
    strategy: int = typer.Option(0, help="0: one ascent from mixed scales; 1: coarse-to-fine."),
    steps: int = typer.Option(600, help="Maximum ascent steps (strategy 0)."),
    epsilon: float = typer.Option(0.01, help="Step size of the normalized gradient."),
    start: str = typer.Option("scales", help="Initial image: scales (the series' noise) or fourier."),
    precursor: bool = typer.Option(True, "--precursor/--no-precursor", help="Pick the best of many starts per map."),
    restarts: int = typer.Option(3, help="Extra rounds with other starts for maps that stay silent."),
    n_per_map: int = typer.Option(1, help="OIPs per map, from different seeds."),
    seed: int = typer.Option(0, help="Random seed; the same seed gives the same OIPs."),
    memory_budget_mb: float = typer.Option(
        512.0, help="Memory budget in MB: maps are ascended in batches that fit it (smaller = less RAM, slower)."),
    scales: Optional[str] = typer.Option(
        None, help="Length scales of the initial noise, comma-separated, e.g. 3,7,14,28 (default: relative to the image)."),
    factors: Optional[str] = typer.Option(
        None, help="One amplitude >= 0 per scale, comma-separated, e.g. 0.5,0.5,0.5,0.5 (default 0.5 each)."),
    chunk_maps: int = typer.Option(32, help="Maps per saved chunk (what --resume can skip)."),
    images: Optional[str] = ImagesOpt,
    assess: bool = typer.Option(True, "--assess/--no-assess", help="Compare the OIPs with the images' best ones."),
    input_range: Optional[str] = RangeOpt,
    mean: Optional[str] = MeanOpt,
    std: Optional[str] = StdOpt,
    standardize: bool = StandardizeOpt,
    out: Path = typer.Option(Path("oipscope-out"), help="Folder for the result and the PNG grid."),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted run in --out."),
    unsafe_load: bool = UnsafeOpt,
    dataset: Optional[str] = DatasetOpt,
) -> None:
    """Create OIPs for the maps of a layer; write the result and a PNG grid.

    Maps are done in chunks of --chunk-maps (32) and each finished chunk is saved at once:
    after Ctrl-C, the same command with --resume computes only what is missing.

    With images (--images, or the embedded MNIST test split for the embedded model) each OIP gets
    its superstimulus ratio (OIP activation / the best image's) and the class it evokes.

    Example: oipscope find my_cnn.h5 --layer activation_6 --input-range -1,1 --images faces/ --out oips
    """
    from .engine import OipConfig
    from .runs import run_layer

    config = OipConfig(
        epsilon=epsilon, steps=steps, strategy=strategy, start=start, precursor=precursor,
        restarts=restarts, n_per_map=n_per_map, seed=seed, memory_budget_mb=memory_budget_mb,
        scales=_numbers(scales, int, "--scales", "3,7,14,28"),
        factors=_numbers(factors, float, "--factors", "0.5,0.5,0.5,0.5"),
    )
    if chunk_maps < 1:
        raise ConfigError(f"--chunk-maps must be >= 1, got {chunk_maps}")
    _check_output(out)
    subject = _subject(model, unsafe_load, input_range, mean, std, standardize)
    image_set = _images(images, subject, model, dataset=dataset) if assess else None  # before the long part
    with Progress(TextColumn(f"{layer}"), BarColumn(), TextColumn("{task.completed}/{task.total} OIPs"),
                  TimeElapsedColumn(), console=console) as progress, _output_errors(out):
        task = progress.add_task("", total=None)
        try:
            result = run_layer(
                subject, layer, maps, config, out, resume=resume, chunk_maps=chunk_maps,
                on_progress=lambda done, total: progress.update(task, completed=done, total=total),
            )
        except KeyboardInterrupt:
            progress.stop()
            n_chunks, n_oips = _kept_chunks(out)
            kept = (f"{n_chunks} finished chunk(s) with {n_oips} OIP(s) kept in {out / 'parts'}"
                    if n_chunks else f"no chunk finished yet, nothing kept in {out}")
            err_console.print(f"interrupted: {kept}; run the same command with --resume to continue",
                              markup=False, soft_wrap=True)
            raise typer.Exit(130) from None
    with _output_errors(out):
        if image_set is not None:
            result = _assess(result, subject, image_set, out)
        folder = result.save(out)
        grid = _save_oip_grid(result, folder / "oips.png")
    _print_summary(result)
    console.print(f"wrote {folder} (result) and {grid}", markup=False)


@app.command()
def zoo(
    model: Optional[Path] = ModelArg,
    layers: Optional[str] = typer.Option(
        None, help="Layers: names, shell globs (activation_*, block*_relu) or all, comma-separated "
                   "(default: one layer per convolution, after its normalization and activation)."),
    maps: str = typer.Option("all", help='Maps of every layer: "all", or indices and ranges like "0-15".'),
    steps: int = typer.Option(600, help="Maximum ascent steps."),
    epsilon: float = typer.Option(0.01, help="Step size of the normalized gradient."),
    seed: int = typer.Option(0, help="Random seed."),
    images: Optional[str] = ImagesOpt,
    assess: bool = typer.Option(True, "--assess/--no-assess", help="Dataset examples and superstimulus ratios."),
    input_range: Optional[str] = RangeOpt,
    mean: Optional[str] = MeanOpt,
    std: Optional[str] = StdOpt,
    standardize: bool = StandardizeOpt,
    contrast: str = typer.Option("tile", help="tile: each OIP its own robust colour scale; shared: one per layer."),
    memory_budget_mb: float = typer.Option(512.0, help="Split big layers into chunks within this budget."),
    out: Path = typer.Option(Path("oipscope-zoo"), help="Folder for the gallery and its data."),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted zoo in --out."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the plan and an estimated time; write nothing."),
    unsafe_load: bool = UnsafeOpt,
    dataset: Optional[str] = DatasetOpt,
) -> None:
    """OIPs for the maps of the chosen layers, dataset examples, and a browsable HTML gallery.

    Ctrl-C keeps every finished layer (and chunk); the same command with --resume continues.

    Example: oipscope zoo my_cnn.h5 --input-range -1,1 --images faces/ --layers 'activation_*' --maps 0-15
    """
    from .engine import OipConfig
    from .models import describe
    from .plan import plan_zoo
    from .report import write_gallery
    from .runs import run_zoo

    config = OipConfig(steps=steps, epsilon=epsilon, seed=seed, memory_budget_mb=memory_budget_mb)
    from .plot import CONTRASTS

    if contrast not in CONTRASTS:
        raise ConfigError(f"--contrast must be one of {', '.join(CONTRASTS)}, got {contrast!r}")
    if not dry_run:
        _check_output(out)
    subject = _subject(model, unsafe_load, input_range, mean, std, standardize)
    plan = plan_zoo(subject, layers, maps)  # every layer and map checked before the first minute is spent
    image_set = _images(images, subject, model, dataset=dataset) if assess else None
    if dry_run:
        _print_plan(subject, plan, config, image_set)
        return
    started = time.perf_counter()
    begun: list[str] = []  # layers in the order they were started; all but the last are finished
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TimeElapsedColumn(), console=console) as progress, _output_errors(out):
        tasks: dict[tuple[str, str], int] = {}

        n_layers = [0]

        def on_layer(name: str, index: int, total: int) -> None:
            begun.append(name)
            n_layers[0] = total

        def on_progress(name: str, stage: str, done: int, total: int) -> None:
            if (name, stage) not in tasks:
                label = f"{name} ({len(begun)}/{n_layers[0]}) {stage}"
                tasks[name, stage] = progress.add_task(label, total=total)
            progress.update(tasks[name, stage], completed=done, total=total)

        try:
            runs = run_zoo(subject, [p.layer_name for p in plan], config, out, images=image_set, maps=maps,
                           resume=resume, on_layer=on_layer, on_progress=on_progress)
        except KeyboardInterrupt:
            progress.stop()
            finished = ", ".join(begun[:-1]) or "none"
            err_console.print(f"interrupted: finished layers ({finished}) are kept in {out}; "
                              "run the same command with --resume to continue", markup=False, soft_wrap=True)
            raise typer.Exit(130) from None
    _skipped_note(image_set)
    with _output_errors(out):
        index = write_gallery(out, (subject.name, describe(subject.model)),
                              [(run.result, run.examples) for run in runs], images=image_set, contrast=contrast)
    table = Table(title=f"oipscope zoo of {subject.name}")
    for column in ("layer", "maps", "converged", "silent", "median ratio", "pattern accuracy", "seconds"):
        table.add_column(column)
    for run in runs:
        summary = run.result.summary()
        ratio = summary.get("median_ratio")
        table.add_row(run.result.layer_name, str(summary["maps"]), str(summary["converged"]),
                      str(summary["silent"]), "-" if ratio is None or ratio != ratio else f"{ratio:.2f}",
                      _pattern_accuracy_text(run.examples), f"{summary['seconds']:.1f}")
    console.print(table, markup=False)
    console.print(f"gallery: {index}  ({time.perf_counter() - started:.0f} s)", markup=False)


def _pattern_accuracy_text(examples) -> str:
    """The zoo table's pattern accuracy: a percentage, "no labels", or "-" without images."""
    if examples is None:
        return "-"
    if examples.class_means is None:
        return "no labels"
    accuracy = examples.pattern_accuracy
    return f"{100 * accuracy:.1f} %" if accuracy == accuracy else "n/a"


def _print_plan(subject, plan, config, image_set) -> None:
    """``zoo --dry-run``: one line per layer with its maps, output size and estimated time."""
    from .plan import estimate_seconds

    n_images = len(image_set) if image_set is not None else 0
    images_text = f"{n_images} images of {image_set.name}" if image_set is not None else "no images"
    console.print(f"plan for {subject.name}: {len(plan)} layer(s), input {subject.encoding.describe()}, "
                  f"{images_text}; nothing is written", markup=False)
    total = 0.0
    for item in plan:
        seconds = estimate_seconds(subject, item, config, n_images=n_images)
        total += seconds
        height, width, n_maps = item.output_shape
        console.print(f"  {item.layer_name:<28} {item.class_name:<20} {len(item.maps):>5} of {n_maps:<5} maps  "
                      f"{height}x{width}  ~{_duration(seconds)}", markup=False)
    console.print(f"estimated time: ~{_duration(total)} on this machine (from a short timed probe per layer)",
                  markup=False)


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


@app.command()
def report(
    results_dir: Path = typer.Argument(..., help="A gallery folder written by `oipscope zoo`."),
    out: Optional[Path] = typer.Option(None, help="Where to write the pages (default: RESULTS_DIR)."),
) -> None:
    """Rebuild the HTML gallery from saved results, without recomputing anything.

    Example: oipscope report oipscope-zoo --out zoo-pages
    """
    from .report import rebuild_gallery

    console.print(f"gallery: {rebuild_gallery(results_dir, out)}", markup=False)


def _assess(result, subject, images, out: Path):
    """Dataset examples of the layer (saved as examples.npz) and the OIPs' ratios and classes."""
    from .runs import examine_layer

    with Progress(TextColumn(f"{Path(images.name).name} examples"), BarColumn(),
                  TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(), console=console) as progress:
        task = progress.add_task("", total=len(images))
        result, examples = examine_layer(
            subject, result, images,
            on_progress=lambda done, total: progress.update(task, completed=done, total=total))
    _skipped_note(images)
    examples.save(Path(out) / "examples.npz")
    return result


def _save_oip_grid(result, path: Path) -> Path:
    from .plot import oip_grid

    figure = oip_grid(result)
    figure.savefig(path, dpi=100)
    return path


def _print_summary(result) -> None:
    summary = result.summary()
    console.print(
        f"{result.layer_name}: {summary['maps']} OIPs, {summary['converged']} converged, "
        f"{summary['step_limit']} at the step limit, {summary['silent']} silent"
        + (f", {summary['nonfinite']} non-finite" if summary.get("nonfinite") else "")
        + f", {summary['seconds']:.1f} s",
        markup=False,
    )
    if summary.get("maps_live_on_data"):
        console.print(
            f"superstimulus ratio: median {summary['median_ratio']:.2f}, "
            f"{summary['ratio_at_least_1']}/{summary['maps_live_on_data']} maps that fire on the data "
            f"beat every one of its images; most common evoked class: {summary.get('common_evoked_class')}",
            markup=False,
        )


@app.command()
def activations(
    model: Optional[Path] = ModelArg,
    layer: str = typer.Option(..., "--layer", help="Layer name, e.g. Conv2D_2 or Dense_1 (see `oipscope info`)."),
    index: Optional[list[int]] = typer.Option(None, "--index", help="Image index in --images (repeatable)."),
    digit: Optional[int] = typer.Option(None, "--digit", help="Class label: show the first --count images of it."),
    count: int = typer.Option(6, help="Images for --digit (or random images when nothing is chosen)."),
    image: Optional[Path] = typer.Option(None, "--image", help="A PNG/JPEG file instead of a set of images."),
    invert: bool = typer.Option(False, "--invert", help="Invert --image (for dark digits on light paper)."),
    images: Optional[str] = ImagesOpt,
    input_range: Optional[str] = RangeOpt,
    mean: Optional[str] = MeanOpt,
    std: Optional[str] = StdOpt,
    standardize: bool = StandardizeOpt,
    top: int = typer.Option(8, help="Top maps listed per image."),
    out: Path = typer.Option(Path("activations.png"),
                             help="Figure of the maps to write (.png, .pdf, .svg, ...; no suffix: .png)."),
    unsafe_load: bool = UnsafeOpt,
    dataset: Optional[str] = typer.Option(None, hidden=True, help="Old name: mnist or fashion-mnist."),
    split: str = typer.Option("test", hidden=True, help="Old option: the split of --dataset (test or train)."),
) -> None:
    """Show a layer's activations for real images: top maps per image and a PNG grid of the maps.

    Images come from --images (default: the embedded MNIST test split for the embedded model), or --image FILE.

    Example: oipscope activations --layer Conv2D_2 --digit 4 --count 6 --out four.png
    """
    from .activations import layer_activations, load_image_file, select_images, top_maps
    from .plot import activation_grid

    chosen = [name for name, value in (("--index", index), ("--digit", digit), ("--image", image))
              if value not in (None, [])]
    if len(chosen) > 1:
        raise ConfigError(f"give only one of --index, --digit, --image (got {', '.join(chosen)})")
    if split not in ("test", "train"):
        raise ConfigError(f"--split must be 'test' or 'train', got {split!r}")
    from matplotlib.backend_bases import FigureCanvasBase

    formats = FigureCanvasBase.get_supported_filetypes()
    if out.is_dir():
        raise OutputError(f"cannot write output {out}: it is a folder; give a file name such as {out / 'act.png'}")
    if not out.suffix:
        out = out.with_name(out.name + ".png")  # what matplotlib would write, and what we then print
    elif out.suffix[1:].lower() not in formats:
        raise ConfigError(f"--out {out}: unknown image format {out.suffix!r}; use one of "
                          f"{', '.join('.' + f for f in sorted(formats))} (no suffix: .png)")
    _check_output(out)
    subject = _subject(model, unsafe_load, input_range, mean, std, standardize)
    if image is not None:
        pixels = load_image_file(image, subject.input_shape, invert=invert)[None]
        row_titles, labels = [image.name], ["-"]
    else:
        if images is None and dataset is not None:
            images = dataset if split == "train" else f"{dataset}-test"
        image_set = _images(images, subject, model)
        if image_set is None:
            raise ConfigError("no images to show: give --images FOLDER (or a .npz file, or a set name) or --image FILE")
        pixels, label_values, indices = select_images(image_set, indices=index or None, label=digit, count=count)
        names = image_set.class_names
        labels = [("-" if int(v) < 0 else names[int(v)] if names is not None and int(v) < len(names) else str(int(v)))
                  for v in label_values]
        row_titles = [image_set.item_name(int(i)) for i in indices]
    values = layer_activations(subject, layer, pixels)
    table = Table(title=f"{layer}: top maps by mean activation  {tuple(values.shape[1:])}")
    for column in ("image", "label", "top maps (map: mean activation)"):
        table.add_column(column)
    for row_title, label, activation in zip(row_titles, labels, values):
        table.add_row(row_title, label, "  ".join(f"{i}: {v:.3g}" for i, v in top_maps(activation, top)))
    console.print(table, markup=False)
    figure = activation_grid(values, pixels, [f"{t} {lab}" for t, lab in zip(row_titles, labels)],
                             title=f"{layer} activations ({subject.name})")
    with _output_errors(out):
        out.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(out, dpi=100)
    console.print(f"wrote {out}", markup=False, highlight=False, soft_wrap=True)


def main() -> None:
    """Entry point of the console script: run the app, turning errors into one line."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TensorFlow's C++ start-up chatter
    try:
        app()  # standalone: usage errors print their message and exit 2
    except OipscopeError as exc:
        if _state["debug"]:
            raise
        err_console.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        if _state["debug"]:
            raise
        err_console.print("interrupted", markup=False)
        sys.exit(130)
