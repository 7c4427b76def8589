"""How readable an OIP is, in two numbers saved with every OIP.

- **Jitter robustness**: the map's mean activation on the OIP shifted by 4 pixels
  (right, left, down, up and the four diagonals, wrapping around), averaged over
  the 8 shifts, divided by its activation on the OIP itself. A pattern the map
  responds to wherever it lies keeps about 1; a high-frequency pattern that only
  fools the map at one exact position falls towards 0 or below. NaN where the OIP
  does not drive its map (activation ≤ 0).
- **High-frequency share**: the share of the OIP's spectral energy, after removing
  its mean, above half the Nyquist frequency (max(|fy|, |fx|) > 0.25 cycles per
  pixel). White noise has 0.75; smooth strokes have little.

Two more, for comparing methods on a model (the quality benchmark):

- **Share at a bound**: the share of an OIP's pixel values that round to 0 or 255
  once decoded, where a saturating image piles up.
- **Median saturation**: the median HSV saturation of RGB pixels, for OIPs and for
  the data set's images alike: a photograph's is about 0.3-0.5, rainbow noise's near 1.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..config import Execution
from ..ascent.pixels import mean_activations

__all__ = ["SHIFTS", "JITTER_PIXELS", "HF_CUTOFF", "hf_share", "jitter_robustness", "bound_share",
           "median_saturation"]

JITTER_PIXELS = 4
SHIFTS: tuple[tuple[int, int], ...] = tuple(
    (dy * JITTER_PIXELS, dx * JITTER_PIXELS) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dy, dx) != (0, 0))
"""The 8 (dy, dx) shifts of the jitter robustness."""
HF_CUTOFF = 0.25
"""Cycles per pixel above which energy counts as high-frequency (half the Nyquist frequency)."""


def hf_share(images: np.ndarray) -> np.ndarray:
    """The high-frequency share of each image (N, H, W, C) → (N,); NaN for a constant image."""
    x = np.asarray(images, np.float64)
    x = x - x.mean(axis=(1, 2), keepdims=True)
    power = (np.abs(np.fft.fft2(x, axes=(1, 2))) ** 2).sum(axis=3)  # (N, H, W)
    fy = np.abs(np.fft.fftfreq(x.shape[1]))[:, None]
    fx = np.abs(np.fft.fftfreq(x.shape[2]))[None, :]
    high = np.maximum(fy, fx) > HF_CUTOFF
    total = power.sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, (power * high).sum(axis=(1, 2)) / total, np.nan)


def jitter_robustness(submodel, images: np.ndarray, map_indices: Sequence[int],
                      execution: Execution = Execution(), objective="channel") -> np.ndarray:
    """Mean activation over the 8 shifted copies ÷ activation of each image's map, (N,).

    Args:
        submodel: the model from the image input to the layer.
        images: OIPs (N, H, W, C) in the model's input encoding (a shift keeps them in it).
        map_indices: N map indices.
        execution: batch sizes of the forward passes.
        objective: whose primary term is measured (default a map's mean activation).
    """
    images = np.asarray(images, np.float32)
    maps = np.asarray(map_indices, np.int32)
    shifted = np.concatenate([np.roll(images, shift, axis=(1, 2)) for shift in SHIFTS])
    base = mean_activations(submodel, images, maps, execution, objective)
    moved = mean_activations(submodel, shifted, np.tile(maps, len(SHIFTS)), execution, objective)
    moved = moved.reshape(len(SHIFTS), len(images)).mean(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(base > 0, moved / base, np.nan).astype(np.float64)


def bound_share(pixels: np.ndarray) -> float:
    """The share of pixel values (0..255, e.g. decoded OIPs) that round to 0 or 255.

    Example:
        >>> bound_share(np.array([0.2, 100.0, 254.6, 30.0]))
        0.5
    """
    x = np.rint(np.asarray(pixels, np.float64))
    return float(np.mean((x <= 0) | (x >= 255))) if x.size else float("nan")


def median_saturation(pixels: np.ndarray) -> float:
    """The median HSV saturation, (max - min) / max over R, G, B, of RGB pixels (..., 3) in 0..255.

    Black pixels (max 0) count as 0, as HSV has them. Example:
        >>> median_saturation(np.array([[255.0, 0, 0], [100, 100, 100], [200, 100, 100]]))
        0.5
    """
    x = np.clip(np.asarray(pixels, np.float64).reshape(-1, 3), 0, 255)
    top, bottom = x.max(axis=1), x.min(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        saturation = np.where(top > 0, (top - bottom) / top, 0.0)
    return float(np.median(saturation)) if saturation.size else float("nan")
