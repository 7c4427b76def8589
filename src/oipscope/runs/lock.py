"""One run per output folder: a lock file that names its holder.

A run that writes a folder (``find``, ``zoo``, ``report``; :func:`oipscope.runs.jobs.run_layer`
and friends) holds ``<folder>/.oipscope.lock`` while it writes. A second run on the
same folder stops at once with :class:`~oipscope.errors.FolderInUseError` (exit code 8),
naming the holder (pid, host, command, start time), instead of deleting the first
run's chunks and mixing its files. A lock left by a process that is gone (same host,
pid no longer alive) is taken over. The lock is released on every way out (return,
error, Ctrl-C); the same process may take it again inside (re-entrant).

Example:
    >>> with output_lock("oipscope-out", "oipscope find"):  # doctest: +SKIP
    ...     run_layer(model, "Conv2D_3", out_dir="oipscope-out")
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from ..errors import FolderInUseError
from .layout import LOCK_FILE

__all__ = ["output_lock", "lock_holder"]

_HELD: dict[Path, int] = {}  # folders this process holds, with how many nested holds


def lock_holder(folder: str | os.PathLike) -> dict | None:
    """What the lock of ``folder`` says about its holder (``{}`` if unreadable); None if unlocked."""
    try:
        text = (Path(folder) / LOCK_FILE).read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError:
        return {}
    try:
        holder = json.loads(text)
    except ValueError:
        return {}
    return holder if isinstance(holder, dict) else {}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    except (OverflowError, ValueError):
        return False
    return True


def _stale(holder: dict) -> bool:
    """Whether a lock was left by a process of this host that is gone."""
    pid = holder.get("pid")
    return (holder.get("host") == socket.gethostname() and isinstance(pid, int)
            and pid != os.getpid() and not _alive(pid))


def _describe(holder: dict) -> str:
    if not holder:
        return "an unreadable lock"
    started = holder.get("started")
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started)) if isinstance(started, (int, float)) else "?"
    return (f"pid {holder.get('pid', '?')} on {holder.get('host', '?')}, started {when}: "
            f"{holder.get('command', '?')}")


def _try_create(lock: Path, content: bytes) -> bool:
    """Create ``lock`` with ``content`` if it does not exist, atomically (never a half-written lock)."""
    tmp = lock.with_name(f"{lock.name}.{os.getpid()}.tmp")
    tmp.write_bytes(content)
    try:
        os.link(tmp, lock)
        return True
    except FileExistsError:
        return False
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def output_lock(folder: str | os.PathLike, command: str | None = None,
                on_note: Callable[[str], None] | None = None) -> Iterator[Path]:
    """Hold the lock of ``folder`` (created if needed; removed again if it stays empty) while inside.

    Args:
        folder: the output folder.
        command: what runs, for the message another run shows (default this process's command line).
        on_note: ``on_note(line)`` when a stale lock is taken over.

    Raises:
        FolderInUseError: another live process holds the folder (exit code 8).
    """
    folder = Path(folder)
    key = folder.resolve()
    if key in _HELD:  # this process holds it already: nested
        _HELD[key] += 1
        try:
            yield folder
        finally:
            _HELD[key] -= 1
        return
    created = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    lock = folder / LOCK_FILE
    me = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time(),
          "command": command or " ".join(["oipscope", *sys.argv[1:]])}
    content = json.dumps(me).encode()
    while not _try_create(lock, content):
        holder = lock_holder(folder)
        if holder is None:
            continue  # released meanwhile
        if not _stale(holder):
            if created:
                folder.rmdir()
            raise FolderInUseError(
                f"output folder {folder} is in use by another run ({_describe(holder)}); wait for it to end or "
                f"choose another --out (if no run uses it any more, delete {lock})")
        try:  # only one of several takers wins the rename
            os.rename(lock, lock.with_name(f"{lock.name}.stale.{os.getpid()}"))
        except FileNotFoundError:
            continue
        lock.with_name(f"{lock.name}.stale.{os.getpid()}").unlink(missing_ok=True)
        if on_note:
            on_note(f"took over the lock of {folder} left by a run that is gone ({_describe(holder)})")
    _HELD[key] = 1
    try:
        yield folder
    finally:
        del _HELD[key]
        if lock_holder(folder) == me:
            lock.unlink(missing_ok=True)
        if created:
            try:
                folder.rmdir()  # a run that wrote nothing leaves no folder behind
            except OSError:
                pass
