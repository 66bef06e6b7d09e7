"""Checks of the designs the step scripts build, read from the stub layer's JSON records.

Where this fits: ``overlay/dryrun/tcl/run_stub.tcl`` runs build_ip.tcl / block_design.tcl /
bitstream.tcl under plain tclsh and records what they built (:mod:`vitcod.overlay.dryrun.stub` drives it). The
functions here read those records and list what is missing or wrong, independently of the stub's
own ``validate_bd_design``: the data path (DMA <-> HP port), the streams (DMA <-> IP), the control
path (GP port -> DMA and IP registers, addressed), clocks and resets, the DMA configuration against
the batch size, and the IP identity against what build_ip exported. Each returns a list of
problems; an empty list means the design is complete. ``make -C overlay stub-check`` and
tests/overlay/test_overlay_tcl.py use them.
"""

from __future__ import annotations

import shlex
from collections import deque
from pathlib import Path
from typing import Any, Iterable

from ...host.contract import REGISTERS
from ...host.errors import MetadataError
from ..codegen import render_config_header
from ..config import IP_DIR, OverlayConfig

PS_IP = {"zynq7": "xilinx.com:ip:processing_system7:", "zynqmp": "xilinx.com:ip:zynq_ultra_ps_e:"}
DMA_IP = "xilinx.com:ip:axi_dma:"


def bundled_ap_types(cflags: str) -> list[str]:
    """The ``-I`` folders of ``cflags`` that hold a copy of ap_types (hls4ml's open-source headers, e.g.
    ``firmware/ap_types``): named ap_types or holding ap_common.h. Such a folder must never be on a
    synthesis include path."""
    tokens = shlex.split(cflags)
    folders = [t[2:] if len(t) > 2 else (tokens[i + 1] if i + 1 < len(tokens) else "")
               for i, t in enumerate(tokens) if t.startswith("-I")]
    return [f for f in folders if f and (Path(f).name == "ap_types" or (Path(f) / "ap_common.h").is_file())]


def check_ip_export(record: dict[str, Any], config: OverlayConfig) -> list[str]:
    """Problems of a Vitis HLS (build_ip.tcl) record."""
    problems: list[str] = []
    hls = record.get("hls") or {}
    expect = {"top": config.top, "part": config.board.part, "flow_target": "vivado"}
    for key, value in expect.items():
        if hls.get(key) != value:
            problems.append(f"HLS {key} is {hls.get(key)!r}, expected {value!r}")
    try:
        if abs(float(hls.get("clock_period")) - config.clock_period_ns) > 1e-3:
            problems.append(f"HLS clock period {hls.get('clock_period')} ns, expected {config.clock_period_ns:.3f}")
    except (TypeError, ValueError):
        problems.append(f"HLS clock period missing or not a number: {hls.get('clock_period')!r}")
    if not hls.get("csynth"):
        problems.append("csynth_design did not run")
    files = {f["path"]: f for f in hls.get("files", [])}
    top_src = str(IP_DIR / "vitcod_top.cpp")
    for src in [top_src, *map(str, config.network.sources)]:
        if src not in files:
            problems.append(f"source {src} not added to the HLS project")
    for path, f in files.items():
        if "/ip/sim" in f["cflags"]:
            problems.append(f"{path}: cflags put the C-simulation shim (overlay/ip/sim) on the synthesis include path")
        for folder in bundled_ap_types(f["cflags"]):
            problems.append(f"{path}: cflags put the open-source ap_types ({folder}) on the synthesis include path; "
                            "its ap_common.h stops at #error under __SYNTHESIS__ (Vitis HLS must use its own headers)")
    export = hls.get("export") or {}
    if export.get("vlnv") != config.ip.vlnv:
        problems.append(f"exported IP {export.get('vlnv')!r}, expected {config.ip.vlnv!r}")
    if export.get("format") != "ip_catalog":
        problems.append(f"export format {export.get('format')!r}, expected 'ip_catalog'")
    problems += check_identity_inputs(config)
    iface = hls.get("interface") or {}
    regs = {r["name"]: (int(r["offset"], 16), r["access"]) for r in iface.get("registers", [])}
    expected_regs = {r.name: (r.offset, r.access) for r in REGISTERS}
    if regs != expected_regs:
        problems.append(f"register map from the C++ pragmas {regs} differs from the contract's {expected_regs}")
    if iface.get("block") != "ap_ctrl_hs" or iface.get("block_bundle") != "control":
        problems.append("block control is not ap_ctrl_hs on the AXI4-Lite bundle 'control'")
    streams = {s["rtl"]: s for s in (iface.get("streams") or {}).values()}
    ports = config.ip_ports
    for name, mode in ((ports["in"], "slave"), (ports["out"], "master")):
        s = streams.get(name)
        if s is None or s["mode"] != mode or int(s["bytes"]) != 8:
            problems.append(f"IP stream {name} should be a 64-bit AXI4-Stream {mode}, got {s}")
    return problems


def check_identity_inputs(config: OverlayConfig) -> list[str]:
    """Problems of what the IP will report about itself: the config header the HLS step compiled
    must be the contract's for this network (identifier, the network's own types and array sizes,
    max batch), and the description's identifier must be the one of its fields, or no host could
    accept the IP."""
    problems: list[str] = []
    problem = config.network.identifier_problem()
    if problem:
        problems.append(problem)
    header = config.config_header
    try:
        expected = render_config_header(config)
    except MetadataError as exc:
        return problems + exc.problems
    if not header.is_file():
        problems.append(f"{header} missing: run the configure step")
    elif header.read_text() != expected:
        problems.append(f"{header} is not the contract's header for this network (model id, types, sizes or max "
                        "batch differ): re-run the configure step")
    return problems


class _Design:
    """The recorded block design as a graph."""

    def __init__(self, bd: dict[str, Any]):
        self.cells: dict[str, Any] = bd["cells"]
        self.intf_peer: dict[str, str] = {}
        for n in bd["intf_nets"]:
            self.intf_peer[n["a"]] = n["b"]
            self.intf_peer[n["b"]] = n["a"]
        self.driver_of: dict[str, str] = {}
        self.nets = bd["nets"]
        for n in bd["nets"]:
            for p in n["pins"]:
                if p != n["driver"]:
                    self.driver_of[p] = n["driver"]
        self.addresses = bd["addresses"]

    def intf(self, ref: str) -> dict[str, Any] | None:
        parts = ref.strip("/").split("/")
        if len(parts) != 2 or parts[0] not in self.cells:
            return None
        return next((i for i in self.cells[parts[0]]["intf_pins"] if i["name"] == parts[1]), None)

    def pin(self, ref: str) -> dict[str, Any] | None:
        cell, name = ref.strip("/").split("/")
        return next((p for p in self.cells[cell]["pins"] if p["name"] == name), None)

    def reach(self, master: str) -> set[str]:
        """Non-interconnect slave interface pins reachable from a master interface pin."""
        out, todo, seen = set(), deque([master]), set()
        while todo:
            ref = todo.popleft()
            if ref in seen:
                continue
            seen.add(ref)
            peer = self.intf_peer.get(ref)
            info = self.intf(peer) if peer else None
            if info is None or info["mode"] != "slave":
                continue
            if info.get("route") == "1":
                cell = peer.strip("/").split("/")[0]
                todo.extend(f"/{cell}/{i['name']}" for i in self.cells[cell]["intf_pins"] if i["mode"] == "master")
            else:
                out.add(peer)
        return out


def check_block_design(record: dict[str, Any], ip_record: dict[str, Any], config: OverlayConfig) -> list[str]:
    """Problems of a Vivado block_design.tcl record (``ip_record``: the build_ip.tcl record)."""
    bd = record.get("bd")
    if not bd:
        return ["no block design recorded"]
    problems: list[str] = []
    if not bd.get("validated"):
        problems.append("block design not validated")
    if not bd.get("saved"):
        problems.append("block design not saved")
    d = _Design(bd)
    board = config.board

    # cells
    ps_cells = [n for n, c in d.cells.items() if c["vlnv"].startswith(PS_IP[board.ps_family])]
    if len(ps_cells) != 1:
        return problems + [f"expected one {PS_IP[board.ps_family]}* processing system, found {ps_cells}"]
    ps = ps_cells[0]
    dma, ip = config.dma_cell, config.ip_cell
    for name in (dma, ip):
        if name not in d.cells:
            return problems + [f"cell {name} missing"]
    if not d.cells[dma]["vlnv"].startswith(DMA_IP):
        problems.append(f"{dma} is {d.cells[dma]['vlnv']}, expected an AXI DMA")
    exported = ((ip_record.get("hls") or {}).get("export") or {}).get("vlnv")
    if d.cells[ip]["vlnv"] != exported:
        problems.append(f"{ip} instantiates {d.cells[ip]['vlnv']!r} but build_ip exported {exported!r}")

    # DMA configuration
    cfg = d.cells[dma]["config"]
    if cfg.get("c_include_sg") != "0":
        problems.append(f"{dma}: scatter-gather enabled (c_include_sg={cfg.get('c_include_sg')})")
    largest = config.max_batch * max(config.input.words_per_image, config.output.words_per_image) * 8  # bytes, afresh
    width = int(cfg.get("c_sg_length_width", 0))
    if 2**width - 1 < largest:
        problems.append(f"{dma}: c_sg_length_width {width} cannot hold a batch of {config.max_batch} "
                        f"({largest} bytes need {largest.bit_length()} bits)")
    for key in ("c_m_axis_mm2s_tdata_width", "c_s_axis_s2mm_tdata_width"):
        if cfg.get(key) != "64":
            problems.append(f"{dma}: {key} is {cfg.get(key)}, expected 64")
    if str(cfg.get("c_addr_width")) != str(board.dma_addr_width):
        problems.append(f"{dma}: c_addr_width is {cfg.get('c_addr_width')}, board.tcl says {board.dma_addr_width}")
    if board.ps_family == "zynqmp" and int(cfg.get("c_addr_width", 32)) < 64:
        problems.append(f"{dma}: a {cfg.get('c_addr_width')}-bit DMA cannot reach the UltraScale+ PS DDR above "
                        "the 32-bit space (HP*_DDR_HIGH); use 64 bits")

    # data path: both DMA channels reach the PS HP slave
    hp = f"/{ps}/{board.hp_port}"
    if d.intf(hp) is None:
        problems.append(f"{ps} has no {board.hp_port} (HP port not enabled)")
    for ch in ("M_AXI_MM2S", "M_AXI_S2MM"):
        if hp not in d.reach(f"/{dma}/{ch}"):
            problems.append(f"{dma}/{ch} does not reach {hp}")

    # streams
    ip_in, ip_out = f"/{ip}/{config.ip_ports['in']}", f"/{ip}/{config.ip_ports['out']}"
    if d.intf_peer.get(f"/{dma}/M_AXIS_MM2S") != ip_in:
        problems.append(f"{dma}/M_AXIS_MM2S is not connected to {ip_in}")
    if d.intf_peer.get(ip_out) != f"/{dma}/S_AXIS_S2MM":
        problems.append(f"{ip_out} is not connected to {dma}/S_AXIS_S2MM")

    # control path and addresses
    gp = f"/{ps}/{board.gp_port}"
    ctrl_slaves = {f"/{dma}/S_AXI_LITE", f"/{ip}/{config.ip_ports['ctrl']}"}
    missing = ctrl_slaves - d.reach(gp)
    if missing:
        problems.append(f"{gp} does not reach {sorted(missing)}")
    for slave in sorted(ctrl_slaves):
        if not any(a["master"] == gp and a["segment"].startswith(slave + "/") for a in d.addresses):
            problems.append(f"{slave} has no address in the space of {gp}")
    for ch in ("M_AXI_MM2S", "M_AXI_S2MM"):
        if not any(a["master"] == f"/{dma}/{ch}" and a["segment"].startswith(hp + "/") and int(a["offset"], 16) == 0
                   for a in d.addresses):
            problems.append(f"{dma}/{ch} has no address for the DDR behind {hp}")
        high = [e for e in bd.get("excluded", []) if e["master"] == f"/{dma}/{ch}" and e["segment"].endswith("_DDR_HIGH")]
        if high:
            problems.append(f"{dma}/{ch} cannot reach {high[0]['segment']} (excluded from its address space)")

    # board files: the board and connections of board.tcl (versions may be the installed ones)
    props = (record.get("project") or {}).get("props") or {}
    part = str(props.get("board_part", ""))
    if part.rsplit(":", 1)[0] != board.board_part.rsplit(":", 1)[0]:
        problems.append(f"project board_part {part!r} is not board.tcl's board {board.board_part!r}")

    # clocks and resets
    for cell, c in d.cells.items():
        for p in c["pins"]:
            ref = f"/{cell}/{p['name']}"
            if p["dir"] == "I" and p["type"] in ("clk", "rst") and p["optional"] != "1" and ref not in d.driver_of:
                problems.append(f"{p['type']} pin {ref} is not driven")
        for i in c["intf_pins"]:
            ref = f"/{cell}/{i['name']}"
            if ref in d.intf_peer and i["clock"] and f"/{cell}/{i['clock']}" not in d.driver_of:
                problems.append(f"clock {i['clock']} of connected interface {ref} is not driven")
    clock_drivers = {d.driver_of[f"/{cell}/{p['name']}"] for cell, c in d.cells.items() for p in c["pins"]
                     if p["dir"] == "I" and p["type"] == "clk" and f"/{cell}/{p['name']}" in d.driver_of}
    if len(clock_drivers) != 1 or not next(iter(clock_drivers)).startswith(f"/{ps}/"):
        problems.append(f"expected every clock driven by one PS clock, got {sorted(clock_drivers)}")
    else:
        clk = d.pin(next(iter(clock_drivers)))
        if clk is None or abs(float(clk.get("freq_mhz", "nan")) - config.clock_mhz) > 1e-6:
            problems.append(f"PL clock is {clk and clk.get('freq_mhz')} MHz, expected {config.clock_mhz:g}")
    for sink, drv in d.driver_of.items():
        sp, dp = d.pin(sink) if sink.count("/") == 2 else None, d.pin(drv) if drv.count("/") == 2 else None
        if sp and dp and sp["type"] == "rst" and sp["pol"] in ("low", "high") and dp["pol"] and sp["pol"] != dp["pol"]:
            problems.append(f"active-{sp['pol']} reset {sink} driven by active-{dp['pol']} {drv}")
    return problems


def check_bitstream(record: dict[str, Any], config: OverlayConfig) -> list[str]:
    """Problems of a Vivado bitstream.tcl record and its outputs."""
    problems: list[str] = []
    proj = record.get("project") or {}
    runs = proj.get("runs") or {}
    if (runs.get("synth_1") or {}).get("progress") != "100%":
        problems.append("synth_1 did not complete")
    impl = runs.get("impl_1") or {}
    if impl.get("progress") != "100%" or impl.get("to_step") != "write_bitstream":
        problems.append(f"impl_1 did not complete to write_bitstream ({impl})")
    if proj.get("top") != "vitcod_wrapper":
        problems.append(f"top is {proj.get('top')!r}, expected the block-design wrapper vitcod_wrapper")
    for ext in ("bit", "hwh"):
        if not (config.build_dir / f"vitcod.{ext}").is_file():
            problems.append(f"vitcod.{ext} missing in {config.build_dir}")
    return problems


def describe_board_design(record: dict[str, Any]) -> str:
    """One line: the board part, board connections and DMA address width a block design used."""
    props = (record.get("project") or {}).get("props") or {}
    dma = next((c["config"] for c in ((record.get("bd") or {}).get("cells") or {}).values()
                if c["vlnv"].startswith(DMA_IP)), {})
    connections = props.get("board_connections") or "none"
    return (f"stub bd: board part {props.get('board_part')}, board connections {connections}, "
            f"DMA address width {dma.get('c_addr_width')} bits")


def format_problems(title: str, problems: Iterable[str]) -> str:
    problems = list(problems)
    return f"{title}: OK" if not problems else f"{title}: {len(problems)} problem(s)\n  - " + "\n  - ".join(problems)
