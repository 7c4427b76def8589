"""Saved files read back: damage of any kind is one DataError (exit code 3) that names the file."""

from __future__ import annotations

import numpy as np
import pytest

from oipscope.config import OipConfig
from oipscope.errors import DataError
from oipscope.files import read_saved_json, read_saved_npz
from oipscope.search.results import ARRAYS_NPZ, RESULT_JSON, MapOip, OipResult


def _result() -> OipResult:
    oip = MapOip(map_index=0, image=np.zeros((4, 4, 1), np.float32), activation=1.0, status="converged",
                 converged_step=3, snapshots=np.zeros((1, 4, 4, 1), np.float32), snapshot_steps=(4,),
                 activation_history=np.arange(5, dtype=np.float32), start="precursor#0")
    return OipResult("c2", "tiny", None, OipConfig(steps=5), (oip,), {}, 0.1)


def _flip_a_byte_inside(path, at: float = 0.5) -> None:
    data = bytearray(path.read_bytes())
    data[int(len(data) * at)] ^= 0xFF
    path.write_bytes(bytes(data))


def _damages(path):
    """(name, damage) pairs: cut short, random bytes, one changed byte (a bad checksum), empty."""
    original = path.read_bytes()
    rng = np.random.default_rng(0)
    yield "cut", original[: len(original) // 2]
    yield "random", rng.integers(0, 256, 600, dtype=np.uint8).tobytes()
    changed = bytearray(original)
    changed[len(changed) // 2] ^= 0xFF
    yield "byte", bytes(changed)
    yield "empty", b""


@pytest.mark.parametrize("name", [ARRAYS_NPZ, RESULT_JSON])
def test_a_damaged_result_is_one_data_error_naming_the_file(tmp_path, name):
    folder = _result().save(tmp_path / "r")
    original = (folder / name).read_bytes()
    for kind, damaged in _damages(folder / name):
        (folder / name).write_bytes(damaged)
        with pytest.raises(DataError) as caught:
            OipResult.load(folder)
        message = str(caught.value)
        assert str(folder / name) in message and "\n" not in message, (kind, message)
        assert "allow_pickle" not in message and "pickle" not in message, (kind, message)
        (folder / name).write_bytes(original)
    assert OipResult.load(folder).maps[0].activation == 1.0


def test_a_bad_checksum_is_found_when_read_not_later(tmp_path):
    path = tmp_path / "a.npz"
    np.savez(path, big=np.arange(5000, dtype=np.float64))
    _flip_a_byte_inside(path, 0.5)
    with pytest.raises(DataError, match=r"a\.npz.*damaged"):
        read_saved_npz(path)


def test_a_truncated_json_names_the_file_and_the_place(tmp_path):
    path = tmp_path / "run.json"
    path.write_text('{"layer_name": "c2", "ma')
    with pytest.raises(DataError, match=r"run\.json: its JSON is cut short or malformed \(line 1"):
        read_saved_json(path, "run settings")


def test_damaged_dataset_examples_are_one_data_error(tmp_path):
    from oipscope.analysis.examples import DatasetExamples

    path = tmp_path / "examples.npz"
    np.savez(path, **{f"x{i}": np.arange(3000.0) for i in range(3)})
    _flip_a_byte_inside(path, 0.4)
    with pytest.raises(DataError, match="examples.npz"):
        DatasetExamples.load(path)
