"""How an OIP's ascent ended, and which of two OIPs of a map is the better one.

The engine computes statuses as small integers inside its compiled loop
(:attr:`Status.code`); everything else (results, files, figures) uses the
:class:`Status` itself, which is also its string name (``Status.SILENT ==
"silent"``), so ``result.json`` stays plain JSON.
"""

from __future__ import annotations

import enum

__all__ = ["Status", "needs_retry", "is_better"]


class Status(enum.StrEnum):
    """The end of one OIP's ascent."""

    CONVERGED = "converged"
    """The activation stopped changing (relative change below the criterion)."""
    STEP_LIMIT = "step_limit"
    """The steps ran out before convergence."""
    SILENT = "silent"
    """The map's activation and its gradient are zero: the ascent cannot move."""
    NONFINITE = "nonfinite"
    """The activation or its gradient became NaN or infinite."""

    @property
    def code(self) -> int:
        """The integer the engine's compiled loop uses for this status."""
        return _CODES[self]

    @classmethod
    def from_code(cls, code: int) -> "Status":
        """The status of an engine code (0..3)."""
        return _BY_CODE[int(code)]

    @property
    def marked(self) -> bool:
        """Whether figures and the gallery mark the OIP as having no usable pattern."""
        return self in (Status.SILENT, Status.NONFINITE)


_CODES = {status: code for code, status in enumerate(Status)}
_BY_CODE = dict(enumerate(Status))


def needs_retry(status: str, activation: float, rectified: bool = True) -> bool:
    """Whether an OIP shows nothing of its map: silent, or (for a ``rectified`` map, one
    after a ReLU) not above zero (NaN included). A signed value such as a logit may end
    below zero and still show what its unit wants."""
    if Status(status) is Status.SILENT:
        return True
    return not activation > 0 if rectified else not activation == activation


def is_better(status: str, activation: float, old_status: str, old_activation: float) -> bool:
    """Whether a new OIP of a map replaces the old one: it wakes a silent map, or climbs higher.

    One rule for every second chance (restarts, the pre-activation rescue, starts
    from dataset images).
    """
    status, old_status = Status(status), Status(old_status)
    woke = old_status is Status.SILENT and status not in (Status.SILENT, Status.NONFINITE)
    return woke or activation > old_activation
