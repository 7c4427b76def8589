"""The lock of an output folder: one run at a time, its holder named, stale locks taken over."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest

from oipscope.errors import FolderInUseError
from oipscope.runs.layout import LOCK_FILE
from oipscope.runs.lock import lock_holder, output_lock


def _write_lock(folder, pid: int, host: str | None = None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / LOCK_FILE).write_text(json.dumps({"pid": pid, "host": host or socket.gethostname(),
                                                "started": 1.7e9, "command": "oipscope find --out x"}))


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_held_folder_refuses_a_second_run_naming_the_holder(tmp_path):
    _write_lock(tmp_path, os.getppid())  # a live process
    with pytest.raises(FolderInUseError, match=rf"in use by another run \(pid {os.getppid()} on "
                                               rf"{socket.gethostname()}, started .*oipscope find --out x"):
        with output_lock(tmp_path, "second"):
            pass
    assert FolderInUseError.exit_code == 8
    assert lock_holder(tmp_path)["pid"] == os.getppid()  # the holder's lock stays


def test_a_lock_of_another_host_is_never_taken_over(tmp_path):
    _write_lock(tmp_path, _dead_pid(), host="elsewhere.invalid")
    with pytest.raises(FolderInUseError, match="elsewhere.invalid"):
        with output_lock(tmp_path):
            pass


def test_a_stale_lock_is_taken_over_with_a_note(tmp_path):
    pid = _dead_pid()
    _write_lock(tmp_path, pid)
    notes = []
    with output_lock(tmp_path, "mine", on_note=notes.append):
        assert lock_holder(tmp_path)["pid"] == os.getpid() and lock_holder(tmp_path)["command"] == "mine"
    assert len(notes) == 1 and f"pid {pid}" in notes[0] and "gone" in notes[0]
    assert lock_holder(tmp_path) is None


def test_the_lock_is_released_on_errors_and_interrupts_and_nests(tmp_path):
    for exc in (ValueError("boom"), KeyboardInterrupt()):
        with pytest.raises(type(exc)):
            with output_lock(tmp_path / "out"):
                (tmp_path / "out" / "kept.txt").write_text("x")
                with output_lock(tmp_path / "out"):  # the same process again: nested, not refused
                    pass
                assert lock_holder(tmp_path / "out")["pid"] == os.getpid()
                raise exc
        assert lock_holder(tmp_path / "out") is None
    assert (tmp_path / "out" / "kept.txt").is_file()


def test_a_run_that_wrote_nothing_leaves_no_folder(tmp_path):
    with output_lock(tmp_path / "new"):
        assert (tmp_path / "new" / LOCK_FILE).is_file()
    assert not (tmp_path / "new").exists()
