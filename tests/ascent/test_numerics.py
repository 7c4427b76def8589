"""NaN and Inf: detected per map ("nonfinite"), the other maps of the batch unaffected."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

import keras

BAD = 2  # the poisoned channel


@keras.saving.register_keras_serializable(package="oipscope_tests")
class Poison(keras.layers.Layer):
    """Passes its input through, except channel ``BAD``.

    ``nan``: log of a negative number (NaN activation, finite gradient for the other maps);
    ``inf``: +Inf activation; ``nan-grad``: finite activation whose gradient is NaN.
    """

    def __init__(self, mode: str = "nan", **kwargs):
        super().__init__(**kwargs)
        self.mode = mode

    def call(self, x):
        import tensorflow as tf

        left, bad, right = x[..., :BAD], x[..., BAD:BAD + 1], x[..., BAD + 1:]
        if self.mode == "nan":
            bad = tf.math.log(-1.0 - tf.abs(bad))
        elif self.mode == "inf":
            bad = bad * 0.0 + np.inf
        else:
            bad = _nan_gradient(bad)
        return tf.concat([left, bad, right], axis=-1)

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}


def _nan_gradient(x):
    import tensorflow as tf

    @tf.custom_gradient
    def identity(v):
        def grad(dy):  # NaN only where this channel's activation is being maximized
            return tf.where(tf.not_equal(dy, 0.0), tf.fill(tf.shape(dy), np.nan), tf.zeros_like(dy))

        return tf.identity(v), grad

    return identity(x)


def _model(mode: str) -> keras.Model:
    keras.utils.set_random_seed(1)
    return keras.Sequential([
        keras.Input((10, 10, 1)),
        keras.layers.Conv2D(5, 3, activation="relu", name="c"),
        Poison(mode, name="poison"),
    ], name=f"poison_{mode.replace('-', '_')}")


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["nan", "inf", "nan-grad"])
def test_nonfinite_map_is_flagged_and_others_are_unaffected(mode):
    from oipscope.ascent.pixels import OipConfig
    from oipscope.search.pipeline import find_oips

    model = _model(mode)
    config = OipConfig(steps=30, n_candidates=4, restarts=1, seed=5)
    result = find_oips(model, "poison", "all", config)
    statuses = {m.map_index: m.status for m in result.maps}
    assert statuses[BAD] == "nonfinite", statuses
    assert result.summary()["nonfinite"] == 1
    assert np.isfinite(result.maps[BAD].image).all(), "the image stays at its last finite state"

    # the clean maps give exactly what a model without the poisoned channel gives
    clean = keras.Model(model.inputs[0], model.get_layer("c").output)
    expected = find_oips(clean, "c", [m for m in range(5) if m != BAD], config)
    for oip, want in zip([m for m in result.maps if m.map_index != BAD], expected.maps):
        assert oip.status in ("converged", "step_limit", "silent"), (oip.map_index, oip.status)
        assert oip.status == want.status and oip.start == want.start
        assert np.isfinite(oip.image).all() and np.isfinite(oip.activation)
        np.testing.assert_allclose(oip.image, want.image, atol=1e-5)
        np.testing.assert_allclose(oip.activation_history, want.activation_history, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_cli_summary_counts_nonfinite_maps(tmp_path):
    from oipscope.cli.commands import app

    path = tmp_path / "poison.keras"
    _model("nan").save(path)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["find", str(path), "--layer", "poison", "--steps", "20", "--no-assess",
                                      "--restarts", "0", "--out", str(out)])
    assert result.exit_code == 0, result.output
    summary = [line for line in result.output.splitlines() if line.startswith("poison: 5 OIPs")]
    assert len(summary) == 1 and ", 1 non-finite," in summary[0], result.output
    assert (out / "result.json").is_file()
