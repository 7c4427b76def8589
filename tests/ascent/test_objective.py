"""Objectives: the grammar, arithmetic on terms, exact term values on small tensors, and their checks."""

from __future__ import annotations

import numpy as np
import pytest

from oipscope.errors import ConfigError
from oipscope.ascent.objective import (
    Context,
    Objective,
    blur,
    channel,
    class_logit,
    direction,
    diversity,
    l1,
    l2,
    neuron,
    parse_objective,
    region,
    tv,
)

tf = pytest.importorskip("tensorflow")


def _value(term, features, maps, groups=None, images=None, centre=0.0, spread=1.0):
    """The term's (B,) value as a numpy array, from numpy inputs."""
    features = tf.constant(np.asarray(features, np.float32))
    images = features if images is None else tf.constant(np.asarray(images, np.float32))
    ctx = Context(features, images, tf.constant(np.asarray(maps, np.int32)),
                  None if groups is None else tf.constant(np.asarray(groups, np.int32)),
                  tf.constant(np.asarray(centre, np.float32)), tf.constant(np.asarray(spread, np.float32)))
    return term.value(ctx).numpy()


# ---- the grammar ------------------------------------------------------------------------------


@pytest.mark.parametrize("text", [
    "channel",
    "neuron",
    "neuron:3,4",
    "region:2:5,1:4",
    "direction:1,-2.5,0",
    "class",
    "class - 0.1*tv",
    "2*neuron:1,1 + 0.5*channel",
    "neuron - channel",
    "channel - 0.5*diversity - 0.05*tv + 0.01*l1 - 2*l2 - blur",
])
def test_parse_text_round_trip(text):
    objective = parse_objective(text)
    assert objective.text() == text
    assert parse_objective(objective.text()) == objective


def test_parse_normalizes_weights_case_and_spaces():
    assert parse_objective("  CHANNEL-.5*Diversity ").text() == "channel - 0.5*diversity"
    assert parse_objective("1.5e-3*channel").terms == ((0.0015, channel()),)
    assert parse_objective("channel - 0.5*diversity").terms == ((1.0, channel()), (-0.5, diversity()))
    assert parse_objective("neuron:3,4").terms == ((1.0, neuron(3, 4)),)
    assert parse_objective("region:2:5,1:4").terms == ((1.0, region(2, 5, 1, 4)),)
    assert parse_objective("direction:3,4").terms[0][1].vector == (3.0, 4.0)
    assert parse_objective(channel()) == channel()._objective()  # terms and objectives pass through


def test_direction_from_a_file(tmp_path):
    path = tmp_path / "d.npy"
    np.save(path, np.array([0.5, -1.0, 2.0]))
    assert parse_objective(f"direction:{path}").terms[0][1].vector == (0.5, -1.0, 2.0)


@pytest.mark.parametrize("text, message", [
    ("chanel", "unknown objective term 'chanel'; known: channel"),
    ("neuron:3", "neuron takes Y,X"),
    ("neuron:a,b", "neuron takes Y,X"),
    ("neuron:-1,2", ">= 0"),
    ("region:1:2", "region takes Y0:Y1,X0:X1"),
    ("region:3:2,1:4", "is empty"),
    ("channel:3", "takes no argument"),
    ("channel 0.5*tv", "joined by \\+ or -"),
    ("channel +", "cannot read the objective"),
    ("0.5*", "has no term"),  # a weight without its term
    ("tv", "reads no layer"),
    ("tv - l1", "reads no layer"),
    ("2*diversity", "reads no layer"),
    ("class + channel", "mixes class logits"),
    ("channel - class", "mixes class logits"),
    ("-channel", "positive weight"),
    ("", "empty"),
    ("direction:", "direction needs its values"),
    ("direction:a,b", "must be numbers"),
    ("direction:/nonexistent/d.npy", "direction file .*d.npy not found"),
])
def test_parse_errors(text, message):
    with pytest.raises(ConfigError, match=message):
        parse_objective(text)


def test_all_zero_direction_names_the_problem():
    with pytest.raises(ConfigError, match="not all zero"):
        parse_objective("direction:0,0")


def test_constructor_errors():
    with pytest.raises(ConfigError, match="both Y and X"):
        neuron(3)
    with pytest.raises(ConfigError, match="not all zero"):
        direction([0.0, 0.0])
    with pytest.raises(ConfigError, match="only be multiplied by a number"):
        channel() * channel()
    with pytest.raises(ConfigError, match="only be multiplied by a number"):
        channel() * True
    with pytest.raises(ConfigError, match="cannot combine"):
        channel() + 1


# ---- arithmetic -------------------------------------------------------------------------------


def test_arithmetic_of_layer_terms():
    assert 2 * neuron() == parse_objective("2*neuron")
    assert (2 * neuron()).text() == "2*neuron"
    assert neuron(1, 2) * 3.0 == parse_objective("3*neuron:1,2")
    assert channel() / 4 == parse_objective("0.25*channel")
    assert channel() + neuron(0, 0) == parse_objective("channel + neuron:0,0")
    assert sum([channel(), 0.5 * neuron()]) == parse_objective("channel + 0.5*neuron")
    assert (channel() + 2 * region(0, 1, 0, 1)).primary == channel()


@pytest.mark.parametrize("build, text", [
    (lambda: channel() - 0.5 * diversity(), "channel - 0.5*diversity"),
    (lambda: channel() - 0.5 * diversity() - 0.05 * tv(), "channel - 0.5*diversity - 0.05*tv"),
    (lambda: sum([channel(), -0.1 * l1(), -1.0 * blur()]), "channel - 0.1*l1 - blur"),
    (lambda: neuron() - channel(), "neuron - channel"),
])
def test_arithmetic_with_regularizers_equals_the_parsed_text(build, text):
    assert build() == parse_objective(text)


def test_objective_properties():
    objective = parse_objective("0.1*l2 + channel - diversity")
    assert objective.primary == channel()
    assert objective.couples and not objective.logits and not objective.is_series
    assert parse_objective("channel").is_series and not parse_objective("2*channel").is_series
    assert parse_objective("class - tv").logits
    assert not parse_objective("class").primary.rectified and not parse_objective("direction:1").primary.rectified
    assert parse_objective("neuron").primary.rectified


# ---- exact values -----------------------------------------------------------------------------


def test_channel_neuron_and_region_values():
    # features[b, y, x, m] = 100*b + 10*m + (4*y + x): position, map and element are all visible
    y, x = np.mgrid[0:3, 0:4]
    features = np.stack([np.stack([100 * b + 10 * m + 4 * y + x for m in range(2)], axis=-1) for b in range(2)])
    maps = [1, 0]
    np.testing.assert_allclose(_value(channel(), features, maps), [10 + 5.5, 100 + 5.5])
    # the centre of a 3x4 layer is (3//2, 4//2) = (1, 2): 4*1 + 2 = 6
    np.testing.assert_allclose(_value(neuron(), features, maps), [10 + 6, 100 + 6])
    np.testing.assert_allclose(_value(neuron(2, 0), features, maps), [10 + 8, 100 + 8])
    # rows 0..1, columns 1..3: positions 1, 2, 5, 6, mean 3.5
    np.testing.assert_allclose(_value(region(0, 2, 1, 3), features, maps), [10 + 3.5, 100 + 3.5])


def test_dense_features_direction_and_class():
    dense = np.array([[1.0, 2.0, -3.0], [4.0, 0.0, 6.0]])
    np.testing.assert_allclose(_value(class_logit(), dense, [2, 0]), [-3.0, 4.0])
    np.testing.assert_allclose(_value(channel(), dense, [1, 1]), [2.0, 0.0])
    np.testing.assert_allclose(_value(neuron(), dense, [0, 2]), [1.0, 6.0])  # a dense unit has no positions
    # the direction is normalized: (3, 0, 4) / 5; the map index is ignored
    np.testing.assert_allclose(_value(direction([3, 0, 4]), dense, [0, 1]), [(3 - 12) / 5, (12 + 24) / 5],
                               rtol=1e-6)
    maps = np.zeros((1, 2, 2, 2), np.float32)
    maps[..., 0], maps[0, 0, 0, 1] = 2.0, 4.0  # map 0 is 2 everywhere, map 1 has a 4 at one position
    np.testing.assert_allclose(_value(direction([0, -2]), maps, [0]), [-1.0])  # -(4 / 4 positions)
    np.testing.assert_allclose(_value(direction([1, 1]), maps, [0]), [(2 + 1) / np.sqrt(2)], rtol=1e-6)


def test_diversity_is_the_mean_similarity_within_a_group():
    dense = np.array([
        [1.0, 2.0, 0.0],  # group 0: two identical replicates
        [1.0, 2.0, 0.0],
        [1.0, 0.0, 0.0],  # group 1: two orthogonal replicates
        [0.0, 3.0, 0.0],
        [5.0, 1.0, 1.0],  # group 2: alone
        [1.0, 0.0, 0.0],  # group 3: three replicates, cosines 0 and 1/sqrt(2) with the others
        [0.0, 0.0, 2.0],
        [1.0, 0.0, 1.0],
    ])
    groups = [0, 0, 1, 1, 2, 3, 3, 3]
    s = 1 / np.sqrt(2)
    np.testing.assert_allclose(_value(diversity(), dense, maps=[0] * 8, groups=groups),
                               [1, 1, 0, 0, 0, s / 2, s / 2, s], atol=1e-6)
    # without groups the targets group the elements
    np.testing.assert_allclose(_value(diversity(), dense[:2], maps=[4, 4]), [1, 1], atol=1e-6)
    np.testing.assert_allclose(_value(diversity(), dense[:2], maps=[4, 5]), [0, 0], atol=1e-6)


def test_diversity_of_feature_maps_compares_gram_matrices():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((3, 3, 2))
    rolled = np.roll(a, 1, axis=(0, 1))  # the same values at other positions: the same Gram matrix
    only0, only1 = np.zeros((3, 3, 2)), np.zeros((3, 3, 2))
    only0[..., 0], only1[..., 1] = 1.0, 2.0  # Gram matrices with disjoint entries
    np.testing.assert_allclose(_value(diversity(), np.stack([a, rolled]), [0, 0]), [1, 1], atol=1e-6)
    np.testing.assert_allclose(_value(diversity(), np.stack([only0, only1]), [0, 0]), [0, 0], atol=1e-6)


def test_image_terms_on_known_images():
    ramp = np.tile(np.arange(3.0), (2, 1))[None, :, :, None]  # rows [0, 1, 2]: steps of 1 across, 0 down
    np.testing.assert_allclose(_value(tv(), ramp, [0]), [1.0])
    np.testing.assert_allclose(_value(tv(), ramp, [0], centre=5.0, spread=2.0), [0.5])  # in spread units
    flat = np.full((1, 2, 2, 1), 5.0)
    np.testing.assert_allclose(_value(l1(), flat, [0], centre=1.0, spread=2.0), [2.0])
    np.testing.assert_allclose(_value(l2(), flat, [0], centre=1.0, spread=2.0), [4.0])
    np.testing.assert_allclose(_value(l1(), -flat, [0]), [5.0])
    np.testing.assert_allclose(_value(blur(), flat, [0]), [0.0], atol=1e-12)
    impulse = np.zeros((1, 5, 5, 1))
    impulse[0, 2, 2, 0] = 1.0
    # the 3x3 mean of an impulse: 1/9 on its 9 pixels; (1 - 1/9)^2 + 8 (1/9)^2 = 8/9 over 25 pixels
    np.testing.assert_allclose(_value(blur(), impulse, [0]), [8 / 9 / 25], rtol=1e-5)
    two = np.concatenate([impulse, 3 * impulse])  # per element, and per channel
    np.testing.assert_allclose(_value(blur(), two, [0, 0]), [8 / 225, 9 * 8 / 225], rtol=1e-5)


def test_weighted_sum():
    features = np.array([[1.0, 2.0], [3.0, 5.0]])
    images = np.zeros((2, 2, 2, 1))
    images[1, :, 1] = 2.0
    objective = parse_objective("2*channel - 0.5*tv - neuron")
    ctx = Context(tf.constant(features, tf.float32), tf.constant(images, tf.float32), tf.constant([1, 0]))
    # element 0: 2*2 - 0 - 2; element 1: 2*3 - 0.5*(0 + 2) - 3
    np.testing.assert_allclose(objective.value(ctx).numpy(), [2.0, 2.0])
    np.testing.assert_allclose(objective.measure(ctx).numpy(), [2.0, 3.0])  # the primary term alone


# ---- convergence and silence ------------------------------------------------------------------


def test_change_is_relative_to_the_magnitude():
    value = tf.constant([-2.0, 3.0, 0.5, -1.0])
    previous = tf.constant([-3.0, 2.0, 0.5, 0.0])
    change = Objective.change(value, previous).numpy()
    np.testing.assert_allclose(change[:3], [1 / 2, 1 / (3 + 1e-7), 0.0], rtol=1e-6)
    assert change[0] > 0  # a logit that climbs from -3 to -2 improves
    assert change[3] < 0
    a, prev = np.array([0.0, 0.25, 4.0], np.float32), np.array([0.0, 0.2, 1.0], np.float32)
    np.testing.assert_allclose(Objective.change(tf.constant(a), tf.constant(prev)).numpy(),
                               (a - prev) / (a + 1e-7), rtol=1e-6)


def test_silent_rules():
    value = tf.constant([0.0, 0.0, 3.0, -2.0])
    rms = tf.constant([0.0, 1.0, 0.0, 0.0])
    assert parse_objective("channel").silent(value, rms).numpy().tolist() == [True, False, False, False]
    # a logit of exactly 0 is an ordinary value: only a zero gradient is silent
    assert parse_objective("class - tv").silent(value, rms).numpy().tolist() == [True, False, True, True]


# ---- checks against the layer -----------------------------------------------------------------


def test_checks_against_the_layer_shape():
    conv, dense = (None, 3, 4, 6), (None, 6)
    parse_objective("neuron:2,3 + region:0:3,0:4 + direction:1,2,3,4,5,6").check(conv)
    parse_objective("neuron:5,5 + direction:1,2,3,4,5,6").check(dense)  # a dense unit has no positions
    with pytest.raises(ConfigError, match=r"neuron 3,0 is outside the layer's 3x4 positions; use Y in 0..2"):
        parse_objective("neuron:3,0").check(conv)
    with pytest.raises(ConfigError, match="region 0:4,0:1 does not fit the layer's 3x4 positions"):
        parse_objective("region:0:4,0:1").check(conv)
    with pytest.raises(ConfigError, match="dense layer has no positions"):
        parse_objective("region:0:1,0:1").check(dense)
    with pytest.raises(ConfigError, match="direction has 2 values but the layer has 6 maps"):
        parse_objective("direction:1,2").check(conv)


@pytest.mark.parametrize("layer, text, message", [
    ("c2", "neuron:3,0", "outside the layer's 3x3"),
    ("out", "region:0:1,0:1", "no positions"),
    ("c2", "direction:1,2", "direction has 2 values but the layer has 6 maps"),
    ("c2", "channel - 0.1*tv + neuron:0,9", "outside"),
])
def test_find_oips_checks_the_objective_before_any_ascent(tiny_model, monkeypatch, layer, text, message):
    from oipscope.search import pipeline as search
    from oipscope.config import OipConfig

    def never(*args, **kwargs):
        raise AssertionError("no ascent may start before the objective is checked")

    for name in ("ascend", "render", "mean_activations"):
        monkeypatch.setattr(search, name, never)
    for config in (OipConfig(steps=2, objective=text), OipConfig.robust(steps=2, objective=text)):
        with pytest.raises(ConfigError, match=message):
            search.find_oips(tiny_model, layer, "all", config)
