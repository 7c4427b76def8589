"""Safe file output: atomic writes, file names from untrusted model names, file hashes.

An interrupt or crash never leaves a half-written file that later loads as valid
(a temporary file in the same folder, then a rename).
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import BinaryIO, Callable

__all__ = ["atomic_write", "safe_filename", "file_sha256"]


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
