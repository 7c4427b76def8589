"""oipscope.model.memory: batches sized from the memory budget, for every pass through a model."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from oipscope.analysis.activations import layer_activations
from oipscope.analysis.examples import dataset_examples
from oipscope.analysis.assessment import evoked_classes
from oipscope.ascent.pixels import estimate_chunk_size
from oipscope.config import Execution
from oipscope.model.memory import batch_for_budget, forward_bytes_per_image, gradient_bytes_per_image


def _deep(size: int = 224) -> keras.Model:
    """Five conv blocks with BatchNormalization and ReLU (like the ImageNet CNNs, but cheap to build)."""
    x = inputs = keras.Input((size, size, 3))
    for width in (8, 16, 16, 32, 32):
        x = keras.layers.Conv2D(width, 3, padding="same", use_bias=False)(x)
        x = keras.layers.BatchNormalization()(x)
        x = keras.layers.ReLU()(x)
        x = keras.layers.MaxPooling2D()(x)
    return keras.Model(inputs, x)


def test_a_forward_pass_costs_less_than_a_gradient_pass_and_both_scale_with_the_budget():
    model = _deep(64)
    assert 0 < forward_bytes_per_image(model) < gradient_bytes_per_image(model)
    for gradient in (False, True):
        small, large = (batch_for_budget(model, mb, gradient=gradient) for mb in (8.0, 64.0))
        assert 1 <= small < large
        assert abs(large / small - 8) < 1
    assert batch_for_budget(model, 1e-6) == 1  # at least one image
    assert batch_for_budget(model, 512.0, limit=7) == 7


def test_the_ascent_fits_more_than_one_image_of_a_deep_224_px_model_in_512_mb():
    # the estimate counted every layer's output 4x: a batch of 1 for MobileNetV2 at 512 MB
    model = _deep(224)
    assert estimate_chunk_size(model, 0, 600, 512.0) >= 8
    # a BatchNormalization or ReLU after a convolution needs no copy of its own for the backward pass
    assert gradient_bytes_per_image(model) < 4 * sum(
        int(np.prod(layer.output.shape[1:])) for layer in model.layers[1:])


def test_dataset_examples_streams_in_batches_the_budget_allows():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Conv2D(16, 3, activation="relu", name="c")])
    images = np.random.default_rng(0).uniform(0, 255, (50, 32, 32, 3)).astype(np.float32)
    done = []
    small = Execution(memory_budget_mb=0.5)
    examples = dataset_examples(model, "c", images, execution=small, on_progress=lambda d, t: done.append(d))
    batch = batch_for_budget(model, 0.5, extra_bytes=12 * 32 * 32 * 3)
    assert 1 < batch < 50
    assert done[0] == batch and done[-1] == 50 and len(done) == -(-50 // batch)
    whole = dataset_examples(model, "c", images)  # the default budget: one batch
    np.testing.assert_array_equal(examples.top_indices, whole.top_indices)


def test_activations_and_evoked_classes_agree_at_any_budget():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((16, 16, 1)), keras.layers.Conv2D(8, 3, activation="relu", name="c"),
                              keras.layers.Flatten(), keras.layers.Dense(3, activation="softmax")])
    images = np.random.default_rng(1).uniform(0, 255, (40, 16, 16, 1)).astype(np.float32)
    tight, loose = Execution(memory_budget_mb=0.02), Execution()
    np.testing.assert_allclose(layer_activations(model, "c", images, execution=tight),
                               layer_activations(model, "c", images, execution=loose), rtol=1e-5, atol=1e-6)
    encoded = images / 255.0
    np.testing.assert_allclose(evoked_classes(model, encoded, execution=tight),
                               evoked_classes(model, encoded, execution=loose), rtol=1e-5, atol=1e-6)
    with pytest.raises(Exception, match="batch_size"):
        layer_activations(model, "c", images, batch_size=0)
