"""Resumable runs: chunked layers, interrupted and resumed, and the zoo over several layers."""

import json

import numpy as np
import pytest

from oipscope.data.datasets import Dataset, Split
from oipscope.ascent.pixels import OipConfig
from oipscope.errors import ConfigError, LayerError
from oipscope.search.results import OipResult
from oipscope.runs.jobs import RUN_JSON, run_layer, run_zoo, zoo_layer_folder

CONFIG = OipConfig(steps=20, n_candidates=2, restarts=0, scales=(3, 6, 12), rescue_steps=0)


def _same(a: OipResult, b: OipResult) -> None:
    assert [m.map_index for m in a.maps] == [m.map_index for m in b.maps]
    for x, y in zip(a.maps, b.maps):
        np.testing.assert_array_equal(x.image, y.image)
        assert (x.status, x.start, x.activation) == (y.status, y.start, y.activation)


@pytest.mark.slow
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


@pytest.mark.slow
def test_resume_takes_other_execution_settings_and_chunks(tiny_model, tmp_path):
    """After running out of memory, a user resumes with a smaller budget: the kept chunk counts."""
    from oipscope.config import Execution

    whole = run_layer(tiny_model, "c2", "all", CONFIG, tmp_path / "whole", chunk_maps=6)

    def stop_after_first_chunk(done, total):
        if done > 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_layer(tiny_model, "c2", "all", CONFIG, tmp_path / "cut", chunk_maps=2, on_progress=stop_after_first_chunk)
    seen = []
    resumed = run_layer(tiny_model, "c2", "all", CONFIG, tmp_path / "cut", chunk_maps=3, resume=True,
                        execution=Execution(memory_budget_mb=0.05), on_progress=lambda done, total: seen.append(done))
    assert seen[0] == 2  # maps 0-1 were kept, not recomputed
    _same(resumed, whole)


@pytest.mark.slow
def test_resume_refuses_other_settings(tiny_model, tmp_path):
    run_layer(tiny_model, "c2", "0-1", CONFIG, tmp_path, chunk_maps=2)
    with pytest.raises(ConfigError, match="other settings"):
        run_layer(tiny_model, "c2", "0-1", OipConfig(steps=21, scales=(3, 6, 12)), tmp_path, resume=True,
                  chunk_maps=2)


@pytest.mark.slow
def test_fresh_run_drops_an_older_result(tiny_model, tmp_path):
    run_layer(tiny_model, "c2", "0-1", CONFIG, tmp_path, chunk_maps=2)
    key = json.loads((tmp_path / RUN_JSON).read_text())
    with pytest.raises(KeyboardInterrupt):
        run_layer(tiny_model, "c2", "2-3", CONFIG, tmp_path, chunk_maps=1,
                  on_progress=lambda done, total: (_ for _ in ()).throw(KeyboardInterrupt))
    assert not (tmp_path / "result.json").exists()  # the 0-1 result cannot pass for the 2-3 run
    assert json.loads((tmp_path / RUN_JSON).read_text()) != key


@pytest.mark.slow
def test_zoo_runs_every_layer_with_dataset_examples(tiny_model, tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (50, 12, 12), dtype=np.uint8)
    split = Split(images=images, labels=rng.integers(0, 3, 50))
    data = Dataset(name="toy", train=split, test=split, class_names=("a", "b", "c"), source="test")
    layers_seen = []
    runs = run_zoo(tiny_model, "all", CONFIG, tmp_path, dataset=data,
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


# --- waking silent maps from the data ---------------------------------------------------


def _block_detector():
    """Map 0 of conv 'c' fires only on a bright 3x3 block on a dark ground (bias -33); the
    pooling layer after it has no pre-activation, so no rescue can wake it."""
    import keras

    inputs = keras.Input((12, 12, 1))
    conv = keras.layers.Conv2D(2, 3, activation="relu", name="c")
    x = conv(inputs)
    outputs = keras.layers.MaxPooling2D(2, name="pool")(x)
    model = keras.Model(inputs, outputs, name="block_detector")
    kernel, bias = conv.get_weights()
    kernel[..., 0] = 1.0
    bias[0] = -33.0
    conv.set_weights([kernel, bias])
    return model


def _block_images(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 40, (n, 12, 12)).astype(np.uint8)  # a dim, noisy ground
    for image in images[: n // 2]:  # half of them with a bright block
        r, c = rng.integers(0, 9, 2)
        image[r : r + 3, c : c + 3] = rng.integers(200, 256, (3, 3))
    return images


@pytest.mark.slow
def test_wake_from_data_gives_silent_maps_an_oip_when_data_drive_them():
    from oipscope.analysis.examples import dataset_examples
    from oipscope.runs.examine import wake_from_data
    from oipscope.search.pipeline import find_oips

    model = _block_detector()
    result = find_oips(model, "pool", config=OipConfig(steps=30, n_candidates=8, restarts=1, seed=0))
    assert result.maps[0].status == "silent", "precondition: random starts cannot wake map 0"
    images = _block_images(20)
    examples = dataset_examples(model, "pool", images, np.zeros(20, int), k=3)
    assert examples.top_values[0, 0] > 0

    woken = wake_from_data(model, result, examples, images)
    first = woken.maps[0]
    assert first.status != "silent" and first.activation > float(examples.top_values[0, 0])
    assert first.start == f"data#{int(examples.top_indices[0, 0])}"
    assert first.activation_history.shape == result.maps[0].activation_history.shape
    assert woken.maps[1] is result.maps[1]  # maps that were not silent are left alone
    assert woken.seconds > result.seconds

    blank = _block_images(20)[10:]  # no image drives map 0: it stays silent
    blank_examples = dataset_examples(model, "pool", blank, np.zeros(10, int), k=3)
    assert blank_examples.top_values[0, 0] == 0
    assert wake_from_data(model, result, blank_examples, blank) is result


@pytest.mark.slow
def test_retry_from_checks_its_arguments(tiny_model):
    from oipscope.search.pipeline import find_oips, retry_from

    result = find_oips(tiny_model, "c2", "0-1", CONFIG)
    with pytest.raises(ConfigError, match="one start image and one label per position"):
        retry_from(tiny_model, result, [0, 1], np.zeros((1, 12, 12, 1)), ["a", "b"])
    assert retry_from(tiny_model, result, [], np.zeros((0, 12, 12, 1)), []) is result


def test_zoo_estimate_counts_the_compiles_a_short_run_is_made_of(tiny_model, monkeypatch):
    """--dry-run: a layer's estimate is its steps scaled from the probe, plus three compiles of the loop
    (measured by the probe's first run), which do not shrink with --steps."""
    from types import SimpleNamespace

    from oipscope.runs import plan as plan_module
    from oipscope.runs.plan import estimate_seconds, plan_zoo

    clock = iter([0.0, 3.0, 3.032])  # the compiling run takes 3 s, the probe 32 map-steps of 1 ms
    monkeypatch.setattr(plan_module, "time", SimpleNamespace(perf_counter=lambda: next(clock)))
    layer = plan_zoo(tiny_model, "c1")[0]  # 4 maps
    seconds = estimate_seconds(tiny_model, layer, OipConfig(steps=10), probe_maps=4, probe_steps=8)
    steps = 0.001 * 4 * 10 * plan_module._SEARCH_OVERHEAD
    compiles = plan_module._COMPILES_PER_LAYER * (3.0 - 0.001 * 4 * 2)
    assert seconds == pytest.approx(steps + compiles)


def test_a_zoo_estimate_probes_one_layer_and_scales_the_others_by_their_flops(monkeypatch):
    """--dry-run on a deep model: one compile, of the middle layer on its canvas; every layer's
    seconds per map-step are the probe's seconds per FLOP times its own FLOPs."""
    import keras

    from oipscope.model.flops import ascent_flops
    from oipscope.runs import plan as plan_module
    from oipscope.runs.plan import Probe, estimate_zoo_seconds, plan_zoo

    image = keras.Input((8, 8, 1))
    x = image
    for k in range(9):
        x = keras.layers.Conv2D(2 + k, 3, padding="same", name=f"c{k}")(x)
    model = keras.Model(image, x)
    plans = plan_zoo(model, "all")
    probed = []

    def fake_probe(subject, plan, config, **kwargs):
        probed.append(plan.layer_name)
        return Probe(per_map_step=0.5, compile_seconds=2.0, per_image=0.0)

    monkeypatch.setattr(plan_module, "probe_layer", fake_probe)
    config = OipConfig(steps=10)
    estimates = estimate_zoo_seconds(model, plans, config)
    assert probed == ["c4"]
    assert [p for _, p in estimates] == [k == 4 for k in range(9)]
    flops = [ascent_flops(keras.Model(image, model.get_layer(f"c{k}").output)) for k in range(9)]
    for k, (seconds, _) in enumerate(estimates):
        rates = Probe(0.5 * flops[k] / flops[4], 2.0 * (k + 2) / 6)  # compiles: by the layers on the path
        assert seconds == pytest.approx(rates.seconds(plans[k], config))
    assert estimates[8][0] > estimates[4][0] > estimates[0][0]
    assert estimate_zoo_seconds(model, [], config) == []


def _cut_after_first_chunk(model, out):
    def stop(done, total):
        if done > 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_layer(model, "c2", "all", CONFIG, out, chunk_maps=2, on_progress=stop)
    [chunk] = list((out / "parts").iterdir())
    return chunk


@pytest.mark.slow
def test_resume_recomputes_a_damaged_chunk_with_a_note(tiny_model, tmp_path):
    whole = run_layer(tiny_model, "c2", "all", CONFIG, tmp_path / "whole", chunk_maps=2)
    chunk = _cut_after_first_chunk(tiny_model, tmp_path / "cut")
    arrays = chunk / "arrays.npz"
    arrays.write_bytes(arrays.read_bytes()[: arrays.stat().st_size // 2])
    notes, seen = [], []
    resumed = run_layer(tiny_model, "c2", "all", CONFIG, tmp_path / "cut", chunk_maps=2, resume=True,
                        on_note=notes.append, on_progress=lambda done, total: seen.append(done))
    assert len(notes) == 1 and "damaged chunk" in notes[0] and str(arrays) in notes[0]
    assert seen[0] == 0  # nothing kept: the damaged chunk is computed again
    _same(resumed, whole)


@pytest.mark.slow
def test_resume_never_takes_a_result_of_other_settings_as_its_own(tiny_model, tmp_path):
    """Two runs wrote one folder: run.json of one, result.json of the other. --resume recomputes."""
    import shutil

    from oipscope.search.results import ARRAYS_NPZ, RESULT_JSON

    other = OipConfig(steps=7, n_candidates=2, restarts=0, scales=(3, 6, 12), rescue_steps=0)
    run_layer(tiny_model, "c2", "0-1", other, tmp_path / "other", chunk_maps=2)
    out = tmp_path / "out"
    run_layer(tiny_model, "c2", "0-1", CONFIG, out, chunk_maps=2)
    for name in (RESULT_JSON, ARRAYS_NPZ):
        shutil.copy(tmp_path / "other" / name, out / name)
    notes = []
    resumed = run_layer(tiny_model, "c2", "0-1", CONFIG, out, chunk_maps=2, resume=True, on_note=notes.append)
    assert resumed.config.steps == 20 and OipResult.load(out).config.steps == 20
    assert len(notes) == 1 and "other settings" in notes[0]


@pytest.mark.slow
def test_resume_recomputes_a_chunk_of_other_settings(tiny_model, tmp_path):
    import dataclasses

    chunk = _cut_after_first_chunk(tiny_model, tmp_path / "cut")
    part = OipResult.load(chunk)
    dataclasses.replace(part, config=dataclasses.replace(part.config, steps=9)).save(chunk)
    notes = []
    resumed = run_layer(tiny_model, "c2", "all", CONFIG, tmp_path / "cut", chunk_maps=2, resume=True,
                        on_note=notes.append)
    assert len(notes) == 1 and "other settings" in notes[0]
    assert resumed.config.steps == 20 and len(resumed.maps) == 6


@pytest.mark.slow
def test_a_run_saved_before_the_method_field_is_still_resumed(tiny_model, tmp_path):
    import json

    first = run_layer(tiny_model, "c2", "0-1", CONFIG, tmp_path)
    run_json = tmp_path / "run.json"
    key = json.loads(run_json.read_text())
    del key["config"]["method"]  # as an older release wrote it
    run_json.write_text(json.dumps(key))
    saved = (tmp_path / "result.json").stat().st_mtime_ns
    notes = []
    again = run_layer(tiny_model, "c2", "0-1", CONFIG, tmp_path, resume=True, on_note=notes.append)
    assert notes == [] and (tmp_path / "result.json").stat().st_mtime_ns == saved  # taken as finished
    assert again.maps[0].image.tobytes() == first.maps[0].image.tobytes()
