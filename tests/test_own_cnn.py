"""The user's own CNN through the command line: input encodings, --images, zoo layer choice, bad input.

One end-to-end run per model kind of ``real_models`` (a Keras-2 legacy ``.h5``
mini-Xception on [-1, 1] grey input, an RGB model beginning with ``Rescaling``,
an ImageNet-normalized RGB model), each fed images of another size than the
model's, then ``zoo --dry-run``, a model without images offline, and the bad
inputs of these options. Commands run in-process (typer's CliRunner over
``oipscope.cli.commands.app``; the bad-input rows through ``oipscope.cli.commands.main`` itself,
so the one-line ``error:`` and the exit code are the real ones), which keeps
TensorFlow's start-up to once per test run.
"""

from __future__ import annotations

import json
import re
import sys
import time
import traceback
from pathlib import Path

import numpy as np
import pytest
from conftest import save_mnist_sized_model
from real_models import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    build_mini_xception,
    build_rgb_imagenet,
    build_rgb_rescaling,
    imagenet_normalize,
)
from typer.testing import CliRunner

from oipscope.cli.commands import app
from oipscope.model.encoding import InputEncoding
from oipscope.analysis.examples import DatasetExamples
from oipscope.gallery.site import safe_filename
from oipscope.search.results import OipResult
from oipscope.runs.jobs import zoo_layer_folder

runner = CliRunner()
ENV = {"COLUMNS": "200"}
STEPS = ["--steps", "30"]
ATOL = 1e-5  # float32 rounding of a clipped pixel
CLASSES = ("happy", "sad")
FACE_SIZE = 40  # the faces are 40x40; the mini-Xception takes 32x32
XCEPTION_DEFAULT_LAYERS = ("activation_1", "activation_2", "activation_3", "batch_normalization_5",
                           "batch_normalization_3", "activation_4", "batch_normalization_8",
                           "batch_normalization_6", "conv2d_5")


# --- prepared inputs --------------------------------------------------------------


def _png(path: Path, pixels: np.ndarray) -> Path:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, Path]:
    """Model files (.keras) and image sets shaped unlike the models' inputs."""
    root = tmp_path_factory.mktemp("own-cnn")
    rng = np.random.default_rng(7)
    files: dict[str, Path] = {"root": root}
    files["rgb"] = root / "rgb_rescaling.keras"
    build_rgb_rescaling(32).save(files["rgb"])
    files["imagenet"] = root / "rgb_imagenet.keras"
    build_rgb_imagenet(32).save(files["imagenet"])
    # a grey 28x28 model: MNIST would fit it, so nothing may reach for MNIST
    files["own28"] = save_mnist_sized_model(root / "own28.keras", name="own28", seed=3)

    faces = root / "faces"  # two class folders of grey 40x40 PNGs and one corrupt file
    for name in CLASSES:
        for i in range(6):
            _png(faces / name / f"{name}_{i:02d}.png", rng.integers(0, 256, (FACE_SIZE, FACE_SIZE), np.uint8))
    (faces / "sad" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n but not really")
    files["faces"] = faces

    files["npz"] = root / "rgb.npz"  # uint8 RGB 48x40 (the model takes 32x32), labels 0..2
    labels = np.arange(20) % 3
    np.savez(files["npz"], x=rng.integers(0, 256, (20, 48, 40, 3), np.uint8), y=rng.permutation(labels))

    photos = root / "photos"  # RGB 24x36, no class folders: no labels
    for i in range(8):
        _png(photos / f"photo_{i}.png", rng.integers(0, 256, (24, 36, 3), np.uint8))
    files["photos"] = photos

    files["no_images"] = root / "notes-only"
    files["no_images"].mkdir()
    (files["no_images"] / "readme.txt").write_text("no image here\n")
    files["only_broken"] = root / "only-broken"
    files["only_broken"].mkdir()
    (files["only_broken"] / "scan.png").write_bytes(b"\x89PNG\r\n\x1a\n cut")
    files["npz_no_images"] = root / "no-x.npz"
    np.savez(files["npz_no_images"], pixels=np.zeros((3, 8, 8), np.uint8), y=np.zeros(3, np.int64))
    return files


@pytest.fixture(scope="module")
def xception(tmp_path_factory):
    """The mini-Xception at 32 px as a legacy .h5 (written by Keras 2 when installed): (path, Keras 3 model)."""
    path = tmp_path_factory.mktemp("mini-xception") / "mini_xception.h5"
    return path, build_mini_xception(input_size=32, path=path)


# --- running commands -------------------------------------------------------------


def _invoke(*args, env: dict | None = None):
    """Run the CLI in-process; the failure message carries the output and any traceback."""
    result = runner.invoke(app, [str(a) for a in args], env={**ENV, **(env or {})})
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        details = "".join(traceback.format_exception(result.exception))
    else:
        details = ""
    return result, f"exit {result.exit_code}\n{result.output}\n{details}"


def _lines(output: str, prefix: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith(prefix)]


def _assert_png(path: Path) -> None:
    assert path.is_file(), f"{path} was not written"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG file"


def _assert_inside(result: OipResult, low: np.ndarray, high: np.ndarray) -> None:
    """Every OIP of ``result`` lies inside [low, high] per channel."""
    for oip in result.maps:
        image = np.asarray(oip.image)
        assert np.all(np.isfinite(image))
        assert np.all(image >= low - ATOL) and np.all(image <= high + ATOL), (
            f"map {oip.map_index}: OIP spans {image.min(axis=(0, 1))}..{image.max(axis=(0, 1))}, "
            f"outside {low}..{high}")


def _draw_cards_in_this_process(monkeypatch) -> None:
    """The zoo's gallery is drawn where processes cannot be made: here (its fallback)."""
    from oipscope.gallery import worker as gallery_process

    def no_processes(*args, **kwargs):
        raise OSError("no worker processes in this test")

    monkeypatch.setattr(gallery_process, "ProcessPoolExecutor", no_processes)


# --- (1) the Keras-2 mini-Xception, a folder of faces with a corrupt file -----------


@pytest.mark.slow
def test_zoo_of_legacy_h5_xception_on_a_folder_of_faces(xception, inputs, tmp_path, monkeypatch):
    from PIL import Image

    import oipscope.figures.captions as captions

    path, _ = xception
    out = tmp_path / "zoo"
    titles: list[str] = []
    item_name = captions.item_name

    def spy(names, index):  # what the cards write above each dataset example
        titles.append(item_name(names, index))
        return titles[-1]

    monkeypatch.setattr(captions, "item_name", spy)
    _draw_cards_in_this_process(monkeypatch)  # where the spy sees them
    result, why = _invoke("zoo", path, "--input-range", "-1,1", "--images", inputs["faces"],
                          "--layers", "activation_1,activation_4", "--maps", "0-3", *STEPS, "--out", out)
    assert result.exit_code == 0, why
    assert "Traceback" not in result.output
    skipped = _lines(result.output, "note: skipped 1 unreadable image file(s) in ")
    assert len(skipped) == 1 and "broken.png" in skipped[0], why
    assert not _lines(result.output, "note: nothing says how"), "the encoding was given"

    readable = sorted(p for p in inputs["faces"].rglob("*.png") if p.name != "broken.png")
    shown_indices: set[int] = set()
    for name in ("activation_1", "activation_4"):
        folder = zoo_layer_folder(out, name)
        saved = OipResult.load(folder)
        assert saved.layer_name == name and [m.map_index for m in saved.maps] == [0, 1, 2, 3]
        assert saved.encoding == InputEncoding.value_range(-1, 1)
        raw = json.loads((folder / "result.json").read_text())["encoding"]
        assert (raw["kind"], raw["low"], raw["high"], raw["mean"], raw["std"]) == ("range", -1.0, 1.0, None, None)
        assert all(np.asarray(m.image).shape == (32, 32, 1) for m in saved.maps)
        _assert_inside(saved, np.float32(-1), np.float32(1))
        assert all(m.superstimulus_ratio is not None for m in saved.maps), "the faces were not compared"

        examples = DatasetExamples.load(folder.parent / "examples.npz")
        assert examples.n_images == len(readable)
        assert examples.class_histogram.shape[1] == len(CLASSES)
        shown_indices.update(int(i) for i in examples.top_indices.reshape(-1))

        slug = safe_filename(name)
        page = out / "layers" / f"{slug}.html"
        assert page.read_text().count('<a class="tile ') == len(saved.maps)
        assert len(list((out / "layers" / slug).glob("map_*.html"))) == len(saved.maps)
    assert (out / "index.html").is_file()

    shown = np.load(out / "data" / "example_images.npz")
    names = [str(n) for n in shown["names"]]
    assert set(shown["indices"].tolist()) == shown_indices, "the gallery keeps every example it shows"
    assert names and set(names) <= {p.relative_to(inputs["faces"]).as_posix() for p in readable}, (
        f"an unreadable file is a dataset example: {names}")
    for name, image, label in zip(names, shown["images"], shown["labels"]):
        assert CLASSES[int(label)] == name.split("/")[0], "class sub-folders are the labels"
        with Image.open(inputs["faces"] / name) as source:  # each name belongs to its own image
            expected = np.asarray(source.resize((32, 32), Image.Resampling.LANCZOS), np.float32)
        assert np.abs(image[..., 0].astype(np.float32) - expected).max() <= 1.0, name
    assert titles, "no card titled its dataset examples"
    assert set(titles) <= {p.name for p in readable}, f"example titles are not the file names: {set(titles)}"


# --- (2) RGB with Rescaling(1/255): a .npz of uint8 images of another size ----------


@pytest.mark.slow
def test_find_on_rescaling_model_recognises_raw_pixels(inputs, tmp_path):
    out = tmp_path / "find"
    result, why = _invoke("find", inputs["rgb"], "--layer", "block2_relu", "--images", inputs["npz"],
                          "--maps", "0-3", *STEPS, "--out", out)
    assert result.exit_code == 0, why
    recognised = _lines(result.output, "input: raw pixels 0..255 (the model begins with ")
    assert len(recognised) == 1 and "rescaling" in recognised[0], why
    assert not _lines(result.output, "note: nothing says how")

    saved = OipResult.load(out)
    assert saved.encoding == InputEncoding.value_range(0, 255)
    raw = json.loads((out / "result.json").read_text())["encoding"]
    assert (raw["kind"], raw["low"], raw["high"], raw["mean"], raw["std"]) == ("range", 0.0, 255.0, None, None)
    assert [m.map_index for m in saved.maps] == [0, 1, 2, 3]
    assert all(np.asarray(m.image).shape == (32, 32, 3) for m in saved.maps)
    _assert_inside(saved, np.float32(0), np.float32(255))
    assert all(m.superstimulus_ratio is not None for m in saved.maps)

    with np.load(inputs["npz"]) as arrays:
        n_images, n_classes = len(arrays["x"]), int(arrays["y"].max()) + 1
    examples = DatasetExamples.load(out / "examples.npz")
    assert examples.n_images == n_images and examples.class_histogram.shape[1] == n_classes
    _assert_png(out / "oips.png")


@pytest.mark.slow
def test_an_encoding_given_against_a_rescaling_layer_is_warned_about(inputs, tmp_path):
    result, why = _invoke("find", inputs["rgb"], "--layer", "stem_relu", "--input-range", "0,1",
                          "--maps", "0", "--steps", "3", "--out", tmp_path / "given")
    assert result.exit_code == 0, why
    assert _lines(result.output, "warning: the model begins with rescaling, which takes raw pixels"), why
    same, why = _invoke("find", inputs["rgb"], "--layer", "stem_relu", "--input-range", "0,255",
                        "--maps", "0", "--steps", "3", "--out", tmp_path / "same")
    assert same.exit_code == 0 and "warning" not in same.output, why  # what the layer takes anyway


# --- (3) ImageNet-normalized RGB: --input-range with --mean/--std, unlabelled photos -


@pytest.mark.slow
def test_find_on_imagenet_model_with_mean_std_and_unlabelled_folder(inputs, tmp_path):
    out = tmp_path / "find"
    mean, std = (",".join(f"{v:g}" for v in values) for values in (IMAGENET_MEAN, IMAGENET_STD))
    result, why = _invoke("find", inputs["imagenet"], "--layer", "conv_pw_1_relu", "--input-range", "0,1",
                          "--mean", mean, "--std", std, "--images", inputs["photos"], "--maps", "0-3", *STEPS,
                          "--out", out)
    assert result.exit_code == 0, why
    assert not _lines(result.output, "note: nothing says how") and not _lines(result.output, "input: raw pixels")

    saved = OipResult.load(out)
    assert (saved.encoding.kind, saved.encoding.low, saved.encoding.high) == ("range", 0.0, 1.0)
    np.testing.assert_allclose(saved.encoding.mean, IMAGENET_MEAN, rtol=1e-6)
    np.testing.assert_allclose(saved.encoding.std, IMAGENET_STD, rtol=1e-6)
    _assert_inside(saved, (0 - IMAGENET_MEAN) / IMAGENET_STD, (1 - IMAGENET_MEAN) / IMAGENET_STD)
    assert all(m.superstimulus_ratio is not None for m in saved.maps)

    examples = DatasetExamples.load(out / "examples.npz")
    assert examples.n_images == len(list(inputs["photos"].glob("*.png")))
    assert examples.class_histogram.shape[1] == 0, "a folder without class sub-folders has no labels"
    _assert_png(out / "oips.png")


# --- (4) zoo --dry-run ----------------------------------------------------------------


def _plan_rows(output: str) -> list[tuple[str, ...]]:
    row = re.compile(r"^\s+(\S+)\s+(\S+)\s+(\d+) of (\d+)\s+maps\s+(\d+)x(\d+)\s+"
                     r"~\d+(?:\.\d+)? (?:s|min|h) \((?:probed|from FLOPs)\)\s*$")
    return [match.groups() for line in output.splitlines() if (match := row.match(line))]


@pytest.mark.slow
def test_zoo_dry_run_lists_default_layers_and_writes_nothing(xception, tmp_path):
    path, model = xception
    out = tmp_path / "zoo"
    before = sorted(tmp_path.rglob("*"))
    result, why = _invoke("zoo", path, "--input-range", "-1,1", "--maps", "0-1", "--dry-run", "--out", out)
    assert result.exit_code == 0, why
    assert not out.exists() and sorted(tmp_path.rglob("*")) == before, "a dry run wrote files"
    assert result.output.count("(from FLOPs)") == 8 and result.output.count("(probed)") == 1, \
        "9 layers: one probed, 8 scaled by their FLOPs"
    assert len(_lines(result.output, "plan for ")) == 1, why
    assert len(_lines(result.output, "estimated time: ")) == 1, why

    rows = _plan_rows(result.output)
    assert [r[0] for r in rows] == list(XCEPTION_DEFAULT_LAYERS), why
    for name, class_name, chosen, n_maps, height, width in rows:
        layer = model.get_layer(name)
        h, w, c = (int(d) for d in layer.output.shape[1:])
        assert class_name == type(layer).__name__
        assert (int(chosen), int(n_maps), int(height), int(width)) == (min(2, c), c, h, w), name


@pytest.mark.slow
def test_zoo_dry_run_with_a_glob_and_images(inputs, tmp_path):
    out = tmp_path / "zoo"
    result, why = _invoke("zoo", inputs["rgb"], "--layers", "block*_relu*", "--images", inputs["npz"],
                          "--maps", "0", "--dry-run", "--out", out)
    assert result.exit_code == 0, why
    assert not out.exists()
    rows = _plan_rows(result.output)
    assert [r[0] for r in rows] == ["block1_relu1", "block2_relu"], why
    assert all(r[2] == "1" for r in rows)


@pytest.mark.slow
def test_zoo_dry_run_layers_all(inputs, tmp_path):
    import keras

    model = keras.models.load_model(inputs["own28"])
    with_maps = [layer.name for layer in model.layers if len(layer.output.shape) == 4]
    result, why = _invoke("zoo", inputs["own28"], "--layers", "all", "--no-assess", "--dry-run",
                          "--out", tmp_path / "zoo")
    assert result.exit_code == 0, why
    assert [r[0] for r in _plan_rows(result.output)] == with_maps, why
    assert not (tmp_path / "zoo").exists()


# --- activations with an encoding and --images ------------------------------------------


def test_activations_use_the_given_encoding(inputs, tmp_path):
    import keras

    pixels = np.random.default_rng(11).integers(0, 256, (4, 32, 32, 3), np.uint8)  # the model's own size
    np.savez(tmp_path / "four.npz", x=pixels)
    mean, std = (",".join(f"{v:g}" for v in values) for values in (IMAGENET_MEAN, IMAGENET_STD))
    grid = tmp_path / "grid.png"
    result, why = _invoke("activations", inputs["imagenet"], "--layer", "conv1_relu", "--images",
                          tmp_path / "four.npz", "--index", "2", "--input-range", "0,1", "--mean", mean,
                          "--std", std, "--top", "3", "--out", grid)
    assert result.exit_code == 0, why
    _assert_png(grid)
    row = next(line for line in result.output.splitlines() if "#2" in line)
    shown = [(int(m), float(v)) for m, v in re.findall(r"(\d+): (-?[\d.]+(?:e[-+]?\d+)?)", row.split("#2", 1)[1])]
    model = keras.models.load_model(inputs["imagenet"])
    layer = keras.Model(model.input, model.get_layer("conv1_relu").output)
    means = np.asarray(layer(imagenet_normalize(pixels[2:3]), training=False))[0].mean(axis=(0, 1))
    expected = np.argsort(-means, kind="stable")[:3]
    assert [m for m, _ in shown] == [int(m) for m in expected], (row, means)
    np.testing.assert_allclose([v for _, v in shown], means[expected], rtol=5e-3, atol=1e-3)


# --- (5) a model of one's own without images, offline --------------------------------


@pytest.fixture
def offline(tmp_path, monkeypatch) -> dict[str, str]:
    """An environment where any attempt to read or download MNIST fails loudly; the env for the CLI."""
    import keras

    import oipscope.data.datasets
    import oipscope.data.imagesets

    def refuse(*args, **kwargs):
        raise AssertionError(f"tried to load a dataset: {args} {kwargs}")

    monkeypatch.setattr(oipscope.data.imagesets, "_open_named", refuse)
    monkeypatch.setattr(oipscope.data.datasets, "load_dataset", refuse)
    monkeypatch.setattr(keras.datasets.mnist, "load_data", refuse)
    monkeypatch.setattr(keras.utils, "get_file", refuse)
    (tmp_path / "empty-home").mkdir()
    (tmp_path / "empty-data").mkdir()
    dead = "http://127.0.0.1:9"
    return {"HOME": str(tmp_path / "empty-home"), "OIPSCOPE_DATA_DIR": str(tmp_path / "empty-data"),
            "HTTP_PROXY": dead, "HTTPS_PROXY": dead, "http_proxy": dead, "https_proxy": dead}


def _assert_stayed_offline(env: dict[str, str]) -> None:
    assert not any(Path(env["OIPSCOPE_DATA_DIR"]).iterdir())
    assert not list(Path(env["HOME"]).rglob("datasets")), "something downloaded into HOME"


@pytest.mark.slow
def test_find_without_images_offline_writes_oips_and_grid(inputs, offline, tmp_path):
    out = tmp_path / "find"
    began = time.perf_counter()
    result, why = _invoke("find", inputs["own28"], "--layer", "c2", *STEPS, "--out", out, env=offline)
    assert result.exit_code == 0, why
    assert time.perf_counter() - began < 60
    text = result.output.replace("\n", " ")
    assert len(_lines(result.output, "note: no images to compare the OIPs with")) == 1, why
    assert len(_lines(result.output, "note: nothing says how own28")) == 1, why
    assert "--input-range" in text
    saved = OipResult.load(out)
    assert len(saved.maps) == 6 and saved.encoding == InputEncoding.standardize()
    assert all(m.superstimulus_ratio is None for m in saved.maps)
    assert not (out / "examples.npz").exists()
    _assert_png(out / "oips.png")
    _assert_stayed_offline(offline)


@pytest.mark.slow
def test_zoo_without_images_offline_writes_a_gallery_without_data(inputs, offline, tmp_path):
    out = tmp_path / "zoo"
    result, why = _invoke("zoo", inputs["own28"], "--maps", "0-1", *STEPS, "--out", out, env=offline)
    assert result.exit_code == 0, why
    assert len(_lines(result.output, "note: no images to compare the OIPs with")) == 1, why
    assert (out / "index.html").is_file()
    assert not list(out.rglob("examples.npz")) and not (out / "data" / "example_images.npz").exists()
    assert not (out / "layers" / f"{safe_filename('pool')}.html").exists(), "default: one layer per convolution"
    for name in ("c1", "c2"):
        slug = safe_filename(name)
        page = (out / "layers" / f"{slug}.html").read_text()
        tiles = page.split('<div class="tiles"')[1].split("<h2>")[0]
        assert tiles.count('<a class="tile ') == 2 and "ratio " not in tiles
        for map_page in (out / "layers" / slug).glob("map_*.html"):
            text = map_page.read_text()
            assert "not assessed" in text and "best dataset mean activation" not in text
    _assert_stayed_offline(offline)


# --- (6) bad input: one line, the documented exit code, nothing written -------------


def _find(*args):
    return lambda f, out: ["find", f["rgb"], "--layer", "block2_relu", "--maps", "0", "--steps", "5",
                           "--no-precursor", "--restarts", "0", *args, "--out", out]


BAD = [
    # (id, argv builder, exit code, fragments of the error line)
    ("folder-without-images", _find("--images", "{no_images}"), 3, ("no images in", "notes-only")),
    ("npz-without-image-array", _find("--images", "{npz_no_images}"), 3,
     ("no-x.npz holds the arrays pixels, y", "'x' or 'images'")),
    ("input-range-reversed", _find("--input-range", "1,0"), 2, ("input range 1,0", "LO must be below HI")),
    ("mean-wrong-length", _find("--input-range", "0,1", "--mean", "0.5,0.5"), 2,
     ("--mean has 2 values", "3 channel(s)")),
    ("mean-without-range", _find("--mean", "0.485,0.456,0.406"), 2, ("--mean/--std need --input-range",)),
    ("named-set-wrong-size", _find("--images", "mnist"), 3, ("'mnist'", "28x28x1", "32x32x3")),
    ("zoo-named-set-wrong-size", lambda f, out: ["zoo", f["rgb"], "--images", "mnist-test", "--out", out], 3,
     ("'mnist-test'", "28x28x1", "32x32x3")),
    ("named-set-wrong-channels", lambda f, out: ["zoo", f["own28"], "--images", "cifar10", "--out", out], 3,
     ("'cifar10'", "32x32x3", "28x28x1")),
    ("zoo-glob-matches-nothing", lambda f, out: ["zoo", f["rgb"], "--layers", "stem_*,block9_*", "--out", out],
     5, ("'block9_*' matches no layer", "layers with maps: ")),
    ("activations-mean-wrong-length", lambda f, out: ["activations", f["rgb"], "--layer", "stem_relu",
                                                      "--images", f["npz"], "--input-range", "0,1",
                                                      "--mean", "0.5,0.5", "--out", out / "grid.png"], 2,
     ("--mean has 2 values", "3 channel(s)")),
    ("std-alone-wrong-length", _find("--input-range", "0,1", "--std", "0.2,0.2"), 2,
     ("--std has 2 values", "3 channel(s)")),
]


def _main(argv: list, monkeypatch, capsys) -> tuple[int, str, str]:
    """``oipscope ARGV`` through the console script's own entry point: (exit code, stdout, stderr)."""
    from oipscope.cli.commands import main

    monkeypatch.setattr(sys, "argv", ["oipscope", *(str(a) for a in argv)])
    monkeypatch.setenv("COLUMNS", "250")
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main()
    out, err = capsys.readouterr()
    code = exit_info.value.code
    return (0 if code is None else code), out, err


@pytest.fixture
def no_oip_work(monkeypatch):
    """Starting an OIP search or a download fails the test: these faults must be found before the long part."""
    import oipscope.data.imagesets
    import oipscope.runs.jobs

    def refuse(*args, **kwargs):
        raise AssertionError("the long part started before the bad input was noticed")

    monkeypatch.setattr(oipscope.runs.jobs, "run_layer", refuse)
    monkeypatch.setattr(oipscope.runs.jobs, "run_zoo", refuse)
    monkeypatch.setattr(oipscope.data.imagesets, "_load_cifar", refuse)


@pytest.mark.parametrize("case_id,build,code,fragments", BAD, ids=[case[0] for case in BAD])
def test_bad_input(case_id, build, code, fragments, inputs, tmp_path, monkeypatch, capsys, no_oip_work):
    out = tmp_path / "out"
    argv = [str(a).format(**{k: str(v) for k, v in inputs.items()}) for a in build(inputs, out)]
    exit_code, stdout, stderr = _main(argv, monkeypatch, capsys)
    assert "Traceback" not in stdout + stderr
    assert exit_code == code, f"exit {exit_code}, expected {code}:\n{stdout}\n{stderr}"
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert not out.exists(), "a failed run left output behind"


def test_folder_of_only_unreadable_images_fails_and_keeps_the_oips(inputs, tmp_path, monkeypatch, capsys):
    """The files are only decoded when the dataset examples are streamed, after the OIPs (kept, loadable)."""
    out = tmp_path / "out"
    argv = _find("--images", inputs["only_broken"])(inputs, out)
    exit_code, stdout, stderr = _main(argv, monkeypatch, capsys)
    assert "Traceback" not in stdout + stderr
    assert exit_code == 3, f"{stdout}\n{stderr}"
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    assert "none of the 1 image files" in lines[0] and "scan.png" in lines[0]
    if out.exists():  # nothing lost: what was written is a complete result
        assert [m.map_index for m in OipResult.load(out).maps] == [0]
