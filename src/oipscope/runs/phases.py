"""Where a run's time goes: seconds per phase (search, examples, assessment, gallery).

The library marks its phases with :func:`phase`; a caller that wants the times wraps
the run in :func:`recording` and reads the dict it yields. Without a recording,
:func:`phase` costs nothing. The times are saved in ``run.json`` as ``"phase_seconds"``,
which is no part of a run's key (:func:`run_key_of` leaves it out).

Example:
    >>> with recording() as seconds:
    ...     with phase("examples"):
    ...         pass
    >>> sorted(seconds)
    ['examples']
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Iterator

__all__ = ["PHASE_SECONDS", "phase", "recording", "run_key_of"]

PHASE_SECONDS = "phase_seconds"
_current: ContextVar[dict[str, float] | None] = ContextVar("oipscope_phase_seconds", default=None)


@contextmanager
def recording() -> Iterator[dict[str, float]]:
    """Collect the seconds of every :func:`phase` inside, summed by name."""
    seconds: dict[str, float] = {}
    token = _current.set(seconds)
    try:
        yield seconds
    finally:
        _current.reset(token)


@contextmanager
def phase(name: str) -> Iterator[None]:
    """Count the time inside towards phase ``name`` of the recording under way, if any."""
    seconds = _current.get()
    began = time.perf_counter()
    try:
        yield
    finally:
        if seconds is not None:
            seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - began


def run_key_of(saved: dict) -> dict:
    """A saved run.json without what is no part of the run's key (its phase times)."""
    return {k: v for k, v in saved.items() if k != PHASE_SECONDS} if isinstance(saved, dict) else saved
