"""Take the README's screenshots of a gallery with headless Chromium (maintainers' tool).

    oipscope zoo --out oipscope-zoo
    python docs/make_screenshots.py oipscope-zoo      # writes docs/gallery*.png

Needs the ``playwright`` package (test extra) and Chromium (``apt-get install chromium``).
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from playwright.sync_api import sync_playwright

DOCS = Path(__file__).resolve().parent
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("gallery", type=Path, help="a folder written by `oipscope zoo`")
    parser.add_argument("--layer", default="Conv2D_3", help="the layer page to show")
    parser.add_argument("--chromium", default=shutil.which("chromium") or "chromium")
    options = parser.parse_args()

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=options.chromium, args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto((options.gallery.resolve() / "index.html").as_uri())
        page.screenshot(path=str(DOCS / "gallery.png"))
        page.click(f"a.layer-tile:has-text('{options.layer}')")
        page.select_option("#sort", "ratio")
        page.wait_for_function("() => Array.from(document.images).slice(0, 40).every(img => img.complete)")
        page.screenshot(path=str(DOCS / "gallery-layer.png"))
        page.click("#tiles a.tile >> nth=0")
        page.wait_for_load_state("load")
        page.screenshot(path=str(DOCS / "gallery-map.png"))
        browser.close()
    print(f"wrote {DOCS / 'gallery.png'}, gallery-layer.png, gallery-map.png")


if __name__ == "__main__":
    main()
