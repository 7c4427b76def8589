"""The quality benchmark's own models, data and target check (bench/quality_models.py, bench/bench_quality.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import bench_quality  # noqa: E402
import quality_models  # noqa: E402


@pytest.mark.parametrize("build, channels, n_classes", [
    (quality_models.build_grey_model, 1, 10),
    (quality_models.build_rgb_model, 3, len(quality_models.RGB_CLASSES)),
])
def test_models_take_raw_pixels_and_end_in_the_deepest_relu(build, channels, n_classes):
    import oipscope

    model = build()
    subject = oipscope.as_subject(model)
    assert subject.input_shape == (64, 64, channels)
    assert (subject.encoding.low, subject.encoding.high) == (0.0, 255.0)  # recognised from Rescaling
    assert tuple(model.get_layer(quality_models.DEEPEST).output.shape[1:]) == (8, 8, 64)
    assert tuple(model.output.shape[1:]) == (n_classes,)
    kinds = {type(layer).__name__ for layer in model.layers}
    assert {"BatchNormalization", "Add", "GlobalAveragePooling2D"} <= kinds


def test_synthetic_rgb_is_seeded_and_balanced():
    images, labels = quality_models.synthetic_rgb(32, seed=5)
    again, _ = quality_models.synthetic_rgb(32, seed=5)
    other, _ = quality_models.synthetic_rgb(32, seed=6)
    assert images.shape == (32, 64, 64, 3) and images.dtype == np.uint8
    assert np.array_equal(images, again) and not np.array_equal(images, other)
    assert np.bincount(labels).tolist() == [4] * len(quality_models.RGB_CLASSES)


def test_unknown_kind_is_refused_with_the_choices(tmp_path):
    with pytest.raises(ValueError, match="grey, rgb"):
        quality_models.train_or_load("cifar", tmp_path)


def _column(activation, jitter, hf, at_bound=0.0):
    return bench_quality.Column("m", 10, 1.0, np.array(activation, float), None, np.array(jitter, float),
                                np.array(hf, float), at_bound=at_bound)


class _Subject:
    name = "net"


def test_targets_are_judged_on_live_maps_only():
    study = bench_quality.Study("grey", _Subject(), "deepest_relu", [0, 1, 2], 3, None, "", True)
    series = _column([1.0, 2.0, -1.0], [0.5, 0.6, np.nan], [0.30, 0.30, 0.9])
    robust = _column([3.0, 4.0, -2.0], [0.95, 0.92, np.nan], [0.10, 0.12, 0.9])  # map 2 is dead in both
    assert [passed for _, passed in bench_quality.check_targets(study, series, robust)] == [True] * 4
    failing = _column([3.0, -1.0, 5.0], [0.95, np.nan, 1.0], [0.10, 0.30, 0.1], at_bound=0.2)  # fails live map 1
    texts = bench_quality.check_targets(study, series, failing)
    assert [passed for _, passed in texts] == [False] * 4  # jitter of a failed map counts as 0
    assert "20.0 % of pixels at a bound <= 5 %" in texts[2][0]
    rgb = bench_quality.Study("rgb", _Subject(), "deepest_relu", [0, 1, 2], 3, None, "", True, saturation=0.5)
    texts = bench_quality.check_targets(rgb, series, bench_quality.Column(
        "m", 10, 1.0, np.array([3.0, 4.0, -2.0]), None, np.array([0.95, 0.92, np.nan]), np.array([0.1, 0.12, 0.9]),
        at_bound=0.0, saturation=0.8))
    assert texts[-1] == ("net deepest_relu (m): median saturation 0.80 <= 1.4 x the images' 0.50 = 0.70", False)
    missing = bench_quality.Column("m", unavailable="not available (no preset)")
    assert bench_quality.check_targets(study, series, missing) == [
        ("net deepest_relu (m): not available (no preset)", False)]
