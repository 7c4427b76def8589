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


def _load(model_path: Optional[Path], unsafe_load: bool):
    from .cnn import default_model_path
    from .models import check_model_file, load_model

    path = check_model_file(model_path or default_model_path())  # a bad path fails before TensorFlow starts
    if unsafe_load:
        err_console.print("[yellow]warning:[/] --unsafe-load: code inside the model file may run")
    _start_tensorflow()
    return load_model(path, safe_mode=not unsafe_load)


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
    dataset: str = typer.Option("mnist", help="Training set to compare the OIPs with (mnist, fashion-mnist)."),
    assess: bool = typer.Option(True, "--assess/--no-assess", help="Compare OIPs with the dataset's best images."),
    out: Path = typer.Option(Path("oipscope-out"), help="Folder for the result and the PNG grid."),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted run in --out."),
    unsafe_load: bool = UnsafeOpt,
) -> None:
    """Create OIPs for the maps of a layer; write the result and a PNG grid.

    Maps are done in chunks of --chunk-maps (32) and each finished chunk is saved at once:
    after Ctrl-C, the same command with --resume computes only what is missing.

    With --assess (default) the training set is streamed through the layer to give each OIP its
    superstimulus ratio (OIP activation / best training image's) and the class it evokes.

    Example: oipscope find --layer Conv2D_3 --maps 0-15 --out oips
    """
    from .cnn import default_model_path
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
    keras_model = _load(model, unsafe_load)
    with Progress(TextColumn(f"{layer}"), BarColumn(), TextColumn("{task.completed}/{task.total} OIPs"),
                  TimeElapsedColumn(), console=console) as progress, _output_errors(out):
        task = progress.add_task("", total=None)
        try:
            result = run_layer(
                keras_model, layer, maps, config, out, resume=resume, chunk_maps=chunk_maps,
                on_progress=lambda done, total: progress.update(task, completed=done, total=total),
                model_path=model or default_model_path(),
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
        if assess:
            result = _assess(result, keras_model, dataset, out)
        folder = result.save(out)
        grid = _save_oip_grid(result, folder / "oips.png")
    _print_summary(result)
    console.print(f"wrote {folder} (result) and {grid}", markup=False)


@app.command()
def zoo(
    model: Optional[Path] = ModelArg,
    layers: Optional[str] = typer.Option(None, help="Comma-separated layers (default: all layers with maps)."),
    steps: int = typer.Option(600, help="Maximum ascent steps."),
    epsilon: float = typer.Option(0.01, help="Step size of the normalized gradient."),
    seed: int = typer.Option(0, help="Random seed."),
    dataset: str = typer.Option("mnist", help="Training set for dataset examples (mnist, fashion-mnist)."),
    assess: bool = typer.Option(True, "--assess/--no-assess", help="Dataset examples and superstimulus ratios."),
    memory_budget_mb: float = typer.Option(512.0, help="Split big layers into chunks within this budget."),
    out: Path = typer.Option(Path("oipscope-zoo"), help="Folder for the gallery and its data."),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted zoo in --out."),
    unsafe_load: bool = UnsafeOpt,
) -> None:
    """OIPs for every map of every chosen layer, dataset examples, and a browsable HTML gallery.

    Ctrl-C keeps every finished layer (and chunk); the same command with --resume continues.

    Example: oipscope zoo --layers Conv2D_1,Conv2D_3 --out zoo
    """
    from .cnn import default_model_path
    from .data import load_dataset
    from .engine import OipConfig
    from .models import describe
    from .report import write_gallery
    from .runs import dataset_fits, run_zoo

    config = OipConfig(steps=steps, epsilon=epsilon, seed=seed, memory_budget_mb=memory_budget_mb)
    _check_output(out)
    keras_model = _load(model, unsafe_load)
    data = load_dataset(dataset) if assess else None
    if data is not None and not dataset_fits(keras_model, data):
        console.print(f"note: {dataset} images do not fit the model input; no dataset examples", markup=False)
        data = None
    names = [name.strip() for name in layers.split(",") if name.strip()] if layers else None
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
            runs = run_zoo(keras_model, names, config, out, dataset=data, resume=resume,
                           model_path=model or default_model_path(), on_layer=on_layer, on_progress=on_progress)
        except KeyboardInterrupt:
            progress.stop()
            finished = ", ".join(begun[:-1]) or "none"
            err_console.print(f"interrupted: finished layers ({finished}) are kept in {out}; "
                              "run the same command with --resume to continue", markup=False, soft_wrap=True)
            raise typer.Exit(130) from None
    with _output_errors(out):
        index = write_gallery(out, (keras_model.name, describe(keras_model)),
                              [(run.result, run.examples) for run in runs],
                              images=data.train.images if data is not None else None,
                              labels=data.train.labels if data is not None else None,
                              class_names=data.class_names if data is not None else None)
    table = Table(title=f"oipscope zoo of {keras_model.name}")
    for column in ("layer", "maps", "converged", "silent", "median ratio", "seconds"):
        table.add_column(column)
    for run in runs:
        summary = run.result.summary()
        ratio = summary.get("median_ratio")
        table.add_row(run.result.layer_name, str(summary["maps"]), str(summary["converged"]),
                      str(summary["silent"]), "-" if ratio is None else f"{ratio:.2f}", f"{summary['seconds']:.1f}")
    console.print(table, markup=False)
    console.print(f"gallery: {index}  ({time.perf_counter() - started:.0f} s)", markup=False)


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


def _assess(result, keras_model, dataset: str, out: Path):
    """Dataset examples of the layer (saved as examples.npz) and the OIPs' ratios and classes."""
    from .data import load_dataset
    from .runs import dataset_fits, examine_layer

    data = load_dataset(dataset)
    if not dataset_fits(keras_model, data):
        console.print(f"note: {dataset} images do not fit the model input; OIPs not compared with data",
                      markup=False)
        return result
    with Progress(TextColumn(f"{dataset} examples"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TimeElapsedColumn(), console=console) as progress:
        task = progress.add_task("", total=len(data.train.images))
        result, examples = examine_layer(
            keras_model, result, data,
            on_progress=lambda done, total: progress.update(task, completed=done, total=total))
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
    if "median_ratio" in summary:
        console.print(
            f"superstimulus ratio: median {summary['median_ratio']:.2f}, "
            f"{summary['ratio_at_least_1']}/{summary['maps_live_on_data']} maps that fire on the data "
            f"beat every training image; most common evoked class: {summary.get('common_evoked_class')}",
            markup=False,
        )


@app.command()
def activations(
    model: Optional[Path] = ModelArg,
    layer: str = typer.Option(..., "--layer", help="Layer name, e.g. Conv2D_2 or Dense_1 (see `oipscope info`)."),
    index: Optional[list[int]] = typer.Option(None, "--index", help="Dataset image index (repeatable)."),
    digit: Optional[int] = typer.Option(None, "--digit", help="Class label: show the first --count images of it."),
    count: int = typer.Option(6, help="Images for --digit (or random images when nothing is chosen)."),
    image: Optional[Path] = typer.Option(None, "--image", help="A PNG/JPEG file instead of dataset images."),
    invert: bool = typer.Option(False, "--invert", help="Invert --image (for dark digits on light paper)."),
    dataset: str = typer.Option("mnist", help="mnist or fashion-mnist."),
    split: str = typer.Option("test", help="Dataset split: test or train."),
    top: int = typer.Option(8, help="Top maps listed per image."),
    out: Path = typer.Option(Path("activations.png"), help="PNG grid of the maps to write."),
    unsafe_load: bool = UnsafeOpt,
) -> None:
    """Show a layer's activations for real images: top maps per image and a PNG grid of the maps.

    Example: oipscope activations --layer Conv2D_2 --digit 4 --count 6 --out four.png
    """
    from .activations import layer_activations, load_image_file, select_images, top_maps
    from .data import load_dataset
    from .models import image_input_shape
    from .plot import activation_grid

    chosen = [name for name, value in (("--index", index), ("--digit", digit), ("--image", image))
              if value not in (None, [])]
    if len(chosen) > 1:
        raise ConfigError(f"give only one of --index, --digit, --image (got {', '.join(chosen)})")
    if split not in ("test", "train"):
        raise ConfigError(f"--split must be 'test' or 'train', got {split!r}")
    _check_output(out)
    keras_model = _load(model, unsafe_load)
    if image is not None:
        images = load_image_file(image, image_input_shape(keras_model), invert=invert)[None]
        row_titles, labels = [image.name], ["-"]
    else:
        data = load_dataset(dataset)
        images, label_values, indices = select_images(
            getattr(data, split), indices=index or None, label=digit, count=count)
        labels = [data.class_names[int(v)] for v in label_values]
        row_titles = [f"#{int(i)}" for i in indices]
    values = layer_activations(keras_model, layer, images)
    table = Table(title=f"{layer}: top maps by mean activation  {tuple(values.shape[1:])}")
    for column in ("image", "label", "top maps (map: mean activation)"):
        table.add_column(column)
    for row_title, label, activation in zip(row_titles, labels, values):
        table.add_row(row_title, label, "  ".join(f"{i}: {v:.3g}" for i, v in top_maps(activation, top)))
    console.print(table, markup=False)
    figure = activation_grid(values, images, [f"{t} {lab}" for t, lab in zip(row_titles, labels)],
                             title=f"{layer} activations ({keras_model.name})")
    with _output_errors(out):
        out.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(out, dpi=100)
    console.print(f"wrote {out}", markup=False)


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
