"""The public API: each module's __all__ resolves and is documented, README examples use it, the two-line
notebook use works, every command is documented."""

import importlib
import inspect
import pkgutil
import re
import types
from pathlib import Path

import numpy as np
import pytest

import oipscope
from oipscope.cli.commands import app

README = Path(__file__).resolve().parents[1] / "README.md"
# Importing __main__ would run the command line.
SUBMODULES = sorted(m.name.removeprefix("oipscope.") for m in pkgutil.walk_packages(oipscope.__path__, "oipscope.")
                    if not m.name.endswith("__main__"))


def _api_problems(module: types.ModuleType) -> list[str]:
    """What is wrong with ``module.__all__``: duplicates, names that do not resolve,
    public functions and classes without a docstring of their own."""
    if not hasattr(module, "__all__"):
        return [f"{module.__name__} has no __all__"]
    names = list(module.__all__)
    problems = [f"{name!r} is listed twice" for name in sorted({n for n in names if names.count(n) > 1})]
    for name in names:
        try:
            obj = getattr(module, name)
        except AttributeError:
            problems.append(f"{name!r} is in __all__ but not defined")
            continue
        if inspect.isclass(obj) or inspect.isfunction(obj):
            # a class's own docstring: not inherited, not the one @dataclass writes
            doc = vars(obj).get("__doc__") if inspect.isclass(obj) else obj.__doc__
            if not (doc or "").strip() or doc.startswith(f"{obj.__name__}("):
                problems.append(f"{name!r} has no docstring")
    return problems


def test_top_level_all_resolves():
    assert _api_problems(oipscope) == []
    assert "__version__" in oipscope.__all__
    # a name made lazy but left out of __all__ is public in practice and undocumented
    assert set(oipscope._LAZY) <= set(oipscope.__all__)
    for name, module in oipscope._LAZY.items():
        assert name in importlib.import_module(f"oipscope.{module}").__all__, (name, module)


@pytest.mark.parametrize("module", SUBMODULES)
def test_submodule_all_resolves(module):
    assert _api_problems(importlib.import_module(f"oipscope.{module}")) == []


def test_api_check_catches_mistakes():
    fake = types.ModuleType("fake")

    def documented():
        """Has a docstring."""

    def bare():
        pass

    fake.documented, fake.bare = documented, bare
    fake.__all__ = ["documented", "documented", "missing", "bare"]
    assert _api_problems(fake) == [
        "'documented' is listed twice", "'missing' is in __all__ but not defined", "'bare' has no docstring"]


def test_readme_python_examples_use_the_public_api():
    text = README.read_text()
    code = "\n".join(re.findall(r"```python\n(.*?)```", text, flags=re.S))
    imported = re.findall(r"^from oipscope import (.+)$", code, flags=re.M)
    assert {n.strip() for line in imported for n in line.split(",")} <= set(oipscope.__all__), imported
    for module, line in re.findall(r"^from oipscope\.([\w.]+) import (.+)$", code, flags=re.M):
        for name in (n.strip() for n in line.split(",")):
            assert name in importlib.import_module(f"oipscope.{module}").__all__, (module, name)
    # `oipscope.x` in the examples and in the prose: a public name, or a module and one of its public names
    refs = set(re.findall(r"\boipscope\.([\w.]+)", code)) | set(re.findall(r"`oipscope\.([\w.]+)", text))
    assert "find_oips" in refs, "README.md's examples no longer found"
    for ref in sorted(refs):
        parts = ref.rstrip(".").split(".")
        # the longest module path the reference starts with, then one of that module's public names
        depth = max((n for n in range(1, len(parts) + 1) if ".".join(parts[:n]) in SUBMODULES), default=0)
        if depth:
            module = importlib.import_module("oipscope." + ".".join(parts[:depth]))
            assert depth == len(parts) or parts[depth] in module.__all__, ref
        else:
            assert parts[0] in {*oipscope.__all__, "__all__"}, ref


@pytest.mark.slow
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


def test_old_module_paths_warn_and_alias_the_moved_module():
    import subprocess
    import sys

    # a fresh interpreter: the alias is made on first import of the old path
    code = ("import warnings, importlib; warnings.simplefilter('error');\n"
            "import oipscope.ascent.pixels as new\n"
            "try:\n    importlib.import_module('oipscope.engine')\nexcept DeprecationWarning as w:\n"
            "    print('warned:', w)\n"
            "warnings.simplefilter('ignore'); old = importlib.import_module('oipscope.engine')\n"
            "old.MARK = 1; print(old is new, getattr(new, 'MARK', None))\n"
            "from oipscope.report import write_gallery; from oipscope.gallery.site import write_gallery as w2\n"
            "print(write_gallery is w2)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "warned: oipscope.engine moved to oipscope.ascent.pixels" in out
    assert "True 1" in out and out.strip().endswith("True")


def test_every_old_module_path_still_imports():
    from oipscope._compat import MOVED

    for old, new in MOVED.items():
        assert importlib.import_module(f"oipscope.{old}") is importlib.import_module(f"oipscope.{new}"), old
