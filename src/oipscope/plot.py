"""Figures of OIPs, their evolution, loss curves, activations and dataset examples.

Every function builds and returns a new :class:`matplotlib.figure.Figure`
(not registered with pyplot, so nothing piles up in pyplot's figure list and
no backend is chosen here): show it in a notebook, or save it with
``fig.savefig("x.png")``. Single-channel images and maps use one colormap,
``viridis``, throughout. OIPs are shown in pixel units (decoded with their
result's input encoding) with a per-tile robust contrast by default (the
``ROBUST`` and ``100 - ROBUST`` percentiles of each tile), so a few extreme
pixels do not flatten a tile; ``contrast="shared"`` puts every tile on one scale
with a colorbar. Silent or non-finite OIPs are drawn as grey hatched panels
labelled with their status, never as blank squares.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Sequence

import numpy as np
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, NullFormatter
from matplotlib.transforms import offset_copy
from matplotlib.patches import Rectangle

from .errors import ConfigError

__all__ = [
    "CMAP",
    "NotebookFigure",
    "oip_grid",
    "evolution",
    "activation_curves",
    "activation_grid",
    "dataset_examples",
    "map_card",
    "display_image",
    "display_limits",
    "colorize",
    "CONTRASTS",
    "ROBUST",
    "pixel_images",
]

CMAP = "viridis"
"""The colormap of every single-channel image and map."""

ROBUST = 1.0
"""Per-tile contrast: a tile's colour scale runs from this percentile to ``100 - ROBUST``."""

CONTRASTS = ("tile", "shared")
"""``"tile"``: each image its own robust scale (default); ``"shared"``: one scale for all."""


class NotebookFigure(Figure):
    """A :class:`~matplotlib.figure.Figure` that shows itself in Jupyter as PNG.

    The figures here are not registered with pyplot, so Jupyter's inline
    backend never sees them unless pyplot was imported; this makes them show
    up as the value of a cell either way.
    """

    def _repr_png_(self) -> bytes:
        import io

        buf = io.BytesIO()
        self.savefig(buf, format="png", bbox_inches="tight")
        return buf.getvalue()


_MARKED = ("silent", "nonfinite")
_HATCH_FACE = "#d4d4d4"
_HATCH_EDGE = "#8a8a8a"
_MARK = "#ff3b30"  # the strongest-unit rectangle: visible on every viridis colour
_TITLE = 7


# ---- helpers -------------------------------------------------------------------------


def _check_contrast(contrast: str) -> None:
    if contrast not in CONTRASTS:
        raise ConfigError(f"contrast must be one of {', '.join(CONTRASTS)}, got {contrast!r}")


def pixel_images(images, encoding=None) -> list[np.ndarray]:
    """Images in the model's input encoding → pixel units for display (``encoding.decode``).

    Without an encoding (or for per-image standardization) the images stay as they are.
    """
    if encoding is None:
        return [np.asarray(image, np.float32) for image in images]
    return [encoding.decode(image) for image in images]


def display_image(image) -> tuple[np.ndarray, bool]:
    """An image ready for ``imshow``: (H, W) for one channel, or (H, W, 3) RGB in [0, 1].

    Returns:
        (array, is_rgb). Single-channel images keep their values (colour-mapped
        with :data:`CMAP`); RGB images are scaled to [0, 1] between their
        ``ROBUST`` and ``100 - ROBUST`` percentiles (per-tile robust contrast).
    """
    a = np.asarray(image, dtype=np.float32)
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if a.ndim == 2:
        return a, False
    if a.ndim != 3 or a.shape[-1] < 3:
        raise ConfigError(f"cannot display an image of shape {a.shape}; expected (H, W), (H, W, 1) or (H, W, 3)")
    a = a[..., :3]
    finite = np.isfinite(a)
    if not finite.any():
        return np.zeros(a.shape, np.float32), True
    lo, hi = display_limits([a], robust=ROBUST)
    return np.clip(np.nan_to_num((a - lo) / ((hi - lo) or 1.0)), 0.0, 1.0), True


def display_limits(images: Iterable[Any], robust: float | None = None) -> tuple[float, float]:
    """Common (vmin, vmax) over the finite values of several images.

    With ``robust`` (a percentage, e.g. 0.5) the limits are the ``robust`` and
    ``100 - robust`` percentiles instead of min and max, so one outlier image
    does not wash out the others.
    """
    lo, hi = math.inf, -math.inf
    if robust is not None:
        values = [np.asarray(image, dtype=np.float32).reshape(-1) for image in images]
        values = np.concatenate(values) if values else np.zeros(0, np.float32)
        values = values[np.isfinite(values)]
        if values.size:
            lo, hi = (float(v) for v in np.percentile(values, [robust, 100.0 - robust]))
    else:
        for image in images:
            a = np.asarray(image, dtype=np.float32)
            finite = a[np.isfinite(a)]
            if finite.size:
                lo, hi = min(lo, float(finite.min())), max(hi, float(finite.max()))
    if not math.isfinite(lo):
        return 0.0, 1.0
    if hi <= lo:
        hi = lo + 1.0
    return lo, hi


def _oips_of(source) -> list:
    """The MapOips of an OipResult, a single MapOip or a sequence of MapOips."""
    if hasattr(source, "maps") and not hasattr(source, "map_index"):
        return list(source.maps)
    if hasattr(source, "map_index"):
        return [source]
    return list(source)


def _select(oips: list, maps) -> list:
    """The OIPs of the selected map indices, in their original order."""
    if maps is None:
        return oips
    available = sorted({int(m.map_index) for m in oips})
    if isinstance(maps, str):
        from .initial import parse_maps

        wanted = set(parse_maps(maps, (max(available) + 1) if available else 1))
    elif isinstance(maps, (int, np.integer)) and not isinstance(maps, bool):
        wanted = {int(maps)}
    else:
        wanted = {int(m) for m in maps}
    missing = sorted(wanted.difference(available))
    if missing:
        shown = ", ".join(map(str, available[:20])) + (" ..." if len(available) > 20 else "")
        raise ConfigError(f"no OIP for map(s) {missing}; the result has maps {shown}")
    return [m for m in oips if int(m.map_index) in wanted]


def _bare(ax) -> None:
    ax.set_xticks([])
    ax.set_yticks([])


def _marked_panel(ax, text: str, aspect: float = 1.0, fontsize: float = 8) -> None:
    """A grey hatched panel with ``text`` in the middle (silent/nonfinite OIPs)."""
    _bare(ax)
    ax.set_facecolor(_HATCH_FACE)
    ax.add_patch(Rectangle((0, 0), 1, 1, transform=ax.transAxes, facecolor=_HATCH_FACE,
                           edgecolor=_HATCH_EDGE, hatch="///", linewidth=0, zorder=0))
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", fontsize=fontsize,
            fontweight="bold", color="#333333", zorder=2,
            bbox={"boxstyle": "round,pad=0.25", "facecolor": "white", "edgecolor": "none", "alpha": 0.85})
    ax.set_box_aspect(aspect)
    for spine in ax.spines.values():
        spine.set_edgecolor(_HATCH_EDGE)
    ax.set_gid(f"oip-{text}")


def _show(ax, image, vmin=None, vmax=None):
    """imshow an image (viridis for one channel) without ticks; returns the AxesImage."""
    a, rgb = display_image(image)
    im = ax.imshow(a, cmap=None if rgb else CMAP, vmin=None if rgb else vmin, vmax=None if rgb else vmax,
                   interpolation="nearest")
    _bare(ax)
    return im


def _draw_oip(ax, oip, vmin, vmax, fontsize: float = 8, image=None):
    """The OIP image (or ``image``, e.g. in pixel units), or a hatched panel for silent/nonfinite
    maps; returns the AxesImage or None."""
    if oip.status in _MARKED:
        h, w = np.asarray(oip.image).shape[:2]
        _marked_panel(ax, oip.status, h / w, fontsize)
        return None
    return _show(ax, oip.image if image is None else image, vmin, vmax)


def _colorbar(fig: Figure, mappable, rect, label: str):
    cax = fig.add_axes(rect)
    bar = fig.colorbar(mappable, cax=cax)
    bar.set_label(label, fontsize=8)
    bar.ax.tick_params(labelsize=7)
    return bar


def _grid_figure(nrows: int, ncols: int, panel: float, title_h: float, right: float, top: float,
                 left: float = 0.15, bottom: float = 0.15, gap: float = 0.12):
    """A figure with a fixed-size grid of panels (inches), fast to lay out for many panels."""
    width = left + ncols * panel + (ncols - 1) * gap + right
    height = top + nrows * (panel + title_h) + (nrows - 1) * gap + bottom
    fig = NotebookFigure(figsize=(width, height))
    axes = []
    for r in range(nrows):
        row = []
        for c in range(ncols):
            x0 = left + c * (panel + gap)
            y0 = height - top - (r + 1) * (panel + title_h) - r * gap
            row.append(fig.add_axes((x0 / width, y0 / height, panel / width, panel / height)))
        axes.append(row)
    return fig, axes, width, height


def _activation_after(oip, step: int) -> float:
    """The loss (mean activation) after ``step``: the history entry before the next step."""
    hist = np.asarray(oip.activation_history).reshape(-1)
    if 0 <= step + 1 < hist.size:
        return float(hist[step + 1])
    return float(oip.activation)


def _frame_parts(oip) -> list[tuple[np.ndarray, str, str]]:
    """(image, "step s", "loss x.xx") per snapshot; the final OIP if there are none."""
    snaps = np.asarray(oip.snapshots)
    steps = tuple(oip.snapshot_steps)
    if snaps.ndim == 4 and len(snaps) and len(steps) == len(snaps):
        return [(snaps[i], f"step {s}", f"loss {_activation_after(oip, s):.2f}") for i, s in enumerate(steps)]
    return [(np.asarray(oip.image), "final", f"loss {float(oip.activation):.2f}")]


def _frames(oip) -> list[tuple[np.ndarray, str]]:
    return [(f, f"{a}\n{b}") for f, a, b in _frame_parts(oip)]


def _label(oip) -> str:
    return f"map {int(oip.map_index)}"


# ---- public figures ------------------------------------------------------------------


def oip_grid(result, maps=None, ncols: int | None = None, *, title: str | None = None,
             contrast: str = "tile") -> Figure:
    """The OIPs of a layer in a grid, each titled "map i / act x.xx / status".

    Args:
        result: an :class:`~oipscope.results.OipResult` (or a list of MapOips).
        maps: map indices to show ("0-7,12", an int or a list); default all.
        ncols: panels per row; default about the square root of the count.
        title: figure title; default "model · layer".
        contrast: ``"tile"`` (default): each OIP on its own robust scale;
            ``"shared"``: all on one scale, shown in a colorbar.

    OIPs are shown in pixel units (``result.encoding.decode``). Silent and
    non-finite maps are grey hatched panels with their status written on them.
    """
    _check_contrast(contrast)
    encoding = getattr(result, "encoding", None)
    oips = _select(_oips_of(result), maps)
    if not oips:
        raise ConfigError("no OIPs to show: the result is empty")
    n = len(oips)
    ncols = int(ncols) if ncols else min(n, max(1, math.ceil(math.sqrt(n * 1.4))))
    if ncols < 1:
        raise ConfigError(f"ncols must be >= 1, got {ncols}")
    nrows = math.ceil(n / ncols)
    pixels = pixel_images([m.image for m in oips], encoding)
    shown = [p for p, m in zip(pixels, oips) if m.status not in _MARKED]
    vmin, vmax = display_limits(shown)
    shared = contrast == "shared"
    fig, axes, width, height = _grid_figure(nrows, ncols, panel=1.5, title_h=0.22, right=0.95 if shared else 0.2,
                                            top=0.45)
    im = None
    for k, ax in enumerate(a for row in axes for a in row):
        if k >= n:
            fig.delaxes(ax)
            continue
        oip = oips[k]
        limits = (vmin, vmax) if shared else display_limits([pixels[k]], robust=ROBUST)
        img = _draw_oip(ax, oip, *limits, image=pixels[k])
        im = im or img
        ax.set_title(f"{_label(oip)} / act {float(oip.activation):.2f} / {oip.status}", fontsize=6.5, pad=2)
    if title is None and hasattr(result, "layer_name"):
        title = f"{result.model_name} · {result.layer_name}"
    if title:
        fig.suptitle(title, fontsize=10, y=1 - 0.12 / height, va="top")
    if im is not None and shared:
        unit = encoding.display_unit if encoding is not None else "standardized value"
        _colorbar(fig, im, ((width - 0.75) / width, 0.15 / height + 0.05 * (1 - 0.6 / height),
                            0.12 / width, 0.9 * (1 - 0.6 / height)), unit)
    return fig


def _evolution_into(fig: Figure, axes: Sequence, oip, fontsize: float = 7, encoding=None):
    frames = _frames(oip)
    pixels = pixel_images([f for f, _ in frames], encoding)
    vmin, vmax = display_limits(pixels, robust=ROBUST)
    im = None
    for ax, frame, (_, title) in zip(axes, pixels, frames):
        im = _show(ax, frame, vmin, vmax)
        ax.set_title(title, fontsize=fontsize, pad=2)
    return im


def evolution(map_oip, encoding=None) -> Figure:
    """The snapshots of one OIP's ascent in a strip, titled with step and loss.

    The loss (the map's mean activation, which the ascent maximizes) in each
    title is the one reached after that step. All snapshots share one robust
    colour scale, in pixel units when the result's ``encoding`` is given.
    """
    n = len(_frames(map_oip))
    fig, axes, width, height = _grid_figure(1, n, panel=1.5, title_h=0.35, right=0.95, top=0.4)
    im = _evolution_into(fig, axes[0], map_oip, encoding=encoding)
    fig.suptitle(f"{_label(map_oip)}: evolution ({map_oip.status}, start {map_oip.start})",
                 fontsize=9, y=1 - 0.08 / height, va="top")
    unit = encoding.display_unit if encoding is not None else "standardized value"
    _colorbar(fig, im, ((width - 0.75) / width, 0.15 / height, 0.12 / width, 1.5 / height), unit)
    return fig


def _loss_into(ax, oips: list, legend: bool = True, fontsize: float = 7):
    n = len(oips)
    cmap = ScalarMappable(norm=Normalize(0, max(n - 1, 1)), cmap=CMAP)
    for k, oip in enumerate(oips):
        hist = np.asarray(oip.activation_history, dtype=np.float64).reshape(-1)
        color = cmap.to_rgba(k) if n > 1 else "#31688e"
        style = ":" if oip.status in _MARKED else "-"
        ax.plot(np.arange(hist.size), hist, style, color=color, lw=1.0, label=_label(oip))
        c = int(oip.converged_step)
        if 0 <= c < hist.size:
            ax.plot([c], [hist[c]], "o", color=color, ms=3)
    ax.set_xlabel("step", fontsize=fontsize)
    ax.set_ylabel("loss (mean activation)", fontsize=fontsize)
    ax.tick_params(labelsize=fontsize - 1)
    ax.grid(alpha=0.3, lw=0.5)
    if legend and 1 < n <= 32:
        ax.legend(fontsize=fontsize - 1, ncol=math.ceil(n / 16), loc="upper left", bbox_to_anchor=(1.01, 1.0),
                  borderaxespad=0, frameon=False)


def activation_curves(result, maps=None, *, title: str | None = None) -> Figure:
    """Loss (mean activation) before each ascent step, one curve per OIP.

    Args:
        result: an OipResult, a list of MapOips or one MapOip.
        maps: map indices to show; default all.

    Up to 32 curves get a legend by map index; more are coloured by map index
    with a colorbar. A dot marks the convergence step; silent maps are dotted.
    """
    oips = _select(_oips_of(result), maps)
    if not oips:
        raise ConfigError("no OIPs to show: the result is empty")
    n = len(oips)
    fig = NotebookFigure(figsize=(7.5 if 1 < n <= 32 else 6.4, 4.0))
    right = 0.97
    if 1 < n <= 32:
        right = 0.78 if n <= 16 else 0.68
    elif n > 32:
        right = 0.84
    ax = fig.add_axes((0.11, 0.12, right - 0.11, 0.78))
    _loss_into(ax, oips)
    if n > 32:
        idx = [int(m.map_index) for m in oips]
        mappable = ScalarMappable(norm=Normalize(min(idx), max(idx)), cmap=CMAP)
        _colorbar(fig, mappable, (0.87, 0.12, 0.025, 0.78), "map index")
    if title is None:
        title = f"{result.layer_name}: loss curves" if hasattr(result, "layer_name") else (
            f"{_label(oips[0])}: loss curve" if n == 1 else "loss curves")
    ax.set_title(title, fontsize=9)
    return fig


_FCP_PX_PER_INCH = 100.0  # mosaic pixels per inch: one screen pixel per mosaic pixel at dpi 100
_FCP_MAX_WIDTH = 16.0  # inches; wider mosaics are drawn at a finer scale
_FCP_ASPECT = 1.5  # preferred width / height of the whole figure
_FCP_MAP_GAP = 2  # px between maps
_FCP_BLOCK_GAP = 36  # px between the blocks of two images
_FCP_CAPTION = 18  # px band above a block for its caption
_FCP_LABEL_PT = 6.5  # map-index labels
_FCP_MIN_INPUT = 84  # px: the input is at least this tall, however small its grid
_FCP_MARGINS = (0.1, 1.0, 0.1, 0.1)  # inches: left, right (colorbar), top, bottom
_FCP_TITLE = 0.3  # inches above the mosaic for the figure title


class _FcpLayout:
    """Where an :func:`activation_grid` mosaic puts each part (pixels, (row, col) of top-left corners).

    Each image is a block: its caption above, its input on the left, then its maps
    in a ``grid`` of rows × columns, map ``j`` at ``panels[b, j]``. The blocks sit in
    a ``blocks`` grid of their own, chosen so the figure is not much wider than high.
    Read-only once built.
    """

    shape: tuple[int, int]  # mosaic (height, width)
    grid: tuple[int, int]  # map rows, map columns per image
    blocks: tuple[int, int]  # block rows, block columns
    zoom: int  # each map pixel is zoom × zoom mosaic pixels
    map_size: tuple[int, int]  # a zoomed map (height, width)
    panels: np.ndarray  # (n_images, n_maps, 2)
    inputs: tuple[tuple[int, int, int, int], ...]  # (top, left, height, width) of each input
    captions: tuple[tuple[int, int], ...]  # (row, col) of each caption's baseline start
    row_labels: tuple[tuple[int, int, int, int], ...]  # (block, grid row, row, col): right end of a row's label
    label_band: int  # px above each map row for per-map labels (0: labels at the row's left)
    px_per_inch: float

    def __init__(self, **parts) -> None:
        self.__dict__.update(parts)

    def __setattr__(self, name: str, value) -> None:
        raise AttributeError(f"an _FcpLayout is read-only (tried to set {name})")

    def figure_size(self, title: bool) -> tuple[float, float]:
        left, right, top, bottom = _FCP_MARGINS
        h, w = self.shape
        return (left + w / self.px_per_inch + right,
                top + (_FCP_TITLE if title else 0.0) + h / self.px_per_inch + bottom)


def _fcp_input_size(image_hw: tuple[int, int], height: int) -> tuple[int, int]:
    """The input's shown size: an integer zoom to about ``height`` (or shrunk to it)."""
    ih, iw = image_hw
    scale = max(1, round(height / ih)) if ih <= height else height / ih
    return max(1, round(ih * scale)), max(1, round(iw * scale))


def _fcp_layout(n: int, map_hw: tuple[int, int], n_maps: int, image_hw: tuple[int, int] | None,
                captions: bool, label_digits: int, per_map_labels: bool,
                px_per_inch: float = _FCP_PX_PER_INCH) -> _FcpLayout:
    """The layout of ``n`` images' maps (pure arithmetic, no drawing)."""
    h, w = map_hw
    gcols = math.ceil(math.sqrt(n_maps))
    grows = math.ceil(n_maps / gcols)
    scale = px_per_inch / _FCP_PX_PER_INCH
    zoom = max(1, round(min(56.0, max(24.0, 300.0 / gcols)) * scale / max(h, w)))
    mh, mw = h * zoom, w * zoom
    gap = max(1, round(_FCP_MAP_GAP * scale))
    band = round(11 * scale) if per_map_labels else 0
    grid_h = grows * (mh + gap + band) - gap
    grid_w = gcols * (mw + gap) - gap
    gutter = (round((label_digits * 0.62 * _FCP_LABEL_PT / 72 * px_per_inch) + 6 * scale)
              if not per_map_labels else round(8 * scale))
    if image_hw is not None:
        ih, iw = _fcp_input_size(image_hw, max(grid_h, round(_FCP_MIN_INPUT * scale)))
    else:
        ih, iw, gutter = 0, 0, (gutter if not per_map_labels else 0)
    caption = round(_FCP_CAPTION * scale) if captions else 0
    body_h = max(grid_h, ih)
    block_h, block_w = caption + body_h, iw + gutter + grid_w
    bgap = round(_FCP_BLOCK_GAP * scale)

    def size(bcols: int) -> tuple[int, int]:
        brows = math.ceil(n / bcols)
        return brows * (block_h + bgap) - bgap, bcols * (block_w + bgap) - bgap

    def aspect(bcols: int) -> float:
        mh_, mw_ = size(bcols)
        left, right, top, bottom = _FCP_MARGINS
        return (left + mw_ / px_per_inch + right) / (top + _FCP_TITLE + mh_ / px_per_inch + bottom)

    bcols = min(range(1, n + 1), key=lambda c: (abs(math.log(aspect(c) / _FCP_ASPECT)), c))
    brows = math.ceil(n / bcols)
    shape = size(bcols)
    panels = np.zeros((n, n_maps, 2), np.int64)
    inputs, caption_at, row_labels = [], [], []
    j = np.arange(n_maps)
    for b in range(n):
        top, left = (b // bcols) * (block_h + bgap), (b % bcols) * (block_w + bgap)
        caption_at.append((top + caption - round(5 * scale), left))
        gtop, gleft = top + caption + (body_h - grid_h) // 2, left + iw + gutter
        panels[b, :, 0] = gtop + (j // gcols) * (mh + gap + band) + band
        panels[b, :, 1] = gleft + (j % gcols) * (mw + gap)
        inputs.append((top + caption + (body_h - ih) // 2, left, ih, iw))
        if not per_map_labels:
            for r in range(grows):
                row_labels.append((b, r, gtop + r * (mh + gap) + mh // 2, gleft - round(3 * scale)))
    return _FcpLayout(shape=shape, grid=(grows, gcols), blocks=(brows, bcols), zoom=zoom, map_size=(mh, mw),
                      panels=panels, inputs=tuple(inputs), captions=tuple(caption_at),
                      row_labels=tuple(row_labels), label_band=band, px_per_inch=px_per_inch)


def activation_grid(activations, images=None, titles: Sequence[str] | None = None, *, maps=None,
                    title: str | None = None) -> Figure:
    """Activations of several images as feature-map grids, each beside its input image.

    Every image gets a block: its title as caption, the input on the left (at the
    grid's height), and its maps in a wrapped grid of ``ceil(sqrt(n_maps))``
    columns (8 × 8 for 64 maps), read row by row; the number at the left of a
    row is the index of its first map (for a selection of ``maps`` that is not
    a contiguous range, each map is labelled instead). The blocks themselves
    are arranged in a grid so that the figure stays about 1.5 times as wide as
    it is high.

    Args:
        activations: (N, h, w, n_maps) layer outputs (one image: (h, w, n_maps);
            dense layers (N, units) are shown as 1×1 maps).
        images: optional input images (N, H, W[, C]) shown beside their maps.
        titles: optional caption of each image (e.g. its name and class).
        maps: optional map indices to show, in this order; default all.
        title: optional figure title.

    All activations share one colour scale, shown in one colorbar. Everything
    is one mosaic image drawn with a single ``imshow``, so hundreds of maps
    for several images draw in well under a second.

    Example:
        >>> fig = activation_grid(np.random.rand(4, 11, 11, 64), np.random.rand(4, 28, 28))
        >>> fig.savefig("fcp.png")  # doctest: +SKIP
    """
    a = np.asarray(activations, dtype=np.float32)
    if a.ndim == 3:
        a = a[None]
    elif a.ndim == 2:
        a = a[:, None, None, :]
    if a.ndim != 4 or a.shape[0] == 0:
        raise ConfigError(f"activations must be (N, h, w, n_maps), got shape {np.shape(activations)}")
    n, h, w, n_maps = a.shape
    cols = list(range(n_maps)) if maps is None else [int(m) for m in np.atleast_1d(maps)]
    bad = [m for m in cols if not 0 <= m < n_maps]
    if bad:
        raise ConfigError(f"maps {bad} out of range: the activations have {n_maps} maps")
    if not cols:
        raise ConfigError("maps selects no map; give at least one map index")
    if images is not None:
        images = np.asarray(images)
        if images.ndim == 2:
            images = images[None]
        if len(images) != n:
            raise ConfigError(f"{len(images)} images for {n} rows of activations; give one image per row")
    if titles is not None and len(titles) != n:
        raise ConfigError(f"{len(titles)} titles for {n} rows; give one title per image")

    contiguous = cols == list(range(cols[0], cols[0] + len(cols)))
    gcols = math.ceil(math.sqrt(len(cols)))
    digits = len(str(cols[-1 - (len(cols) - 1) % gcols])) if contiguous else 1
    args = (n, (h, w), len(cols), None if images is None else images.shape[1:3], titles is not None,
            digits, not contiguous)
    layout = _fcp_layout(*args)
    for _ in range(3):  # very large maps or inputs: more mosaic pixels per inch, to keep the figure on a page
        if layout.figure_size(bool(title))[0] <= _FCP_MAX_WIDTH * 1.05:
            break
        layout = _fcp_layout(*args, px_per_inch=layout.shape[1] / (_FCP_MAX_WIDTH - sum(_FCP_MARGINS[:2])))

    vmin, vmax = display_limits([a[..., cols]])
    vmin = min(vmin, 0.0)
    mosaic = np.ones((*layout.shape, 3), np.float32)
    z, (mh, mw) = layout.zoom, layout.map_size
    rgb = colorize(a[..., cols].transpose(0, 3, 1, 2).reshape(-1, w), vmin, vmax).reshape(n, len(cols), h, w, 3)
    rgb = rgb.repeat(z, axis=2).repeat(z, axis=3)
    for b in range(n):
        for j, (y, x) in enumerate(layout.panels[b]):
            mosaic[y:y + mh, x:x + mw] = rgb[b, j]
        if images is not None:
            top, left, ih, iw = layout.inputs[b]
            lo, hi = display_limits([images[b]])
            shown = colorize(images[b], lo, hi)
            rows = (np.arange(ih) * shown.shape[0] // ih)
            columns = (np.arange(iw) * shown.shape[1] // iw)
            mosaic[top:top + ih, left:left + iw] = shown[rows][:, columns]

    fig_w, fig_h = layout.figure_size(bool(title))
    left, _, _, bottom = _FCP_MARGINS
    mosaic_h, mosaic_w = (s / layout.px_per_inch for s in layout.shape)
    fig = NotebookFigure(figsize=(fig_w, fig_h))
    ax = fig.add_axes((left / fig_w, bottom / fig_h, mosaic_w / fig_w, mosaic_h / fig_h))
    ax.imshow(mosaic, interpolation="nearest" if layout.px_per_inch >= _FCP_PX_PER_INCH else "antialiased")
    ax.set_axis_off()
    label = {"fontsize": _FCP_LABEL_PT, "color": "#555555", "clip_on": False}
    for _, r, y, x in layout.row_labels:
        ax.text(x, y, str(cols[r * layout.grid[1]]), ha="right", va="center", **label)
    if layout.label_band:
        for b in range(n):
            for j, (y, x) in enumerate(layout.panels[b]):
                ax.text(x + mw / 2, y - 1, str(cols[j]), ha="center", va="bottom", **label)
    if titles is not None:
        for (y, x), text in zip(layout.captions, titles):
            ax.text(x, y, str(text), ha="left", va="baseline", fontsize=8, clip_on=False)
    scale = ScalarMappable(Normalize(vmin, vmax), CMAP)
    bar_h = min(mosaic_h, 3.5)
    _colorbar(fig, scale, ((fig_w - 0.8) / fig_w, (bottom + mosaic_h - bar_h) / fig_h, 0.12 / fig_w, bar_h / fig_h),
              "activation")
    if title:
        fig.suptitle(title, fontsize=9, y=1 - 0.08 / fig_h, va="top")
    return fig


def _map_grid_shape(examples, map_shape):
    shape = map_shape if map_shape is not None else getattr(examples, "map_shape", None)
    if shape is None:
        return None
    shape = tuple(int(s) for s in tuple(shape)[-3:-1]) if len(tuple(shape)) >= 3 else tuple(int(s) for s in shape)
    if len(shape) != 2 or min(shape) < 1:
        raise ConfigError(f"map_shape must be (rows, cols) of the map grid, got {map_shape!r}")
    return shape


def _lookup(container, index: int, what: str):
    try:
        return container[int(index)]
    except (IndexError, KeyError):
        raise ConfigError(
            f"no {what} for dataset index {int(index)}: pass the same images/labels the examples were computed on"
        ) from None


def _small(value: float) -> str:
    """Two decimals, or two significant digits for values too small to show that way."""
    return f"{value:.2f}" if value == 0 or abs(value) >= 0.01 else f"{value:.2g}"


def _firing_note(examples, map_index: int, shown_values) -> str:
    """'' when every shown example drives the map, else how many images do at all.

    A mean activation of exactly 0 means the map is off on the whole image
    (ReLU); such images fill the top-k only by tie order and are not shown.
    """
    if all(float(v) != 0 for v in shown_values):
        return ""
    firing = int(round(float(examples.fire_fraction[map_index]) * examples.n_images))
    if firing == 0 or float(shown_values[0]) == 0:
        return "none makes the map fire"
    return f"fires on only {firing} of {examples.n_images} images"


def _examples_into(axes: Sequence, examples, map_index: int, images, map_shape, labels, class_names,
                   fontsize: float = 7, names=None) -> None:
    idx = examples.top_indices[map_index]
    vals = examples.top_values[map_index]
    pos = examples.top_positions[map_index]
    grid = _map_grid_shape(examples, map_shape)
    for j, ax in enumerate(axes):
        if j >= len(idx):
            ax.set_visible(False)
            continue
        if float(vals[j]) == 0:  # the map is off on this image: not an example of what drives it
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_facecolor("#f0f0f0")
            ax.text(0.5, 0.5, "off", ha="center", va="center", color="#888888", fontsize=fontsize,
                    transform=ax.transAxes)
            continue
        image = np.asarray(_lookup(images, idx[j], "image"))
        _show(ax, image)
        h, w = image.shape[:2]
        title = f"{_item_name(names, idx[j])} / {_small(float(vals[j]))}"
        label = int(_lookup(labels, idx[j], "label")) if labels is not None else -1
        if label >= 0:  # -1: no label for this image
            name = class_names[label] if class_names is not None and 0 <= label < len(class_names) else str(label)
            title += f"\n{name}"
        ax.set_title(title, fontsize=fontsize, pad=2)
        if grid is not None and grid != (1, 1) and float(vals[j]) > 0:
            sy, sx = h / grid[0], w / grid[1]
            r, c = int(pos[j][0]), int(pos[j][1])
            ax.add_patch(Rectangle((c * sx - 0.5, r * sy - 0.5), sx, sy, fill=False, edgecolor=_MARK,
                                   linewidth=1.5))


def dataset_examples(examples, map_index: int, images, *, map_shape=None, labels=None,
                     class_names: Sequence[str] | None = None, k: int | None = None,
                     ncols: int | None = None, names=None) -> Figure:
    """The dataset images that drive a map hardest, strongest unit marked.

    Args:
        examples: the layer's :class:`~oipscope.examples.DatasetExamples`.
        map_index: the map.
        images: the raw dataset images the examples were computed on (N, H, W[, C]),
            or a mapping from dataset index to image.
        map_shape: (rows, cols) of the map grid (or the layer's output shape), to
            place the marker; default ``examples.map_shape`` if present. Without
            it no marker is drawn.
        labels, class_names: optional labels (array or mapping) and class names
            for the titles.
        k: show only the best k; default all kept.
        ncols: panels per row; default all in one row (up to 10).
        names: image names (e.g. ``image_set.item_name``, or an array/mapping by index);
            default ``#index``.

    Each panel is titled "image name (or #index) / mean activation"; the red square is
    the strongest unit of the map, scaled from the map grid to the image by
    (H / map rows, W / map cols). Images where the map does not fire get no square.
    """
    n_maps = examples.top_indices.shape[0]
    if not 0 <= int(map_index) < n_maps:
        raise ConfigError(f"map {map_index} out of range: the examples have {n_maps} maps")
    total = examples.top_indices.shape[1]
    k = total if k is None else max(1, min(int(k), total))
    ncols = int(ncols) if ncols else min(k, 10)
    nrows = math.ceil(k / ncols)
    title_h = 0.38 if labels is not None else 0.25
    fig, axes, width, height = _grid_figure(nrows, ncols, panel=1.2, title_h=title_h, right=0.15, top=0.4)
    flat = [a for row in axes for a in row]
    _examples_into(flat[:k], examples, int(map_index), images, map_shape, labels, class_names, names=names)
    for ax in flat[k:]:
        fig.delaxes(ax)
    note = _firing_note(examples, int(map_index), examples.top_values[int(map_index), :k])
    note = f" ({note})" if note else ""
    fig.suptitle(f"{examples.layer_name} · map {int(map_index)}: top {k} of {examples.n_images} images{note}",
                 fontsize=9, y=1 - 0.08 / height, va="top")
    return fig


def _ratio_text(ratio) -> str:
    if ratio is None:
        return "not assessed"
    ratio = float(ratio)
    if not math.isfinite(ratio):
        return "n/a (silent on data)"
    return f"{ratio:.2f}"


def colorize(image, vmin: float | None = None, vmax: float | None = None) -> np.ndarray:
    """An image as RGB float32 in [0, 1]: one channel through :data:`CMAP` on [vmin, vmax]
    (default: the image's own robust limits; non-finite pixels grey), RGB robustly scaled."""
    import matplotlib

    a, is_rgb = display_image(image)
    if is_rgb:
        return np.asarray(a, np.float32)
    if vmin is None or vmax is None:
        vmin, vmax = display_limits([a], robust=ROBUST)
    bad = ~np.isfinite(a)
    out = matplotlib.colormaps[CMAP](Normalize(vmin, vmax, clip=True)(np.where(bad, vmin, a)))[..., :3]
    out[bad] = 0.6
    return out.astype(np.float32)


def _strip(frames: Sequence[np.ndarray], vmin: float, vmax: float, gap: int) -> np.ndarray:
    """Frames side by side as one RGB array (white gaps); single channels colour-mapped with CMAP."""
    rgb = [colorize(frame, vmin, vmax) for frame in frames]
    h, w = rgb[0].shape[:2]
    out = np.ones((h, len(rgb) * w + (len(rgb) - 1) * gap, 3), np.float32)
    for j, a in enumerate(rgb):
        out[:, j * (w + gap): j * (w + gap) + w] = a
    return out


class _Card:
    """A map card laid out once and repainted per map (much faster than a new figure per map).

    The layout depends only on the number of snapshots, of dataset examples and of
    classes, which are the same for all maps of one result.
    """

    def __init__(self, frame_shape: tuple[int, int], steps: tuple[str, ...], n_examples: int = 0,
                 example_shape: tuple[int, int] | None = None, n_classes: int = 0,
                 with_labels: bool = False, dpi: float | None = None, blit: bool = False,
                 limits: tuple[float, float] | None = None, class_names: Sequence[str] | None = None,
                 unit: str = "standardized value"):
        n_frames = len(steps)
        self.steps = tuple(steps)
        self.n_frames, self.n_examples, self.n_classes = n_frames, n_examples, n_classes
        self.blit = blit
        self.limits = limits
        self._background = None
        fh, fw = frame_shape
        panel = 0.95
        slots = max(n_frames, n_examples, 1)
        self.gap = max(1, fw // 8)
        strip_ratio = lambda n, w, g: (n * w + (n - 1) * g) / fh  # noqa: E731
        width = 10.4
        panel = min(panel, (width - 0.4) / max(strip_ratio(slots, fw, self.gap), 1e-9))
        top_title, top_h, top_gap = 0.45, 1.9, 0.42
        label_h, titles_h = 0.22, 0.32
        ex_titles_h = 0.42 if with_labels else 0.3
        height = top_title + top_h + top_gap + label_h + titles_h + panel
        if n_examples:
            height += 0.15 + label_h + ex_titles_h + panel
        height += 0.12
        self.fig = fig = NotebookFigure(figsize=(width, height), dpi=dpi)
        fx = lambda x: x / width  # noqa: E731
        fy = lambda y: y / height  # noqa: E731
        self.title = fig.text(0.5, 1 - fy(0.08), "", ha="center", va="top", fontsize=11, fontweight="bold")

        # OIP with its colorbar (shared with the evolution strip)
        y0 = height - top_title - top_h
        self.ax_oip = ax = fig.add_axes((fx(0.2), fy(y0), fx(top_h), fy(top_h)))
        ax.set_title("OIP" if limits is not None or not blit else f"OIP ({unit})", fontsize=8, pad=2)
        lo, hi = limits if limits is not None else (0.0, 1.0)
        self.oip_image = ax.imshow(np.zeros(frame_shape), cmap=CMAP, vmin=lo, vmax=hi, interpolation="nearest")
        _bare(ax)
        self.hatch = Rectangle((0, 0), 1, 1, transform=ax.transAxes, facecolor=_HATCH_FACE, edgecolor=_HATCH_EDGE,
                               hatch="///", linewidth=0, zorder=3)
        ax.add_patch(self.hatch)
        self.hatch_text = ax.text(0.5, 0.5, "", transform=ax.transAxes, ha="center", va="center", fontsize=11,
                                  fontweight="bold", color="#333333", zorder=4,
                                  bbox={"boxstyle": "round,pad=0.25", "facecolor": "white", "edgecolor": "none",
                                        "alpha": 0.85})
        # Each card on its own colour scale (no limits) and blitted: a static 0..1 bar whose three tick
        # labels are written per card, so the bar is not redrawn (and re-ticked) for every map.
        self._free_scale = limits is None and blit
        bar_rect = (fx(0.3 + top_h), fy(y0), fx(0.1), fy(top_h))
        if self._free_scale:
            self.colorbar = _colorbar(fig, ScalarMappable(Normalize(0.0, 1.0), CMAP), bar_rect, unit)
            self.colorbar.set_ticks([0.0, 0.5, 1.0])
            self.colorbar.ax.yaxis.set_major_formatter(NullFormatter())
            self.colorbar.ax.set_ylabel("")  # the unit goes into the OIP's title: the labels need the room
        else:
            self.colorbar = _colorbar(fig, self.oip_image, bar_rect, unit)
        self._clim = (lo, hi)

        # loss curve
        x = 0.3 + top_h + 1.2
        self.ax_loss = ax = fig.add_axes((fx(x), fy(y0), fx(2.3), fy(top_h)))
        (self.loss_line,) = ax.plot([0, 1], [0, 0], "-", color="#31688e", lw=1.2)
        (self.conv_dot,) = ax.plot([0], [0], "o", color="#35b779", ms=4)
        # title and axis labels as figure texts: they stay in the static background
        fig.text(fx(x + 1.15), fy(y0 + top_h + 0.03), "loss curve", fontsize=8, ha="center", va="bottom")
        fig.text(fx(x + 1.15), fy(y0 - 0.24), "step", fontsize=7, ha="center", va="top")
        fig.text(fx(x - 0.5), fy(y0 + top_h / 2), "loss (mean activation)", fontsize=7, ha="center", va="center",
                 rotation=90)
        ax.tick_params(labelsize=6)
        ax.yaxis.set_major_locator(MaxNLocator(4))
        ax.xaxis.set_major_locator(MaxNLocator(4, integer=True))
        ax.grid(alpha=0.3, lw=0.5)
        if blit:  # tick labels drawn by _PilText (Agg text is the slow part of a card)
            ax.xaxis.set_major_formatter(NullFormatter())
            ax.yaxis.set_major_formatter(NullFormatter())

        # evoked class probabilities
        x += 2.3 + 0.45
        self.ax_prob = ax = fig.add_axes((fx(x), fy(y0), fx(1.9), fy(top_h)))
        ax.set_title("evoked classes", fontsize=8, pad=2)
        self.bars = None
        if n_classes:
            self.bars = ax.bar(np.arange(n_classes), np.zeros(n_classes), color="#31688e")
            ax.set_xticks(np.arange(n_classes))
            ax.set_ylim(0, 1)
            ax.set_yticks([0, 0.5, 1])
            ax.tick_params(labelsize=6)
            ax.set_ylabel("probability", fontsize=7)
        else:
            _bare(ax)
            ax.text(0.5, 0.5, "not assessed", transform=ax.transAxes, ha="center", va="center", fontsize=8,
                    color="#555555")
        x += 1.9 + 0.12
        # one Text per line: most lines repeat from map to map, so their layout is cached
        self.info = [fig.text(fx(x), fy(y0 + top_h - j * 0.17), "", fontsize=7.5, va="top", ha="left")
                     for j in range(6)]

        # evolution strip
        y1 = y0 - top_gap - label_h - titles_h - panel
        fig.text(fx(0.2), fy(y1 + panel + titles_h + 0.04), "evolution (colour scale as the OIP)", fontsize=8,
                 fontweight="bold")
        sw = panel * strip_ratio(n_frames, fw, self.gap)
        self.ax_evo = ax = fig.add_axes((fx(0.2), fy(y1), fx(sw), fy(panel)))
        self.evo_image = ax.imshow(np.ones((fh, n_frames * fw + (n_frames - 1) * self.gap, 3)),
                                   interpolation="nearest")
        _bare(ax)
        ax.axis("off")
        above = offset_copy(ax.transData, fig=fig, y=8, units="points")
        for j, step in enumerate(self.steps):  # the steps are the same for every map: static
            ax.text(j * (fw + self.gap) + fw / 2 - 0.5, -1.0, step, ha="center", va="bottom", fontsize=6.5,
                    clip_on=False, transform=above)
        self.evo_titles = [ax.text(j * (fw + self.gap) + fw / 2 - 0.5, -1.0, "", ha="center", va="bottom",
                                   fontsize=6.5, clip_on=False) for j in range(n_frames)]
        self.frame_shape = (fh, fw)

        # dataset examples strip
        self.ax_ex = None
        if n_examples:
            eh, ew = example_shape
            self.ex_gap = max(1, ew // 8)
            y2 = y1 - 0.15 - label_h - ex_titles_h - panel
            fig.text(fx(0.2), fy(y2 + panel + ex_titles_h + 0.04),
                     "top dataset images (#index / mean activation; red square: strongest unit)", fontsize=8,
                     fontweight="bold")
            self.ex_label = fig.text(fx(width - 0.2), fy(y2 + panel + ex_titles_h + 0.04),
                                    "none makes the map fire", fontsize=8, ha="right", color="#c0392b")
            ew_in = panel * (n_examples * ew + (n_examples - 1) * self.ex_gap) / eh
            self.ax_ex = ax = fig.add_axes((fx(0.2), fy(y2), fx(ew_in), fy(panel)))
            self.ex_image = ax.imshow(np.ones((eh, n_examples * ew + (n_examples - 1) * self.ex_gap, 3)),
                                      interpolation="nearest")
            ax.axis("off")
            self.ex_titles = [ax.text(j * (ew + self.ex_gap) + ew / 2 - 0.5, -1.0, "", ha="center", va="bottom",
                                      fontsize=6, clip_on=False) for j in range(n_examples)]
            self.ex_marks = [ax.add_patch(Rectangle((0, 0), 1, 1, fill=False, edgecolor=_MARK, linewidth=1.2))
                             for _ in range(n_examples)]
            self.example_shape = (eh, ew)
        self._dynamic = [self.oip_image, self.hatch, self.hatch_text, self.ax_loss, self.evo_image]
        self._texts = [self.title, *self.info, *self.evo_titles]
        if limits is None and not self._free_scale:
            self._dynamic.insert(3, self.colorbar.ax)
        if self.bars is not None:
            self._dynamic += list(self.bars)
            names = _class_names(class_names, n_classes)
            self.ax_prob.set_xticklabels(names, rotation=90 if max(len(s) for s in names) > 2 else 0)
        if n_examples:
            self._dynamic += [self.ex_image, *self.ex_marks]
            self._texts += [*self.ex_titles, self.ex_label]
        if blit:
            for artist in self._dynamic + self._texts:
                artist.set_animated(True)

    def png(self, compress_level: int = 1) -> bytes:
        """The painted card as PNG bytes; with ``blit`` only the changing artists are redrawn."""
        import io

        from PIL import Image

        if not self.blit:
            buf = io.BytesIO()
            self.fig.savefig(buf, format="png", pil_kwargs={"compress_level": compress_level})
            return buf.getvalue()
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        if self._background is None:
            canvas = FigureCanvasAgg(self.fig)
            canvas.draw()
            self._background = canvas.copy_from_bbox(self.fig.bbox)
            self._pil = _PilText(self.fig)
        canvas = self.fig.canvas
        canvas.restore_region(self._background)
        for artist in self._dynamic:
            if artist.get_visible():
                self.fig.draw_artist(artist)
        image = Image.fromarray(np.asarray(canvas.buffer_rgba())).convert("RGB")
        pil = self._pil.start(image)
        for text in self._texts:
            pil.text(text)
        self._tick_labels(pil)
        if self._free_scale:  # the colour bar's three labels for this card's scale
            lo, hi = self._clim
            off = 5.5 * self.fig.dpi / 72.0
            for fraction in (0.0, 0.5, 1.0):
                px, py = self.colorbar.ax.transAxes.transform((1.0, fraction))
                pil.raw(f"{lo + fraction * (hi - lo):.3g}", px + off, py, 6, "left", "center")
        buf = io.BytesIO()
        image.save(buf, format="png", compress_level=compress_level)
        return buf.getvalue()

    def _tick_labels(self, pil: "_PilText") -> None:
        """The loss axes' tick labels, as Agg would place them (tick 3.5 pt + pad 3.5 pt)."""
        ax = self.ax_loss
        off = 7.0 * self.fig.dpi / 72.0
        x0, x1 = ax.get_xlim()
        y0, y1 = ax.get_ylim()
        for axis, lo, hi in ((ax.xaxis, x0, x1), (ax.yaxis, y0, y1)):
            locs = [v for v in axis.get_majorticklocs() if min(lo, hi) - 1e-12 <= v <= max(lo, hi) + 1e-12]
            labels = _tick_strings(locs)
            for v, label in zip(locs, labels):
                if axis is ax.xaxis:
                    px, py = ax.transData.transform((v, y0))
                    pil.raw(label, px, py - off, 6, "center", "top")
                else:
                    px, py = ax.transData.transform((x0, v))
                    pil.raw(label, px - off, py, 6, "right", "center")

    def paint(self, oip, examples=None, images=None, class_names=None, map_shape=None, labels=None,
              layer_name: str | None = None, encoding=None, image_names=None) -> Figure:
        frames = _frame_parts(oip)
        if tuple(step for _, step, _ in frames) != self.steps:
            raise ConfigError(f"card laid out for snapshots {self.steps}, the OIP has other snapshot steps")
        marked = oip.status in _MARKED
        image, *frame_pixels = pixel_images([oip.image] + [f for f, _, _ in frames], encoding)
        vmin, vmax = self.limits or display_limits(([] if marked else [image]) + frame_pixels, robust=ROBUST)
        self.title.set_text(f"{layer_name} · {_label(oip)}" if layer_name else _label(oip))

        self.oip_image.set_data(display_image(image)[0] if not marked else np.zeros(self.frame_shape))
        self._clim = (vmin, vmax)
        if self.limits is None:
            self.oip_image.set_clim(vmin, vmax)
        self.oip_image.set_visible(not marked)
        self.hatch.set_visible(marked)
        self.hatch_text.set_visible(marked)
        self.hatch_text.set_text(oip.status)

        hist = np.asarray(oip.activation_history, dtype=np.float64).reshape(-1)
        if hist.size == 0:
            hist = np.array([float(oip.activation)])
        self.loss_line.set_data(np.arange(hist.size), hist)
        self.loss_line.set_linestyle(":" if marked else "-")
        c = int(oip.converged_step)
        self.conv_dot.set_visible(0 <= c < hist.size)
        if 0 <= c < hist.size:
            self.conv_dot.set_data([c], [hist[c]])
        finite = hist[np.isfinite(hist)]
        lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        pad = 0.05 * (hi - lo) if hi > lo else 0.05 * max(abs(hi), 1.0)
        self.ax_loss.set_xlim(0, max(hist.size - 1, 1))
        self.ax_loss.set_ylim(lo - pad, hi + pad)

        probs = getattr(oip, "evoked_probabilities", None)
        names = None
        if probs is not None and self.bars is not None:
            probs = np.asarray(probs, dtype=np.float64).reshape(-1)
            names = _class_names(class_names, probs.size)
            best = int(np.argmax(probs))
            for j, bar in enumerate(self.bars):
                bar.set_height(probs[j] if j < probs.size else 0.0)
                bar.set_color("#35b779" if j == best else "#31688e")
        ratio = getattr(oip, "superstimulus_ratio", None)
        step = int(oip.converged_step)
        lines = [
            f"status: {oip.status}",
            f"activation: {float(oip.activation):.3f}",
            f"converged: {f'at step {step}' if step >= 0 else 'no'}",
            f"start: {oip.start}",
            f"superstimulus ratio: {_ratio_text(ratio)}",
        ]
        if probs is not None and names is not None:
            best = int(np.argmax(probs))
            lines.append(f"evoked class: {names[best]} ({probs[best]:.2f})")
        for text, line in zip(self.info, lines + [""] * len(self.info)):
            text.set_text(line)

        self.evo_image.set_data(_strip(frame_pixels, vmin, vmax, self.gap))
        for text, (_, _, loss) in zip(self.evo_titles, frames):
            text.set_text(loss)

        if self.ax_ex is not None:
            self._paint_examples(oip, examples, images, map_shape, labels, class_names, image_names)
        return self.fig

    def _paint_examples(self, oip, examples, images, map_shape, labels, class_names, image_names=None) -> None:
        m = int(oip.map_index)
        n = self.n_examples
        idx = examples.top_indices[m][:n]
        vals = examples.top_values[m][:n]
        pos = examples.top_positions[m][:n]
        on = [float(v) != 0 for v in vals]  # images where the map is off are left blank
        pics = [np.asarray(_lookup(images, i, "image")) for i in idx]
        eh, ew = self.example_shape
        lo, hi = display_limits([p for p, fires in zip(pics, on) if fires] or pics)
        strip = _strip(pics, lo, hi, self.ex_gap)
        for j, fires in enumerate(on):
            if not fires:
                strip[:, j * (ew + self.ex_gap):j * (ew + self.ex_gap) + ew] = 0.94
        self.ex_image.set_data(strip)
        grid = _map_grid_shape(examples, map_shape)
        for j in range(n):
            title = f"{_item_name(image_names, idx[j])} / {_small(float(vals[j]))}"
            label = int(_lookup(labels, idx[j], "label")) if labels is not None else -1
            if label >= 0:  # -1: no label for this image
                title += f"\n{_class_names(class_names, label + 1)[label]}"
            self.ex_titles[j].set_text(title if on[j] else "off")
            mark = self.ex_marks[j]
            show = grid is not None and grid != (1, 1) and float(vals[j]) > 0
            mark.set_visible(show)
            if show:
                sy, sx = eh / grid[0], ew / grid[1]
                mark.set_xy((j * (ew + self.ex_gap) + int(pos[j][1]) * sx - 0.5, int(pos[j][0]) * sy - 0.5))
                mark.set_width(sx)
                mark.set_height(sy)
        note = _firing_note(examples, m, vals)
        self.ex_label.set_text(note)
        self.ex_label.set_visible(bool(note))


def _tick_strings(locs: Sequence[float]) -> list[str]:
    """Tick labels with just enough decimals for the tick spacing."""
    if not locs:
        return []
    step = min((abs(b - a) for a, b in zip(locs, locs[1:]) if b != a), default=1.0)
    digits = max(0, -int(math.floor(math.log10(step)))) if step > 0 else 0
    text = [f"{v:.{digits}f}" for v in locs]
    return [t[1:] if t.startswith("-") and float(t) == 0 else t for t in text]


def _linespacing(artist) -> float:
    value = getattr(artist, "_linespacing", 1.2)
    return float(value) if isinstance(value, (int, float)) else 1.2


class _PilText:
    """Draws the text of matplotlib ``Text`` artists with Pillow onto a rendered card.

    Agg's text path costs about 1-2 ms per text; Pillow with the same font
    (matplotlib's DejaVu Sans) costs a few hundredths of that. Handles what the
    card uses: unrotated, single- or multi-line, ha left/center/right, va
    top/bottom/center/baseline, normal or bold, any transform.
    """

    def __init__(self, fig: Figure):
        self.fig = fig
        self.fonts: dict[tuple[bool, float], Any] = {}
        self.draw = None

    def start(self, image) -> "_PilText":
        from PIL import ImageDraw

        self.draw = ImageDraw.Draw(image)
        self.height = image.size[1]
        return self

    def font(self, bold: bool, size_px: float):
        key = (bold, round(size_px * 4) / 4)
        if key not in self.fonts:
            from matplotlib.font_manager import FontProperties, findfont
            from PIL import ImageFont

            path = findfont(FontProperties(family="DejaVu Sans", weight="bold" if bold else "normal"))
            self.fonts[key] = ImageFont.truetype(path, size=max(1, int(round(key[1]))))
        return self.fonts[key]

    def text(self, artist) -> None:
        if not artist.get_visible() or not artist.get_text():
            return
        px, py = artist.get_transform().transform(artist.get_unitless_position())
        weight = artist.get_fontweight()
        bold = weight in ("bold", "heavy", "extra bold", "black", "semibold", "demibold") or (
            isinstance(weight, (int, float)) and weight >= 600)
        self.raw(artist.get_text(), px, py, artist.get_fontsize(), artist.get_ha(), artist.get_va(), bold,
                 artist.get_color(), _linespacing(artist))

    def raw(self, text: str, px: float, py: float, size_pt: float, ha: str, va: str, bold: bool = False,
            color="black", linespacing: float = 1.2) -> None:
        from matplotlib.colors import to_rgba

        size = size_pt * self.fig.dpi / 72.0
        font = self.font(bold, size)
        fill = tuple(int(round(c * 255)) for c in to_rgba(color)[:3])
        lines = text.split("\n")
        step = size * linespacing
        y = self.height - py  # Pillow counts from the top
        h = {"left": "l", "center": "m", "right": "r"}.get(ha, "l")
        if va == "top":
            first, v = y, "a"
        elif va == "bottom":
            first, v = y - (len(lines) - 1) * step, "d"
        elif va == "baseline":
            first, v = y, "s"
        else:  # center, center_baseline
            first, v = y - (len(lines) - 1) * step / 2, "m"
        for i, line in enumerate(lines):
            if line:
                self.draw.text((px, first + i * step), line, font=font, fill=fill, anchor=h + v)


def _class_names(class_names, n: int) -> list[str]:
    if class_names is not None and len(class_names) >= n:
        return [str(c) for c in class_names]
    return [str(c) for c in range(n)]


def _card_layout(oip, examples=None, images=None, labels=None, max_examples: int = 9) -> dict:
    """The layout key of a card: maps with equal keys can share one :class:`_Card`."""
    image = np.asarray(oip.image)
    with_examples = examples is not None and images is not None
    n_ex = min(int(examples.top_indices.shape[1]), max_examples) if with_examples else 0
    example_shape = None
    if n_ex:
        first = np.asarray(_lookup(images, examples.top_indices[int(oip.map_index)][0], "image"))
        example_shape = tuple(first.shape[:2])
    probs = getattr(oip, "evoked_probabilities", None)
    return {
        "frame_shape": tuple(image.shape[:2]),
        "steps": tuple(step for _, step, _ in _frame_parts(oip)),
        "n_examples": n_ex,
        "example_shape": example_shape,
        "n_classes": 0 if probs is None else int(np.asarray(probs).size),
        "with_labels": labels is not None and n_ex > 0,
    }


def map_card(map_oip, examples=None, images=None, class_names: Sequence[str] | None = None, *,
             map_shape=None, labels=None, layer_name: str | None = None, max_examples: int = 9,
             dpi: float | None = None, encoding=None, names=None) -> Figure:
    """Everything about one map in one figure.

    Top row: the OIP (with colorbar; a hatched panel if silent), its loss curve,
    the class probabilities the full model gives the OIP (the evoked class in
    green), and a text box with status, activation, start and the superstimulus
    ratio (OIP activation ÷ the best dataset image's). Middle row: the evolution
    snapshots (on the OIP's colour scale). Bottom row (with ``examples`` and
    ``images``): the top dataset images, strongest unit marked as in
    :func:`dataset_examples`.

    Args:
        map_oip: the MapOip.
        examples: the layer's DatasetExamples, optional.
        images: the dataset images the examples index (array or mapping), optional.
        class_names: names for the probability bars and labels (default "0", "1", ...).
        map_shape: the map grid (rows, cols) for the example markers.
        labels: dataset labels (array or mapping) for the example titles.
        layer_name: shown in the title.
        max_examples: dataset examples shown at most.
        dpi: figure dpi (default matplotlib's).
        encoding: the result's input encoding: the OIP is shown in pixel units.
        names: names of the dataset images (file names; array, mapping or
            callable by index); default ``#index``.
    """
    layout = _card_layout(map_oip, examples, images, labels, max_examples)
    card = _Card(**layout, dpi=dpi, class_names=class_names,
                 unit=encoding.display_unit if encoding is not None else "standardized value")
    return card.paint(map_oip, examples, images, class_names, map_shape, labels, layer_name, encoding, names)


def _item_name(names, index) -> str:
    """The name of dataset image ``index`` for a title: its file name if known, else ``#index``."""
    index = int(index)
    if names is None:
        return f"#{index}"
    name = names(index) if callable(names) else names[index]
    name = str(name).rsplit("/", 1)[-1]
    return name if len(name) <= 14 else name[:6] + "…" + name[-7:]
