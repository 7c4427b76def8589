"""Options that several commands take, declared once.

An :class:`OptionGroup` adds its options to a command's signature (so ``--help`` lists them
like the command's own) and hands their values to the command as one mapping::

    @app.command()
    @ENCODING
    def find(model: Optional[Path] = ModelArg, *, encoding: dict) -> None:
        subject = subject_option(model, unsafe_load, **encoding)
"""

from __future__ import annotations

import functools
import inspect
import typing
from dataclasses import dataclass
from typing import Any, Callable, Optional

from .options import (BgrOpt, InputSizeOpt, MeanOpt, PreprocessOpt, RangeOpt, RayCpusOpt, RayGpusOpt, RayOpt,
                      StandardizeOpt, StdOpt, WorkersOpt)

__all__ = ["OptionGroup", "PIXEL_ENCODING", "ENCODING", "CLUSTER"]


@dataclass(frozen=True)
class OptionGroup:
    """Command-line options shared by several commands.

    Attributes:
        name: the keyword the decorated command receives the values under (a dict by option name).
        options: ``(parameter name, type, typer.Option)`` per option, in the order ``--help`` lists them.
    """

    name: str
    options: tuple[tuple[str, Any, Any], ...]

    def __call__(self, command: Callable) -> Callable:
        signature = inspect.signature(command)
        hints = typing.get_type_hints(command)  # the module's string annotations, resolved for Typer
        own = [p.replace(annotation=hints.get(p.name, p.annotation))
               for p in signature.parameters.values() if p.name != self.name]
        added = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=kind)
                 for name, kind, option in self.options]

        @functools.wraps(command)
        def run(*args, **kwargs):
            values = {name: kwargs.pop(name) for name, _, _ in self.options}
            return command(*args, **kwargs, **{self.name: values})

        run.__signature__ = signature.replace(parameters=[*own, *added], return_annotation=None)
        run.__annotations__ = {p.name: p.annotation for p in [*own, *added]}
        del run.__wrapped__  # Typer reads the signature above, not the command's own
        return run


PIXEL_ENCODING = OptionGroup("encoding", (
    ("input_range", Optional[str], RangeOpt),
    ("mean", Optional[str], MeanOpt),
    ("std", Optional[str], StdOpt),
    ("standardize", bool, StandardizeOpt),
    ("preprocess", Optional[str], PreprocessOpt),
    ("bgr", bool, BgrOpt),
))
"""How the model expects its pixels (``subject_option(model, unsafe_load, **encoding)``)."""

ENCODING = OptionGroup("encoding", (*PIXEL_ENCODING.options, ("input_size", Optional[str], InputSizeOpt)))
"""The pixel encoding and ``--input-size`` for a model that takes any size."""

CLUSTER = OptionGroup("cluster", (
    ("ray", Optional[str], RayOpt),
    ("workers", Optional[int], WorkersOpt),
    ("ray_cpus_per_task", float, RayCpusOpt),
    ("ray_gpus_per_task", float, RayGpusOpt),
))
"""Where the chunks run (``backend_option(**cluster, unsafe_load=...)``)."""
