"""``Execution.precision``: the model computed in bfloat16/float16 with the image, update and criteria in
float32 (oipscope.ascent.precision, oipscope.model.rebuild); ``auto`` chooses per machine and layer."""

from __future__ import annotations

import json

import numpy as np
import pytest

from oipscope import Execution, OipConfig, find_oips
from oipscope.ascent import precision as precision_module
from oipscope.ascent.precision import cache_dir, cpu_features, multiply_adds, resolve_precision
from oipscope.errors import ConfigError
from oipscope.model.rebuild import rebuilt
from oipscope.model.subject import as_subject
from oipscope.search.results import OipResult

_FAST = OipConfig(steps=12, n_candidates=2, restarts=0, rescue_steps=0, warmup_round_steps=0)


def _cnn():
    import keras

    inputs = keras.Input((24, 24, 3))
    x = keras.layers.Conv2D(6, 3, activation="relu", name="c1")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.Conv2D(4, 3, activation="relu", name="c2")(x)
    return keras.Model(inputs, x, name="small")


def test_a_low_precision_copy_computes_in_it_and_answers_in_float32():
    sub = as_subject(_cnn()).feature_submodel("c2")
    low = rebuilt(sub, None, "bfloat16")
    assert low.get_layer("c2").compute_dtype == "bfloat16" and low.get_layer("c2").kernel.dtype == "float32"
    x = np.random.default_rng(0).standard_normal((2, 24, 24, 3)).astype(np.float32)
    out = np.asarray(low(x))
    assert out.dtype == np.float32
    exact = np.asarray(sub(x))
    assert 0 < np.linalg.norm(out - exact) / np.linalg.norm(exact) < 0.03  # bfloat16: close, not equal
    assert rebuilt(sub, None, "float32") is sub


def test_a_bfloat16_search_keeps_float32_images_and_saves_its_precision(tmp_path):
    model = _cnn()
    exact = find_oips(model, "c2", "0-1", _FAST, execution=Execution(precision="float32"))
    low = find_oips(model, "c2", "0-1", _FAST, execution=Execution(precision="bfloat16"))
    assert exact.precision == "float32" and low.precision == "bfloat16"
    for a, b in zip(exact.maps, low.maps):
        assert b.image.dtype == np.float32 and b.activation_history.dtype == np.float32
        assert b.activation == pytest.approx(a.activation, rel=0.1)
    low.save(tmp_path)
    assert json.loads((tmp_path / "result.json").read_text())["precision"] == "bfloat16"
    assert OipResult.load(tmp_path).precision == "bfloat16"


def test_auto_keeps_a_small_model_in_float32_bit_for_bit_without_a_probe(monkeypatch):
    model = _cnn()
    monkeypatch.setattr(precision_module, "probe", lambda *a, **k: pytest.fail("a small model needs no probe"))
    auto = find_oips(model, "c2", "0-1", _FAST)
    exact = find_oips(model, "c2", "0-1", _FAST, execution=Execution(precision="float32"))
    assert auto.precision == "float32"
    for a, b in zip(auto.maps, exact.maps):
        np.testing.assert_array_equal(a.image, b.image)
    assert not (cache_dir() / "precision.json").exists()


@pytest.mark.parametrize("faster, difference, verdict", [(3.0, 0.01, "bfloat16"), (1.1, 0.01, "float32"),
                                                         (3.0, 0.2, "float32")])
def test_auto_takes_bfloat16_only_where_the_probe_finds_it_faster_and_equal(monkeypatch, faster, difference,
                                                                           verdict):
    sub = as_subject(_cnn()).feature_submodel("c2")
    calls = []

    def probe(model, batch=2):
        calls.append(model)
        return {"float32": faster, "bfloat16": 1.0, "difference": difference}

    monkeypatch.setattr(precision_module, "probe", probe)
    monkeypatch.setattr(precision_module, "MIN_PROBED_MACS", 0)
    assert resolve_precision("auto", sub) == verdict
    assert resolve_precision("auto", sub) == verdict and len(calls) == 1  # the verdict is cached
    saved = json.loads((cache_dir() / "precision.json").read_text())
    assert [entry["verdict"] for entry in next(iter(saved.values())).values()] == [verdict]
    assert resolve_precision("float16", sub) == "float16"


def test_the_probe_times_both_precisions_and_compares_their_outputs():
    measured = precision_module.probe(as_subject(_cnn()).feature_submodel("c2"), batch=1, repeats=1)
    assert measured["float32"] > 0 and measured["bfloat16"] > 0 and 0 < measured["difference"] < 0.03


def test_the_cache_folder_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("OIPSCOPE_CACHE_DIR", str(tmp_path / "mine"))
    assert cache_dir() == tmp_path / "mine"
    monkeypatch.delenv("OIPSCOPE_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "oipscope"


def test_machine_facts_and_work():
    assert set(cpu_features()) == {"cpu", "avx2", "avx512", "amx"}
    sub = as_subject(_cnn()).feature_submodel("c2")
    assert multiply_adds(sub) == 22 * 22 * 3 * 3 * 3 * 6 + 20 * 20 * 3 * 3 * 6 * 4


@pytest.mark.parametrize("bad", ["fp8", "", None, "BF16"])
def test_a_bad_precision_is_refused(bad):
    with pytest.raises(ConfigError, match="precision must be one of auto, float32, bfloat16, float16"):
        Execution(precision=bad)
