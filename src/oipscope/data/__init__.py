"""Images to study: datasets from IDX files (MNIST, Fashion-MNIST) and the user's image sets.

- :mod:`.datasets`: IDX datasets and the per-image standardization.
- :mod:`.imagesets`: folders, ``.npz`` files and named sets, streamed in batches.
"""

from .._lazy import lazy_exports

__all__ = ["DATASETS", "Dataset", "Split", "read_idx", "find_dataset_dir", "load_dataset", "standardize",
           "to_model_input", "ImageSet", "open_images", "embedded_examples"]

__getattr__, __dir__ = lazy_exports(__name__, {
    **{name: "datasets" for name in ("DATASETS", "Dataset", "Split", "read_idx", "find_dataset_dir",
                                     "load_dataset", "standardize", "to_model_input")},
    "ImageSet": "imagesets", "open_images": "imagesets", "embedded_examples": "imagesets",
})
