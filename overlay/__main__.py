#!/usr/bin/env python3
"""Command line of the overlay build: the Python steps ``overlay/Makefile`` calls around the Tcl.

    python -m vitcod.overlay check-tools [--expect 2024.1] [--vitis-hls CMD] [--vivado CMD]
    python -m vitcod.overlay configure   --board B --network network.json --max-batch N [--clock-mhz F] [--build-dir D] [--jobs J]
    python -m vitcod.overlay fit         --build-dir D [--estimate est.json] [--max-utilization U]
    python -m vitcod.overlay package     --build-dir D [--tool-version vitis_hls=2024.1 --tool-version vivado=2024.1]
    python -m vitcod.overlay stub-check  --board B [--network network.json] --max-batch N [--clock-mhz F] [--build-dir D]

Order in a full build (``make -C overlay bitstream``): check-tools -> configure -> [Vitis HLS:
build_ip.tcl] -> fit -> [Vivado: block_design.tcl, bitstream.tcl] -> package. check-tools runs
first and writes nothing, so a machine without the tools stops at once with a clean tree.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Mapping, Sequence

from ..fileio import atomic_write
from .codegen import configure
from .config import OVERLAY_DIR, TOOLS_VERSION, ConfigError, OverlayConfig, ResourceFitError, check_fit
from .csynth import CsynthReportError, resource_estimate
from .example import DummyNetwork
from .metadata import MetadataError, package
from .dryrun.checks import format_problems
from .dryrun.stub import StubRunError, stub_check

TOOL_NAMES = {"vitis_hls": "Vitis HLS", "vivado": "Vivado"}
_VERSION_RE = re.compile(r"\bv(\d{4}\.\d+(?:\.\d+)?)\b")


class ToolError(RuntimeError):
    """A required Xilinx tool is missing or has an unexpected version."""


def tool_versions(expected: str | None = TOOLS_VERSION, commands: Mapping[str, str] | None = None,
                  timeout: float = 300) -> dict[str, str]:
    """Find vitis_hls and vivado and read their versions.

    Args:
        expected: release to insist on (major.minor compared); None accepts any.
        commands: command per tool (default: the tool's name, looked up on PATH).

    Returns:
        ``{"vitis_hls": "2024.1", "vivado": "2024.1"}`` (a stand-in from overlay/dryrun/tcl/bin is
        reported as ``"2024.1 (stub)"``).

    Raises:
        ToolError: a tool is not on PATH (checked for both before running either), its version
            cannot be read, or it is not ``expected``; the message names the tool, what was found
            and what is expected.
    """
    commands = dict(commands or {})
    paths = {tool: shutil.which(commands.get(tool) or tool) for tool in TOOL_NAMES}
    missing = [tool for tool, path in paths.items() if path is None]
    if missing:
        want = " and ".join(f"{TOOL_NAMES[t]} {expected or ''}".strip() for t in missing)
        raise ToolError(
            f"{' and '.join(missing)} not found on PATH (expected {want}). Source the Xilinx settings script "
            f"(e.g. /tools/Xilinx/Vivado/{expected or TOOLS_VERSION}/settings64.sh) or point "
            f"{', '.join(t.upper() + '=/path/to/' + t for t in missing)} at the tools. Nothing was built."
        )
    versions = {}
    for tool, path in paths.items():
        try:
            out = subprocess.run([path, "-version"], capture_output=True, text=True, timeout=timeout, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ToolError(f"{tool} ({path}) did not report its version: {exc}") from None
        text = out.stdout + out.stderr
        m = _VERSION_RE.search(text)
        if m is None:
            raise ToolError(f"cannot read the version of {tool} ({path}) from: {text.strip()[:200]!r}")
        found = m.group(1)
        if expected is not None and found.split(".")[:2] != expected.split(".")[:2]:
            raise ToolError(
                f"{tool} ({path}) is version {found}, expected {TOOL_NAMES[tool]} {expected}. "
                f"Use the {expected} tools, or set TOOLS_VERSION={found} to build with these anyway."
            )
        versions[tool] = found + (" (stub)" if "overlay stub" in text else "")
    return versions


def _config_from_args(args: argparse.Namespace) -> OverlayConfig:
    return OverlayConfig.create(args.network, args.board, max_batch=args.max_batch, clock_mhz=args.clock_mhz,
                                build_dir=args.build_dir, jobs=args.jobs)


def cmd_check_tools(args: argparse.Namespace) -> int:
    versions = tool_versions(None if args.expect == "any" else args.expect,
                             {"vitis_hls": args.vitis_hls, "vivado": args.vivado})
    for tool, version in versions.items():
        print(f"{tool}: {version} (expected {args.expect})")
    return 0


def cmd_configure(args: argparse.Namespace) -> int:
    config = _config_from_args(args)
    for name, (path, changed) in configure(config).items():
        print(f"{'wrote' if changed else 'unchanged'} {name}: {path}")
    print(f"input {config.input.values} values x {config.input.format.cpp} = {config.input.words_per_image} "
          f"words/image; output {config.output.values} x {config.output.format.cpp} = "
          f"{config.output.words_per_image} words/image; "
          f"max batch {config.max_batch} -> DMA length register {config.dma_length_width} bits")
    return 0


def cmd_fit(args: argparse.Namespace) -> int:
    config = OverlayConfig.load(args.build_dir)
    out = config.build_dir / "resources.json"
    out.unlink(missing_ok=True)
    if args.estimate:
        estimate = json.loads(Path(args.estimate).read_text())
    elif not config.csynth_report.is_file():
        raise ConfigError(f"HLS report {config.csynth_report} not found: run the ip step first")
    else:
        estimate = resource_estimate(config.csynth_report)
    utilization = check_fit(estimate, config.board.resources, board=config.board.name,
                            max_utilization=args.max_utilization)
    atomic_write(out, json.dumps({"estimate": {k: int(v) for k, v in estimate.items() if k in utilization},
                                  "available": config.board.resources}, indent=2) + "\n")
    print(f"fits {config.board.name}: " + ", ".join(f"{k} {u:.0%}" for k, u in utilization.items()))
    return 0


def cmd_package(args: argparse.Namespace) -> int:
    config = OverlayConfig.load(args.build_dir)
    if args.tool_version:
        versions = dict(item.split("=", 1) for item in args.tool_version)
    else:
        versions = tool_versions(None)
    res_path = config.build_dir / "resources.json"
    resources = json.loads(res_path.read_text()) if res_path.is_file() else None
    archive = package(config, versions, resources)
    print(f"wrote {config.build_dir / 'vitcod.json'}\nwrote {archive}")
    return 0


def cmd_stub_check(args: argparse.Namespace) -> int:
    if args.network is None:
        args.network = DummyNetwork(io_type="io_stream").write(OVERLAY_DIR / "build" / "example-network")
        print(f"no --network: using the example io_stream network {args.network}")
    results = stub_check(_config_from_args(args))
    for step, problems in results.items():
        print(format_problems(f"stub {step}", problems))
    return 1 if any(results.values()) else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vitcod.overlay", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("check-tools", help="check vitis_hls and vivado are on PATH with the expected version")
    p.add_argument("--expect", default=TOOLS_VERSION, help=f"release to require (default {TOOLS_VERSION}; 'any')")
    p.add_argument("--vitis-hls", default="vitis_hls")
    p.add_argument("--vivado", default="vivado")
    p.set_defaults(func=cmd_check_tools)

    def design_args(p: argparse.ArgumentParser, network_required: bool = True) -> None:
        p.add_argument("--board", required=True)
        p.add_argument("--network", required=network_required,
                       help="network.json written by the HLS stage" + ("" if network_required else " (default: an example)"))
        p.add_argument("--max-batch", type=int, required=True)
        p.add_argument("--clock-mhz", type=float, default=None, help="default: the board's clock")
        p.add_argument("--build-dir", default=None, help="default: overlay/build/<board>")
        p.add_argument("--jobs", type=int, default=4, help="parallel Vivado jobs")

    p = sub.add_parser("configure", help="write params.tcl, the IP config header and overlay_config.json")
    design_args(p)
    p.set_defaults(func=cmd_configure)

    p = sub.add_parser("fit", help="refuse a design whose resource estimate exceeds the board")
    p.add_argument("--build-dir", required=True)
    p.add_argument("--estimate", help="JSON {dsp, bram_18k, lut, ff}; default: the HLS csynth report")
    p.add_argument("--max-utilization", type=float, default=1.0)
    p.set_defaults(func=cmd_fit)

    p = sub.add_parser("package", help="write vitcod.json and the archive for the board")
    p.add_argument("--build-dir", required=True)
    p.add_argument("--tool-version", action="append", metavar="TOOL=VERSION",
                   help="record these versions instead of asking the tools")
    p.set_defaults(func=cmd_package)

    p = sub.add_parser("stub-check", help="run the Tcl steps under the stub (no Vivado) and check the design")
    design_args(p, network_required=False)
    p.set_defaults(func=cmd_stub_check)

    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ToolError, ConfigError, ResourceFitError, MetadataError, CsynthReportError, StubRunError,
            FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
