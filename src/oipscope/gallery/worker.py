"""A gallery drawn in a worker process while the zoo goes on searching.

Drawing a layer's cards is Python work (matplotlib, Pillow, numpy); in the zoo's own
process it competes with the search for the interpreter lock, and a thread measured no
faster than drawing after the search. A process of its own (spawned: it does not import
TensorFlow) draws each finished layer's pages while the next layer is searched.
:class:`BackgroundGallery` has :class:`~oipscope.gallery.site.Gallery`'s ``add``/``finish``/``close``
and writes the same files.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

from .pages import shown_indices
from .site import Gallery

__all__ = ["BackgroundGallery"]

_WORKER: dict[str, Any] = {}  # in the worker process: its Gallery and the images it was sent


def _ignore_interrupts() -> None:
    """Ctrl-C reaches the worker too; the zoo's process decides (and stops the worker)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _start_worker(parent_pid: int) -> None:
    """The worker's start: Ctrl-C left to the zoo's process, and an end with that process."""
    _ignore_interrupts()
    threading.Thread(target=_exit_with_parent, args=(parent_pid,), name="oipscope-parent-watch",
                     daemon=True).start()


def _exit_with_parent(parent_pid: int, poll_seconds: float = 0.5) -> None:
    """Wait for the zoo's process to end, then end this worker at once, writing nothing more.

    A zoo killed outright (``kill -9``) cannot stop its worker, which would wait for work on
    its pipe forever (or draw on into ``--out``). The parent's sentinel (a pipe that reaches
    EOF when the parent dies; a process handle on Windows) wakes this thread at once; the
    parent's pid (an orphan gets a new parent) is checked as well, in case the sentinel is missing.
    """
    parent = multiprocessing.parent_process()
    while True:
        if parent is not None:
            parent.join(poll_seconds)
            if not parent.is_alive():
                break
        else:
            time.sleep(poll_seconds)
        if os.getppid() != parent_pid:
            break
    os._exit(1)


def _open(out_dir: str, model_summary, options: dict) -> None:
    images, names = options.pop("images"), options.pop("names")
    _WORKER.update(gallery=Gallery(out_dir, model_summary, images=images, names=names, **options),
                   images=images, names=names)


def _add(layer, images: dict | None, names: dict | None) -> None:
    if images:  # the shown dataset images of this layer that earlier layers did not show
        _WORKER["images"].update(images)
        _WORKER["names"].update(names)
    _WORKER["gallery"].add(layer)


def _finish(classes) -> Path:
    return _WORKER["gallery"].finish(classes)


class BackgroundGallery:
    """:class:`~oipscope.gallery.site.Gallery` in a worker process: :meth:`add` returns at once.

    Args:
        out_dir, model_summary: as for :func:`~oipscope.gallery.site.write_gallery`.
        images: an :class:`~oipscope.data.imagesets.ImageSet` (only the images a layer shows are sent
            to the worker, with their names), pixels, or None.
        options: other :class:`~oipscope.gallery.site.Gallery` arguments (``contrast``, ``dpi``, ...).
    """

    def __init__(self, out_dir: str | os.PathLike, model_summary, *, images=None, **options):
        self._image_set = images if images is not None and hasattr(images, "item_name") else None
        self._sent: set[int] = set()
        if self._image_set is not None:
            options.setdefault("labels", images.labels)
            options.setdefault("class_names", images.class_names)
            options.setdefault("examples_source", str(images.name))
            images, names = {}, {}
        else:
            names = options.pop("names", None)
        Path(out_dir).mkdir(parents=True, exist_ok=True)  # a folder that cannot be made fails here, at once
        self._pool: ProcessPoolExecutor | None = None
        self._pending: list[Future] = []
        self._local: Gallery | None = None
        try:
            self._pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                                             initializer=_start_worker, initargs=(os.getpid(),))
            self._pending.append(self._pool.submit(_open, str(out_dir), model_summary,
                                                   dict(options, images=images, names=names)))
        except (OSError, NotImplementedError, BrokenProcessPool):  # no processes here: draw in this one
            self._pool = None
            local_images, local_names = (images, names) if self._image_set is None else (self._image_set, None)
            self._local = Gallery(out_dir, model_summary, images=local_images, names=local_names, **options)

    def add(self, layer) -> None:
        """Send a layer (a LayerRun, ``(result, examples)`` pair or OipResult) to be drawn."""
        if self._local is not None:
            self._local.add(layer)
            return
        images = names = None
        examples = getattr(layer, "examples", None) if not isinstance(layer, tuple) else layer[1]
        if self._image_set is not None and examples is not None:
            needed = [i for i in shown_indices([(None, examples)]) if i not in self._sent]
            images = {i: self._image_set[i] for i in needed}
            names = {i: self._image_set.item_name(i) for i in needed}
            self._sent.update(needed)
        self._pending.append(self._submit(_add, layer, images, names))

    def _submit(self, function, *args) -> Future:
        if self._pool is None:
            raise RuntimeError("the gallery is closed")
        return self._pool.submit(function, *args)

    def finish(self, classes=None) -> Path:
        """Wait for the layer pages; write the class page, index and data; returns ``index.html``."""
        if self._local is not None:
            return self._local.finish(classes)
        try:
            for future in self._pending:
                future.result()  # an error in the worker is raised here
            return self._submit(_finish, classes).result()
        finally:
            self.close()

    def close(self, now: bool = False) -> None:
        """Stop the worker: pages not begun are dropped; the one being drawn is finished, or with
        ``now`` (after Ctrl-C) cut short: every file is written atomically, so none is left half-written."""
        if self._pool is None:
            return
        pool, self._pool, self._pending = self._pool, None, []
        if now:
            for process in list((getattr(pool, "_processes", None) or {}).values()):
                process.terminate()
        pool.shutdown(wait=True, cancel_futures=True)
