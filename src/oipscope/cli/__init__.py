"""The ``oipscope`` command line: a thin layer over the library API.

- :mod:`.commands`: one function per command (its docstring is its help).
- :mod:`.options`: the shared options and turning them into library values.
"""

from .._lazy import lazy_exports

__all__ = ["app", "main"]

__getattr__, __dir__ = lazy_exports(__name__, {"app": "commands", "main": "commands"})
