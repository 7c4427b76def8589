"""Resumable OIP runs: a layer's maps in chunks (:func:`run_layer`), or a whole model's layers
(:func:`run_zoo`), each piece saved as soon as it is done.

A run is a list of layer jobs. Each job knows its folder (:mod:`oipscope.runs.layout`),
what an earlier run left there and which chunks (:mod:`oipscope.runs.chunks`) are
still to do; a backend (this process, or a Ray cluster) runs the chunks of all
jobs, the driver saves each part the moment it arrives, and a job whose last part
has arrived is merged, examined on the images and saved, once. An interrupted
run (Ctrl-C, a crash, a lost worker) keeps every finished chunk in
``<out>/parts/``; ``resume=True`` computes only the maps no kept chunk holds.

A classifier's zoo also gets its class OIPs (:func:`run_classes`): one OIP per
output class, the same kind of layer run, kept and resumed the same way.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
import json
import os
import shutil
import warnings
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np

from .chunks import Chunk, LocalBackend, default_chunk_maps, merge_results, plan_chunks
from ..config import Execution, OipConfig
from ..data.datasets import Dataset
from ..model.encoding import InputEncoding
from ..errors import ConfigError, DataError, LayerError
from ..analysis.examples import DatasetExamples
from ..analysis.assessment import evoked_classes
from ..files import atomic_write, read_saved_json
from ..search.starts import parse_maps
from ..model.canvas import layer_canvas
from ..model.layers import select_layers
from .layout import EXAMPLES_NPZ, PARTS, RUN_JSON, zoo_examples_file, zoo_layer_folder
from .examine import dataset_fits, examine_layer, image_set
from .lock import output_lock
from .phases import run_key_of
from ..search.results import ARRAYS_NPZ, RESULT_JSON, OipResult
from ..model.subject import Subject, as_subject

__all__ = [
    "LayerRun",
    "run_layer",
    "run_zoo",
    "run_classes",
    "class_layer",
    "class_config",
    "CLASS_LIMIT",
    "finished_result",
    "layer_map_selection",
    "RUN_JSON",
    "zoo_layer_folder",
]


CLASS_LIMIT = 100
"""A zoo finds class OIPs by default only for outputs with at most this many classes (an
ImageNet head's 1000 took about 87 minutes on a 2-core CPU for MobileNetV2: ``--classes``)."""


def _run_key(layer_name: str, maps: tuple[int, ...], config: OipConfig, model_hash: str | None,
             encoding: InputEncoding, input_size: tuple | None = None, canvas: tuple | None = None) -> dict:
    """What a resumed run must share with the run it continues: what decides the OIPs."""
    key = {"layer_name": layer_name, "maps": list(maps), "config": config.to_dict(), "model_hash": model_hash}
    if encoding.kind != "standardize" or encoding.channel_order != "rgb":  # keys of plain standardized runs stay
        key["encoding"] = {k: v for k, v in encoding.to_dict().items() if k != "source"}
    if input_size is not None:  # an any-size model: the size chosen decides the OIPs too
        key["input_size"] = list(input_size)
    key.update({"canvas": list(canvas)} if canvas else {})  # OIPs grown at another size than the model's
    return key


def _saved_key(path: Path) -> dict:
    """A run.json as a run key; its config read as today's :class:`OipConfig` reads it, so a run saved
    before a field was added (e.g. ``method``) is still resumed."""
    key = run_key_of(read_saved_json(path, "run settings"))  # without its phase times
    if isinstance(key, dict) and isinstance(key.get("config"), dict):
        try:
            key = {**key, "config": OipConfig.from_dict(key["config"]).to_dict()}
        except ConfigError:  # other settings altogether: compared as saved, and so refused
            pass
    return key


def _agrees(result: OipResult, key: dict) -> bool:
    """Whether a saved result (or chunk) was computed with the settings of ``key`` (a run's run.json)."""
    model_hash = result.model_hash if result.model_hash is not None else key.get("model_hash")
    mine = _run_key(result.layer_name, tuple(key.get("maps", ())), result.config, model_hash, result.encoding)
    return all(mine.get(name) == key.get(name) for name in (set(mine) | set(key)) - {"input_size", "canvas"})


def finished_result(out_dir: str | os.PathLike, key: dict | None = None) -> OipResult | None:
    """The complete result in ``out_dir`` if there is one (and it and run.json match ``key``), else None.

    Raises:
        DataError: run.json or the result is damaged.
    """
    out_dir = Path(out_dir)
    if not (out_dir / RESULT_JSON).is_file() or not (out_dir / RUN_JSON).is_file():
        return None
    if key is not None and _saved_key(out_dir / RUN_JSON) != key:
        return None
    result = OipResult.load(out_dir)
    if key is not None and not (_agrees(result, key)
                                and sorted({oip.map_index for oip in result.maps}) == sorted(key["maps"])):
        return None  # e.g. written by another run on the same folder
    return result


def _kept_parts(out_dir: Path, key: dict, selected: tuple[int, ...],
                note: Callable[[str], None]) -> list[OipResult]:
    """The finished chunks an interrupted run left, each map once; damaged ones and ones of other
    settings are left out (and computed again), each with a note."""
    kept, seen, wanted = [], set(), set(selected)
    for folder in sorted((out_dir / PARTS).glob("maps-*")):
        if not (folder / RESULT_JSON).is_file():
            continue  # a chunk interrupted while it was saved
        try:
            part = OipResult.load(folder)
        except DataError as exc:
            note(f"recomputing a damaged chunk: {exc}")
            continue
        maps = {oip.map_index for oip in part.maps}
        if not _agrees(part, key):
            note(f"recomputing chunk {folder}: it was computed with other settings than {out_dir / RUN_JSON}")
        elif maps <= wanted and not maps & seen:
            kept.append(part)
            seen |= maps
    return kept


def _note_default(line: str) -> None:
    """Where a run's notes go without ``on_note``: a Python warning."""
    warnings.warn(line, RuntimeWarning, stacklevel=4)


def _examined(subject: Subject, result: OipResult, images, examples_path: Path, resume: bool,
              on_progress: Callable[[int, int], None] | None,
              note: Callable[[str], None] = _note_default,
              execution: Execution = Execution()) -> tuple[OipResult, DatasetExamples]:
    """The result woken and assessed on the images, and the examples (kept ones on resume)."""
    if resume and examples_path.is_file() and all(m.superstimulus_ratio is not None for m in result.maps):
        try:
            return result, DatasetExamples.load(examples_path)
        except DataError as exc:
            note(f"recomputing damaged dataset examples: {exc}")
    result, examples = examine_layer(subject, result, images, on_progress=on_progress, execution=execution)
    examples.save(examples_path)
    return result, examples


class _LayerJob:
    """One layer of a run: its folder, what an earlier run left there, the chunks still to do."""

    def __init__(self, subject: Subject, layer_name: str, maps, config: OipConfig, out_dir: Path, *,
                 resume: bool, chunk_maps: int | None, execution: Execution, images, examples_path: Path | None,
                 on_progress: Callable[[int, int], None] | None, on_examples: Callable[[int, int], None] | None,
                 on_note: Callable[[str], None] | None = None):
        n_maps = int(subject.feature_submodel(layer_name).outputs[0].shape[-1])
        selected = parse_maps(maps, n_maps)
        config.check_image_size(*subject.input_shape[:2])  # before anything is written
        if chunk_maps is not None and chunk_maps < 1:
            raise ConfigError(f"chunk_maps must be >= 1, got {chunk_maps}")
        self.subject, self.layer_name, self.config, self.out_dir = subject, layer_name, config, out_dir
        self.images, self.resume = images, resume
        self.examples_path = examples_path or out_dir / EXAMPLES_NPZ
        self.on_progress, self.on_examples = on_progress, on_examples
        self.note = on_note or _note_default
        self.total = len(selected) * config.n_per_map
        self.key = _run_key(layer_name, selected, config, subject.model_hash, subject.encoding,
                            subject.input_size, layer_canvas(subject, layer_name, config))
        self.parts: list[OipResult] = []
        self.done: OipResult | None = None  # a finished result of an earlier run
        self.chunks: list[Chunk] = []
        self.running: dict[Chunk, int] = {}
        self.selected, self.chunk_maps, self.execution = selected, chunk_maps, execution

    def prepare(self, slots: int = 1) -> None:
        """Check the folder against ``resume``, keep what can be kept, plan the chunks to do.

        By default a chunk holds as many maps as one batch; with ``slots`` chunks
        running at once (a cluster), a layer is cut into at least ``slots`` chunks.
        """
        out_dir, run_file = self.out_dir, self.out_dir / RUN_JSON
        if self.resume and run_file.is_file():
            if _saved_key(run_file) != self.key:
                raise ConfigError(
                    f"{out_dir} holds a run with other settings (layer, maps, parameters, model, input encoding or size); "
                    "resume it with the same options, or choose another --out"
                )
            try:
                self.done = finished_result(out_dir, self.key)
                if self.done is None and (out_dir / RESULT_JSON).is_file():
                    self.note(f"recomputing the result in {out_dir}: it was computed with other settings than "
                              f"{run_file}")
            except DataError as exc:  # a result of another format is refused (ConfigError), not overwritten
                self.note(f"recomputing a damaged result: {exc}")
            if self.done is not None:
                return
            self.parts = _kept_parts(out_dir, self.key, self.selected, self.note)
        else:  # a fresh run: what an earlier run left here must not pass for this run's result
            shutil.rmtree(out_dir / PARTS, ignore_errors=True)
            for name in (RESULT_JSON, ARRAYS_NPZ, RUN_JSON):
                (out_dir / name).unlink(missing_ok=True)
        out_dir.mkdir(parents=True, exist_ok=True)
        atomic_write(run_file, json.dumps(self.key, indent=1).encode())
        have = {oip.map_index for part in self.parts for oip in part.maps}
        todo = [m for m in self.selected if m not in have]
        size = self.chunk_maps or min(default_chunk_maps(self.subject, self.layer_name, self.config, self.execution),
                                      max(1, -(-len(todo) // slots)))  # every slot of a cluster gets a share
        self.chunks = plan_chunks(self.layer_name, todo, size)

    @property
    def finished_oips(self) -> int:
        return sum(len(part.maps) for part in self.parts)

    def progress(self, chunk: Chunk | None = None, done: int = 0) -> None:
        """Report the OIPs finished, ``done`` of them in ``chunk`` that is still running."""
        if chunk is not None:
            self.running[chunk] = done
        if self.on_progress:
            finished = self.total if self.done is not None else self.finished_oips + sum(self.running.values())
            self.on_progress(min(finished, self.total), self.total)

    def take(self, chunk: Chunk, part: OipResult) -> None:
        """A chunk is done: save it at once."""
        part.save(chunk.folder(self.out_dir))
        self.parts.append(part)
        self.running.pop(chunk, None)
        self.progress()

    @property
    def complete(self) -> bool:
        return self.done is not None or self.finished_oips >= self.total

    def finish(self) -> tuple[OipResult, DatasetExamples | None]:
        """Merge, examine on the images (silent OIPs retried from top images, every OIP assessed), save once."""
        self.progress()
        if self.done is not None:
            if self.images is None:
                return self.done, None
            result, examples = _examined(self.subject, self.done, self.images, self.examples_path, self.resume,
                                         self.on_examples, self.note, self.execution)
            if result is not self.done:
                result.save(self.out_dir)
            return result, examples
        result = dataclasses.replace(merge_results(self.parts), model_hash=self.subject.model_hash)
        examples = None
        if self.images is not None:
            result, examples = _examined(self.subject, result, self.images, self.examples_path, False,
                                         self.on_examples, execution=self.execution)
        result.save(self.out_dir)
        shutil.rmtree(self.out_dir / PARTS, ignore_errors=True)
        return result, examples


def _run_jobs(jobs: Sequence[_LayerJob], backend, execution: Execution,
              on_layer: Callable[[str, int, int], None] | None = None,
              on_finished: Callable[[int, tuple[OipResult, DatasetExamples | None]], None] | None = None,
              ) -> list[tuple[OipResult, DatasetExamples | None]]:
    """Run the chunks of every job on the backend; finish the jobs in order as their parts arrive
    (``on_finished(index, outcome)`` for each)."""
    backend = backend or LocalBackend()
    outcomes: list[tuple[OipResult, DatasetExamples | None]] = []

    def announce() -> None:
        if on_layer and len(outcomes) < len(jobs):
            on_layer(jobs[len(outcomes)].layer_name, len(outcomes), len(jobs))

    def finish_ready() -> None:
        while len(outcomes) < len(jobs) and jobs[len(outcomes)].complete:
            outcomes.append(jobs[len(outcomes)].finish())
            if on_finished:
                on_finished(len(outcomes) - 1, outcomes[-1])
            announce()

    announce()
    for job in jobs:
        job.prepare(backend.slots)
        job.progress()
    finish_ready()
    work = [(job, chunk) for job in jobs for chunk in job.chunks]
    if work:
        subject, config = jobs[0].subject, jobs[0].config

        def on_progress(index: int, done: int) -> None:
            job, chunk = work[index]
            job.progress(chunk, done)

        for index, part in backend.run(subject, [chunk for _, chunk in work], config, execution, on_progress):
            job, chunk = work[index]
            job.take(chunk, part)
            finish_ready()
    if len(outcomes) < len(jobs):
        raise RuntimeError(f"the backend returned {sum(len(j.parts) for j in jobs)} parts; some chunks are missing")
    return outcomes


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
    backend=None,
    on_progress: Callable[[int, int], None] | None = None,
    on_examples: Callable[[int, int], None] | None = None,
    on_note: Callable[[str], None] | None = None,
) -> OipResult:
    """Find the OIPs of a layer chunk by chunk, saving each chunk; save and return the merged result.

    Args:
        model, layer_name, maps, config: as for :func:`oipscope.find_oips` (``model``
            a :class:`~oipscope.model.subject.Subject` or a Keras model).
        out_dir: folder of the result; chunks go to ``out_dir/parts`` meanwhile.
        resume: keep the chunks (or the whole result) of an earlier run with the same
            settings instead of starting over; execution settings may differ.
        chunk_maps: maps per saved chunk (default :func:`default_chunk_maps`).
        model_path: the model file, to record its hash.
        images: an :class:`~oipscope.data.imagesets.ImageSet` or a
            :class:`~oipscope.data.datasets.Dataset`: before the result is saved, silent OIPs
            are retried from the maps' top images and every OIP is assessed
            (:func:`examine_layer`); the dataset examples go to ``out_dir/examples.npz``.
        execution: how the work is carried out; never changes an OIP.
        backend: where the chunks run: :class:`~oipscope.runs.chunks.LocalBackend` (default,
            this process) or :class:`~oipscope.runs.cluster.RayBackend`.
        on_progress: ``on_progress(done, total)`` in OIPs.
        on_examples: ``on_examples(done, total)`` in images, while examples are gathered.
        on_note: ``on_note(line)`` for what the run does by itself: a damaged chunk or file
            of an earlier run recomputed, a stale lock taken over (default: a warning).

    Raises:
        ConfigError: ``resume`` on a folder that holds a run with other settings.
        FolderInUseError: another run is writing ``out_dir`` (:mod:`oipscope.runs.lock`).
        DataError: ``resume`` on a folder whose run.json is damaged.
    """
    subject = as_subject(model, path=model_path)
    images = image_set(images, subject)
    job = _LayerJob(subject, layer_name, maps, config, Path(out_dir), resume=resume, chunk_maps=chunk_maps,
                    execution=execution, images=images, examples_path=None, on_progress=on_progress,
                    on_examples=on_examples, on_note=on_note)
    with output_lock(out_dir, on_note=on_note):
        [(result, _)] = _run_jobs([job], backend, execution)
    return result


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
    maps: str | int | Iterable[int] | Mapping[str, Iterable[int]] | None = "all",
    resume: bool = False,
    model_path: str | os.PathLike | None = None,
    execution: Execution = Execution(),
    backend=None,
    on_layer: Callable[[str, int, int], None] | None = None,
    on_progress: Callable[[str, str, int, int], None] | None = None,
    on_finished: Callable[[LayerRun], None] | None = None,
    on_note: Callable[[str], None] | None = None,
) -> list[LayerRun]:
    """OIPs for the maps of every chosen layer, each layer saved as soon as it is done.

    Args:
        model: a :class:`~oipscope.model.subject.Subject` or a Keras model.
        layers: names, shell globs or ``"all"`` (:func:`oipscope.model.layers.select_layers`);
            default one layer per convolution (:func:`oipscope.model.layers.default_layers`).
        config: the OIP search parameters, the same for every layer.
        out_dir: the zoo folder; each layer's run goes to
            :func:`oipscope.runs.layout.zoo_layer_folder`.
        images: an :class:`~oipscope.data.imagesets.ImageSet`: when given, the dataset
            examples of each layer and the OIPs' superstimulus ratios and evoked classes.
        dataset: a :class:`~oipscope.data.datasets.Dataset` instead of ``images`` (its training split).
        maps: the maps of every layer ("all", "0-15", ...; indices past a layer's
            last map are left out for that layer), or a mapping of layer names to each
            one's maps (e.g. sampled ones; a layer not in it: all).
        resume: keep the layers (and chunks) an interrupted run with the same settings finished.
        model_path: the model file, to record its hash.
        execution: how the work is carried out; never changes an OIP.
        backend: where the chunks run (default this process; or a
            :class:`~oipscope.runs.cluster.RayBackend`, which runs the chunks of all layers at once).
        on_layer: ``on_layer(layer_name, index, n_layers)`` when a layer becomes the next to finish.
        on_progress: ``on_progress(layer_name, stage, done, total)``; stage ``"OIPs"``
            counts maps, then stage ``"examples"`` counts dataset images.
        on_finished: ``on_finished(layer_run)`` for each layer as soon as it is finished, in
            order (e.g. :meth:`oipscope.gallery.site.Gallery.add`, to draw its pages meanwhile).
        on_note: as for :func:`run_layer`.
    """
    subject = as_subject(model, path=model_path)
    names = select_layers(subject.model, layers)
    if not names:
        raise LayerError(f"model {subject.name!r} has no layers with feature maps (4-D outputs)")
    chosen = (lambda name: maps.get(name, "all")) if isinstance(maps, Mapping) else (lambda name: maps)
    layer_maps = {name: layer_map_selection(subject, name, chosen(name)) for name in names}  # all checked up front
    images = image_set(images if images is not None else dataset, subject)
    if images is not None and not dataset_fits(subject, images):
        raise ConfigError(f"the images of {images.name} do not fit the input of model {subject.name!r}; "
                          "give matching images or none")
    jobs = []
    for name in names:
        def report(stage: str, name: str = name):
            return (lambda done, total: on_progress(name, stage, done, total)) if on_progress else None

        jobs.append(_LayerJob(subject, name, layer_maps[name], config, zoo_layer_folder(out_dir, name),
                              resume=resume, chunk_maps=None, execution=execution, images=images,
                              examples_path=zoo_examples_file(out_dir, name), on_progress=report("OIPs"),
                              on_examples=report("examples"), on_note=on_note))
    def layer_run(index: int, outcome: tuple[OipResult, DatasetExamples | None]) -> LayerRun:
        return LayerRun(result=outcome[0], examples=outcome[1], folder=jobs[index].out_dir)

    finished = (lambda index, outcome: on_finished(layer_run(index, outcome))) if on_finished else None
    with output_lock(out_dir, on_note=on_note):
        outcomes = _run_jobs(jobs, backend, execution, on_layer, finished)
    return [layer_run(index, outcome) for index, outcome in enumerate(outcomes)]


def layer_map_selection(subject: Subject, layer_name: str,
                        maps: str | int | Iterable[int] | None = "all") -> tuple[int, ...]:
    """The maps of one layer a zoo-wide selection picks: indices past its last map are left out.

    Raises:
        LayerError: the layer has no feature maps, or none of the selected maps exists in it.
    """
    n_maps = int(subject.feature_submodel(layer_name).outputs[0].shape[-1])
    if maps is None or maps == "all":
        return tuple(range(n_maps))
    wide = parse_maps(maps, 1 << 30)
    chosen = tuple(m for m in wide if m < n_maps)
    if not chosen:
        raise LayerError(f"layer {layer_name!r} has {n_maps} maps (0..{n_maps - 1}); "
                         f"none of the maps {maps!r} exists in it")
    return chosen


def class_layer(model, max_classes: int | None = CLASS_LIMIT) -> str | None:
    """The output layer of a classifier, whose class OIPs a zoo can show; None if there is none.

    That is the model's last layer when its output is 2-D, ``(N, classes)`` with at
    least 2 and (unless ``max_classes`` is None) at most ``max_classes`` classes.
    """
    layer = as_subject(model).model.layers[-1]
    try:
        shape = tuple(layer.output.shape)
    except (AttributeError, ValueError):  # a layer with several outputs
        return None
    if len(shape) != 2 or shape[-1] is None or int(shape[-1]) < 2:
        return None
    return layer.name if max_classes is None or int(shape[-1]) <= max_classes else None


def class_config(config: OipConfig) -> OipConfig:
    """The zoo's search method for its class OIPs: the same, with the objective ``"class"``."""
    return dataclasses.replace(config, objective="class")


def run_classes(
    model,
    config: OipConfig = OipConfig(),
    out_dir: str | os.PathLike = "oipscope-zoo",
    *,
    layer_name: str | None = None,
    resume: bool = False,
    model_path: str | os.PathLike | None = None,
    execution: Execution = Execution(),
    backend=None,
    on_layer: Callable[[str, int, int], None] | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    on_note: Callable[[str], None] | None = None,
) -> LayerRun:
    """The class OIPs of a classifier for a zoo: one OIP per output class, and what the model sees in each.

    Each OIP climbs one class logit (the pre-softmax output; objective ``"class"``,
    :class:`~oipscope.search.results.MapOip` ``map_index`` is the class); then the full model
    classifies it (``evoked_probabilities``; ``result.summary()["own_class"]``
    counts the OIPs seen as their own class). Saved like a layer of :func:`run_zoo`,
    in :func:`oipscope.runs.layout.zoo_layer_folder` of the output layer; the gallery
    (:func:`oipscope.gallery.site.write_gallery`, ``classes=``) shows it as ``classes.html``.

    Args:
        model: a :class:`~oipscope.model.subject.Subject` or a Keras model.
        config: the search method (e.g. the zoo's); its objective is replaced by ``"class"``.
        out_dir: the zoo folder.
        layer_name: the output layer; default :func:`class_layer` (any number of classes).
        resume, model_path, execution, backend: as for :func:`run_zoo`.
        on_layer: ``on_layer(layer_name, 0, 1)`` when the search starts.
        on_progress: ``on_progress(done, total)`` in OIPs.
        on_note: as for :func:`run_layer`.

    Raises:
        LayerError: the model has no 2-D output layer (and none was given).
    """
    subject = as_subject(model, path=model_path)
    name = layer_name or class_layer(subject, None)
    if name is None:
        raise LayerError(f"model {subject.name!r} is no classifier: its last layer does not output "
                         "(N, classes); give layer_name")
    config = class_config(config)
    job = _LayerJob(subject, name, "all", config, zoo_layer_folder(out_dir, name), resume=resume, chunk_maps=None,
                    execution=execution, images=None, examples_path=None, on_progress=on_progress,
                    on_examples=None, on_note=on_note)
    with output_lock(out_dir, on_note=on_note):
        [(result, _)] = _run_jobs([job], backend, execution, on_layer)
        if any(oip.evoked_probabilities is None for oip in result.maps):  # kept when resumed
            probabilities = evoked_classes(subject, np.stack([oip.image for oip in result.maps]), execution=execution)
            result = dataclasses.replace(result, maps=tuple(
                dataclasses.replace(oip, evoked_probabilities=p) for oip, p in zip(result.maps, probabilities)))
            result.save(job.out_dir)
    return LayerRun(result=result, examples=None, folder=job.out_dir)
