"""The commands that look at given images: ``oipscope activations`` and ``oipscope dream``.

They register on the one :data:`~oipscope.cli.commands.app`; :mod:`oipscope.cli.commands` imports
this module, so ``oipscope --help`` lists them with the others.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import typer
from rich.table import Table

from ..errors import ConfigError, OutputError
from .commands import app
from .groups import ENCODING, PIXEL_ENCODING
from .options import (
    ImagesOpt, ModelArg, UnsafeOpt,
    check_output, console, images_option, output_errors, subject_option,
)

__all__ = ["activations", "dream", "save_pixels"]


@app.command()
@ENCODING
def activations(
    model: Optional[Path] = ModelArg,
    layer: str = typer.Option(..., "--layer", help="Layer name, e.g. Conv2D_2 or Dense_1 (see `oipscope info`)."),
    index: Optional[list[int]] = typer.Option(None, "--index", help="Image index in --images (repeatable)."),
    digit: Optional[int] = typer.Option(None, "--digit", help="Class label: show the first --count images of it."),
    count: int = typer.Option(6, help="Images for --digit (or random images when nothing is chosen)."),
    image: Optional[Path] = typer.Option(None, "--image", help="A PNG/JPEG file instead of a set of images."),
    invert: bool = typer.Option(False, "--invert", help="Invert --image (for dark digits on light paper)."),
    images: Optional[str] = ImagesOpt,
    top: int = typer.Option(8, help="Top maps listed per image."),
    out: Path = typer.Option(Path("activations.png"),
                             help="Figure of the maps to write (.png, .pdf, .svg, ...; no suffix: .png)."),
    unsafe_load: bool = UnsafeOpt,
    dataset: Optional[str] = typer.Option(None, hidden=True, help="Old name: mnist or fashion-mnist."),
    split: str = typer.Option("test", hidden=True, help="Old option: the split of --dataset (test or train)."),
    *,
    encoding: dict,
) -> None:
    """Show a layer's activations for real images: top maps per image and a PNG grid of the maps.

    Images come from --images (default: the embedded MNIST test split for the embedded model), or --image FILE.

    Example: oipscope activations --layer Conv2D_2 --digit 4 --count 6 --out four.png
    """
    from ..analysis.activations import layer_activations, load_image_file, select_images, top_maps
    from ..figures.plot import activation_grid

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
    check_output(out)
    subject = subject_option(model, unsafe_load, **encoding)
    if image is not None:
        pixels = load_image_file(image, subject.input_shape, invert=invert)[None]
        row_titles, labels = [image.name], ["-"]
    else:
        if images is None and dataset is not None:
            images = dataset if split == "train" else f"{dataset}-test"
        image_set = images_option(images, subject, model)
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
    with output_errors(out):
        out.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(out, dpi=100)
    console.print(f"wrote {out}", markup=False, highlight=False, soft_wrap=True)


@app.command()
@PIXEL_ENCODING
def dream(
    image: Path = typer.Argument(..., help="A PNG/JPEG to dream on, at its own size."),
    model: Optional[Path] = typer.Option(None, "--model", help="A .keras or .h5 model file (default: the embedded CNN)."),
    layer: str = typer.Option(..., "--layer", help="The layer whose activation to amplify (see `oipscope info`)."),
    maps: str = typer.Option("all", help='Maps to amplify: "all", or indices and ranges like "0-3,7".'),
    octaves: int = typer.Option(4, help="Image sizes the dream climbs at, smallest first."),
    octave_scale: float = typer.Option(1.4, help="Size ratio between neighbouring octaves."),
    steps: int = typer.Option(50, help="Ascent steps per octave."),
    epsilon: float = typer.Option(0.01, help="Step size of the normalized gradient."),
    out: Path = typer.Option(Path("oipscope-dream"), help="Folder for dream.png and evolution.png."),
    unsafe_load: bool = UnsafeOpt,
    *,
    encoding: dict,
) -> None:
    """Deep Dream: amplify what a layer (or some of its maps) sees in an image, octave by octave.

    Writes OUT/dream.png (the dreamed image, at the input image's size) and OUT/evolution.png
    (the input, then the image after each octave). A model that takes any size dreams at the image's.

    Example: oipscope dream photo.jpg --model my_cnn.h5 --layer activation_4 --octaves 4 --out dream
    """
    from ..analysis.activations import load_image_file
    from ..analysis.dream import DreamConfig, dream as dream_image
    from ..data.imagefiles import image_size
    from ..figures.tiles import tile_images

    config = DreamConfig(octaves=octaves, octave_scale=octave_scale, steps=steps, epsilon=epsilon)
    check_output(out)
    width, height = image_size(image)  # a file over the pixel limit fails here, before TensorFlow starts
    subject = subject_option(model, unsafe_load, **encoding, any_size=(height, width))  # the dream runs at the image's size anyway
    pixels = load_image_file(image, (height, width, subject.input_shape[2]))
    with console.status(f"dreaming on {image.name} with {layer} ({octaves} octaves x {steps} steps)"):
        result = dream_image(subject, pixels, layer, maps, config)
    with output_errors(out):
        out.mkdir(parents=True, exist_ok=True)
        frames = [pixels, *result.frames]
        strip = tile_images([frame.astype(np.float32) for frame in frames], ncols=len(frames), gap=4, fill=255.0)
        save_pixels(result.image, out / "dream.png")
        save_pixels(strip, out / "evolution.png")
    console.print(f"{layer}: mean activation {result.start_activation:.3g} in the image, "
                  f"{result.activations[-1]:.3g} in the dream; wrote {out / 'dream.png'} and "
                  f"{out / 'evolution.png'}", markup=False, soft_wrap=True)


def save_pixels(pixels: np.ndarray, path: Path) -> None:
    """Pixels 0..255 (grey or RGB) as an image file at ``path``."""
    from PIL import Image

    array = np.clip(np.round(pixels), 0, 255).astype(np.uint8)
    Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array).save(path)
