"""Writing files so that a crash or a full disk never leaves half of one, and hashing them.

Every stage writes artifacts another stage (or a later run) reads: models, masks, statistics,
reports, generated headers, compiled C-simulation libraries. They all go through
:func:`atomic_write` (a temporary file beside the target, then ``os.replace``), so a reader sees
either the old file or the new one. Standard library only: the board package uses it too.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import IO, Callable


def atomic_write(path: str | os.PathLike, content: str | bytes | Callable[[IO[bytes]], None], *,
                 skip_if_same: bool = False, mode: int | None = None) -> bool:
    """Write ``path`` atomically: a temporary file in the same folder, then a rename.

    Args:
        path: the file to (re)write; its folder is created if needed.
        content: text (UTF-8), bytes, or a function that writes into a binary handle (e.g.
            ``lambda f: np.savez(f, ...)``, which would otherwise append ``.npz`` to a name).
        skip_if_same: leave an identical existing file untouched (and its timestamp, so make
            does not redo the steps that depend on it). Only for text or bytes content.
        mode: permission bits of the new file; default: the old file's, else 0644 (mkstemp
            would create 0600, and these files are shared and copied to boards).

    Returns:
        Whether the file was (re)written.
    """
    path = Path(path)
    data = content.encode() if isinstance(content, str) else content
    if skip_if_same and isinstance(data, bytes) and path.is_file() and path.read_bytes() == data:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    if mode is None:
        mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), mode)
            if isinstance(data, bytes):
                handle.write(data)
            else:
                data(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return True


def sha256_file(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes (read in 1 MiB blocks)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
