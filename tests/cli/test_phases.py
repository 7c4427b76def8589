"""`find --debug` prints where its time went, and run.json keeps it without changing the run's key."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from oipscope.runs.phases import phase, recording, run_key_of


def run_module(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "oipscope", *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


def test_phases_add_up_by_name_and_cost_nothing_unrecorded():
    with phase("search"):  # no recording: nothing kept, nothing raised
        pass
    with recording() as seconds:
        for _ in range(2):
            with phase("examples"):
                pass
    assert list(seconds) == ["examples"] and seconds["examples"] >= 0
    assert run_key_of({"maps": [0], "phase_seconds": {"search": 1.0}}) == {"maps": [0]}


@pytest.mark.slow
def test_find_saves_and_prints_its_phase_times_and_resumes(tmp_path):
    out = tmp_path / "find"
    args = ("find", "--layer", "Conv2D_1", "--maps", "0-1", "--steps", "5", "--out", str(out))
    proc = run_module("--debug", *args, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "phase seconds: " in proc.stderr
    phases = json.loads((out / "run.json").read_text())["phase_seconds"]
    assert set(phases) == {"search", "examples", "assessment", "gallery"}
    assert all(value >= 0 for value in phases.values())
    again = run_module(*args, "--resume", timeout=300)  # the saved times are no part of the run's key
    assert again.returncode == 0, again.stderr[-2000:]
    assert "other settings" not in again.stdout + again.stderr
