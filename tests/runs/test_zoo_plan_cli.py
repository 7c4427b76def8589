"""`oipscope zoo`'s plan: --dry-run's estimate from FLOPs and one probe, sampled maps, --time-budget."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from oipscope.cli.commands import app
from oipscope.runs.plan import Probe
from oipscope.runs.sampling import sample_maps

pytestmark = pytest.mark.slow
runner = CliRunner()
ENV = {"COLUMNS": "200"}


def _zoo(*args):
    result = runner.invoke(app, ["zoo", *map(str, args)], env=ENV)
    return result, f"exit {result.exit_code}\n{result.output}\n{result.exception!r}"


def _rows(output: str) -> dict[str, str]:
    """Plan rows by layer: '  c1  Conv2D  8 of 12 maps  24x24  ~3 s (from FLOPs)' -> {'c1': '8 of 12 ...'}."""
    return {line.split()[0]: line for line in output.splitlines() if line.startswith("  ") and " maps " in line}


@pytest.fixture(scope="module")
def wide_model(tmp_path_factory):
    """Two convolutions of 12 and 10 maps on 28x28x1 input, saved: more maps than a sample's 8."""
    import keras

    keras.utils.set_random_seed(0)
    path = tmp_path_factory.mktemp("plan") / "wide.keras"
    keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Conv2D(12, 5, activation="relu", name="c1"),
                      keras.layers.MaxPooling2D(2, name="pool"),
                      keras.layers.Conv2D(10, 3, activation="relu", name="c2")], name="wide").save(path)
    return path


@pytest.mark.parametrize("args, says", [
    (("--time-budget", "0"), "--time-budget takes a duration above zero"),
    (("--time-budget", "soon"), "--time-budget takes a duration above zero"),
    (("--maps", "all", "--time-budget", "1h"), "give one of them"),
])
def test_bad_time_budgets_end_in_one_line_and_exit_2(tmp_path, args, says):
    done = subprocess.run([sys.executable, "-m", "oipscope", "zoo", *args, "--out", str(tmp_path / "zoo")],
                          capture_output=True, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [done.stderr.strip()] and done.stderr.startswith("error: "), done.stderr
    assert says in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "zoo").exists()


def test_dry_run_probes_one_layer_and_takes_the_others_from_flops(wide_model, tmp_path):
    result, why = _zoo(wide_model, "--layers", "all", "--steps", "5", "--no-assess", "--dry-run",
                       "--out", tmp_path / "zoo")
    assert result.exit_code == 0, why
    rows = _rows(result.output)
    assert list(rows) == ["c1", "pool", "c2"], why
    assert [row.endswith("(probed)") for row in rows.values()] == [False, True, False], why
    assert all(row.endswith("(probed)") or row.endswith("(from FLOPs)") for row in rows.values())
    assert " 12 of 12 " in rows["c1"] and " 10 of 10 " in rows["c2"], "a small zoo takes every map"
    assert "sampled:" not in result.output
    assert result.output.strip().splitlines()[-1].startswith("estimated time: ~"), why
    assert "one timed probe of pool, the other layers scaled by their FLOPs" in result.output
    assert not (tmp_path / "zoo").exists()


def test_a_zoo_over_an_hour_samples_maps_and_resumes_them(wide_model, tmp_path, monkeypatch):
    """With the hour at 0 s every zoo is over it: 8 maps per layer, evenly spread, the full plan's time said;
    --maps all takes them all; the run computes the sampled maps, its gallery shows them, --resume continues."""
    monkeypatch.setattr("oipscope.runs.sampling.ZOO_HOUR", 0.0)
    monkeypatch.setattr("oipscope.cli.zoo_plan.UNPROBED_FLOPS", 0.0)
    common = (wide_model, "--layers", "c1,c2", "--steps", "5", "--no-assess", "--no-classes")
    plan, why = _zoo(*common, "--dry-run", "--out", tmp_path / "plan")
    assert plan.exit_code == 0, why
    rows = _rows(plan.output)
    assert " 8 of 12 " in rows["c1"] and " 8 of 10 " in rows["c2"], why
    assert "sampled: the whole plan would take ~" in plan.output and "(more than an hour): 8 map(s) per layer" \
        in plan.output and "--maps all takes every map" in plan.output, why
    everything, why = _zoo(*common, "--maps", "all", "--dry-run", "--out", tmp_path / "plan")
    assert " 12 of 12 " in _rows(everything.output)["c1"] and "sampled:" not in everything.output, why

    out = tmp_path / "zoo"
    result, why = _zoo(*common, "--out", out)
    assert result.exit_code == 0, why
    assert "note: the whole plan would take ~" in result.output, why
    from oipscope.runs.jobs import finished_result, zoo_layer_folder

    for name, n_maps in (("c1", 12), ("c2", 10)):
        saved = finished_result(zoo_layer_folder(out, name))
        assert tuple(oip.map_index for oip in saved.maps) == sample_maps(range(n_maps), 8), name
    page = next((out / "layers").glob("c1*.html")).read_text()
    assert "map 11" in page.lower() and "map 1<" not in page.lower(), "the gallery shows the sampled maps"
    again, why = _zoo(*common, "--out", out, "--resume")
    assert again.exit_code == 0, why


def test_a_time_budget_chooses_the_maps_per_layer(wide_model, tmp_path, monkeypatch):
    monkeypatch.setattr("oipscope.runs.plan.probe_layer",
                        lambda *args, **kwargs: Probe(per_map_step=1.0, compile_seconds=0.0))
    common = (wide_model, "--layers", "c1,c2", "--steps", "5", "--no-assess", "--no-classes", "--dry-run",
              "--out", tmp_path / "zoo")
    tight, why = _zoo(*common, "--time-budget", "1s")
    assert tight.exit_code == 0, why
    assert " 1 of 12 " in _rows(tight.output)["c1"] and " 1 of 10 " in _rows(tight.output)["c2"], why
    assert "(to fit --time-budget 1 s): 1 map(s) per layer" in tight.output, why
    middle, why = _zoo(*common, "--time-budget", "1m30s")
    chosen = int(_rows(middle.output)["c1"].split()[2])
    assert 1 < chosen < 10 and f" {chosen} of 10 " in _rows(middle.output)["c2"], why
    roomy, why = _zoo(*common, "--time-budget", "100h")
    assert " 12 of 12 " in _rows(roomy.output)["c1"] and "sampled:" not in roomy.output, why


def test_vgg16_dry_run_samples_the_maps_of_a_plan_over_an_hour(tmp_path):
    """A 224 px VGG16 (13 layers): one compile, not one per layer; its time is bench/bench_zoo_plan.py's."""
    import keras

    path = tmp_path / "vgg16.keras"
    keras.applications.VGG16(weights=None, include_top=False, input_shape=(224, 224, 3)).save(path)
    done = subprocess.run([sys.executable, "-m", "oipscope", "zoo", str(path), "--preprocess", "caffe", "--dry-run",
                           "--out", str(tmp_path / "zoo")], capture_output=True, text=True,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "COLUMNS": "200"}, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "8 of 512" in done.stdout and "sampled: the whole plan would take ~" in done.stdout, done.stdout
