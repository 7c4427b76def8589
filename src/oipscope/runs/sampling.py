"""Maps sampled from each layer, so that the zoo of a large model fits its time.

A zoo whose whole plan would take longer than :data:`ZOO_HOUR` visualizes
:data:`SAMPLED_MAPS` maps per layer, spread evenly over the layer (:func:`sample_maps`);
a time budget (:func:`parse_duration`) chooses the number per layer instead
(:func:`maps_for_budget`). The sampling is deterministic, so the same command picks the
same maps again (and ``--resume`` continues them).

Example:
    >>> sample_maps(tuple(range(64)), 4)
    (0, 21, 42, 63)
    >>> parse_duration("1h30m")
    5400.0
"""

from __future__ import annotations

import dataclasses
import re
from typing import Sequence

import numpy as np

from ..errors import ConfigError
from ..config import OipConfig
from .plan import LayerPlan, Probe

__all__ = ["ZOO_HOUR", "SAMPLED_MAPS", "sample_maps", "sampled_plan", "parse_duration", "maps_for_budget"]

ZOO_HOUR = 3600.0
"""A zoo whose whole plan is estimated longer than this (seconds) samples maps by default."""

SAMPLED_MAPS = 8
"""Maps per layer a sampled zoo visualizes by default."""

_DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s)?")


def sample_maps(maps: Sequence[int], count: int) -> tuple[int, ...]:
    """``count`` of ``maps`` spread evenly from the first to the last (all of them when fewer)."""
    maps = tuple(maps)
    if count >= len(maps):
        return maps
    picks = np.unique(np.rint(np.linspace(0, len(maps) - 1, max(1, count))).astype(int))
    return tuple(maps[k] for k in picks)


def sampled_plan(plans: Sequence[LayerPlan], count: int) -> list[LayerPlan]:
    """The plan with ``count`` maps per layer (:func:`sample_maps`)."""
    return [dataclasses.replace(plan, maps=sample_maps(plan.maps, count)) for plan in plans]


def parse_duration(text: str) -> float:
    """Seconds of a duration like ``90s``, ``30m``, ``2h`` or ``1h30m`` (a plain number: seconds).

    Raises:
        ConfigError: not such a duration, or not above zero.
    """
    spec = str(text).strip().lower()
    match = _DURATION.fullmatch(spec)
    try:
        seconds = float(spec) if re.fullmatch(r"\d+(?:\.\d+)?", spec) else None
    except ValueError:
        seconds = None
    if seconds is None and spec and match and any(match.groups()):
        hours, minutes, secs = (float(g) if g else 0.0 for g in match.groups())
        seconds = 3600 * hours + 60 * minutes + secs
    if seconds is None or seconds <= 0:
        raise ConfigError(f"--time-budget takes a duration above zero like 90s, 30m, 2h or 1h30m, got {text!r}")
    return seconds


def maps_for_budget(plans: Sequence[LayerPlan], rates: Sequence[Probe], config: OipConfig, budget: float,
                    n_images: int = 0) -> int:
    """The largest number of maps per layer (at least 1) whose sampled zoo fits ``budget`` seconds.

    Args:
        plans: the zoo's layers with all the maps they could have.
        rates: each layer's rates (:func:`oipscope.runs.plan.zoo_rates`).
        config: the search parameters.
        budget: seconds.
        n_images: dataset images every layer's examples go through.
    """
    def total(count: int) -> float:
        return sum(rate.seconds(plan, config, n_images) for plan, rate in zip(sampled_plan(plans, count), rates))

    low, high = 1, max((len(plan.maps) for plan in plans), default=1)
    while low < high:  # the total grows with the count: the largest that fits
        middle = (low + high + 1) // 2
        low, high = (middle, high) if total(middle) <= budget else (low, middle - 1)
    return low
