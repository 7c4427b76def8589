"""Interrupting a run: a real SIGINT to `oipscope find`, then --resume; atomic result saves."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import interrupt_when, start_cli

from oipscope.ascent.pixels import OipConfig
from oipscope.errors import DataError
from oipscope.search.results import ARRAYS_NPZ, RESULT_JSON, MapOip, OipResult

N_MAPS = 8


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> Path:
    """A 16x16 CNN whose layer c2 has 8 maps; with --chunk-maps 1 each map is a chunk (~0.5 s)."""
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((16, 16, 1)),
        keras.layers.Conv2D(8, 3, activation="relu", name="c1"),
        keras.layers.Conv2D(N_MAPS, 3, activation="relu", name="c2"),
    ], name="interruptible")
    path = tmp_path_factory.mktemp("interrupt") / "model.keras"
    model.save(path)
    return path


def _start(model_file: Path, out: Path, *extra: str) -> subprocess.Popen:
    return start_cli("find", str(model_file), "--layer", "c2", "--steps", "300", "--no-assess", "--chunk-maps", "1",
                     "--seed", "3", "--out", str(out), *extra, cwd=out.parent)


def _finished_chunks(out: Path) -> list[Path]:
    return sorted(p.parent for p in (out / "parts").glob("maps-*/" + RESULT_JSON))


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_sigint_keeps_chunks_and_resume_matches_uninterrupted_run(model_file, tmp_path):
    reference = _start(model_file, tmp_path / "reference")  # runs alongside, same seed
    out = tmp_path / "interrupted"
    proc = _start(model_file, out)
    stdout, stderr = interrupt_when(proc, lambda: bool(_finished_chunks(out)), "the first chunk")
    kept = _finished_chunks(out)
    assert 1 <= len(kept) < N_MAPS, "the signal should land between the first and the last chunk"
    message = [line for line in stderr.splitlines() if line.startswith("interrupted:")]
    assert message == [
        f"interrupted: {len(kept)} finished chunk(s) with {len(kept)} OIP(s) kept in {out / 'parts'}; "
        "run the same command with --resume to continue"
    ], stderr
    assert not (out / RESULT_JSON).exists(), "an interrupted run must not look finished"
    for chunk in kept:
        part = OipResult.load(chunk)
        assert len(part.maps) == 1 and part.layer_name == "c2"
        assert np.isfinite(part.maps[0].image).all()
    assert not list(out.rglob("*.tmp")), "temporary files left behind"

    resumed = _start(model_file, out, "--resume")
    r_out, r_err = resumed.communicate(timeout=180)
    assert resumed.returncode == 0, r_out + r_err
    ref_out, ref_err = reference.communicate(timeout=180)
    assert reference.returncode == 0, ref_out + ref_err

    final, expected = OipResult.load(out), OipResult.load(tmp_path / "reference")
    assert [m.map_index for m in final.maps] == list(range(N_MAPS))
    assert [m.map_index for m in final.maps] == [m.map_index for m in expected.maps]
    assert [m.status for m in final.maps] == [m.status for m in expected.maps]
    assert [m.start for m in final.maps] == [m.start for m in expected.maps]
    assert [m.converged_step for m in final.maps] == [m.converged_step for m in expected.maps]
    for got, want in zip(final.maps, expected.maps):
        assert np.array_equal(got.image, want.image), f"map {got.map_index} differs after resume"
        assert np.array_equal(got.snapshots, want.snapshots)
        assert np.array_equal(got.activation_history, want.activation_history)
    assert final.model_hash == expected.model_hash
    assert not (out / "parts").exists()


# --- atomic saves -------------------------------------------------------------------


def _result(n_maps: int = 2, value: float = 1.0) -> OipResult:
    maps = tuple(
        MapOip(map_index=k, image=np.full((4, 4, 1), value, np.float32), activation=value, status="converged",
               converged_step=3, snapshots=np.zeros((2, 4, 4, 1), np.float32), snapshot_steps=(0, 4),
               activation_history=np.arange(5, dtype=np.float32), start="scales")
        for k in range(n_maps)
    )
    return OipResult(layer_name="c2", model_name="m", model_hash=None, config=OipConfig(steps=5), maps=maps,
                     versions={"oipscope": "test"}, seconds=0.1)


def _interrupt_savez(monkeypatch, exc: BaseException) -> None:
    """np.savez_compressed writes a few hundred bytes of a real archive, then fails."""
    real = np.savez_compressed

    def half_written(fh, **arrays):
        import io

        buffer = io.BytesIO()
        real(buffer, **arrays)
        fh.write(buffer.getvalue()[: len(buffer.getvalue()) // 2])
        raise exc

    monkeypatch.setattr(np, "savez_compressed", half_written)


def _assert_nothing_valid(folder: Path) -> None:
    assert not list(folder.glob("*.tmp")) and not list(folder.glob(".*.tmp")), list(folder.iterdir())
    assert not (folder / RESULT_JSON).exists()
    with pytest.raises(DataError, match="result.json"):
        OipResult.load(folder)
    if (folder / ARRAYS_NPZ).exists():  # only a complete, earlier archive may remain
        np.load(folder / ARRAYS_NPZ).close()


@pytest.mark.parametrize("exc", [OSError(28, "No space left on device"), KeyboardInterrupt()],
                         ids=["disk-full", "ctrl-c"])
def test_interrupted_save_leaves_no_valid_result(tmp_path, monkeypatch, exc):
    _interrupt_savez(monkeypatch, exc)
    with pytest.raises(type(exc)):
        _result().save(tmp_path / "fresh")
    _assert_nothing_valid(tmp_path / "fresh")


def test_interrupted_overwrite_never_mixes_old_and_new(tmp_path, monkeypatch):
    """Overwriting a result and failing half-way leaves no loadable result, never old JSON with new arrays."""
    folder = tmp_path / "result"
    _result(2, value=1.0).save(folder)
    assert OipResult.load(folder).maps[0].activation == 1.0

    import oipscope.search.results as results

    real_atomic_write = results.atomic_write

    def fail_on_json(path, content):
        if Path(path).name == RESULT_JSON:
            raise KeyboardInterrupt
        return real_atomic_write(path, content)

    monkeypatch.setattr(results, "atomic_write", fail_on_json)
    with pytest.raises(KeyboardInterrupt):
        _result(2, value=2.0).save(folder)
    _assert_nothing_valid(folder)

    monkeypatch.undo()
    _result(2, value=1.0).save(folder)
    _interrupt_savez(monkeypatch, OSError(28, "No space left on device"))
    with pytest.raises(OSError):  # the arrays step fails: the old JSON must not pair with anything
        _result(2, value=2.0).save(folder)
    _assert_nothing_valid(folder)

    monkeypatch.undo()
    _result(2, value=3.0).save(folder)  # a later complete save is whole again
    loaded = OipResult.load(folder)
    assert loaded.maps[1].activation == 3.0 and np.all(loaded.maps[1].image == 3.0)
    assert json.loads((folder / RESULT_JSON).read_text())["format"] == 1
