"""Safe file output: atomic writes, file names from untrusted model names, no needless rewrites.

An interrupt or crash never leaves a half-written file that later loads as valid
(a temporary file in the same folder, then a rename).
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
import re
import tempfile
from pathlib import Path
from typing import Any, BinaryIO, Callable

import numpy as np

__all__ = ["atomic_write", "safe_filename", "equal_values", "save_if_changed", "file_sha256"]


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


def equal_values(a: Any, b: Any) -> bool:
    """Whether two results hold the same values: dataclasses field by field, arrays
    element-wise (NaN equal to NaN), sequences and mappings item by item."""
    if dataclasses.is_dataclass(a) and not isinstance(a, type):
        return type(a) is type(b) and all(
            equal_values(getattr(a, f.name), getattr(b, f.name)) for f in dataclasses.fields(a))
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        if a.shape != b.shape or a.dtype.kind != b.dtype.kind:
            return False
        return bool(np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"))
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(map(equal_values, a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(equal_values(a[k], b[k]) for k in a)
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and a == b


def save_if_changed(value: Any, path: str | os.PathLike, load: Callable[[Path], Any]) -> bool:
    """``value.save(path)`` unless ``path`` already holds equal values; True if written.

    Keeps a finished result's files (and their times) untouched when a resumed
    run or a rebuilt report writes the same result again. Unreadable files are
    simply overwritten.
    """
    path = Path(path)
    try:
        if path.exists() and equal_values(load(path), value):
            return False
    except Exception:  # noqa: BLE001 - damaged or foreign files are replaced
        pass
    value.save(path)
    return True
