"""The method an OIP search starts from: series, robust, and auto by the model's input size."""

from __future__ import annotations

import pytest

from oipscope.config import OipConfig, resolve_method
from oipscope.errors import ConfigError


def test_auto_is_the_series_method_up_to_32_pixels_and_robust_above():
    assert resolve_method("auto", 28, 28) == "series" and resolve_method("auto", 32, 32) == "series"
    assert resolve_method("auto", 64, 64) == "robust" and resolve_method("auto", 32, 224) == "robust"
    assert resolve_method("series", 224, 224) == "series" and resolve_method("robust", 12, 12) == "robust"
    with pytest.raises(ConfigError, match="method must be auto, series or robust, got 'fast'"):
        resolve_method("fast", 28, 28)


def test_the_presets_carry_their_method():
    assert OipConfig().method == "series" and OipConfig.for_method("series") == OipConfig()
    robust = OipConfig.for_method("robust", steps=64)
    assert robust == OipConfig.robust(steps=64) and robust.method == "robust" and robust.contrast == 1.0
    with pytest.raises(ConfigError, match="method must be one of series, robust"):
        OipConfig(method="auto")


def test_saved_settings_without_the_new_fields_read_as_what_they_ran():
    series = OipConfig().to_dict()
    assert "contrast" not in series and "colour_matrix" not in series and series["method"] == "series"
    del series["method"]
    assert OipConfig.from_dict(series) == OipConfig()
    old_robust = OipConfig.robust(contrast=None).to_dict()
    del old_robust["method"]
    read = OipConfig.from_dict(old_robust)
    assert read.method == "robust" and read.contrast is None
    assert OipConfig.from_dict(OipConfig.robust(colour_matrix=[1, 0, 0, 0, 1, 0, 0, 0, 1]).to_dict()).colour_matrix == (
        1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)


@pytest.mark.parametrize("bad, message", [
    ({"contrast": 0.0}, "contrast must be > 0 or None"),
    ({"colour_matrix": (1.0, 2.0)}, "colour_matrix must be 9 finite numbers"),
    ({"colour_matrix": (1, 1, 1, 1, 1, 1, 1, 1, 1)}, "can be inverted"),
])
def test_bad_contrast_or_colours_are_config_errors(bad, message):
    with pytest.raises(ConfigError, match=message):
        OipConfig.robust(**bad)
