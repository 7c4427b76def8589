"""Models of the same architecture share their compiled loops (oipscope.ascent.traces)."""

from __future__ import annotations

import numpy as np
import pytest

from oipscope.ascent import traces as architecture
from oipscope.ascent.traces import architecture_key, shared_function
from oipscope.config import OipConfig
from real_models import build_rgb_rescaling, randomize_batchnorm


def _tiny(filters: int = 4, activation: str = "relu", dtype: str | None = None):
    import keras

    inputs = keras.Input(shape=(12, 12, 1))
    x = keras.layers.Conv2D(filters, 3, activation=activation, dtype=dtype)(inputs)
    x = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.Conv2D(6, 3, activation="relu")(x)
    return keras.Model(inputs, x)


def _reweighted(model, seed: int):
    """The model with other weights (and BatchNormalization statistics)."""
    rng = np.random.default_rng(seed)
    for variable in model.trainable_variables:
        variable.assign(rng.normal(0, 0.3, tuple(variable.shape)).astype(np.float32))
    randomize_batchnorm(model, seed)
    return model


def _traces(model, layer: str, objective: str = "channel") -> int:
    """How often the ascent's compiled segment of this architecture was traced."""
    from oipscope.ascent.pixels import _get_segment
    from oipscope.ascent.objective import parse_objective
    from oipscope.model.subject import as_subject

    subject = as_subject(model)
    sub = subject.target_submodel(layer, objective)
    return _get_segment(sub, False, subject.encoding, parse_objective(objective), False).experimental_get_tracing_count()


def test_key_ignores_names_and_weights_but_not_the_architecture():
    first, second = _tiny(), _reweighted(_tiny(), 1)  # Keras numbers their layers differently
    assert first.layers[1].name != second.layers[1].name
    assert architecture_key(first) == architecture_key(second) is not None
    for other in (_tiny(filters=5), _tiny(activation="tanh"), _tiny(dtype="mixed_float16")):
        assert architecture_key(other) != architecture_key(first)


def test_custom_layers_and_subclassed_models_are_not_shared():
    import keras

    class Doubling(keras.layers.Layer):
        def call(self, x):
            return 2 * x

    inputs = keras.Input(shape=(12, 12, 1))
    custom = keras.Model(inputs, keras.layers.Conv2D(4, 3)(Doubling()(inputs)))
    lam = keras.Model(inputs, keras.layers.Conv2D(4, 3)(keras.layers.Lambda(lambda x: 2 * x)(inputs)))

    class Sub(keras.Model):
        def __init__(self):
            super().__init__()
            self.conv = keras.layers.Conv2D(4, 3)

        def call(self, x):
            return self.conv(x)

    assert architecture_key(custom) is None
    assert architecture_key(lam) is None
    assert architecture_key(Sub()) is None
    built = []
    first = shared_function(custom, ("k",), lambda owner: built.append(owner) or len(built))
    assert shared_function(custom, ("k",), lambda owner: built.append(owner) or len(built)) == first == 1
    assert shared_function(lam, ("k",), lambda owner: built.append(owner) or len(built)) == 2  # its own


def test_the_cache_is_bounded(monkeypatch):
    monkeypatch.setattr(architecture, "SHARED_LIMIT", 2)
    monkeypatch.setattr(architecture, "_SHARED", type(architecture._SHARED)())
    model = _tiny()
    for k in range(4):
        shared_function(model, (k,), lambda owner: object())
    assert [key for _, key in architecture._SHARED] == [(2,), (3,)]


def _search(model, layer, maps="0-5", **overrides):
    from oipscope.search.pipeline import find_oips

    config = OipConfig(steps=60, n_candidates=4, **overrides)
    return find_oips(model, layer, maps, config)


def _images(result) -> np.ndarray:
    return np.stack([oip.image for oip in result.maps])


@pytest.mark.slow
def test_a_second_model_of_the_same_shape_runs_in_the_first_trace_with_its_own_weights(monkeypatch):
    """Keras-2-like RGB model (Rescaling, BN, residual add): a reweighted twin is not traced again,
    and its OIPs are bit for bit those of a trace of its own."""
    monkeypatch.setattr(architecture, "_SHARED", type(architecture._SHARED)())
    first = build_rgb_rescaling()
    twin = _reweighted(build_rgb_rescaling(), 7)
    layer = "block2_relu"
    _search(first, layer)
    assert _traces(first, layer) == 1
    shared = _search(twin, layer)
    assert _traces(twin, layer) == 1  # the same function, still one trace
    assert not np.array_equal(_images(shared), _images(_search(first, layer)))  # its own weights count

    monkeypatch.setattr(architecture, "_SHARED", type(architecture._SHARED)())  # a trace of its own
    alone = _search(twin, layer)
    np.testing.assert_array_equal(_images(shared), _images(alone))
    np.testing.assert_array_equal([o.activation for o in shared.maps], [o.activation for o in alone.maps])


@pytest.mark.slow
def test_readable_ascents_share_too(monkeypatch):
    from oipscope.search.pipeline import find_oips

    monkeypatch.setattr(architecture, "_SHARED", type(architecture._SHARED)())
    first, twin = build_rgb_rescaling(), _reweighted(build_rgb_rescaling(), 3)
    config = OipConfig.robust(steps=24)
    find_oips(first, "block1_relu1", "0-3", config)
    made = list(architecture._SHARED)
    shared = find_oips(twin, "block1_relu1", "0-3", config)
    assert list(architecture._SHARED) == made  # the twin made no compiled function of its own
    monkeypatch.setattr(architecture, "_SHARED", type(architecture._SHARED)())
    alone = find_oips(twin, "block1_relu1", "0-3", config)
    np.testing.assert_array_equal(_images(shared), _images(alone))
