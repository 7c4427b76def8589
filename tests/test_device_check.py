"""bench/device_check.py runs on the CPU too: ``--cpu --quick`` checks every loop, times the precisions and
compares the device's OIPs with a CPU run (here: the CPU with itself)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_device_check_passes_on_the_cpu_with_tiny_sizes():
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "device_check.py"), "--cpu", "--quick"],
                          capture_output=True, text=True, env=env, timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    out = done.stdout
    assert "device: /device:CPU:0" in out
    assert "loops: pixel loop" in out and "parameter loop" in out and "dream" in out
    assert "float32" in out and "bfloat16" in out and "find 8 maps of block4_conv3" in out
    assert "against the CPU: activations within" in out and "all checks passed" in out
