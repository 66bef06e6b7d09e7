"""The IP's register map, status bits and format version: overlay/ip/vitcod_top.cpp / vitcod_top.h
against the overlay contract's one table (vitcod.host.contract.registers)."""

from __future__ import annotations

import re

import pytest

from vitcod.host import contract
from vitcod.overlay.config import IP_DIR

TOP_CPP = (IP_DIR / "vitcod_top.cpp").read_text()
TOP_H = (IP_DIR / "vitcod_top.h").read_text()


def map_problems(cpp: str) -> list[str]:
    """How the C++ top's s_axilite pragmas and arguments differ from the contract's REGISTERS."""
    problems = []
    pragmas = [line.strip() for line in cpp.splitlines()
               if line.strip().startswith("#pragma HLS INTERFACE mode=s_axilite") and "port=return" not in line]
    if pragmas != contract.hls_interface_pragmas():
        problems.append(f"pragmas {pragmas} != {contract.hls_interface_pragmas()}")
    signature = re.search(r"void vitcod_top\((.*?)\)\s*\{", cpp, re.S)
    args = [a.split()[-1] for a in signature.group(1).split(",")] if signature else []
    registers = [(a.lstrip("&"), "ro" if a.startswith("&") else "rw") for a in args[2:]]
    expected = [(r.name, r.access) for r in contract.REGISTERS]
    if registers != expected:
        problems.append(f"arguments after the streams {registers} != {expected} (ro registers are written by the IP)")
    return problems


def test_cpp_register_map_is_the_contracts():
    assert map_problems(TOP_CPP) == []


@pytest.mark.parametrize("edit", [
    lambda cpp: cpp.replace("port=status bundle=control offset=0x20", "port=status bundle=control offset=0x24"),
    lambda cpp: cpp.replace("unsigned &max_batch", "unsigned max_batch"),
    lambda cpp: cpp.replace("unsigned &in_words, unsigned &out_values", "unsigned &out_values, unsigned &in_words"),
])
def test_a_changed_register_in_the_cpp_is_caught(edit):
    changed = edit(TOP_CPP)
    assert changed != TOP_CPP and map_problems(changed)


def test_status_bits_format_version_and_word_width_are_the_contracts():
    enum = re.search(r"enum top_status_bits \{(.*?)\};", TOP_H, re.S).group(1)
    bits = {name: int(value) for name, value in re.findall(r"status_(\w+)\s*=\s*(\d+)", enum)}
    assert bits == contract.STATUS_BITS
    assert re.search(r"stream_format_version = (\d+);", TOP_H).group(1) == str(contract.FORMAT_VERSION)
    assert re.search(r"axis_width = (\d+);", TOP_H).group(1) == str(contract.WORD_BITS)


def test_read_only_registers_and_vitcod_json_map():
    assert contract.READ_ONLY_REGISTERS == tuple(r.name for r in contract.REGISTERS if r.access == "ro")
    assert contract.register_map()["batch_count"] == {"offset": 0x10, "access": "rw"}
    offsets = [r.offset for r in contract.REGISTERS]
    assert offsets == sorted(offsets) and all(o % 8 == 0 and o >= 0x10 for o in offsets)  # ap_vld at +4
