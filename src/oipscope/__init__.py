"""oipscope: what do the feature maps of a Keras CNN respond to?

Two lines in a notebook::

    import oipscope
    result = oipscope.find_oips(oipscope.default_model(), "Conv2D_3", maps="all")

TensorFlow is imported on first use of a function, not by ``import oipscope``.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from .errors import ConfigError, DataError, LayerError, ModelError, OipscopeError, OutputError

__version__ = "0.1.0"

_LAZY = {
    "OipConfig": "config",
    "Execution": "config",
    "Status": "status",
    "ascend": "engine",
    "find_oips": "search",
    "run_layer": "runs",
    "MapOip": "results",
    "OipResult": "results",
    "load_dataset": "data",
    "standardize": "data",
    "build_cnn": "cnn",
    "train": "cnn",
    "TrainConfig": "cnn",
    "default_model": "cnn",
    "default_subject": "cnn",
    "InputEncoding": "encoding",
    "Subject": "subject",
    "as_subject": "subject",
    "open_subject": "subject",
    "ImageSet": "imagesets",
    "open_images": "imagesets",
    "embedded_examples": "imagesets",
    "default_layers": "layers",
    "select_layers": "layers",
    "plan_zoo": "plan",
    "run_zoo": "runs",
    "run_classes": "runs",
    "write_gallery": "report",
    "load_model": "models",
    "feature_layers": "models",
    "feature_submodel": "models",
    "layer_activations": "activations",
    "load_image_file": "activations",
    "DatasetExamples": "examples",
    "dataset_examples": "examples",
    "assess_oips": "examples",
    "superstimulus_ratio": "examples",
    "evoked_classes": "examples",
    "pattern_accuracy": "examples",
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


def __getattr__(name: str) -> Any:
    """Import the public API lazily, so ``import oipscope`` does not start TensorFlow."""
    if name in _LAZY:
        value = getattr(import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'oipscope' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
