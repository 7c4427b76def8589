"""Resumable runs: a layer's maps in chunks, a model's zoo, on this machine or a Ray cluster.

- :mod:`.jobs`: :func:`run_layer`, :func:`run_zoo`, :func:`run_classes`.
- :mod:`.examine`: a finished layer meets the data (dataset examples, assessment, waking silent maps).
- :mod:`.chunks`: the work of a layer cut into chunks, and the local backend.
- :mod:`.cluster`: the Ray backend.
- :mod:`.plan`: a zoo's plan and estimate before it runs.
- :mod:`.sampling`: maps sampled per layer so that a large zoo fits its time.
- :mod:`.layout`: where a run keeps its files.
"""

from .._lazy import lazy_exports

_JOBS = ("LayerRun", "run_layer", "run_zoo", "run_classes", "class_layer", "class_config", "CLASS_LIMIT",
         "finished_result", "layer_map_selection", "RUN_JSON", "zoo_layer_folder")
_EXAMINE = ("examine_layer", "wake_from_data", "dataset_fits")

__all__ = [*_JOBS, *_EXAMINE, "plan_zoo", "LocalBackend", "RayBackend"]

__getattr__, __dir__ = lazy_exports(__name__, {
    **{name: "jobs" for name in _JOBS}, **{name: "examine" for name in _EXAMINE}, "plan_zoo": "plan", "LocalBackend": "chunks", "RayBackend": "cluster",
})
