"""Receptive fields from the layer graph agree with the fields a gradient measures."""

import numpy as np
import pytest

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")

from oipscope.errors import LayerError
from oipscope.model.receptive_field import ReceptiveField, receptive_field

L = keras.layers


def _ops(measure: bool):
    """(pool class, activation) of a twin: max pooling and ReLU as built, average pooling and linear to measure.

    Max pooling and ReLU pass the gradient through some pixels only; their field is the same window,
    so the twin with average pooling and linear activations shows the whole field to the gradient.
    """
    return (L.AveragePooling2D if measure else L.MaxPooling2D), ("linear" if measure else "relu")


def vgg_like(measure: bool = False) -> keras.Model:
    pool, act = _ops(measure)
    x = inp = keras.Input((40, 40, 3))
    x = L.Conv2D(4, 3, padding="same", activation=act, name="c1")(x)
    x = L.Conv2D(4, 3, padding="same", activation=act, name="c2")(x)
    x = pool(2, name="p1")(x)
    x = L.Conv2D(4, 3, padding="same", activation=act, name="c3")(x)
    x = pool(2, name="p2")(x)
    x = L.Conv2D(4, 3, padding="valid", activation=act, name="c4")(x)
    return keras.Model(inp, x, name="vgg_like")


def resnet_like(measure: bool = False) -> keras.Model:
    pool, act = _ops(measure)
    x = inp = keras.Input((37, 37, 3))
    x = L.ZeroPadding2D(((3, 2), (3, 2)), name="pad")(x)
    x = L.Conv2D(4, 7, strides=2, name="stem")(x)
    x = L.BatchNormalization(name="stem_bn")(x)
    x = L.Activation(act, name="stem_act")(x)
    x = pool(3, strides=2, padding="same", name="stem_pool")(x)
    y = L.Conv2D(4, 3, strides=2, padding="same", name="b_conv1")(x)
    y = L.BatchNormalization(name="b_bn1")(y)
    y = L.Activation(act, name="b_act1")(y)
    y = L.Conv2D(4, 3, padding="same", name="b_conv2")(y)
    y = L.BatchNormalization(name="b_bn2")(y)
    shortcut = L.Conv2D(4, 1, strides=2, name="b_short")(x)
    x = L.Add(name="b_add")([shortcut, y])
    x = L.Activation(act, name="b_out")(x)
    return keras.Model(inp, x, name="resnet_like")


def dilated_separable(measure: bool = False) -> keras.Model:
    _, act = _ops(measure)
    x = inp = keras.Input((45, 45, 3))
    x = L.Rescaling(1 / 127.5, offset=-1, name="scale")(x)
    x = L.Conv2D(4, 3, padding="valid", activation=act, name="d1")(x)
    x = L.Conv2D(4, 3, dilation_rate=2, padding="same", activation=act, name="d2")(x)
    x = L.DepthwiseConv2D(5, strides=2, padding="valid", name="dw")(x)
    x = L.SeparableConv2D(4, 3, dilation_rate=2, padding="same", activation=act, name="sep")(x)
    a = L.Conv2D(4, 3, strides=2, padding="same", name="branch_a")(x)
    b = L.Conv2D(4, 5, strides=2, padding="same", dilation_rate=1, name="branch_b")(x)
    x = L.Concatenate(name="cat")([a, b])
    return keras.Model(inp, x, name="dilated_separable")


def _randomize(model: keras.Model, seed: int = 0) -> None:
    """Random weights, positive BN variances (its statistics), so no product is zero by chance."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        weights = layer.get_weights()
        if weights:
            layer.set_weights([rng.uniform(0.5, 1.5, w.shape).astype(np.float32) * rng.choice([-1, 1], w.shape)
                               if "variance" not in v.path else rng.uniform(0.5, 1.5, w.shape).astype(np.float32)
                               for w, v in zip(weights, layer.weights)])


def measured_box(model: keras.Model, layer_name: str, row: int, col: int) -> tuple[int, int, int, int]:
    """(top, left, bottom, right) of the input pixels where d unit(row, col) / d input is non-zero."""
    sub = keras.Model(model.inputs, model.get_layer(layer_name).output)
    h, w, c = model.inputs[0].shape[1:]
    x = tf.constant(np.linspace(1.0, 2.0, h * w * c, dtype=np.float32).reshape(1, h, w, c))
    with tf.GradientTape() as tape:
        tape.watch(x)
        out = sub(x, training=False)
        unit = tf.reduce_sum(out[0, row, col, :])
    grad = np.abs(tape.gradient(unit, x).numpy()[0]).sum(axis=-1)
    rows, cols = np.flatnonzero(grad.any(axis=1)), np.flatnonzero(grad.any(axis=0))
    return int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1


def assert_fits(measured, field_box, hw, where) -> None:
    """The measured box lies in the field; on every side where the field stays inside the image they are equal.

    Where the field reaches past the image the measured box may stop short of the edge: a dilated tap
    that lands on an inner layer's zero padding reads a constant, no input pixel.
    """
    top, left, bottom, right = field_box
    inside = (top >= 0, left >= 0, bottom <= hw[0], right <= hw[1])
    limits = (max(top, 0), max(left, 0), min(bottom, hw[0]), min(right, hw[1]))
    for side, (got, want, exact) in enumerate(zip(measured, limits, inside)):
        if exact:
            assert got == want, (where, measured, field_box)
        else:
            assert (got >= want) if side < 2 else (got <= want), (where, measured, field_box)


@pytest.mark.slow
@pytest.mark.parametrize("build, layers", [
    (vgg_like, ["c1", "c2", "p1", "c3", "p2", "c4"]),
    (resnet_like, ["stem", "stem_pool", "b_conv1", "b_conv2", "b_short", "b_add", "b_out"]),
    (dilated_separable, ["d1", "d2", "dw", "sep", "branch_a", "branch_b", "cat"]),
])
def test_the_field_is_where_the_gradient_of_a_unit_is_non_zero(build, layers):
    model, twin = build(), build(measure=True)
    _randomize(twin)
    hw = tuple(model.inputs[0].shape[1:3])
    for name in layers:
        field = receptive_field(model, name)
        assert field is not None and field.input_hw == hw
        assert receptive_field(twin, name) == field  # max pooling and ReLU do not change the field
        rows, cols = model.get_layer(name).output.shape[1:3]
        for row, col in {(0, 0), (rows - 1, cols - 1), (rows // 2, cols // 2), (0, cols - 1), (rows // 3, 1 % cols)}:
            assert_fits(measured_box(twin, name, row, col), field.box(row, col), hw, (name, row, col))


def test_known_fields_of_a_vgg_stack():
    model = vgg_like()
    assert receptive_field(model, "c2") == ReceptiveField((5, 5), (1, 1), (-2, -2), (40, 40))
    assert receptive_field(model, "p1") == ReceptiveField((6, 6), (2, 2), (-2, -2), (40, 40))
    assert receptive_field(model, "c4") == ReceptiveField((20, 20), (4, 4), (-4, -4), (40, 40))


def test_layers_that_see_the_whole_image_give_none():
    x = inp = keras.Input((16, 16, 3))
    c = L.Conv2D(2, 3, name="conv")(x)
    up = L.Conv2D(2, 3, name="after_up")(L.UpSampling2D(name="up")(c))
    resized = L.Conv2D(2, 3, name="after_resize")(L.Resizing(20, 20, name="resize")(c))
    gap = L.GlobalAveragePooling2D(name="gap")(c)
    se = L.Multiply(name="se")([c, L.Reshape((1, 1, 2))(L.Dense(2, name="fc")(gap))])
    dense = L.Dense(3, name="dense")(L.Flatten(name="flat")(c))
    model = keras.Model(inp, [up, resized, se, dense])
    assert receptive_field(model, "conv") is not None
    for name in ("up", "after_up", "resize", "after_resize", "gap", "fc", "se", "flat", "dense"):
        assert receptive_field(model, name) is None, name


def test_an_unknown_layer_is_a_layer_error_and_the_field_round_trips_as_integers():
    with pytest.raises(LayerError):
        receptive_field(vgg_like(), "nope")
    field = ReceptiveField((20, 20), (4, 4), (-4, -4), (40, 40))
    assert ReceptiveField.from_array(field.to_array()) == field
    assert field.box(2, 3) == (4, 8, 24, 28)
