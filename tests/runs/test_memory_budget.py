"""memory_budget_mb: a layer with many maps is ascended in batches that fit the budget.

The run happens in a fresh Python process, and the peak is the kernel's high-water mark
of resident memory (``VmHWM``), reset just before each measured run. (``getrusage``'s
``ru_maxrss`` is no use here: Linux carries it over from the parent across fork and exec,
so after a big test it reads the pytest process's peak and never grows.) The script spies
on the engine's compiled loop segments to record every batch they get.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

SCRIPT = r"""
import json, os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import keras
import numpy as np
from oipscope.ascent import pixels as engine
from oipscope.config import Execution, OipConfig
from oipscope.ascent.pixels import estimate_chunk_size
from oipscope.search.pipeline import find_oips

calls = []
real_get_segment = engine._get_segment

def spying_get_segment(submodel, *key):
    segment = real_get_segment(submodel, *key)
    def spy(x, *rest):
        total_steps, snap_slot = int(rest[7]), rest[12].numpy()
        calls.append({"batch": int(x.shape[0]), "submodel": submodel.name,
                      "limit": estimate_chunk_size(submodel, int((snap_slot >= 0).sum()), total_steps, BUDGET)})
        return segment(x, *rest)
    return spy

engine._get_segment = spying_get_segment

def status_mb(field):
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith(field + ":")) / 1024

def reset_peak_mb():
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")  # high-water mark := current RSS
    return status_mb("VmRSS")

def peak_mb():
    return status_mb("VmHWM")

keras.utils.set_random_seed(0)
model = keras.Sequential([keras.Input((16, 16, 1)), keras.layers.Conv2D(256, 3, activation="relu", name="wide")])
out = {}
for BUDGET in (2.0, 512.0):
    config = OipConfig(steps=5, precursor=False, restarts=0)
    # only the budget limits the batch; the whole layer is computed (the own-map head would need ~1/256 of it)
    execution = Execution(memory_budget_mb=BUDGET, batch_size=1024, own_maps=False)
    find_oips(model, "wide", [0, 1], config, execution=execution)  # trace the loop first: tracing memory is not the batch's
    calls.clear()
    before = reset_peak_mb()
    result = find_oips(model, "wide", "all", config, execution=execution)
    out[str(BUDGET)] = {"growth_mb": peak_mb() - before, "calls": list(calls),
                        "maps": len(result.maps), "finite": bool(all(np.isfinite(m.image).all() for m in result.maps))}
print("RESULT " + json.dumps(out))
"""

GROWTH_LIMIT_MB = 64  # the 2 MB budget run grows the peak by ~6 MB; all 256 maps at once by ~165 MB


@pytest.mark.skipif(not os.path.exists("/proc/self/clear_refs"), reason="needs Linux /proc peak-RSS reset")
def test_small_memory_budget_chunks_a_wide_layer_and_bounds_peak_rss():
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")][-1]
    runs = json.loads(line[len("RESULT "):])

    small = runs["2.0"]
    assert small["maps"] == 256 and small["finite"]
    main_calls = [c for c in small["calls"] if c["submodel"] == "oip_wide"]
    limit = main_calls[0]["limit"]
    assert 1 <= limit < 256, f"a 2 MB budget should not fit 256 maps of 14x14, estimate {limit}"
    assert all(c["batch"] <= c["limit"] for c in small["calls"]), small["calls"]
    assert sum(c["batch"] for c in main_calls) == 256
    assert len(main_calls) >= 256 // limit
    assert small["growth_mb"] < GROWTH_LIMIT_MB, small

    # the same layer with the default budget: one batch, and a peak the limit above would catch
    large = runs["512.0"]
    assert [c["batch"] for c in large["calls"] if c["submodel"] == "oip_wide"] == [256]
    assert large["growth_mb"] > GROWTH_LIMIT_MB, large["growth_mb"]


SCRIPT_224 = r"""
import ctypes, gc, json, os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import keras
import numpy as np
from oipscope.analysis.examples import dataset_examples
from oipscope.config import Execution, OipConfig
from oipscope.search.pipeline import find_oips

def status_mb(field):
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith(field + ":")) / 1024

def reset_peak_mb():
    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)  # freed memory still resident would hide the next pass's growth
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")
    return status_mb("VmRSS")

keras.utils.set_random_seed(0)
base = keras.applications.VGG16(weights=None, include_top=False, input_shape=(224, 224, 3))
model = keras.Model(base.inputs, base.get_layer("block2_conv2").output)
images = np.random.default_rng(0).uniform(0, 255, (24, 224, 224, 3)).astype(np.float32)
execution = Execution(memory_budget_mb=BUDGET)
out = {}
before = reset_peak_mb()
dataset_examples(model, "block2_conv2", images, execution=execution)
out["examples"] = status_mb("VmHWM") - before
before = reset_peak_mb()
find_oips(model, "block2_conv2", [0, 1, 2, 3], OipConfig(steps=2, precursor=False, restarts=0), execution=execution)
out["ascent"] = status_mb("VmHWM") - before
before = reset_peak_mb()
dataset_examples(model, "block2_conv2", images, batch_size=1024)  # the old default: all 24 at once
out["examples_1024"] = status_mb("VmHWM") - before
print("RESULT " + json.dumps(out))
"""

BUDGET_224 = 128
FOOTPRINT_MB = 160  # TensorFlow's own growth on a first pass: tracing, oneDNN primitives, thread pools


@pytest.mark.skipif(not os.path.exists("/proc/self/clear_refs"), reason="needs Linux /proc peak-RSS reset")
def test_every_pass_on_a_224_px_model_stays_within_the_budget():
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    script = SCRIPT_224.replace("BUDGET", str(BUDGET_224))
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")][-1]
    growth = json.loads(line[len("RESULT "):])
    assert growth["examples"] < BUDGET_224 + FOOTPRINT_MB, growth
    assert growth["ascent"] < BUDGET_224 + FOOTPRINT_MB, growth
    assert growth["examples_1024"] > 2 * (BUDGET_224 + FOOTPRINT_MB), growth  # the bound above means something
