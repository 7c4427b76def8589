"""Resumable OIP runs: a layer's maps in chunks (:func:`run_layer`), or a whole model's layers
(:func:`run_zoo`), each piece saved as soon as it is done.

An interrupted run (Ctrl-C, a crash) keeps every finished chunk in
``<out>/parts/``; running again with ``resume=True`` computes only the missing
chunks and merges them. Chunks are the same in both runs and every map's random
draws depend only on (seed, map), so a resumed run ends with the same OIPs as an
uninterrupted one.
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

from .data import Dataset
from .engine import OipConfig
from .errors import ConfigError, LayerError
from .examples import DatasetExamples, assess_oips, dataset_examples
from .files import atomic_write, safe_filename
from .initial import parse_maps
from .models import feature_layers, feature_submodel, image_input_shape
from .results import ARRAYS_NPZ, RESULT_JSON, OipResult
from .search import file_sha256, find_oips, retry_from

__all__ = [
    "RUN_JSON",
    "LayerRun",
    "run_layer",
    "run_zoo",
    "examine_layer",
    "wake_from_data",
    "dataset_fits",
    "merge_results",
    "finished_result",
    "zoo_layer_folder",
]

RUN_JSON = "run.json"
_PARTS = "parts"


def merge_results(parts: Iterable[OipResult]) -> OipResult:
    """One result from chunk results of the same layer and settings, in map order."""
    parts = list(parts)
    if not parts:
        raise ConfigError("no partial results to merge")
    maps = sorted((oip for part in parts for oip in part.maps), key=lambda oip: oip.map_index)
    return dataclasses.replace(parts[0], maps=tuple(maps), seconds=sum(part.seconds for part in parts))


def _run_key(layer_name: str, maps: tuple[int, ...], config: OipConfig, model_hash: str | None,
             chunk_maps: int) -> dict:
    return {"layer_name": layer_name, "maps": list(maps), "config": config.to_dict(),
            "model_hash": model_hash, "chunk_maps": chunk_maps}


def finished_result(out_dir: str | os.PathLike, key: dict | None = None) -> OipResult | None:
    """The complete result in ``out_dir`` if there is one (and it matches ``key``), else None."""
    out_dir = Path(out_dir)
    if not (out_dir / RESULT_JSON).is_file() or not (out_dir / RUN_JSON).is_file():
        return None
    if key is not None and json.loads((out_dir / RUN_JSON).read_text()) != key:
        return None
    return OipResult.load(out_dir)


def run_layer(
    model,
    layer_name: str,
    maps: str | int | Iterable[int] | None = "all",
    config: OipConfig = OipConfig(),
    out_dir: str | os.PathLike = "oipscope-out",
    *,
    resume: bool = False,
    chunk_maps: int = 32,
    model_path: str | os.PathLike | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> OipResult:
    """Find the OIPs of a layer chunk by chunk, saving each chunk; return the merged result.

    Args:
        model, layer_name, maps, config: as for :func:`oipscope.find_oips`.
        out_dir: folder of the result; chunks go to ``out_dir/parts`` meanwhile.
        resume: keep chunks (or the whole result) of an earlier run with the same
            settings instead of starting over.
        chunk_maps: maps per saved chunk.
        model_path: the model file, to record its hash.
        on_progress: ``on_progress(done, total)`` in OIPs.

    Raises:
        ConfigError: ``resume`` on a folder that holds a run with other settings.
    """
    if chunk_maps < 1:
        raise ConfigError(f"chunk_maps must be >= 1, got {chunk_maps}")
    out_dir = Path(out_dir)
    n_maps = int(feature_submodel(model, layer_name).outputs[0].shape[-1])
    selected = parse_maps(maps, n_maps)
    config.check_image_size(*image_input_shape(model)[:2])  # before anything is written
    model_hash = file_sha256(model_path) if model_path is not None else None
    key = _run_key(layer_name, selected, config, model_hash, chunk_maps)
    parts_dir = out_dir / _PARTS
    run_file = out_dir / RUN_JSON
    if resume and run_file.is_file():
        if json.loads(run_file.read_text()) != key:
            raise ConfigError(
                f"{out_dir} holds a run with other settings (layer, maps, parameters or model); "
                "resume it with the same options, or choose another --out"
            )
        done = finished_result(out_dir, key)
        if done is not None:
            if on_progress:
                on_progress(len(done.maps), len(done.maps))
            return done
    else:  # a fresh run: what an earlier run left here must not pass for this run's result
        shutil.rmtree(parts_dir, ignore_errors=True)
        for name in (RESULT_JSON, ARRAYS_NPZ, RUN_JSON):
            (out_dir / name).unlink(missing_ok=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write(run_file, json.dumps(key, indent=1).encode())

    chunks = [selected[start:start + chunk_maps] for start in range(0, len(selected), chunk_maps)]
    total = len(selected) * config.n_per_map
    parts: list[OipResult] = []
    for chunk in chunks:
        chunk_dir = parts_dir / f"maps-{chunk[0]:05d}-{chunk[-1]:05d}"
        part = None
        if resume and (chunk_dir / RESULT_JSON).is_file():
            part = OipResult.load(chunk_dir)
        if part is None:
            offset = len(parts) * chunk_maps * config.n_per_map
            part = find_oips(
                model, layer_name, list(chunk), config, model_path=None,
                on_progress=(lambda done, _t, offset=offset: on_progress(offset + done, total))
                if on_progress else None,
            )
            part.save(chunk_dir)
        parts.append(part)
        if on_progress:
            on_progress(len(parts) * chunk_maps * config.n_per_map if len(parts) < len(chunks) else total, total)
    result = dataclasses.replace(merge_results(parts), model_hash=model_hash)
    result.save(out_dir)
    shutil.rmtree(parts_dir, ignore_errors=True)
    return result


def dataset_fits(model, dataset: Dataset) -> bool:
    """Whether the dataset's images have the model's input size and channel count."""
    height, width, channels = image_input_shape(model)
    images = dataset.train.images
    image_channels = images.shape[3] if images.ndim == 4 else 1
    return images.shape[1:3] == (height, width) and image_channels == channels


def wake_from_data(model, result: OipResult, examples: DatasetExamples, images) -> OipResult:
    """Give silent OIPs of maps that fire on the data one more ascent, from their top dataset images.

    Random starts, restarts and the pre-activation rescue can all miss a map
    that real images do drive (a max-pooling layer has no pre-activation to
    rescue with). Such a map's ``n``-th silent OIP starts from its ``n``-th best
    dataset image; its ``start`` becomes ``"data#<dataset index>"``. Maps that
    no dataset image drives stay silent.

    Args:
        model: the model.
        result: the layer's OIPs.
        examples: dataset examples of the same layer.
        images: the raw dataset images the examples index (N, H, W[, C]).
    """
    positions, starts, labels = [], [], []
    seen: dict[int, int] = {}
    for position, oip in enumerate(result.maps):
        m = oip.map_index
        if oip.status != "silent" and oip.activation > 0:
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
    return retry_from(model, result, positions, np.stack(starts), labels)


def examine_layer(model, result: OipResult, dataset: Dataset,
                  on_progress: Callable[[int, int], None] | None = None, *,
                  wake: bool = True) -> tuple[OipResult, DatasetExamples]:
    """Dataset examples of the result's layer (training split) and the result, assessed against them.

    With ``wake`` (default), silent OIPs of maps that fire on the data are retried
    from their top dataset images first (:func:`wake_from_data`).
    """
    examples = dataset_examples(model, result.layer_name, dataset.train.images, dataset.train.labels,
                                on_progress=on_progress, n_classes=len(dataset.class_names))
    if wake:
        result = wake_from_data(model, result, examples, dataset.train.images)
    return assess_oips(result, model, examples), examples


@dataclass(frozen=True, eq=False)
class LayerRun:
    """One layer of a zoo run: its OIPs (assessed when a dataset was given) and dataset examples."""

    result: OipResult
    examples: DatasetExamples | None
    folder: Path


def zoo_layer_folder(out_dir: str | os.PathLike, layer_name: str) -> Path:
    """Where a zoo run keeps the OIPs of one layer: ``<out>/data/<safe name>/result``.

    The gallery (:mod:`oipscope.report`) keeps its data in the same place, so
    ``oipscope report`` can rebuild the pages from a zoo folder.
    """
    return Path(out_dir) / "data" / safe_filename(layer_name) / "result"


def run_zoo(
    model,
    layers: Sequence[str] | None = None,
    config: OipConfig = OipConfig(),
    out_dir: str | os.PathLike = "oipscope-zoo",
    *,
    dataset: Dataset | None = None,
    resume: bool = False,
    model_path: str | os.PathLike | None = None,
    on_layer: Callable[[str, int, int], None] | None = None,
    on_progress: Callable[[str, str, int, int], None] | None = None,
) -> list[LayerRun]:
    """OIPs for every map of every chosen layer, each layer saved as soon as it is done.

    Args:
        model: the Keras model.
        layers: layer names; default all layers with feature maps.
        config: the OIP search parameters, the same for every layer.
        out_dir: the zoo folder; each layer's data goes to :func:`zoo_layer_folder`.
        dataset: when given, the dataset examples of each layer (training split) and the
            OIPs' superstimulus ratios and evoked classes.
        resume: keep the layers (and chunks) an interrupted run with the same settings finished.
        model_path: the model file, to record its hash.
        on_layer: ``on_layer(layer_name, index, n_layers)`` before each layer.
        on_progress: ``on_progress(layer_name, stage, done, total)``; stage ``"OIPs"``
            counts maps, then stage ``"examples"`` counts dataset images.
    """
    names = list(layers) if layers else [info.name for info in feature_layers(model)]
    if not names:
        raise LayerError(f"model {model.name!r} has no layers with feature maps (4-D outputs)")
    for name in names:
        feature_submodel(model, name)  # every name checked before the first minute is spent
    if dataset is not None and not dataset_fits(model, dataset):
        raise ConfigError(f"{dataset.name} images do not fit the input of model {model.name!r}; "
                          "give a matching dataset or none")
    runs = []
    for index, name in enumerate(names):
        if on_layer:
            on_layer(name, index, len(names))
        folder = zoo_layer_folder(out_dir, name)
        def report(stage: str, name: str = name):
            return (lambda done, total: on_progress(name, stage, done, total)) if on_progress else None

        examples_file = folder.parent / "examples.npz"
        result = run_layer(model, name, "all", config, folder, resume=resume,
                           model_path=model_path, on_progress=report("OIPs"))
        examples = None
        if dataset is not None:
            if resume and examples_file.is_file() and all(m.superstimulus_ratio is not None for m in result.maps):
                examples = DatasetExamples.load(examples_file)
            else:
                result, examples = examine_layer(model, result, dataset, on_progress=report("examples"))
                result.save(folder)
                examples.save(examples_file)
        runs.append(LayerRun(result=result, examples=examples, folder=folder))
    return runs
