"""Bad inputs through the real command line (``python -m oipscope`` in a subprocess).

``CASES`` is the table: one row per fault, ``(id, argv builder, exit code, message
fragments)``. The argv builder gets the :class:`Workspace` of prepared files and returns
the arguments after ``python -m oipscope``; a leading dict holds extra environment
variables. Each failing row must exit with the documented code (README, "Errors and
exit codes"), print exactly one line starting with ``error:`` that holds every fragment
(what is wrong and what to do), leave no traceback, and - for ``find`` - leave no
output folder behind. Rows with exit code 0 are inputs oipscope accepts (converts).

Starting TensorFlow costs about 3 s per process, so the selected rows run side by side
in a small process pool started by the module fixture ``outcomes``; each parametrized
test then checks its own row.
"""

from __future__ import annotations

import gzip
import json
import os
import struct
import subprocess
import sys
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from conftest import build_tiny_model

import numpy as np
import pytest

TF_NOISE = ("WARNING: All log messages", "I0000", "E0000", "W0000")
FAST = ["--steps", "5", "--no-assess", "--no-precursor", "--restarts", "0"]
IDX_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
             "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


# --- prepared inputs --------------------------------------------------------------


def _write_idx(path: Path, array: np.ndarray, *, cut_payload: int = 0) -> None:
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = array.astype(np.uint8).tobytes()
    with gzip.open(path, "wb") as fh:
        fh.write(header + payload[: len(payload) - cut_payload])


def _idx_folder(folder: Path, *, n_labels: int = 100) -> Path:
    """A small MNIST-like IDX folder (100 train, 20 test images)."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True)
    _write_idx(folder / IDX_FILES[0], rng.integers(0, 256, (100, 28, 28)))
    _write_idx(folder / IDX_FILES[1], rng.integers(0, 10, n_labels))
    _write_idx(folder / IDX_FILES[2], rng.integers(0, 256, (20, 28, 28)))
    _write_idx(folder / IDX_FILES[3], rng.integers(0, 10, 20))
    return folder


def _first_half(source: Path, target: Path) -> Path:
    data = source.read_bytes()
    target.write_bytes(data[: len(data) // 2])
    return target


@dataclass
class Workspace:
    """Files for the bad-input rows, made once per module (tiny models, 12x12x1 input)."""

    root: Path

    def __post_init__(self) -> None:
        import keras
        from PIL import Image

        from oipscope.config import OipConfig
        from oipscope.model.encoding import InputEncoding
        from oipscope.runs.jobs import _run_key
        from oipscope.search.pipeline import file_sha256

        r = self.root
        tiny = build_tiny_model("tiny")
        self.tiny = r / "tiny.keras"
        tiny.save(self.tiny)
        tiny_h5 = r / "tiny.h5"
        tiny.save(tiny_h5)
        self.truncated_keras = _first_half(self.tiny, r / "truncated.keras")
        self.truncated_h5 = _first_half(tiny_h5, r / "truncated.h5")
        self.text_keras = r / "x.keras"
        self.text_keras.write_text("not a model\n")
        self.text_txt = r / "x.txt"
        self.text_txt.write_text("not a model\n")

        self.dense = r / "dense.keras"
        keras.Sequential([keras.Input((10,)), keras.layers.Dense(3, name="d")], name="dense").save(self.dense)
        a, b = keras.Input((12, 12, 1), name="a"), keras.Input((12, 12, 1), name="b")
        merged = keras.layers.Conv2D(2, 3, name="c")(keras.layers.Concatenate(name="cat")([a, b]))
        self.two_inputs = r / "two_inputs.keras"
        keras.Model([a, b], merged, name="two_inputs").save(self.two_inputs)
        self.any_size = r / "any_size.keras"
        keras.Sequential([keras.Input((None, None, 1)), keras.layers.Conv2D(2, 3, name="c")],
                         name="any_size").save(self.any_size)
        self.lambda_model = r / "lambda.keras"
        keras.Sequential([
            keras.Input((12, 12, 1)),
            keras.layers.Lambda(lambda x: x * 2, name="double"),
            keras.layers.Conv2D(2, 3, name="c1"),
        ], name="with_lambda").save(self.lambda_model)

        self.notes = r / "notes.txt"
        self.notes.write_text("a text file, not an image\n")
        self.big_gray = r / "big_gray.png"
        Image.fromarray(np.random.default_rng(1).integers(0, 256, (30, 40), dtype=np.uint8), "L").save(self.big_gray)
        self.rgb = r / "rgb.png"
        Image.fromarray(np.random.default_rng(2).integers(0, 256, (12, 12, 3), dtype=np.uint8), "RGB").save(self.rgb)

        good = _idx_folder(r / "idx-good")
        self.idx_cut = _idx_folder(r / "idx-cut")  # the gzip stream itself cut in half
        _first_half(good / IDX_FILES[0], self.idx_cut / IDX_FILES[0])
        self.idx_short = _idx_folder(r / "idx-short")  # valid gzip, payload shorter than its header says
        _write_idx(self.idx_short / IDX_FILES[0], np.zeros((100, 28, 28)), cut_payload=28 * 28 * 50)
        self.idx_mismatch = _idx_folder(r / "idx-mismatch", n_labels=90)

        self.afile = r / "afile"
        self.afile.write_text("a regular file\n")

        # a finished run folder, as `find ... --resume` expects it, but from a future format
        self.old_result = r / "old-result"
        self.old_result.mkdir()
        config = OipConfig(steps=5, precursor=False, restarts=0)
        key = _run_key("c2", tuple(range(6)), config, file_sha256(self.tiny), InputEncoding.standardize())
        (self.old_result / "run.json").write_text(json.dumps(key))
        (self.old_result / "result.json").write_text(json.dumps({"format": 999, "maps": []}))

    def out(self, case_id: str) -> Path:
        """The --out folder of a row (must not exist after a failing find)."""
        return self.root / f"out-{case_id}"


def _find(w: Workspace, case_id: str, model: Path, *args: str) -> list[str]:
    return ["find", str(model), *args, *FAST, "--out", str(w.out(case_id))]


# --- the table --------------------------------------------------------------------

CASES = [
    # model files (exit 4)
    ("missing-model", lambda w: ["info", str(w.root / "missing.keras")], 4,
     ("model file not found", "missing.keras", "check the path")),
    ("text-named-keras", lambda w: ["info", str(w.text_keras)], 4,
     ("x.keras is not a valid .keras file", "re-save or re-download")),
    ("text-txt", lambda w: ["info", str(w.text_txt)], 4,
     ("x.txt is not a Keras model file", "expected a .keras or .h5 file")),
    ("truncated-keras", lambda w: ["info", str(w.truncated_keras)], 4,
     ("truncated.keras is not a valid .keras file", "re-save or re-download")),
    ("truncated-h5", lambda w: ["info", str(w.truncated_h5)], 4,
     ("cannot load model", "truncated", "re-save or re-download")),
    ("lambda-refused", lambda w: ["info", str(w.lambda_model)], 4,
     ("Lambda", "refused in safe mode", "--unsafe-load")),
    ("no-image-input", lambda w: _find(w, "no-image-input", w.dense, "--layer", "d"), 4,
     ("input has shape (None, 10)", "needs an image input")),
    ("multiple-inputs", lambda w: _find(w, "multiple-inputs", w.two_inputs, "--layer", "c"), 4,
     ("has 2 inputs", "exactly one image input")),
    ("any-size-without-size", lambda w: _find(w, "any-size-without-size", w.any_size, "--layer", "c"), 4,
     ("input has shape (None, None, None, 1)", "give --input-size H,W")),
    # input encoding and size options (exit 2, before TensorFlow starts where the model is not needed)
    ("input-size-letters", lambda w: _find(w, "input-size-letters", w.any_size, "--layer", "c",
                                           "--input-size", "abc"), 2,
     ("--input-size takes a positive size H or H,W", "'abc'")),
    ("input-size-of-fixed-model", lambda w: _find(w, "input-size-of-fixed-model", w.tiny, "--layer", "c2",
                                                  "--input-size", "16"), 2,
     ("takes 12x12 images; --input-size 16,16 only fixes the size of models that take any size",)),
    ("bgr-alone", lambda w: _find(w, "bgr-alone", w.tiny, "--layer", "c2", "--bgr"), 2,
     ("--bgr goes with the encoding", "--preprocess caffe")),
    ("bgr-grey-model", lambda w: _find(w, "bgr-grey-model", w.tiny, "--layer", "c2", "--standardize", "--bgr"), 2,
     ("BGR channel order needs a colour model (3 channels); the model has 1",)),
    ("preprocess-grey-model", lambda w: _find(w, "preprocess-grey-model", w.tiny, "--layer", "c2",
                                              "--preprocess", "torch"), 2,
     ("--preprocess torch is for colour models (3 channels); the model has 1", "--standardize")),
    ("preprocess-unknown", lambda w: _find(w, "preprocess-unknown", w.tiny, "--layer", "c2", "--preprocess", "vgg"),
     2, ("unknown preprocessing 'vgg'", "choose one of caffe, tf, torch")),
    ("preprocess-with-range", lambda w: _find(w, "preprocess-with-range", w.tiny, "--layer", "c2",
                                              "--preprocess", "tf", "--input-range", "0,1"), 2,
     ("--preprocess sets the whole encoding",)),
    # layers and maps (exit 5, malformed selections 2)
    ("unknown-layer", lambda w: _find(w, "unknown-layer", w.tiny, "--layer", "c3"), 5,
     ("no layer named 'c3'", "did you mean", "c2")),
    ("flatten-no-maps", lambda w: _find(w, "flatten-no-maps", w.tiny, "--layer", "flat"), 5,
     ("'flat' has output shape (None, 54), no feature maps", "layers with maps: c1, pool, c2")),
    ("map-out-of-range", lambda w: _find(w, "map-out-of-range", w.tiny, "--layer", "c2", "--maps", "0-9"), 5,
     ("map index 9 is out of range", "6 maps (0-5)")),
    ("maps-reversed", lambda w: _find(w, "maps-reversed", w.tiny, "--layer", "c2", "--maps", "3-1"), 2,
     ("bad map range '3-1'", "start <= end", "'1-3'")),
    ("maps-letters", lambda w: _find(w, "maps-letters", w.tiny, "--layer", "c2", "--maps", "a-b"), 2,
     ("bad map index 'a'", "a range like '0-15'")),
    ("maps-empty-element", lambda w: _find(w, "maps-empty-element", w.tiny, "--layer", "c2", "--maps", "1,,2"), 2,
     ("bad map selection '1,,2'", "empty element", "'0-15,40'")),
    # search parameters (exit 2; all but the scale check fail before TensorFlow starts)
    ("epsilon-zero", lambda w: _find(w, "epsilon-zero", w.tiny, "--layer", "c2", "--epsilon", "0"), 2,
     ("epsilon must be > 0, got 0.0",)),
    ("epsilon-negative", lambda w: _find(w, "epsilon-negative", w.tiny, "--layer", "c2", "--epsilon", "-1"), 2,
     ("epsilon must be > 0, got -1.0",)),
    ("steps-zero", lambda w: ["find", str(w.tiny), "--layer", "c2", "--steps", "0", "--out", str(w.out("steps-zero"))],
     2, ("steps must be an integer >= 1, got 0",)),
    ("scale-larger-than-image", lambda w: _find(w, "scale-larger-than-image", w.tiny, "--layer", "c2",
                                                "--scales", "3,20"), 2,
     ("length scale 20 is larger than the 12x12 model input", "use scales between 1 and 12")),
    ("scales-not-numbers", lambda w: _find(w, "scales-not-numbers", w.tiny, "--layer", "c2", "--scales", "3,x"), 2,
     ("--scales must be comma-separated numbers", "'3,x'")),
    ("factors-negative", lambda w: _find(w, "factors-negative", w.tiny, "--layer", "c2",
                                         "--scales", "3,6", "--factors", "0.5,-1"), 2,
     ("factors must be >= 0", "-1.0")),
    ("factors-count", lambda w: _find(w, "factors-count", w.tiny, "--layer", "c2",
                                      "--scales", "3,6", "--factors", "0.5"), 2,
     ("1 factors for 2 scales", "one factor per scale")),
    ("memory-budget-zero", lambda w: _find(w, "memory-budget-zero", w.tiny, "--layer", "c2",
                                           "--memory-budget-mb", "0"), 2,
     ("memory_budget_mb must be > 0",)),
    ("chunk-maps-zero", lambda w: _find(w, "chunk-maps-zero", w.tiny, "--layer", "c2", "--chunk-maps", "0"), 2,
     ("--chunk-maps must be >= 1, got 0",)),
    # image files for `activations --image`: a text file fails, other sizes and channels are converted
    ("image-not-an-image", lambda w: ["activations", str(w.tiny), "--layer", "c1", "--image", str(w.notes),
                                      "--out", str(w.root / "act-text.png")], 3,
     ("notes.txt is not an image file", "PNG, JPEG")),
    ("image-other-size-accepted", lambda w: ["activations", str(w.tiny), "--layer", "c1", "--image",
                                             str(w.big_gray), "--out", str(w.root / "act-big.png")], 0,
     ("wrote", "act-big.png")),
    ("image-rgb-accepted", lambda w: ["activations", str(w.tiny), "--layer", "c1", "--image", str(w.rgb),
                                      "--out", str(w.root / "act-rgb.png")], 0,
     ("wrote", "act-rgb.png")),
    # IDX data (exit 3)
    ("idx-gzip-truncated", lambda w: [{"OIPSCOPE_DATA_DIR": str(w.idx_cut)}, "train", "--epochs", "1",
                                      "--train-limit", "100", "--out", str(w.root / "m1.keras")], 3,
     ("cannot read IDX file", "train-images-idx3-ubyte.gz", "re-download")),
    ("idx-payload-truncated", lambda w: [{"OIPSCOPE_DATA_DIR": str(w.idx_short)}, "train", "--epochs", "1",
                                         "--train-limit", "100", "--out", str(w.root / "m2.keras")], 3,
     ("train-images-idx3-ubyte.gz is truncated", "header says shape (100, 28, 28)", "re-download it")),
    ("idx-mismatched", lambda w: [{"OIPSCOPE_DATA_DIR": str(w.idx_mismatch)}, "train", "--epochs", "1",
                                  "--train-limit", "100", "--out", str(w.root / "m3.keras")], 3,
     ("holds (90,) labels", "holds 100 images", "re-download both")),
    # output (exit 6)
    ("out-under-a-file", lambda w: ["find", str(w.tiny), "--layer", "c2", *FAST, "--out", str(w.afile / "sub")], 6,
     ("cannot write output", "afile is a file, not a folder", "choose another --out")),
    pytest.param("out-in-proc", lambda w: ["find", str(w.tiny), "--layer", "c2", *FAST, "--out", "/proc/oipscope-x"],
                 6, ("cannot write output /proc/oipscope-x", "choose another --out"),
                 marks=pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux /proc")),
    # zoo and report
    ("zoo-unknown-layer", lambda w: ["zoo", str(w.tiny), "--layers", "c1,c3", "--steps", "5", "--no-assess",
                                     "--out", str(w.out("zoo-unknown-layer"))], 5,
     ("no layer named 'c3'", "did you mean", "c2")),
    ("zoo-out-under-a-file", lambda w: ["zoo", str(w.tiny), "--steps", "5", "--no-assess",
                                        "--out", str(w.afile / "zoo")], 6,
     ("cannot write output", "afile is a file, not a folder", "choose another --out")),
    ("report-not-a-gallery", lambda w: ["report", str(w.root / "idx-good")], 2,
     ("no data/gallery.json in", "idx-good", "give the folder of a gallery")),
    # results from another version (exit 2): `find --resume` loads the finished result
    ("result-format-999", lambda w: ["find", str(w.tiny), "--layer", "c2", *FAST, "--out", str(w.old_result),
                                     "--resume"], 2,
     ("holds an OIP result in format 999", "reads format 1", "re-create it")),
]
EXTRA_JOBS = {  # other tests of this module that run the CLI in the pool
    "test_unsafe_load_allows_lambda": lambda w: ["info", str(w.lambda_model), "--unsafe-load"],
}


def _case_id(case) -> str:
    return case.values[0] if hasattr(case, "values") else case[0]


def _case_builder(case):
    return case.values[1] if hasattr(case, "values") else case[1]


# --- running them -----------------------------------------------------------------


def _run(argv: list, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "COLUMNS": "250"}
    if argv and isinstance(argv[0], dict):
        env.update(argv[0])
        argv = argv[1:]
    return subprocess.run([sys.executable, "-m", "oipscope", *argv], capture_output=True, text=True,
                          timeout=180, env=env, cwd=cwd)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Workspace:
    return Workspace(tmp_path_factory.mktemp("bad-inputs"))


@pytest.fixture(scope="module")
def outcomes(request, workspace):
    """Start every selected row's subprocess at once (2-4 at a time); {id: Future}."""
    wanted = {item.callspec.id for item in request.session.items
              if item.module is request.module and item.originalname == "test_bad_input"}
    wanted |= {item.originalname for item in request.session.items
               if item.module is request.module and item.originalname in EXTRA_JOBS}
    jobs = {_case_id(case): _case_builder(case) for case in CASES}
    jobs.update(EXTRA_JOBS)
    pool = ThreadPoolExecutor(max_workers=max(2, min(4, os.cpu_count() or 2)))
    futures: dict[str, Future] = {}
    for name, build in jobs.items():
        if name in wanted:
            futures[name] = pool.submit(_run, build(workspace), workspace.root)
    yield futures
    pool.shutdown(wait=True, cancel_futures=True)


def _meaningful_stderr(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip() and not line.startswith(TF_NOISE)]


@pytest.mark.parametrize("case_id,build,code,fragments", CASES, ids=[_case_id(c) for c in CASES])
def test_bad_input(case_id, build, code, fragments, outcomes, workspace):
    proc = outcomes[case_id].result()
    combined = proc.stdout + proc.stderr
    assert "Traceback" not in combined, combined
    assert proc.returncode == code, f"exit {proc.returncode}, expected {code}:\n{combined}"
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    if code == 0:
        assert not errors, proc.stderr
        for fragment in fragments:
            assert fragment in proc.stdout.replace("\n", ""), proc.stdout
        return
    assert _meaningful_stderr(proc.stderr) == errors and len(errors) == 1, proc.stderr
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    if build(workspace)[0] in ("find", "zoo") and case_id not in ("result-format-999", "out-in-proc"):
        assert not workspace.out(case_id).exists(), "a failed run left its output folder behind"


def test_table_covers_every_exit_code():
    codes = {c.values[2] if hasattr(c, "values") else c[2] for c in CASES}
    assert codes == {0, 2, 3, 4, 5, 6}


def test_unsafe_load_allows_lambda(outcomes):
    """The same Lambda model loads with --unsafe-load, with a warning line and no error."""
    proc = outcomes["test_unsafe_load_allows_lambda"].result()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert [line for line in _meaningful_stderr(proc.stderr) if line.startswith("warning:")] == [
        "warning: --unsafe-load: code inside the model file may run"
    ], proc.stderr
    assert not [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert "double" in proc.stdout and "Lambda" in proc.stdout


def test_result_from_another_format_is_refused_by_the_library(tmp_path):
    """OipResult.load (used by --resume and run_layer) names the format and what to do."""
    from oipscope.errors import ConfigError
    from oipscope.search.results import OipResult

    (tmp_path / "result.json").write_text(json.dumps({"format": 999}))
    with pytest.raises(ConfigError, match=r"format 999.*reads format 1.*re-create it"):
        OipResult.load(tmp_path)
