"""Exceptions of oipscope, each with the exit code the CLI uses for it.

Every error names the bad value and what to do about it; the CLI prints the
message on one line and exits with ``exit_code``.
"""

from __future__ import annotations

__all__ = [
    "OipscopeError",
    "DataError",
    "ModelError",
    "LayerError",
    "ConfigError",
    "OutputError",
    "ClusterError",
    "FolderInUseError",
]


class OipscopeError(Exception):
    """Base class of all errors oipscope raises on bad input."""

    exit_code: int = 1


class ConfigError(OipscopeError, ValueError):
    """A parameter is out of its valid range (exit code 2)."""

    exit_code = 2


class DataError(OipscopeError):
    """A data file is missing, truncated or malformed (exit code 3)."""

    exit_code = 3


class ModelError(OipscopeError):
    """A model file cannot be loaded or the model is unsuitable (exit code 4)."""

    exit_code = 4


class OutputError(OipscopeError):
    """An output file or folder cannot be written (exit code 6)."""

    exit_code = 6


class LayerError(OipscopeError, KeyError):
    """A layer or map does not exist or has no feature maps (exit code 5)."""

    exit_code = 5

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class ClusterError(OipscopeError):
    """A Ray cluster cannot be reached or started, or Ray is not installed."""

    exit_code = 7


class FolderInUseError(OipscopeError):
    """The output folder is in use by another run, whose lock names it (exit code 8)."""

    exit_code = 8
