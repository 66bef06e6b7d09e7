"""Argument checks the driver applies where a value is set, and the one-driver-per-device rule.

Where this fits: a timeout of NaN would make every deadline comparison false (a hung device would
never be given up on), a negative one would time out at once, and ``batch_size=2.7`` would
silently run 2 images; so :func:`timeout_seconds` and :func:`positive_int` refuse such values
where they are set - the driver's constructor, its attribute setters, each call, and the CLI - with
a message naming the argument.

Two drivers on one device would interleave their transfers on the same DMA channels, registers and
buffers (the emulated board returned wrong results that way), so :class:`DeviceClaims` lets one
driver per device and process exist; one driver serializes its own calls with a lock. Across
processes on a board, :func:`process_lock` takes an advisory ``flock`` on a file named after the
device, which another vitcod driver honours; nothing stops a program that does not use vitcod
from loading another bitstream.
"""

from __future__ import annotations

import gc
import math
import os
import re
import tempfile
import threading
import weakref
from pathlib import Path
from typing import Any

import numpy as np

from .errors import DeviceInUseError


def timeout_seconds(value: Any, name: str = "timeout") -> float:
    """``value`` as a float number of seconds, if it is a finite number above 0.

    Raises:
        ValueError: naming ``name`` and the value (NaN, infinity, 0, a negative number, a string...).
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name} must be a number of seconds (finite, > 0), got {value!r}")
    seconds = float(value)
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"{name} must be a finite number of seconds above 0, got {value!r}")
    return seconds


def positive_int(value: Any, name: str, maximum: int | None = None) -> int:
    """``value`` as an int if it is an integer in ``1..maximum`` (floats such as 2.7 are refused,
    not truncated).

    Raises:
        ValueError: naming ``name``, the value and the allowed range.
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if value < 1 or (maximum is not None and value > maximum):
        bound = f"1..{maximum}" if maximum is not None else ">= 1"
        raise ValueError(f"{name} must be an integer in {bound}, got {value!r}")
    return int(value)


class DeviceClaims:
    """Which driver of this process drives which device (one at most)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._holders: dict[int, tuple[weakref.ref, weakref.ref]] = {}

    def _holder(self, device: Any) -> Any:
        entry = self._holders.get(id(device))
        if entry is None:
            return None
        dev, drv = entry[0](), entry[1]()
        if dev is not device or drv is None or getattr(drv, "closed", False):
            del self._holders[id(device)]
            return None
        return drv

    def claim(self, device: Any, driver: Any, what: str) -> None:
        """Record ``driver`` as the one driving ``device``.

        Raises:
            DeviceInUseError: another live driver of this process drives it (an unreferenced one
                that only awaits garbage collection does not count).
        """
        for attempt in range(2):
            with self._lock:
                holder = self._holder(device)
                if holder is None or holder is driver:
                    self._holders[id(device)] = (weakref.ref(device), weakref.ref(driver))
                    return
            if attempt == 0:
                del holder
                gc.collect()  # a driver dropped by the caller but kept alive by reference cycles
        raise DeviceInUseError(
            f"{what} is already driven by a driver of this process ({holder!r}); use that driver - it serializes "
            "calls from several threads - or call its close() before opening another")

    def release(self, device: Any, driver: Any) -> None:
        with self._lock:
            if self._holder(device) is driver:
                del self._holders[id(device)]


DEVICE_CLAIMS = DeviceClaims()


def process_lock(device_name: str, folder: str | Path | None = None) -> Any:
    """Take the advisory lock of a board device across processes (``fcntl.flock``, released when
    the returned file is closed or the process ends, even by a crash).

    Returns:
        The open lock file (keep it; close it to release), or None where ``fcntl`` is missing.

    Raises:
        DeviceInUseError: another process holds it (its pid is named).
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not on Linux
        return None
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", device_name) or "device"
    path = Path(folder if folder is not None else tempfile.gettempdir()) / f"vitcod-{safe}.lock"
    handle = open(path, "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.seek(0)
        owner = handle.read().strip() or "unknown"
        handle.close()
        raise DeviceInUseError(f"device {device_name} is driven by another process (pid {owner}, lock file {path}); "
                               "close that driver or end that process first") from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return handle
