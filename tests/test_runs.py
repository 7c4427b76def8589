"""Resumable runs: chunked layers, interrupted and resumed, and the zoo over several layers."""

import json

import numpy as np
import pytest

from oipscope.data import Dataset, Split
from oipscope.engine import OipConfig
from oipscope.errors import ConfigError, LayerError
from oipscope.results import OipResult
from oipscope.runs import RUN_JSON, run_layer, run_zoo, zoo_layer_folder

CONFIG = OipConfig(steps=20, n_candidates=2, restarts=0, scales=(3, 6, 12), rescue_steps=0)


def _same(a: OipResult, b: OipResult) -> None:
    assert [m.map_index for m in a.maps] == [m.map_index for m in b.maps]
    for x, y in zip(a.maps, b.maps):
        np.testing.assert_array_equal(x.image, y.image)
        assert (x.status, x.start, x.activation) == (y.status, y.start, y.activation)


def test_interrupted_run_resumes_to_the_same_result(tiny_model, tmp_path):
    whole = run_layer(tiny_model, "c2", "all", CONFIG, tmp_path / "whole", chunk_maps=2)
    assert not (tmp_path / "whole" / "parts").exists()

    def stop_after_first_chunk(done, total):
        if done > 2:  # the second chunk is under way
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_layer(tiny_model, "c2", "all", CONFIG, tmp_path / "cut", chunk_maps=2,
                  on_progress=stop_after_first_chunk)
    kept = list((tmp_path / "cut" / "parts").iterdir())
    assert len(kept) == 1 and OipResult.load(kept[0]).maps[0].map_index == 0
    assert not (tmp_path / "cut" / "result.json").exists()

    seen = []
    resumed = run_layer(tiny_model, "c2", "all", CONFIG, tmp_path / "cut", chunk_maps=2, resume=True,
                        on_progress=lambda done, total: seen.append(done))
    _same(resumed, whole)
    _same(OipResult.load(tmp_path / "cut"), whole)
    assert seen[-1] == 6


def test_resume_refuses_other_settings(tiny_model, tmp_path):
    run_layer(tiny_model, "c2", "0-1", CONFIG, tmp_path, chunk_maps=2)
    with pytest.raises(ConfigError, match="other settings"):
        run_layer(tiny_model, "c2", "0-1", OipConfig(steps=21, scales=(3, 6, 12)), tmp_path, resume=True,
                  chunk_maps=2)


def test_fresh_run_drops_an_older_result(tiny_model, tmp_path):
    run_layer(tiny_model, "c2", "0-1", CONFIG, tmp_path, chunk_maps=2)
    key = json.loads((tmp_path / RUN_JSON).read_text())
    with pytest.raises(KeyboardInterrupt):
        run_layer(tiny_model, "c2", "2-3", CONFIG, tmp_path, chunk_maps=1,
                  on_progress=lambda done, total: (_ for _ in ()).throw(KeyboardInterrupt))
    assert not (tmp_path / "result.json").exists()  # the 0-1 result cannot pass for the 2-3 run
    assert json.loads((tmp_path / RUN_JSON).read_text()) != key


def test_zoo_runs_every_layer_with_dataset_examples(tiny_model, tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (50, 12, 12), dtype=np.uint8)
    split = Split(images=images, labels=rng.integers(0, 3, 50))
    data = Dataset(name="toy", train=split, test=split, class_names=("a", "b", "c"), source="test")
    layers_seen = []
    runs = run_zoo(tiny_model, None, CONFIG, tmp_path, dataset=data,
                   on_layer=lambda name, i, n: layers_seen.append((name, i, n)))
    assert [name for name, _, _ in layers_seen] == ["c1", "pool", "c2"]
    for run in runs:
        assert run.folder == zoo_layer_folder(tmp_path, run.result.layer_name)
        assert (run.folder.parent / "examples.npz").is_file()
        assert all(m.evoked_probabilities is not None and m.evoked_probabilities.shape == (3,)
                   for m in run.result.maps)
        assert OipResult.load(run.folder).maps[0].superstimulus_ratio is not None
    again = run_zoo(tiny_model, ["c2"], CONFIG, tmp_path, dataset=data, resume=True)
    _same(again[0].result, runs[2].result)


def test_zoo_checks_layer_names_first(tiny_model, tmp_path):
    with pytest.raises(LayerError, match="c2"):
        run_zoo(tiny_model, ["c1", "c3"], CONFIG, tmp_path)
    assert not (tmp_path / "data").exists()
