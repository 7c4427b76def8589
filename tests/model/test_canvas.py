"""The canvas (``OipConfig.canvas``, ``--size``): OIPs of convolutional layers grown at another size
than the model's (oipscope.model.canvas, oipscope.model.rebuild)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from oipscope import Execution, OipConfig, find_oips
from oipscope.cli.commands import app
from oipscope.errors import ConfigError
from oipscope.model.canvas import canvas_size, convolutional_path, default_canvas
from oipscope.model.rebuild import rebuilt
from oipscope.model.subject import as_subject
from oipscope.runs.jobs import run_layer
from oipscope.search.results import OipResult

runner = CliRunner()
_FAST = OipConfig(steps=12, n_candidates=2, restarts=0, rescue_steps=0, warmup_round_steps=0)


def _cnn(size: int):
    """A small fixed-size CNN with a dense head: conv, pool, conv, global pooling, dense."""
    import keras

    inputs = keras.Input((size, size, 3))
    x = keras.layers.Conv2D(4, 3, activation="relu", name="c1")(inputs)
    x = keras.layers.MaxPooling2D(name="pool")(x)
    x = keras.layers.Conv2D(4, 3, activation="relu", name="c2")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    return keras.Model(inputs, keras.layers.Dense(3, name="dense")(x), name=f"cnn{size}")


def test_default_canvas_keeps_small_models_and_grows_large_ones_at_128():
    assert [default_canvas(side) for side in (28, 64, 160, 161, 224, 299)] == [28, 64, 160, 128, 128, 128]


def test_only_a_convolutional_path_gets_the_canvas():
    subject = as_subject(_cnn(48))
    conv, dense = subject.feature_submodel("c2"), subject.output_submodel("dense")
    assert convolutional_path(conv) and not convolutional_path(dense)
    assert canvas_size(None, (192, 192, 3), conv) == (128, 128)  # a model of 192 px
    assert canvas_size(96, (192, 192, 3), conv) == (96, 96)
    assert canvas_size(None, (192, 192, 3), dense) == (192, 192)
    assert canvas_size(None, (96, 192, 3), conv) == (64, 128)  # the aspect ratio is kept
    assert canvas_size(None, (48, 48, 3), conv) == (48, 48)


def test_the_rebuilt_layer_computes_what_the_model_does_at_its_size():
    subject = as_subject(_cnn(40))
    sub = subject.feature_submodel("c2")
    small = rebuilt(sub, (24, 24))
    assert tuple(small.inputs[0].shape[1:3]) == (24, 24)
    x = np.random.default_rng(0).standard_normal((1, 40, 40, 3)).astype(np.float32)
    # a 24 px crop gives the same maps as the same region of the whole image
    whole = sub(x).numpy()
    part = small(x[:, :24, :24]).numpy()
    np.testing.assert_allclose(part, whole[:, :part.shape[1], :part.shape[2]], rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_oips_of_a_large_model_grow_at_128_by_default_and_at_size_when_asked():
    model = _cnn(192)
    default = find_oips(model, "c2", "0", _FAST, execution=Execution(precision="float32"))
    assert default.maps[0].image.shape == (128, 128, 3) and default.canvas == (128, 128)
    assert default.maps[0].activation > 0
    chosen = find_oips(model, "c2", "0", OipConfig(**{**_FAST.__dict__, "canvas": 192}))
    assert chosen.maps[0].image.shape == (192, 192, 3)
    head = find_oips(model, "dense", "0", OipConfig(**{**_FAST.__dict__, "canvas": 64}))
    assert head.maps[0].image.shape == (192, 192, 3)  # a dense layer sees the model's size


def test_a_small_model_keeps_its_size_and_its_oips():
    model = _cnn(40)
    own = find_oips(model, "c2", "0-1", _FAST)
    same = find_oips(model, "c2", "0-1", OipConfig(**{**_FAST.__dict__, "canvas": 40}))
    assert own.maps[0].image.shape == (40, 40, 3)
    for a, b in zip(own.maps, same.maps):
        np.testing.assert_array_equal(a.image, b.image)
    assert "canvas" not in OipConfig().to_dict()  # the keys of older runs stay the same


@pytest.mark.parametrize("bad", [0, 7, 5000, 12.5, "128"])
def test_a_bad_canvas_is_refused(bad):
    with pytest.raises(ConfigError, match="canvas"):
        OipConfig(canvas=bad)


@pytest.mark.slow
def test_the_canvas_is_saved_and_decides_a_resumed_run(tmp_path):
    model = _cnn(192)
    run = run_layer(model, "c2", "0", _FAST, tmp_path / "a")
    saved = json.loads((tmp_path / "a" / "result.json").read_text())
    assert saved["canvas"] == [128, 128]
    assert json.loads((tmp_path / "a" / "run.json").read_text())["canvas"] == [128, 128]
    assert OipResult.load(tmp_path / "a").canvas == (128, 128) == run.canvas
    with pytest.raises(ConfigError, match="other settings"):
        run_layer(model, "c2", "0", OipConfig(**{**_FAST.__dict__, "canvas": 96}), tmp_path / "a", resume=True)


@pytest.mark.slow
def test_cli_size_names_the_canvas_and_a_bad_one_is_one_error_line(tmp_path):
    path = tmp_path / "cnn.keras"
    _cnn(192).save(path)
    args = ["find", str(path), "--layer", "c2", "--maps", "0", "--steps", "8", "--restarts", "0", "--no-assess",
            "--out", str(tmp_path / "out")]
    ok = runner.invoke(app, args)
    assert ok.exit_code == 0, ok.output
    assert "grown at 128 px" in ok.output and "--size 192" in ok.output
    assert json.loads((tmp_path / "out" / "result.json").read_text())["canvas"] == [128, 128]
    bad = runner.invoke(app, args[:-1] + [str(tmp_path / "bad"), "--size", "3"])  # main() prints it as one line
    assert isinstance(bad.exception, ConfigError) and "canvas (--size)" in str(bad.exception)
    assert ConfigError.exit_code == 2 and not (tmp_path / "bad").exists()
