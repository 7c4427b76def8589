"""Resumable OIP runs: a layer's maps in chunks (:func:`run_layer`), or a whole model's layers
(:func:`run_zoo`), each piece saved as soon as it is done.

The work of a layer is cut by three functions that every backend shares:
:func:`plan_chunks` cuts the maps into :class:`Chunk` s, :func:`run_chunk`
finds and saves the OIPs of one chunk (from a model object or a model file, as
a worker would), and :func:`merge_results` joins the chunks. Every map's random
draws depend only on (seed, map) and every element of the ascent climbs on its
own, so the OIPs do not depend on how the maps were cut: an interrupted run
(Ctrl-C, a crash) keeps every finished chunk in ``<out>/parts/``, and
``resume=True`` computes only the maps that no kept chunk holds.
The folder layout is :mod:`oipscope.layout`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from .config import Execution, OipConfig
from .data import Dataset
from .encoding import InputEncoding
from .engine import estimate_chunk_size
from .errors import ConfigError, LayerError
from .examples import DatasetExamples, assess_oips, dataset_examples
from .files import atomic_write
from .initial import parse_maps
from .layers import select_layers
from .layout import EXAMPLES_NPZ, PARTS, RUN_JSON, part_folder, zoo_examples_file, zoo_layer_folder
from .results import ARRAYS_NPZ, RESULT_JSON, OipResult
from .search import find_oips, retry_from
from .status import needs_retry
from .subject import Subject, as_subject, open_subject

__all__ = [
    "Chunk",
    "LayerRun",
    "plan_chunks",
    "default_chunk_maps",
    "run_chunk",
    "merge_results",
    "run_layer",
    "run_zoo",
    "examine_layer",
    "wake_from_data",
    "dataset_fits",
    "finished_result",
    "layer_map_selection",
    "RUN_JSON",
    "zoo_layer_folder",
]


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


def default_chunk_maps(model, layer_name: str, config: OipConfig = OipConfig(),
                       execution: Execution = Execution()) -> int:
    """Maps per chunk: as many as one batch of the ascent holds within the memory budget, at least 32.

    A chunk smaller than a batch leaves the batch part empty; a bigger one is
    ascended in several batches, which only delays its save.
    """
    sub = as_subject(model).feature_submodel(layer_name)
    batch = estimate_chunk_size(sub, len(config.resolved_snapshot_steps()), config.total_steps,
                                execution.memory_budget_mb)
    return max(32, batch // config.n_per_map)


def plan_chunks(layer_name: str, maps: Sequence[int], chunk_maps: int) -> list[Chunk]:
    """Cut a layer's maps into chunks of ``chunk_maps`` maps, in order."""
    if chunk_maps < 1:
        raise ConfigError(f"chunk_maps must be >= 1, got {chunk_maps}")
    maps = tuple(int(m) for m in maps)
    return [Chunk(layer_name, maps[start:start + chunk_maps]) for start in range(0, len(maps), chunk_maps)]


def run_chunk(model, chunk: Chunk, config: OipConfig, out_dir: str | os.PathLike, *,
              encoding: InputEncoding | None = None, execution: Execution = Execution(),
              on_progress: Callable[[int, int], None] | None = None) -> OipResult:
    """Find the OIPs of one chunk and save them in ``chunk.folder(out_dir)``.

    Args:
        model: a :class:`~oipscope.subject.Subject`, a Keras model, or the path of
            a model file (a worker opens it itself, with ``encoding``).
        chunk: from :func:`plan_chunks`.
        config: the search parameters.
        out_dir: the layer run's folder.
        encoding: the input encoding when ``model`` is a path or a bare model.
        execution: how the work is carried out.
        on_progress: ``on_progress(done, total)`` in OIPs of this chunk.
    """
    if isinstance(model, (str, os.PathLike)):
        subject = open_subject(model, encoding)
    else:
        subject = as_subject(model, encoding)
    part = find_oips(subject, chunk.layer_name, list(chunk.maps), config, on_progress, execution=execution)
    part.save(chunk.folder(out_dir))
    return part


def merge_results(parts: Iterable[OipResult]) -> OipResult:
    """One result from chunk results of the same layer and settings, in map order."""
    parts = list(parts)
    if not parts:
        raise ConfigError("no partial results to merge")
    maps = sorted((oip for part in parts for oip in part.maps), key=lambda oip: oip.map_index)
    return dataclasses.replace(parts[0], maps=tuple(maps), seconds=sum(part.seconds for part in parts))


def _run_key(layer_name: str, maps: tuple[int, ...], config: OipConfig, model_hash: str | None,
             encoding: InputEncoding) -> dict:
    """What a resumed run must share with the run it continues: what decides the OIPs."""
    key = {"layer_name": layer_name, "maps": list(maps), "config": config.to_dict(), "model_hash": model_hash}
    if encoding.kind != "standardize":  # keys of standardized runs stay as before
        key["encoding"] = {k: v for k, v in encoding.to_dict().items() if k != "source"}
    return key


def finished_result(out_dir: str | os.PathLike, key: dict | None = None) -> OipResult | None:
    """The complete result in ``out_dir`` if there is one (and it matches ``key``), else None."""
    out_dir = Path(out_dir)
    if not (out_dir / RESULT_JSON).is_file() or not (out_dir / RUN_JSON).is_file():
        return None
    if key is not None and json.loads((out_dir / RUN_JSON).read_text()) != key:
        return None
    return OipResult.load(out_dir)


def _kept_parts(out_dir: Path, layer_name: str, selected: tuple[int, ...]) -> list[OipResult]:
    """The finished chunks an interrupted run left, each map once; unreadable ones are left out."""
    kept, seen, wanted = [], set(), set(selected)
    for folder in sorted((out_dir / PARTS).glob("maps-*")):
        try:
            part = OipResult.load(folder)
        except ConfigError:
            continue  # a chunk interrupted while it was saved
        maps = {oip.map_index for oip in part.maps}
        if part.layer_name == layer_name and maps <= wanted and not maps & seen:
            kept.append(part)
            seen |= maps
    return kept


def _examined(subject: Subject, result: OipResult, images, examples_path: Path, resume: bool,
              on_progress: Callable[[int, int], None] | None) -> tuple[OipResult, DatasetExamples]:
    """The result woken and assessed on the images, and the examples (kept ones on resume)."""
    if resume and examples_path.is_file() and all(m.superstimulus_ratio is not None for m in result.maps):
        return result, DatasetExamples.load(examples_path)
    result, examples = examine_layer(subject, result, images, on_progress=on_progress)
    examples.save(examples_path)
    return result, examples


def _run_layer(subject: Subject, layer_name: str, maps, config: OipConfig, out_dir: Path, *, resume: bool,
               chunk_maps: int | None, execution: Execution, images, examples_path: Path | None,
               on_progress: Callable[[int, int], None] | None,
               on_examples: Callable[[int, int], None] | None) -> tuple[OipResult, DatasetExamples | None]:
    n_maps = int(subject.feature_submodel(layer_name).outputs[0].shape[-1])
    selected = parse_maps(maps, n_maps)
    config.check_image_size(*subject.input_shape[:2])  # before anything is written
    if chunk_maps is not None and chunk_maps < 1:
        raise ConfigError(f"chunk_maps must be >= 1, got {chunk_maps}")
    examples_path = examples_path or out_dir / EXAMPLES_NPZ
    key = _run_key(layer_name, selected, config, subject.model_hash, subject.encoding)
    run_file = out_dir / RUN_JSON
    total = len(selected) * config.n_per_map
    parts: list[OipResult] = []
    if resume and run_file.is_file():
        if json.loads(run_file.read_text()) != key:
            raise ConfigError(
                f"{out_dir} holds a run with other settings (layer, maps, parameters or model); "
                "resume it with the same options, or choose another --out"
            )
        done = finished_result(out_dir, key)
        if done is not None:
            if on_progress:
                on_progress(total, total)
            if images is None:
                return done, None
            result, examples = _examined(subject, done, images, examples_path, resume, on_examples)
            if result is not done:
                result.save(out_dir)
            return result, examples
        parts = _kept_parts(out_dir, layer_name, selected)
    else:  # a fresh run: what an earlier run left here must not pass for this run's result
        shutil.rmtree(out_dir / PARTS, ignore_errors=True)
        for name in (RESULT_JSON, ARRAYS_NPZ, RUN_JSON):
            (out_dir / name).unlink(missing_ok=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write(run_file, json.dumps(key, indent=1).encode())

    have = {oip.map_index for part in parts for oip in part.maps}
    todo = [m for m in selected if m not in have]
    size = chunk_maps or default_chunk_maps(subject, layer_name, config, execution)
    finished = len(have) * config.n_per_map
    if on_progress and finished:
        on_progress(finished, total)
    for chunk in plan_chunks(layer_name, todo, size):
        progress = ((lambda done, _total, offset=finished: on_progress(offset + done, total))
                    if on_progress else None)
        parts.append(run_chunk(subject, chunk, config, out_dir, execution=execution, on_progress=progress))
        finished += len(chunk.maps) * config.n_per_map
        if on_progress:
            on_progress(finished, total)
    result = dataclasses.replace(merge_results(parts), model_hash=subject.model_hash)
    examples = None
    if images is not None:
        result, examples = _examined(subject, result, images, examples_path, False, on_examples)
    result.save(out_dir)
    shutil.rmtree(out_dir / PARTS, ignore_errors=True)
    return result, examples


def run_layer(
    model,
    layer_name: str,
    maps: str | int | Iterable[int] | None = "all",
    config: OipConfig = OipConfig(),
    out_dir: str | os.PathLike = "oipscope-out",
    *,
    resume: bool = False,
    chunk_maps: int | None = None,
    model_path: str | os.PathLike | None = None,
    images=None,
    execution: Execution = Execution(),
    on_progress: Callable[[int, int], None] | None = None,
    on_examples: Callable[[int, int], None] | None = None,
) -> OipResult:
    """Find the OIPs of a layer chunk by chunk, saving each chunk; save and return the merged result.

    Args:
        model, layer_name, maps, config: as for :func:`oipscope.find_oips` (``model``
            a :class:`~oipscope.subject.Subject` or a Keras model).
        out_dir: folder of the result; chunks go to ``out_dir/parts`` meanwhile.
        resume: keep the chunks (or the whole result) of an earlier run with the same
            settings instead of starting over; execution settings may differ.
        chunk_maps: maps per saved chunk (default :func:`default_chunk_maps`).
        model_path: the model file, to record its hash.
        images: an :class:`~oipscope.imagesets.ImageSet` or a
            :class:`~oipscope.data.Dataset`: before the result is saved, silent OIPs
            are retried from the maps' top images and every OIP is assessed
            (:func:`examine_layer`); the dataset examples go to ``out_dir/examples.npz``.
        execution: how the work is carried out; never changes an OIP.
        on_progress: ``on_progress(done, total)`` in OIPs.
        on_examples: ``on_examples(done, total)`` in images, while examples are gathered.

    Raises:
        ConfigError: ``resume`` on a folder that holds a run with other settings.
    """
    subject = as_subject(model, path=model_path)
    images = _image_set(images, subject)
    result, _ = _run_layer(subject, layer_name, maps, config, Path(out_dir), resume=resume, chunk_maps=chunk_maps,
                           execution=execution, images=images, examples_path=None, on_progress=on_progress,
                           on_examples=on_examples)
    return result


def dataset_fits(model, dataset) -> bool:
    """Whether a dataset's (or image set's) images have the model's input size and channel count."""
    height, width, channels = as_subject(model).input_shape
    if hasattr(dataset, "input_shape"):  # an ImageSet converts its images to the shape it was opened for
        return tuple(dataset.input_shape) == (height, width, channels)
    images = dataset.train.images
    image_channels = images.shape[3] if images.ndim == 4 else 1
    return images.shape[1:3] == (height, width) and image_channels == channels


def _image_set(images, model):
    """An ImageSet from an ImageSet, or from a Dataset (its training split)."""
    if images is None or hasattr(images, "batches"):
        return images
    if isinstance(images, Dataset):
        from .imagesets import array_images

        if not dataset_fits(model, images):
            raise ConfigError(f"{images.name} images do not fit the input of model {as_subject(model).name!r}; "
                              "give matching images or none")
        return array_images(images.train.images, as_subject(model).input_shape, labels=images.train.labels,
                            class_names=images.class_names, name=images.name)
    raise ConfigError(f"expected an ImageSet (oipscope.imagesets.open_images) or a Dataset, "
                      f"got {type(images).__name__}")


def wake_from_data(model, result: OipResult, examples: DatasetExamples, images, *,
                   execution: Execution = Execution()) -> OipResult:
    """Give silent OIPs of maps that fire on the data one more ascent, from their top dataset images.

    Random starts, restarts and the pre-activation rescue can all miss a map
    that real images do drive (a max-pooling layer has no pre-activation to
    rescue with). Such a map's ``n``-th silent OIP starts from its ``n``-th best
    dataset image; its ``start`` becomes ``"data#<dataset index>"``. Maps that
    no dataset image drives stay silent.

    Args:
        model: the model (or :class:`~oipscope.subject.Subject`).
        result: the layer's OIPs.
        examples: dataset examples of the same layer.
        images: the images the examples index: an ImageSet or pixels (N, H, W[, C]).
    """
    positions, starts, labels = [], [], []
    seen: dict[int, int] = {}
    for position, oip in enumerate(result.maps):
        m = oip.map_index
        if not needs_retry(oip.status, oip.activation):
            continue
        rank = seen.get(m, 0)
        seen[m] = rank + 1
        if rank >= examples.k or not float(examples.top_values[m, rank]) > 0:
            continue
        index = int(examples.top_indices[m, rank])
        image = np.asarray(images[index], np.float32)
        positions.append(position)
        starts.append(image[..., np.newaxis] if image.ndim == 2 else image)
        labels.append(f"data#{index}")
    if not positions:
        return result
    return retry_from(model, result, positions, np.stack(starts), labels, execution=execution)


def examine_layer(model, result: OipResult, images,
                  on_progress: Callable[[int, int], None] | None = None, *,
                  wake: bool = True) -> tuple[OipResult, DatasetExamples]:
    """Dataset examples of the result's layer and the result, assessed against them.

    Args:
        model: the model (or :class:`~oipscope.subject.Subject`).
        result: the layer's OIPs.
        images: an :class:`~oipscope.imagesets.ImageSet` (streamed), or a
            :class:`~oipscope.data.Dataset` (its training split).
        on_progress: ``on_progress(done, total)`` in images.
        wake: first retry silent OIPs of maps that fire on the data from their top
            dataset images (:func:`wake_from_data`).
    """
    subject = as_subject(model, result.encoding)
    images = _image_set(images, subject)
    n_classes = len(images.class_names) if images.class_names is not None else None
    examples = dataset_examples(subject, result.layer_name, images, on_progress=on_progress, n_classes=n_classes)
    if wake:
        result = wake_from_data(subject, result, examples, images)
    return assess_oips(subject, result, examples), examples


@dataclass(frozen=True, eq=False)
class LayerRun:
    """One layer of a zoo run: its OIPs (assessed when images were given) and dataset examples."""

    result: OipResult
    examples: DatasetExamples | None
    folder: Path


def run_zoo(
    model,
    layers: str | Sequence[str] | None = None,
    config: OipConfig = OipConfig(),
    out_dir: str | os.PathLike = "oipscope-zoo",
    *,
    images=None,
    dataset: Dataset | None = None,
    maps: str | int | Iterable[int] | None = "all",
    resume: bool = False,
    model_path: str | os.PathLike | None = None,
    execution: Execution = Execution(),
    on_layer: Callable[[str, int, int], None] | None = None,
    on_progress: Callable[[str, str, int, int], None] | None = None,
) -> list[LayerRun]:
    """OIPs for the maps of every chosen layer, each layer saved as soon as it is done.

    Args:
        model: a :class:`~oipscope.subject.Subject` or a Keras model.
        layers: names, shell globs or ``"all"`` (:func:`oipscope.layers.select_layers`);
            default one layer per convolution (:func:`oipscope.layers.default_layers`).
        config: the OIP search parameters, the same for every layer.
        out_dir: the zoo folder; each layer's run goes to
            :func:`oipscope.layout.zoo_layer_folder`.
        images: an :class:`~oipscope.imagesets.ImageSet`: when given, the dataset
            examples of each layer and the OIPs' superstimulus ratios and evoked classes.
        dataset: a :class:`~oipscope.data.Dataset` instead of ``images`` (its training split).
        maps: the maps of every layer ("all", "0-15", ...; indices past a layer's
            last map are left out for that layer).
        resume: keep the layers (and chunks) an interrupted run with the same settings finished.
        model_path: the model file, to record its hash.
        execution: how the work is carried out; never changes an OIP.
        on_layer: ``on_layer(layer_name, index, n_layers)`` before each layer.
        on_progress: ``on_progress(layer_name, stage, done, total)``; stage ``"OIPs"``
            counts maps, then stage ``"examples"`` counts dataset images.
    """
    subject = as_subject(model, path=model_path)
    names = select_layers(subject.model, layers)
    if not names:
        raise LayerError(f"model {subject.name!r} has no layers with feature maps (4-D outputs)")
    layer_maps = {name: layer_map_selection(subject, name, maps) for name in names}  # all checked up front
    images = _image_set(images if images is not None else dataset, subject)
    if images is not None and not dataset_fits(subject, images):
        raise ConfigError(f"the images of {images.name} do not fit the input of model {subject.name!r}; "
                          "give matching images or none")
    runs = []
    for index, name in enumerate(names):
        if on_layer:
            on_layer(name, index, len(names))

        def report(stage: str, name: str = name):
            return (lambda done, total: on_progress(name, stage, done, total)) if on_progress else None

        folder = zoo_layer_folder(out_dir, name)
        result, examples = _run_layer(
            subject, name, layer_maps[name], config, folder, resume=resume, chunk_maps=None, execution=execution,
            images=images, examples_path=zoo_examples_file(out_dir, name), on_progress=report("OIPs"),
            on_examples=report("examples"))
        runs.append(LayerRun(result=result, examples=examples, folder=folder))
    return runs


def layer_map_selection(model, layer_name: str, maps: str | int | Iterable[int] | None = "all") -> tuple[int, ...]:
    """The maps of one layer a zoo-wide selection picks: indices past its last map are left out.

    Raises:
        LayerError: the layer has no feature maps, or none of the selected maps exists in it.
    """
    n_maps = int(as_subject(model).feature_submodel(layer_name).outputs[0].shape[-1])
    if maps is None or maps == "all":
        return tuple(range(n_maps))
    wide = parse_maps(maps, 1 << 30)
    chosen = tuple(m for m in wide if m < n_maps)
    if not chosen:
        raise LayerError(f"layer {layer_name!r} has {n_maps} maps (0..{n_maps - 1}); "
                         f"none of the maps {maps!r} exists in it")
    return chosen
