"""What ``oipscope zoo`` visualizes and how long it takes: the sampling decision and ``--dry-run``'s plan.

A zoo without ``--maps`` visualizes every map when its whole plan fits
:data:`~oipscope.runs.sampling.ZOO_HOUR`, else :data:`~oipscope.runs.sampling.SAMPLED_MAPS`
per layer; ``--time-budget`` chooses the number per layer instead. The estimate comes
from one timed probe and every layer's FLOPs (:func:`oipscope.runs.plan.zoo_rates`).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Optional, Sequence

from .options import console
from .progress import duration_text

__all__ = ["UNPROBED_FLOPS", "ZooChoice", "choose_zoo_maps", "print_plan", "choice_note"]

UNPROBED_FLOPS = 1e13
"""A zoo of fewer ascent operations fits an hour even at 2.8 GFLOP/s: it takes every map without a probe
(the series' CNN: 2e12)."""


@dataclasses.dataclass(frozen=True)
class ZooChoice:
    """The maps a zoo visualizes and, when estimated, how long its whole plan would take.

    Attributes:
        plan: the layers with the maps to visualize.
        rates: each layer's rates from the probe (empty when not estimated).
        probed: the index of the probed layer (-1 when not estimated).
        full_seconds: the estimate of every selected map of every layer (None when not estimated).
        sampled: maps per layer when sampled, else None.
        budget: the ``--time-budget`` in seconds, if given.
        kept: layers whose maps an interrupted run chose (``--resume``).
    """

    plan: list
    rates: list = dataclasses.field(default_factory=list)
    probed: int = -1
    full_seconds: Optional[float] = None
    sampled: Optional[int] = None
    budget: Optional[float] = None
    kept: tuple[str, ...] = ()

    def maps(self) -> dict[str, tuple[int, ...]]:
        """The maps of every layer, for :func:`oipscope.runs.jobs.run_zoo`."""
        return {item.layer_name: item.maps for item in self.plan}


def _ascent_work(subject, plan, config) -> float:
    from ..model.flops import ascent_flops

    return sum(len(item.maps) * ascent_flops(subject.feature_submodel(item.layer_name)) for item in plan) \
        * config.n_per_map * config.total_steps


def _saved_maps(out: Path, layer_name: str) -> Optional[tuple[int, ...]]:
    """The maps an interrupted zoo chose for a layer (its run.json), or None."""
    from ..files import read_saved_json
    from ..runs.layout import RUN_JSON, zoo_layer_folder
    from ..runs.phases import run_key_of

    path = zoo_layer_folder(out, layer_name) / RUN_JSON
    if not path.is_file():
        return None
    key = run_key_of(read_saved_json(path, "run settings"))
    maps = key.get("maps") if isinstance(key, dict) else None
    return tuple(int(m) for m in maps) if isinstance(maps, list) and maps else None


def choose_zoo_maps(subject, plan: Sequence, config, image_set, execution, *, explicit: bool,
                    budget: Optional[float], estimate: bool, resume_from: Optional[Path] = None) -> ZooChoice:
    """Sample the plan's maps when it would take over an hour, or to fit ``budget``.

    Args:
        plan: every selected map of every layer (:func:`oipscope.runs.plan.plan_zoo`).
        explicit: ``--maps`` was given: no sampling.
        budget: ``--time-budget`` in seconds.
        estimate: always estimate (``--dry-run``), even where the choice needs none.
        resume_from: the zoo folder of ``--resume``: layers an interrupted run started keep its maps.
    """
    from ..runs.plan import zoo_rates
    from ..runs.sampling import SAMPLED_MAPS, ZOO_HOUR, maps_for_budget, sampled_plan

    plan = list(plan)
    if not estimate and (explicit or (budget is None and _ascent_work(subject, plan, config) < UNPROBED_FLOPS)):
        return ZooChoice(plan)
    n_images = len(image_set) if image_set is not None else 0
    rates, probed = zoo_rates(subject, plan, config, n_images=n_images, execution=execution)
    full = sum(rate.seconds(item, config, n_images) for item, rate in zip(plan, rates))
    count = None
    if not explicit and budget is not None:
        count = maps_for_budget(plan, rates, config, budget, n_images)
    elif not explicit and full > ZOO_HOUR:
        count = SAMPLED_MAPS
    chosen = sampled_plan(plan, count) if count is not None else plan
    kept = []
    if resume_from is not None and count is not None:
        for k, item in enumerate(chosen):
            saved = _saved_maps(resume_from, item.layer_name)
            if saved is not None and saved != item.maps and set(saved) <= set(plan[k].maps):
                chosen[k] = dataclasses.replace(item, maps=saved)
                kept.append(item.layer_name)
    if count is not None and count >= max(len(item.maps) for item in plan):
        count = None  # the budget holds every map
    return ZooChoice(chosen, rates, probed, full, count, budget, tuple(kept))


def choice_note(choice: ZooChoice) -> Optional[str]:
    """The line saying why and how maps were sampled, or None when every selected map is taken."""
    if choice.sampled is None:
        return None
    n_maps = sum(len(item.maps) for item in choice.plan)
    why = (f"to fit --time-budget {duration_text(choice.budget)}" if choice.budget is not None
           else "more than an hour")
    kept = f"; {len(choice.kept)} layer(s) keep the maps of the interrupted run" if choice.kept else ""
    return (f"the whole plan would take ~{duration_text(choice.full_seconds)} ({why}): {choice.sampled} map(s) per "
            f"layer, evenly spread ({n_maps} in all){kept}; --maps all takes every map, --time-budget 2h as many "
            "as fit")


def print_plan(subject, choice: ZooChoice, config, image_set, execution, class_layer: Optional[str] = None) -> None:
    """``zoo --dry-run``: one line per layer with its maps, output size and estimated time."""
    from ..runs.jobs import class_config
    from ..runs.plan import LayerPlan, estimate_seconds

    plan, n_images = choice.plan, len(image_set) if image_set is not None else 0
    images_text = f"{n_images} images of {image_set.name}" if image_set is not None else "no images"
    console.print(f"plan for {subject.name}: {len(plan)} layer(s), input {subject.encoding.describe()}, "
                  f"{images_text}; nothing is written", markup=False)
    total = 0.0
    for k, (item, rate) in enumerate(zip(plan, choice.rates)):
        total += (seconds := rate.seconds(item, config, n_images))
        height, width, n_maps = item.output_shape
        source = "probed" if k == choice.probed else "from FLOPs"
        console.print(f"  {item.layer_name:<28} {item.class_name:<20} {len(item.maps):>5} of {n_maps:<5} maps  "
                      f"{height}x{width}  ~{duration_text(seconds)} ({source})", markup=False)
    if class_layer:
        n_classes = int(subject.model.get_layer(class_layer).output.shape[-1])
        item = LayerPlan(class_layer, "classes", tuple(range(n_classes)), (1, 1, n_classes))
        total += (seconds := estimate_seconds(subject, item, class_config(config), execution=execution))
        console.print(f"  class OIPs of {class_layer}: {n_classes} classes  ~{duration_text(seconds)}", markup=False)
    if (line := choice_note(choice)) is not None:
        console.print(f"sampled: {line}", markup=False, soft_wrap=True)
    probed = plan[choice.probed].layer_name if plan else "none"
    console.print(f"estimated time: ~{duration_text(total)} on this machine (one timed probe of {probed}, the "
                  "other layers scaled by their FLOPs)", markup=False, soft_wrap=True)
