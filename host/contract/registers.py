"""The IP's register map (AXI4-Lite bundle ``control``) and its status bits: one table.

Where this fits: the IP top pins these offsets with ``#pragma HLS INTERFACE`` lines in
``overlay/ip/vitcod_top.cpp`` (argument order = table order); ``tests/overlay/test_overlay_registers.py``
compares those lines with :func:`hls_interface_pragmas` of this table, and the dry-run check of
the Vitis HLS step (``vitcod.overlay.dryrun.checks``) compares the interface the stub read from the
C++ with it too. The overlay build records the table in ``vitcod.json``; the driver refuses a
``vitcod.json`` whose map differs, and reads the IP's identity from the read-only registers.
Adding a register: append it here (offsets 8 apart, ap_vld at +4, below 0x80 so the AXI4-Lite
address stays 7 bits), add the argument and pragma to ``vitcod_top.cpp`` / ``run_top``, and bump
:data:`~.packing.FORMAT_VERSION`.
"""

from __future__ import annotations

from dataclasses import dataclass

BUNDLE = "control"
"""The AXI4-Lite bundle of the registers (RTL port ``s_axi_control``)."""


@dataclass(frozen=True)
class Register:
    """One 32-bit register of the IP.

    Attributes:
        name: the C argument of ``vitcod_top`` (and the name in ``vitcod.json``).
        offset: byte offset in the IP's AXI4-Lite space.
        access: ``"rw"`` (the host writes it) or ``"ro"`` (the IP writes it; its ap_vld bit sits
            at ``offset + 4``).
        description: what it holds.
    """

    name: str
    offset: int
    access: str
    description: str


REGISTERS: tuple[Register, ...] = (
    Register("batch_count", 0x10, "rw", "images in this run (0: only refresh the read-only registers)"),
    Register("batch_done", 0x18, "ro", "images read whole and processed by the last run"),
    Register("status", 0x20, "ro", "what the last run met: STATUS_BITS (0: a clean run)"),
    Register("format_version", 0x28, "ro", "wire format / register map version"),
    Register("model_id_lo", 0x30, "ro", "model identifier, bits 31..0"),
    Register("model_id_hi", 0x38, "ro", "model identifier, bits 63..32"),
    Register("in_values", 0x40, "ro", "input values per image (as the network's C function declares its input)"),
    Register("in_words", 0x48, "ro", "input words per image"),
    Register("out_values", 0x50, "ro", "output values per image (as the network's C function declares its output)"),
    Register("out_words", 0x58, "ro", "output words per image"),
    Register("max_batch", 0x60, "ro", "largest batch_count honoured"),
    Register("in_type", 0x68, "ro", "the C++ input type's code (contract.type_code)"),
    Register("out_type", 0x70, "ro", "the C++ output type's code (contract.type_code)"),
    Register("words_read", 0x78, "ro", "input words the last run took from the stream (processed and drained)"),
)
"""The register map of wire format 2, in the order of ``vitcod_top``'s arguments."""

READ_ONLY_REGISTERS: tuple[str, ...] = tuple(r.name for r in REGISTERS if r.access == "ro")
"""What the IP writes on every run (its identity and what the last run did), in register order."""

CONTROL_REGISTERS = {"ap_ctrl": 0x00, "gie": 0x04, "ier": 0x08, "isr": 0x0C}
"""The block-level registers Vitis HLS puts below the map (ap_ctrl_hs)."""

STATUS_BITS = {"tlast_early": 1, "tlast_missing": 2, "batch_clamped": 4, "drain_limit": 8}
"""Bits of the ``status`` register (``enum top_status_bits`` in ``vitcod_top.h``):

* ``tlast_early`` - TLAST came before the batch's last input word: the IP stopped reading there;
  the image it was reading (if incomplete) was not processed, its output slot is zeros and carries
  TLAST, so the S2MM packet ends; ``batch_done`` counts the images read whole.
* ``tlast_missing`` - the batch's last input word had no TLAST: the IP read and discarded words
  until TLAST (the AXI DMA ends every MM2S transfer with it), so the MM2S transfer finishes.
* ``batch_clamped`` - ``batch_count`` exceeded ``max_batch``: ``max_batch`` images were processed
  and the rest of the transfer drained (``tlast_missing`` is set too).
* ``drain_limit`` - draining stopped after the longest transfer the DMA can make without seeing
  TLAST (the stream did not come from the AXI DMA); the source may still hold words.

``words_read`` counts every input word taken (processed and drained)."""

STATUS_MEANINGS = {
    "tlast_early": "TLAST came before the batch's last input word (the IP stopped reading there)",
    "tlast_missing": "the batch's last input word had no TLAST (the IP drained the rest of the transfer)",
    "batch_clamped": "batch_count exceeded max_batch (only max_batch images were processed)",
    "drain_limit": "no TLAST within the longest DMA transfer (the stream source may still hold words)",
}
"""One line per status bit, for error messages."""


def register_map() -> dict[str, dict[str, int | str]]:
    """``{name: {"offset", "access"}}``, as ``vitcod.json`` records the map."""
    return {r.name: {"offset": r.offset, "access": r.access} for r in REGISTERS}


def hls_interface_pragmas() -> list[str]:
    """The ``#pragma HLS INTERFACE`` lines that pin the map in ``overlay/ip/vitcod_top.cpp``."""
    return [f"#pragma HLS INTERFACE mode=s_axilite port={r.name} bundle={BUNDLE} offset={r.offset:#04x}"
            for r in REGISTERS]
