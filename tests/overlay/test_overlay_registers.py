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
    assert offsets[-1] + 4 < 0x80  # the AXI4-Lite address stays 7 bits (the emulated .hwh says so too)


def mode_table_problems(header: str) -> list[str]:
    """How the C++ type-code tables differ from the contract's mode indices (type_code)."""
    problems = []
    for kind, modes in (("q_code", contract.ROUNDING_MODES), ("o_code", contract.SATURATION_MODES)):
        table = {m: int(v) for m, v in re.findall(rf"struct {kind}<(AP_\w+)> {{ static const unsigned value = (\d+); }}",
                                                  header)}
        expected = {m: i for i, m in enumerate(modes)}
        if table != expected:
            problems.append(f"{kind}: {table} != {expected}")
    return problems


def test_type_code_tables_are_the_contracts():
    assert mode_table_problems(TOP_H) == []
    swapped = TOP_H.replace("q_code<AP_RND> { static const unsigned value = 2; }",
                            "q_code<AP_RND> { static const unsigned value = 3; }")
    assert swapped != TOP_H and mode_table_problems(swapped)
    # (the bit layout is checked end to end: tests/overlay/test_overlay_top.py compares the codes the
    # compiled IP reports with the contract's type_code)


def test_dry_run_checks_what_the_ip_will_report(tmp_path, example_network):
    from vitcod.overlay.codegen import configure
    from vitcod.overlay.config import OverlayConfig
    from vitcod.overlay.dryrun.checks import check_identity_inputs

    config = OverlayConfig.create(example_network, "pynq-z2", max_batch=4, build_dir=tmp_path / "b")
    configure(config)
    assert check_identity_inputs(config) == []
    header = config.config_header
    header.write_text(header.read_text().replace("model_id_lo = 0x", "model_id_lo = 0x1"))
    assert any("not the contract's header" in p for p in check_identity_inputs(config))
    header.unlink()
    assert any("missing: run the configure step" in p for p in check_identity_inputs(config))
