"""Parametrizations: the 1/f scale, seeded starting parameters, and params_of as the inverse of image."""

from __future__ import annotations

import numpy as np
import pytest

from oipscope.model.encoding import InputEncoding
from oipscope.ascent.parametrization import COLOR_SQRT, Parametrization, fourier_scale

tf = pytest.importorskip("tensorflow")

STANDARDIZE = InputEncoding.standardize()
RANGE_255 = InputEncoding.value_range(0, 255)
IMAGENET = InputEncoding.value_range(0, 1, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))


def test_fourier_scale_is_one_over_frequency():
    # rows: frequencies 0, 1/4, -1/2, -1/4; columns: 0, 1/6, 1/3, 1/2
    frequency = np.sqrt(np.array([0, 0.25, 0.5, 0.25])[:, None] ** 2 + np.array([0, 1, 2, 3])[None, :] ** 2 / 36)
    frequency[0, 0] = 1 / 6  # the constant term is clipped at 1/side of the longer side
    expected = 1 / frequency
    np.testing.assert_allclose(fourier_scale(4, 6), expected, rtol=1e-6)
    assert fourier_scale(4, 6).shape == (4, 4) and fourier_scale(4, 6).dtype == np.float32
    np.testing.assert_allclose(fourier_scale(4, 6, decay=2.0), expected**2, rtol=1e-6)
    np.testing.assert_array_equal(fourier_scale(5, 5, decay=0.0), np.ones((5, 3)))
    assert fourier_scale(7, 9)[0, 0] == pytest.approx(9.0)


def test_param_shapes():
    assert Parametrization("pixels", (8, 10, 3), RANGE_255).param_shape == (8, 10, 3)
    assert Parametrization("fourier", (8, 10, 3), RANGE_255).param_shape == (3, 8, 6, 2)
    assert Parametrization("fourier", (7, 9, 1), STANDARDIZE).param_shape == (1, 7, 5, 2)


def test_initial_is_small_noise_seeded_by_its_generator():
    param = Parametrization("fourier", (8, 10, 3), RANGE_255, decorrelate=True, bounded=True)
    a = param.initial(np.random.default_rng(4))
    np.testing.assert_array_equal(a, param.initial(np.random.default_rng(4)))
    assert not np.array_equal(a, param.initial(np.random.default_rng(5)))
    assert a.shape == param.param_shape and a.dtype == np.float32
    assert 0.008 < a.std() < 0.012
    # the sigmoid of small parameters: an almost flat image at the middle of the range
    image = param.image(tf.constant(a[None])).numpy()
    assert np.abs(image - 127.5).max() < 0.05 * 255
    start = np.full((8, 10, 3), 3.0, np.float32)
    np.testing.assert_array_equal(Parametrization("pixels", (8, 10, 3), RANGE_255).initial(np.random.default_rng(0),
                                                                                           start), start)
    # a start image is no parameter set of a bounded or colour-mixed parametrization: those start from noise
    assert param.initial(np.random.default_rng(4), start).std() < 0.1


def _inside(encoding: InputEncoding, shape, rng) -> np.ndarray:
    """Images well inside the encoding (standardized ones for standardization)."""
    if encoding.kind == "standardize":
        return tf.image.per_image_standardization(rng.standard_normal(shape).astype(np.float32)).numpy()
    lo, hi = encoding.bounds(shape[-1])
    return (lo + (hi - lo) * rng.uniform(0.02, 0.98, shape)).astype(np.float32)


@pytest.mark.parametrize("kind", ["pixels", "fourier"])
@pytest.mark.parametrize("decorrelate", [False, True])
@pytest.mark.parametrize("bounded", [False, True])
@pytest.mark.parametrize("encoding", [STANDARDIZE, RANGE_255, IMAGENET], ids=["std", "0-255", "imagenet"])
def test_params_of_inverts_image(kind, decorrelate, bounded, encoding):
    rng = np.random.default_rng(1)
    shapes = ((8, 10, 3), (7, 9, 1)) if encoding.mean is None else ((8, 10, 3),)  # odd sizes; grey ignores colour
    for shape in shapes:
        param = Parametrization(kind, shape, encoding, decorrelate, bounded)
        images = _inside(encoding, (2, *shape), rng)
        params = param.params_of(images)
        assert params.shape == (2, *param.param_shape) and params.dtype == np.float32
        back = param.image(tf.constant(params)).numpy()
        bounds = encoding.bounds(shape[2])
        size = 1.0 if bounds is None else float(np.max(bounds[1] - bounds[0]))  # compare in units of the range
        np.testing.assert_allclose(back / size, images / size, atol=1e-5)


def test_the_bounds_are_pulled_just_inside_and_never_left():
    param = Parametrization("fourier", (6, 6, 3), RANGE_255, decorrelate=True, bounded=True)
    images = np.zeros((1, 6, 6, 3), np.float32)
    images[0, :3] = 255.0
    back = param.image(tf.constant(param.params_of(images))).numpy()
    np.testing.assert_allclose(back[0, :3], 255 * (1 - 1e-3), rtol=1e-4)
    np.testing.assert_allclose(back[0, 3:], 255 * 1e-3, rtol=1e-2)
    wild = param.image(tf.constant(50 * np.random.default_rng(0).standard_normal((4, *param.param_shape)),
                                   tf.float32)).numpy()
    assert wild.min() >= 0 and wild.max() <= 255 and wild.std() > 50  # large parameters saturate, never overshoot
    lo, hi = IMAGENET.bounds(3)
    wild = Parametrization("pixels", (6, 6, 3), IMAGENET, bounded=True).image(
        tf.constant(30 * np.random.default_rng(1).standard_normal((4, 6, 6, 3)), tf.float32)).numpy()
    assert np.all(wild >= lo - 1e-6) and np.all(wild <= hi + 1e-6)


def test_unbounded_images_are_projected_into_the_encoding():
    params = tf.constant(5 * np.random.default_rng(2).standard_normal((2, 6, 6, 1)) + 3, tf.float32)
    standardized = Parametrization("pixels", (6, 6, 1), STANDARDIZE).image(params).numpy()
    np.testing.assert_allclose(standardized.mean(axis=(1, 2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(standardized.std(axis=(1, 2, 3)), 1, atol=1e-4)
    clipped = Parametrization("pixels", (6, 6, 1), InputEncoding.value_range(-1, 1)).image(params).numpy()
    np.testing.assert_array_equal(clipped, np.clip(params.numpy(), -1, 1))


def test_decorrelation_mixes_colours_by_the_normalized_colour_root():
    param = Parametrization("pixels", (1, 1, 3), InputEncoding.value_range(-100, 100), decorrelate=True)
    # parameters (1, 0, 0) give the first column of COLOR_SQRT (grey: the luminance direction), scaled so
    # that the longest column has length 1
    first = param.image(tf.constant([[[[1.0, 0.0, 0.0]]]])).numpy()[0, 0, 0]
    scale = np.max(np.linalg.norm(COLOR_SQRT, axis=0))
    np.testing.assert_allclose(first, COLOR_SQRT[:, 0] / scale, rtol=1e-5)
    grey = Parametrization("pixels", (1, 1, 1), InputEncoding.value_range(-100, 100), decorrelate=True)
    np.testing.assert_allclose(grey.image(tf.constant([[[[0.7]]]])).numpy(), [[[[0.7]]]])  # ignored for grey


def test_a_fixed_contrast_keeps_the_sigmoid_off_the_range_bounds():
    """Large parameters drive the plain sigmoid to the bounds; with a contrast the image keeps its RMS before
    the sigmoid, so pixels stay inside whatever the parameters' size."""
    params = 400.0 * np.random.default_rng(0).standard_normal((2, 3, 16, 9, 2)).astype(np.float32)
    free = Parametrization("fourier", (16, 16, 3), RANGE_255, decorrelate=True, bounded=True)
    fixed = Parametrization("fourier", (16, 16, 3), RANGE_255, decorrelate=True, bounded=True, contrast=1.0)
    at_bound = lambda images: np.mean((np.rint(images) <= 0) | (np.rint(images) >= 255))  # noqa: E731
    assert at_bound(free.image(tf.constant(params)).numpy()) > 0.5
    image = fixed.image(tf.constant(params)).numpy()
    assert at_bound(image) < 0.01
    logits = np.log(image / (255 - image))
    np.testing.assert_allclose(np.sqrt(np.mean(logits**2, axis=(1, 2, 3))), [1.0, 1.0], rtol=1e-3)
    np.testing.assert_allclose(fixed.image(tf.constant(params / 100)).numpy(), image, rtol=1e-4, atol=1e-2)


def test_a_fixed_contrast_keeps_the_colour_matrix_proportions():
    """Each decorrelated channel gets unit RMS before the mixing: the colour covariance of the image
    (before the sigmoid) is the matrix's, not what the ascent made of the channels."""
    rng = np.random.default_rng(1)
    params = (rng.standard_normal((64, 3, 16, 9, 2)) * np.array([0.01, 5, 5])[:, None, None, None]).astype(np.float32)
    matrix = np.array([[0.5, 0.1, 0.0], [0.5, 0.0, 0.1], [0.5, -0.1, 0.0]], np.float32)
    param = Parametrization("fourier", (16, 16, 3), RANGE_255, decorrelate=True, bounded=True, contrast=1.0,
                            colour=tuple(matrix.ravel()))
    image = param.image(tf.constant(params)).numpy()
    logits = np.log(image / (255 - image)).reshape(-1, 3)
    expected = matrix @ matrix.T
    np.testing.assert_allclose(np.cov(logits, rowvar=False) / np.trace(np.cov(logits, rowvar=False)),
                               expected / np.trace(expected), atol=0.02)


def test_colour_sqrt_is_a_square_root_of_the_covariance():
    from oipscope.ascent.parametrization import colour_sqrt

    rng = np.random.default_rng(2)
    pixels = rng.standard_normal((5000, 3)) @ np.array([[1.0, 0.9, 0.8], [0, 0.3, 0.1], [0, 0, 0.2]])
    m = colour_sqrt(pixels)
    np.testing.assert_allclose(m @ m.T, np.cov(pixels, rowvar=False), rtol=1e-4, atol=1e-6)
    assert np.all(m[:, 0] > 0)  # the luminance column comes first, positive
    np.testing.assert_array_equal(colour_sqrt(pixels), m)


def test_the_spectrum_is_a_bitcast_with_the_gradient_of_tf_complex():
    from oipscope.ascent.parametrization import as_complex

    pairs = tf.constant(np.random.default_rng(0).standard_normal((2, 3, 8, 5, 2)).astype(np.float32))

    def image_and_gradient(to_complex):
        with tf.GradientTape() as tape:
            tape.watch(pairs)
            image = tf.signal.irfft2d(to_complex(pairs), fft_length=[8, 8])
            value = tf.reduce_sum(tf.sin(image) * image)
        return image.numpy(), tape.gradient(value, pairs).numpy()

    expected = image_and_gradient(lambda p: tf.complex(p[..., 0], p[..., 1]))
    for got, want in zip(image_and_gradient(as_complex), expected):
        np.testing.assert_array_equal(got, want)  # bit for bit, forward and backward


def test_the_fourier_image_and_its_gradient_copy_no_slices():
    """Per step, the spectrum costs a bitcast each way: no strided slices of the parameters, no scatters back."""
    param = Parametrization("fourier", (16, 16, 3), RANGE_255, decorrelate=True, bounded=True)

    @tf.function(input_signature=[tf.TensorSpec((None, *param.param_shape), tf.float32)])
    def gradient(params):
        with tf.GradientTape() as tape:
            tape.watch(params)
            value = tf.reduce_sum(param.image(params))
        return tape.gradient(value, params)

    graph = gradient.get_concrete_function().graph.get_operations()
    assert {"IRFFT2D", "Bitcast"} <= {op.type for op in graph}
    copies = [op.name for op in graph if op.type in {"StridedSlice", "StridedSliceGrad", "Complex", "Real", "Imag"}
              and op.inputs[0].shape.rank != 1]  # slices of shape vectors are free
    assert not copies, copies
