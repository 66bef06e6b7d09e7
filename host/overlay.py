"""The board backend: a ``pynq.Overlay`` subclass driving the AXI DMA and the vitcod_top IP.

Where this fits: ``overlay/build/<board>/`` (or the unpacked ``vitcod-<board>.tar.gz`` on the board)
holds ``vitcod.bit``, ``vitcod.hwh`` and ``vitcod.json``. :class:`VitcodOverlay` loads the
bitstream like any PYNQ overlay, then configures itself from ``vitcod.json`` - the DMA and IP by
their recorded cell names, the stream geometry, the register map - and refuses an overlay that does
not match: files with other checksums, a missing or differently configured DMA, an IP of another
type, or an IP whose identifier registers (format version, model id, geometry, max batch) differ.

One transfer (``_execute``), with the real ``pynq.lib.dma.DMA`` driver:

1. write ``batch_count``; arm S2MM (``recvchannel.transfer``) then MM2S (``sendchannel.transfer``,
   which flushes the input buffer); set ``ap_start``;
2. poll, with a deadline, MM2S DMASR.Idle, S2MM DMASR.Idle and the IP's ap_done/ap_idle - PYNQ's
   ``wait()`` spins forever, so it is not used - raising :class:`~vitcod.host.errors.DmaError`
   as soon as a channel sets an error bit (the bit named) and
   :class:`~vitcod.host.errors.DeviceTimeoutError` at the deadline (naming what did not finish);
3. invalidate the output buffer, check the byte count the S2MM channel reports and the IP's
   ``batch_done`` / ``status`` registers.

After a failed transfer the driver resets the DMA (DMACR.Reset) and restarts both channels; if the
IP is still busy (it waits for stream data that will never come), it downloads the bitstream again,
which resets the programmable logic, and re-checks the IP's identity. The next call starts clean.

One driver per device: a second ``VitcodOverlay`` on a device that a live driver of this process
drives is refused before anything is downloaded (:class:`~vitcod.host.errors.DeviceInUseError`),
and on a board an advisory lock file (``<tmp>/vitcod-<device>.lock``, :func:`~vitcod.host.guards.process_lock`)
refuses a vitcod driver of another process; programs that do not use vitcod are not stopped by it.

Works unchanged on a real board and on :class:`vitcod.host.emulated.EmulatedDevice`, which models
the DMA's and the IP's registers for pynq's own driver code.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pynq
from pynq.lib.dma import DMA

from .checks import run_problems
from .driver import DEFAULT_TIMEOUT_S, IDENTITY_REGISTERS, VitcodDriver
from .errors import DeviceError, DeviceTimeoutError, DmaError, NoDeviceError, OverlayMismatchError, StreamError
from .guards import process_lock
from .metadata import OverlayMetadata

log = logging.getLogger(__name__)

# AXI DMA (PG021) direct-register-mode layout: channel base offsets and registers within a channel.
MM2S, S2MM = 0x00, 0x30
DMACR, DMASR, ADDRESS, ADDRESS_MSB, LENGTH = 0x00, 0x04, 0x18, 0x1C, 0x28
DMACR_RS, DMACR_RESET = 0x1, 0x4
DMASR_HALTED, DMASR_IDLE = 0x1, 0x2
#: DMASR error bits with their PG021 names and meanings.
DMASR_ERRORS = {
    0x010: ("DMAIntErr", "internal error: a zero transfer length, or a stream/length mismatch"),
    0x020: ("DMASlvErr", "slave error: the memory interconnect refused a read or write"),
    0x040: ("DMADecErr", "decode error: the buffer address does not decode to memory"),
    0x100: ("SGIntErr", "scatter-gather internal error"),
    0x200: ("SGSlvErr", "scatter-gather slave error"),
    0x400: ("SGDecErr", "scatter-gather decode error"),
}
DMASR_ERROR_MASK = sum(DMASR_ERRORS)

# Vitis HLS ap_ctrl_hs control register (offset 0x00 of s_axi_control).
AP_CTRL = 0x00
AP_START, AP_DONE, AP_IDLE, AP_READY = 0x1, 0x2, 0x4, 0x8


def dma_error_bits(status: int) -> list[str]:
    """Names of the error bits set in a DMASR value."""
    return [name for bit, (name, _) in DMASR_ERRORS.items() if status & bit]


def _poll(conditions: dict[str, Callable[[], bool]], deadline: float, timeout: float, what: str,
          check: Callable[[], None] | None = None) -> None:
    """Poll until every condition holds, calling ``check`` (which may raise) on each round.

    Spins for the first millisecond (transfers of a few images finish in microseconds), then
    sleeps with a growing back-off of at most 1 ms so a long batch does not burn a core.

    Raises:
        DeviceTimeoutError: naming the conditions still unmet at the deadline.
    """
    pending = dict(conditions)
    start = time.monotonic()
    sleep = 0.0
    while True:
        if check is not None:
            check()
        for name in list(pending):
            if pending[name]():
                del pending[name]
        if not pending:
            return
        now = time.monotonic()
        if now >= deadline:
            raise DeviceTimeoutError(
                f"{what} did not finish within {timeout:g} s: still waiting for {', '.join(pending)} "
                "(raise the driver's `timeout` if batches legitimately take longer)", list(pending), timeout)
        if now - start > 1e-3:
            sleep = min(1e-3, max(2e-5, sleep * 2))
            time.sleep(sleep)


class VitcodOverlay(VitcodDriver, pynq.Overlay):
    """The ViTCoD overlay on a PYNQ device: ``pynq.Overlay`` + the driver API.

    Args:
        overlay_dir: folder with ``vitcod.json`` (and, by default, the .bit/.hwh it names).
        bitfile: the bitstream to load instead of the one vitcod.json names (its .hwh must sit
            next to it).
        metadata: metadata to use instead of reading ``<overlay_dir>/vitcod.json``.
        device: the pynq device (default: the active one; an ``EmulatedDevice`` for the
            emulated backend).
        download: program the bitstream (as ``pynq.Overlay``).
        verify_files: check the .bit/.hwh SHA-256 against vitcod.json before loading.
        batch_size: images per transfer (default: as many as one transfer may carry).
        timeout: limit in seconds on every wait for the DMA or the IP.
        ignore_version: passed to ``pynq.Overlay`` (bind drivers across IP versions).

    Raises:
        MetadataError: vitcod.json unusable.
        OverlayMismatchError: files, DMA or IP do not match vitcod.json.
        IdentityMismatchError: the IP's identifier registers do not match vitcod.json.
    """

    backend = "pynq"

    def __init__(self, overlay_dir: str | Path, *, bitfile: str | Path | None = None,
                 metadata: OverlayMetadata | None = None, device: Any = None, download: bool = True,
                 verify_files: bool = True, batch_size: int | None = None, timeout: float = DEFAULT_TIMEOUT_S,
                 ignore_version: bool = False):
        overlay_dir = Path(overlay_dir)
        meta = metadata if metadata is not None else OverlayMetadata.load(overlay_dir)
        bitfile = Path(bitfile) if bitfile is not None else meta.file_path("bitstream", overlay_dir)
        hwh = bitfile.with_suffix(".hwh")
        for path, what in ((bitfile, "bitstream"), (hwh, ".hwh (must sit next to the .bit, same base name)")):
            if not path.is_file():
                raise OverlayMismatchError(f"{path} not found: the overlay's {what}")
        if verify_files:
            meta.verify_files(bitstream=bitfile, hwh=hwh)
        self.backend = getattr(device, "vitcod_backend", "pynq")
        self._dma = self._ip = None
        self._process_lock = None
        self._lock, self._buffers = threading.RLock(), {}
        self.timeout = timeout  # validated (finite, > 0) before anything touches the device
        target = device if device is not None else self._active_device()
        name = str(getattr(target, "name", None) or getattr(target, "tag", None) or type(target).__name__)
        self._claim(target, f"device {name!r}")
        try:
            if self.backend == "pynq":
                self._process_lock = process_lock(name)
            pynq.Overlay.__init__(self, str(bitfile.resolve()), download=download, device=device,
                                  ignore_version=ignore_version)
            self._bind(meta)
            self._setup_driver(meta, batch_size=batch_size, timeout=timeout,
                               transfer_limit_bytes=self._dma.buffer_max_size)
            self.check_identity()
        except BaseException:
            self.close()  # release the device (and the lock file) claimed above
            raise

    @staticmethod
    def _active_device() -> Any:
        """pynq's device of this board, or a clear error where there is none."""
        try:
            return pynq.Device.active_device
        except RuntimeError as exc:  # pynq: "No Devices Found"
            raise NoDeviceError(f"expected a PYNQ board for the pynq backend, got none on this machine (pynq: {exc}); "
                                "without a board use the csim or emulated backend") from None

    # ---- binding ---------------------------------------------------------------------------------------
    def _cell_key(self, name: str) -> str:
        """The ip_dict key of cell ``name``, at the top level or inside a hierarchy."""
        keys = [k for k in self.ip_dict if k == name or k.endswith("/" + name)]
        if len(keys) != 1:
            raise OverlayMismatchError(
                f"vitcod.json names the cell {name!r}, but the .hwh has {'several' if keys else 'no'} such IP "
                f"(addressable IP: {sorted(self.ip_dict)})")
        return keys[0]

    def _driver_for(self, key: str) -> Any:
        """The driver pynq bound to the IP at ip_dict ``key``."""
        obj: Any = self
        for part in key.split("/"):
            obj = getattr(obj, part)
        return obj

    def _start_dma_channels(self, entry: dict[str, Any]) -> None:
        """Set DMACR.RS on both channels and wait (bounded) until they run, so that the
        constructor of pynq's DMA driver, which spins on the same condition without a limit,
        returns at once."""
        mmio = pynq.MMIO(entry["phys_addr"], 0x100, device=self.device)
        deadline = time.monotonic() + self.wait_timeout
        for channel in (MM2S, S2MM):
            mmio.write(channel + DMACR, DMACR_RS)
            _poll({f"DMA channel {channel:#x} running": lambda c=channel: not mmio.read(c + DMASR) & DMASR_HALTED},
                  deadline, self.wait_timeout, "starting the DMA")

    def _bind(self, meta: OverlayMetadata) -> None:
        dma_key, ip_key = self._cell_key(meta.dma_name), self._cell_key(meta.ip_name)
        if self.ip_dict[dma_key].get("type", "").startswith("xilinx.com:ip:axi_dma:"):
            self._start_dma_channels(self.ip_dict[dma_key])
        dma = self._driver_for(dma_key)
        if not isinstance(dma, DMA):
            raise OverlayMismatchError(
                f"{dma_key} is of type {self.ip_dict[dma_key]['type']}, bound to {type(dma).__name__}, not "
                "pynq.lib.dma.DMA (an AXI DMA of another version? try ignore_version=True)")
        params = self.ip_dict[dma_key].get("parameters", {})
        problems = []
        if int(params.get("c_include_sg", 0)):
            problems.append("scatter-gather is enabled (c_include_sg=1); the IP needs the simple mode")
        if "c_sg_length_width" in params and int(params["c_sg_length_width"]) != meta.dma_length_width:
            problems.append(f"c_sg_length_width is {params['c_sg_length_width']}, vitcod.json records {meta.dma_length_width}")
        for key in ("c_m_axis_mm2s_tdata_width", "c_s_axis_s2mm_tdata_width"):
            if key in params and int(params[key]) != 64:
                problems.append(f"{key} is {params[key]}, the stream is 64 bits wide")
        if dma.sendchannel is None or dma.recvchannel is None:
            problems.append("both DMA channels (MM2S and S2MM) must be enabled")
        if problems:
            raise OverlayMismatchError(f"the DMA {dma_key} does not match vitcod.json: " + "; ".join(problems))
        if self.ip_dict[ip_key]["type"] != meta.ip_vlnv:
            raise OverlayMismatchError(f"{ip_key} is of type {self.ip_dict[ip_key]['type']}, vitcod.json expects {meta.ip_vlnv}")
        self._dma, self._ip = dma, self._driver_for(ip_key)
        self._regs = meta.registers

    # ---- transport hooks --------------------------------------------------------------------------------
    def _allocate_words(self, n_words: int) -> Any:
        return pynq.allocate((n_words,), dtype=np.uint64, target=self.device)

    def _dma_status(self, channel: int) -> int:
        return self._dma.read(channel + DMASR)

    def _check_dma_errors(self) -> None:
        for channel, name in ((MM2S, "MM2S"), (S2MM, "S2MM")):
            status = self._dma_status(channel)
            if status & DMASR_ERROR_MASK:
                bits = dma_error_bits(status)
                meaning = "; ".join(f"{DMASR_ERRORS[b][0]} = {DMASR_ERRORS[b][1]}" for b in DMASR_ERRORS if status & b)
                raise DmaError(f"DMA {name} channel reported {', '.join(bits)} (DMASR={status:#06x}): {meaning}",
                               name, bits, status)

    def _ip_done(self) -> Callable[[], bool]:
        """A condition for "the IP finished": ap_done (clear-on-read, so remembered) or idle with
        ap_start consumed."""
        seen = {"done": False}

        def done() -> bool:
            if not seen["done"]:
                ctrl = self._ip.read(AP_CTRL)
                seen["done"] = bool(ctrl & AP_DONE) or (bool(ctrl & AP_IDLE) and not ctrl & AP_START)
            return seen["done"]
        return done

    def _read_identity(self) -> dict[str, int]:
        self._ensure_ip_idle()
        self._ip.write(self._regs["batch_count"], 0)
        self._ip.write(AP_CTRL, AP_START)
        _poll({"IP ap_done": self._ip_done()}, time.monotonic() + self.wait_timeout, self.wait_timeout,
              "the identify run (batch_count=0)")
        return {name: self._ip.read(self._regs[name]) for name in IDENTITY_REGISTERS}

    def _ensure_ip_idle(self) -> None:
        if not self._ip.read(AP_CTRL) & AP_IDLE:
            log.warning("%s: the IP is busy before a new run; recovering", self.backend)
            self._recover()

    def _execute(self, in_buf: Any, out_buf: Any, n_images: int, *, batch_count: int | None = None,
                 in_words: int | None = None) -> None:
        """One transfer of ``n_images`` images (``batch_count`` / ``in_words``: write another batch
        count, or send another number of words, than ``n_images`` needs - only tests do, to provoke
        the IP's TLAST handling)."""
        meta = self.metadata
        in_bytes = (n_images * meta.input.words_per_image if in_words is None else in_words) * 8
        out_bytes = n_images * meta.output.bytes_per_image
        wait = self.wait_timeout
        self._ensure_ip_idle()
        self._ip.write(self._regs["batch_count"], n_images if batch_count is None else batch_count)
        self._dma.recvchannel.transfer(out_buf, nbytes=out_bytes)
        self._dma.sendchannel.transfer(in_buf, nbytes=in_bytes)  # flushes the input buffer
        self._ip.write(AP_CTRL, AP_START)
        _poll({"MM2S idle": lambda: bool(self._dma_status(MM2S) & DMASR_IDLE),
               "S2MM idle": lambda: bool(self._dma_status(S2MM) & DMASR_IDLE),
               "IP ap_done": self._ip_done()},
              time.monotonic() + wait, wait, f"a transfer of {n_images} images", check=self._check_dma_errors)
        out_buf.invalidate()
        received = self._dma.read(S2MM + LENGTH)
        done = self._ip.read(self._regs["batch_done"])
        problems, bits = run_problems(n_images, meta, batch_done=done, status=self._ip.read(self._regs["status"]),
                                      words_read=self._ip.read(self._regs["words_read"]),
                                      output_words=received // 8 if received % 8 == 0 else None)
        if received % 8:
            problems.append(f"the DMA received {received} bytes, not a whole number of 64-bit words")
        if problems:
            raise StreamError(f"a transfer of {n_images} images: " + "; ".join(problems), bits, done)

    # ---- recovery -----------------------------------------------------------------------------------
    def _restart_dma(self) -> None:
        """Soft-reset the DMA (both channels) and start them again, each wait bounded."""
        wait = self.wait_timeout
        deadline = time.monotonic() + wait
        self._dma.write(MM2S + DMACR, DMACR_RESET)
        _poll({"DMA reset to clear": lambda: not self._dma.read(MM2S + DMACR) & DMACR_RESET},
              deadline, wait, "the DMA soft reset")
        for channel, pynq_channel in ((MM2S, self._dma.sendchannel), (S2MM, self._dma.recvchannel)):
            self._dma.write(channel + DMACR, DMACR_RS)
            _poll({f"DMA channel {channel:#x} running": lambda c=channel: not self._dma_status(c) & DMASR_HALTED},
                  deadline, wait, "the DMA restart")
            pynq_channel.start()  # returns at once (the channel runs); resets pynq's first-transfer state

    def _recover(self) -> None:
        self.recoveries += 1
        log.warning("%s: resetting the DMA (after a failed transfer, or the IP was found busy)", self.backend)
        self._restart_dma()
        if not self._ip.read(AP_CTRL) & AP_IDLE:
            log.warning("%s: the IP stayed busy after a DMA reset; downloading the bitstream again", self.backend)
            self.download()
            self._restart_dma()
            if not self._ip.read(AP_CTRL) & AP_IDLE:
                raise DeviceError("the IP is still busy after the bitstream was downloaded again; "
                                  "reset the board's programmable logic (or power-cycle the board)")
            self.check_identity()

    def recover(self) -> None:
        """Reset the DMA and, if the IP is stuck, reload the bitstream (done automatically after
        a failed transfer)."""
        with self._lock:
            self._recover()

    def _release_transport(self) -> None:
        if self._process_lock is not None:
            self._process_lock.close()
            self._process_lock = None
