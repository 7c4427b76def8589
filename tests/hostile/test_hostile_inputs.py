"""Hostile inputs through the real command line: nothing lost, nothing hung, one clear line.

Decompression-bomb images (a PNG header claiming 100 000 x 100 000 pixels, 74 bytes on disk), a
zip-bomb ``.keras`` (its config.json padded to 100 MiB of spaces, a few hundred KB on disk), NaN
images in an ``.npz``, a directory given as the model, a non-finite memory budget, and a Keras
load error that runs to many lines. Each file is built small and streamed, so the tests use
little memory; the subprocesses run two at a time (TensorFlow starts in about 3 s each).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from conftest import build_tiny_model, write_png_header, write_zip_bomb_keras

TF_NOISE = ("WARNING: All log messages", "I0000", "E0000", "W0000")
FAST = ["--steps", "5", "--no-precursor", "--restarts", "0"]


@dataclass(frozen=True)
class Outcome:
    """A finished ``python -m oipscope`` run."""

    returncode: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def errors(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.startswith("error:")]

    @property
    def meaningful_stderr(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.strip() and not line.startswith(TF_NOISE)]


def _run(argv: list[str], cwd: Path) -> Outcome:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "COLUMNS": "250"}
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "oipscope", *argv], capture_output=True, text=True,
                          timeout=180, env=env, cwd=cwd)
    return Outcome(proc.returncode, proc.stdout, proc.stderr, time.perf_counter() - started)


def _files(root: Path) -> dict[str, Path]:
    """The hostile files, and a tiny model (12x12x1 input) to use them with."""
    from PIL import Image

    tiny = root / "tiny.keras"
    build_tiny_model("tiny").save(tiny)
    folder = root / "images"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(4):
        Image.fromarray(rng.integers(0, 256, (12, 12), dtype=np.uint8)).save(folder / f"good{i}.png")
    write_png_header(folder / "bomb.png", 100_000, 100_000)
    write_png_header(folder / "big.png", 12_000, 12_000)

    nans = rng.uniform(0, 1, (20, 12, 12)).astype(np.float32)
    nans[1, 0, 0], nans[3, 5, 5] = np.nan, np.inf
    np.savez(root / "nans.npz", x=nans)

    with zipfile.ZipFile(tiny) as source:  # c1 gets a keyword Conv2D does not take: 11 lines from Keras
        parts = {name: source.read(name) for name in source.namelist()}
    config = json.loads(parts["config.json"])
    config["config"]["layers"][1]["config"]["foo"] = 1
    with zipfile.ZipFile(root / "kwarg.keras", "w") as archive:
        for name, data in {**parts, "config.json": json.dumps(config).encode()}.items():
            archive.writestr(name, data)
    (root / "a-folder.keras").mkdir()
    return {"tiny": tiny, "folder": folder, "bomb": folder / "bomb.png", "nans": root / "nans.npz",
            "zip_bomb": write_zip_bomb_keras(root / "zip_bomb.keras", tiny, 100),
            "kwarg": root / "kwarg.keras", "directory": root / "a-folder.keras"}


JOBS = {
    "folder-with-bombs": lambda f, out: ["find", str(f["tiny"]), "--layer", "c2", "--images", str(f["folder"]),
                                         *FAST, "--out", str(out)],
    "image-bomb": lambda f, out: ["activations", str(f["tiny"]), "--layer", "c1", "--image", str(f["bomb"]),
                                  "--out", str(out / "act.png")],
    "dream-bomb": lambda f, out: ["dream", str(f["bomb"]), "--model", str(f["tiny"]), "--layer", "c1",
                                  "--out", str(out)],
    "zip-bomb-model": lambda f, out: ["info", str(f["zip_bomb"])],
    "nan-images": lambda f, out: ["find", str(f["tiny"]), "--layer", "c2", "--images", str(f["nans"]),
                                  *FAST, "--out", str(out)],
    "directory-as-model": lambda f, out: ["info", str(f["directory"])],
    "memory-budget-inf": lambda f, out: ["find", str(f["tiny"]), "--layer", "c2", "--memory-budget-mb", "inf",
                                         *FAST, "--out", str(out)],
    "keras-error-lines": lambda f, out: ["info", str(f["kwarg"])],
}


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("hostile")


@pytest.fixture(scope="module")
def outcomes(root) -> dict[str, Outcome]:
    files = _files(root)
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {name: pool.submit(_run, build(files, root / f"out-{name}"), root)
                   for name, build in JOBS.items()}
        return {name: future.result() for name, future in futures.items()}


def _one_error_line(outcome: Outcome, code: int, *fragments: str) -> str:
    combined = outcome.stdout + outcome.stderr
    assert "Traceback" not in combined, combined
    assert outcome.returncode == code, f"exit {outcome.returncode}, expected {code}:\n{combined}"
    assert outcome.meaningful_stderr == outcome.errors and len(outcome.errors) == 1, outcome.stderr
    for fragment in fragments:
        assert fragment in outcome.errors[0], outcome.errors[0]
    return outcome.errors[0]


def test_bombs_in_a_folder_are_skipped_and_counted(outcomes, root):
    outcome = outcomes["folder-with-bombs"]
    assert outcome.returncode == 0, outcome.stdout + outcome.stderr
    assert "DecompressionBomb" not in outcome.stdout + outcome.stderr
    assert "note: skipped 2 unreadable image file(s) in" in outcome.stdout
    assert "big.png, bomb.png" in outcome.stdout
    with np.load(root / "out-folder-with-bombs" / "examples.npz") as examples:
        assert int(examples["n_images"]) == 4


@pytest.mark.parametrize("job", ["image-bomb", "dream-bomb"])
def test_a_single_bomb_image_is_one_line(outcomes, job):
    _one_error_line(outcomes[job], 3, "bomb.png has 10,000,000,000 pixels",
                    "over the limit of 50,000,000 pixels per image", "OIPSCOPE_MAX_IMAGE_PIXELS")


def test_a_zip_bomb_model_is_refused_fast(outcomes):
    outcome = outcomes["zip-bomb-model"]
    _one_error_line(outcome, 4, "zip_bomb.keras: its config.json unpacks to 100 MiB, over the cap of 32 MiB")
    assert outcome.seconds < 5, f"took {outcome.seconds:.1f} s"  # unpacked and parsed: 6 s and 800 MB


def test_nan_images_are_skipped_and_counted(outcomes, root):
    outcome = outcomes["nan-images"]
    assert outcome.returncode == 0, outcome.stdout + outcome.stderr
    assert "note: skipped 2 image(s) with NaN or infinite values in" in outcome.stdout
    assert "nans.npz: #1, #3" in outcome.stdout
    with np.load(root / "out-nan-images" / "examples.npz") as examples:
        assert int(examples["n_images"]) == 18


def test_a_directory_as_model_says_so(outcomes):
    _one_error_line(outcomes["directory-as-model"], 4, "a-folder.keras is a directory, not a model file",
                    "give the .keras or .h5 file itself")


def test_an_infinite_memory_budget_is_refused(outcomes, root):
    _one_error_line(outcomes["memory-budget-inf"], 2, "memory_budget_mb must be > 0, a finite number of MB",
                    "got inf")
    assert not (root / "out-memory-budget-inf").exists()


def test_a_long_keras_error_is_one_short_line(outcomes):
    line = _one_error_line(outcomes["keras-error-lines"], 4, "cannot load model",
                           "Unrecognized keyword arguments passed to Conv2D: {'foo': 1}", "--debug")
    assert len(line) < 400, line
