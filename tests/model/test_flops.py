"""FLOPs of a forward pass counted from the layers' shapes (model.flops)."""

from __future__ import annotations

import keras
import pytest

from oipscope.model.flops import FORWARD_AND_BACKWARD, ascent_flops, forward_flops, layer_flops


def test_a_small_stack_counts_what_its_kernels_multiply_and_add():
    image = keras.Input((10, 10, 3))
    conv = keras.layers.Conv2D(4, 3, name="conv")(image)  # 8x8x4 out: 2 * 9 * 3 * 4 * 64
    depthwise = keras.layers.DepthwiseConv2D(3, depth_multiplier=2, padding="same", name="dw")(conv)  # 8x8x8
    separable = keras.layers.SeparableConv2D(5, 3, strides=2, padding="same", name="sep")(depthwise)  # 4x4x5
    relu = keras.layers.ReLU(name="relu")(separable)
    dense = keras.layers.Dense(6, name="dense")(keras.layers.Flatten(name="flat")(relu))
    model = keras.Model(image, dense)
    expected = {
        "conv": 2 * 9 * 3 * 4 * 8 * 8,
        "dw": 2 * 9 * 8 * 8 * 8,
        "sep": 2 * 9 * 8 * 4 * 4 + 2 * 8 * 5 * 4 * 4,
        "relu": 4 * 4 * 5,  # one per output element
        "flat": 80,
        "dense": 2 * 80 * 6,
    }
    assert {name: layer_flops(model.get_layer(name)) for name in expected} == expected
    assert forward_flops(model) == sum(expected.values())
    assert ascent_flops(model) == FORWARD_AND_BACKWARD * sum(expected.values())


@pytest.mark.parametrize("groups", [1, 2])
def test_grouped_convolutions_see_a_share_of_the_channels(groups):
    image = keras.Input((6, 6, 4))
    model = keras.Model(image, keras.layers.Conv2D(4, 1, groups=groups, name="c")(image))
    assert forward_flops(model) == 2 * (4 // groups) * 4 * 36


def test_a_larger_canvas_costs_in_proportion_to_its_pixels():
    def stack(side: int):
        image = keras.Input((side, side, 3))
        x = keras.layers.Conv2D(8, 3, padding="same")(image)
        return keras.Model(image, keras.layers.Conv2D(8, 3, padding="same")(x))

    assert forward_flops(stack(64)) == 4 * forward_flops(stack(32))
