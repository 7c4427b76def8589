"""The public API: every name in __all__ resolves, the two-line notebook use works, CLI is documented."""

import re
from pathlib import Path

import numpy as np

import oipscope
from oipscope.cli import app

README = Path(__file__).resolve().parents[1] / "README.md"


def test_every_public_name_resolves():
    for name in oipscope.__all__:
        assert getattr(oipscope, name) is not None, name
    assert set(oipscope.__all__) <= set(dir(oipscope))


def test_two_line_notebook_use(tiny_model):
    config = oipscope.OipConfig(steps=20, n_candidates=2, restarts=0, scales=(3, 6, 12))
    result = oipscope.find_oips(tiny_model, "c2", maps="0-2", config=config)
    assert [oip.map_index for oip in result.maps] == [0, 1, 2]
    assert all(np.isfinite(oip.image).all() for oip in result.maps)


def test_every_command_is_in_the_readme():
    text = README.read_text()
    for command in app.registered_commands:
        name = command.name or command.callback.__name__
        assert re.search(rf"`oipscope {name}\b", text), f"command {name!r} is not documented in README.md"
