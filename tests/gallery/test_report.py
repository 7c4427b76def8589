"""The static HTML gallery: pages, tiles, self-containment, escaping, safe file names, rebuild."""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import pytest
from conftest import build_tiny_model

from oipscope.gallery import site as report
from oipscope.errors import ConfigError
from oipscope.gallery.writer import Writer

# Keras refuses "/" in layer names, so the hostile names get in through the
# results (as a hand-edited or foreign result file could).
KERAS_HOSTILE = "<script>alert(1)<\\script> & \"x\""
SCRIPT = "<script>alert(1)</script>"
TRAVERSAL = "../../evil"


def _hostile_model():
    return build_tiny_model("tiny<b>model<\\b>", output_activation="softmax")


@pytest.fixture(scope="module")
def tiny():
    """Assessed OIP results and dataset examples of both conv layers of a tiny model."""
    from oipscope.ascent.pixels import OipConfig
    from oipscope.analysis.examples import dataset_examples
    from oipscope.analysis.assessment import assess_oips
    from oipscope.model.loading import describe
    from oipscope.search.pipeline import find_oips

    model = _hostile_model()
    config = OipConfig(steps=20, n_candidates=4, restarts=0, seed=1)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (30, 12, 12), dtype=np.uint8)
    labels = rng.integers(0, 3, 30)
    layers = []
    for name in ("c1", "c2"):
        examples = dataset_examples(model, name, images, labels, k=3)
        layers.append((assess_oips(find_oips(model, name, config=config), model, examples), examples))
    return {"model_name": model.name, "infos": describe(model), "layers": layers, "images": images,
            "labels": labels, "class_names": ["zero", "one", "two"]}


def _write(tiny, out: Path, layers=None, infos=None) -> Path:
    return report.write_gallery(out, (tiny["model_name"], infos or tiny["infos"]), layers or tiny["layers"],
                                images=tiny["images"], labels=tiny["labels"], class_names=tiny["class_names"])


def _pages(out: Path) -> dict[str, str]:
    return {str(p.relative_to(out)): p.read_text() for p in sorted(out.rglob("*.html"))}


def _references(page: Path) -> list[str]:
    return re.findall(r'(?:src|href)="([^"]+)"', page.read_text())


def _renamed(tiny, names: list[str]):
    """The tiny layers and layer infos with the layer names replaced."""
    layers, infos = [], list(tiny["infos"])
    for (result, examples), name in zip(tiny["layers"], names):
        layers.append((dataclasses.replace(result, layer_name=name), dataclasses.replace(examples, layer_name=name)))
        infos = [dataclasses.replace(i, name=name) if i.name == result.layer_name else i for i in infos]
    return layers, infos


@pytest.mark.slow
def test_gallery_pages_tiles_and_references(tiny, tmp_path):
    out = tmp_path / "gallery"
    index = _write(tiny, out)
    assert index == out.resolve() / "index.html" and index.is_file()
    html = index.read_text()
    for result, _ in tiny["layers"]:
        slug = report.safe_filename(result.layer_name)
        layer_page = out / "layers" / f"{slug}.html"
        assert layer_page.is_file()
        assert f'href="layers/{slug}.html"' in html
        assert layer_page.read_text().count('<a class="tile ') == len(result.maps)
        for k in range(len(result.maps)):
            assert (out / "layers" / slug / f"map_{k:04d}.html").is_file()
            assert (out / "layers" / slug / f"card_{k:04d}.png").is_file()
        assert 'data-ratio="' in layer_page.read_text() and 'id="sort"' in layer_page.read_text()
    pages = list(out.rglob("*.html"))
    assert len(pages) == 1 + sum(1 + len(r.maps) for r, _ in tiny["layers"])
    for page in pages:
        text = page.read_text()
        assert "http://" not in text and "https://" not in text, page  # self-contained
        for ref in _references(page):
            assert not re.match(r"^[a-z]+:", ref), (page, ref)
            assert (page.parent / ref).resolve().is_file(), (page, ref)
    assert not list(out.rglob("*.tmp")) and not list(out.rglob(".*"))  # atomic writes left nothing behind


@pytest.mark.slow
def test_hostile_layer_names_are_escaped_and_contained(tiny, tmp_path):
    layers, infos = _renamed(tiny, [SCRIPT, TRAVERSAL])
    out = tmp_path / "a" / "b" / "gallery"
    _write(tiny, out, layers, infos)
    files = {p for p in tmp_path.rglob("*") if p.is_file()}
    assert all(out in p.parents for p in files)  # nothing written next to or above out_dir
    assert not (tmp_path / "evil").exists() and not (tmp_path / "a" / "evil").exists()
    assert all(re.fullmatch(r"[a-z0-9_.-]+", p.name) for p in files if "data" not in p.relative_to(out).parts)
    pages = _pages(out)
    everything = "\n".join(pages.values())
    assert "<script>alert" not in everything
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in pages["index.html"]
    assert "../../evil" in pages["index.html"]  # shown as text ...
    assert 'href="../../evil' not in everything and 'src="../../evil' not in everything  # ... never as a path
    assert "tiny&lt;b&gt;model&lt;\\b&gt;" in pages["index.html"]
    layer_page = pages[f"layers/{report.safe_filename(SCRIPT)}.html"]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in layer_page


@pytest.mark.slow
def test_other_hostile_names_are_escaped(tiny, tmp_path):
    backslashes = "..\\..\\c2"
    layers, infos = _renamed(tiny, [KERAS_HOSTILE, backslashes])
    out = tmp_path / "g"
    _write(tiny, out, layers, infos)
    pages = {p.name for p in (out / "layers").glob("*.html")}
    assert pages == {f"{report.safe_filename(KERAS_HOSTILE)}.html", f"{report.safe_filename(backslashes)}.html"}
    everything = "\n".join(_pages(out).values())
    assert "<script>alert" not in everything
    assert "&lt;script&gt;alert(1)&lt;\\script&gt; &amp; &#34;x&#34;" in everything


def test_safe_filename():
    # Exact names: gallery pages and links from earlier builds must keep working.
    known = {
        "Conv2D_1": "conv2d-1-a986fd24", "conv2d_1": "conv2d-1-6f58d5ea", "../../x": "x-9cdf6a50",
        "<script>": "script-5b63e5b2", "": "layer-e3b0c442", "..": "layer-5ec1f7e7", "a/b": "a-b-c14cddc0",
        "a\\b": "a-b-c62016d0", "CON": "con-a3dbc4b6", "block1_conv1": "block1-conv1-18c694d4",
    }
    assert {name: report.safe_filename(name) for name in known} == known
    # Names differing only in case, in removed characters or beyond the length limit stay distinct.
    names = [*known, "conv2d-1", "conv2d 1", "conv2d__1", "CONV2D_1", "ü" * 100, "é", "x" * 45 + "a", "x" * 45 + "b"]
    slugs = [report.safe_filename(n) for n in names]
    assert len(set(slugs)) == len(names), slugs
    # Only lower-case letters, digits and single inner dashes; never a path, a dot or a hidden file.
    assert all(re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*-[0-9a-f]{8}", s) for s in slugs), slugs
    assert all(len(s) <= 40 + 9 for s in slugs)
    assert report.safe_filename("x" * 45 + "a")[:-9] == "x" * 40
    assert len(report.safe_filename("a" * 50, max_length=10)) == 10 + 9


def test_writer_stays_inside_the_gallery_through_links(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    writer = Writer(tmp_path / "g")
    writer.root.mkdir()
    (writer.root / "linked").symlink_to(outside, target_is_directory=True)
    assert writer.path("layers", "x", "card.png") == writer.root / "layers" / "x" / "card.png"
    writer.write("layers/x/card.png", b"png")
    assert (writer.root / "layers" / "x" / "card.png").read_bytes() == b"png"
    for rel in ("linked/card.png", "layers/../linked/card.png", "layers/../../g2/card.png", ".."):
        with pytest.raises(ConfigError, match="outside the gallery"):
            writer.write(rel, b"png")
    assert not list(outside.iterdir()) and not (tmp_path / "g2").exists()


@pytest.mark.slow
def test_rebuild_reproduces_the_pages(tiny, tmp_path):
    layers, infos = _renamed(tiny, [SCRIPT, "Conv 2"])
    out = tmp_path / "gallery"
    _write(tiny, out, layers, infos)
    before = _pages(out)
    again = report.rebuild_gallery(out, tmp_path / "copy")
    assert again == (tmp_path / "copy").resolve() / "index.html"
    assert _pages(tmp_path / "copy") == before
    card = next((out / "layers").rglob("card_0000.png")).relative_to(out)
    assert (tmp_path / "copy" / card).read_bytes() == (out / card).read_bytes()
    report.rebuild_gallery(out / "data")  # in place, from the data folder
    assert _pages(out) == before


def test_gallery_without_examples_or_cards(tiny, tmp_path):
    result = tiny["layers"][1][0]
    index = report.write_gallery(tmp_path / "g", tiny["infos"], [result], cards=False)
    slug = report.safe_filename(result.layer_name)
    assert not list((tmp_path / "g").rglob("card_*.png"))
    for page in (tmp_path / "g").rglob("*.html"):
        for ref in _references(page):
            assert (page.parent / ref).resolve().is_file(), (page, ref)
    assert tiny["model_name"].replace("<", "&lt;").replace(">", "&gt;") in index.read_text()
    assert (tmp_path / "g" / "layers" / f"{slug}.html").is_file()


def test_rebuild_needs_gallery_data(tmp_path):
    with pytest.raises(ConfigError, match="gallery.json"):
        report.rebuild_gallery(tmp_path)


@pytest.mark.slow
def test_rebuild_in_place_leaves_saved_data_untouched(tiny, tmp_path):
    out = tmp_path / "gallery"
    _write(tiny, out)
    data_files = sorted(p for p in (out / "data").rglob("*")  # the computed results, not the page caches
                        if p.is_file() and p.name not in ("gallery.json", "example_images.npz"))
    assert any(p.name == "examples.npz" for p in data_files)
    stamps = {p: p.stat().st_mtime_ns for p in data_files}
    report.rebuild_gallery(out)
    assert {p: p.stat().st_mtime_ns for p in data_files} == stamps


def test_map_pages_show_and_layer_pages_sort_by_the_quality_numbers(tiny, tmp_path):
    out = tmp_path / "gallery"
    _write(tiny, out, layers=[tiny["layers"][1]])
    result = tiny["layers"][1][0]
    layer_page = next((out / "layers").glob("*.html")).read_text()
    assert '<option value="jitter">' in layer_page and '<option value="hf">' in layer_page
    shown = re.findall(r'data-jitter="([^"]*)" data-hf="([^"]*)"', layer_page)
    assert len(shown) == len(result.maps)
    for (jitter, hf), oip in zip(shown, result.maps):
        assert float(hf) == pytest.approx(oip.hf_share, abs=1e-6)
        assert jitter == "" if not np.isfinite(oip.jitter_robustness) else float(jitter) == pytest.approx(
            oip.jitter_robustness, abs=1e-6)
    first = sorted((out / "layers").glob("*/map_0000.html"))[0].read_text()
    assert f'high-frequency share</th><td class="num">{result.maps[0].hf_share:.2f}' in first


def test_map_pages_show_the_whole_images_with_the_cards_crops_outlined(tiny, tmp_path, monkeypatch):
    from oipscope.figures import crops
    from oipscope.model.receptive_field import ReceptiveField

    result, examples = tiny["layers"][1]
    assert examples.receptive_field is not None  # recorded by dataset_examples: c2 sees 5x5 pixels
    plain = tmp_path / "plain"
    _write(tiny, plain, layers=[tiny["layers"][1]])
    assert not list(plain.rglob("whole_*.png"))  # a field over most of a 12 px image: whole images, as before
    assert "Top images, whole" not in sorted((plain / "layers").glob("*/map_0000.html"))[0].read_text()

    monkeypatch.setattr(crops, "MIN_CROP", 2)  # crops of a 3 px field on the 12 px images
    field = ReceptiveField((3, 3), (1, 1), (-1, -1), (12, 12))
    out = tmp_path / "cropped"
    _write(tiny, out, layers=[(result, dataclasses.replace(examples, receptive_field=field))])
    page = sorted((out / "layers").glob("*/map_0000.html"))[0]
    assert "Top images, whole" in page.read_text() and "whole_0000.png" in _references(page)
    assert (page.parent / "whole_0000.png").is_file()


# --- the page of class OIPs ---------------------------------------------------------------


@pytest.fixture(scope="module")
def class_oips(tmp_path_factory):
    """The class OIPs of the tiny softmax model's output layer, classified by the model."""
    from oipscope.config import OipConfig
    from oipscope.runs.jobs import run_classes

    config = OipConfig(steps=20, n_candidates=4, restarts=0, seed=1)
    return run_classes(_hostile_model(), config, tmp_path_factory.mktemp("classes")).result


def test_class_layer_is_a_classifiers_2d_output():
    import keras

    from oipscope.runs.jobs import class_layer

    model = build_tiny_model(output_activation="softmax")
    assert class_layer(model) == "out"
    assert class_layer(model, max_classes=2) is None and class_layer(model, max_classes=None) == "out"
    convs = keras.Sequential([keras.Input((12, 12, 1)), keras.layers.Conv2D(3, 3, name="c1"),
                              keras.layers.Conv2D(4, 3, name="c2")])
    assert class_layer(convs) is None


def test_class_page_one_tile_per_class_linked_from_the_index(tiny, class_oips, tmp_path):
    assert class_oips.is_class_search and [m.map_index for m in class_oips.maps] == [0, 1, 2]
    out = tmp_path / "g"
    names = ["zero", SCRIPT, "two"]
    index = report.write_gallery(out, (tiny["model_name"], tiny["infos"]), [tiny["layers"][1]], cards=False,
                                 class_names=names, classes=class_oips)
    html = index.read_text()
    assert 'href="classes.html"' in html and 'src="thumbs/classes.png"' in html
    page = (out / "classes.html").read_text()
    assert page.count('<div class="tile class-tile ') == 3
    own = class_oips.summary()["own_class"]
    assert f"the model sees {own} of 3 class OIPs as their own class" in page
    assert f"the model sees {own} of 3 class OIPs as their own class" in html
    for c, oip in enumerate(class_oips.maps):
        p = float(oip.evoked_probabilities[c])
        shown = names[c].replace("<", "&lt;").replace(">", "&gt;")
        assert f"<b>{shown}</b> · p {p:.2f}" in page
    assert "<script>alert" not in page  # class names are escaped
    for ref in _references(out / "classes.html") + _references(index):
        assert (out / ref).resolve().is_file(), ref
    # the model table links the output layer to the class page
    assert re.search(r"<td>out</td>.*?<a href=\"classes.html\">view</a>", html, flags=re.S)
    # the class OIPs are saved with the gallery, and a rebuild gives the same class page and index
    report.rebuild_gallery(out, tmp_path / "copy")
    for name in ("classes.html", "index.html"):
        assert (tmp_path / "copy" / name).read_text() == (out / name).read_text()
    assert (tmp_path / "copy" / "thumbs" / "classes.png").read_bytes() == (out / "thumbs" / "classes.png").read_bytes()


def test_class_page_names_classes_by_index_without_names(tiny, class_oips, tmp_path):
    out = tmp_path / "g"
    report.write_gallery(out, tiny["infos"], [tiny["layers"][1][0]], cards=False, classes=class_oips)
    page = (out / "classes.html").read_text()
    assert [f"<b>{c}</b>" in page for c in range(3)] == [True] * 3


def test_no_class_page_without_class_oips(tiny, tmp_path):
    index = report.write_gallery(tmp_path / "g", tiny["infos"], [tiny["layers"][1][0]], cards=False)
    assert not (tmp_path / "g" / "classes.html").exists() and "classes.html" not in index.read_text()


def _files(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


@pytest.mark.slow
def test_a_gallery_drawn_in_a_worker_process_is_the_same_files(tiny, tmp_path):
    from oipscope.gallery.worker import BackgroundGallery
    from oipscope.data.imagesets import array_images

    image_set = array_images(tiny["images"][..., None], (12, 12, 1), labels=tiny["labels"])
    summary = (tiny["model_name"], tiny["infos"])
    report.write_gallery(tmp_path / "at_once", summary, tiny["layers"], images=image_set)
    gallery = report.Gallery(tmp_path / "by_layer", summary, images=image_set)
    background = BackgroundGallery(tmp_path / "worker", summary, images=image_set)
    for layer in tiny["layers"]:
        gallery.add(layer)
        background.add(layer)  # returns at once: the worker process draws it
    gallery.finish()
    assert background.finish() == tmp_path / "worker" / "index.html"
    at_once = _files(tmp_path / "at_once")
    assert len(at_once) > 20 and at_once == _files(tmp_path / "by_layer") == _files(tmp_path / "worker")


@pytest.mark.slow
def test_without_worker_processes_the_gallery_is_drawn_in_this_one(tiny, tmp_path, monkeypatch):
    from oipscope.gallery import worker as gallery_process
    from oipscope.data.imagesets import array_images

    def no_processes(*args, **kwargs):
        raise OSError("no semaphores here")

    monkeypatch.setattr(gallery_process, "ProcessPoolExecutor", no_processes)
    image_set = array_images(tiny["images"][..., None], (12, 12, 1), labels=tiny["labels"])
    summary = (tiny["model_name"], tiny["infos"])
    report.write_gallery(tmp_path / "at_once", summary, tiny["layers"], images=image_set)
    background = gallery_process.BackgroundGallery(tmp_path / "here", summary, images=image_set)
    for layer in tiny["layers"]:
        background.add(layer)
    background.finish()
    assert _files(tmp_path / "at_once") == _files(tmp_path / "here")


@pytest.mark.slow
def test_an_error_in_the_worker_process_surfaces_at_finish_and_close_stops_it(tiny, tmp_path):
    from oipscope.gallery.worker import BackgroundGallery

    result, examples = tiny["layers"][0]
    background = BackgroundGallery(tmp_path / "g", (tiny["model_name"], tiny["infos"]), images=tiny["images"])
    background.add((dataclasses.replace(result, maps=()), examples))
    with pytest.raises(ConfigError, match="holds no OIPs"):
        background.finish()
    assert not (tmp_path / "g" / "index.html").exists()
    closed = BackgroundGallery(tmp_path / "h", (tiny["model_name"], tiny["infos"]))
    closed.add(tiny["layers"][0])
    workers = list(closed._pool._processes.values())
    closed.close(now=True)  # after Ctrl-C: the worker is stopped at once
    assert workers and not any(worker.is_alive() for worker in workers)
    with pytest.raises(RuntimeError, match="closed"):
        closed.add(tiny["layers"][0])
