"""What real images do to a model: activations, dataset examples, Deep Dream.

- :mod:`.activations`: any layer's output for dataset images or image files.
- :mod:`.examples`: the images that drive each map hardest.
- :mod:`.assessment`: OIPs measured against them: superstimulus ratios, evoked classes.
- :mod:`.dream`: Deep Dream, the series' follow-up.
"""

from .._lazy import lazy_exports

__all__ = ["layer_activations", "load_image_file", "DatasetExamples", "dataset_examples", "assess_oips", "dream",
           "DreamConfig"]

__getattr__, __dir__ = lazy_exports(__name__, {
    "layer_activations": "activations", "load_image_file": "activations", "DatasetExamples": "examples",
    "dataset_examples": "examples", "assess_oips": "assessment", "dream": "dream", "DreamConfig": "dream",
})
