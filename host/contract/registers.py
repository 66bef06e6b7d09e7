"""The IP's register map (AXI4-Lite bundle ``control``) and its status bits: one table.

Where this fits: the IP top pins these offsets with ``#pragma HLS INTERFACE`` lines in
``overlay/ip/vitcod_top.cpp`` (argument order = table order); ``tests/overlay/test_overlay_registers.py``
compares those lines with :func:`hls_interface_pragmas` of this table, and the dry-run check of
the Vitis HLS step (``vitcod.overlay.dryrun.checks``) compares the interface the stub read from the
C++ with it too. The overlay build records the table in ``vitcod.json``; the driver refuses a
``vitcod.json`` whose map differs, and reads the IP's identity from the read-only registers.
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
    Register("batch_done", 0x18, "ro", "images processed by the last run (batch_count clamped to max_batch)"),
    Register("status", 0x20, "ro", "bit0 TLAST before the last input word, bit1 no TLAST on it, bit2 batch clamped"),
    Register("format_version", 0x28, "ro", "wire format / register map version"),
    Register("model_id_lo", 0x30, "ro", "model identifier, bits 31..0"),
    Register("model_id_hi", 0x38, "ro", "model identifier, bits 63..32"),
    Register("in_values", 0x40, "ro", "input values per image"),
    Register("in_words", 0x48, "ro", "input words per image"),
    Register("out_values", 0x50, "ro", "output values per image"),
    Register("out_words", 0x58, "ro", "output words per image"),
    Register("max_batch", 0x60, "ro", "largest batch_count honoured"),
)
"""The register map of wire format 1, in the order of ``vitcod_top``'s arguments."""

READ_ONLY_REGISTERS: tuple[str, ...] = tuple(r.name for r in REGISTERS if r.access == "ro")
"""What the IP writes on every run (its identity and what the last run did), in register order."""

CONTROL_REGISTERS = {"ap_ctrl": 0x00, "gie": 0x04, "ier": 0x08, "isr": 0x0C}
"""The block-level registers Vitis HLS puts below the map (ap_ctrl_hs)."""

STATUS_BITS = {"tlast_early": 1, "tlast_missing": 2, "batch_clamped": 4}
"""Bits of the ``status`` register (``enum top_status_bits`` in ``vitcod_top.h``)."""


def register_map() -> dict[str, dict[str, int | str]]:
    """``{name: {"offset", "access"}}``, as ``vitcod.json`` records the map."""
    return {r.name: {"offset": r.offset, "access": r.access} for r in REGISTERS}


def hls_interface_pragmas() -> list[str]:
    """The ``#pragma HLS INTERFACE`` lines that pin the map in ``overlay/ip/vitcod_top.cpp``."""
    return [f"#pragma HLS INTERFACE mode=s_axilite port={r.name} bundle={BUNDLE} offset={r.offset:#04x}"
            for r in REGISTERS]
