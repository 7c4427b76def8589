"""oipscope: what do the feature maps of a Keras CNN respond to?

Two lines in a notebook::

    import oipscope
    result = oipscope.find_oips(oipscope.default_model(), "Conv2D_3", maps="all")

TensorFlow is imported on first use of a function, not by ``import oipscope``.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from ._compat import install_aliases
from .errors import ConfigError, DataError, LayerError, ModelError, OipscopeError, OutputError

__version__ = "0.1.0"

_LAZY = {
    "OipConfig": "config",
    "Execution": "config",
    "Status": "search.status",
    "ascend": "ascent.pixels",
    "render": "ascent.parameters",
    "Objective": "ascent.objective",
    "channel": "ascent.objective",
    "parse_objective": "ascent.objective",
    "dream": "analysis.dream",
    "DreamConfig": "analysis.dream",
    "find_oips": "search.pipeline",
    "run_layer": "runs.jobs",
    "MapOip": "search.results",
    "OipResult": "search.results",
    "load_dataset": "data.datasets",
    "standardize": "data.datasets",
    "build_cnn": "model.cnn",
    "train": "model.cnn",
    "TrainConfig": "model.cnn",
    "default_model": "model.cnn",
    "default_subject": "model.cnn",
    "InputEncoding": "model.encoding",
    "Subject": "model.subject",
    "as_subject": "model.subject",
    "open_subject": "model.subject",
    "ImageSet": "data.imagesets",
    "open_images": "data.imagesets",
    "embedded_examples": "data.imagesets",
    "default_layers": "model.layers",
    "select_layers": "model.layers",
    "plan_zoo": "runs.plan",
    "run_zoo": "runs.jobs",
    "run_classes": "runs.jobs",
    "write_gallery": "gallery.site",
    "load_model": "model.loading",
    "feature_layers": "model.loading",
    "feature_submodel": "model.loading",
    "layer_activations": "analysis.activations",
    "load_image_file": "analysis.activations",
    "DatasetExamples": "analysis.examples",
    "dataset_examples": "analysis.examples",
    "assess_oips": "analysis.assessment",
    "superstimulus_ratio": "analysis.assessment",
    "evoked_classes": "analysis.assessment",
    "pattern_accuracy": "analysis.examples",
}

__all__ = [
    "__version__",
    "OipscopeError",
    "ConfigError",
    "DataError",
    "LayerError",
    "ModelError",
    "OutputError",
    "OipConfig",
    "Execution",
    "Status",
    "ascend",
    "render",
    "Objective",
    "channel",
    "parse_objective",
    "dream",
    "DreamConfig",
    "find_oips",
    "run_layer",
    "MapOip",
    "OipResult",
    "load_dataset",
    "standardize",
    "build_cnn",
    "train",
    "TrainConfig",
    "default_model",
    "default_subject",
    "InputEncoding",
    "Subject",
    "as_subject",
    "open_subject",
    "ImageSet",
    "open_images",
    "embedded_examples",
    "default_layers",
    "select_layers",
    "plan_zoo",
    "run_zoo",
    "run_classes",
    "write_gallery",
    "load_model",
    "feature_layers",
    "feature_submodel",
    "layer_activations",
    "load_image_file",
    "DatasetExamples",
    "dataset_examples",
    "assess_oips",
    "superstimulus_ratio",
    "evoked_classes",
    "pattern_accuracy",
]

install_aliases(__name__)


def __getattr__(name: str) -> Any:
    """Import the public API lazily, so ``import oipscope`` does not start TensorFlow."""
    if name in _LAZY:
        value = getattr(import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'oipscope' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
