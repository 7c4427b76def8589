"""Initial images for the OIP search: map selections and random starting patterns.

Pure numeric builders (NumPy RNG, TensorFlow only for resizing and the shared
per-image standardization), so the same seed always gives the same images.
"""

from __future__ import annotations

import functools

from collections.abc import Iterable, Sequence

import numpy as np

from ..data.datasets import standardize
from ..errors import ConfigError, LayerError

__all__ = ["parse_maps", "default_scales", "scale_noise", "draw_grids", "combine_grids", "fourier_noise", "as_rng"]


def as_rng(rng_or_seed: np.random.Generator | int | None) -> np.random.Generator:
    """Return a NumPy Generator: the given one, or ``default_rng(seed)``."""
    if isinstance(rng_or_seed, np.random.Generator):
        return rng_or_seed
    if rng_or_seed is not None and (isinstance(rng_or_seed, bool) or not isinstance(rng_or_seed, (int, np.integer))):
        raise ConfigError(f"seed must be an integer or a numpy Generator, got {rng_or_seed!r}")
    return np.random.default_rng(rng_or_seed)


def _map_index(token, n_maps: int) -> int:
    try:
        value = int(str(token).strip())
    except ValueError:
        raise ConfigError(f"bad map index {token!r}: expected an integer, a range like '0-15', or 'all'") from None
    if not 0 <= value < n_maps:
        raise LayerError(f"map index {value} is out of range: the layer has {n_maps} maps (0-{n_maps - 1})")
    return value


def parse_maps(spec: str | int | Iterable[int] | None, n_maps: int) -> tuple[int, ...]:
    """Turn a map selection into sorted unique map indices.

    Args:
        spec: ``"all"`` (or None), a string like ``"0-15,40"``, one int, or a list of ints.
        n_maps: number of maps of the layer.

    Raises:
        ConfigError: malformed spec (names the bad part).
        LayerError: an index is outside ``0..n_maps-1``.
    """
    if n_maps < 1:
        raise LayerError(f"the layer has {n_maps} maps")
    if spec is None or (isinstance(spec, str) and spec.strip().lower() == "all"):
        return tuple(range(n_maps))
    indices: list[int] = []
    if isinstance(spec, (int, np.integer)) and not isinstance(spec, bool):
        indices.append(_map_index(spec, n_maps))
    elif isinstance(spec, str):
        parts = [p.strip() for p in spec.split(",")]
        if not spec.strip() or any(not p for p in parts):
            raise ConfigError(f"bad map selection {spec!r}: empty element; use e.g. '0-15,40' or 'all'")
        for part in parts:
            if "-" in part[1:]:
                cut = part.index("-", 1)
                lo_s, hi_s = part[:cut], part[cut + 1 :]
                lo, hi = _map_index(lo_s, n_maps), _map_index(hi_s, n_maps)
                if hi < lo:
                    raise ConfigError(f"bad map range {part!r}: end is below start; write ranges as "
                                      f"start-end with start <= end, e.g. '{hi}-{lo}'")
                indices.extend(range(lo, hi + 1))
            else:
                indices.append(_map_index(part, n_maps))
    else:
        try:
            items = list(spec)
        except TypeError:
            raise ConfigError(f"bad map selection {spec!r}: expected 'all', '0-15,40', or a list of ints") from None
        if not items:
            raise ConfigError("map selection is empty")
        for item in items:
            if isinstance(item, bool) or not isinstance(item, (int, np.integer)):
                raise ConfigError(f"bad map index {item!r}: expected an integer")
            indices.append(_map_index(item, n_maps))
    return tuple(sorted(set(indices)))


def default_scales(height: int) -> tuple[int, ...]:
    """The seed's length scales (3, 7, 14, 28 for 28 pixels) relative to the image size."""
    scales = (max(1, round(height * 3 / 28)), max(1, height // 4), max(1, height // 2), height)
    return tuple(sorted(set(scales)))


@functools.lru_cache(maxsize=64)
def _resize_matrix(size_in: int, size_out: int) -> np.ndarray:
    """(size_out, size_in) matrix of the 1-D antialiased bicubic resize.

    Bicubic resizing is linear and separable, so resizing the unit vectors once
    gives the matrix; applying it is far cheaper than resizing every image.
    """
    import tensorflow as tf

    basis = np.eye(size_in, dtype=np.float32).reshape(size_in, size_in, 1, 1)
    columns = tf.image.resize(basis, (size_out, 1), method="bicubic", antialias=True).numpy()
    return columns[:, :, 0, 0].T.copy()


def _resize(x: np.ndarray, height: int, width: int) -> np.ndarray:
    """Antialiased bicubic resize of (N, h, w, C) images, as ``tf.image.resize`` does it.

    Summed in float64: BLAS orders its sums by the batch size, and float32 would
    carry that order into the last bit, so an image would depend on the images
    resized alongside it.
    """
    rows = _resize_matrix(x.shape[1], height).astype(np.float64)
    cols = _resize_matrix(x.shape[2], width).astype(np.float64)
    return np.einsum("hi,nijc,wj->nhwc", rows, x.astype(np.float64), cols, optimize=True).astype(np.float32)


def scale_noise(
    rng_or_seed: np.random.Generator | int | None,
    batch: int,
    height: int,
    width: int,
    channels: int,
    scales: Sequence[int],
    factors: Sequence[float] | None = None,
    smoothing: bool = False,
) -> np.ndarray:
    """Superpose uniform[-1, 1] grids on several length scales (the seed's initial image).

    Each scale ``s`` draws a grid of ``s`` cells along the height (and
    ``round(s*width/height)`` along the width), upscaled bicubically with
    antialiasing; a scale equal to the image height is used unresized. The grids
    are drawn in scale order from one RNG, weighted by ``factors``, summed,
    optionally smoothed (down to 3/4 size and back, bicubic) and standardized.

    Returns:
        float32 array (batch, height, width, channels), each image mean 0 and std 1,
        except where the summed noise varies less than the standardization floor
        ``1/sqrt(height*width*channels)`` (see :func:`oipscope.data.datasets.standardize`): then
        the std is the noise's std divided by the floor, and 0 for a constant image
        (e.g. only a 1x1 grid has a non-zero factor).

    Raises:
        ConfigError: a scale is < 1 or larger than the image, or factors are
            negative, not finite or do not match the scales.
    """
    rng = as_rng(rng_or_seed)
    scales = tuple(int(s) for s in scales)
    if batch < 1 or height < 1 or width < 1 or channels < 1:
        raise ConfigError(f"bad image batch shape {(batch, height, width, channels)}")
    if not scales:
        raise ConfigError("at least one length scale is needed")
    factors = (0.5,) * len(scales) if factors is None else tuple(float(f) for f in factors)
    if len(factors) != len(scales):
        raise ConfigError(f"{len(factors)} factors given for {len(scales)} scales; give one factor per scale")
    if not all(np.isfinite(factors)):
        raise ConfigError(f"factors must be finite, got {factors}")
    if any(f < 0 for f in factors):
        raise ConfigError(f"factors must be >= 0 (amplitudes of the noise on each scale), got {factors}")
    for s in scales:
        if not 1 <= s <= min(height, width):
            raise ConfigError(f"length scale {s} must be between 1 and the image size {min(height, width)}")
    grids = draw_grids(rng, batch, height, width, channels, scales)
    return combine_grids(grids, np.tile(np.asarray(factors, np.float32), (batch, 1)), height, width, smoothing)


def draw_grids(rng: np.random.Generator, batch: int, height: int, width: int, channels: int,
               scales: Sequence[int]) -> list[np.ndarray]:
    """The raw uniform[-1, 1] grids of :func:`scale_noise`, one (batch, s, s', C) array per scale."""
    out = []
    for s in scales:
        sw = width if s == height else max(1, round(s * width / height))
        out.append(rng.uniform(-1.0, 1.0, (batch, s, sw, channels)).astype(np.float32))
    return out


def combine_grids(grids: Sequence[np.ndarray], factors: np.ndarray, height: int, width: int,
                  smoothing: bool = False) -> np.ndarray:
    """Upscale grids (one array per scale), weight by per-image ``factors`` (N, S), sum, standardize."""
    factors = np.asarray(factors, np.float32)
    total = None
    for k, grid in enumerate(grids):
        if grid.shape[1:3] != (height, width):
            grid = _resize(grid, height, width)
        term = factors[:, k, None, None, None] * grid
        total = term if total is None else total + term
    total = np.asarray(total, np.float32)
    if smoothing:
        small = _resize(total, max(1, (3 * height) // 4), max(1, (3 * width) // 4))
        total = _resize(small, height, width)
    return np.asarray(standardize(total).numpy(), np.float32)


def fourier_noise(
    seed: np.random.Generator | int | None,
    batch: int,
    height: int,
    width: int,
    channels: int,
    alpha: float | Sequence[float] = 1.0,
) -> np.ndarray:
    """Random-phase noise with amplitude ``1/f**alpha`` (no DC term), standardized.

    Larger ``alpha`` gives smoother, longer-wavelength patterns.

    Returns:
        float32 array (batch, height, width, channels).
    """
    rng = as_rng(seed)
    alphas = np.broadcast_to(np.asarray(alpha, np.float64), (batch,))
    if not np.all(np.isfinite(alphas)) or np.any(alphas < 0):
        raise ConfigError(f"fourier alpha must be >= 0, got {alpha}")
    if batch < 1 or height < 1 or width < 1 or channels < 1:
        raise ConfigError(f"bad image batch shape {(batch, height, width, channels)}")
    fy = np.fft.fftfreq(height)[:, None]
    fx = np.fft.rfftfreq(width)[None, :]
    f = np.sqrt(fy**2 + fx**2)
    safe = np.where(f > 0, f, 1.0)
    amp = np.where(f > 0, safe[None] ** (-alphas[:, None, None]), 0.0)  # (batch, h, w')
    phases = rng.uniform(0.0, 2 * np.pi, (batch, channels, height, fx.shape[1]))
    spec = amp[:, None] * np.exp(1j * phases)
    img = np.fft.irfft2(spec, s=(height, width), axes=(-2, -1))
    img = np.transpose(img, (0, 2, 3, 1)).astype(np.float32)
    return np.asarray(standardize(img).numpy(), np.float32)
