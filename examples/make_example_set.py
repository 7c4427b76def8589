"""Write the embedded example set, src/oipscope/assets/mnist_test.npz, from the MNIST IDX files.

    python examples/make_example_set.py                 # reads ../shared/data/mnist
    python examples/make_example_set.py PATH/TO/MNIST   # a folder holding t10k-*-ubyte.gz

The file holds the MNIST test split: ``x`` uint8 (10000, 28, 28) and ``y`` uint8 (10000,),
written with ``np.savez_compressed`` (about 1.7 MB). The output is the same for the same input.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from oipscope.data.datasets import read_idx

HERE = Path(__file__).resolve().parent
DEFAULT_SOURCE = HERE.parents[1] / "shared" / "data" / "mnist"
TARGET = HERE.parent / "src" / "oipscope" / "assets" / "mnist_test.npz"


def main(source: Path = DEFAULT_SOURCE, target: Path = TARGET) -> Path:
    """Read the t10k IDX files in ``source`` and write them to ``target``."""
    images = read_idx(source / "t10k-images-idx3-ubyte.gz").astype(np.uint8)
    labels = read_idx(source / "t10k-labels-idx1-ubyte.gz").astype(np.uint8)
    if images.shape != (10000, 28, 28) or labels.shape != (10000,):
        raise SystemExit(f"unexpected MNIST test split: images {images.shape}, labels {labels.shape}")
    np.savez_compressed(target, x=images, y=labels)
    return target


if __name__ == "__main__":
    written = main(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_SOURCE)
    print(f"wrote {written} ({written.stat().st_size / 1e6:.2f} MB)")
