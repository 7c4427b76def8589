"""Tests of the initial-image builders and map selections."""

import numpy as np
import pytest

from oipscope.errors import ConfigError, LayerError
from oipscope.search.starts import default_scales, fourier_noise, parse_maps, scale_noise


def test_parse_maps_forms():
    assert parse_maps("all", 4) == (0, 1, 2, 3)
    assert parse_maps("0-2,7", 10) == (0, 1, 2, 7)
    assert parse_maps([3, 1, 3], 5) == (1, 3)
    assert parse_maps(2, 5) == (2,)


@pytest.mark.parametrize("spec,exc,word", [
    ("0-99", LayerError, "99"), ("x", ConfigError, "'x'"), ("1,,2", ConfigError, "empty"),
    ([1.5], ConfigError, "1.5"), ("5-2", ConfigError, "5-2"), ([], ConfigError, "empty"), (-1, LayerError, "-1"),
])
def test_parse_maps_errors(spec, exc, word):
    with pytest.raises(exc, match=word if word[0] != "'" else None) as info:
        parse_maps(spec, 10)
    assert word.strip("'") in str(info.value)


def test_full_scale_equals_standardized_uniform():
    x = scale_noise(7, 2, 6, 6, 1, (6,), (1.0,))
    raw = np.random.default_rng(7).uniform(-1, 1, (2, 6, 6, 1)).astype(np.float32)
    ref = (raw - raw.mean(axis=(1, 2, 3), keepdims=True)) / raw.std(axis=(1, 2, 3), keepdims=True)
    np.testing.assert_allclose(x, ref, atol=1e-5)


@pytest.mark.parametrize("smoothing", [False, True])
def test_scale_noise_standardized_and_reproducible(smoothing):
    x = scale_noise(0, 3, 28, 28, 1, (3, 7, 14, 28), None, smoothing)
    assert x.shape == (3, 28, 28, 1) and x.dtype == np.float32
    np.testing.assert_allclose(x.mean(axis=(1, 2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(x.std(axis=(1, 2, 3)), 1, atol=1e-4)
    np.testing.assert_array_equal(x, scale_noise(0, 3, 28, 28, 1, (3, 7, 14, 28), None, smoothing))
    assert not np.array_equal(x, scale_noise(1, 3, 28, 28, 1, (3, 7, 14, 28), None, smoothing))


def test_scale_noise_errors():
    with pytest.raises(ConfigError, match="29"):
        scale_noise(0, 1, 28, 28, 1, (3, 29))
    with pytest.raises(ConfigError, match="factors"):
        scale_noise(0, 1, 28, 28, 1, (3, 7), (0.5,))


def test_fourier_noise():
    x = fourier_noise(0, 2, 16, 20, 3, alpha=2.0)
    assert x.shape == (2, 16, 20, 3)
    np.testing.assert_allclose(x.mean(axis=(1, 2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(x.std(axis=(1, 2, 3)), 1, atol=1e-4)
    np.testing.assert_array_equal(x, fourier_noise(0, 2, 16, 20, 3, alpha=2.0))
    # larger alpha -> smoother (smaller neighbour differences)
    rough = np.abs(np.diff(fourier_noise(0, 4, 32, 32, 1, 0.0), axis=1)).mean()
    smooth = np.abs(np.diff(fourier_noise(0, 4, 32, 32, 1, 2.0), axis=1)).mean()
    assert smooth < rough
    with pytest.raises(ConfigError):
        fourier_noise(0, 1, 8, 8, 1, alpha=-1)


def test_default_scales():
    assert default_scales(28) == (3, 7, 14, 28)
    assert max(default_scales(12)) == 12
