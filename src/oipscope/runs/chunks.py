"""The work of a layer, cut into chunks: what every way of running it shares.

:func:`plan_chunks` cuts a layer's maps into :class:`Chunk` s, :func:`run_chunk`
finds the OIPs of one chunk (from a model object, or from a model file as a
worker would), and :func:`merge_results` joins the parts. A backend runs a list
of chunks and yields each part as it is done: :class:`LocalBackend` here, one
after another, or :class:`oipscope.runs.cluster.RayBackend` on a Ray cluster.
Every map's random draws depend only on (seed, map) and every element of the
ascent climbs on its own, so the OIPs do not depend on how the maps were cut or
where a chunk ran.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

from ..config import Execution, OipConfig
from ..model.encoding import InputEncoding
from ..ascent.pixels import estimate_chunk_size
from ..errors import ConfigError
from .layout import part_folder
from ..search.results import OipResult
from ..search.pipeline import find_oips
from ..model.subject import Subject, as_subject, open_subject

__all__ = ["Chunk", "plan_chunks", "default_chunk_maps", "run_chunk", "merge_results", "LocalBackend"]


@dataclass(frozen=True)
class Chunk:
    """A piece of a layer's work: some of its maps, found and saved together.

    Attributes:
        layer_name: the layer.
        maps: its maps in this chunk, ascending.
    """

    layer_name: str
    maps: tuple[int, ...]

    def folder(self, out_dir: str | os.PathLike) -> Path:
        """Where the chunk is kept while its layer run is under way."""
        return part_folder(out_dir, self.maps)


def default_chunk_maps(subject: Subject, layer_name: str, config: OipConfig = OipConfig(),
                       execution: Execution = Execution()) -> int:
    """Maps per chunk: as many as one batch of the ascent holds within the memory budget, at least 32.

    A chunk smaller than a batch leaves the batch part empty; a bigger one is
    ascended in several batches, which only delays its save.
    """
    sub = subject.feature_submodel(layer_name)
    batch = estimate_chunk_size(sub, len(config.resolved_snapshot_steps()), config.total_steps,
                                execution.memory_budget_mb)
    return max(32, batch // config.n_per_map)


def plan_chunks(layer_name: str, maps: Sequence[int], chunk_maps: int) -> list[Chunk]:
    """Cut a layer's maps into chunks of ``chunk_maps`` maps, in order."""
    if chunk_maps < 1:
        raise ConfigError(f"chunk_maps must be >= 1, got {chunk_maps}")
    maps = tuple(int(m) for m in maps)
    return [Chunk(layer_name, maps[start:start + chunk_maps]) for start in range(0, len(maps), chunk_maps)]


def run_chunk(model, chunk: Chunk, config: OipConfig, *, encoding: InputEncoding | None = None,
              execution: Execution = Execution(), safe_mode: bool = True,
              on_progress: Callable[[int, int], None] | None = None) -> OipResult:
    """Find the OIPs of one chunk (the caller saves them, in ``chunk.folder(out_dir)``).

    Args:
        model: a :class:`~oipscope.model.subject.Subject`, a Keras model, or the path of
            a model file (a worker opens it itself, with ``encoding``).
        chunk: from :func:`plan_chunks`.
        config: the search parameters.
        encoding: the input encoding when ``model`` is a path or a bare model.
        execution: how the work is carried out.
        safe_mode: with a model path: refuse model files that contain code.
        on_progress: ``on_progress(done, total)`` in OIPs of this chunk.
    """
    if isinstance(model, (str, os.PathLike)):
        subject = open_subject(model, encoding, safe_mode=safe_mode)
    else:
        subject = as_subject(model, encoding)
    return find_oips(subject, chunk.layer_name, list(chunk.maps), config, on_progress, execution=execution)


class LocalBackend:
    """Runs chunks in this process, one after another: the default backend.

    A backend's :meth:`run` yields ``(index, part)`` as each chunk finishes, in any
    order; :class:`oipscope.runs.cluster.RayBackend` is the other one.
    """

    name = "local"
    slots = 1
    """How many chunks run at once."""

    def run(self, subject: Subject, chunks: Sequence[Chunk], config: OipConfig, execution: Execution,
            on_progress: Callable[[int, int], None] | None = None) -> Iterator[tuple[int, OipResult]]:
        """Yield ``(index, part)`` per chunk; ``on_progress(index, done)`` in OIPs while one runs."""
        for index, chunk in enumerate(chunks):
            progress = (lambda done, _total, index=index: on_progress(index, done)) if on_progress else None
            yield index, run_chunk(subject, chunk, config, execution=execution, on_progress=progress)

    def close(self) -> None:
        """Nothing to release."""


def merge_results(parts: Iterable[OipResult]) -> OipResult:
    """One result from chunk results of the same layer and settings, in map order."""
    parts = list(parts)
    if not parts:
        raise ConfigError("no partial results to merge")
    maps = sorted((oip for part in parts for oip in part.maps), key=lambda oip: oip.map_index)
    return dataclasses.replace(parts[0], maps=tuple(maps), seconds=sum(part.seconds for part in parts))
