"""The ``oipscope`` command line: a thin layer over the library API.

Each command is one function whose docstring is its help text. Errors of
oipscope are printed as one line and exit with the error's code (see README);
``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from .errors import OipscopeError

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


def _load(model_path: Optional[Path], unsafe_load: bool):
    from .cnn import default_model_path
    from .models import load_model

    if unsafe_load:
        err_console.print("[yellow]warning:[/] --unsafe-load: code inside the model file may run")
    return load_model(model_path or default_model_path(), safe_mode=not unsafe_load)


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
