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
from pathlib import Path
from typing import Optional

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from .options import (
    DatasetOpt, ImagesOpt, InputSizeOpt, ObjectiveOpt, OptimizerOpt, ParametrizationOpt, MethodOpt, RobustOpt, TransformsOpt, WarmupOpt, default_layer_option, method_config, method_line, method_option,
    subject_method_config, ModelArg, UnsafeOpt, backend_option, check_output,
    console, encoding_option, err_console, images_option, input_size_option, kept_chunks, load_model_option, numbers_option, output_errors, skipped_note, start_tensorflow, state,
    subject_option, SizeOpt, PrecisionOpt, canvas_note,
)
from ..errors import ConfigError, OipscopeError
from ..runs.layout import RUN_JSON
from ..runs.lock import output_lock
from ..runs.phases import PHASE_SECONDS, phase, recording
from .groups import CLUSTER, ENCODING
from .progress import progress_display
from .zoo_plan import choice_note, choose_zoo_maps, print_plan

__all__ = ["app", "main"]

app = typer.Typer(
    help="See what the feature maps of a Keras CNN respond to.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

def note(line: str) -> None:
    """One ``note:`` line about what a run did by itself (a damaged chunk recomputed, a stale lock taken over)."""
    console.print(f"note: {line}", markup=False, soft_wrap=True)


@app.callback()
def _root(debug: bool = typer.Option(False, "--debug", help="Show tracebacks on errors.")) -> None:
    state["debug"] = debug


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
    from ..model.cnn import TrainConfig
    from ..model.cnn import train as run_training

    config = TrainConfig(
        dataset=dataset, epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
        lr_decay=lr_decay, output_activation=output_activation, seed=seed,
        train_limit=train_limit, data_dir=str(data_dir) if data_dir else None,
    )
    start_tensorflow()
    with Progress(TextColumn("epoch {task.completed}/{task.total}"), BarColumn(),
                  TextColumn("{task.description}"), TimeElapsedColumn(), console=console) as progress:
        task = progress.add_task("", total=epochs)

        def on_epoch_end(epoch: int, logs: dict) -> None:
            progress.update(task, completed=epoch + 1, description=(
                f"loss {logs.get('loss', 0):.4f}  val_accuracy {logs.get('val_accuracy', 0):.4f}"))

        result = run_training(config, out, save_h5=h5, on_epoch_end=on_epoch_end)
    console.print(f"test accuracy {result.test_accuracy:.4f} in {result.seconds:.0f} s; wrote {result.path}")


@app.command()
def info(model: Optional[Path] = ModelArg, unsafe_load: bool = UnsafeOpt,
         input_size: Optional[str] = InputSizeOpt) -> None:
    """Show a model's input shape, its layers and which layers have feature maps.

    Example: oipscope info cnn.keras
    """
    from ..model.loading import describe, feature_layers, flattened, image_input_shape, with_input_size

    size = input_size_option(input_size)
    keras_model = load_model_option(model, unsafe_load)
    keras_model = flattened(with_input_size(keras_model, *size) if size else keras_model)  # as find and zoo see it
    table = Table(title=f"{keras_model.name}  (input {keras_model.inputs[0].shape})")
    for column in ("layer", "type", "output shape", "maps", "params"):
        table.add_column(column)
    for layer in describe(keras_model):
        table.add_row(layer.name, layer.class_name, str(layer.output_shape),
                      str(layer.n_maps or ""), f"{layer.n_params:,}")
    console.print(table, markup=False)
    shape = tuple(keras_model.inputs[0].shape) if len(keras_model.inputs) == 1 else ()
    try:
        height, width, channels = image_input_shape(keras_model)
        console.print(f"image input: {height}x{width}, {channels} channel(s)")
    except OipscopeError as exc:
        if len(shape) == 4 and shape[3] is not None and None in shape[1:3]:
            console.print(f"image input of any size, {shape[3]} channel(s): give --input-size H,W (e.g. 224) "
                          "to info, find, zoo and activations", markup=False)
        else:
            console.print(f"no image input: {exc}", markup=False)
    maps = feature_layers(keras_model)
    listing = ", ".join(f"{layer.name} ({layer.n_maps})" for layer in maps) or "none"
    console.print(f"layers with feature maps: {listing}", markup=False)
    if maps:
        from ..model.layers import default_layers

        console.print(f"zoo's default layers (one per convolution): {', '.join(default_layers(keras_model))}",
                      markup=False)
    encoding = encoding_option(keras_model, model)
    if encoding.source == "assumed":
        console.print("input encoding: not recorded in the model; give --input-range LO,HI (with --mean/--std), "
                      "--preprocess caffe|tf|torch (keras.applications models) or --standardize to find, zoo "
                      "and activations (default: --standardize)", markup=False)
    else:
        console.print(f"input encoding: {encoding.describe()} ({encoding.source})", markup=False)


@app.command()
@ENCODING
@CLUSTER
def find(
    model: Optional[Path] = ModelArg,
    layer: Optional[str] = typer.Option(
        None, help="Layer whose maps to visualize (default: the last convolution's; with --objective class, "
                   "the output layer)."),
    maps: str = typer.Option("all", help='Maps: "all", or indices and ranges like "0-15,40".'),
    objective: str = ObjectiveOpt,
    method: str = MethodOpt,
    robust: bool = RobustOpt,
    transforms: Optional[str] = TransformsOpt,
    parametrization: Optional[str] = ParametrizationOpt,
    optimizer: Optional[str] = OptimizerOpt,
    warmup_steps: Optional[int] = WarmupOpt,
    size: Optional[int] = SizeOpt,
    precision: str = PrecisionOpt,
    strategy: int = typer.Option(0, help="0: one ascent from mixed scales; 1: coarse-to-fine."),
    steps: Optional[int] = typer.Option(None, help="Maximum ascent steps (default 600; 512 with --robust)."),
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
    chunk_maps: Optional[int] = typer.Option(
        None, help="Maps per saved chunk, what --resume can skip (default: as many as one batch holds)."),
    images: Optional[str] = ImagesOpt,
    assess: bool = typer.Option(True, "--assess/--no-assess", help="Compare the OIPs with the images' best ones."),
    out: Path = typer.Option(Path("oipscope-out"), help="Folder for the result and the PNG grid."),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted run in --out."),
    unsafe_load: bool = UnsafeOpt,
    dataset: Optional[str] = DatasetOpt,
    *,
    encoding: dict,
    cluster: dict,
) -> None:
    """Create OIPs for the maps of a layer; write the result and a PNG grid.

    Maps are done in chunks (--chunk-maps) and each finished chunk is saved at once: after
    Ctrl-C, the same command with --resume computes only what is missing (also with another
    --memory-budget-mb).

    With images (--images, or the embedded MNIST test split for the embedded model) each OIP gets
    its superstimulus ratio (OIP activation / the best image's) and the class it evokes.

    Example: oipscope find my_cnn.h5 --layer activation_6 --input-range -1,1 --images faces/ --out oips
    """
    from ..config import Execution

    execution = Execution(memory_budget_mb=memory_budget_mb, precision=precision)
    method = method_option(method, robust)
    fields = dict(
        epsilon=epsilon, strategy=strategy, start=start, canvas=size, precursor=None if precursor else precursor,
        restarts=restarts, n_per_map=n_per_map, seed=seed, objective=objective, transforms=transforms,
        parametrization=parametrization, optimizer=optimizer, warmup_steps=warmup_steps,
        scales=numbers_option(scales, int, "--scales", "3,7,14,28"),
        factors=numbers_option(factors, float, "--factors", "0.5,0.5,0.5,0.5"),
    )
    config = method_config(method == "robust", steps, **fields)  # bad options fail before the model loads
    if chunk_maps is not None and chunk_maps < 1:
        raise ConfigError(f"--chunk-maps must be >= 1, got {chunk_maps}")
    check_output(out)
    subject = subject_option(model, unsafe_load, **encoding)
    layer = default_layer_option(layer, subject.model, config.objective)
    image_set = images_option(images, subject, model, dataset=dataset) if assess else None  # before the long part
    config = subject_method_config(method, subject, image_set, steps, **fields)
    console.print(method_line(method, config, subject), markup=False, soft_wrap=True)
    if canvas_note(subject, config):
        note(canvas_note(subject, config))
    with output_errors(out), output_lock(out, on_note=note), recording() as seconds:  # one run per folder
        began = time.perf_counter()
        result = _find_in(out, subject, layer, maps, config, resume, chunk_maps, image_set, execution, cluster,
                          unsafe_load)
        seconds["search"] = time.perf_counter() - began - sum(seconds.values())  # the rest: OIPs
        skipped_note(image_set)
        with phase("gallery"):
            grid = _save_oip_grid(result, out / "oips.png")
        _save_phases(out / RUN_JSON, seconds)
    _print_summary(result)
    console.print(f"wrote {out} (result) and {grid}", markup=False)


def _find_in(out: Path, subject, layer: str, maps: str, config, resume: bool, chunk_maps: Optional[int], image_set,
             execution, cluster: dict, unsafe_load: bool):
    """The search of ``find`` with its progress bars; Ctrl-C says what is kept."""
    from ..runs.jobs import run_layer

    with backend_option(**cluster, unsafe_load=unsafe_load) as backend, \
            progress_display(console) as progress, output_errors(out):
        oips = progress.add_task(f"{layer} OIPs", total=None, visible=False)  # shown once the search reports
        examples = (progress.add_task(f"{Path(image_set.name).name} examples", total=len(image_set), visible=False)
                    if image_set is not None else None)

        def on_examples(done: int, total: int) -> None:
            progress.update(examples, completed=done, total=total, visible=True)

        try:
            return run_layer(
                subject, layer, maps, config, out, resume=resume, chunk_maps=chunk_maps, images=image_set,
                execution=execution, backend=backend,
                on_progress=lambda done, total: progress.update(oips, completed=done, total=total, visible=True),
                on_examples=on_examples, on_note=note,
            )
        except KeyboardInterrupt:
            progress.stop()
            n_chunks, n_oips = kept_chunks(out)
            kept = (f"{n_chunks} finished chunk(s) with {n_oips} OIP(s) kept in {out / 'parts'}"
                    if n_chunks else f"no chunk finished yet, nothing kept in {out}")
            err_console.print(f"interrupted: {kept}; run the same command with --resume to continue",
                              markup=False, soft_wrap=True)
            raise typer.Exit(130) from None


@app.command()
@ENCODING
@CLUSTER
def zoo(
    model: Optional[Path] = ModelArg,
    layers: Optional[str] = typer.Option(
        None, help="Layers: names, shell globs (activation_*, block*_relu) or all, comma-separated "
                   "(default: one layer per convolution, after its normalization and activation)."),
    maps: Optional[str] = typer.Option(
        None, help='Maps of every layer: "all", or indices and ranges like "0-15" (default: all; 8 per layer, '
                   'evenly spread, when the whole zoo would take over an hour).'),
    time_budget: Optional[str] = typer.Option(
        None, "--time-budget", help="Sample as many maps per layer as fit this time: 90s, 30m, 2h, 1h30m."),
    objective: str = ObjectiveOpt,
    method: str = MethodOpt,
    robust: bool = RobustOpt,
    steps: Optional[int] = typer.Option(None, help="Maximum ascent steps (default 600; 512 with --robust)."),
    epsilon: float = typer.Option(0.01, help="Step size of the normalized gradient."),
    seed: int = typer.Option(0, help="Random seed."),
    size: Optional[int] = SizeOpt,
    precision: str = PrecisionOpt,
    images: Optional[str] = ImagesOpt,
    assess: bool = typer.Option(True, "--assess/--no-assess", help="Dataset examples and superstimulus ratios."),
    contrast: str = typer.Option("tile", help="tile: each OIP its own robust colour scale; shared: one per layer."),
    classes: Optional[bool] = typer.Option(None, "--classes/--no-classes", help="Also the class OIPs of the "
                                           "output layer, on classes.html (default: for up to 100 classes)."),
    memory_budget_mb: float = typer.Option(512.0, help="Split big layers into chunks within this budget."),
    out: Path = typer.Option(Path("oipscope-zoo"), help="Folder for the gallery and its data."),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted zoo in --out."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the plan and an estimated time; write nothing."),
    unsafe_load: bool = UnsafeOpt,
    dataset: Optional[str] = DatasetOpt,
    *,
    encoding: dict,
    cluster: dict,
) -> None:
    """OIPs for the maps of the chosen layers, dataset examples, and a browsable HTML gallery.

    A classifier also gets its class OIPs: what each output class wants to see (--no-classes: not).
    Ctrl-C (or SIGTERM) keeps every finished layer (and chunk); the same command with --resume continues.
    With --ray the chunks of all layers run on a Ray cluster at once; the results land here the same.

    Example: oipscope zoo my_cnn.h5 --input-range -1,1 --images faces/ --layers 'activation_*' --maps 0-15
    """
    from ..config import Execution
    from ..model.loading import describe
    from ..runs.plan import plan_zoo
    from ..gallery.worker import BackgroundGallery
    from ..runs.jobs import run_classes, run_zoo
    from ..runs.sampling import parse_duration

    method = method_option(method, robust)
    config = method_config(method == "robust", steps, epsilon=epsilon, seed=seed, objective=objective, canvas=size)
    execution = Execution(memory_budget_mb=memory_budget_mb, precision=precision)
    from ..figures.plot import CONTRASTS

    if contrast not in CONTRASTS:
        raise ConfigError(f"--contrast must be one of {', '.join(CONTRASTS)}, got {contrast!r}")
    budget = parse_duration(time_budget) if time_budget is not None else None
    if budget is not None and maps is not None:
        raise ConfigError("--maps and --time-budget both choose the maps; give one of them")
    if not dry_run:
        check_output(out)
    subject = subject_option(model, unsafe_load, **encoding)
    plan = plan_zoo(subject, layers, maps or "all")  # every layer and map checked before the first minute is spent
    image_set = images_option(images, subject, model, dataset=dataset) if assess else None
    config = subject_method_config(method, subject, image_set, steps, epsilon=epsilon, seed=seed, objective=objective,
                                   canvas=size)
    console.print(method_line(method, config, subject), markup=False, soft_wrap=True)
    class_layer = _class_layer_option(subject, classes)
    if canvas_note(subject, config):
        note(canvas_note(subject, config))
    choice = choose_zoo_maps(subject, plan, config, image_set, execution, explicit=maps is not None, budget=budget,
                             estimate=dry_run, resume_from=out if resume else None)
    if dry_run:
        print_plan(subject, choice, config, image_set, execution, class_layer)
        return
    if choice_note(choice):
        note(choice_note(choice))
    with output_lock(out, on_note=note):  # one run per folder: the search, then the last pages
        started = time.perf_counter()
        begun: list[str] = []  # layers in the order they were started; all but the last are finished
        with output_errors(out):  # each finished layer's pages are drawn in a worker process while the search goes on
            gallery = BackgroundGallery(out, (subject.name, describe(subject.model)), images=image_set,
                                        contrast=contrast)
        with backend_option(**cluster, unsafe_load=unsafe_load) as backend, \
                progress_display(console) as progress, output_errors(out):
            tasks: dict[tuple[str, str], int] = {}
            order = [item.layer_name for item in plan]

            def on_layer(name: str, index: int, total: int) -> None:
                begun.append(name)

            def on_progress(name: str, stage: str, done: int, total: int) -> None:
                if (name, stage) not in tasks:
                    label = (f"{name} ({order.index(name) + 1}/{len(order)}) {stage}" if name in order
                             else f"{name} {stage}")
                    tasks[name, stage] = progress.add_task(label, total=total)
                progress.update(tasks[name, stage], completed=done, total=total)

            try:
                with recording() as seconds:
                    runs = run_zoo(subject, [p.layer_name for p in plan], config, out, images=image_set,
                                   maps=choice.maps() if choice.sampled else maps or "all",
                                   resume=resume, execution=execution, backend=backend, on_layer=on_layer,
                                   on_progress=on_progress, on_finished=gallery.add, on_note=note)
                seconds["search"] = time.perf_counter() - started - sum(seconds.values())  # the rest: OIPs
                class_began = time.perf_counter()
                class_run = class_layer and run_classes(
                    subject, config, out, layer_name=class_layer, resume=resume, execution=execution,
                    backend=backend, on_layer=on_layer, on_note=note,
                    on_progress=lambda done, total: on_progress(class_layer, "class OIPs", done, total))
            except KeyboardInterrupt:
                progress.stop()
                gallery.close(now=True)
                finished = ", ".join(begun[:-1]) or "none"
                err_console.print(f"interrupted: finished layers ({finished}) are kept in {out}; "
                                  "run the same command with --resume to continue", markup=False, soft_wrap=True)
                raise typer.Exit(130) from None
            except BaseException:
                gallery.close()
                raise
        if class_layer:
            seconds["class OIPs"] = time.perf_counter() - class_began
        skipped_note(image_set)
        gallery_began = time.perf_counter()
        with output_errors(out):
            index = gallery.finish(class_run)
        seconds["gallery"] = time.perf_counter() - gallery_began  # the pages left after the search
        _save_phases(out / RUN_JSON, seconds)
    table = Table(title=f"oipscope zoo of {subject.name}")
    widest = max((len(run.result.layer_name) for run in runs), default=5)
    table.add_column("layer", no_wrap=True, min_width=min(40, widest))  # names whole: cut ones look alike
    for column in ("maps", "converged", "silent", "median ratio", "pattern accuracy", "seconds"):
        table.add_column(column)
    for run in runs:
        summary = run.result.summary()
        ratio = summary.get("median_ratio")
        table.add_row(run.result.layer_name, str(summary["maps"]), str(summary["converged"]),
                      str(summary["silent"]), "-" if ratio is None or ratio != ratio else f"{ratio:.2f}",
                      _pattern_accuracy_text(run.examples), f"{summary['seconds']:.1f}")
    console.print(table, markup=False)
    if class_run:
        own, n = class_run.result.summary().get("own_class", 0), len(class_run.result.maps)
        console.print(f"class OIPs of {class_layer}: the model sees {own} of {n} as their own class "
                      f"({class_run.result.seconds:.1f} s)", markup=False)
    console.print(f"gallery: {index}  ({time.perf_counter() - started:.0f} s)", markup=False)


def _pattern_accuracy_text(examples) -> str:
    """The zoo table's pattern accuracy: a percentage, "no labels", or "-" without images."""
    if examples is None:
        return "-"
    if examples.class_means is None:
        return "no labels"
    accuracy = examples.pattern_accuracy
    return f"{100 * accuracy:.1f} %" if accuracy == accuracy else "n/a"


def _class_layer_option(subject, classes: Optional[bool]) -> Optional[str]:
    """The layer whose class OIPs the zoo finds: with --classes any classifier's output, by default one's of
    at most CLASS_LIMIT classes (one line says so when a larger one is left out), none with --no-classes."""
    from ..runs.jobs import CLASS_LIMIT, class_layer

    name = None if classes is False else class_layer(subject, None if classes else CLASS_LIMIT)
    if classes and name is None:
        console.print(f"note: no class OIPs: the last layer of {subject.name} does not output (N, classes)",
                      markup=False)
    if classes is None and name is None and (many := class_layer(subject, None)) is not None:
        n_classes = int(subject.model.get_layer(many).output.shape[-1])
        console.print(f"note: no class OIPs for the {n_classes} classes of {many} (more than {CLASS_LIMIT}: "
                      "long); --classes makes them", markup=False)
    return name


def _save_phases(run_file: Path, seconds: dict[str, float]) -> None:
    """Add the phase times to ``run_file`` (the run's key stays as it was); print them with ``--debug``."""
    from ..files import atomic_write, read_saved_json

    rounded = {name: round(value, 2) for name, value in seconds.items()}
    saved = read_saved_json(run_file, "run settings") if run_file.is_file() else {}
    atomic_write(run_file, json.dumps({**saved, PHASE_SECONDS: rounded}, indent=1).encode())
    if state["debug"]:
        err_console.print("phase seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in rounded.items()), markup=False)


@app.command()
def report(
    results_dir: Path = typer.Argument(..., help="A gallery folder written by `oipscope zoo`."),
    out: Optional[Path] = typer.Option(None, help="Where to write the pages (default: RESULTS_DIR)."),
) -> None:
    """Rebuild the HTML gallery from saved results, without recomputing anything.

    Example: oipscope report oipscope-zoo --out zoo-pages
    """
    from ..gallery.site import rebuild_gallery

    with output_lock(out if out is not None else results_dir, on_note=note):  # not while a zoo writes it
        console.print(f"gallery: {rebuild_gallery(results_dir, out)}", markup=False)


def _save_oip_grid(result, path: Path) -> Path:
    from ..figures.plot import oip_grid

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
    if "own_class" in summary:
        console.print(f"class OIPs: the model sees {summary['own_class']}/{summary['maps']} as the class they climbed",
                      markup=False)
    elif summary.get("maps_live_on_data"):
        evoked = _evoked_text(result)  # "" for a model without a classifier output
        console.print(
            f"superstimulus ratio: median {summary['median_ratio']:.2f}, "
            f"{summary['ratio_at_least_1']}/{summary['maps_live_on_data']} maps that fire on the data "
            f"beat every one of its images" + (f"; {evoked}" if evoked else ""),
            markup=False,
        )
    if "median_jitter_robustness" in summary:
        console.print(
            f"quality: median jitter robustness {summary['median_jitter_robustness']:.2f} (activation kept when "
            f"shifted by 4 px), median high-frequency share {summary['median_hf_share']:.2f}",
            markup=False, soft_wrap=True,
        )


def _evoked_text(result) -> str:
    """What the summary says of the classes the model sees in the OIPs: the most common one with its
    count, the tied ones, or that they are all different ("" when none was assessed)."""
    from collections import Counter

    counts = Counter(oip.evoked_class for oip in result.maps if oip.evoked_class is not None)
    n = sum(counts.values())
    if not n:
        return ""
    top = max(counts.values())
    leaders = sorted(label for label, count in counts.items() if count == top)
    if n > 1 and top == 1:
        return f"evoked classes: all {n} different"
    if len(leaders) == 1:
        return f"most common evoked class: {leaders[0]} ({top} of {n})"
    return f"most common evoked classes: {', '.join(map(str, leaders))} ({top} of {n} each)"


def _interrupt_on_sigterm() -> None:
    """Make SIGTERM (``kill``, a scheduler's stop) end a command as Ctrl-C does: the finished work
    named and kept, workers stopped, one line, exit code 130; instead of a silent death."""
    import signal

    def interrupt(signum, frame) -> None:
        raise KeyboardInterrupt

    if hasattr(signal, "SIGTERM"):
        signal.signal(signal.SIGTERM, interrupt)


def main() -> None:
    """Entry point of the console script: run the app, turning errors into one line."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TensorFlow's C++ start-up chatter
    _interrupt_on_sigterm()
    try:
        app()  # standalone: usage errors print their message and exit 2
    except OipscopeError as exc:
        if state["debug"]:
            raise
        err_console.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        if state["debug"]:
            raise
        err_console.print("interrupted", markup=False)
        sys.exit(130)


# the image commands register on `app` when imported; last, since they import `app` from here
from . import image_commands  # noqa: E402,F401
