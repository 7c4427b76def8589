"""Results of an OIP search: one :class:`MapOip` per OIP, bundled in an :class:`OipResult`.

A result is saved as a folder holding ``arrays.npz`` (all arrays) and
``result.json`` (everything else); both are written atomically, ``result.json``
last: it marks a complete result. Saving over an older result first removes
its ``result.json``, so an interrupted save leaves no result that loads, never
the old JSON paired with new arrays.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..model.encoding import InputEncoding
from ..config import OipConfig
from ..errors import ConfigError
from ..files import atomic_write, read_saved_json, read_saved_npz, reading_saved
from .status import Status

__all__ = ["MapOip", "OipResult", "RESULT_JSON", "ARRAYS_NPZ"]

RESULT_JSON = "result.json"
ARRAYS_NPZ = "arrays.npz"
_FORMAT = 1


def _number(value) -> float | None:
    """A float or None (JSON: NaN is written as NaN, which Python's json reads back)."""
    return None if value is None else float(value)


@dataclass(frozen=True, eq=False)
class MapOip:
    """The OIP of one map.

    Attributes:
        map_index: the map of the layer.
        image: the OIP (H, W, C) in the model's input encoding (see ``OipResult.encoding``).
        activation: final mean activation of the map.
        status: how the ascent ended, a :class:`~oipscope.search.status.Status` (equal to its
            name: "converged", "step_limit", "silent" or "nonfinite").
        converged_step: step at which convergence was reached, -1 if never.
        snapshots: images after the snapshot steps (S, H, W, C).
        snapshot_steps: the S steps.
        activation_history: mean activation before each step (steps,).
        start: which start produced it, e.g. "precursor#12" or "restart2:fourier".
        superstimulus_ratio: activation ÷ the map's highest mean activation over a
            dataset (NaN if the map never fires on it); None until assessed.
        evoked_probabilities: class probabilities the full model gives the OIP
            (n_classes,); None until assessed.
        jitter_robustness: the map's activation on the OIP shifted by 4 pixels ÷ on
            the OIP (:func:`oipscope.search.quality.jitter_robustness`); None in results of
            older versions.
        hf_share: the share of the OIP's spectral energy above half the Nyquist
            frequency (:func:`oipscope.search.quality.hf_share`); None in older results.
        history_every: the steps between two ``activation_history`` entries: 1, or
            more for an ascent longer than :data:`oipscope.ascent.pixels.HISTORY_SAMPLES`
            steps (entry ``i`` is the activation before step ``i * history_every``).
    """

    map_index: int
    image: np.ndarray
    activation: float
    status: str
    converged_step: int
    snapshots: np.ndarray
    snapshot_steps: tuple[int, ...]
    activation_history: np.ndarray
    start: str
    superstimulus_ratio: float | None = None
    evoked_probabilities: np.ndarray | None = None
    jitter_robustness: float | None = None
    hf_share: float | None = None
    history_every: int = 1

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", Status(self.status))

    @property
    def history_steps(self) -> np.ndarray:
        """The step of each ``activation_history`` entry."""
        return np.arange(np.asarray(self.activation_history).size) * self.history_every

    @property
    def evoked_class(self) -> int | None:
        """The class the full model sees in the OIP, if assessed."""
        if self.evoked_probabilities is None:
            return None
        return int(np.argmax(self.evoked_probabilities))


@dataclass(frozen=True, eq=False)
class OipResult:
    """All OIPs of one layer, with provenance.

    Attributes:
        layer_name: the layer whose maps were visualized.
        model_name: the Keras model name.
        model_hash: sha256 of the model file if known, else None.
        config: the OipConfig used.
        maps: one MapOip per OIP, in map order (n_per_map consecutive per map).
        versions: versions of oipscope, tensorflow, keras, numpy.
        seconds: wall time of the search.
        encoding: how the model expects its pixels; the OIPs are in this encoding
            (``encoding.decode`` gives pixel units for display).
        precision: what the model computed in during the ascent (``Execution.precision``
            resolved: "float32", "bfloat16" or "float16").
    """

    layer_name: str
    model_name: str
    model_hash: str | None
    config: OipConfig
    maps: tuple[MapOip, ...]
    versions: dict[str, str]
    seconds: float
    encoding: InputEncoding = field(default_factory=InputEncoding.standardize)
    precision: str = "float32"

    @property
    def canvas(self) -> tuple[int, int] | None:
        """(height, width) of the OIPs: the canvas they were grown on."""
        return tuple(int(d) for d in np.shape(self.maps[0].image)[:2]) if self.maps else None

    def summary(self) -> dict[str, Any]:
        """Counts of OIPs per status, the wall time, the median quality numbers and, once
        assessed, the data figures.

        ``median_ratio`` and ``ratio_at_least_1`` count only maps that fire on the
        dataset (finite ratio); ``common_evoked_class`` is the most frequent class
        the full model sees in the OIPs; for a class search ``own_class`` counts
        the OIPs the model sees as the class they climbed.
        """
        statuses = [m.status for m in self.maps]
        summary: dict[str, Any] = {
            "maps": len(self.maps),
            "converged": statuses.count(Status.CONVERGED),
            "step_limit": statuses.count(Status.STEP_LIMIT),
            "silent": statuses.count(Status.SILENT),
            "nonfinite": statuses.count(Status.NONFINITE),
            "seconds": self.seconds,
        }
        for name in ("jitter_robustness", "hf_share"):
            values = np.array([getattr(m, name) for m in self.maps if getattr(m, name) is not None], np.float64)
            if values.size:
                finite = values[np.isfinite(values)]
                summary[f"median_{name}"] = float(np.median(finite)) if finite.size else float("nan")
        ratios = np.array([m.superstimulus_ratio for m in self.maps if m.superstimulus_ratio is not None])
        if ratios.size:
            live = ratios[np.isfinite(ratios)]
            summary["maps_live_on_data"] = int(live.size)
            summary["median_ratio"] = float(np.median(live)) if live.size else float("nan")
            summary["ratio_at_least_1"] = int(np.sum(live >= 1.0))
        classes = [m.evoked_class for m in self.maps if m.evoked_class is not None]
        if classes:
            summary["common_evoked_class"] = int(np.bincount(classes).argmax())
            if self.is_class_search:
                summary["own_class"] = sum(m.evoked_class == m.map_index for m in self.maps)
        return summary

    @property
    def is_class_search(self) -> bool:
        """Whether the OIPs climbed class logits (one OIP per output class)."""
        return self.config.parsed_objective.logits

    def save(self, path: str | os.PathLike) -> Path:
        """Write the result into folder ``path`` (created if needed); returns the folder."""
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        arrays: dict[str, np.ndarray] = {}
        meta_maps = []
        for k, m in enumerate(self.maps):
            arrays[f"image_{k}"] = np.asarray(m.image)
            arrays[f"snapshots_{k}"] = np.asarray(m.snapshots)
            arrays[f"history_{k}"] = np.asarray(m.activation_history)
            if m.evoked_probabilities is not None:
                arrays[f"evoked_{k}"] = np.asarray(m.evoked_probabilities)
            meta_maps.append({
                "map_index": int(m.map_index),
                "activation": float(m.activation),
                "status": str(m.status),
                "converged_step": int(m.converged_step),
                "snapshot_steps": [int(s) for s in m.snapshot_steps],
                "start": m.start,
                "superstimulus_ratio": _number(m.superstimulus_ratio),
                "jitter_robustness": _number(m.jitter_robustness),
                "hf_share": _number(m.hf_share),
            })
            if m.history_every != 1:  # a thinned history of a long ascent
                meta_maps[-1]["history_every"] = int(m.history_every)
        meta = {
            "format": _FORMAT,
            "layer_name": self.layer_name,
            "model_name": self.model_name,
            "model_hash": self.model_hash,
            "config": self.config.to_dict(),
            "encoding": self.encoding.to_dict(),
            "versions": dict(self.versions),
            "seconds": float(self.seconds),
            "precision": self.precision,
            "canvas": list(self.canvas) if self.canvas else None,
            "maps": meta_maps,
        }
        (folder / RESULT_JSON).unlink(missing_ok=True)  # no old JSON pairs with new arrays
        atomic_write(folder / ARRAYS_NPZ, lambda fh: np.savez_compressed(fh, **arrays))
        atomic_write(folder / RESULT_JSON, lambda fh: fh.write(json.dumps(meta, indent=1).encode()))
        return folder

    @classmethod
    def load(cls, path: str | os.PathLike) -> "OipResult":
        """Read a result folder written by :meth:`save`.

        Raises:
            DataError: the folder's files are missing, damaged or malformed (exit code 3).
            ConfigError: the result is in another format.
        """
        folder = Path(path)
        meta = read_saved_json(folder / RESULT_JSON, "OIP result")
        if not isinstance(meta, dict) or meta.get("format") != _FORMAT:
            found = meta.get("format") if isinstance(meta, dict) else None
            raise ConfigError(
                f"{folder} holds an OIP result in format {found!r}; this oipscope reads format "
                f"{_FORMAT}: re-create it with `oipscope find`"
            )
        arrays = read_saved_npz(folder / ARRAYS_NPZ, "OIP arrays")
        with reading_saved(folder / RESULT_JSON, "OIP result"):  # fields missing from either file
            maps = tuple(
                MapOip(
                    map_index=int(m["map_index"]),
                    image=arrays[f"image_{k}"],
                    activation=float(m["activation"]),
                    status=str(m["status"]),
                    converged_step=int(m["converged_step"]),
                    snapshots=arrays[f"snapshots_{k}"],
                    snapshot_steps=tuple(int(s) for s in m["snapshot_steps"]),
                    activation_history=arrays[f"history_{k}"],
                    start=str(m["start"]),
                    superstimulus_ratio=_number(m.get("superstimulus_ratio")),
                    evoked_probabilities=arrays.get(f"evoked_{k}"),
                    jitter_robustness=_number(m.get("jitter_robustness")),
                    hf_share=_number(m.get("hf_share")),
                    history_every=int(m.get("history_every", 1)),
                )
                for k, m in enumerate(meta["maps"])
            )
            return cls(
                layer_name=meta["layer_name"],
                model_name=meta["model_name"],
                model_hash=meta["model_hash"],
                config=OipConfig.from_dict(meta["config"]),
                maps=maps,
                versions=dict(meta["versions"]),
                seconds=float(meta["seconds"]),
                encoding=InputEncoding.from_dict(meta.get("encoding")),
                precision=str(meta.get("precision", "float32")),
            )
