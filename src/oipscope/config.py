"""The settings of an OIP search: the science (:class:`OipConfig`) and how it is run (:class:`Execution`).

``OipConfig`` holds what decides the OIPs (steps, step size, start noise,
restarts, seed); it is saved with every result and is part of a resumable
run's key. ``Execution`` holds what only decides how the work is carried out
(memory per batch, XLA); changing it never changes an OIP beyond float
rounding, so a run may be resumed with other execution settings.
"""

from __future__ import annotations

import functools
import math
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from .errors import ConfigError

if TYPE_CHECKING:
    from .ascent.objective import Objective

__all__ = ["OipConfig", "StartSettings", "PixelLoopSettings", "ParameterLoopSettings", "DeadUnitSettings", "Execution",
           "default_snapshot_steps", "resolve_method", "PARAMETRIZATIONS", "OPTIMIZERS", "PRECISIONS", "METHODS",
           "AUTO_SERIES_SIZE", "ROBUST_CONTRAST", "MAX_STEPS"]

_EXECUTION_KEYS = ("memory_budget_mb", "jit_compile")  # OipConfig fields before Execution existed
PARAMETRIZATIONS: tuple[str, ...] = ("pixels", "fourier")
OPTIMIZERS: tuple[str, ...] = ("normalized", "adam")
METHODS: tuple[str, ...] = ("series", "robust")
"""The presets an :class:`OipConfig` starts from; ``auto`` (:func:`resolve_method`) picks one per model."""
AUTO_SERIES_SIZE = 32
"""``auto`` keeps the series' method for inputs up to this many pixels a side (the series' CNN and its kind)."""
ROBUST_CONTRAST = 1.0
"""The robust preset's fixed contrast: the RMS of the image before the sigmoid (see ``OipConfig.contrast``)."""
_CPU_BATCH = 64
PRECISIONS: tuple[str, ...] = ("auto", "float32", "bfloat16", "float16")
"""The choices of ``Execution.precision`` (``auto`` picks one of the others)."""
MAX_STEPS = 1_000_000
"""The most steps of any ascent (``steps``, a stage of strategy 1, the rescue, a warm-up).

The series' CNN converges in a few hundred steps; a million already takes hours
per layer, and far more only fills memory and time."""


def default_snapshot_steps(steps: int) -> tuple[int, ...]:
    """Log-spaced snapshot steps: 0, 9, 18, 36, 72, ... below ``steps-1``, and ``steps-1``."""
    out = {0, steps - 1}
    s = 9
    while s < steps - 1:
        out.add(s)
        s *= 2
    return tuple(sorted(out))


def resolve_method(method: str, height: int, width: int) -> str:
    """The preset a method name means for a model input of ``height`` x ``width``.

    ``auto``: the series' method for inputs up to :data:`AUTO_SERIES_SIZE` pixels a side,
    where it gives the series' OIPs, else the readable preset.

    Example:
        >>> resolve_method("auto", 28, 28), resolve_method("auto", 224, 224), resolve_method("series", 224, 224)
        ('series', 'robust', 'series')
    """
    _check(method in ("auto", *METHODS), f"method must be auto, series or robust, got {method!r}")
    if method != "auto":
        return method
    return "series" if max(height, width) <= AUTO_SERIES_SIZE else "robust"


def _check(cond: bool, msg: str) -> None:
    if not cond:
        raise ConfigError(msg)


@functools.lru_cache(maxsize=256)
def _parsed(objective: str) -> "Objective":
    from .ascent.objective import parse_objective

    return parse_objective(objective)


def _is_int(x: Any) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, bool)


def _check_step_bound(name: str, values: Sequence[int]) -> None:
    """At most :data:`MAX_STEPS` steps: a larger count would fill memory and run for days."""
    too_many = [v for v in values if _is_int(v) and v > MAX_STEPS]
    if too_many:
        raise ConfigError(f"{name} must be at most {MAX_STEPS:,}, got {too_many[0]:,}: an ascent that long takes "
                          f"days and fills memory; give {MAX_STEPS} steps or fewer (e.g. --steps 600, which "
                          "usually converge)")


@dataclass(frozen=True)
class StartSettings:
    """What the starting images are made of (:mod:`oipscope.search.starts`, the precursor)."""

    start: str
    scales: tuple[int, ...] | None
    factors: tuple[float, ...] | None
    smoothing: bool
    fourier_alpha: float
    precursor: bool
    n_candidates: int


@dataclass(frozen=True)
class PixelLoopSettings:
    """What the series' pixel loop reads (:mod:`oipscope.ascent.pixels`): its step and when it stops."""

    epsilon: float
    steps: int
    conv_criterion: float
    conv_patience: int
    stop_on_convergence: bool
    strategy: int
    strategy1_steps: tuple[int, ...]


@dataclass(frozen=True)
class ParameterLoopSettings:
    """What the parameter loop reads (:mod:`oipscope.ascent.parameters`): how the image is described,
    transformed and stepped while it climbs."""

    parametrization: str
    decorrelate: bool
    bounded: bool
    transforms: tuple[str, ...]
    optimizer: str
    learning_rate: float
    epsilon: float
    steps: int
    contrast: float | None
    colour_matrix: tuple[float, ...] | None


@dataclass(frozen=True)
class DeadUnitSettings:
    """What a search does for maps that stay silent: restarts, the rescue, the warm-ups."""

    restarts: int
    rescue_steps: int
    warmup_steps: int
    warmup_round_steps: int


def _settings(config: "OipConfig", kind: type) -> Any:
    return kind(**{name: getattr(config, name) for name in kind.__dataclass_fields__})


@dataclass(frozen=True)
class OipConfig:
    """All parameters of an OIP search, validated on creation.

    The fields are saved flat (``to_dict``, every ``result.json``); each loop reads its own group:
    :attr:`starts`, :attr:`pixel_loop`, :attr:`parameter_loop`, :attr:`dead_units`.

    Attributes:
        epsilon: step size of the normalized gradient (the seed's 0.01).
        steps: maximum ascent steps (strategy 0).
        conv_criterion: relative loss change below which a step counts as converged.
        conv_patience: successive converged steps (after step 10) that stop a map.
        stop_on_convergence: freeze converged maps (else run all steps).
        scales: length scales of the initial noise; None = the seed's (3, 7, 14, 28)
            relative to the image height.
        factors: one amplitude per scale; None = 0.5 each.
        smoothing: one more bicubic resize pass over the initial image.
        strategy: 0 = one loop from the full mix; 1 = coarse-to-fine evolution.
        strategy1_steps: steps per stage of strategy 1 (one per scale).
        start: "scales" (the seed's noise) or "fourier" (1/f^alpha noise).
        fourier_alpha: spectral exponent of the Fourier start.
        precursor: pick the best of ``n_candidates`` starts per map first.
        n_candidates: candidate starts per map for the precursor.
        restarts: extra rounds with other starts for maps that end silent.
        rescue_steps: for maps still silent after the restarts, steps of ascent on
            the layer's pre-activation (before its ReLU) before the ordinary
            ascent; 0 turns the rescue off.
        n_per_map: OIPs per map (different seeds).
        seed: RNG seed; the same seed gives identical results.
        snapshot_steps: steps after which the image is recorded; None = log-spaced.
        objective: what each OIP maximizes, in the grammar of
            :func:`oipscope.ascent.objective.parse_objective` (default the series' channel mean).
        parametrization: how the image is described while it climbs: ``"pixels"``
            (the series) or ``"fourier"`` (a spectrum scaled by 1/f).
        decorrelate: for RGB models, climb in decorrelated colour channels.
        bounded: map the image onto the encoding's range through a sigmoid.
        contrast: with ``bounded``, fix the image's contrast: each channel of the (Fourier)
            image is scaled to unit RMS before the colour mixing and the whole to this RMS
            before the sigmoid, so pixels stay off the range's bounds and colours keep the
            colour matrix's proportions. None: the parameters set it (the sigmoid may saturate).
        colour_matrix: with ``decorrelate``, the 3x3 square root of the colour covariance
            (9 numbers, by rows, RGB), e.g. measured from the user's images; None: ImageNet's.
        method: the preset the other fields started from, ``"series"`` or ``"robust"``; a
            label saved with the result (a saved config without it reads as ``"series"``
            where it runs the series' loop, else ``"robust"``).
        transforms: random transforms before each forward pass (``"pad:N"``,
            ``"jitter:N"``, ``"scale:LO,HI"``, ``"rotate:DEG"``, or ``"standard"``,
            the robust set sized to the image); see :mod:`oipscope.ascent.transforms`.
        optimizer: ``"normalized"`` (the series' RMS-normalized step of size
            ``epsilon``) or ``"adam"`` (with ``learning_rate``).
        learning_rate: Adam's step size, in parameter units.
        warmup_steps: for the first steps a ReLU lets gradient through to units
            below zero (where it pushes them up), so dead maps can wake.
        warmup_round_steps: maps still silent after the restarts and the rescue get a
            last round of fresh starts climbed with a warm-up of this many steps, at
            most a quarter of the ascent (0: no such round). It changes no OIP of a live map.
        canvas: the side in pixels (the longer one) of the image OIPs of a layer whose path from
            the input is convolutional are grown at (:mod:`oipscope.model.canvas`); None: the
            model's own size up to 160 px, 128 px above. Other layers use the model's size.
    """

    epsilon: float = 0.01
    steps: int = 600
    conv_criterion: float = 5e-4
    conv_patience: int = 4
    stop_on_convergence: bool = True
    scales: tuple[int, ...] | None = None
    factors: tuple[float, ...] | None = None
    smoothing: bool = False
    strategy: int = 0
    strategy1_steps: tuple[int, ...] = (20, 40, 80, 400)
    start: str = "scales"
    fourier_alpha: float = 1.0
    precursor: bool = True
    n_candidates: int = 32
    restarts: int = 3
    rescue_steps: int = 100
    n_per_map: int = 1
    seed: int = 0
    snapshot_steps: tuple[int, ...] | None = None
    objective: str = "channel"
    parametrization: str = "pixels"
    decorrelate: bool = False
    bounded: bool = False
    contrast: float | None = None
    colour_matrix: tuple[float, ...] | None = None
    transforms: tuple[str, ...] = ()
    optimizer: str = "normalized"
    learning_rate: float = 0.05
    warmup_steps: int = 0
    warmup_round_steps: int = 150
    method: str = "series"
    canvas: int | None = None

    def __post_init__(self) -> None:
        def norm(name: str, conv: Callable) -> None:
            value = getattr(self, name)
            if value is not None and not isinstance(value, tuple):
                try:
                    object.__setattr__(self, name, tuple(conv(v) for v in value))
                except TypeError:
                    raise ConfigError(f"{name} must be a sequence, got {value!r}") from None

        norm("scales", int)
        norm("factors", float)
        norm("strategy1_steps", int)
        norm("snapshot_steps", int)
        norm("transforms", str)
        norm("colour_matrix", float)
        _check(isinstance(self.epsilon, (int, float)) and math.isfinite(self.epsilon) and self.epsilon > 0,
               f"epsilon must be > 0, got {self.epsilon!r}")
        _check(_is_int(self.steps) and self.steps >= 1, f"steps must be an integer >= 1, got {self.steps!r}")
        _check(isinstance(self.conv_criterion, (int, float)) and math.isfinite(self.conv_criterion)
               and self.conv_criterion >= 0, f"conv_criterion must be >= 0, got {self.conv_criterion!r}")
        _check(_is_int(self.conv_patience) and self.conv_patience >= 1,
               f"conv_patience must be an integer >= 1, got {self.conv_patience!r}")
        if self.scales is not None:
            _check(len(self.scales) >= 1 and all(s >= 1 for s in self.scales),
                   f"scales must be positive integers, got {self.scales!r}")
        if self.factors is not None:
            n = len(self.scales) if self.scales is not None else None
            _check(n is None or len(self.factors) == n,
                   f"{len(self.factors)} factors for {n} scales; give one factor per scale")
            _check(all(math.isfinite(f) for f in self.factors), f"factors must be finite, got {self.factors!r}")
            _check(all(f >= 0 for f in self.factors),
                   f"factors must be >= 0 (amplitudes of the noise on each scale), got {self.factors!r}")
            _check(any(f > 0 for f in self.factors),
                   "factors are all 0, the initial image would be blank; give at least one factor > 0")
        _check(self.strategy in (0, 1) and _is_int(self.strategy), f"strategy must be 0 or 1, got {self.strategy!r}")
        _check(len(self.strategy1_steps) >= 1 and all(s >= 1 for s in self.strategy1_steps),
               f"strategy1_steps must be integers >= 1, got {self.strategy1_steps!r}")
        for name in ("steps", "strategy1_steps", "rescue_steps", "warmup_steps", "warmup_round_steps"):
            value = getattr(self, name)
            _check_step_bound(name, value if isinstance(value, tuple) else (value,))
        _check(self.start in ("scales", "fourier"), f"start must be 'scales' or 'fourier', got {self.start!r}")
        _check(isinstance(self.fourier_alpha, (int, float)) and math.isfinite(self.fourier_alpha)
               and self.fourier_alpha >= 0, f"fourier_alpha must be >= 0, got {self.fourier_alpha!r}")
        _check(_is_int(self.n_candidates) and self.n_candidates >= 1,
               f"n_candidates must be an integer >= 1, got {self.n_candidates!r}")
        _check(_is_int(self.restarts) and self.restarts >= 0, f"restarts must be an integer >= 0, got {self.restarts!r}")
        _check(_is_int(self.rescue_steps) and self.rescue_steps >= 0,
               f"rescue_steps must be an integer >= 0, got {self.rescue_steps!r}")
        _check(_is_int(self.n_per_map) and self.n_per_map >= 1,
               f"n_per_map must be an integer >= 1, got {self.n_per_map!r}")
        _check(_is_int(self.seed) and self.seed >= 0, f"seed must be an integer >= 0, got {self.seed!r}")
        if self.snapshot_steps is not None:
            bad = [s for s in self.snapshot_steps if not 0 <= s < self.total_steps]
            _check(not bad, f"snapshot steps {bad} outside 0..{self.total_steps - 1}")
        _check(self.canvas is None or (_is_int(self.canvas) and 8 <= self.canvas <= 4096),
               f"canvas (--size) must be a whole number of pixels from 8 to 4096, got {self.canvas!r}")
        self._check_method()

    def _check_method(self) -> None:
        from .ascent.objective import parse_objective
        from .ascent.transforms import parse_transforms

        object.__setattr__(self, "objective", parse_objective(self.objective).text())  # canonical: the resume key
        parse_transforms(self.transforms)
        _check(self.parametrization in PARAMETRIZATIONS,
               f"parametrization must be one of {', '.join(PARAMETRIZATIONS)}, got {self.parametrization!r}")
        _check(self.optimizer in OPTIMIZERS, f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}")
        for name in ("decorrelate", "bounded"):
            _check(isinstance(getattr(self, name), bool), f"{name} must be True or False, got {getattr(self, name)!r}")
        _check(self.method in METHODS, f"method must be one of {', '.join(METHODS)}, got {self.method!r}")
        _check(self.contrast is None or (isinstance(self.contrast, (int, float)) and not isinstance(self.contrast, bool)
                                         and math.isfinite(self.contrast) and self.contrast > 0),
               f"contrast must be > 0 or None, got {self.contrast!r}")
        _check(self.colour_matrix is None or (len(self.colour_matrix) == 9
                                              and all(math.isfinite(v) for v in self.colour_matrix)
                                              and abs(np.linalg.det(np.reshape(self.colour_matrix, (3, 3)))) > 1e-12),
               f"colour_matrix must be 9 finite numbers (a 3x3 matrix by rows) that can be inverted, "
               f"got {self.colour_matrix!r}")
        _check(isinstance(self.learning_rate, (int, float)) and math.isfinite(self.learning_rate)
               and self.learning_rate > 0, f"learning_rate must be > 0, got {self.learning_rate!r}")
        for name in ("warmup_steps", "warmup_round_steps"):
            value = getattr(self, name)
            _check(_is_int(value) and value >= 0, f"{name} must be an integer >= 0, got {value!r}")
        if not self.uses_series_loop:
            _check(self.strategy == 0, "strategy 1 (coarse-to-fine stages) works with the series' method only; "
                                       "use strategy 0 with transforms, Fourier, bounded images or Adam")

    @classmethod
    def for_method(cls, method: str, **overrides: Any) -> "OipConfig":
        """The preset named ``method`` (``series`` or ``robust``) with ``overrides``.

        Example:
            >>> OipConfig.for_method("series") == OipConfig()
            True
        """
        _check(method in METHODS, f"method must be one of {', '.join(METHODS)}, got {method!r}")
        return cls.robust(**overrides) if method == "robust" else cls(**overrides)

    @classmethod
    def robust(cls, **overrides: Any) -> "OipConfig":
        """The readable preset (``--method robust``): the standard transforms, a decorrelated Fourier
        image of fixed contrast bounded by a sigmoid, Adam, 512 steps without early stopping, and a
        ReLU warm-up (an eighth of the steps, at most 64).

        Example:
            >>> OipConfig.robust(steps=256).transforms
            ('standard',)
        """
        preset: dict[str, Any] = dict(
            parametrization="fourier", decorrelate=True, bounded=True, transforms=("standard",),
            optimizer="adam", learning_rate=0.05, steps=512, stop_on_convergence=False,
            precursor=False, rescue_steps=0, contrast=ROBUST_CONTRAST, method="robust",
        )
        preset.update(overrides)
        preset.setdefault("warmup_steps", min(64, int(preset["steps"]) // 8))  # an eighth of the steps, at most 64
        return cls(**preset)

    @property
    def uses_series_loop(self) -> bool:
        """Whether the series' compiled loop runs the ascent: pixels, no transforms, the normalized
        step, no sigmoid and no coupling of replicates (else :mod:`oipscope.ascent.parameters` does)."""
        return (self.parametrization == "pixels" and not self.bounded and not self.decorrelate
                and not self.transforms and self.optimizer == "normalized"
                and not self.parsed_objective.couples)

    @property
    def parsed_objective(self) -> "Objective":
        """``objective`` as an :class:`~oipscope.ascent.objective.Objective` (parsed once per text)."""
        return _parsed(self.objective)

    @property
    def total_steps(self) -> int:
        """Steps of the final ascent: ``steps`` (strategy 0) or the last stage of strategy 1."""
        return self.steps if self.strategy == 0 else self.strategy1_steps[-1]

    def resolved_scales(self, height: int) -> tuple[int, ...]:
        """The length scales for an image of this height."""
        from .search.starts import default_scales

        return self.scales if self.scales is not None else default_scales(height)

    def check_image_size(self, height: int, width: int) -> None:
        """Check the scales and factors against an image of ``height`` x ``width`` pixels.

        Raises:
            ConfigError: a length scale is larger than the image, or the number of
                factors does not match the (default) scales.
        """
        too_big = [s for s in self.resolved_scales(height) if s > min(height, width)]
        _check(not too_big,
               f"length scale {too_big[0] if len(too_big) == 1 else too_big} is larger than the "
               f"{height}x{width} model input; use scales between 1 and {min(height, width)}")
        self.resolved_factors(height)

    def resolved_factors(self, height: int) -> tuple[float, ...]:
        """One factor per resolved scale."""
        n = len(self.resolved_scales(height))
        if self.factors is None:
            return (0.5,) * n
        _check(len(self.factors) == n, f"{len(self.factors)} factors for {n} scales; give one factor per scale")
        return self.factors

    def resolved_snapshot_steps(self, steps: int | None = None) -> tuple[int, ...]:
        """Snapshot steps for a run of ``steps`` steps (default ``total_steps``)."""
        steps = self.total_steps if steps is None else steps
        if self.snapshot_steps is not None:
            return tuple(sorted({s for s in self.snapshot_steps if s < steps}))
        return default_snapshot_steps(steps)

    @property
    def starts(self) -> StartSettings:
        """The fields the starting images are made of."""
        return _settings(self, StartSettings)

    @property
    def pixel_loop(self) -> PixelLoopSettings:
        """The fields the series' pixel loop reads."""
        return _settings(self, PixelLoopSettings)

    @property
    def parameter_loop(self) -> ParameterLoopSettings:
        """The fields the parameter loop (readable OIPs) reads."""
        return _settings(self, ParameterLoopSettings)

    @property
    def dead_units(self) -> DeadUnitSettings:
        """The fields that decide what is done for silent maps."""
        return _settings(self, DeadUnitSettings)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (tuples become lists); ``contrast``, ``colour_matrix`` and ``canvas``
        only when set, so the saved settings of runs without them read as before."""
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()
                if not (k in ("contrast", "colour_matrix", "canvas") and v is None)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "OipConfig":
        """Inverse of :meth:`to_dict`; unknown keys raise ConfigError.

        The execution settings older results saved here (``memory_budget_mb``,
        ``jit_compile``) are ignored.
        """
        names = {f for f in cls.__dataclass_fields__}
        data = {k: v for k, v in data.items() if k not in _EXECUTION_KEYS}
        unknown = set(data) - names
        _check(not unknown, f"unknown OipConfig fields: {sorted(unknown)}")
        config = cls(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in data.items()})
        if "method" not in data and not config.uses_series_loop:  # saved before the method was: what it ran
            config = replace(config, method="robust")
        return config


@dataclass(frozen=True)
class Execution:
    """How a search is carried out; never part of what decides an OIP.

    Attributes:
        memory_budget_mb: the batch of OIPs ascended together is cut to fit this
            many MiB of activations, gradients, snapshots and histories.
        jit_compile: compile the ascent loop with XLA (measured slower on CPU); XLA
            compiles once per batch size, so its batches are not compacted.
        segment_steps: the compiled loop runs this many steps at a time; between
            segments, elements that stopped leave the batch and waiting ones join.
            None: one segment for the whole ascent (no compaction). Measured on the
            embedded CNN (2 CPU cores): 20 steps took Conv2D_3's search about 4 %
            less time than 40 (a stopped element waits less for its segment's end),
            and 5 or 10 no less than 20; the OIPs are the same.
        batch_size: the most OIPs ascended together (the memory budget may allow
            fewer). None: 64 on a CPU, where bigger batches of small images run slower
            per OIP (measured: 0.23 ms per OIP-step at 64 against 0.25 at 128 for the
            embedded CNN's Conv2D_3, 0.12 against 0.16 for Conv2D_1), and no limit but
            the memory budget on a GPU.
        own_maps: when the target layer is a convolution (with BatchNormalization
            and activations after it), compute for each element only its own map
            of it (:mod:`oipscope.ascent.own_map`); equal to the whole layer up to float
            rounding. False: the whole layer, as the series' loop does.
        precision: what the model computes in: ``"float32"``, ``"bfloat16"``, ``"float16"``
            (the image, its update and the criteria stay float32), or ``"auto"``: bfloat16 where
            a short probe shows it faster on this machine and layer, mixed precision on a GPU,
            float32 elsewhere and for small models (:mod:`oipscope.ascent.precision`). The
            precision used is saved with the result.
    """

    memory_budget_mb: float = 512.0
    jit_compile: bool = False
    segment_steps: int | None = 20
    batch_size: int | None = None
    own_maps: bool = True
    precision: str = "auto"

    def __post_init__(self) -> None:
        _check(isinstance(self.memory_budget_mb, (int, float)) and not isinstance(self.memory_budget_mb, bool)
               and math.isfinite(self.memory_budget_mb) and self.memory_budget_mb > 0,
               f"memory_budget_mb must be > 0, a finite number of MB (e.g. 512), got {self.memory_budget_mb!r}")
        _check(isinstance(self.jit_compile, bool), f"jit_compile must be True or False, got {self.jit_compile!r}")
        _check(self.segment_steps is None or (_is_int(self.segment_steps) and self.segment_steps >= 1),
               f"segment_steps must be an integer >= 1 or None, got {self.segment_steps!r}")
        _check(self.batch_size is None or (_is_int(self.batch_size) and self.batch_size >= 1),
               f"batch_size must be an integer >= 1 or None, got {self.batch_size!r}")
        _check(isinstance(self.own_maps, bool), f"own_maps must be True or False, got {self.own_maps!r}")
        _check(self.precision in PRECISIONS,
               f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")

    def batch_limit(self) -> int:
        """The most OIPs per batch apart from memory: ``batch_size``, or 64 on a CPU."""
        if self.batch_size is not None:
            return self.batch_size
        import tensorflow as tf

        return 1 << 30 if tf.config.list_logical_devices("GPU") else _CPU_BATCH
