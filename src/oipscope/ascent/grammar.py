"""The command line's grammar of objectives: ``"channel - 0.5*diversity - 0.05*tv"``.

:func:`parse_objective` turns the text into an :class:`~oipscope.ascent.objective.Objective`
built from :mod:`oipscope.ascent.objective`'s constructors; ``Objective.text()`` writes it back.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import ConfigError

if TYPE_CHECKING:
    from .objective import Objective, Term

__all__ = ["parse_objective", "OBJECTIVE_HELP"]

OBJECTIVE_HELP = (
    "what each OIP maximizes, terms joined by + and -, each with an optional WEIGHT*: "
    "channel (default: a map's mean), neuron (its centre unit), neuron:Y,X, region:Y0:Y1,X0:X1, "
    "class (the pre-softmax logit; --layer defaults to the output layer), direction:V0,V1,... or "
    "direction:FILE.npy, diversity (the similarity of --n-per-map replicates: subtract it), and the image "
    "terms tv, l1, l2, "
    "blur; e.g. 'channel - 0.5*diversity - 0.05*tv'"
)

_TOKEN = re.compile(r"\s*([+-])?\s*(?:(\d+(?:\.\d*)?(?:e-?\d+)?|\.\d+)\s*\*\s*)?([a-z_0-9]+(?::[^\s+*]+)?)\s*",
                    re.IGNORECASE)


def _ints(text: str, sep: str, count: int, term: str, example: str) -> list[int]:
    parts = text.split(sep)
    try:
        values = [int(p) for p in parts]
    except ValueError:
        values = []
    if len(values) != count:
        raise ConfigError(f"{term} takes {example}, got {term}:{text}")
    return values


def _term(word: str) -> Term:
    from .objective import blur, channel, class_logit, direction, diversity, l1, l2, neuron, region, tv

    name, _, arg = word.partition(":")
    name = name.lower()
    if name.replace(".", "").isdigit():
        raise ConfigError(f"the weight {word!r} has no term; write WEIGHT*TERM, e.g. 0.5*diversity")
    simple = {"channel": channel, "class": class_logit, "diversity": diversity,
              "tv": tv, "l1": l1, "l2": l2, "blur": blur}
    if name in simple:
        if arg:
            raise ConfigError(f"{name} takes no argument, got {word!r}")
        return simple[name]()
    if name == "neuron":
        if not arg:
            return neuron()
        y, x = _ints(arg, ",", 2, "neuron", "Y,X (e.g. neuron:3,4)")
        return neuron(y, x)
    if name == "region":
        ys, _, xs = arg.partition(",")
        y0, y1 = _ints(ys, ":", 2, "region", "Y0:Y1,X0:X1 (e.g. region:2:5,2:5)")
        x0, x1 = _ints(xs, ":", 2, "region", "Y0:Y1,X0:X1 (e.g. region:2:5,2:5)")
        return region(y0, y1, x0, x1)
    if name == "direction":
        if not arg:
            raise ConfigError("direction needs its values, direction:V0,V1,... or direction:FILE.npy")
        if arg.endswith(".npy"):
            path = Path(arg)
            if not path.is_file():
                raise ConfigError(f"direction file {path} not found; give a .npy file with one value per map")
            return direction(np.load(path))
        try:
            values = [float(v) for v in arg.split(",")]
        except ValueError:
            raise ConfigError(f"direction values must be numbers, got {arg!r}") from None
        return direction(values)
    known = "channel, neuron, neuron:Y,X, region:Y0:Y1,X0:X1, direction:..., class, diversity, tv, l1, l2, blur"
    raise ConfigError(f"unknown objective term {name!r}; known: {known}")


def parse_objective(text: str | Objective | Term) -> Objective:
    """An objective from the grammar of ``--objective`` (see :data:`OBJECTIVE_HELP`).

    Example:
        >>> parse_objective("channel - 0.5*diversity").text()
        'channel - 0.5*diversity'

    Raises:
        ConfigError: an unknown term, a malformed argument or weight, or no layer term.
    """
    from .objective import Objective, _Arithmetic, _as_objective

    if isinstance(text, _Arithmetic):
        return _as_objective(text).validate()
    source = str(text).strip()
    if not source:
        raise ConfigError("the objective is empty; e.g. --objective channel")
    terms: list[tuple[float, Term]] = []
    position = 0
    while position < len(source):
        match = _TOKEN.match(source, position)
        if not match or match.end() == position:
            raise ConfigError(f"cannot read the objective {source!r} at {source[position:]!r}; "
                              "write terms like 'channel - 0.5*diversity'")
        sign, weight, word = match.groups()
        if terms and sign is None:
            raise ConfigError(f"terms of the objective {source!r} must be joined by + or -")
        value = float(weight) if weight is not None else 1.0
        terms.append((-value if sign == "-" else value, _term(word)))
        position = match.end()
    return Objective(tuple(terms)).validate()
