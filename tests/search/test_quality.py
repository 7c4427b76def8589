"""Quality numbers of OIPs: high-frequency share and jitter robustness (issue 12, item 7)."""

from __future__ import annotations

import numpy as np
import pytest

from oipscope.search.quality import SHIFTS, hf_share, jitter_robustness


def _stack(*images):
    return np.stack([np.asarray(i, np.float32)[..., None] for i in images])


def test_hf_share_of_known_patterns():
    y, x = np.mgrid[0:28, 0:28]
    smooth = np.sin(2 * np.pi * x / 28)  # one cycle across: all energy at 1/28 cycles per pixel
    checker = (-1.0) ** (x + y)  # 0.5 cycles per pixel in both directions
    stripes = np.cos(2 * np.pi * 0.25 * x)  # exactly at the cutoff: not above it
    share = hf_share(_stack(smooth, checker, stripes, np.full((28, 28), 3.0)))
    np.testing.assert_allclose(share[:3], [0.0, 1.0, 0.0], atol=1e-9)
    assert np.isnan(share[3])  # a constant image has no energy after its mean is removed


def test_hf_share_of_white_noise_is_the_share_of_high_frequencies():
    noise = np.random.default_rng(0).standard_normal((64, 32, 32, 3))
    # of the 32 x 32 - 1 frequencies other than 0, 17 x 17 - 1 have |k| <= 8 (0.25 cycles) on both axes
    expected = 1 - (17 * 17 - 1) / (32 * 32 - 1)
    assert hf_share(noise).mean() == pytest.approx(expected, abs=0.005)


def test_the_eight_shifts():
    assert len(SHIFTS) == 8 and len(set(SHIFTS)) == 8
    assert {abs(d) for shift in SHIFTS for d in shift} == {0, 4}


@pytest.fixture(scope="module")
def models():
    keras = pytest.importorskip("keras")
    from oipscope.model.loading import feature_submodel

    keras.utils.set_random_seed(0)
    inputs = keras.Input((28, 28, 1))
    pointwise = keras.layers.Conv2D(2, 1, activation="relu", name="pointwise")(inputs)
    whole = keras.layers.Conv2D(1, 28, activation="relu", name="whole")(inputs)  # one unit seeing the whole image
    model = keras.Model(inputs, [pointwise, whole])
    kernel, bias = model.get_layer("whole").get_weights()
    pattern = np.random.default_rng(1).standard_normal((28, 28)).astype(np.float32)
    model.get_layer("whole").set_weights([pattern[:, :, None, None], np.zeros_like(bias)])
    return feature_submodel(model, "pointwise"), feature_submodel(model, "whole"), pattern


def test_a_pointwise_map_is_fully_robust_and_a_matched_filter_is_not(models):
    pointwise, whole, pattern = models
    images = np.random.default_rng(2).standard_normal((3, 28, 28, 1)).astype(np.float32)
    ratio = jitter_robustness(pointwise, images, [0, 1, 0])
    positive = np.isfinite(ratio)
    assert positive.any()
    np.testing.assert_allclose(ratio[positive], 1.0, rtol=1e-5)  # a 1x1 map's mean ignores a wrap-around shift
    matched = jitter_robustness(whole, pattern[None, :, :, None], [0])
    assert matched[0] < 0.5  # the filter's own pattern, shifted by 4 pixels, barely drives it


def test_no_ratio_where_the_map_does_not_fire(models):
    _, whole, pattern = models
    assert np.isnan(jitter_robustness(whole, -pattern[None, :, :, None], [0])[0])


def test_find_oips_measures_saves_and_summarizes_quality(tiny_model, tmp_path):
    from oipscope.config import OipConfig
    from oipscope.search.results import OipResult
    from oipscope.search.pipeline import find_oips

    result = find_oips(tiny_model, "c2", [0, 1, 2], OipConfig(steps=30, n_candidates=2, restarts=0,
                                                              scales=(3, 6, 12), rescue_steps=0))
    for oip in result.maps:
        assert 0.0 <= oip.hf_share <= 1.0
        assert oip.jitter_robustness is not None
    loaded = OipResult.load(result.save(tmp_path / "r"))
    assert [m.hf_share for m in loaded.maps] == [m.hf_share for m in result.maps]
    np.testing.assert_array_equal([m.jitter_robustness for m in loaded.maps],
                                  [m.jitter_robustness for m in result.maps])
    summary = result.summary()
    assert summary["median_hf_share"] == pytest.approx(np.median([m.hf_share for m in result.maps]))


def test_bound_share_and_median_saturation():
    from oipscope.search.quality import bound_share, median_saturation

    assert bound_share(np.array([0.4, 254.6, 128.0, 3.0])) == 0.5
    grey = np.full((4, 4, 3), 120.0)
    assert median_saturation(grey) == 0.0
    rainbow = np.array([[255.0, 0, 0], [0, 255, 0], [0, 0, 255], [10, 10, 10]])
    assert median_saturation(rainbow) == 1.0
    assert median_saturation(np.array([[200.0, 150, 100]])) == pytest.approx(0.5)
