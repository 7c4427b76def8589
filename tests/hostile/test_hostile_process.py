"""Hostile runs of `python -m oipscope zoo` in subprocesses: kill -9, SIGTERM and --resume, layer names with
spaces around them, output piped into a log.

Every command here writes into a pipe (no terminal), as a job scheduler's log would get it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads processes from /proc")

LONG_NAME = "a_convolution_whose_name_is_long_enough_to_push_every_line_past_80_columns"
LAYERS = ["conv a", " conv b ", LONG_NAME]  # " conv b " keeps its spaces: Keras allows it


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> Path:
    """A 16x16 classifier with three 8-map convolutions, one named with spaces around it, one long."""
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((16, 16, 1), name="image")
    x = inputs
    for name in LAYERS:
        x = keras.layers.Conv2D(8, 3, activation="relu", name=name)(x)
    outputs = keras.layers.Dense(3, activation="softmax", name="out")(keras.layers.Flatten(name="flat")(x))
    path = tmp_path_factory.mktemp("hostile") / "spaced.keras"
    keras.Model(inputs, outputs, name="spaced").save(path)
    return path


class _Run:
    """`python -m oipscope ARGS` with stdout and stderr piped, read line by line as they come."""

    def __init__(self, *args: str, cwd: Path, progress_seconds: float = 1.0):
        env = {key: value for key, value in os.environ.items() if key not in ("COLUMNS", "LINES")}
        env.update(TF_CPP_MIN_LOG_LEVEL="3", OIPSCOPE_PROGRESS_SECONDS=str(progress_seconds))
        self.proc = subprocess.Popen([sys.executable, "-m", "oipscope", *args], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, env=env, cwd=cwd,
                                     preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        self.started = time.monotonic()
        self.stdout: list[tuple[float, str]] = []  # (seconds since start, line)
        self.stderr: list[str] = []
        self._readers = [threading.Thread(target=self._read, args=(stream, keep), daemon=True) for stream, keep in (
            (self.proc.stdout, lambda line: self.stdout.append((time.monotonic() - self.started, line))),
            (self.proc.stderr, self.stderr.append))]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _read(stream, keep) -> None:
        for line in stream:
            keep(line.rstrip("\n"))

    def wait(self, timeout: float = 180) -> tuple[int, str, str]:
        code = self.proc.wait(timeout=timeout)
        for reader in self._readers:
            reader.join(timeout=10)
        return code, self.out, "\n".join(self.stderr)

    @property
    def out(self) -> str:
        return "\n".join(line for _, line in self.stdout)

    def wait_for(self, ready, what: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            assert self.proc.poll() is None, f"the command ended before {what}: {self.wait()}"
            assert time.monotonic() < deadline, f"{what} did not happen within {timeout:.0f} s: {self.out}"
            time.sleep(0.02)


def _zoo(model_file: Path, out: Path, steps: int, *extra: str) -> _Run:
    return _Run("zoo", str(model_file), "--layers", "all", "--steps", str(steps), "--no-assess", "--no-classes",
                "--seed", "1", "--out", str(out), *extra, cwd=out.parent)


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, parent pid) of a process, None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()
    return fields[0], int(fields[1])


def _workers(parent: int) -> set[int]:
    """The multiprocessing processes (gallery worker, resource tracker) started by ``parent``."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (_stat(int(entry.name)) or ("", 0))[1] == parent:
            try:
                if b"multiprocessing" in (entry / "cmdline").read_bytes():
                    found.add(int(entry.name))
            except OSError:
                continue
    return found


def _running(pids: set[int]) -> set[int]:
    return {pid for pid in pids if (state := _stat(pid)) is not None and state[0] != "Z"}


def _gone_within(pids: set[int], seconds: float) -> set[int]:
    deadline = time.monotonic() + seconds
    while (left := _running(pids)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


def _finished_layers(out: Path) -> list[str]:
    return [json.loads(path.read_text())["layer_name"] for path in sorted((out / "data").glob("*/result/result.json"))]


def _table_rows(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if line.startswith("│")]


def test_kill_9_leaves_no_worker_behind_and_progress_reached_the_log(model_file, tmp_path):
    out = tmp_path / "killed"
    run = _zoo(model_file, out, 3000, "--method", "robust")  # all 3000 steps: no stop on convergence
    workers: set[int] = set()

    def ready() -> bool:
        workers.update(_workers(run.proc.pid))
        progress = any(line.startswith("progress: ") for _, line in run.stdout)
        return bool(workers) and bool(_finished_layers(out)) and progress

    run.wait_for(ready, "a finished layer, the gallery worker and a progress line")
    workers.update(_workers(run.proc.pid))
    first_progress = min(t for t, line in run.stdout if line.startswith("progress: "))
    run.proc.kill()
    run.wait()
    left = _gone_within(workers, 10)
    for pid in left:  # not to leave them running after a failure
        os.kill(pid, signal.SIGKILL)
    assert not left, f"processes of the killed zoo still run: {left}"
    # piped, the interval (1 s here) holds from the first second on, while the first ascents still climb
    assert first_progress < 30, run.out
    progress = [line for _, line in run.stdout if line.startswith("progress: ")]
    assert all(" elapsed" in line and "/8" in line for line in progress), progress


def test_sigterm_is_ctrl_c_and_resume_finishes_every_layer_whole_in_a_log(model_file, tmp_path):
    out = tmp_path / "zoo"
    run = _zoo(model_file, out, 400)
    workers: set[int] = set()

    def ready() -> bool:
        workers.update(_workers(run.proc.pid))
        return bool(_finished_layers(out))

    run.wait_for(ready, "the first finished layer")
    workers.update(_workers(run.proc.pid))
    run.proc.terminate()
    code, stdout, stderr = run.wait()
    assert code == 130, stdout + stderr
    assert "Traceback" not in stdout + stderr
    kept = _finished_layers(out)
    assert kept and len(kept) < len(LAYERS), "the signal should land between the first and the last layer"
    message = [line for line in stderr.splitlines() if line.startswith("interrupted:")]
    assert len(message) == 1 and message[0].endswith(
        f"are kept in {out}; run the same command with --resume to continue"), stderr
    assert all(name in message[0] for name in kept), (kept, message)
    left = _gone_within(workers, 10)
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert not left, "the gallery worker outlived the interrupted zoo"
    kept_bytes = {path: path.read_bytes() for path in (out / "data").glob("*/result/result.json")}

    resumed = _zoo(model_file, out, 400, "--resume")
    code, stdout, stderr = resumed.wait()
    assert code == 0, stdout + stderr
    assert all(path.read_bytes() == content for path, content in kept_bytes.items()), "a kept layer was redone"
    assert sorted(_finished_layers(out)) == sorted(LAYERS)
    rows = _table_rows(stdout)
    assert len(rows) == len(LAYERS), stdout  # one whole line per layer
    for row, name in zip(rows, LAYERS):
        cells = row.split("│")[1:-1]
        assert len(cells) == 7 and cells[0][1:len(name) + 1] == name and cells[1].strip() == "8", row
    gallery = json.loads((out / "data" / "gallery.json").read_text())
    pages = (out / "index.html").read_text()
    assert sorted(gallery_layer_names(gallery)) == sorted(LAYERS)
    assert all((out / "layers" / f"{layer['slug']}.html").is_file() for layer in gallery["layers"])
    assert all(name.strip() in pages for name in LAYERS)


def gallery_layer_names(gallery: dict) -> list[str]:
    """The layer names a gallery's data lists."""
    return [layer["layer_name"] for layer in gallery["layers"]]


def test_plan_lines_stay_whole_in_a_log(model_file, tmp_path):
    run = _Run("zoo", str(model_file), "--layers", "all", "--steps", "5", "--no-assess", "--dry-run",
               "--out", str(tmp_path / "plan"), cwd=tmp_path)
    code, stdout, stderr = run.wait()
    assert code == 0, stdout + stderr
    lines = [line for line in stdout.splitlines() if line.startswith("  ")]
    assert len(lines) == len(LAYERS) + 1, stdout  # the layers and the class OIPs
    for line, name in zip(lines, LAYERS):
        assert line.startswith(f"  {name}") and " of 8 " in line and "~" in line, line
    assert stdout.splitlines()[-1].startswith("estimated time: ~") and "scaled by their FLOPs)" in stdout, stdout
    assert all(len(line) > 80 for line in lines[:-1] if LONG_NAME in line)
