"""Random transforms: parsing, the standard set, the drawn matrices and the warp."""

from __future__ import annotations

import numpy as np
import pytest

from oipscope.config import OipConfig
from oipscope.errors import ConfigError
from oipscope.ascent.transforms import (
    Transform,
    draw_matrices,
    parse_transforms,
    resolve_transforms,
    warp,
)

IDENTITY = np.array([1, 0, 0, 0, 1, 0, 0, 0], np.float32)


def _rngs(*seeds):
    return [np.random.default_rng(seed) for seed in seeds]


# ---- parsing ----------------------------------------------------------------------------------


def test_parse():
    assert parse_transforms(["pad:2", "Jitter:3", "scale:0.8,1.2", "rotate:5", "standard"]) == (
        Transform("pad", 2, 2), Transform("jitter", -3, 3), Transform("scale", 0.8, 1.2),
        Transform("rotate", -5, 5), "standard")
    assert parse_transforms("pad:2  jitter:1") == (Transform("pad", 2, 2), Transform("jitter", -1, 1))
    assert parse_transforms([]) == ()
    assert [t.text() for t in parse_transforms(["pad:2", "jitter:3", "scale:0.8,1.2", "rotate:7.5"])] == [
        "pad:2", "jitter:3", "scale:0.8,1.2", "rotate:7.5"]


@pytest.mark.parametrize("text, message", [
    ("foo", "unknown transform 'foo'; use pad:N, jitter:N"),
    ("standard:2", "unknown transform"),
    ("pad:1.5", "whole pixels"),
    ("jitter:-1", "one number >= 0"),
    ("jitter", "one number >= 0"),
    ("jitter:1,2", "one number >= 0"),
    ("rotate:x", "one number >= 0"),
    ("rotate:inf", "one number >= 0"),
    ("scale:1", "two factors LO,HI"),
    ("scale:1.1,0.9", "0 < LO <= HI"),
    ("scale:0,1", "0 < LO <= HI"),
])
def test_parse_errors(text, message):
    with pytest.raises(ConfigError, match=message):
        parse_transforms([text])
    with pytest.raises(ConfigError, match=message):
        OipConfig(transforms=(text,))


def test_standard_set_is_sized_to_the_image():
    assert resolve_transforms(("standard",), 64, 64) == (
        Transform("pad", 4, 4), Transform("jitter", -4, 4), Transform("scale", 0.9, 1.1),
        Transform("rotate", -10, 10), Transform("jitter", -2, 2))
    assert resolve_transforms(("standard",), 224, 300)[:2] == (Transform("pad", 14, 14), Transform("jitter", -14, 14))
    small = resolve_transforms(("standard",), 12, 40)  # the smaller side; at least one pixel
    assert (small[0], small[1], small[4]) == (Transform("pad", 1, 1), Transform("jitter", -1, 1),
                                              Transform("jitter", -1, 1))
    assert resolve_transforms(("rotate:3", "standard"), 64, 64)[:2] == (Transform("rotate", -3, 3),
                                                                       Transform("pad", 4, 4))


# ---- matrices ---------------------------------------------------------------------------------


def test_jitter_draws_whole_pixel_translations_within_the_bound():
    m = draw_matrices([Transform("jitter", -2, 2)], _rngs(0, 1), 300, 8, 10)
    assert m.shape == (2, 300, 8) and m.dtype == np.float32
    np.testing.assert_array_equal(m[..., [0, 1, 3, 4, 6, 7]], np.broadcast_to([1, 0, 0, 1, 0, 0], (2, 300, 6)))
    shifts = m[..., [2, 5]]
    np.testing.assert_array_equal(shifts, np.round(shifts))
    assert set(np.unique(shifts)) == {-2, -1, 0, 1, 2}  # every shift in -2..2 is drawn, on both axes
    assert not np.array_equal(m[0], m[1])


def test_pad_shrinks_the_image_about_its_centre():
    # an 8-wide image padded by 2 on each side is 12 wide, shown at 8: output x reads input 1.5 x - 1.75
    # (pixel centres: (x + 0.5) * 12 / 8 - 0.5 - 2); the same for y with a 6-high image: 10 / 6
    m = draw_matrices([Transform("pad", 2, 2)], _rngs(0), 3, 6, 8)
    np.testing.assert_allclose(m[0, 0], [1.5, 0, -1.75, 0, 10 / 6, 2.5 - 2.5 * 10 / 6, 0, 0], atol=1e-6)
    assert np.all(m[0] == m[0, 0])  # nothing random in a pad


def test_scale_and_rotate_keep_the_centre():
    h, w = 9, 13
    centre = np.array([(w - 1) / 2, (h - 1) / 2, 1.0])
    for transforms in ([Transform("scale", 0.8, 1.25)], [Transform("rotate", -30, 30)],
                       [Transform("scale", 0.8, 1.25), Transform("rotate", -30, 30)]):
        m = draw_matrices(transforms, _rngs(3), 50, h, w)[0]
        full = np.concatenate([m, np.ones((50, 1), np.float32)], axis=1).reshape(50, 3, 3)
        np.testing.assert_allclose(full @ centre, np.broadcast_to(centre, (50, 3)), atol=1e-4)
    scaled = draw_matrices([Transform("scale", 0.8, 1.25)], _rngs(3), 50, h, w)[0]
    np.testing.assert_allclose(scaled[:, 0], scaled[:, 4])
    assert np.all((scaled[:, 0] >= 0.8 - 1e-6) & (scaled[:, 0] <= 1.25 + 1e-6)) and np.ptp(scaled[:, 0]) > 0.2
    turned = draw_matrices([Transform("rotate", -30, 30)], _rngs(3), 50, h, w)[0]
    np.testing.assert_allclose(turned[:, 0] ** 2 + turned[:, 3] ** 2, 1, rtol=1e-5)  # a pure rotation
    angles = np.degrees(np.arctan2(turned[:, 3], turned[:, 0]))
    assert np.all(np.abs(angles) <= 30 + 1e-3) and np.ptp(angles) > 20


def test_an_elements_matrices_depend_only_on_its_own_generator():
    transforms = resolve_transforms(("standard",), 16, 16)
    together = draw_matrices(transforms, _rngs(5, 7, 9), 20, 16, 16)
    alone = draw_matrices(transforms, _rngs(7), 20, 16, 16)
    np.testing.assert_array_equal(together[1], alone[0])
    np.testing.assert_array_equal(draw_matrices(transforms, _rngs(9, 5), 20, 16, 16)[1], together[0])
    assert not np.allclose(together[0], together[2])


# ---- the warp ---------------------------------------------------------------------------------


def test_warp_identity_and_whole_pixel_shift():
    tf = pytest.importorskip("tensorflow")
    rng = np.random.default_rng(0)
    images = rng.standard_normal((3, 10, 12, 2)).astype(np.float32)
    np.testing.assert_allclose(warp(tf.constant(images), tf.constant(np.tile(IDENTITY, (3, 1)))).numpy(), images,
                               atol=1e-6)
    m = draw_matrices([Transform("jitter", -2, 2)], _rngs(1, 2, 3), 1, 10, 12)[:, 0]
    m[0, [2, 5]] = [-2, 1]  # forward shift: 2 right, 1 up
    out = warp(tf.constant(images), tf.constant(m), fill=7.0).numpy()
    for b in range(3):
        dx, dy = -int(m[b, 2]), -int(m[b, 5])
        np.testing.assert_allclose(out[b, 2:-2, 2:-2], np.roll(images[b], (dy, dx), axis=(0, 1))[2:-2, 2:-2],
                                   atol=1e-6)
    assert np.all(out[0, :, :2] == 7.0) and np.all(out[0, -1] == 7.0)  # what came from outside is the fill


def test_warp_pads_with_the_fill_and_passes_gradients():
    tf = pytest.importorskip("tensorflow")
    ones = tf.ones((1, 8, 8, 1))
    padded = warp(ones, tf.constant(draw_matrices([Transform("pad", 2, 2)], _rngs(0), 1, 8, 8)[:, 0])).numpy()[0, ..., 0]
    assert padded[0, 0] == 0.0 and padded[3:5, 3:5].tolist() == [[1, 1], [1, 1]]
    assert 0 < padded.mean() < 1  # the image is smaller than the frame
    x = tf.constant(np.arange(16, dtype=np.float32).reshape(1, 4, 4, 1))
    weights = np.random.default_rng(1).standard_normal((1, 4, 4, 1)).astype(np.float32)
    shift = tf.constant([[1, 0, -1, 0, 1, 0, 0, 0]], tf.float32)  # one pixel to the right
    with tf.GradientTape() as tape:
        tape.watch(x)
        total = tf.reduce_sum(warp(x, shift) * weights)
    grad = tape.gradient(total, x).numpy()[0, ..., 0]
    expected = np.zeros((4, 4), np.float32)
    expected[:, :3] = weights[0, :, 1:, 0]  # input column j feeds output column j + 1
    np.testing.assert_allclose(grad, expected, atol=1e-6)
