"""g++ builds of the C-simulation libraries: ap_types headers, compiler, content-hash cache, atomic install.

Where this fits: two C simulations compile C++ into a shared library and call it through ctypes -
our HLS engines alone (:mod:`vitcod.hls.engine_csim`) and the overlay's IP top around a network
(:mod:`vitcod.host.csim_backend`). Both need the same four things, which live here:

* the ap_types headers: an explicit folder, ``$VITCOD_AP_TYPES``, or the copy bundled with
  hls4ml (found without importing it: its import pulls in TensorFlow);
* the compiler (``$CXX``, else ``g++``) and its identity (the first line of ``--version``), which
  goes into every cache key;
* a cache folder (``$VITCOD_CSIM_CACHE``, else a per-user folder in the system temp dir) holding
  one sub-folder per content hash of everything that goes into a library;
* :func:`compile_library`: write the generated sources into a fresh folder beside the target, run
  the compiler there, keep the sources next to the library for debugging, and rename the library
  into place (concurrent builds of the same key are harmless; a failed build leaves nothing).

Standard library only (the board package uses it for its C-simulation backend).
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

from ..fileio import atomic_write

log = logging.getLogger(__name__)

AP_TYPES_ENV = "VITCOD_AP_TYPES"
CACHE_ENV = "VITCOD_CSIM_CACHE"


class ToolchainNotFoundError(FileNotFoundError):
    """No C++ compiler, or no ap_types headers; the message says what to install or set."""


class CompileError(RuntimeError):
    """The compiler rejected a generated source; the message carries its command and diagnostics."""


def default_cxx() -> str:
    """The C++ compiler: ``$CXX``, else ``g++``."""
    return os.environ.get("CXX", "g++")


def ap_types_dir(path: str | Path | None = None, headers: Sequence[str] = ("ap_fixed.h",)) -> Path:
    """The ap_types headers: ``path``, ``$VITCOD_AP_TYPES``, or the copy bundled with hls4ml.

    Args:
        path: an explicit folder (wins over the environment).
        headers: files the folder must hold (e.g. also ``hls_stream.h``).

    Raises:
        ToolchainNotFoundError: hls4ml is not installed and nothing else names a folder, or a
            header is missing.
    """
    if path is None:
        path = os.environ.get(AP_TYPES_ENV) or None
    if path is None:
        spec = importlib.util.find_spec("hls4ml")
        if spec is None or spec.origin is None:
            raise ToolchainNotFoundError(
                f"no ap_types headers: install hls4ml (the flow environment) or set {AP_TYPES_ENV} to a folder "
                f"with {' and '.join(headers)}")
        path = Path(spec.origin).parent / "templates" / "vivado" / "ap_types"
    path = Path(path)
    for header in headers:
        if not (path / header).is_file():
            raise ToolchainNotFoundError(f"{header} not found in {path}")
    return path.resolve()


_compiler_ids: dict[str, str] = {}


def compiler_id(cxx: str) -> str:
    """First line of ``cxx --version`` (cached per command), part of every cache key.

    Raises:
        ToolchainNotFoundError: ``cxx`` is not on PATH.
    """
    if cxx not in _compiler_ids:
        exe = shutil.which(cxx)
        if exe is None:
            raise ToolchainNotFoundError(f"C++ compiler {cxx!r} not found on PATH (set CXX or install g++)")
        out = subprocess.run([exe, "--version"], capture_output=True, text=True, check=False).stdout
        _compiler_ids[cxx] = (out.splitlines() or [exe])[0]
    return _compiler_ids[cxx]


def cache_dir(path: str | Path | None = None, default_name: str = "vitcod-csim") -> Path:
    """The library cache: ``path``, ``$VITCOD_CSIM_CACHE``, or ``<tmp>/<default_name>-<uid>`` (created)."""
    if path is None:
        path = os.environ.get(CACHE_ENV) or Path(tempfile.gettempdir()) / f"{default_name}-{os.getuid()}"
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    return path


def content_key(parts: Iterable[bytes | str], salt: bytes = b"", length: int = 24) -> str:
    """Hex SHA-256 over ``salt`` and every part (each ended by a NUL), cut to ``length`` digits."""
    digest = hashlib.sha256(salt)
    for part in parts:
        digest.update((part.encode() if isinstance(part, str) else part) + b"\0")
    return digest.hexdigest()[:length]


def compile_library(target: Path, files: Mapping[str, str], command: Callable[[Path, Path], list[str]], *,
                    what: str = "the C-simulation library") -> Path:
    """Build ``target`` unless it exists (see the module docstring).

    Args:
        target: the library path, normally ``cache_dir() / <content key> / <name>.so``.
        files: generated sources, written into the build folder under these names.
        command: ``command(build_folder, output)`` -> the compiler's argv; it must write ``output``.
        what: named in the log and in a failure.

    Returns:
        ``target``.

    Raises:
        CompileError: the compiler failed; its stderr (the last 6000 characters) is in the message.
    """
    if target.is_file():
        log.debug("reusing %s", target)
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".build-", dir=target.parent))
    try:
        for name, text in files.items():
            (work / name).write_text(text)
        out = work / target.name
        cmd = command(work, out)
        log.info("compiling %s -> %s", what, target)
        proc = subprocess.run(cmd, cwd=work, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise CompileError(f"{cmd[0]} failed building {what} ({' '.join(cmd)}):\n{proc.stderr[-6000:]}")
        for name, text in files.items():  # kept next to the library, for debugging
            atomic_write(target.parent / name, text, skip_if_same=True)
        os.replace(out, target)  # atomic: concurrent builds of the same key are harmless
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target
