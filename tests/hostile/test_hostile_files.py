"""Hostile runs through the real command line: huge --steps, two runs on one --out, stale locks, damaged files.

Each case starts ``python -m oipscope`` (about 3 s of TensorFlow start-up each), on a
tiny MNIST-sized model and a few steps, and checks the exit code, the one ``error:``
or ``note:`` line, and that nothing already written is lost.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import interrupt_when, save_mnist_sized_model, start_cli

FAST = ["--steps", "5", "--no-assess", "--no-precursor", "--restarts", "0"]
NOISE = ("WARNING: All log messages", "I0000", "E0000", "W0000")


def _run(*argv: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "COLUMNS": "250"}
    return subprocess.run([sys.executable, "-m", "oipscope", *argv], capture_output=True, text=True, timeout=300,
                          env=env, cwd=cwd)


def _one_error(proc: subprocess.CompletedProcess, code: int, *fragments: str) -> str:
    assert proc.returncode == code, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip() and not line.startswith(NOISE)]
    assert len(lines) == 1 and lines[0].startswith("error:"), proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    return save_mnist_sized_model(tmp_path_factory.mktemp("hostile") / "tiny.keras")


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_huge_steps_stop_at_once_with_the_bound(model, tmp_path):
    proc = _run("find", str(model), "--layer", "c2", "--maps", "0-1", "--steps", "3000000000", "--out", "o",
                cwd=tmp_path)
    _one_error(proc, 2, "at most 1,000,000", "3,000,000,000", "--steps 600")
    assert not (tmp_path / "o").exists()


def test_a_second_run_on_a_busy_folder_stops_and_the_first_completes(model, tmp_path):
    out = tmp_path / "o"
    first = start_cli("find", str(model), "--layer", "c2", *FAST[:1], "300", *FAST[2:], "--out", str(out),
                      cwd=tmp_path)
    try:
        deadline = time.monotonic() + 180
        while not (out / ".oipscope.lock").is_file():
            assert first.poll() is None and time.monotonic() < deadline, first.communicate()
            time.sleep(0.02)
        os.kill(first.pid, signal.SIGSTOP)  # the first run holds the folder while the second starts
        second = _run("find", str(model), "--layer", "c2", *FAST, "--out", str(out), cwd=tmp_path)
    finally:
        os.kill(first.pid, signal.SIGCONT)
    _one_error(second, 8, f"{out} is in use by another run", f"pid {first.pid}", socket.gethostname(),
               "find", "--steps 300")
    stdout, stderr = first.communicate(timeout=300)
    assert first.returncode == 0, stdout + stderr
    assert json.loads((out / "run.json").read_text())["config"]["steps"] == 300
    assert json.loads((out / "result.json").read_text())["config"]["steps"] == 300
    assert not (out / ".oipscope.lock").exists()


def test_resume_takes_over_a_stale_lock_and_recomputes_a_damaged_chunk(model, tmp_path):
    out = tmp_path / "o"
    args = ("find", str(model), "--layer", "c2", *FAST, "--chunk-maps", "1", "--out", str(out))
    proc = start_cli(*args, cwd=tmp_path)
    interrupt_when(proc, lambda: len(list(out.glob("parts/maps-*/result.json"))) >= 2, "two chunks saved")
    chunks = sorted(out.glob("parts/maps-*"))
    (chunks[0] / "arrays.npz").write_bytes((chunks[0] / "arrays.npz").read_bytes()[:100])
    dead = _dead_pid()
    (out / ".oipscope.lock").write_text(json.dumps({"pid": dead, "host": socket.gethostname(), "started": 1.7e9,
                                                     "command": "oipscope find (killed)"}))
    resumed = _run(*args, "--resume", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "Traceback" not in resumed.stdout + resumed.stderr
    notes = [line for line in resumed.stdout.splitlines() if line.startswith("note:")]
    assert any(f"pid {dead}" in line and "gone" in line for line in notes), resumed.stdout
    assert any("damaged chunk" in line and "arrays.npz" in line for line in notes), resumed.stdout
    result = json.loads((out / "result.json").read_text())
    assert [m["map_index"] for m in result["maps"]] == list(range(6))
    assert not (out / ".oipscope.lock").exists()


def test_report_on_damaged_gallery_data_exits_3_naming_the_file(model, tmp_path):
    zoo = _run("zoo", str(model), "--layers", "c2", "--maps", "0-1", "--steps", "5", "--no-assess",
               "--no-classes", "--out", "g", cwd=tmp_path)
    assert zoo.returncode == 0, zoo.stdout + zoo.stderr
    [arrays] = (tmp_path / "g" / "data").glob("*/result/arrays.npz")
    original = arrays.read_bytes()
    arrays.write_bytes(os.urandom(len(original)))
    damaged = _run("report", "g", "--out", "pages", cwd=tmp_path)
    line = _one_error(damaged, 3, str(arrays.resolve()))
    assert "pickle" not in line
    arrays.write_bytes(original)
    meta = arrays.parent / "result.json"
    meta.write_text(meta.read_text()[:40])
    _one_error(_run("report", "g", "--out", "pages", cwd=tmp_path), 3, str(meta.resolve()), "cut short")
