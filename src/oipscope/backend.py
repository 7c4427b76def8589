"""Which numerical backend runs the loops, and what it promises about reproducibility.

A seed gives the same OIPs whichever maps share a batch, whether a run is resumed, chunked or
spread over a cluster. How exactly depends on the kernels TensorFlow runs:

- TensorFlow's own float32 CPU kernels compute every image of a batch by itself:
  OIPs are **bit-identical**.
- oneDNN (TensorFlow's default on CPUs with AVX-512 or AMX; ``TF_ENABLE_ONEDNN_OPTS=1`` turns
  it on elsewhere, ``=0`` off) and GPUs block their arithmetic across the batch, so rounding can
  depend on the batch: OIPs are **equal within a tolerance** (:attr:`Reproducibility.rtol`,
  :attr:`Reproducibility.atol` in pixel units, 0..255).

Example::

    >>> reproducibility().exact   # on a CPU with oneDNN off
    True
"""

from __future__ import annotations

import os
from dataclasses import dataclass

__all__ = ["Reproducibility", "reproducibility", "onednn_enabled"]


@dataclass(frozen=True)
class Reproducibility:
    """What the running backend promises about OIPs computed in different batches.

    Attributes:
        backend: the kernels in use, in words.
        exact: True where OIPs are bit-identical.
        rtol: relative tolerance where they are not.
        atol: absolute tolerance in pixel units (0..255) where they are not.
    """

    backend: str
    exact: bool
    rtol: float = 0.0
    atol: float = 0.0


def onednn_enabled() -> bool:
    """Whether TensorFlow runs oneDNN's CPU kernels in this process (imports TensorFlow)."""
    try:
        from tensorflow.python.util import _pywrap_util_port

        return bool(_pywrap_util_port.IsMklEnabled())
    except (ImportError, AttributeError):  # another TensorFlow build: its documented switch decides
        return os.environ.get("TF_ENABLE_ONEDNN_OPTS", "0") not in ("0", "false", "False")


def _gpu_visible() -> bool:
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))


def reproducibility() -> Reproducibility:
    """The contract of the backend this process runs on."""
    if _gpu_visible():
        return Reproducibility("GPU", exact=False, rtol=1e-3, atol=0.05)
    if onednn_enabled():
        return Reproducibility("oneDNN CPU kernels", exact=False, rtol=1e-4, atol=1e-3)
    return Reproducibility("TensorFlow's float32 CPU kernels", exact=True)
