"""The overlay's Tcl steps (overlay/tcl/*.tcl) run under tclsh against the stub layer
(overlay/dryrun/tcl/), per board, and the recorded designs checked for completeness."""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from vitcod.overlay.config import OVERLAY_DIR as OVERLAY

from vitcod.overlay.dryrun.checks import check_bitstream, check_block_design, check_ip_export
from vitcod.overlay.codegen import configure, params_dict
from vitcod.host.contract import REGISTERS
from vitcod.overlay.config import TCL_DIR, BoardSpec, OverlayConfig, parse_board_tcl
from vitcod.overlay.example import DummyNetwork
from vitcod.overlay.dryrun.stub import run_stub, run_steps

BOARDS = ["pynq-z2", "zcu104", "kv260"]
PS_VLNV = {"pynq-z2": "xilinx.com:ip:processing_system7:5.5", "zcu104": "xilinx.com:ip:zynq_ultra_ps_e:3.5",
           "kv260": "xilinx.com:ip:zynq_ultra_ps_e:3.5"}
MAX_BATCH = 1000  # 1000 images x 40 bytes = 40000 bytes -> a 16-bit DMA length register

pytestmark = pytest.mark.skipif(shutil.which("tclsh") is None, reason="tclsh not found")


@pytest.fixture(scope="module")
def network(tmp_path_factory) -> Path:
    return DummyNetwork().write(tmp_path_factory.mktemp("net"))


@pytest.fixture(scope="module")
def built(network, tmp_path_factory) -> dict[str, tuple[OverlayConfig, dict]]:
    """All three steps under the stub, per board."""
    out = {}
    for board in BOARDS:
        config = OverlayConfig.create(network, board, max_batch=MAX_BATCH, clock_mhz=125,
                                      build_dir=tmp_path_factory.mktemp(board))
        out[board] = (config, run_steps(config))
    return out


def stub_script(tmp_path: Path, body: str, tool: str = "vivado") -> subprocess.CompletedProcess:
    script = tmp_path / "script.tcl"
    script.write_text(body)
    return run_stub(tool, script, [], tmp_path / "record.json", cwd=tmp_path)


# ---- complete designs per board -------------------------------------------------------------------
@pytest.mark.parametrize("board", BOARDS)
def test_ip_export(built, board):
    config, rec = built[board]
    assert check_ip_export(rec["ip"], config) == []
    hls = rec["ip"]["hls"]
    assert hls["export"]["vlnv"] == "vitcod:hls:vitcod_top:1.0"
    assert hls["part"] == BoardSpec.load(board).part
    assert float(hls["clock_period"]) == pytest.approx(8.0)  # 125 MHz
    calls = [c[0] for c in rec["ip"]["calls"]]
    assert calls.index("csynth_design") < calls.index("export_design")
    regs = {r["name"]: int(r["offset"], 16) for r in hls["interface"]["registers"]}
    assert regs == {r.name: r.offset for r in REGISTERS}


@pytest.mark.parametrize("board", BOARDS)
def test_block_design_is_complete(built, board):
    config, rec = built[board]
    assert check_block_design(rec["bd"], rec["ip"], config) == []
    bd = rec["bd"]["bd"]
    cells = bd["cells"]
    assert [c["vlnv"] for c in cells.values()].count(PS_VLNV[board]) == 1
    assert cells["vitcod_0"]["vlnv"] == rec["ip"]["hls"]["export"]["vlnv"]
    dma = cells["axi_dma_0"]["config"]
    assert dma["c_include_sg"] == "0"
    assert 2 ** int(dma["c_sg_length_width"]) - 1 >= MAX_BATCH * config.input.bytes_per_image
    assert int(dma["c_sg_length_width"]) == 16
    assert dma["c_m_axis_mm2s_tdata_width"] == dma["c_s_axis_s2mm_tdata_width"] == "64"
    nets = {(n["a"], n["b"]) for n in bd["intf_nets"]}
    assert ("/axi_dma_0/M_AXIS_MM2S", "/vitcod_0/in_r") in nets
    assert ("/vitcod_0/out_r", "/axi_dma_0/S_AXIS_S2MM") in nets
    spec = BoardSpec.load(board)
    ps = next(n for n, c in cells.items() if c["vlnv"] == PS_VLNV[board])
    gp_space = [a for a in bd["addresses"] if a["master"] == f"/{ps}/{spec.gp_port}"]
    assert {a["segment"].rsplit("/", 1)[0] for a in gp_space} == {"/axi_dma_0/S_AXI_LITE", "/vitcod_0/s_axi_control"}
    assert rec["bd"]["bd"]["validated"] and rec["bd"]["bd"]["saved"]
    assert rec["bd"]["project"]["props"]["board_part"] == spec.board_part
    # only the PS preset rule is automated; every connection is explicit
    rules = [c[c.index("-rule") + 1] for c in rec["bd"]["calls"] if c[0] == "apply_bd_automation"]
    assert rules == [f"xilinx.com:bd_rule:{PS_VLNV[board].split(':')[2]}"]


@pytest.mark.parametrize("board", BOARDS)
def test_bitstream_outputs_side_by_side(built, board):
    config, rec = built[board]
    assert check_bitstream(rec["bitstream"], config) == []
    assert (config.build_dir / "vitcod.bit").read_text().startswith("stub bitstream")
    assert (config.build_dir / "vitcod.hwh").is_file()
    assert not list(config.build_dir.glob("*.partial"))


# ---- the checks catch broken designs ---------------------------------------------------------------
def _drop_intf_net(bd, end):
    bd["intf_nets"] = [n for n in bd["intf_nets"] if end not in (n["a"], n["b"])]


def _drop_pin(bd, pin):
    for n in bd["nets"]:
        n["pins"] = [p for p in n["pins"] if p != pin]


MUTATIONS = {
    "stream_in_missing": (lambda bd: _drop_intf_net(bd, "/axi_dma_0/M_AXIS_MM2S"), "M_AXIS_MM2S is not connected"),
    "s2mm_not_on_hp": (lambda bd: _drop_intf_net(bd, "/mem_interconnect/S01_AXI"), "M_AXI_S2MM does not reach"),
    "sg_enabled": (lambda bd: bd["cells"]["axi_dma_0"]["config"].update(c_include_sg="1"), "scatter-gather"),
    "length_too_small": (lambda bd: bd["cells"]["axi_dma_0"]["config"].update(c_sg_length_width="15"), "cannot hold"),
    "clock_undriven": (lambda bd: _drop_pin(bd, "/vitcod_0/ap_clk"), "/vitcod_0/ap_clk is not driven"),
    "reset_undriven": (lambda bd: _drop_pin(bd, "/axi_dma_0/axi_resetn"), "/axi_dma_0/axi_resetn is not driven"),
    "ip_unaddressed": (lambda bd: bd.update(addresses=[a for a in bd["addresses"] if "/vitcod_0/" not in a["segment"]]),
                       "s_axi_control has no address"),
    "other_ip": (lambda bd: bd["cells"]["vitcod_0"].update(vlnv="vitcod:hls:vitcod_top:9.9"), "build_ip exported"),
}


@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
def test_check_catches_broken_design(built, mutation):
    config, rec = built["pynq-z2"]
    broken = copy.deepcopy(rec["bd"])
    change, message = MUTATIONS[mutation]
    change(broken["bd"])
    problems = check_block_design(broken, rec["ip"], config)
    assert any(message in p for p in problems), problems


@pytest.mark.parametrize("board", BOARDS)
def test_board_files_and_dma_address_width(built, board):
    """The 2024.1 board store's versions (KV260 SOM and carrier 1.4) and a 64-bit DMA on UltraScale+,
    whose PS DDR above the 32-bit space (HP0_DDR_HIGH) a 32-bit master cannot reach."""
    config, rec = built[board]
    bd = rec["bd"]["bd"]
    props = rec["bd"]["project"]["props"]
    assert props["board_part"] == config.board.board_part
    dma = bd["cells"]["axi_dma_0"]["config"]
    assert dma["c_addr_width"] == ("32" if board == "pynq-z2" else "64")
    dma_excluded = [e for e in bd["excluded"] if e["master"].startswith("/axi_dma_0/")]
    assert dma_excluded == []
    if board != "pynq-z2":
        for ch in ("M_AXI_MM2S", "M_AXI_S2MM"):
            assert any(a["master"] == f"/axi_dma_0/{ch}" and a["segment"].endswith("HP0_DDR_HIGH")
                       for a in bd["addresses"])
    if board == "kv260":
        assert props["board_part"] == "xilinx.com:kv260_som:part0:1.4"
        assert props["board_connections"] == "som240_1_connector xilinx.com:kv260_carrier:som240_1_connector:1.4"


def test_check_catches_a_32_bit_dma_on_ultrascale(built):
    config, rec = built["kv260"]
    broken = copy.deepcopy(rec["bd"])
    broken["bd"]["cells"]["axi_dma_0"]["config"]["c_addr_width"] = "32"
    high = [a for a in broken["bd"]["addresses"] if a["segment"].endswith("_DDR_HIGH")]
    broken["bd"]["addresses"] = [a for a in broken["bd"]["addresses"] if a not in high]
    broken["bd"]["excluded"] = high
    problems = check_block_design(broken, rec["ip"], config)
    assert any("c_addr_width is 32, board.tcl says 64" in p for p in problems), problems
    assert any("cannot reach /zynq_ultra_ps_e_0/S_AXI_HP0_FPD/HP0_DDR_HIGH" in p for p in problems), problems


def _kv260_block_design(network, tmp_path, store: str | None):
    config = OverlayConfig.create(network, "kv260", max_batch=4, build_dir=tmp_path / "b")
    run_steps(config, ("ip",))
    env = {**os.environ}
    if store is not None:
        env["VITCOD_STUB_BOARD_STORE"] = store
    proc = run_stub("vivado", TCL_DIR / "block_design.tcl", [str(config.board.tcl_path), str(config.params_tcl)],
                    tmp_path / "bd.json", cwd=tmp_path, env=env)
    return proc, (json.loads((tmp_path / "bd.json").read_text()) if proc.returncode == 0 else None)


def test_block_design_takes_the_installed_board_file_version(network, tmp_path):
    """A store with only the 2022.1 files (1.3): the latest installed version, SOM and carrier alike,
    with a warning; a store without the KV260 files: an error naming what to install."""
    proc, rec = _kv260_block_design(network, tmp_path, "xilinx.com:kv260_som:part0:1.3 xilinx.com:kv260_carrier:part0:1.2 "
                                                       "xilinx.com:kv260_carrier:part0:1.3")
    assert proc.returncode == 0, proc.stderr
    assert rec["project"]["props"]["board_part"] == "xilinx.com:kv260_som:part0:1.3"
    assert rec["project"]["props"]["board_connections"] == \
        "som240_1_connector xilinx.com:kv260_carrier:som240_1_connector:1.3"
    assert "kv260_som:part0:1.4 is not installed; using xilinx.com:kv260_som:part0:1.3" in proc.stdout
    proc, _ = _kv260_block_design(network, tmp_path, "xilinx.com:zcu104:part0:1.1")
    assert proc.returncode == 1
    assert "board files xilinx.com:kv260_som are not installed" in proc.stderr


def test_stub_refuses_a_board_part_the_store_does_not_hold(tmp_path):
    proc = stub_script(tmp_path, "create_project -part xck26-sfvc784-2LV-c p ./p\n"
                                 "set_property board_part xilinx.com:kv260_som:part0:1.3 [current_project]\n")
    assert proc.returncode == 1
    assert "board_part definition was not found for xilinx.com:kv260_som:part0:1.3" in proc.stderr


def test_synthesis_cflags_never_name_the_bundled_ap_types(built, network, tmp_path):
    """hls4ml's open-source ap_types (its ap_common.h has #error under __SYNTHESIS__) must never be on
    a Vitis HLS include path: not in the recorded cflags, dropped from a network.json that lists it,
    and the check fails when a record has it."""
    for board in BOARDS:
        config, rec = built[board]
        for f in rec["ip"]["hls"]["files"]:
            assert "ap_types" not in f["cflags"], f
    # a network.json written before the fix lists firmware/ap_types: the cflags drop it
    folder = tmp_path / "net"
    shutil.copytree(network.parent, folder)
    (folder / "ap_types").mkdir()
    (folder / "ap_types" / "ap_common.h").write_text('#ifdef __SYNTHESIS__\n#error "open-source ap_types"\n#endif\n')
    spec = json.loads((folder / "network.json").read_text())
    spec["include_dirs"] = [".", "ap_types"]
    (folder / "network.json").write_text(json.dumps(spec))
    config = OverlayConfig.create(folder / "network.json", "pynq-z2", max_batch=4, build_dir=tmp_path / "b")
    assert any(d.name == "ap_types" for d in config.network.include_dirs)
    for cflags in (config.hls_top_cflags, config.hls_network_cflags):
        assert "ap_types" not in cflags and f"-I{folder}" in cflags
    rec = run_steps(config, ("ip",))["ip"]
    assert check_ip_export(rec, config) == []
    broken = copy.deepcopy(rec)
    broken["hls"]["files"][-1]["cflags"] += f" -I{folder / 'ap_types'}"
    assert any("open-source ap_types" in p and "__SYNTHESIS__" in p for p in check_ip_export(broken, config))


def test_check_catches_shim_on_synthesis_path(built):
    config, rec = built["pynq-z2"]
    broken = copy.deepcopy(rec["ip"])
    broken["hls"]["files"][0]["cflags"] += f" -I{OVERLAY}/ip/sim"
    assert any("shim" in p for p in check_ip_export(broken, config))


# ---- the stub is strict ------------------------------------------------------------------------------
def test_stub_rejects_unknown_command(tmp_path):
    proc = stub_script(tmp_path, "create_project -part xc7z020clg400-1 p ./p\ncreate_bd_cel foo\n")
    assert proc.returncode == 3
    assert "create_bd_cel" in proc.stderr
    assert not (tmp_path / "record.json").exists()


def test_stub_rejects_unknown_option(tmp_path):
    proc = stub_script(tmp_path, "open_project hls\nset_top f\nadd_files -cflag x.cpp\n", tool="vitis_hls")
    assert proc.returncode == 3
    assert "add_files" in proc.stderr and "-cflag" in proc.stderr


def test_stub_rejects_vivado_command_in_hls_script(tmp_path):
    proc = stub_script(tmp_path, "create_bd_design x\n", tool="vitis_hls")
    assert proc.returncode == 3 and "create_bd_design" in proc.stderr


DMA_SETUP = """create_project -part xc7z020clg400-1 p ./p
create_bd_design d
set dma [create_bd_cell -type ip -vlnv xilinx.com:ip:axi_dma:7.1 dma]
"""


@pytest.mark.parametrize("body, message", [
    ("set_property CONFIG.c_sg_length_width 27 $dma", "within 8..26"),
    ("set_property CONFIG.c_include_sgg 0 $dma", "no parameter CONFIG.c_include_sgg"),
    ("set_property CONFIG.c_include_sg 0 $dma\nget_bd_pins dma/m_axi_sg_aclk", "has no pin 'm_axi_sg_aclk'"),
    ("create_bd_cell -type ip -vlnv xilinx.com:ip:axi_dma:9.9 dma2", "not in the catalog"),
    ("validate_bd_design", "s_axi_lite_aclk is not driven"),
    ("apply_bd_automation -rule xilinx.com:bd_rule:axi4 -config {} $dma", "only the PS board-preset rules"),
])
def test_stub_models_ip_strictly(tmp_path, body, message):
    proc = stub_script(tmp_path, DMA_SETUP + body + "\n")
    assert proc.returncode != 0
    assert message in proc.stderr


def test_block_design_needs_the_exported_ip(network, tmp_path):
    config = OverlayConfig.create(network, "zcu104", max_batch=4, build_dir=tmp_path / "b")
    configure(config)
    proc = run_stub("vivado", TCL_DIR / "block_design.tcl", [str(config.board.tcl_path), str(config.params_tcl)],
                    tmp_path / "bd.json", cwd=tmp_path)
    assert proc.returncode == 1
    assert "vitcod:hls:vitcod_top:1.0 is not in the catalog" in proc.stderr


@pytest.mark.parametrize("env, message", [
    ({"VITCOD_STUB_FAIL_RUN": "impl_1"}, "impl_1 did not complete"),
    ({"VITCOD_STUB_WNS": "-0.125"}, "timing not met"),
])
def test_failed_implementation_leaves_no_outputs(network, tmp_path, env, message):
    config = OverlayConfig.create(network, "pynq-z2", max_batch=4, build_dir=tmp_path / "b")
    run_steps(config, ("ip", "bd"))
    (config.build_dir / "vitcod.bit").write_text("stale bitstream of an earlier build")
    args = [str(config.board.tcl_path), str(config.params_tcl)]
    proc = run_stub("vivado", TCL_DIR / "bitstream.tcl", args, tmp_path / "bit.json", cwd=tmp_path,
                    env={**os.environ, **env})
    assert proc.returncode == 1
    assert message in proc.stderr
    assert not (config.build_dir / "vitcod.bit").exists()
    assert not (config.build_dir / "vitcod.hwh").exists()


# ---- parameters: one source for Tcl and Python ------------------------------------------------------
def test_params_and_board_read_the_same_in_tcl(network, tmp_path):
    config = OverlayConfig.create(network, "kv260", max_batch=8, build_dir=tmp_path)
    configure(config)
    dump = tmp_path / "dump.tcl"
    dump.write_text(f"source {config.board.tcl_path}\nsource {config.params_tcl}\n"
                    "foreach a {board params} { foreach k [array names $a] { puts \"$a\\t$k\\t[set ${a}($k)]\" } }\n")
    out = subprocess.run(["tclsh", str(dump)], capture_output=True, text=True, check=True).stdout
    seen: dict[str, dict[str, str]] = {"board": {}, "params": {}}
    for line in out.splitlines():
        arr, key, value = line.split("\t")
        seen[arr][key] = value
    board = parse_board_tcl(config.board.tcl_path)
    assert {k: str(v) for k, v in board.items() if k != "clock_mhz"} == {k: v for k, v in seen["board"].items() if k != "clock_mhz"}
    assert float(seen["board"]["clock_mhz"]) == board["clock_mhz"]
    assert seen["board"]["board_connections"] == "som240_1_connector xilinx.com:kv260_carrier:som240_1_connector:1.4"
    assert set(seen["params"]) == set(params_dict(config))
    assert seen["params"]["ip_vlnv"] == config.ip.vlnv
    assert int(seen["params"]["dma_length_width"]) == config.dma_length_width
    assert seen["params"]["hls_network_sources"] == str(network.parent / "dummy_net.cpp")


def test_board_totals():
    expected = {
        "pynq-z2": ("xc7z020clg400-1", "zynq7", {"dsp": 220, "bram_18k": 280, "lut": 53200, "ff": 106400,
                                                  "uram": 0}),
        "zcu104": ("xczu7ev-ffvc1156-2-e", "zynqmp", {"dsp": 1728, "bram_18k": 624, "lut": 230400,
                                                       "ff": 460800, "uram": 96}),
        "kv260": ("xck26-sfvc784-2LV-c", "zynqmp", {"dsp": 1248, "bram_18k": 288, "lut": 117120,
                                                      "ff": 234240, "uram": 64}),
    }
    for board, (part, family, resources) in expected.items():
        spec = BoardSpec.load(board)
        assert (spec.part, spec.ps_family, spec.resources) == (part, family, resources)
    assert BoardSpec.load("kv260").board_part == "xilinx.com:kv260_som:part0:1.4"  # the 2024.1 store
    assert {b: BoardSpec.load(b).dma_addr_width for b in BOARDS} == {"pynq-z2": 32, "zcu104": 64, "kv260": 64}


def test_stub_record_is_json_with_calls(built):
    _, rec = built["pynq-z2"]
    assert rec["bd"]["tool"] == "vivado" and rec["ip"]["tool"] == "vitis_hls"
    assert json.loads(json.dumps(rec))  # plain JSON
    assert ["assign_bd_address"] in rec["bd"]["calls"]
