"""How the ``oipscope`` commands show progress: a live bar on a terminal, plain lines in a log.

A live bar redraws one line in place; piped into a file or a job log it would show nothing until
the end. Without a terminal :class:`PlainProgress` prints one whole line every
``OIPSCOPE_PROGRESS_SECONDS`` seconds (default 30) for the phase under way: what it does,
done/total, the time since the command began, and an estimate of the time left once some of
the phase is done; and one line when a phase is done. It prints from its own thread, so a line
comes even while one long ascent segment runs.

Example:
    >>> with progress_display(console) as progress:   # doctest: +SKIP
    ...     task = progress.add_task("c2 OIPs", total=64)
    ...     progress.update(task, completed=10)
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

__all__ = ["PROGRESS_SECONDS_ENV", "PlainProgress", "progress_display", "progress_seconds", "duration_text"]

PROGRESS_SECONDS_ENV = "OIPSCOPE_PROGRESS_SECONDS"
_DEFAULT_SECONDS = 30.0


def progress_seconds() -> float:
    """Seconds between two progress lines in a log: ``$OIPSCOPE_PROGRESS_SECONDS``, else 30."""
    text = os.environ.get(PROGRESS_SECONDS_ENV, "")
    try:
        seconds = float(text)
    except ValueError:
        return _DEFAULT_SECONDS
    return seconds if seconds > 0 else _DEFAULT_SECONDS


def duration_text(seconds: float) -> str:
    """A duration for a person: ``42 s``, ``7 min``, ``1.5 h``."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


@dataclass
class _Task:
    description: str
    total: float | None
    visible: bool
    completed: float = 0.0
    began: float = field(default_factory=time.monotonic)
    done_reported: bool = False

    @property
    def finished(self) -> bool:
        return self.total is not None and self.completed >= self.total


class PlainProgress:
    """Progress as whole lines for a log; the part of rich's ``Progress`` the commands use.

    Args:
        console: where the lines go.
        interval: seconds between two lines about the phase under way.
    """

    def __init__(self, console: Console, interval: float | None = None):
        self.console = console
        self.interval = progress_seconds() if interval is None else interval
        self._tasks: list[_Task] = []
        self._current: _Task | None = None  # the phase last reported on
        self._began = time.monotonic()
        self._last_done: float | None = None  # when the last phase finished
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> PlainProgress:
        self._thread = threading.Thread(target=self._tick, name="oipscope-progress", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def add_task(self, description: str, total: float | None = None, visible: bool = True, **_) -> int:
        with self._lock:
            self._tasks.append(_Task(description, total, visible))
            return len(self._tasks) - 1

    def update(self, task_id: int, *, completed: float | None = None, total: float | None = None,
               visible: bool | None = None, description: str | None = None, **_) -> None:
        with self._lock:
            task = self._tasks[task_id]
            if total is not None:
                task.total = total
            if visible is not None:
                if visible and not task.visible and self._last_done is not None:
                    task.began = max(task.began, self._last_done)  # a phase made early starts after the last one
                task.visible = visible
            if description is not None:
                task.description = description
            if completed is not None:
                task.completed = completed
            if task.visible:
                self._current = task
            line = None
            if task.visible and task.finished and not task.done_reported:
                task.done_reported = True
                self._last_done = time.monotonic()
                line = (f"{task.description} {_count(task.completed)}/{_count(task.total)} done in "
                        f"{duration_text(time.monotonic() - task.began)}")
        if line:
            self._print(line)

    def stop(self) -> None:
        """No more lines (after Ctrl-C, or at the end)."""
        self._stopped.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()

    def line(self) -> str | None:
        """The line about the phase under way, or None when there is none."""
        with self._lock:
            task = self._current
            if task is None or task.finished or not task.visible:
                return None
            now = time.monotonic()
            total = "?" if task.total is None else _count(task.total)
            text = (f"progress: {task.description} {_count(task.completed)}/{total}, "
                    f"{duration_text(now - self._began)} elapsed")
            if task.total and task.completed > 0:
                left = (now - task.began) * (task.total - task.completed) / task.completed
                return f"{text}, ~{duration_text(left)} left in this phase"
            return f"{text}, the first ones still under way"

    def _tick(self) -> None:
        while not self._stopped.wait(self.interval):
            line = self.line()
            if line:
                self._print(line)

    def _print(self, line: str) -> None:
        if not self._stopped.is_set():
            self.console.print(line, markup=False, highlight=False, soft_wrap=True)


def _count(value: float) -> str:
    return f"{value:.0f}"


def progress_display(console: Console):
    """A rich live bar on a terminal; :class:`PlainProgress` lines without one (a log, a pipe)."""
    if console.is_terminal and not console.is_dumb_terminal:
        return Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                        TimeElapsedColumn(), console=console)
    return PlainProgress(console)
