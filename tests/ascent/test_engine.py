"""Tests of the batched OIP engine, the search and results (tiny models, few steps)."""

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from oipscope.ascent.pixels import OipConfig, ascend  # noqa: E402
from oipscope.errors import ConfigError, LayerError  # noqa: E402
from oipscope.search.starts import scale_noise  # noqa: E402
from oipscope.model.loading import feature_submodel  # noqa: E402
from oipscope.search.results import OipResult  # noqa: E402
from oipscope.search.pipeline import find_oips  # noqa: E402


@pytest.fixture(scope="module")
def tiny():
    keras.utils.set_random_seed(3)
    model = keras.Sequential([
        keras.Input((12, 12, 1)),
        keras.layers.Conv2D(4, 3, activation="relu", name="c1"),
        keras.layers.MaxPooling2D(2),
        keras.layers.Conv2D(6, 3, activation="relu", name="c2"),
        keras.layers.Flatten(),
        keras.layers.Dense(2, name="d"),
    ], name="tiny")
    k, b = model.get_layer("c2").get_weights()
    b[5] = -100.0  # map 5 can never fire: silent
    model.get_layer("c2").set_weights([k, b])
    return model


@pytest.fixture(scope="module")
def sub(tiny):
    return feature_submodel(tiny, "c2")


def _x(n, seed=0):
    return scale_noise(seed, n, 12, 12, 1, (3, 6, 12))


def test_ascent_raises_activation(sub):
    cfg = OipConfig(steps=60, stop_on_convergence=False, scales=(3, 6, 12))
    r = ascend(sub, _x(5), range(5), cfg)
    fired = r.history[:, 0] > 0
    assert fired.any()
    assert np.all(r.activations[fired] > r.history[fired, 0])
    np.testing.assert_allclose(r.images.mean(axis=(1, 2, 3)), 0, atol=1e-4)
    np.testing.assert_allclose(r.images.std(axis=(1, 2, 3)), 1, atol=1e-3)
    assert r.history.shape == (5, 60) and r.snapshots.shape[:2] == (5, len(r.snapshot_steps))


def test_converged_elements_are_frozen(sub):
    cfg = OipConfig(steps=300, conv_criterion=1e-2, scales=(3, 6, 12))
    r = ascend(sub, _x(5), range(5), cfg)
    conv = np.flatnonzero(r.status == 0)
    assert len(conv)
    for i in conv:
        c = r.converged_step[i]
        assert c > 10
        assert np.all(r.history[i, c:] == r.history[i, c])  # loss history stays
        later = [k for k, s in enumerate(r.snapshot_steps) if s >= c]
        for k in later:
            np.testing.assert_array_equal(r.snapshots[i, k], r.images[i])


def test_silent_map_detected(sub):
    r = ascend(sub, _x(2), [5, 5], OipConfig(steps=20))
    assert list(r.status) == [2, 2]
    assert np.all(r.activations == 0)


def test_same_seed_identical(tiny):
    cfg = OipConfig(steps=30, n_candidates=4, restarts=1, scales=(3, 6, 12), seed=5)
    a = find_oips(tiny, "c2", "0-2", cfg)
    b = find_oips(tiny, "c2", [0, 1, 2], cfg)
    for ma, mb in zip(a.maps, b.maps):
        np.testing.assert_array_equal(ma.image, mb.image)
        assert ma.start == mb.start


def test_find_oips_statuses_and_roundtrip(tiny, tmp_path):
    seen = []
    cfg = OipConfig(steps=40, n_candidates=4, restarts=2, scales=(3, 6, 12), n_per_map=2)
    res = find_oips(tiny, "c2", "all", cfg, on_progress=lambda d, t: seen.append((d, t)))
    assert len(res.maps) == 12 and seen[-1] == (12, 12)
    assert [m.map_index for m in res.maps] == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert res.maps[-1].status == "silent"
    assert res.maps[0].start.startswith(("precursor#", "restart"))
    s = res.summary()
    assert s["maps"] == 12 and s["silent"] >= 2
    res.save(tmp_path / "r")
    back = OipResult.load(tmp_path / "r")
    assert back.config == res.config and back.versions == res.versions and back.seconds == res.seconds
    for ma, mb in zip(res.maps, back.maps):
        for f in ("image", "snapshots", "activation_history"):
            np.testing.assert_array_equal(getattr(ma, f), getattr(mb, f))
        for f in ("map_index", "activation", "status", "converged_step", "snapshot_steps", "start"):
            assert getattr(ma, f) == getattr(mb, f)


@pytest.mark.parametrize("extra", [dict(strategy=1, strategy1_steps=(5, 5, 20)), dict(start="fourier")])
def test_strategy1_and_fourier_raise_activation(tiny, extra):
    cfg = OipConfig(steps=30, n_candidates=2, restarts=0, scales=(3, 6, 12), stop_on_convergence=False, **extra)
    res = find_oips(tiny, "c2", "0-4", cfg)
    fired = [m for m in res.maps if m.activation_history[0] > 0]
    assert fired
    assert all(m.activation > m.activation_history[0] for m in fired)


def test_errors(tiny):
    with pytest.raises(LayerError):
        find_oips(tiny, "nope", "all", OipConfig(steps=2))
    dense = find_oips(tiny, "d", "all", OipConfig(steps=2))  # a dense layer's units count as its maps
    assert [m.map_index for m in dense.maps] == [0, 1]
    with pytest.raises(LayerError, match="6"):
        find_oips(tiny, "c2", "0-6", OipConfig(steps=2))
    with pytest.raises(ConfigError, match="28"):
        find_oips(tiny, "c2", "0", OipConfig(steps=2, scales=(3, 28)))
    for bad in [dict(epsilon=0), dict(steps=0), dict(strategy=2), dict(start="x"), dict(scales=(3, 7), factors=(1.0,)),
                dict(n_candidates=0), dict(restarts=-1), dict(snapshot_steps=(700,))]:
        with pytest.raises(ConfigError):
            OipConfig(**bad)


@pytest.mark.slow
def test_rescue_wakes_a_map_that_no_random_start_triggers(tiny):
    """A map whose bias is below anything random starts reach is woken via its pre-activation."""
    model = keras.models.clone_model(tiny)
    model.set_weights(tiny.get_weights())
    layer = model.get_layer("c2")
    kernel, bias = layer.get_weights()
    bias[4] = 0.0
    layer.set_weights([kernel, bias])
    pre = keras.Model(model.inputs[0], layer.input)
    starts = pre(scale_noise(9, 256, 12, 12, 1, (3, 6, 12))).numpy()
    patches = np.lib.stride_tricks.sliding_window_view(starts, (3, 3), axis=(1, 2))
    best_random = np.einsum("nhwcij,ijc->nhw", patches, kernel[:, :, :, 4]).max()
    bias[4] = -1.5 * best_random
    layer.set_weights([kernel, bias])

    cfg = OipConfig(steps=60, n_candidates=4, restarts=1, scales=(3, 6, 12), rescue_steps=150)
    woken = find_oips(model, "c2", [4], cfg).maps[0]
    assert woken.activation > 0 and woken.status != "silent"
    assert woken.start.startswith("rescue:pre-activation")
    without = find_oips(model, "c2", [4], OipConfig(steps=60, n_candidates=4, restarts=1,
                                                    scales=(3, 6, 12), rescue_steps=0)).maps[0]
    assert without.status == "silent"


@pytest.mark.slow
def test_compacted_batches_give_the_same_oips_as_one_whole_batch(sub):
    """Stopped elements leave the batch between segments and waiting ones join; no OIP changes."""
    from oipscope.config import Execution

    x0 = _x(24, seed=5)
    maps = np.arange(24) % 6  # map 5 is silent: those elements stop at step 0
    config = OipConfig(steps=120, conv_criterion=1e-2)  # stops between steps 39 and 97
    whole = ascend(sub, x0, maps, config, execution=Execution(segment_steps=None))
    stopped = whole.converged_step[whole.status == 0]
    assert len(stopped) >= 4 and len(set(stopped.tolist())) > 1, "the test needs maps that stop at different steps"
    for execution in (Execution(segment_steps=7), Execution(segment_steps=1),
                      Execution(segment_steps=10, memory_budget_mb=0.02)):  # 0.02 MB: a few elements at a time
        compacted = ascend(sub, x0, maps, config, execution=execution)
        np.testing.assert_array_equal(compacted.images, whole.images)
        np.testing.assert_array_equal(compacted.snapshots, whole.snapshots)
        np.testing.assert_array_equal(compacted.activations, whole.activations)
        np.testing.assert_array_equal(compacted.status, whole.status)
        np.testing.assert_array_equal(compacted.converged_step, whole.converged_step)
        # the activations before each step come from forward passes over batches of other
        # sizes, which oneDNN may sum in another order: equal to the last bits
        np.testing.assert_allclose(compacted.history, whole.history, rtol=1e-6, atol=1e-7)


def test_segments_report_every_stopped_element_once(sub):
    from oipscope.config import Execution

    stopped = []
    ascend(sub, _x(12), np.arange(12) % 6, OipConfig(steps=40), execution=Execution(segment_steps=5),
           on_stopped=stopped.append)
    assert sum(stopped) == 12 and len(stopped) >= 40 // 5


@pytest.mark.parametrize("budget", [0.0, -1.0, float("inf"), float("nan")])
def test_memory_budget_must_be_a_finite_positive_number(budget):
    from oipscope.config import Execution

    with pytest.raises(ConfigError, match=r"memory_budget_mb must be > 0, a finite number of MB \(e.g. 512\)"):
        Execution(memory_budget_mb=budget)


@pytest.mark.slow
def test_an_xla_compiled_search_finds_the_same_oips(tiny):
    """``Execution(jit_compile=True)`` runs the whole pipeline (ascents without snapshots too)."""
    from oipscope.config import Execution

    cfg = OipConfig(steps=40, n_candidates=4, restarts=1, scales=(3, 6, 12))
    plain = find_oips(tiny, "c2", "all", cfg)
    compiled = find_oips(tiny, "c2", "all", cfg, execution=Execution(jit_compile=True))
    assert [m.status for m in compiled.maps] == [m.status for m in plain.maps]
    assert compiled.maps[5].status == "silent"
    np.testing.assert_allclose([m.activation for m in compiled.maps], [m.activation for m in plain.maps],
                               rtol=1e-3, atol=1e-5)
    for a, b in zip(plain.maps, compiled.maps):
        np.testing.assert_allclose(b.image, a.image, atol=1e-3)


def test_steps_beyond_the_bound_are_refused_with_the_bound_and_what_to_do():
    from oipscope.config import MAX_STEPS

    OipConfig(steps=MAX_STEPS)
    for fields in ({"steps": 3_000_000_000}, {"strategy1_steps": (20, MAX_STEPS + 1)}, {"rescue_steps": 10**7}):
        with pytest.raises(ConfigError, match=r"at most 1,000,000.*--steps 600"):
            OipConfig(**fields)


@pytest.mark.parametrize("stop", [True, False], ids=["frozen-at-convergence", "all-steps"])
def test_a_long_ascent_keeps_an_evenly_thinned_history(sub, monkeypatch, stop):
    """Past HISTORY_SAMPLES steps the history keeps every k-th step's activation, the same values as a full one;
    the images do not change."""
    from oipscope.ascent import pixels as engine

    cfg = OipConfig(steps=60, conv_criterion=1e-2, stop_on_convergence=stop, scales=(3, 6, 12))
    full = ascend(sub, _x(5), range(5), cfg)
    monkeypatch.setattr(engine, "HISTORY_SAMPLES", 7)  # 60 steps: every 9th step, 7 entries
    thin = ascend(sub, _x(5), range(5), cfg)
    assert thin.history_every == 9 and thin.history.shape == (5, 7)
    np.testing.assert_array_equal(thin.history, full.history[:, ::9])
    np.testing.assert_array_equal(thin.images, full.images)
    assert full.history_every == 1 and full.history.shape == (5, 60)


def test_a_thinned_history_is_saved_with_its_spacing(tiny, monkeypatch, tmp_path):
    from oipscope.ascent import pixels as engine

    monkeypatch.setattr(engine, "HISTORY_SAMPLES", 8)
    res = find_oips(tiny, "c2", [0, 1], OipConfig(steps=40, scales=(3, 6, 12), restarts=0, precursor=False))
    back = OipResult.load(res.save(tmp_path / "r"))
    for m in back.maps:
        assert m.history_every == 5 and m.activation_history.shape == (8,)
        assert m.history_steps.tolist() == list(range(0, 40, 5))
