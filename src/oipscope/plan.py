"""The plan of a zoo before it runs: which layers, which maps, how long.

:func:`plan_zoo` resolves the layer and map selection exactly as
:func:`oipscope.runs.run_zoo` will; :func:`estimate_seconds` times a short
ascent of each layer (and a forward pass over a few images) and scales it to
the full search, so ``oipscope zoo --dry-run`` can say what a run would cost
without writing anything.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from .config import Execution, OipConfig
from .engine import ascend
from .layers import select_layers
from .runs import layer_map_selection
from .subject import as_subject

__all__ = ["LayerPlan", "plan_zoo", "estimate_seconds"]

_SEARCH_OVERHEAD = 1.15  # precursor scoring and the few maps that need restarts, measured on the embedded CNN
_COMPILES_PER_LAYER = 3  # a run compiles each layer's ascent, its measure and its second chances' loops


@dataclass(frozen=True)
class LayerPlan:
    """One layer of a planned zoo.

    Attributes:
        layer_name: the layer.
        class_name: its Keras class.
        maps: the maps to visualize.
        output_shape: (height, width, maps) of its output.
    """

    layer_name: str
    class_name: str
    maps: tuple[int, ...]
    output_shape: tuple[int, int, int]


def plan_zoo(model, layers: str | Sequence[str] | None = None,
             maps: str | int | Iterable[int] | None = "all") -> list[LayerPlan]:
    """The layers and maps a zoo with these selections would visualize, in model order.

    Raises:
        LayerError: an unknown name, a glob that matches no layer, or a map selection
            that leaves a layer without maps.
    """
    subject = as_subject(model)
    plans = []
    for name in select_layers(subject.model, layers):
        layer = subject.model.get_layer(name)
        shape = tuple(int(d) for d in layer.output.shape[1:])
        plans.append(LayerPlan(name, type(layer).__name__, layer_map_selection(subject, name, maps), shape))
    return plans


def estimate_seconds(model, plan: LayerPlan, config: OipConfig = OipConfig(), *, n_images: int = 0,
                     probe_maps: int = 16, probe_steps: int = 8, execution: Execution = Execution()) -> float:
    """Seconds the OIP search (and ``n_images`` dataset images) of one layer would take.

    A batch of ``probe_maps`` maps ascends ``probe_steps`` steps twice: the second
    run is scaled to the layer's maps, its replicates and ``config.total_steps``;
    the first one compiles the loop, and a run compiles about three such loops per
    layer, whatever its steps (for short runs that is most of the time). A forward
    pass of 64 images is scaled to ``n_images``. Batches in the real run are
    larger, so long runs are estimated long.
    """
    subject = as_subject(model)
    sub = subject.feature_submodel(plan.layer_name)
    height, width, channels = subject.input_shape
    n = max(1, min(probe_maps, len(plan.maps)))
    rng = np.random.default_rng(0)
    start = subject.encoding.start(rng.standard_normal((n, height, width, channels)).astype(np.float32))
    maps = list(plan.maps[:n])
    probe = Execution(memory_budget_mb=execution.memory_budget_mb, segment_steps=None)
    began = time.perf_counter()
    ascend(sub, start, maps, config, steps=2, snapshot_steps=(), encoding=subject.encoding,
           execution=probe)  # compiles the loop
    compiled = time.perf_counter()
    ascend(sub, start, maps, config, steps=probe_steps, snapshot_steps=(), stop_on_convergence=False,
           encoding=subject.encoding, execution=probe)
    per_map_step = (time.perf_counter() - compiled) / (n * probe_steps)
    compile_seconds = max(0.0, compiled - began - per_map_step * n * 2)
    seconds = (per_map_step * len(plan.maps) * config.n_per_map * config.total_steps * _SEARCH_OVERHEAD
               + _COMPILES_PER_LAYER * compile_seconds)
    if n_images:
        batch = subject.encode(np.full((64, height, width, channels), 128.0, np.float32))
        forward = subject.output_submodel(plan.layer_name, "act_")
        forward(batch, training=False)
        began = time.perf_counter()
        forward(batch, training=False)
        seconds += (time.perf_counter() - began) / 64 * n_images
    return seconds
