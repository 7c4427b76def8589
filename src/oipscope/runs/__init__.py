"""Resumable runs: a layer's maps in chunks, a model's zoo, on this machine or a Ray cluster.

- :mod:`.jobs`: :func:`run_layer`, :func:`run_zoo`, :func:`run_classes`.
- :mod:`.chunks`: the work of a layer cut into chunks, and the local backend.
- :mod:`.cluster`: the Ray backend.
- :mod:`.plan`: a zoo's plan and estimate before it runs.
- :mod:`.layout`: where a run keeps its files.
"""

from .._lazy import lazy_exports

_JOBS = ("LayerRun", "run_layer", "run_zoo", "run_classes", "class_layer", "class_config", "CLASS_LIMIT",
         "examine_layer", "wake_from_data", "dataset_fits", "finished_result", "layer_map_selection", "RUN_JSON",
         "zoo_layer_folder")

__all__ = [*_JOBS, "plan_zoo", "LocalBackend", "RayBackend"]

__getattr__, __dir__ = lazy_exports(__name__, {
    **{name: "jobs" for name in _JOBS}, "plan_zoo": "plan", "LocalBackend": "chunks", "RayBackend": "cluster",
})
