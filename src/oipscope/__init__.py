"""oipscope: what do the feature maps of a Keras CNN respond to?"""

from .errors import ConfigError, DataError, LayerError, ModelError, OipscopeError

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "OipscopeError",
    "ConfigError",
    "DataError",
    "LayerError",
    "ModelError",
]
