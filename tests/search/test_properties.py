"""Property tests (Hypothesis) of the initial images, the standardization and map selections.

The standardization is ``tf.image.per_image_standardization``: ``(x - mean) / max(std,
1/sqrt(n))`` over each image's ``n`` values. So the output std is 1 when the input's std
reaches the floor ``1/sqrt(n)``, ``std / floor`` (< 1) below it, and 0 for a constant image.
"""

from __future__ import annotations

import string
from unittest import mock

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from oipscope.search import starts as initial
from oipscope.data.datasets import standardize
from oipscope.errors import ConfigError, LayerError
from oipscope.search.starts import parse_maps, scale_noise

SETTINGS = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _check_standardized(raw: np.ndarray, out: np.ndarray) -> None:
    """``out`` is the per-image standardization of ``raw`` (N, H, W, C), up to float32 rounding."""
    raw = raw.astype(np.float64)
    out = out.astype(np.float64)
    assert np.isfinite(out).all()
    n = raw[0].size
    floor = 1.0 / np.sqrt(n)
    for x, y in zip(raw, out):
        spread = float(np.abs(x - x.mean()).max())
        scale = max(float(x.std()), floor)
        tol = 1e-5 + 4 * n * float(np.finfo(np.float32).eps) * float(np.abs(x).max()) / scale  # mean rounding
        assert abs(y.mean()) <= tol, (y.mean(), tol)
        if spread == 0.0:
            assert np.abs(y).max() <= tol, "a constant image standardizes to zeros"
            continue
        expected_std = min(1.0, float(x.std()) / floor)
        assert y.std() == pytest.approx(expected_std, rel=2e-3, abs=tol)
        np.testing.assert_allclose(y, (x - x.mean()) / scale, rtol=2e-3, atol=10 * tol)


# --- scale_noise ---------------------------------------------------------------------


@st.composite
def noise_args(draw):
    h, w = draw(st.integers(4, 40)), draw(st.integers(4, 40))
    scales = draw(st.lists(st.integers(1, min(h, w)), min_size=1, max_size=5))
    factors = draw(st.lists(st.floats(0.0, 10.0, allow_nan=False, allow_subnormal=False),
                            min_size=len(scales), max_size=len(scales)))
    assume(any(f > 0 for f in factors))
    return dict(batch=draw(st.integers(1, 3)), height=h, width=w, channels=draw(st.sampled_from([1, 3])),
                scales=tuple(scales), factors=tuple(factors), smoothing=draw(st.booleans()),
                seed=draw(st.integers(0, 2**32 - 1)))


@pytest.mark.slow
@SETTINGS
@given(noise_args())
def test_scale_noise_is_finite_and_standardized(args):
    seen = []

    def recording_standardize(images):
        seen.append(np.array(images, np.float32))
        return standardize(images)

    with mock.patch.object(initial, "standardize", recording_standardize):
        out = scale_noise(args.pop("seed"), args["batch"], args["height"], args["width"], args["channels"],
                          args["scales"], args["factors"], args["smoothing"])
    assert out.shape == (args["batch"], args["height"], args["width"], args["channels"])
    assert out.dtype == np.float32
    assert len(seen) == 1, "scale_noise standardizes once, at the end"
    _check_standardized(seen[0], out)


def test_scale_noise_with_default_factors_reaches_unit_std():
    """The documented case: the seed's scales and factors give std 1 on an MNIST-sized image."""
    x = scale_noise(0, 4, 28, 28, 1, (3, 7, 14, 28))
    np.testing.assert_allclose(x.std(axis=(1, 2, 3)), 1.0, atol=1e-4)


def test_scale_noise_single_pixel_grid_is_constant_then_zero():
    """Only a 1x1 grid with a non-zero factor: a constant image, standardized to zeros."""
    x = scale_noise(0, 2, 8, 8, 1, (1, 4), (1.0, 0.0))
    assert np.all(x == 0)


@pytest.mark.parametrize("factors", [(0.5, -0.1), (-1.0, 0.0)])
def test_scale_noise_rejects_negative_factors(factors):
    with pytest.raises(ConfigError, match="factors must be >= 0"):
        scale_noise(0, 1, 8, 8, 1, (2, 4), factors)


# --- standardize ---------------------------------------------------------------------

finite_floats = st.floats(-1e4, 1e4, allow_nan=False, allow_infinity=False, width=32)
shapes = hnp.array_shapes(min_dims=4, max_dims=4, min_side=1, max_side=6)


@SETTINGS
@given(st.one_of(
    hnp.arrays(np.float32, shapes, elements=finite_floats),
    hnp.arrays(np.float32, shapes, elements=st.sampled_from([0.0, 1.0, 255.0])),  # constant-prone
    hnp.arrays(np.float32, shapes, elements=st.integers(0, 255).map(float)),  # pixel values
))
def test_standardize_arbitrary_arrays(images):
    out = np.asarray(standardize(images))
    assert out.shape == images.shape and out.dtype == np.float32
    _check_standardized(images, out)


@pytest.mark.slow
@SETTINGS
@given(hnp.arrays(np.float32, shapes, elements=st.integers(0, 255).map(float)))
def test_standardize_constant_images_are_exact_zeros(images):
    """Pixel values (small integers) have exact float32 sums: constant images give exactly 0."""
    constant = np.broadcast_to(images[:, :1, :1, :1], images.shape)
    assert np.all(np.asarray(standardize(constant)) == 0)


# --- parse_maps ----------------------------------------------------------------------


def _spec(indices: list[int]) -> str:
    """Sorted unique indices as ranges: [0, 1, 2, 5] -> '0-2,5'."""
    parts, run = [], []
    for i in sorted(set(indices)):
        if run and i == run[-1] + 1:
            run.append(i)
            continue
        if run:
            parts.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
        run = [i]
    parts.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
    return ",".join(parts)


@SETTINGS
@given(st.data())
def test_parse_maps_round_trips_specs(data):
    n_maps = data.draw(st.integers(1, 300))
    indices = data.draw(st.lists(st.integers(0, n_maps - 1), min_size=1, max_size=40))
    spec = _spec(indices)
    assert parse_maps(spec, n_maps) == tuple(sorted(set(indices)))
    shuffled = ", ".join(data.draw(st.permutations(spec.split(","))))  # order and spaces do not matter
    assert parse_maps(shuffled, n_maps) == tuple(sorted(set(indices)))
    assert parse_maps(indices, n_maps) == tuple(sorted(set(indices)))


garbage_text = st.one_of(
    st.text(max_size=30),
    st.text(alphabet=string.digits + ",- ", max_size=20),
    st.text(alphabet=string.digits + ",-+_.eE xall", max_size=20),
)
garbage = st.one_of(
    garbage_text,
    st.integers(-10**6, 10**6),
    st.lists(st.one_of(st.integers(-50, 400), st.floats(), st.text(max_size=3), st.none(), st.booleans()),
             max_size=5),
    st.floats(),
    st.none(),
    st.booleans(),
    st.binary(max_size=5),
    st.dictionaries(st.integers(-3, 300), st.integers(), max_size=3),
)


@SETTINGS
@given(garbage, st.integers(1, 300))
def test_parse_maps_garbage_raises_only_oipscope_errors(spec, n_maps):
    try:
        result = parse_maps(spec, n_maps)
    except (ConfigError, LayerError):
        return
    assert isinstance(result, tuple) and result == tuple(sorted(set(result)))
    assert all(isinstance(i, int) and 0 <= i < n_maps for i in result)
