"""The model under study: loading it safely, how it expects its pixels, its layers, the series' CNN.

- :mod:`.loading`: safe loading of ``.keras``/``.h5`` files, layer lookup, feature sub-models.
- :mod:`.encoding`: the input encoding (standardized, a range, ``preprocess_input`` presets).
- :mod:`.subject`: a model with its encoding and origin, resolved once.
- :mod:`.layers`: which layers to visualize.
- :mod:`.receptive_field`: where a layer's units look, in input pixels.
- :mod:`.cnn`: the series' CNN, its training and the embedded default model.
"""

from .._lazy import lazy_exports

__all__ = ["load_model", "InputEncoding", "Subject", "as_subject", "open_subject", "default_model", "select_layers"]

__getattr__, __dir__ = lazy_exports(__name__, {
    "load_model": "loading", "InputEncoding": "encoding", "Subject": "subject", "as_subject": "subject",
    "open_subject": "subject", "default_model": "cnn", "select_layers": "layers",
})
