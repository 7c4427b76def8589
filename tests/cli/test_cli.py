"""The command line: help texts, `info`, `train`, and exit codes of `python -m oipscope`."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from oipscope.cli.commands import app
from oipscope.config import OipConfig
from oipscope.model.cnn import default_model_path
from oipscope.errors import ConfigError, ModelError

runner = CliRunner()
COMMANDS = ["train", "info"]  # the foundation's commands; later ones are checked via ALL_COMMANDS
ALL_COMMANDS = sorted(
    {cmd.name or cmd.callback.__name__.replace("_", "-") for cmd in app.registered_commands} | set(COMMANDS)
)


def run_module(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run ``python -m oipscope ARGS`` and capture its output."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "oipscope", *args],
        capture_output=True, text=True, timeout=timeout, env=env,
    )


# --- help -----------------------------------------------------------------------


def test_help_lists_commands():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0, result.output
    for command in COMMANDS:
        assert command in result.output


@pytest.mark.parametrize("command", ALL_COMMANDS)
def test_command_help_has_example(command):
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Example" in result.output
    assert f"oipscope {command}" in result.output


def test_module_help_exit_code():
    proc = run_module("--help")
    assert proc.returncode == 0, proc.stderr
    assert "train" in proc.stdout and "info" in proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr


# --- info -----------------------------------------------------------------------


def test_info_tiny_model(tiny_model_file):
    result = runner.invoke(app, ["info", str(tiny_model_file)])
    assert result.exit_code == 0, result.output
    out = result.output
    for name in ("c1", "pool", "c2", "flat", "out"):
        assert name in out
    assert "image input: 12x12, 1 channel(s)" in out
    assert "layers with feature maps: c1 (4), pool (4), c2 (6)" in out


def test_info_dense_model_has_no_image_input(tmp_path):
    import keras

    path = tmp_path / "dense.keras"
    keras.Sequential([keras.Input((10,)), keras.layers.Dense(3, name="d")]).save(path)
    result = runner.invoke(app, ["info", str(path)])
    assert result.exit_code == 0, result.output
    assert "no image input" in result.output
    assert "layers with feature maps: none" in result.output


def test_info_missing_file_raises_model_error_in_app(tmp_path):
    result = runner.invoke(app, ["info", str(tmp_path / "missing.keras")])
    assert result.exit_code != 0
    assert isinstance(result.exception, ModelError)


def test_info_missing_file_exit_code(tmp_path):
    missing = tmp_path / "missing.keras"
    proc = run_module("info", str(missing))
    assert proc.returncode == 4
    combined = proc.stdout + proc.stderr
    assert "Traceback" not in combined
    error_lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1, proc.stderr
    assert error_lines[0].startswith("error: model file not found")
    assert str(missing) in error_lines[0]


@pytest.mark.skipif(not default_model_path().is_file(), reason=f"embedded model {default_model_path()} not built yet")
def test_info_default_model():
    result = runner.invoke(app, ["info"])
    assert result.exit_code == 0, result.output
    assert "Conv2D_3" in result.output
    assert "image input: 28x28, 1 channel(s)" in result.output
    assert "layers with feature maps:" in result.output
    assert "Conv2D_3 (128)" in result.output


@pytest.mark.slow
def test_terminal_shows_no_tensorflow_start_up_lines():
    """TensorFlow's C++ start-up lines (absl, oneDNN, CUDA stub) stay off a command's stderr."""
    proc = run_module("info")
    assert proc.returncode == 0, proc.stderr
    assert "Conv2D_3" in proc.stdout
    assert proc.stderr == ""


@pytest.mark.slow
def test_bad_model_path_fails_before_tensorflow_starts(tmp_path):
    probe = ("import sys; from oipscope.cli import main; sys.argv = ['oipscope', 'info', sys.argv[1]]\n"
             "try:\n    main()\nexcept SystemExit as exit:\n"
             "    print('tensorflow' in sys.modules, exit.code)")
    proc = subprocess.run([sys.executable, "-c", probe, str(tmp_path / "missing.keras")],
                          capture_output=True, text=True, timeout=60)
    assert proc.stdout.split() == ["False", "4"], proc.stdout + proc.stderr
    assert "model file not found" in proc.stderr


# --- train ----------------------------------------------------------------------


def test_train_epochs_zero_in_app():
    result = runner.invoke(app, ["train", "--epochs", "0"])
    assert isinstance(result.exception, ConfigError)


@pytest.mark.slow
def test_train_epochs_zero_exit_code(tmp_path):
    proc = run_module("train", "--epochs", "0", "--out", str(tmp_path / "x.keras"))
    assert proc.returncode == 2
    assert "epochs must be >= 1, got 0" in proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert not (tmp_path / "x.keras").exists()


def test_usage_error_exit_code():
    """An unknown option is a usage error: exit code 2, a message, no traceback."""
    proc = run_module("train", "--no-such-option")
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr
    assert proc.returncode == 2
    assert "no-such-option" in proc.stderr


@pytest.mark.slow
def test_train_short_run(mnist_dir, tmp_path):
    out = tmp_path / "tmp" / "x.keras"
    result = runner.invoke(app, [
        "train", "--epochs", "1", "--train-limit", "2000",
        "--data-dir", str(mnist_dir), "--out", str(out),
    ])
    assert result.exit_code == 0, result.output
    assert out.is_file()
    assert "test accuracy" in result.output
    assert str(out) in result.output.replace("\n", "")


def test_debug_names_the_device_the_ascent_runs_on(tiny_model_file):
    import tensorflow as tf

    result = runner.invoke(app, ["--debug", "info", str(tiny_model_file)])
    assert result.exit_code == 0, result.output
    line = next(line for line in result.output.splitlines() if line.startswith("debug: TensorFlow"))
    gpus = tf.config.list_logical_devices("GPU")
    assert line.endswith(gpus[0].name if gpus else tf.config.list_logical_devices("CPU")[0].name)


# --- find: objectives and readable OIPs -----------------------------------------


@pytest.mark.slow
def test_find_class_objective_defaults_to_output_layer(tiny_model_file, tmp_path):
    """``--objective class`` without ``--layer`` climbs the output layer's logits: one OIP per class."""
    from oipscope.search.results import OipResult

    out = tmp_path / "classes"
    result = runner.invoke(app, ["find", str(tiny_model_file), "--objective", "class", "--steps", "20",
                                 "--standardize", "--no-assess", "--out", str(out)])
    assert result.exit_code == 0, result.output
    saved = OipResult.load(out)
    assert saved.layer_name == "out"
    assert [oip.map_index for oip in saved.maps] == [0, 1, 2]
    assert saved.config.objective == "class" and saved.is_class_search


@pytest.mark.slow
def test_find_robust_saves_its_method(tiny_model_file, tmp_path):
    from oipscope.search.results import OipResult

    out = tmp_path / "robust"
    result = runner.invoke(app, ["find", str(tiny_model_file), "--layer", "c2", "--maps", "0-1", "--robust",
                                 "--steps", "12", "--standardize", "--no-assess", "--out", str(out)])
    assert result.exit_code == 0, result.output
    config = OipResult.load(out).config
    assert (config.parametrization, config.optimizer, config.transforms, config.steps) == (
        "fourier", "adam", ("standard",), 12)
    assert "median jitter robustness" in result.output


@pytest.mark.parametrize("args, words", [
    (["--objective", "chanel"], ["unknown objective term 'chanel'", "channel"]),
    (["--objective", "neuron:9,9"], ["outside the layer's 3x3 positions"]),
    (["--transforms", "jitter:x"], ["jitter takes one number"]),
    (["--objective", "tv"], ["reads no layer"]),
])
def test_find_bad_method_raises_config_error(tiny_model_file, tmp_path, args, words):
    """A bad objective or transform is a ConfigError (exit code 2 from the console script), before any ascent."""
    result = runner.invoke(app, ["find", str(tiny_model_file), "--layer", "c2", "--steps", "3", "--standardize",
                                 "--no-assess", "--out", str(tmp_path / "bad"), *args])
    assert isinstance(result.exception, ConfigError), result.output
    for word in words:
        assert word in str(result.exception)
    assert not (tmp_path / "bad" / "result.json").exists()


@pytest.mark.slow
def test_find_bad_objective_exit_code(tmp_path):
    proc = run_module("find", "--objective", "channel +", "--out", str(tmp_path / "bad"))
    assert proc.returncode == 2, proc.stderr
    assert "objective" in proc.stderr and "Traceback" not in proc.stderr


# --- output in a log: whole lines, true summaries, SIGTERM as Ctrl-C --------------------


def test_info_table_rows_stay_whole_without_a_terminal(tmp_path):
    """Piped or redirected, rich used to cut every line at 80 columns: a table row became two."""
    import keras

    long_name = "a_convolution_with_a_rather_long_descriptive_layer_name_0123456789"
    model = keras.Sequential([keras.Input((12, 12, 1)), keras.layers.Conv2D(4, 3, name=long_name),
                              keras.layers.Conv2D(6, 3, name="c2")], name="long_names")
    path = tmp_path / "long.keras"
    model.save(path)
    result = runner.invoke(app, ["info", str(path)])
    assert result.exit_code == 0, result.output
    row = [line for line in result.output.splitlines() if long_name in line and "Conv2D" in line]
    assert len(row) == 1 and "(None, 10, 10, 4)" in row[0] and "40" in row[0], result.output
    listing = [line for line in result.output.splitlines() if line.startswith("layers with feature maps:")]
    assert listing == [f"layers with feature maps: {long_name} (4), c2 (6)"], result.output


def _assessed_result(evoked: list[int]):
    """An OipResult of len(evoked) assessed OIPs, OIP i seen by the model as class evoked[i]."""
    import numpy as np

    from oipscope.config import OipConfig
    from oipscope.search.results import MapOip, OipResult

    maps = tuple(MapOip(map_index=i, image=np.zeros((4, 4, 1), np.float32), activation=1.0, status="converged",
                        converged_step=3, snapshots=np.zeros((0, 4, 4, 1), np.float32), snapshot_steps=(),
                        activation_history=np.ones(3, np.float32), start="scales", superstimulus_ratio=1.5,
                        evoked_probabilities=np.eye(10, dtype=np.float32)[label])
                 for i, label in enumerate(evoked))
    return OipResult(layer_name="c2", model_name="m", model_hash=None, config=OipConfig(), maps=maps,
                     versions={}, seconds=1.0)


@pytest.mark.parametrize("evoked, text", [
    ([3, 1, 7, 0], "evoked classes: all 4 different"),
    ([2, 5, 5, 0], "most common evoked class: 5 (2 of 4)"),
    ([4, 4, 1, 1], "most common evoked classes: 1, 4 (2 of 4 each)"),
])
def test_summary_says_what_is_true_of_the_evoked_classes(evoked, text):
    from oipscope.cli.commands import _print_summary
    from oipscope.cli.options import console

    with console.capture() as captured:
        _print_summary(_assessed_result(evoked))
    output = captured.get()
    assert f"beat every one of its images; {text}\n" in output, output


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_sigterm_interrupts_like_ctrl_c():
    """`kill` of a command must reach the same Ctrl-C handling (finished work named, exit 130)."""
    import signal

    from oipscope.cli.commands import _interrupt_on_sigterm

    saved = signal.getsignal(signal.SIGTERM)
    try:
        _interrupt_on_sigterm()
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGTERM)
            for _ in range(1000):  # the handler runs at the next bytecode boundary
                pass
    finally:
        signal.signal(signal.SIGTERM, saved)


def test_find_says_and_saves_the_method_auto_chose(tiny_model_file, tmp_path):
    """A 12-px model: auto is the series' method, said in the first line and saved; --robust with
    --method series is refused before anything is written."""
    from oipscope.search.results import OipResult

    out = tmp_path / "auto"
    result = runner.invoke(app, ["find", str(tiny_model_file), "--layer", "c2", "--maps", "0", "--steps", "5",
                                 "--standardize", "--no-assess", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0].startswith("method: series (auto: input 12x12, up to 32 px")
    assert OipResult.load(out).config == OipConfig(steps=5, method="series")
    clash = runner.invoke(app, ["find", str(tiny_model_file), "--robust", "--method", "series", "--standardize",
                                "--out", str(tmp_path / "clash")])
    assert isinstance(clash.exception, ConfigError) and "--robust is --method robust" in str(clash.exception)
    assert not (tmp_path / "clash").exists()


@pytest.mark.slow
def test_find_auto_is_robust_above_32_pixels_with_the_images_colours(tmp_path):
    """A 40-px RGB model: auto picks the robust preset; with --images the colour matrix is measured from them
    and saved, so the resume key holds it."""
    import keras

    from oipscope.search.results import OipResult

    model = keras.Sequential([keras.Input((40, 40, 3)), keras.layers.Conv2D(2, 3, activation="relu", name="c")])
    path = tmp_path / "rgb40.keras"
    model.save(path)
    rng = np.random.default_rng(0)
    pixels = np.clip(rng.normal(128, 40, (8, 40, 40, 1)) + rng.normal(0, 8, (8, 40, 40, 3)), 0, 255)
    np.save(tmp_path / "images.npy", pixels.astype(np.uint8))
    out = tmp_path / "out"
    result = runner.invoke(app, ["find", str(path), "--layer", "c", "--steps", "4", "--input-range", "0,255",
                                 "--images", str(tmp_path / "images.npy"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0] == ("method: robust (auto: input 40x40, over 32 px; --method series|robust "
                                             "to choose), colours of the images given")
    config = OipResult.load(out).config
    assert config.method == "robust" and config.contrast == 1.0 and len(config.colour_matrix) == 9
    matrix = np.reshape(config.colour_matrix, (3, 3))
    assert np.all(matrix[:, 0] > 0) and np.ptp(matrix[:, 0]) < 0.05 * matrix[0, 0]  # grey-ish images: luminance
    again = runner.invoke(app, ["find", str(path), "--layer", "c", "--steps", "4", "--input-range", "0,255",
                                "--images", str(tmp_path / "images.npy"), "--out", str(out), "--resume"])
    assert again.exit_code == 0, again.output
