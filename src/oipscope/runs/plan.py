"""The plan of a zoo before it runs: which layers, which maps, how long.

:func:`plan_zoo` resolves the layer and map selection exactly as
:func:`oipscope.runs.jobs.run_zoo` will; :func:`estimate_seconds` times a short
ascent of a layer (and a forward pass over a few images) and scales it to
the full search; :func:`estimate_zoo_seconds` does so for one layer of a zoo and scales
the others by their FLOPs, so ``oipscope zoo --dry-run`` can say what a run would cost
without writing anything, in seconds even for a deep model at 224 px.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from ..config import Execution, OipConfig
from ..ascent.pixels import ascend
from ..model.canvas import canvas_size
from ..model.flops import ascent_flops, forward_flops
from ..model.layers import select_layers
from ..model.rebuild import rebuilt
from .jobs import layer_map_selection
from ..model.subject import as_subject

__all__ = ["LayerPlan", "Probe", "plan_zoo", "probe_layer", "estimate_seconds", "zoo_rates",
           "estimate_zoo_seconds"]

_SEARCH_OVERHEAD = 1.15  # precursor scoring and the few maps that need restarts, measured on the embedded CNN
_SMALL_STEP_FLOPS = 1e9  # ascent FLOPs per map-step under which zoo_rates probes 16 maps, not 4
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


@dataclass(frozen=True)
class Probe:
    """What a short timed run of one layer measured: seconds per map and step, seconds to compile
    its loop, and seconds per image of its forward pass (0 when not measured)."""

    per_map_step: float
    compile_seconds: float
    per_image: float = 0.0

    def seconds(self, plan: LayerPlan, config: OipConfig, n_images: int = 0) -> float:
        """The layer's whole search (and ``n_images`` dataset images) at these rates."""
        return (self.per_map_step * len(plan.maps) * config.n_per_map * config.total_steps * _SEARCH_OVERHEAD
                + _COMPILES_PER_LAYER * self.compile_seconds + self.per_image * n_images)


def probe_layer(model, plan: LayerPlan, config: OipConfig = OipConfig(), *, n_images: int = 0,
                probe_maps: int = 16, probe_steps: int = 8, execution: Execution = Execution()) -> Probe:
    """Time a short ascent of one layer on its canvas (and, with ``n_images``, a forward pass of 64 images).

    A batch of ``probe_maps`` maps ascends ``probe_steps`` steps twice: the first run
    compiles the loop, the second gives the seconds per map and step.
    """
    subject = as_subject(model)
    sub = subject.feature_submodel(plan.layer_name)
    height, width = canvas_size(config.canvas, subject.input_shape, sub)
    channels = subject.input_shape[2]
    on_canvas = rebuilt(sub, (height, width))
    n = max(1, min(probe_maps, len(plan.maps)))
    rng = np.random.default_rng(0)
    start = subject.encoding.start(rng.standard_normal((n, height, width, channels)).astype(np.float32))
    maps = list(plan.maps[:n])
    probe = Execution(memory_budget_mb=execution.memory_budget_mb, segment_steps=None)
    began = time.perf_counter()
    ascend(on_canvas, start, maps, config, steps=2, snapshot_steps=(), encoding=subject.encoding,
           execution=probe)  # compiles the loop
    compiled = time.perf_counter()
    ascend(on_canvas, start, maps, config, steps=probe_steps, snapshot_steps=(), stop_on_convergence=False,
           encoding=subject.encoding, execution=probe)
    per_map_step = (time.perf_counter() - compiled) / (n * probe_steps)
    compile_seconds = max(0.0, compiled - began - per_map_step * n * 2)
    per_image = 0.0
    if n_images:
        batch = subject.encode(np.full((64, *subject.input_shape), 128.0, np.float32))
        forward = subject.output_submodel(plan.layer_name, "act_")
        forward(batch, training=False)
        began = time.perf_counter()
        forward(batch, training=False)
        per_image = (time.perf_counter() - began) / 64
    return Probe(per_map_step, compile_seconds, per_image)


def estimate_seconds(model, plan: LayerPlan, config: OipConfig = OipConfig(), *, n_images: int = 0,
                     probe_maps: int = 16, probe_steps: int = 8, execution: Execution = Execution()) -> float:
    """Seconds the OIP search (and ``n_images`` dataset images) of one layer would take.

    A short timed run (:func:`probe_layer`) is scaled to the layer's maps, its replicates and
    ``config.total_steps``; a run compiles about three loops per layer, whatever its steps
    (for short runs that is most of the time). Batches in the real run are larger, so long
    runs are estimated long.
    """
    probe = probe_layer(model, plan, config, n_images=n_images, probe_maps=probe_maps, probe_steps=probe_steps,
                        execution=execution)
    return probe.seconds(plan, config, n_images)


def _path_counts(subject, layer_name: str, config: OipConfig) -> tuple[int, int, int]:
    """(ascent FLOPs per map-step on the layer's canvas, forward FLOPs per dataset image, layers on its path)."""
    sub = subject.feature_submodel(layer_name)
    on_canvas = rebuilt(sub, canvas_size(config.canvas, subject.input_shape, sub))
    return ascent_flops(on_canvas), forward_flops(sub), len(sub.layers)


def zoo_rates(model, plans: Sequence[LayerPlan], config: OipConfig = OipConfig(), *, n_images: int = 0,
              execution: Execution = Execution()) -> tuple[list[Probe], int]:
    """The rates of every layer of a zoo from one timed probe, and the index of the probed layer.

    Compiling a loop takes seconds on a deep model, so only one layer, in the middle of
    the plan, is probed (on the canvas its OIPs grow on): its seconds per operation
    scale every other layer's ascent FLOPs (:func:`oipscope.model.flops.ascent_flops`,
    forward and backward up to the layer, on its canvas) and forward FLOPs per dataset
    image; compile times scale with the number of layers on the path.
    """
    subject = as_subject(model)
    if not plans:
        return [], -1
    counts = [_path_counts(subject, plan.layer_name, config) for plan in plans]
    mid = len(plans) // 2
    ascent, forward, depth = counts[mid]
    # a small layer's step costs little: probe it in a batch like the run's (a batch of 4 is mostly overhead)
    maps = 16 if ascent < _SMALL_STEP_FLOPS else 4
    probe = probe_layer(subject, plans[mid], config, n_images=n_images, probe_maps=maps, probe_steps=4,
                        execution=execution)
    return [Probe(probe.per_map_step * flops / max(1, ascent), probe.compile_seconds * layers / max(1, depth),
                  probe.per_image * image_flops / max(1, forward))
            for flops, image_flops, layers in counts], mid


def estimate_zoo_seconds(model, plans: Sequence[LayerPlan], config: OipConfig = OipConfig(), *,
                         n_images: int = 0, execution: Execution = Execution(),
                         ) -> list[tuple[float, bool]]:
    """``(seconds, probed)`` per layer of a zoo (:func:`zoo_rates`); ``probed`` only for the probed layer."""
    rates, mid = zoo_rates(model, plans, config, n_images=n_images, execution=execution)
    return [(rate.seconds(plan, config, n_images), k == mid) for k, (plan, rate) in enumerate(zip(plans, rates))]
