"""The gallery as a person sees it: headless Chromium opens the pages from file://.

Needs the ``playwright`` Python package (test extra; no browser download) and a
Chromium on the machine (Debian: ``apt-get install chromium``; ``.ci/run`` installs
it). Without Chromium the tests skip, unless ``OIPSCOPE_REQUIRE_BROWSER=1`` (set by
``.ci/run``) turns the skip into a failure. Screenshots go to the test's temporary
folder, or to ``$OIPSCOPE_SCREENSHOTS`` when set.
"""

from __future__ import annotations

import io
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run"]
N_MAPS = {"c1": 4, "c2": 6}

IMAGES_LOADED = """() => Array.from(document.images).map(img => ({
    src: img.getAttribute("src"), complete: img.complete, width: img.naturalWidth, height: img.naturalHeight}))"""


def _chromium() -> str:
    for candidate in (os.environ.get("OIPSCOPE_CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if candidate and shutil.which(candidate):
            return shutil.which(candidate)
    message = "no Chromium found (apt-get install chromium, or set OIPSCOPE_CHROMIUM to its path)"
    if os.environ.get("OIPSCOPE_REQUIRE_BROWSER") == "1":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="module")
def browser():
    executable = _chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=LAUNCH_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def gallery(mnist_dir, tmp_path_factory) -> Path:
    """A gallery of a tiny 28x28 CNN: both conv layers, MNIST examples from 2000 images."""
    import keras

    from oipscope.data.datasets import load_dataset
    from oipscope.ascent.pixels import OipConfig
    from oipscope.analysis.examples import dataset_examples
    from oipscope.analysis.assessment import assess_oips
    from oipscope.model.loading import describe
    from oipscope.gallery.site import write_gallery
    from oipscope.search.pipeline import find_oips

    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((28, 28, 1)),
        keras.layers.Conv2D(N_MAPS["c1"], 5, strides=2, activation="relu", name="c1"),
        keras.layers.Conv2D(N_MAPS["c2"], 3, activation="relu", name="c2"),
        keras.layers.Flatten(),
        keras.layers.Dense(10, activation="softmax", name="out"),
    ], name="browser_tiny")
    data = load_dataset("mnist", mnist_dir)
    images, labels = data.train.images[:2000], data.train.labels[:2000]
    layers = []
    for name in N_MAPS:
        examples = dataset_examples(model, name, images, labels, k=6)
        result = find_oips(model, name, config=OipConfig(steps=40, restarts=0, seed=2))
        layers.append((assess_oips(result, model, examples), examples))
    out = tmp_path_factory.mktemp("browser") / "gallery"
    write_gallery(out, (model.name, describe(model)), layers, images=images, labels=labels,
                  class_names=data.class_names)
    return out


@pytest.fixture()
def page(browser):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    failed = []
    page.on("requestfailed", lambda request: failed.append(request.url))
    page.on("pageerror", lambda error: failed.append(f"script error: {error}"))
    yield page, failed
    page.close()


def _screenshot(page, name: str, tmp_path: Path) -> Path:
    folder = Path(os.environ.get("OIPSCOPE_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    page.screenshot(path=str(path), full_page=True)
    return path


def _assert_not_blank(png: Path) -> None:
    from PIL import Image

    with Image.open(io.BytesIO(png.read_bytes())) as image:
        gray = np.asarray(image.convert("L"), dtype=np.float32)
    assert gray.shape[0] > 200 and gray.shape[1] > 200
    assert gray.std() > 20, f"{png} looks blank (grey level std {gray.std():.1f})"
    assert (gray < 128).mean() > 0.01, f"{png} has almost no dark pixels: no text or pictures"


def _assert_images_loaded(page) -> int:
    """Scroll every image into view (tiles load lazily), wait for them, check their natural size."""
    for image in page.locator("img").all():
        image.scroll_into_view_if_needed()
    page.wait_for_function("() => Array.from(document.images).every(img => img.complete)", timeout=15000)
    page.evaluate("() => window.scrollTo(0, 0)")
    images = page.evaluate(IMAGES_LOADED)
    assert images, "the page shows no images"
    broken = [img["src"] for img in images if not (img["complete"] and img["width"] > 0 and img["height"] > 0)]
    assert not broken, f"images that did not load: {broken}"
    return len(images)


def test_index_page(gallery, page, tmp_path):
    page, failed = page
    page.goto((gallery / "index.html").as_uri())
    page.wait_for_load_state("load")
    assert page.locator("a.layer-tile").count() == len(N_MAPS)
    assert page.locator("a.layer-tile h3").all_inner_texts() == list(N_MAPS)
    assert _assert_images_loaded(page) == len(N_MAPS) + 1  # a mosaic per layer and the pattern-accuracy curve
    assert page.locator('img[src="thumbs/pattern_accuracy.png"]').count() == 1
    assert "browser_tiny" in page.title() + page.inner_text("body")
    assert not failed, failed
    _assert_not_blank(_screenshot(page, "index.png", tmp_path))


def test_layer_page_tiles_and_sorting(gallery, page, tmp_path):
    page, failed = page
    page.goto((gallery / "index.html").as_uri())
    page.click("a.layer-tile:has-text('c2')")  # follow the link as a reader would
    page.wait_for_load_state("load")
    assert page.url.endswith(".html") and "/layers/" in page.url
    tiles = page.locator("#tiles a.tile")
    assert tiles.count() == N_MAPS["c2"]
    assert _assert_images_loaded(page) == N_MAPS["c2"] + 2  # the tiles, the class profiles and the activation curves
    _assert_not_blank(_screenshot(page, "layer.png", tmp_path))

    page.select_option("#sort", "activation")
    activations = [float(v) for v in tiles.evaluate_all("ts => ts.map(t => t.dataset.activation)")]
    assert activations == sorted(activations, reverse=True)
    page.select_option("#sort", "order")
    assert [int(v) for v in tiles.evaluate_all("ts => ts.map(t => t.dataset.map)")] == list(range(N_MAPS["c2"]))
    assert not failed, failed


def test_map_page_card(gallery, page, tmp_path):
    page, failed = page
    page.goto((gallery / "index.html").as_uri())
    page.click("a.layer-tile:has-text('c1')")
    page.click("#tiles a.tile >> nth=1")
    page.wait_for_load_state("load")
    assert page.url.endswith("map_0001.html")
    card = page.locator("img.card")
    assert card.count() == 1
    assert card.evaluate("img => img.naturalWidth") > 300
    assert "superstimulus ratio" in page.inner_text("body")
    page.click("text=next")
    assert page.url.endswith("map_0002.html")
    assert not failed, failed
    _assert_not_blank(_screenshot(page, "map.png", tmp_path))
