"""OipConfig's groups: each loop reads its own part, while results are saved flat as before."""

import dataclasses

from oipscope.config import (DeadUnitSettings, OipConfig, ParameterLoopSettings, PixelLoopSettings,
                             StartSettings)

SEARCH_WIDE = {"seed", "n_per_map", "objective", "snapshot_steps", "method", "canvas"}  # read by the search around every loop


def test_every_field_belongs_to_a_group_or_to_the_whole_search():
    grouped = set()
    for kind in (StartSettings, PixelLoopSettings, ParameterLoopSettings, DeadUnitSettings):
        grouped |= set(kind.__dataclass_fields__)
    assert grouped | SEARCH_WIDE == set(OipConfig.__dataclass_fields__)


def test_groups_show_the_configs_values_and_are_frozen():
    config = OipConfig.robust(steps=64, learning_rate=0.02, n_candidates=5)
    assert config.parameter_loop == ParameterLoopSettings(
        parametrization="fourier", decorrelate=True, bounded=True, transforms=("standard",), optimizer="adam",
        learning_rate=0.02, epsilon=config.epsilon, steps=64, contrast=config.contrast, colour_matrix=None)
    assert config.pixel_loop.steps == 64 and config.starts.n_candidates == 5
    assert config.dead_units.warmup_steps == 8
    try:
        config.pixel_loop.epsilon = 1.0
    except dataclasses.FrozenInstanceError:
        pass
    else:
        raise AssertionError("a group must be frozen")


def test_saved_form_stays_flat():
    config = OipConfig(steps=20, epsilon=0.02)
    saved = config.to_dict()
    assert "pixel_loop" not in saved and saved["steps"] == 20 and saved["epsilon"] == 0.02
    assert OipConfig.from_dict(saved) == config
