"""The Ray backend (``--ray``): a local cluster with 2 CPUs gives the same OIPs as this process,
survives a killed worker, keeps finished chunks after Ctrl-C, and names an unreachable cluster."""

from __future__ import annotations

import os
import threading
import time

import numpy as np
import pytest

ray = pytest.importorskip("ray")
psutil = pytest.importorskip("psutil")

from oipscope.config import OipConfig  # noqa: E402
from oipscope.errors import ClusterError  # noqa: E402
from oipscope.search.results import OipResult  # noqa: E402
from oipscope.runs.jobs import run_layer, run_zoo  # noqa: E402
from oipscope.model.subject import open_subject  # noqa: E402

pytestmark = pytest.mark.slow

CONFIG = OipConfig(steps=60, n_candidates=4, restarts=1, scales=(3, 6, 12), rescue_steps=10)


@pytest.fixture(scope="module")
def backend():
    from oipscope.runs.cluster import RayBackend

    cluster = RayBackend("local", workers=2)
    yield cluster
    cluster.close()


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    import sys

    sys.path.insert(0, os.path.dirname(os.path.dirname(__file__)))  # the tests folder: conftest
    from conftest import build_tiny_model

    path = tmp_path_factory.mktemp("cluster") / "tiny.keras"
    build_tiny_model().save(path)
    return path


def _same(a: OipResult, b: OipResult) -> None:
    """The same OIPs, as the backend promises (oipscope.backend): a worker computes with one thread."""
    from conftest import assert_reproduced

    assert [m.map_index for m in a.maps] == [m.map_index for m in b.maps]
    for x, y in zip(a.maps, b.maps):
        assert_reproduced(x.image, y.image)
        assert_reproduced(x.snapshots, y.snapshots)
        assert_reproduced(x.activation, y.activation)
        assert (x.status, x.start, x.converged_step) == (y.status, y.start, y.converged_step)


def test_ray_run_gives_the_same_oips_as_a_local_run(backend, model_file, tmp_path):
    subject = open_subject(model_file)
    local = run_layer(subject, "c2", "all", CONFIG, tmp_path / "local", chunk_maps=2)
    seen = []
    remote = run_layer(subject, "c2", "all", CONFIG, tmp_path / "ray", chunk_maps=2, backend=backend,
                       on_progress=lambda done, total: seen.append((done, total)))
    _same(remote, local)
    _same(OipResult.load(tmp_path / "ray"), local)
    assert seen[-1] == (6, 6) and not (tmp_path / "ray" / "parts").exists()
    assert remote.model_hash == local.model_hash


def test_zoo_on_ray_writes_the_same_layout(backend, model_file, tmp_path):
    from oipscope.runs.layout import zoo_layer_folder

    subject = open_subject(model_file)
    runs = run_zoo(subject, "c1,c2", CONFIG, tmp_path / "zoo", backend=backend)
    assert [run.result.layer_name for run in runs] == ["c1", "c2"]
    for run in runs:
        assert run.folder == zoo_layer_folder(tmp_path / "zoo", run.result.layer_name)
        _same(OipResult.load(run.folder), run.result)


def _kill_first_chunk_worker(killed: list, stop: threading.Event) -> None:
    while not stop.is_set() and not killed:
        for process in psutil.process_iter(["cmdline"]):
            if "ray::_chunk_task" in " ".join(process.info["cmdline"] or []):
                process.kill()
                killed.append(process.pid)
                return
        time.sleep(0.05)


def test_a_killed_worker_is_replaced_and_the_result_is_the_same(backend, model_file, tmp_path):
    subject = open_subject(model_file)
    config = OipConfig(steps=400, n_candidates=4, restarts=0, scales=(3, 6, 12), rescue_steps=0,
                       stop_on_convergence=False)  # chunks long enough to be caught running
    local = run_layer(subject, "c2", "0-3", config, tmp_path / "local", chunk_maps=1)
    killed: list[int] = []
    stop = threading.Event()
    killer = threading.Thread(target=_kill_first_chunk_worker, args=(killed, stop), daemon=True)
    killer.start()
    try:
        remote = run_layer(subject, "c2", "0-3", config, tmp_path / "ray", chunk_maps=1, backend=backend)
    finally:
        stop.set()
        killer.join()
    assert killed, "no chunk task was seen running"
    _same(remote, local)


def test_ctrl_c_of_the_driver_keeps_finished_chunks(backend, model_file, tmp_path):
    subject = open_subject(model_file)
    whole = run_layer(subject, "c2", "all", CONFIG, tmp_path / "whole", chunk_maps=1)

    def stop_after_first_chunk(done, total):
        if done >= 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_layer(subject, "c2", "all", CONFIG, tmp_path / "cut", chunk_maps=1, backend=backend,
                  on_progress=stop_after_first_chunk)
    kept = sorted((tmp_path / "cut" / "parts").glob("maps-*"))
    assert 1 <= len(kept) < 6
    resumed = run_layer(subject, "c2", "all", CONFIG, tmp_path / "cut", chunk_maps=2, resume=True)
    _same(resumed, whole)


@pytest.mark.parametrize("args,code,message", [
    (["--ray", "127.0.0.1:9"], 7, "error: cannot reach the Ray cluster at 127.0.0.1:9"),
    (["--ray", "nowhere"], 2, "error: --ray must be 'local', 'auto' or HOST:PORT"),
    (["--workers", "2"], 2, "error: --workers needs --ray local"),
])
def test_cluster_options_that_cannot_work_fail_with_one_line(model_file, tmp_path, args, code, message):
    import subprocess
    import sys

    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "oipscope", "find", str(model_file), "--layer", "c2", "--steps", "5",
                           "--no-assess", "--out", str(out), *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "COLUMNS": "250"})
    assert proc.returncode == code, proc.stdout + proc.stderr
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip().splitlines()[0]]
    assert proc.stderr.startswith(message), proc.stderr
    assert not out.exists()
