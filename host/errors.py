"""Exceptions and warnings of the board-side driver.

Every failure the driver can detect has its own type, so callers can tell a bad input (fix the
call) from a refused overlay (fix the files) from a device fault (retry; the driver has already
tried to recover). All derive from :class:`VitcodError`; the input and metadata errors are also
``ValueError`` and the device errors ``RuntimeError``, so generic handlers keep working.
"""

from __future__ import annotations

from typing import Sequence


class VitcodError(Exception):
    """Base class of every error raised by :mod:`vitcod.host`."""


class MetadataError(VitcodError, ValueError):
    """``vitcod.json`` or ``network.json`` is missing, unreadable or inconsistent.

    Attributes:
        problems: one message per problem found.
    """

    def __init__(self, problems: Sequence[str] | str):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("invalid overlay metadata:\n  - " + "\n  - ".join(self.problems))


class WireFormatError(VitcodError, ValueError):
    """Raws or stream words that do not follow the overlay's wire format."""


class ApTypeError(VitcodError, ValueError):
    """A type spelling that is not an ap_types type the overlay contract knows (see
    :mod:`vitcod.host.contract.aptypes`), or a mode a consumer of the type cannot model."""


class InputError(VitcodError, ValueError):
    """Images with the wrong shape or dtype, NaN/Inf values, or an empty batch."""


class OverlayMismatchError(VitcodError):
    """The bitstream / .hwh do not match ``vitcod.json``: files, DMA or IP names, IP types or DMA
    configuration differ. Nothing is run on such an overlay."""


class IdentityMismatchError(OverlayMismatchError):
    """The IP's identifier registers (format version, model id, types, geometry, max batch) differ
    from the description (``vitcod.json`` or ``network.json``): the IP was built for another model,
    another interface or another wire format, or the description was edited.

    Attributes:
        mismatches: ``{register: (reported by the IP, expected by the description)}`` (a check
            within the file is keyed ``"<field> (recorded)"``).
        fields: the description's fields that differ (``input.type``, ``model_id``, ...).
    """

    def __init__(self, message: str, mismatches: dict[str, tuple[int, int]], fields: Sequence[str] = ()):
        self.mismatches = dict(mismatches)
        self.fields = list(fields)
        super().__init__(message)


class NoDeviceError(VitcodError, RuntimeError):
    """The pynq backend was asked for on a machine without a PYNQ board (or without pynq)."""


class DeviceInUseError(VitcodError, RuntimeError):
    """A second driver was opened on a device that a driver of this process (or, on a board,
    another process) already drives: their transfers would interleave on the same DMA and buffers."""


class DeviceError(VitcodError, RuntimeError):
    """A fault reported (or a hang detected) while the accelerator ran a batch.

    When a call split into several transfers fails in transfer k, the images of transfers 0..k-1
    have completed; the driver attaches them:

    Attributes:
        completed: how many leading images of the call completed (0 if the first transfer failed).
        partial: their results, as the failed call would have returned them (``predict``: float64
            ``(completed, *output_shape)``; ``classify``: labels; ``execute_raw``: raws), or None.
    """

    completed: int = 0
    partial = None


class DeviceTimeoutError(DeviceError, TimeoutError):
    """A wait on the DMA or the IP did not finish within the driver's ``timeout``.

    Attributes:
        waiting_for: what had not finished (e.g. ``["S2MM idle", "IP ap_done"]``).
        timeout: the limit that expired, in seconds.
    """

    def __init__(self, message: str, waiting_for: Sequence[str] = (), timeout: float | None = None):
        self.waiting_for = list(waiting_for)
        self.timeout = timeout
        super().__init__(message)


class DmaError(DeviceError):
    """An AXI DMA channel set error bits in its status register (DMASR).

    Attributes:
        channel: ``"MM2S"`` (memory to stream, the input) or ``"S2MM"`` (stream to memory).
        bits: names of the error bits set, e.g. ``["DMASlvErr"]``.
        status: the raw DMASR value.
    """

    def __init__(self, message: str, channel: str, bits: Sequence[str], status: int):
        self.channel = channel
        self.bits = list(bits)
        self.status = status
        super().__init__(message)


class StreamError(DeviceError):
    """The IP or the DMA finished but reported a wrong stream: TLAST in the wrong place, fewer
    images or bytes than requested, a clamped batch.

    Attributes:
        status_bits: names of the IP's status bits that were set (``["tlast_early"]``, ...).
        batch_done: images the IP reported as processed, if known.
    """

    def __init__(self, message: str, status_bits: Sequence[str] = (), batch_done: int | None = None):
        self.status_bits = list(status_bits)
        self.batch_done = batch_done
        super().__init__(message)


class CsimBuildError(VitcodError, RuntimeError):
    """The C-simulation library could not be built (missing sources, headers or compiler)."""


class SaturationWarning(UserWarning):
    """Input values outside the input type's range were saturated (warned once per driver)."""
