"""The old flat module paths (``oipscope.ascent.pixels``, ``oipscope.gallery.site``, ...) as deprecated aliases.

oipscope's modules moved into subpackages. For one release, ``import oipscope.ascent.pixels`` still
works: it warns with a :class:`DeprecationWarning` and gives the module object that now lives at
``oipscope.ascent.pixels``, so attributes set on it (monkeypatching) reach the real module.
Old paths that are now packages (``oipscope.search.pipeline``, ``oipscope.data.datasets``, ``oipscope.runs.jobs``,
``oipscope.cli.commands``) re-export what the old modules offered.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import warnings

__all__ = ["MOVED", "install_aliases"]

MOVED = {
    "objective": "ascent.objective", "parametrization": "ascent.parametrization", "transforms": "ascent.transforms",
    "warmup": "ascent.warmup", "engine": "ascent.pixels", "render": "ascent.parameters", "own_map": "ascent.own_map",
    "pooling": "ascent.pooling", "architecture": "ascent.traces",
    "initial": "search.starts", "results": "search.results", "status": "search.status", "quality": "search.quality",
    "models": "model.loading", "subject": "model.subject", "encoding": "model.encoding", "layers": "model.layers",
    "cnn": "model.cnn", "imagesets": "data.imagesets",
    "activations": "analysis.activations", "examples": "analysis.examples", "dream": "analysis.dream",
    "plot": "figures.plot", "card": "figures.card", "captions": "figures.captions", "fcp_figure": "figures.patterns",
    "figure_parts": "figures.parts", "pil_text": "figures.text", "raster": "figures.paint", "tiles": "figures.tiles",
    "pngs": "figures.png", "profiles": "figures.profiles",
    "report": "gallery.site", "class_page": "gallery.class_page", "gallery_process": "gallery.worker",
    "chunks": "runs.chunks", "cluster": "runs.cluster", "plan": "runs.plan", "layout": "runs.layout",
    "cli_inputs": "cli.options",
}
"""Old module name (under ``oipscope``) -> its new path."""


class _AliasLoader(importlib.abc.Loader):
    def __init__(self, target: str) -> None:
        self._target = target

    def create_module(self, spec):
        module = importlib.import_module(self._target)
        sys.modules[spec.name] = module
        return module

    def exec_module(self, module) -> None:  # the real module is already executed
        pass


class _AliasFinder(importlib.abc.MetaPathFinder):
    def __init__(self, package: str) -> None:
        self._prefix = package + "."

    def find_spec(self, fullname: str, path=None, target=None):
        if not fullname.startswith(self._prefix):
            return None
        old = fullname[len(self._prefix):]
        if old not in MOVED:
            return None
        new = self._prefix + MOVED[old]
        warnings.warn(f"{fullname} moved to {new}; the old path goes away in the next release",
                      DeprecationWarning, stacklevel=3)
        return importlib.util.spec_from_loader(fullname, _AliasLoader(new))


def install_aliases(package: str) -> None:
    """Make the old module paths of ``package`` importable (once per process)."""
    if not any(isinstance(finder, _AliasFinder) for finder in sys.meta_path):
        sys.meta_path.append(_AliasFinder(package))
