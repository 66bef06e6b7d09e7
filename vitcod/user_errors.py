"""User errors: what was expected, what came, and where - and the artifact readers that raise them.

A user's mistake (an option out of range, a missing run folder, a truncated ``masks.npz``, a
config that is not UTF-8 JSON) must end in ONE line a person can act on, never a traceback:

    error: <what was expected>, got <what came> (<file or option>)

on stderr, exit status 2 (``python -m vitcod`` prints it; ``-v``/``--verbose`` or
``VITCOD_TRACEBACK=1`` show the traceback as well). :class:`UserError` carries the three parts;
the flow's own error types (``DatasetError``, ``ConfigError``, ``MaskArtifactError``, ...) derive
from it, so the command line tells them from internal errors, which keep their traceback.

The readers here (:func:`read_json`, :func:`read_npz`) are the one way the flow opens a JSON or
``.npz`` artifact: each names the file and says why it could not be read (missing, empty,
truncated, not UTF-8, invalid JSON, wrong keys, pickled objects) instead of letting json, zipfile
or numpy speak. Standard library at import; numpy only inside :func:`read_npz`.
"""

from __future__ import annotations

import json
import os
import re
import sys
import zipfile
import zlib
from pathlib import Path
from typing import Any, Iterable

TRACEBACK_ENV = "VITCOD_TRACEBACK"
"""Set to 1 to get the Python traceback of a user error too (as ``-v``/``--verbose`` does)."""

USAGE_EXIT = 2
"""Exit status of a user error (the one argparse uses for a bad option)."""

_FREE_TEXT = object()


class UserError(ValueError):
    """A mistake the user can fix: a bad option value, a missing or unreadable file.

    ``UserError(expected, got, where)`` reads ``"<expected>, got <got> (<where>)"``; the parts
    stay available as attributes. ``UserError(message)`` (one argument) keeps a message that is
    already complete, for callers that predate the three-part form.
    """

    def __init__(self, expected: str, got: Any = _FREE_TEXT, where: Any = None):
        self.expected = expected
        self.got = None if got is _FREE_TEXT else got
        self.where = None if where is None else str(where)
        if got is _FREE_TEXT:
            message = expected
        else:
            message = f"{expected}, got {got}" + (f" ({where})" if where is not None else "")
        super().__init__(message)

    def at(self, where: Any) -> "UserError":
        """The same error (same class) placed at ``where``, e.g. an option name or a field in a file."""
        if self.got is None and self.where is None:
            return type(self)(f"{self} ({where})")
        return type(self)(self.expected, self.got, where)


class MissingFileError(UserError, FileNotFoundError):
    """A file or folder the user named (or a stage should have written) is not there."""


def one_line(error: BaseException) -> str:
    """``error: <message>`` on one line (newlines of multi-line messages become '; ')."""
    text = "; ".join(re.sub(r"^-\s+", "", line.strip()) for line in str(error).splitlines() if line.strip())
    return f"error: {text or type(error).__name__}"


def wants_traceback(verbose: bool = False) -> bool:
    """Whether a user error should show its traceback: ``-v`` or ``VITCOD_TRACEBACK=1``."""
    return verbose or os.environ.get(TRACEBACK_ENV, "").strip() not in ("", "0")


def report(error: BaseException, verbose: bool = False) -> int:
    """Print a user error as one line on stderr (with the traceback when asked); return 2."""
    if wants_traceback(verbose):
        import traceback

        traceback.print_exception(error)
    print(one_line(error), file=sys.stderr)
    return USAGE_EXIT


# ---- readers ------------------------------------------------------------------------------------


def require_file(path: str | os.PathLike, what: str, hint: str = "") -> Path:
    """``path`` as a Path, after checking that it is an existing regular file.

    Raises:
        MissingFileError: nothing there, or a folder (``hint`` says how to make the file).
    """
    path = Path(path)
    if path.is_dir():
        raise MissingFileError(f"{what} (a file)", "a folder", path)
    if not path.is_file():
        raise MissingFileError(f"{what}{hint}", "no such file", path)
    return path


def read_text(path: str | os.PathLike, what: str, hint: str = "") -> str:
    """The UTF-8 text of a file; a missing file, a folder or bytes that are not UTF-8 are user errors."""
    path = require_file(path, what, hint)
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise UserError(f"{what} in UTF-8 text", f"a byte that is not UTF-8 (0x{data[err.start]:02x} at "
                                                 f"byte {err.start})", path) from None


def read_json(path: str | os.PathLike, what: str, hint: str = "", kind: type | None = dict) -> Any:
    """A UTF-8 JSON file (``kind``: the type its top level must have, None for any).

    Raises:
        MissingFileError, UserError: naming the file and what was wrong with it.
    """
    text = read_text(path, what, hint)
    if not text.strip():
        raise UserError(f"{what} in JSON", "an empty file", path)
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise UserError(f"{what} in valid JSON", f"{err.msg} at line {err.lineno} column {err.colno}",
                        path) from None
    if kind is not None and not isinstance(value, kind):
        raise UserError(f"{what} as a JSON {'object' if kind is dict else kind.__name__}",
                        f"a JSON {type(value).__name__}", path)
    return value


_NPZ_READ_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, KeyError)


def _sniff(path: Path) -> str:
    """'npz' (a zip archive: local file header or empty archive), 'npy', or 'other', from the magic."""
    with open(path, "rb") as handle:
        head = handle.read(6)
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return "npz"
    return "npy" if head == b"\x93NUMPY" else "other"


def _not_readable(what: str, kind: str, path: Path, err: BaseException) -> UserError:
    if isinstance(err, ValueError) and ("allow_pickle" in str(err) or "pickled" in str(err)):
        return UserError(f"{what} with numeric arrays", "pickled Python objects", path)
    if isinstance(err, zipfile.BadZipFile):  # a zip's table of contents is at its end: cut off
        return UserError(f"{what} as a readable {kind}", "a truncated or corrupt archive (no readable table "
                         "of contents)", path)
    return UserError(f"{what} as a readable {kind}", f"a truncated or corrupt file ({type(err).__name__}: {err})",
                     path)


def read_npz(path: str | os.PathLike, what: str, keys: Iterable[str] = (), hint: str = "") -> dict:
    """Every array of an ``.npz`` (numbers only, no pickles), read now so a truncated member fails here.

    Args:
        path: the archive.
        what: what the file is, for the message ("the attention statistics").
        keys: arrays that must be present.
        hint: appended to ``what`` when the file is missing (e.g. which command writes it).

    Raises:
        MissingFileError, UserError: missing, empty, not an archive, truncated or corrupt, pickled
        objects, or a required key missing - naming the file.
    """
    import numpy as np

    path = require_file(path, what, hint)
    if path.stat().st_size == 0:
        raise UserError(f"{what} (a .npz archive)", "an empty file", path)
    kind = _sniff(path)
    if kind != "npz":
        got = "a .npy file (one array)" if kind == "npy" else "a file that is not a .npz archive"
        raise UserError(f"{what} as a .npz archive", got, path)
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except _NPZ_READ_ERRORS as err:
        raise _not_readable(what, ".npz archive", path, err) from None
    missing = [k for k in keys if k not in arrays]
    if missing:
        raise UserError(f"{what} with the arrays {list(keys)}", f"no {missing} (it holds {sorted(arrays)})",
                        path)
    return arrays


def read_array(path: str | os.PathLike, what: str, name: str = "mask") -> Any:
    """One array from a ``.npy``, or from an ``.npz`` holding one array or one called ``name``."""
    import numpy as np

    path = require_file(path, what)
    if path.stat().st_size == 0:
        raise UserError(f"{what} (a .npy or .npz file)", "an empty file", path)
    kind = _sniff(path)
    if kind == "npz":
        arrays = read_npz(path, what)
        if name in arrays:
            return arrays[name]
        if len(arrays) == 1:
            return next(iter(arrays.values()))
        raise UserError(f"{what} with one array or one named {name!r}", f"the arrays {sorted(arrays)}", path)
    if kind != "npy":
        raise UserError(f"{what} as a .npy or .npz file", "a file that is neither", path)
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, EOFError, OSError) as err:
        raise _not_readable(what, ".npy file", path, err) from None
