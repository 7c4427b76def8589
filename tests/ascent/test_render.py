"""The readable ascent (render): robust configs through find_oips, diversity, class logits, and the ReLU warm-up."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")

from conftest import assert_reproduced, build_tiny_model  # noqa: E402

from oipscope.config import Execution, OipConfig  # noqa: E402
from oipscope.errors import ConfigError  # noqa: E402
from oipscope.model.loading import feature_submodel  # noqa: E402
from oipscope.ascent.objective import map_means  # noqa: E402
from oipscope.ascent.parameters import _batches  # noqa: E402
from oipscope.search.pipeline import find_oips  # noqa: E402
from oipscope.ascent.warmup import redirected_relu  # noqa: E402

ROBUST = OipConfig.robust(steps=30, restarts=0)


@pytest.fixture(scope="module")
def rgb():
    """A range-encoded RGB model (raw pixels 0..255 through Rescaling): c1 (10,10,4) → pool → c2 (3,3,6)."""
    keras.utils.set_random_seed(0)
    return keras.Sequential([
        keras.Input((12, 12, 3)),
        keras.layers.Rescaling(1 / 255.0),
        keras.layers.Conv2D(4, 3, activation="relu", name="c1"),
        keras.layers.MaxPooling2D(2),
        keras.layers.Conv2D(6, 3, activation="relu", name="c2"),
        keras.layers.Flatten(),
        keras.layers.Dense(3, name="out"),
    ], name="rgb")


@pytest.fixture(scope="module")
def robust_run(rgb):
    return find_oips(rgb, "c2", [0, 1, 2, 3], ROBUST)


def _images(result) -> np.ndarray:
    return np.stack([oip.image for oip in result.maps])


# ---- which loop ---------------------------------------------------------------------------------


def test_which_loop_a_config_uses():
    assert OipConfig().uses_series_loop
    assert OipConfig(objective="neuron - 0.1*tv", warmup_steps=5).uses_series_loop  # no coupling: the series' loop
    for change in ({"transforms": ("jitter:1",)}, {"parametrization": "fourier"}, {"decorrelate": True},
                   {"bounded": True}, {"optimizer": "adam"}, {"objective": "channel - diversity"}):
        assert not OipConfig(**change).uses_series_loop, change
    with pytest.raises(ConfigError, match="strategy 1 .* works with the series' method only"):
        OipConfig(strategy=1, transforms=("jitter:1",))
    with pytest.raises(ConfigError, match="strategy 1"):
        OipConfig.robust(strategy=1)
    assert OipConfig(strategy=1).strategy == 1


def test_the_robust_preset():
    config = OipConfig.robust(steps=256, objective="channel-0.5*diversity")
    assert (config.parametrization, config.decorrelate, config.bounded, config.transforms, config.optimizer) == (
        "fourier", True, True, ("standard",), "adam")
    assert (config.steps, config.stop_on_convergence, config.warmup_steps) == (256, False, 32)  # an eighth
    assert OipConfig.robust().warmup_steps == 64 and OipConfig.robust(steps=30).warmup_steps == 3
    assert config.objective == "channel - 0.5*diversity"  # stored in its canonical text: the resume key
    assert OipConfig.from_dict(config.to_dict()) == config
    assert not config.uses_series_loop
    for bad, message in (({"parametrization": "wavelet"}, "parametrization must be one of pixels, fourier"),
                         ({"optimizer": "sgd"}, "optimizer must be one of normalized, adam"),
                         ({"learning_rate": 0.0}, "learning_rate must be > 0"),
                         ({"warmup_steps": -1}, "warmup_steps must be an integer >= 0"),
                         ({"bounded": 1}, "bounded must be True or False"),
                         ({"transforms": ("zoom:2",)}, "unknown transform")):
        with pytest.raises(ConfigError, match=message):
            OipConfig.robust(**bad)


def test_batches_never_split_the_replicates_of_a_map():
    def rows(groups, capacity):
        return [b.tolist() for b in _batches(np.asarray(groups), capacity)]

    assert rows([0, 0, 1, 1, 1, 2], 4) == [[0, 1], [2, 3, 4, 5]]
    assert rows([0, 0, 0, 0, 0, 1], 2) == [[0, 1, 2, 3, 4], [5]]  # a group larger than a batch stays whole
    assert rows([0, 1, 2, 3, 4], 2) == [[0, 1], [2, 3], [4]]
    assert rows([7], 64) == [[0]]


# ---- robust OIPs through find_oips -----------------------------------------------------------


@pytest.mark.slow
def test_robust_oips_are_finite_inside_the_range_and_measured(rgb, robust_run):
    images = _images(robust_run)
    assert [oip.map_index for oip in robust_run.maps] == [0, 1, 2, 3]
    assert robust_run.encoding.bounds(3)[0].tolist() == [0, 0, 0]  # Rescaling: raw pixels 0..255
    assert np.all(np.isfinite(images)) and images.min() >= 0.0 and images.max() <= 255.0
    assert images.std() > 5  # not a flat image
    for oip in robust_run.maps:
        assert oip.start == "fourier"
        assert oip.activation_history.shape == (30,) and oip.converged_step == -1
        assert oip.snapshots.shape == (len(oip.snapshot_steps), 12, 12, 3) and oip.snapshot_steps[-1] == 29
        np.testing.assert_array_equal(oip.snapshots[-1], oip.image)
    # the reported activation is the map's mean on the final image, untransformed
    features = feature_submodel(rgb, "c2")(images, training=False)
    np.testing.assert_allclose([oip.activation for oip in robust_run.maps],
                               map_means(features, tf.constant([0, 1, 2, 3])).numpy(), rtol=1e-4, atol=1e-6)
    assert any(oip.activation > max(oip.activation_history[0], 0) for oip in robust_run.maps)  # the ascent climbs


@pytest.mark.slow
def test_robust_oips_are_reproducible_and_independent_of_the_batch(rgb, robust_run):
    again = find_oips(rgb, "c2", [0, 1, 2, 3], ROBUST)
    np.testing.assert_array_equal(_images(again), _images(robust_run))
    alone = find_oips(rgb, "c2", [2], ROBUST)
    np.testing.assert_allclose(alone.maps[0].image, robust_run.maps[2].image, atol=1e-5 * 255)
    one_by_one = find_oips(rgb, "c2", [3, 1], ROBUST, execution=Execution(batch_size=1))
    np.testing.assert_allclose(_images(one_by_one), _images(robust_run)[[1, 3]], atol=1e-5 * 255)
    other_seed = find_oips(rgb, "c2", [2], OipConfig.robust(steps=30, restarts=0, seed=1))
    assert np.abs(other_seed.maps[0].image - robust_run.maps[2].image).max() > 1.0


def _gram_cosine(sub, result) -> float:
    """Cosine similarity of the layer's Gram matrices on the two OIPs of a result (diversity's measure)."""
    features = sub(_images(result), training=False).numpy()
    flat = features.reshape(len(features), -1, features.shape[-1])
    grams = np.einsum("bpi,bpj->bij", flat, flat).reshape(len(features), -1)
    grams /= np.linalg.norm(grams, axis=1, keepdims=True)
    return float(grams[0] @ grams[1])


@pytest.fixture(scope="module")
def replicates(rgb):
    """Two OIPs of map 0 with the plain objective, with the documented ``- diversity`` and with ``+ diversity``."""
    return {objective: find_oips(rgb, "c2", [0], OipConfig.robust(steps=30, restarts=0, n_per_map=2,
                                                                  objective=objective))
            for objective in ("channel", "channel - 10*diversity", "channel + 10*diversity")}


@pytest.mark.slow
def test_a_diversity_term_changes_the_replicates_and_keeps_them_in_one_batch(rgb, replicates):
    plain, diverse = replicates["channel"], replicates["channel - 10*diversity"]
    assert diverse.config.objective == "channel - 10*diversity"
    assert [oip.map_index for oip in diverse.maps] == [0, 0]
    a, b = _images(diverse)
    assert np.abs(a - b).max() > 1.0
    for k in range(2):  # the same seeds: only the diversity term made them differ
        assert np.abs(diverse.maps[k].image - plain.maps[k].image).max() > 1.0
    # the replicates climb together: batches of one would tear them apart, so a batch keeps them whole
    whole = find_oips(rgb, "c2", [0], diverse.config, execution=Execution(batch_size=1))
    np.testing.assert_allclose(_images(whole), _images(diverse), atol=1e-5 * 255)


@pytest.mark.slow
def test_subtracting_diversity_spreads_the_replicates(rgb, replicates):
    sub = feature_submodel(rgb, "c2")
    plain = _gram_cosine(sub, replicates["channel"])
    assert plain > 0.99  # two seeds, nearly the same pattern
    assert _gram_cosine(sub, replicates["channel - 10*diversity"]) < min(0.9, plain - 0.05)
    assert _gram_cosine(sub, replicates["channel + 10*diversity"]) >= plain - 1e-3  # adding it pulls them together


@pytest.mark.slow
def test_class_logits_give_one_oip_per_class_predicted_as_that_class():
    keras.utils.set_random_seed(1)
    model = build_tiny_model("tiny_softmax", output_activation="softmax")
    kernel, bias = model.get_layer("out").get_weights()
    # logits that sum to zero: raising one class's logit lowers the others on average (in an untrained
    # model, logits with a shared component could all rise together, and the argmax would not follow)
    model.get_layer("out").set_weights([kernel - kernel.mean(axis=1, keepdims=True), np.zeros_like(bias)])
    result = find_oips(model, "out", "all", OipConfig.robust(steps=60, restarts=0, objective="class"))
    assert [oip.map_index for oip in result.maps] == [0, 1, 2]
    images = _images(result)
    np.testing.assert_allclose(images.mean(axis=(1, 2, 3)), 0, atol=1e-4)  # standardized model input
    probabilities = model(images, training=False).numpy()
    assert probabilities.argmax(axis=1).tolist() == [0, 1, 2], probabilities
    logits = np.log(probabilities)
    logits -= logits.mean(axis=1, keepdims=True)  # the zero-sum logits themselves
    np.testing.assert_allclose([oip.activation for oip in result.maps], np.diag(logits), rtol=1e-3, atol=1e-4)
    assert all(oip.activation > oip.activation_history[0] for oip in result.maps)


# ---- the ReLU warm-up -------------------------------------------------------------------------


def _relu_model():
    """A 1x1 convolution on 4x4x1 input: map 0 is the input (alive), map 1 the input - 100 (dead)."""
    inputs = keras.Input((4, 4, 1))
    conv = keras.layers.Conv2D(2, 1, activation="relu", name="conv")
    model = keras.Model(inputs, conv(inputs))
    conv.set_weights([np.ones((1, 1, 1, 2), np.float32), np.array([0.0, -100.0], np.float32)])
    return model


def test_redirected_relu_passes_gradient_only_to_warming_stuck_elements():
    model = _relu_model()
    plain_relu = tf.nn.relu
    x = tf.constant(np.random.default_rng(0).uniform(0.1, 1.0, (4, 4, 4, 1)), tf.float32)
    maps = tf.constant([1, 1, 0, 0])

    def gradient(x, maps):
        with tf.GradientTape() as tape:
            tape.watch(x)
            total = tf.reduce_sum(map_means(model(x, training=False), maps))
        return tape.gradient(total, x)

    @tf.function
    def warmed(x, maps, warm):
        with redirected_relu(warm):
            return gradient(x, maps)

    plain = tf.function(gradient)(x, maps).numpy()
    np.testing.assert_array_equal(plain[:2], 0.0)  # a dead map has no gradient
    np.testing.assert_allclose(plain[2:], 1 / 16)  # a live one: its mean over 16 positions
    out = warmed(x, maps, tf.constant([True, False, True, False])).numpy()
    np.testing.assert_allclose(out[0], 1 / 16)  # warming and stuck: the gradient that would wake it
    np.testing.assert_array_equal(out[1], 0.0)  # not warming: unchanged
    np.testing.assert_array_equal(out[2:], plain[2:])  # a live unit's gradient is unchanged, warming or not
    assert tf.nn.relu is plain_relu  # the plain ReLU is back after the trace


def test_redirected_relu_of_dense_units_and_only_upward():
    inputs = keras.Input((3,))
    dense = keras.layers.Dense(2, activation="relu")
    model = keras.Model(inputs, dense(inputs))
    dense.set_weights([np.array([[1.0, 2.0], [0.0, -1.0], [3.0, 0.5]], np.float32), np.array([-100.0, -100.0],
                                                                                                np.float32)])
    x = tf.constant([[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]])

    @tf.function
    def warmed(x, sign):
        with redirected_relu(tf.constant([True, True])), tf.GradientTape() as tape:
            tape.watch(x)
            total = tf.reduce_sum(sign * model(x, training=False)[:, 1])
        return tape.gradient(total, x)

    np.testing.assert_allclose(warmed(x, 1.0).numpy(), [[2.0, -1.0, 0.5]] * 2)  # pushed up: let through
    np.testing.assert_array_equal(warmed(x, -1.0).numpy(), 0.0)  # pushed further down: stays blocked


def test_redirected_relu_restores_the_plain_relu_after_an_error():
    plain = tf.nn.relu
    with pytest.raises(RuntimeError):
        with redirected_relu(tf.constant([True])):
            assert tf.nn.relu is not plain
            raise RuntimeError("boom")
    assert tf.nn.relu is plain


@pytest.fixture(scope="module")
def dead_blob():
    """Map 1 of c1 is the 3x3 mean of the image (0..1 after Rescaling) minus 0.95: off for the seeded
    starts, but on where a 3x3 patch is brighter than 0.95 * 255."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((12, 12, 1)), keras.layers.Rescaling(1 / 255.0),
                              keras.layers.Conv2D(2, 3, activation="relu", name="c1")], name="blob")
    kernel, bias = model.get_layer("c1").get_weights()
    kernel[..., 1], bias[1] = 1 / 9, -0.95
    model.get_layer("c1").set_weights([kernel, bias])
    return model


@pytest.mark.slow
def test_the_warm_up_wakes_a_dead_map_in_the_series_loop(dead_blob):
    base = {"restarts": 0, "rescue_steps": 0, "precursor": False, "steps": 40, "epsilon": 0.05,
            "warmup_round_steps": 0}
    cold = find_oips(dead_blob, "c1", [1], OipConfig(**base)).maps[0]
    assert cold.status == "silent" and cold.activation == 0.0
    # reachable: the pre-activation rescue from the same start wakes it
    rescued = find_oips(dead_blob, "c1", [1], OipConfig(**{**base, "rescue_steps": 30})).maps[0]
    assert rescued.status != "silent" and rescued.activation > 0 and rescued.start.startswith("rescue:")
    warm = find_oips(dead_blob, "c1", [1], OipConfig(**{**base, "warmup_steps": 30})).maps[0]
    assert warm.status != "silent" and warm.activation > 0 and warm.start == "scales"
    assert warm.activation_history[0] == 0.0  # it started dead, like the cold one
    # the default last round: fresh starts with a warm-up of a quarter of the steps, for maps still silent
    last = find_oips(dead_blob, "c1", [0, 1], OipConfig(**{**base, "warmup_round_steps": 150}))
    woken = last.maps[1]
    assert woken.status != "silent" and woken.activation > 0 and woken.start.startswith("warm-up150:")
    live = find_oips(dead_blob, "c1", [0], OipConfig(**base)).maps[0]
    assert live.activation > 0  # a live map keeps its OIP (bit for bit where the backend is exact)
    assert_reproduced(last.maps[0].image, live.image)


@pytest.mark.slow
def test_a_long_readable_ascent_keeps_an_evenly_thinned_history(rgb, monkeypatch):
    from oipscope.ascent import pixels as engine

    full = find_oips(rgb, "c2", [0, 1], ROBUST)
    monkeypatch.setattr(engine, "HISTORY_SAMPLES", 6)  # 30 steps: every 5th step
    thin = find_oips(rgb, "c2", [0, 1], ROBUST)
    for a, b in zip(full.maps, thin.maps):
        assert (a.history_every, b.history_every) == (1, 5)
        np.testing.assert_array_equal(b.activation_history, a.activation_history[::5])
        np.testing.assert_array_equal(b.image, a.image)
