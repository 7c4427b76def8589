"""examples/tour.ipynb: saved with outputs, in step with its builder, and it runs top to bottom."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import nbformat
import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
sys.path.insert(0, str(EXAMPLES))

import make_tour  # noqa: E402 - examples/ is not a package


def _code_cells(notebook):
    return [cell for cell in notebook.cells if cell.cell_type == "code"]


def _has_image(cell) -> bool:
    return any("image/png" in output.get("data", {}) for output in cell.outputs)


@pytest.fixture(scope="module")
def saved():
    return nbformat.read(EXAMPLES / "tour.ipynb", as_version=4)


def test_saved_notebook_matches_its_builder(saved):
    """Edit the cells in make_tour.py and re-run it; the notebook is never edited by hand."""
    assert [(c.cell_type, c.source) for c in saved.cells] == [
        (c.cell_type, c.source) for c in make_tour.build().cells
    ]


def test_saved_notebook_reads_well_without_running(saved):
    code = _code_cells(saved)
    assert all(cell.execution_count for cell in code), "saved without running every cell"
    assert sum(_has_image(cell) for cell in code) >= 6, "figures are missing from the saved outputs"
    for cell in code:
        for output in cell.outputs:
            assert output.output_type != "error", cell.source
            if output.output_type == "stream":
                assert not output.text.startswith(make_tour.TF_STARTUP_NOISE), output.text


@pytest.mark.slow
def test_tour_runs_top_to_bottom(saved, mnist_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("OIPSCOPE_DATA_DIR", str(mnist_dir))
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")
    notebook = make_tour.build()
    make_tour.execute(notebook, tmp_path, timeout=300)  # CellExecutionError names a failing cell
    ran, kept = _code_cells(notebook), _code_cells(saved)
    assert [_has_image(c) for c in ran] == [_has_image(c) for c in kept], "a figure is no longer drawn"
    index = tmp_path / "tour-gallery" / "index.html"
    assert index.is_file() and "Conv2D_3" in index.read_text()
    assert len(list((tmp_path / "tour-gallery" / "layers").rglob("map_*.html"))) == 16
    shutil.rmtree(tmp_path / "tour-gallery")
