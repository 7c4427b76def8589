"""Maps sampled per layer so a large zoo fits its time (runs.sampling)."""

from __future__ import annotations

import pytest

from oipscope.config import OipConfig
from oipscope.errors import ConfigError
from oipscope.runs.plan import LayerPlan, Probe
from oipscope.runs.sampling import SAMPLED_MAPS, maps_for_budget, parse_duration, sample_maps, sampled_plan


def test_samples_spread_evenly_from_the_first_map_to_the_last():
    assert sample_maps(range(64), 8) == (0, 9, 18, 27, 36, 45, 54, 63)
    assert sample_maps(range(512), 1) == (0,)
    assert sample_maps((3, 5, 7), 8) == (3, 5, 7), "fewer maps than asked: all of them"
    assert sample_maps(range(10, 20), 2) == (10, 19), "picks among the selected maps"
    assert sample_maps(range(512), SAMPLED_MAPS) == sample_maps(range(512), SAMPLED_MAPS), "deterministic"


def test_a_sampled_plan_keeps_each_layers_shape():
    plans = [LayerPlan("a", "Conv2D", tuple(range(64)), (8, 8, 64)), LayerPlan("b", "Conv2D", (0, 1), (4, 4, 2))]
    sampled = sampled_plan(plans, 4)
    assert [p.maps for p in sampled] == [(0, 21, 42, 63), (0, 1)]
    assert [p.output_shape for p in sampled] == [(8, 8, 64), (4, 4, 2)]


@pytest.mark.parametrize("text, seconds", [("90s", 90), ("30m", 1800), ("2h", 7200), ("1h30m", 5400),
                                           ("1.5h", 5400), ("45", 45), (" 2H ", 7200), ("1m30s", 90)])
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["0", "0s", "soon", "", "h", "-5m", "30 min", "1d", "m30"])
def test_bad_durations_say_what_a_duration_looks_like(text):
    with pytest.raises(ConfigError, match=r"--time-budget takes a duration above zero like 90s, 30m"):
        parse_duration(text)


def test_the_budget_picks_the_most_maps_per_layer_that_fit():
    config = OipConfig(steps=10, restarts=0)
    plans = [LayerPlan("a", "Conv2D", tuple(range(64)), (8, 8, 64)),
             LayerPlan("b", "Conv2D", tuple(range(16)), (4, 4, 16))]
    rates = [Probe(per_map_step=0.1, compile_seconds=0.0), Probe(per_map_step=0.3, compile_seconds=0.0)]

    def seconds(count: int) -> float:
        return sum(r.seconds(p, config) for p, r in zip(sampled_plan(plans, count), rates))

    for budget in (seconds(5), seconds(5) + 0.5, seconds(20) - 0.01, seconds(40)):
        count = maps_for_budget(plans, rates, config, budget)
        assert seconds(count) <= budget < seconds(count + 1)
    assert maps_for_budget(plans, rates, config, 1e-9) == 1, "at least one map per layer"
    assert maps_for_budget(plans, rates, config, 1e9) == 64, "a budget that holds everything"
