"""The emulated board: a ``pynq.Device`` whose AXI DMA and vitcod_top IP are register models.

Where this fits: without a board, the pynq backend (:class:`~vitcod.host.overlay.VitcodOverlay`)
and PYNQ's own ``pynq.lib.dma.DMA`` driver run *unchanged* against :class:`EmulatedDevice`, the
pattern PYNQ's tests use for mock devices (a ``pynq.Device`` subclass with the ``REGISTER_RW``
capability). Only the hardware below the registers is modelled:

* **Overlay.** ``pynq.Overlay`` is built from a small ``.hwh`` generated from ``vitcod.json``
  (:func:`emulation_hwh`: a Zynq-7000 PS whose GP0 master addresses an ``axi_dma`` 7.1 and the IP,
  with the DMA parameters of the real block design) and a placeholder ``.bit``. pynq parses it
  with its own metadata parser and binds ``pynq.lib.dma.DMA`` to the DMA cell, exactly as on a
  board. Two things differ from a board: "downloading" resets the models instead of programming
  a PL, and the parser's ``clock_dict`` is emptied (there are no PS clock registers to program).
* **Memory.** :meth:`EmulatedDevice.allocate` returns real ``pynq.buffer.PynqBuffer`` objects at
  made-up physical addresses, with a *separate* copy standing for DDR: ``flush()`` copies the
  CPU's view to DDR, ``invalidate()`` copies DDR back, so a driver that forgets either reads stale
  data, as on a non-coherent Zynq.
* **AXI DMA** (:class:`AxiDmaModel`, PG021 direct-register mode): MM2S/S2MM ``DMACR``, ``DMASR``,
  ``SA``/``DA`` (+MSB) and ``LENGTH`` at their standard offsets; DMACR.RS (run/stop) and
  DMACR.Reset; DMASR Halted/Idle/IOC and the error bits. Writing ``LENGTH`` arms a transfer; a
  zero length sets DMAIntErr, an address outside any allocated buffer sets DMADecErr (both also
  halt the channel). S2MM's LENGTH reads back the bytes received once the packet (TLAST) ended.
* **IP** (:class:`VitcodIpModel`): ap_ctrl_hs (ap_start, clear-on-read ap_done, ap_idle,
  ap_ready), ``batch_count`` and the read-only registers with their ap_vld bits, at the offsets
  of ``vitcod.json``.

When the IP is started and both channels are armed (in any order), the device runs the C
simulation of the IP top (:class:`~vitcod.host.csim_backend.CsimLibrary`) on the words in the MM2S buffer
(TLAST on the last, as the DMA sends them) and writes its output into the S2MM buffer, then sets the
status bits as the hardware would: both channels Idle + IOC, the IP ap_done/ap_idle. A malformed
transfer plays out as on hardware, because the same C++ top decides: the IP stops at an early TLAST
and ends its output packet there (S2MM completes with fewer bytes, LENGTH says how many), and it
drains a longer transfer up to its TLAST (MM2S completes); words the IP leaves unread (its drain
limit) keep MM2S busy; an output packet longer than the S2MM length sets DMAIntErr and leaves the
IP blocked on its output (PG021 does not say whether the DMA then keeps TREADY high; the model takes
the worse case, which the driver recovers from by reloading the bitstream).
:meth:`EmulatedDevice.inject_fault` makes the next run hang or set a DMA error bit.

Memory is handed out first-fit from a free list, and a freed buffer's range is reused, so a
long-running user (a notebook, a CI soak) never exhausts the emulated DDR.

The models are driven synchronously from register writes; there is no time in them.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import struct
import threading
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pynq
from pynq.buffer import PynqBuffer

from ..fileio import atomic_write
from .csim_backend import RUN_INPUT_SHORT, CsimLibrary, cache_dir, simulated_ip
from .driver import DEFAULT_TIMEOUT_S, IDENTITY_REGISTERS
from .errors import DeviceError
from .guards import timeout_seconds
from .metadata import OverlayMetadata
from .emulated_hwh import DMA_BASE, IP_BASE, REGISTER_SPACE, emulation_hwh  # noqa: F401 - (their earlier home)
from .overlay import (AP_CTRL, AP_DONE, AP_IDLE, AP_READY, AP_START, ADDRESS, ADDRESS_MSB, DMACR, DMACR_RESET,
                      DMACR_RS, DMASR, DMASR_ERRORS, DMASR_HALTED, DMASR_IDLE, LENGTH, MM2S, S2MM, VitcodOverlay)

log = logging.getLogger(__name__)

DDR_BASE, DDR_SIZE = 0x1000_0000, 0x1000_0000  # where buffers are placed (inside HP0's DDR window)
BUFFER_ALIGN = 4096
DMASR_IOC_IRQ, DMASR_DLY_IRQ, DMASR_ERR_IRQ = 0x1000, 0x2000, 0x4000
FAULTS = ("hang",) + tuple(name for name, _ in DMASR_ERRORS.values() if name.startswith("DMA"))


# ---- models ---------------------------------------------------------------------------------------------
@dataclass
class _Allocation:
    address: int
    nbytes: int
    ddr: np.ndarray  # uint8: what the PL sees


class _Channel:
    """One DMA channel's registers and transfer state."""

    def __init__(self, name: str):
        self.name = name
        self.reset()

    def reset(self) -> None:
        self.dmacr = 0
        self.dmasr = DMASR_HALTED
        self.address = 0
        self.address_msb = 0
        self.length = 0
        self.armed = False

    @property
    def running(self) -> bool:
        return not self.dmasr & DMASR_HALTED

    def complete(self, nbytes: int | None = None) -> None:
        if nbytes is not None:
            self.length = nbytes
        self.dmasr |= DMASR_IDLE | DMASR_IOC_IRQ
        self.armed = False

    def fail(self, bit: int) -> None:
        self.dmasr |= bit | DMASR_HALTED | DMASR_ERR_IRQ
        self.dmacr &= ~DMACR_RS
        self.armed = False


class AxiDmaModel:
    """AXI DMA 7.1 in direct-register mode, as far as the driver can observe it (module docstring)."""

    def __init__(self, device: "EmulatedDevice"):
        self.device = device
        self.mm2s = _Channel("MM2S")
        self.s2mm = _Channel("S2MM")

    def reset(self) -> None:
        self.mm2s.reset()
        self.s2mm.reset()

    def _channel(self, offset: int) -> tuple[_Channel, int]:
        return (self.s2mm, offset - S2MM) if offset >= S2MM else (self.mm2s, offset - MM2S)

    def read(self, offset: int) -> int:
        ch, reg = self._channel(offset)
        return {DMACR: ch.dmacr, DMASR: ch.dmasr, ADDRESS: ch.address, ADDRESS_MSB: ch.address_msb,
                LENGTH: ch.length}.get(reg, 0)

    def write(self, offset: int, value: int) -> None:
        ch, reg = self._channel(offset)
        if reg == DMACR:
            if value & DMACR_RESET:  # resets the whole DMA; the bit clears itself when done
                self.reset()
                return
            ch.dmacr = value
            if value & DMACR_RS:
                ch.dmasr &= ~DMASR_HALTED
            else:
                ch.dmasr |= DMASR_HALTED
                ch.armed = False
        elif reg == DMASR:
            ch.dmasr &= ~(value & (DMASR_IOC_IRQ | DMASR_DLY_IRQ | DMASR_ERR_IRQ))  # write 1 to clear
        elif reg == ADDRESS:
            ch.address = value
        elif reg == ADDRESS_MSB:
            ch.address_msb = value
        elif reg == LENGTH:
            self._start(ch, value)

    def _start(self, ch: _Channel, nbytes: int) -> None:
        if not ch.running:
            log.warning("emulated DMA: %s LENGTH written while halted; ignored", ch.name)
            return
        ch.length = nbytes
        ch.dmasr &= ~DMASR_IDLE
        if nbytes == 0:
            ch.fail(0x010)  # DMAIntErr
            return
        if self.device.ddr((ch.address_msb << 32) | ch.address, nbytes) is None:
            ch.fail(0x040)  # DMADecErr: no memory at that address
            return
        ch.armed = True
        self.device.try_run()

    def buffer(self, ch: _Channel) -> np.ndarray:
        return self.device.ddr((ch.address_msb << 32) | ch.address, ch.length)


class VitcodIpModel:
    """The vitcod_top IP's AXI4-Lite side: ap_ctrl_hs + the registers of vitcod.json."""

    def __init__(self, device: "EmulatedDevice", registers: dict[str, int]):
        self.device = device
        self.offsets = dict(registers)
        taken: dict[int, str] = {}
        for name, offset in self.offsets.items():
            if isinstance(offset, bool) or not isinstance(offset, int):
                raise ValueError(f"register {name}: expected an integer offset, got {offset!r}")
        for name, offset in sorted(self.offsets.items(), key=lambda item: item[1]):
            slots = [offset] + ([offset + 4] if name in IDENTITY_REGISTERS else [])  # a read-only one has ap_vld
            for slot in slots:
                if slot % 4 or not 0x10 <= slot < REGISTER_SPACE:
                    raise ValueError(f"register {name}: expected a word offset in 0x10..{REGISTER_SPACE - 4:#x}, "
                                     f"got {offset!r}")
                if slot in taken:
                    raise ValueError(f"register {name}: offset {slot:#x} is already taken by {taken[slot]}")
                taken[slot] = name
        self.by_offset = {off: name for name, off in registers.items()}
        self.reset()

    def reset(self) -> None:
        self.start = False      # ap_start set, not yet taken by the IP
        self.busy = False       # running (ap_idle low)
        self.done = False       # ap_done, clear on read
        self.ready = False      # ap_ready, clear on read
        self.interrupt_regs = {0x04: 0, 0x08: 0, 0x0C: 0}
        self.values = {name: 0 for name in self.offsets}
        self.valid = {name: False for name in self.offsets}

    def read(self, offset: int) -> int:
        if offset == AP_CTRL:
            value = (AP_START * self.start | AP_DONE * self.done | AP_IDLE * (not self.busy and not self.start)
                     | AP_READY * self.ready)
            self.done = self.ready = False
            return value
        if offset in self.interrupt_regs:
            return self.interrupt_regs[offset]
        if offset in self.by_offset:
            return self.values[self.by_offset[offset]]
        if offset - 4 in self.by_offset and self.by_offset[offset - 4] != "batch_count":
            name = self.by_offset[offset - 4]
            valid, self.valid[name] = self.valid[name], False
            return int(valid)
        return 0

    def write(self, offset: int, value: int) -> None:
        if offset == AP_CTRL:
            if value & AP_START and not self.busy:
                self.start = True
                self.device.try_run()
        elif offset in self.interrupt_regs:
            self.interrupt_regs[offset] = value
        elif self.by_offset.get(offset) == "batch_count":
            self.values["batch_count"] = value

    def take_start(self) -> None:
        """The IP accepted ap_start: busy until :meth:`finish`."""
        self.start = False
        self.busy = True
        self.ready = True

    def finish(self, registers: dict[str, int]) -> None:
        for name, value in registers.items():
            if name in self.values:
                self.values[name] = value
                self.valid[name] = True
        self.busy = False
        self.done = True


class EmulatedDevice(pynq.Device):
    """A ``pynq.Device`` on which ``pynq.Overlay`` and ``pynq.lib.dma.DMA`` run against register
    models backed by the C simulation (see the module docstring).

    Args:
        library: the C simulation of the IP top that does the computing.
        ip_vlnv: the IP's type in the .hwh (the cell whose registers :class:`VitcodIpModel` models).
        registers: the IP's register offsets (vitcod.json's register map).
        tag: pynq device tag.

    Attributes:
        stats: counters of ``runs``, ``flushes``, ``invalidates``, ``downloads``.
    """

    vitcod_backend = "emulated"

    def __init__(self, library: CsimLibrary, ip_vlnv: str, registers: dict[str, int], tag: str = "vitcod-emulated"):
        super().__init__(tag)
        self.capabilities = {"REGISTER_RW": True}
        self.library = library
        self.ip_vlnv = ip_vlnv
        self.dma = AxiDmaModel(self)
        self.ip = VitcodIpModel(self, registers)
        self._regions: list[tuple[int, int, Any]] = []
        self._allocations: dict[int, _Allocation] = {}
        self._free: list[tuple[int, int]] = [(DDR_BASE, DDR_SIZE)]  # (address, size), sorted, coalesced
        self._memory_lock = threading.RLock()  # (a buffer may be freed by the GC in any thread, even here)
        self._next_bo = 1
        self._fault: tuple[str, str] | None = None
        self.stats = {"runs": 0, "flushes": 0, "invalidates": 0, "downloads": 0}

    # ---- what pynq.Overlay calls --------------------------------------------------------------------
    def get_bitfile_metadata(self, bitfile_name: str) -> Any:
        from pynq.metadata.runtime_metadata_parser import RuntimeMetadataParser
        from pynqmetadata.frontends import Metadata

        hwh = Path(bitfile_name).with_suffix(".hwh")
        parser = RuntimeMetadataParser(Metadata(input=str(hwh)))
        parser.clock_dict = {}  # no PS clock registers to program in emulation
        self._regions = []
        for name, entry in parser.ip_dict.items():
            if "phys_addr" not in entry:
                continue
            if entry["type"].startswith("xilinx.com:ip:axi_dma:"):
                model: Any = self.dma
            elif entry["type"] == self.ip_vlnv:
                model = self.ip
            else:
                continue
            self._regions.append((entry["phys_addr"], entry["phys_addr"] + entry["addr_range"], model))
        return parser

    def download(self, bitstream: Any, parser: Any = None) -> None:
        """"Program" the PL: reset the DMA and IP models (as a new configuration would)."""
        self.dma.reset()
        self.ip.reset()
        self._fault = None
        self.stats["downloads"] += 1
        self.post_download(bitstream, parser)

    def _model_at(self, address: int, length: int) -> tuple[Any, int]:
        for base, end, model in self._regions:
            if base <= address and address + length <= end:
                return model, address - base
        raise DeviceError(f"emulated bus error: no register at {address:#x} (+{length} bytes)")

    def read_registers(self, address: int, length: int) -> bytes:
        if address % 4 or length % 4:
            raise DeviceError(f"emulated bus error: unaligned register read at {address:#x} ({length} bytes)")
        model, offset = self._model_at(address, length)
        return b"".join(struct.pack("<I", model.read(offset + i) & 0xFFFFFFFF) for i in range(0, length, 4))

    def write_registers(self, address: int, data: bytes) -> None:
        if address % 4 or len(data) % 4:
            raise DeviceError(f"emulated bus error: unaligned register write at {address:#x} ({len(data)} bytes)")
        model, offset = self._model_at(address, len(data))
        for i in range(0, len(data), 4):
            model.write(offset + i, struct.unpack_from("<I", data, i)[0])

    # ---- memory -------------------------------------------------------------------------------------------
    def allocate(self, shape: Any, dtype: Any = "u4", **kwargs: Any) -> PynqBuffer:
        """A PynqBuffer at a made-up physical address, with a separate DDR copy (non-coherent).

        Addresses come first-fit from the free list; a buffer's range returns to it when the
        buffer is garbage-collected.
        """
        nbytes = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
        size = max(BUFFER_ALIGN, -(-nbytes // BUFFER_ALIGN) * BUFFER_ALIGN)
        with self._memory_lock:
            slot = next((i for i, (_, free) in enumerate(self._free) if free >= size), None)
            if slot is None:
                raise MemoryError(f"emulated DDR exhausted: cannot allocate {nbytes} bytes "
                                  f"({len(self._allocations)} buffers live)")
            address, free = self._free[slot]
            if free == size:
                del self._free[slot]
            else:
                self._free[slot] = (address + size, free - size)
            bo = self._next_bo
            self._next_bo += 1
        buf = PynqBuffer(shape, dtype, device=self, device_address=address, bo=bo, coherent=False)
        buf[...] = 0
        self._allocations[bo] = _Allocation(address, nbytes, np.zeros(nbytes, dtype=np.uint8))
        weakref.finalize(buf, self._release, bo, address, size)
        return buf

    def _release(self, bo: int, address: int, size: int) -> None:
        """Return a freed buffer's range to the free list (merged with its neighbours)."""
        with self._memory_lock:
            self._release_locked(bo, address, size)

    def _release_locked(self, bo: int, address: int, size: int) -> None:
        self._allocations.pop(bo, None)
        free = self._free
        i = next((k for k, (a, _) in enumerate(free) if a > address), len(free))
        free.insert(i, (address, size))
        if i + 1 < len(free) and address + size == free[i + 1][0]:  # merge with the next block
            free[i] = (address, size + free.pop(i + 1)[1])
        if i > 0 and free[i - 1][0] + free[i - 1][1] == address:  # and with the previous one
            prev = free.pop(i - 1)
            free[i - 1] = (prev[0], prev[1] + free[i - 1][1])

    @property
    def free_bytes(self) -> int:
        """Emulated DDR not held by a live buffer."""
        return sum(size for _, size in self._free)

    def ddr(self, address: int, nbytes: int) -> np.ndarray | None:
        """The DDR bytes ``[address, address + nbytes)`` if they lie in one allocated buffer."""
        for alloc in self._allocations.values():
            if alloc.address <= address and address + nbytes <= alloc.address + alloc.nbytes:
                return alloc.ddr[address - alloc.address:address - alloc.address + nbytes]
        return None

    @staticmethod
    def _host_bytes(vaddr: int, nbytes: int) -> np.ndarray:
        return np.ctypeslib.as_array((ctypes.c_uint8 * nbytes).from_address(vaddr))

    def flush(self, bo: int, offset: int, vaddr: int, nbytes: int) -> None:
        """CPU caches -> DDR for one buffer range."""
        self.stats["flushes"] += 1
        alloc = self._allocations[bo]
        alloc.ddr[offset:offset + nbytes] = self._host_bytes(vaddr, nbytes)

    def invalidate(self, bo: int, offset: int, vaddr: int, nbytes: int) -> None:
        """DDR -> the CPU's view for one buffer range."""
        self.stats["invalidates"] += 1
        alloc = self._allocations[bo]
        self._host_bytes(vaddr, nbytes)[:] = alloc.ddr[offset:offset + nbytes]

    # ---- running ---------------------------------------------------------------------------------------------
    def inject_fault(self, kind: str, channel: str = "S2MM") -> None:
        """Make the next run fail (one shot; a download clears it).

        Args:
            kind: ``"hang"``: the IP takes the next ap_start (an identify run too) and never
                finishes, so the DMA channels of a transfer stay busy. Or a DMA error bit name,
                ``"DMAIntErr"``, ``"DMASlvErr"`` or ``"DMADecErr"``: the next transfer sets it on
                ``channel`` (which halts that channel; the IP then waits forever for its stream).
            channel: ``"MM2S"`` or ``"S2MM"``.
        """
        if kind not in FAULTS:
            raise ValueError(f"unknown fault {kind!r}; expected one of {FAULTS}")
        if channel not in ("MM2S", "S2MM"):
            raise ValueError(f"channel must be 'MM2S' or 'S2MM', got {channel!r}")
        self._fault = (kind, channel)

    def try_run(self) -> None:
        """Run the IP if it was started and its streams are ready (called on every relevant write)."""
        ip, mm2s, s2mm = self.ip, self.dma.mm2s, self.dma.s2mm
        if not ip.start:
            return
        if self._fault is not None and self._fault[0] == "hang":
            self._fault = None
            ip.take_start()  # ... and never finishes
            log.info("emulated device: injected hang")
            return
        batch = ip.values["batch_count"]
        if batch == 0:  # identify run: no stream traffic
            ip.take_start()
            ip.finish(self.library.identify())
            return
        if not (mm2s.armed and s2mm.armed):
            return  # ap_start stays pending (ap_idle low) until both streams are ready
        ip.take_start()
        self.stats["runs"] += 1
        if self._fault is not None:
            kind, channel = self._fault
            self._fault = None
            bit = next(b for b, (name, _) in DMASR_ERRORS.items() if name == kind)
            (mm2s if channel == "MM2S" else s2mm).fail(bit)
            log.info("emulated device: injected %s on %s", kind, channel)
            return  # the IP stays busy: the stream it waits for never comes
        source = self.dma.buffer(mm2s)
        in_words = source[:source.size // 8 * 8].view(np.uint64).copy()  # whole 64-bit beats, TLAST on the last
        capacity = s2mm.length // 8
        out_words = np.zeros(capacity, dtype=np.uint64)
        run = self.library.run(in_words, batch, out_words)
        if run.code == RUN_INPUT_SHORT:  # no word at all: the IP waits for one that never comes
            mm2s.complete()
            return
        stored = min(run.produced, capacity)
        self.dma.buffer(s2mm)[:stored * 8] = out_words[:stored].view(np.uint8)
        blocked = False
        if 0 < run.tlast_at <= capacity:
            s2mm.complete(run.tlast_at * 8)  # the packet ended with TLAST; LENGTH reads back its bytes
        elif run.produced > capacity:
            s2mm.fail(0x010)  # DMAIntErr: the packet is longer than the programmed length...
            blocked = True  # ... and the IP cannot write the rest (see the module docstring)
        # else: no TLAST yet - S2MM keeps waiting
        if run.consumed == in_words.size:
            mm2s.complete()
        # else: the IP stopped reading before the transfer's end (its drain limit); MM2S cannot finish
        if not blocked:
            ip.finish(run.registers)


def open_emulated(overlay_dir: str | Path | None = None, *, network: str | Path | None = None,
                  metadata: OverlayMetadata | None = None, max_batch: int | None = None,
                  library: CsimLibrary | None = None, hwh: str | Path | None = None,
                  workdir: str | Path | None = None, batch_size: int | None = None,
                  timeout: float = DEFAULT_TIMEOUT_S, ip_dir: str | Path | None = None,
                  ap_types: str | Path | None = None, cache: str | Path | None = None) -> VitcodOverlay:
    """The pynq backend on an :class:`EmulatedDevice`: ``VitcodOverlay`` with the real DMA driver.

    Args:
        overlay_dir: folder with ``vitcod.json`` (+ ``network.json`` or ``overlay_config.json``);
            optional when ``network`` and ``max_batch`` are given.
        network, metadata, max_batch, ip_dir, ap_types, cache, library: as for
            :class:`~vitcod.host.csim_backend.CsimDriver`.
        hwh: a .hwh to load instead of the generated one (e.g. a real build's).
        workdir: where the .hwh and the placeholder .bit are written (default: a folder in the
            C-simulation cache named by the .hwh's hash).
        batch_size, timeout: as for :class:`~vitcod.host.overlay.VitcodOverlay`.

    Returns:
        A :class:`~vitcod.host.overlay.VitcodOverlay` whose ``device`` is the emulated device.
    """
    timeout_seconds(timeout, "timeout")  # before the (slow) library build
    metadata, _, library = simulated_ip(overlay_dir, network, metadata, max_batch, library,
                                        ip_dir=ip_dir, ap_types=ap_types, cache=cache, purpose="emulate")
    text = Path(hwh).read_text() if hwh is not None else emulation_hwh(metadata)
    folder = Path(workdir) if workdir is not None else (
        cache_dir(cache) / "emulated" / hashlib.sha256(text.encode()).hexdigest()[:24])
    atomic_write(folder / "vitcod.hwh", text, skip_if_same=True)
    bitfile = folder / "vitcod.bit"
    if not bitfile.is_file():
        atomic_write(bitfile, b"emulated overlay: no bitstream\n")
    device = EmulatedDevice(library, metadata.ip_vlnv, metadata.registers)
    return VitcodOverlay(overlay_dir if overlay_dir is not None else folder, bitfile=bitfile, metadata=metadata,
                         device=device, verify_files=False, batch_size=batch_size, timeout=timeout)
