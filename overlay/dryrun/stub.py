"""Run the overlay's Tcl steps without Vivado: tclsh + the stub layer, then the design checks.

Where this fits: a dry run of the whole Tcl flow (build_ip.tcl, block_design.tcl, bitstream.tcl)
that needs only ``tclsh``. ``make -C overlay stub-check`` calls :func:`stub_check` before anyone
spends an hour in Vivado; tests/overlay/test_overlay_tcl.py calls the same functions per board. The stub
writes into its own build folder (``build/<board>-stub``), never into the real one, because its
"bitstream" is a placeholder.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from .checks import check_bitstream, check_block_design, check_ip_export, describe_board_design
from ..codegen import configure
from ..config import TCL_DIR, OverlayConfig

STUB_TCL_DIR = Path(__file__).resolve().parent / "tcl"
RUN_STUB = STUB_TCL_DIR / "run_stub.tcl"
STEPS = (("ip", "vitis_hls", "build_ip.tcl"), ("bd", "vivado", "block_design.tcl"), ("bitstream", "vivado", "bitstream.tcl"))


class StubRunError(RuntimeError):
    """A step failed under the stub (its stderr is in the message)."""


def run_stub(tool: str, script: Path, args: list[str], record: Path, *, cwd: Path | None = None,
             env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run one Tcl script under tclsh with the stub layer; returns the completed process."""
    tclsh = shutil.which("tclsh")
    if tclsh is None:
        raise StubRunError("tclsh not found on PATH; the stub check needs Tcl 8.6 (apt-get install tcl)")
    return subprocess.run([tclsh, str(RUN_STUB), tool, str(record), str(script), *args],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)


def stub_build_dir(config: OverlayConfig) -> OverlayConfig:
    """The same configuration, building into build/<board>-stub next to the real build folder."""
    return dataclasses.replace(config, build_dir=config.build_dir.parent / f"{config.board.name}-stub")


def run_steps(config: OverlayConfig, steps: tuple[str, ...] = ("ip", "bd", "bitstream")) -> dict[str, dict[str, Any]]:
    """Configure ``config.build_dir`` and run the given steps under the stub; return their records.

    Raises:
        StubRunError: a step exited non-zero (the message holds its stderr).
    """
    configure(config)
    records = {}
    args = [str(config.board.tcl_path), str(config.params_tcl)]
    for step, tool, script in STEPS:
        if step not in steps:
            continue
        record = config.build_dir / f"stub-{step}.json"
        proc = run_stub(tool, TCL_DIR / script, args, record, cwd=config.build_dir)
        if proc.returncode != 0:
            raise StubRunError(f"{script} failed under the stub (exit {proc.returncode}):\n{proc.stderr.strip()}")
        records[step] = json.loads(record.read_text())
    return records


def stub_check(config: OverlayConfig) -> dict[str, list[str]]:
    """Run all three steps under the stub in build/<board>-stub and check the recorded design.

    Prints the board files and DMA address width the block design used (one line), then returns
    the problems per step (empty lists when the flow is complete).
    """
    stub_config = stub_build_dir(config)
    records = run_steps(stub_config)
    print(describe_board_design(records["bd"]))
    return {
        "ip": check_ip_export(records["ip"], stub_config),
        "bd": check_block_design(records["bd"], records["ip"], stub_config),
        "bitstream": check_bitstream(records["bitstream"], stub_config),
    }
