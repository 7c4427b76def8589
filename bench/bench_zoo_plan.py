"""How long ``oipscope zoo --dry-run`` takes to answer on a 224 px VGG16 (``weights=None``),
and what it estimates: at the default canvas (128 px) and with ``--size 224``, each in a fresh
process. Target: under 20 s (six probes, one compile per probe, took 2.5 min). The CPU's SIMD
and AMX and the load average are printed::

    python bench/bench_zoo_plan.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def dry_run(model: Path, *extra: str) -> tuple[float, str]:
    """Seconds of one ``zoo --dry-run`` in a fresh process, and its last lines."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "COLUMNS": "200",
           "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    began = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "oipscope", "zoo", str(model), "--preprocess", "caffe",
                           "--dry-run", *extra], capture_output=True, text=True, env=env, check=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith(("sampled:", "estimated time:"))]
    return time.perf_counter() - began, "\n    ".join(lines)


def main() -> int:
    sys.path.insert(0, str(ROOT / "src"))
    import keras

    from oipscope.ascent.precision import cpu_features

    features = cpu_features()
    print(f"CPU {features['cpu']}: AVX2 {features['avx2']}, AVX-512 {features['avx512']}, AMX {features['amx']}; "
          f"{os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as folder:
        model = Path(folder) / "vgg16.keras"
        keras.applications.VGG16(weights=None, include_top=False, input_shape=(224, 224, 3)).save(model)
        for label, extra in (("canvas 128 px (default)", ()), ("--size 224", ("--size", "224"))):
            seconds, lines = dry_run(model, *extra)
            print(f"{label}: {seconds:.1f} s\n    {lines}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
