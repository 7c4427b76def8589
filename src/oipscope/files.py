"""Safe file output and input: atomic writes, saved files read back, file names from untrusted
model names, file hashes.

An interrupt or crash never leaves a half-written file that later loads as valid
(a temporary file in the same folder, then a rename); a saved file that was
damaged anyway (cut short, bytes changed) reads as one :class:`~oipscope.errors.DataError`
that names it (:func:`reading_saved`), never a traceback.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import zipfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterator

from .errors import DataError, OipscopeError

__all__ = ["atomic_write", "safe_filename", "file_sha256", "reading_saved", "read_saved_json", "read_saved_npz"]


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 hex digest of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def atomic_write(path: str | os.PathLike, content: bytes | Callable[[BinaryIO], object]) -> Path:
    """Write ``content`` (bytes, or a function writing to a binary file) to ``path`` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            if isinstance(content, (bytes, bytearray)):
                handle.write(content)
            else:
                content(handle)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def safe_filename(name: str, max_length: int = 40) -> str:
    """A file-name-safe slug for ``name``, unique per name.

    Letters and digits are kept (lower-cased), every other run of characters
    becomes one ``-``, and a short hash of the full name is appended, so
    ``"../../x"`` → ``"x-<hash>"``, ``"<script>"`` → ``"script-<hash>"``, and two
    names differing only in removed characters or case still differ.
    """
    text = str(name)
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:max_length].strip("-") or "layer"
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{slug}-{digest}"


def _damage(exc: BaseException) -> str:
    """What is wrong with a saved file, in words (never a hint to load pickles)."""
    if isinstance(exc, FileNotFoundError):
        return "it is missing"
    if isinstance(exc, json.JSONDecodeError):
        return f"its JSON is cut short or malformed (line {exc.lineno}, column {exc.colno})"
    if isinstance(exc, zipfile.BadZipFile) or "pickle" in str(exc) or isinstance(exc, EOFError):
        detail = str(exc) if "CRC" in str(exc) else "not a complete .npz archive"
        return f"it is damaged ({detail})"
    if isinstance(exc, OSError):
        return f"it cannot be read ({exc.strerror or exc})"
    return f"its content is malformed ({type(exc).__name__}: {exc})"


@contextmanager
def reading_saved(path: str | os.PathLike, what: str = "saved file") -> Iterator[None]:
    """Turn any damage met while reading a file oipscope saved into one :class:`DataError` naming it.

    Example:
        >>> with reading_saved("run/arrays.npz", "OIP arrays"):  # doctest: +SKIP
        ...     arrays = dict(np.load("run/arrays.npz"))
        DataError: cannot read OIP arrays run/arrays.npz: it is damaged (Bad CRC-32 ...); run the ...
    """
    try:
        yield
    except OipscopeError:  # already one line (e.g. a saved configuration out of range)
        raise
    except (OSError, EOFError, ValueError, KeyError, TypeError, IndexError, AttributeError,
            zipfile.BadZipFile) as exc:
        raise DataError(f"cannot read {what} {path}: {_damage(exc)}; run the command that wrote it again "
                        "(with --resume, find and zoo recompute what is damaged)") from exc


def read_saved_json(path: str | os.PathLike, what: str = "saved file") -> Any:
    """The JSON content of a file oipscope saved; damage raises :class:`DataError` naming the file."""
    with reading_saved(path, what):
        return json.loads(Path(path).read_text(encoding="utf-8"))


def read_saved_npz(path: str | os.PathLike, what: str = "saved arrays") -> dict:
    """Every array of an ``.npz`` file oipscope saved (read in full: a bad checksum shows now, not later);
    damage raises :class:`DataError` naming the file. Pickled objects are refused."""
    import numpy as np

    with reading_saved(path, what), np.load(path, allow_pickle=False) as npz:
        return {key: npz[key] for key in npz.files}
