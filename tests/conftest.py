"""Shared fixtures of the oipscope test suite.

Data folders are looked up, never downloaded: tests needing them skip with a
reason when the files are absent.
"""

from __future__ import annotations

import os

os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"  # before anything imports TensorFlow

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SYSTEM_DATA = Path("/usr/share/datasets")
IDX_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)


def _has_idx_files(folder: Path) -> bool:
    return all((folder / name).is_file() for name in IDX_FILES)


def _find_data(name: str, extra: tuple[Path, ...] = ()) -> tuple[Path | None, list[Path]]:
    candidates: list[Path] = []
    env = os.environ.get("OIPSCOPE_DATA_DIR")
    if env:
        candidates += [Path(env) / name, Path(env)]
    candidates += [SHARED_DATA / name, *extra]
    for folder in candidates:
        if _has_idx_files(folder):
            return folder, candidates
    return None, candidates


# --- the fast default run ---------------------------------------------------------
# `pytest -m "not slow"` is the developers' quick run (well under a minute on 2 cores);
# plain `pytest`, what CI runs, runs everything. Modules whose every test starts
# subprocesses, a browser, a notebook kernel or Ctrl-C runs are marked `slow` here; in
# the other modules the heavy tests (training, zoo runs, galleries, real-size models)
# carry `@pytest.mark.slow` themselves, so every module keeps quick tests in the fast run.
SLOW_MODULES = frozenset({
    "test_bad_inputs.py", "test_browser.py", "test_hostile_process.py", "test_interrupt.py", "test_memory_budget.py",
    "test_tour.py", "test_zoo_cli.py", "test_hostile_inputs.py", "test_hostile_files.py",
})


# The tests of the reproducibility contract (oipscope.backend): `.ci/run` runs them once more with
# oneDNN on and once with it off, so both backends stay green whatever the machine's default.
REPRODUCIBILITY_TESTS = frozenset({
    "test_same_seed_identical", "test_compacted_batches_give_the_same_oips_as_one_whole_batch",
    "test_robust_oips_are_reproducible_and_independent_of_the_batch",
    "test_the_warm_up_wakes_a_dead_map_in_the_series_loop", "test_interrupted_run_resumes_to_the_same_result",
    "test_resume_takes_other_execution_settings_and_chunks", "test_batches_bounded_and_batching_invariant",
    "test_a_second_model_of_the_same_shape_runs_in_the_first_trace_with_its_own_weights",
    "test_the_contract_names_the_backend_this_process_runs",
})


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.path.name in SLOW_MODULES:
            item.add_marker(pytest.mark.slow)
        if item.originalname in REPRODUCIBILITY_TESTS:
            item.add_marker(pytest.mark.reproducibility)


def assert_reproduced(actual, expected) -> None:
    """OIPs computed in other batches or runs agree as the backend promises (:mod:`oipscope.backend`):
    bit for bit on TensorFlow's own float32 CPU kernels, within its tolerance under oneDNN or on a GPU."""
    import numpy as np

    from oipscope.backend import reproducibility

    contract = reproducibility()
    if contract.exact:
        np.testing.assert_array_equal(actual, expected)
    else:
        np.testing.assert_allclose(actual, expected, rtol=contract.rtol, atol=contract.atol)


# --- data -------------------------------------------------------------------


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """Folder holding the four MNIST IDX .gz files ($OIPSCOPE_DATA_DIR, else ../shared/data)."""
    folder, tried = _find_data("mnist")
    if folder is None:
        pytest.skip(f"MNIST IDX files not found (looked in: {', '.join(map(str, tried))})")
    return folder


@pytest.fixture(scope="session")
def fashion_dir() -> Path:
    """Folder holding the four Fashion-MNIST IDX .gz files, or skip."""
    folder, tried = _find_data("fashion-mnist", (SYSTEM_DATA / "fashion-mnist",))
    if folder is None:
        pytest.skip(f"Fashion-MNIST IDX files not found (looked in: {', '.join(map(str, tried))})")
    return folder


# --- models -----------------------------------------------------------------
# Shapes for a 12x12x1 input: c1 (10,10,4), pool (5,5,4), c2 (3,3,6), flat (54,), out (3,)


@pytest.fixture
def tiny_model():
    """A small Sequential CNN: c1 (4 maps) → pool → c2 (6 maps) → flat → out (3)."""
    return build_tiny_model()


@pytest.fixture
def tiny_functional():
    """The same CNN as ``tiny_model`` built with the functional API."""
    import keras

    inputs = keras.Input(shape=(12, 12, 1), name="image")
    x = keras.layers.Conv2D(4, 3, activation="relu", name="c1")(inputs)
    x = keras.layers.MaxPooling2D(2, name="pool")(x)
    x = keras.layers.Conv2D(6, 3, activation="relu", name="c2")(x)
    x = keras.layers.Flatten(name="flat")(x)
    outputs = keras.layers.Dense(3, name="out")(x)
    return keras.Model(inputs, outputs, name="tiny_func")


@pytest.fixture
def tiny_model_file(tiny_model, tmp_path) -> Path:
    """``tiny_model`` saved as a .keras file."""
    path = tmp_path / "tiny.keras"
    tiny_model.save(path)
    return path


def build_tiny_model(name: str = "tiny_seq", output_activation: str | None = None):
    """The tiny Sequential CNN of the ``tiny_model`` fixture, for tests that need a fresh one
    (``output_activation="softmax"`` for tests of evoked class probabilities)."""
    import keras

    return keras.Sequential(
        [
            keras.Input(shape=(12, 12, 1)),
            keras.layers.Conv2D(4, 3, activation="relu", name="c1"),
            keras.layers.MaxPooling2D(2, name="pool"),
            keras.layers.Conv2D(6, 3, activation="relu", name="c2"),
            keras.layers.Flatten(name="flat"),
            keras.layers.Dense(3, activation=output_activation, name="out"),
        ],
        name=name,
    )


def save_mnist_sized_model(path: Path, name: str = "zoo_tiny", seed: int = 0) -> Path:
    """A tiny CNN on 28x28x1 input (c1, pool, c2, flat, out), saved to ``path``: MNIST fits it."""
    import keras

    keras.utils.set_random_seed(seed)
    keras.Sequential([
        keras.Input((28, 28, 1)),
        keras.layers.Conv2D(4, 5, strides=2, activation="relu", name="c1"),
        keras.layers.MaxPooling2D(2, name="pool"),
        keras.layers.Conv2D(6, 3, activation="relu", name="c2"),
        keras.layers.Flatten(name="flat"),
        keras.layers.Dense(10, activation="softmax", name="out"),
    ], name=name).save(path)
    return path


# --- Ctrl-C through the real command line ------------------------------------------


def start_cli(*args: str, cwd: Path) -> "subprocess.Popen":
    """Start ``python -m oipscope ARGS`` in the background, ready to receive Ctrl-C (SIGINT)."""
    import signal
    import subprocess
    import sys

    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "COLUMNS": "250"}
    # A process started in the background may inherit SIGINT ignored; Ctrl-C semantics need the default.
    return subprocess.Popen([sys.executable, "-m", "oipscope", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, cwd=cwd,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def interrupt_when(proc: "subprocess.Popen", ready, what: str, timeout: float = 120) -> tuple[str, str]:
    """Send SIGINT to ``proc`` as soon as ``ready()`` is true; return its (stdout, stderr)."""
    import signal
    import time

    deadline = time.monotonic() + timeout
    while not ready():
        assert proc.poll() is None, f"the command ended before {what}: {proc.communicate()}"
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout:.0f} s"
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stdout + stderr
    assert "Traceback" not in stdout + stderr
    return stdout, stderr


# --- hostile files, small on disk ---------------------------------------------------


def write_png_header(path: Path, width: int, height: int) -> Path:
    """A 74-byte PNG whose header claims ``width`` x ``height`` grey pixels (its pixel data is cut
    short): what a decompression bomb shows before it is decoded."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(bytes(1000)))
                     + chunk(b"IEND", b""))
    return path


def write_zip_bomb_keras(path: Path, model_file: Path, mib: int) -> Path:
    """``model_file`` (a .keras) with its config.json padded by ``mib`` MiB of spaces (still valid JSON),
    written in 1 MiB blocks: a few hundred KB on disk."""
    import zipfile

    with zipfile.ZipFile(model_file) as source, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for info in source.infolist():
            if info.filename != "config.json":
                archive.writestr(info, source.read(info))
        with archive.open("config.json", "w", force_zip64=True) as handle:
            handle.write(source.read("config.json"))
            block = b" " * (1 << 20)
            for _ in range(mib):
                handle.write(block)
    return path


@pytest.fixture(autouse=True)
def _private_cache_dir(tmp_path_factory, monkeypatch):
    """What oipscope caches about the machine (``precision.json``) goes to a temporary folder,
    never into the real home."""
    monkeypatch.setenv("OIPSCOPE_CACHE_DIR", str(tmp_path_factory.mktemp("oipscope-cache")))
