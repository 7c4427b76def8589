"""`oipscope zoo` and `oipscope report` through the command line: files, summary, Ctrl-C, --resume."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import interrupt_when, save_mnist_sized_model, start_cli
from typer.testing import CliRunner

from oipscope.cli.commands import app
from oipscope.analysis.examples import DatasetExamples
from oipscope.gallery.site import safe_filename
from oipscope.search.results import RESULT_JSON, OipResult
from oipscope.runs.jobs import zoo_layer_folder

runner = CliRunner()
LAYERS = ("c1", "pool", "c2")


@pytest.fixture(scope="module")
def zoo_run(tmp_path_factory):
    """One `oipscope zoo` of the tiny model with the embedded MNIST test images: (output folder, CLI result)."""
    root = tmp_path_factory.mktemp("zoo-cli")
    model = save_mnist_sized_model(root / "tiny.keras")
    out = root / "zoo"
    result = runner.invoke(app, ["zoo", str(model), "--steps", "30", "--images", "mnist-test", "--layers", "all",
                                 "--out", str(out)], env={"COLUMNS": "200"})
    return out, result


def test_zoo_writes_results_examples_and_gallery(zoo_run):
    out, result = zoo_run
    assert result.exit_code == 0, result.output
    assert (out / "index.html").is_file()
    for name in LAYERS:
        folder = zoo_layer_folder(out, name)
        saved = OipResult.load(folder)
        assert saved.layer_name == name and len(saved.maps) == (4 if name != "c2" else 6)
        assert all(m.superstimulus_ratio is not None for m in saved.maps), "dataset examples were not used"
        assert (folder.parent / "examples.npz").is_file()
        slug = safe_filename(name)
        page = out / "layers" / f"{slug}.html"
        assert page.read_text().count('<a class="tile ') == len(saved.maps)
        assert len(list((out / "layers" / slug).glob("map_*.html"))) == len(saved.maps)
    assert not list(out.rglob("*.tmp"))


def test_zoo_prints_a_summary_row_per_layer(zoo_run):
    out, result = zoo_run
    rows = {}
    for line in result.output.splitlines():
        cells = [cell.strip() for cell in re.split(r"[│┃]", line) if cell.strip()]
        if cells and cells[0] in LAYERS:
            rows[cells[0]] = cells
    assert list(rows) == list(LAYERS), result.output
    for name, cells in rows.items():
        summary = OipResult.load(zoo_layer_folder(out, name)).summary()
        assert cells[1:4] == [str(summary["maps"]), str(summary["converged"]), str(summary["silent"])]
        assert float(cells[4]) == pytest.approx(summary["median_ratio"], abs=0.005)
        examples = DatasetExamples.load(zoo_layer_folder(out, name).parent / "examples.npz")
        assert cells[5] == f"{100 * examples.pattern_accuracy:.1f} %"  # MNIST labels: a number
    assert f"gallery: {out.resolve() / 'index.html'}" in result.output.replace("\n", "")
    for name in LAYERS:  # one progress line per layer and stage
        assert re.search(rf"{name} \(\d/3\) OIPs", result.output), result.output
        assert re.search(rf"{name} \(\d/3\) examples .*10000/10000", result.output), result.output


def test_report_rebuilds_the_same_pages_elsewhere(zoo_run, tmp_path):
    out, zoo_result = zoo_run
    assert zoo_result.exit_code == 0
    copy = tmp_path / "pages"
    result = runner.invoke(app, ["report", str(out), "--out", str(copy)])
    assert result.exit_code == 0, result.output
    assert f"gallery: {copy.resolve() / 'index.html'}" in result.output.replace("\n", "")
    original = {p.relative_to(out): p.read_text() for p in out.rglob("*.html")}
    rebuilt = {p.relative_to(copy): p.read_text() for p in copy.rglob("*.html")}
    assert rebuilt == original
    assert len(rebuilt) == 1 + len(LAYERS) + 4 + 4 + 6 + 1  # index, layers, maps, the class page


def test_report_in_place_restores_deleted_pages(zoo_run, tmp_path):
    import shutil

    out, _ = zoo_run
    work = tmp_path / "zoo"
    shutil.copytree(out, work)
    before = {p.relative_to(work): p.read_text() for p in work.rglob("*.html")}
    shutil.rmtree(work / "layers")
    (work / "index.html").unlink()
    result = runner.invoke(app, ["report", str(work)])
    assert result.exit_code == 0, result.output
    assert {p.relative_to(work): p.read_text() for p in work.rglob("*.html")} == before


# --- the class OIPs of a classifier ----------------------------------------------------------


def _zoo(*args):
    return runner.invoke(app, ["zoo", *map(str, args)], env={"COLUMNS": "200"})


def _class_tiles(out: Path) -> int:
    return (out / "classes.html").read_text().count('<div class="tile class-tile ')


def test_zoo_of_a_classifier_has_a_class_page(zoo_run):
    out, result = zoo_run
    assert result.exit_code == 0, result.output
    saved = OipResult.load(zoo_layer_folder(out, "out"))
    assert saved.is_class_search and [m.map_index for m in saved.maps] == list(range(10))
    assert saved.config.steps == 30, "the zoo's method, with the class objective"
    assert _class_tiles(out) == 10
    page = (out / "classes.html").read_text()
    for c, oip in enumerate(saved.maps):  # the images' class names, the probability of the own class
        assert f"<b>Digit {c}</b> · p {float(oip.evoked_probabilities[c]):.2f}" in page
    own = saved.summary()["own_class"]
    assert f"the model sees {own} of 10 class OIPs as their own class" in page
    assert 'href="classes.html"' in (out / "index.html").read_text()
    assert f"class OIPs of out: the model sees {own} of 10 as their own class" in result.output


def test_no_classes_leaves_the_class_page_out_and_resume_keeps_it(tmp_path):
    model = save_mnist_sized_model(tmp_path / "tiny.keras")
    out = tmp_path / "zoo"
    common = (model, "--layers", "c2", "--steps", "20", "--no-assess", "--out", out)
    plan = _zoo(*common, "--dry-run")
    assert plan.exit_code == 0 and "class OIPs of out: 10 classes" in plan.output, plan.output
    assert "class OIPs" not in _zoo(*common, "--dry-run", "--no-classes").output

    result = _zoo(*common, "--no-classes")
    assert result.exit_code == 0, result.output
    assert not (out / "classes.html").exists() and not zoo_layer_folder(out, "out").exists()
    assert "classes.html" not in (out / "index.html").read_text()

    result = _zoo(*common, "--resume")  # by default a classifier gets its class page
    assert result.exit_code == 0, result.output
    assert _class_tiles(out) == 10 and "<b>0</b>" in (out / "classes.html").read_text()  # no images: indices
    assert 'href="classes.html"' in (out / "index.html").read_text()
    stamp = (zoo_layer_folder(out, "out") / RESULT_JSON).stat().st_mtime_ns
    result = _zoo(*common, "--resume")
    assert result.exit_code == 0, result.output
    assert (zoo_layer_folder(out, "out") / RESULT_JSON).stat().st_mtime_ns == stamp, "the class OIPs were redone"
    assert _class_tiles(out) == 10


def test_a_model_without_a_classifier_output_gets_no_class_page(tmp_path):
    import keras

    keras.utils.set_random_seed(0)
    path = tmp_path / "convs.keras"
    keras.Sequential([keras.Input((12, 12, 1)), keras.layers.Conv2D(3, 3, activation="relu", name="c1"),
                      keras.layers.Conv2D(4, 3, activation="relu", name="c2")], name="convs").save(path)
    for extra in ((), ("--classes",)):
        out = tmp_path / f"zoo{len(extra)}"
        result = _zoo(path, "--steps", "10", "--no-assess", "--out", out, *extra)
        assert result.exit_code == 0, result.output
        assert not (out / "classes.html").exists() and "classes.html" not in (out / "index.html").read_text()
        assert ("note: no class OIPs" in result.output) == bool(extra), result.output


# --- Ctrl-C during a zoo keeps the finished layers ------------------------------------------


def _start_zoo(model: Path, out: Path, *extra: str) -> subprocess.Popen:
    return start_cli("zoo", str(model), "--steps", "600", "--no-assess", "--seed", "5", "--out", str(out), *extra,
                     cwd=out.parent)


def _slow_model(path: Path) -> Path:
    """Three conv layers; the later two have enough maps that each takes a second or more."""
    import keras

    keras.utils.set_random_seed(1)
    keras.Sequential([
        keras.Input((20, 20, 1)),
        keras.layers.Conv2D(2, 3, activation="relu", name="first"),
        keras.layers.Conv2D(48, 3, activation="relu", name="second"),
        keras.layers.Conv2D(64, 3, activation="relu", name="third"),
    ], name="slow_zoo").save(path)
    return path


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_ctrl_c_keeps_finished_layers_and_resume_completes(tmp_path):
    model = _slow_model(tmp_path / "slow.keras")
    out = tmp_path / "zoo"
    proc = _start_zoo(model, out)
    first = zoo_layer_folder(out, "first") / RESULT_JSON
    stdout, stderr = interrupt_when(proc, first.is_file, "the first layer's result")
    finished = [name for name in ("first", "second", "third")
                if (zoo_layer_folder(out, name) / RESULT_JSON).is_file()]
    assert finished and finished[0] == "first" and len(finished) < 3, "Ctrl-C should land mid-zoo"
    message = [line for line in stderr.splitlines() if line.startswith("interrupted:")]
    assert message == [f"interrupted: finished layers ({', '.join(finished)}) are kept in {out}; "
                       "run the same command with --resume to continue"], stderr
    assert not (out / "index.html").exists()
    kept = OipResult.load(zoo_layer_folder(out, "first"))
    kept_mtime = (zoo_layer_folder(out, "first") / RESULT_JSON).stat().st_mtime_ns

    resumed = _start_zoo(model, out, "--resume")
    r_out, r_err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, r_out + r_err
    assert (zoo_layer_folder(out, "first") / RESULT_JSON).stat().st_mtime_ns == kept_mtime, "a kept layer was redone"
    again = OipResult.load(zoo_layer_folder(out, "first"))
    for a, b in zip(kept.maps, again.maps):
        np.testing.assert_array_equal(a.image, b.image)
    for name in ("second", "third"):
        assert OipResult.load(zoo_layer_folder(out, name)).layer_name == name
    assert (out / "index.html").is_file()
    assert "gallery:" in r_out


def test_a_head_of_many_classes_gets_class_oips_only_when_asked(tmp_path):
    """An ImageNet-like head (here 120 classes) would make the zoo long: left out, with a line saying so."""
    import keras

    inputs = keras.Input(shape=(28, 28, 1))
    x = keras.layers.Conv2D(4, 3, activation="relu", name="c1")(inputs)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    path = tmp_path / "wide.keras"
    keras.Model(inputs, keras.layers.Dense(120, activation="softmax", name="out")(x)).save(path)
    common = (path, "--layers", "c1", "--steps", "5", "--no-assess", "--out", tmp_path / "zoo", "--dry-run")
    plan = _zoo(*common)
    assert plan.exit_code == 0, plan.output
    assert "no class OIPs for the 120 classes of out" in plan.output and "--classes makes them" in plan.output
    assert "class OIPs of out: 120 classes" not in plan.output
    assert "class OIPs of out: 120 classes" in _zoo(*common, "--classes").output
