"""`make synth`: Vitis HLS C synthesis of the converted network, its report next to the model.

Where this fits: ``make hls`` writes the hls4ml project of a stage (our engines included);
this runs C synthesis on it with Vitis HLS and turns the tool's ``csynth.xml`` reports into
``synth.json`` with the same quantities ``vitcod.hls.perf`` models (latency at the clock,
interval, DSP / BRAM / LUT / FF). ``make bench`` then puts modelled and synthesized figures side
by side. Nothing here runs without Vitis HLS: the tool check fails first, naming the tool.

The build is hls4ml's own ``build_prj.tcl`` with synthesis only (``csim``/``cosim``/export off),
run the way hls4ml 1.3.0 runs it (``vitis-run --mode hls``, Vitis >= 2024.2) or, with an older
install, ``vitis_hls -f``; the top-level report is read with hls4ml's
``hls4ml.report.parse_vivado_report`` (or, where that finds nothing, with the project's own
csynth.xml reader, :mod:`vitcod.overlay.csynth`). Figures are C-synthesis *estimates* (the tool's),
labelled so; they are not post-implementation results.

Usage::

    python -m vitcod.hls.synth --run-dir build/demo [--stage <stage>] --out build/bench
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any, Sequence

from ..fileio import atomic_write
from ..model.run_layout import DEFAULT_HLS_STAGE, hls_project_dir
from ..overlay.csynth import read_report

SYNTH_JSON = "synth.json"
#: Module reports of our own engines (names of the HLS functions) kept per module in synth.json.
ENGINE_MODULE_KEYS = ("attention", "headmix", "embed", "layernorm")
BUILD_OPTIONS = {"reset": 1, "csim": 0, "synth": 1, "cosim": 0, "validation": 0, "export": 0, "vsynth": 0,
                 "fifo_opt": 0}


class SynthError(RuntimeError):
    """Synthesis could not run or its report could not be read; the message says why."""


def find_tool() -> list[str]:
    """The command that runs an HLS Tcl script: hls4ml 1.3.0's ``vitis-run``, else ``vitis_hls``."""
    if shutil.which("vitis-run"):
        return ["vitis-run", "--mode", "hls", "--tcl"]
    if shutil.which("vitis_hls"):
        return ["vitis_hls", "-f"]
    raise SynthError("make synth needs Vitis HLS: neither vitis-run (Vitis >= 2024.2, what hls4ml 1.3.0 calls) nor "
                     "vitis_hls (2024.1) is on PATH; source <Vitis install>/settings64.sh first")


def write_build_options(project_dir: Path) -> Path:
    """hls4ml's build_opt.tcl with C synthesis only."""
    lines = ["array set opt {"] + [f"    {k:<10} {v}" for k, v in BUILD_OPTIONS.items()] + ["}"]
    path = project_dir / "build_opt.tcl"
    atomic_write(path, "\n".join(lines) + "\n")
    return path


def run_csynth(project_dir: Path, timeout_s: float = 6 * 3600) -> dict[str, Any]:
    """Run C synthesis in an hls4ml project directory; returns the command, seconds and log path."""
    project_dir = Path(project_dir)
    if not (project_dir / "build_prj.tcl").is_file():
        raise SynthError(f"{project_dir}/build_prj.tcl not found: write the project first (make hls)")
    command = find_tool() + ["build_prj.tcl"]
    write_build_options(project_dir)
    log = project_dir / "synth.log"
    started = time.perf_counter()
    with open(log, "w") as out:
        try:
            done = subprocess.run(command, cwd=project_dir, stdout=out, stderr=subprocess.STDOUT, timeout=timeout_s)
        except subprocess.TimeoutExpired as err:
            raise SynthError(f"C synthesis did not finish in {timeout_s:.0f} s (log: {log})") from err
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        tail = "".join(log.read_text(errors="replace").splitlines(keepends=True)[-20:])
        raise SynthError(f"{' '.join(command)} failed with exit code {done.returncode} (log: {log}):\n{tail}")
    return {"command": " ".join(command), "seconds": seconds, "log": str(log)}


def _int(value: Any) -> int | None:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None  # e.g. "undef" latency of a design with unbounded loops


def _float(value: Any) -> float | None:
    try:
        return float(str(value).strip())
    except (TypeError, ValueError):
        return None


def summarize_top_report(csynth: dict[str, Any]) -> dict[str, Any]:
    """Our fields from hls4ml's ``CSynthesisReport`` dict (values are the report's strings)."""
    target_ns, estimated_ns = _float(csynth.get("TargetClockPeriod")), _float(csynth.get("EstimatedClockPeriod"))
    worst = _int(csynth.get("WorstLatency"))
    resources = {key: _int(csynth.get(tag)) for key, tag in
                 (("dsp", "DSP"), ("bram_18k", "BRAM_18K"), ("lut", "LUT"), ("ff", "FF"), ("uram", "URAM"))}
    available = {key: _int(csynth.get("Available" + tag)) for key, tag in
                 (("dsp", "DSP"), ("bram_18k", "BRAM_18K"), ("lut", "LUT"), ("ff", "FF"), ("uram", "URAM"))}
    return {
        "target_clock_ns": target_ns,
        "estimated_clock_ns": estimated_ns,
        "best_latency_cycles": _int(csynth.get("BestLatency")),
        "worst_latency_cycles": worst,
        "interval_min_cycles": _int(csynth.get("IntervalMin")),
        "interval_max_cycles": _int(csynth.get("IntervalMax")),
        "latency_us_at_target_clock": worst * target_ns / 1e3 if worst is not None and target_ns else None,
        "resources": resources,
        "available": available,
    }


def read_module_reports(report_dir: Path, keys: Sequence[str] = ENGINE_MODULE_KEYS) -> dict[str, dict[str, Any]]:
    """Latency and resources of every synthesized module whose name contains one of ``keys``."""
    modules = {}
    for path in sorted(Path(report_dir).glob("*_csynth.xml")):
        name = path.name[: -len("_csynth.xml")]
        if any(k in name.lower() for k in keys):
            summary = summarize_top_report(read_report(path))
            modules[name] = {k: summary[k] for k in ("best_latency_cycles", "worst_latency_cycles",
                                                     "interval_min_cycles", "resources")}
    return modules


def read_synthesis(project_dir: Path, top: str = "myproject") -> dict[str, Any]:
    """The synthesized figures of an hls4ml project (after C synthesis), as synth.json holds them.

    Read with hls4ml's ``parse_vivado_report``; where that finds no report (it looks for the
    project's ``hls.app``, whose name differs between Vitis releases), the top's csynth.xml is
    read directly, with the same fields.
    """
    from hls4ml.report import parse_vivado_report

    project_dir = Path(project_dir)
    chatter = io.StringIO()  # parse_vivado_report prints what it does not find
    try:
        with contextlib.redirect_stdout(chatter):
            report = parse_vivado_report(str(project_dir))
    except (IndexError, OSError, ET.ParseError) as err:  # e.g. no solution listed in hls.app
        chatter.write(f"hls4ml's reader failed: {type(err).__name__}: {err}")
        report = None
    csynth = (report or {}).get("CSynthesisReport")
    if not csynth:
        found = sorted(project_dir.glob(f"*_prj/solution*/syn/report/{top}_csynth.xml"))
        if not found:
            raise SynthError(f"no C synthesis report in {project_dir}: {chatter.getvalue().strip() or 'nothing found'}")
        csynth = read_report(found[0])
    top = summarize_top_report(csynth)
    report_dirs = sorted(project_dir.glob("*_prj/solution*/syn/report"))
    return {"label": "synthesized: Vitis HLS C-synthesis estimate (not post-implementation)", **top,
            "modules": read_module_reports(report_dirs[0]) if report_dirs else {}}


def synthesize(run_dir: Path, stage: str, out_dir: Path, project_dir: Path | None = None) -> dict[str, Any]:
    """C synthesis of ``run_dir/hls/<stage>`` (or ``project_dir``) -> ``out_dir/synth.json``."""
    project_dir = Path(project_dir or hls_project_dir(run_dir, stage))
    find_tool()  # fail before anything else when the tool is missing
    run = run_csynth(project_dir)
    result = {"stage": stage, "project_dir": str(project_dir), "run": run, **read_synthesis(project_dir)}
    atomic_write(Path(out_dir) / SYNTH_JSON, json.dumps(result, indent=2) + "\n")
    return result


def load_synthesis(out_dir: Path, stage: str) -> tuple[dict[str, Any] | None, str | None]:
    """``(synth.json contents, None)`` for ``stage``, or ``(None, why not)``; used by make bench."""
    path = Path(out_dir) / SYNTH_JSON
    if not path.is_file():
        return None, "not synthesized: make synth needs Vitis HLS (not on this machine)"
    data = json.loads(path.read_text())
    if data.get("stage") != stage:
        return None, f"{path} is for stage {data.get('stage')!r}, not {stage!r}: rerun make synth"
    return data, None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vitcod.hls.synth", description=__doc__.split("\n\n")[0])
    parser.add_argument("--run-dir", type=Path, default=Path("build/demo"))
    parser.add_argument("--stage", default=DEFAULT_HLS_STAGE)
    parser.add_argument("--project-dir", type=Path, default=None,
                        help="an hls4ml project directory (default: <run-dir>/hls/<stage>)")
    parser.add_argument("--out", type=Path, default=Path("build/bench"))
    parser.add_argument("--check-tools", action="store_true", help="only check that Vitis HLS is on PATH")
    args = parser.parse_args(argv)
    try:
        if args.check_tools:
            print(f"Vitis HLS found: {' '.join(find_tool())}")
            return 0
        result = synthesize(args.run_dir, args.stage, args.out, args.project_dir)
    except SynthError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    res = result["resources"]
    print(f"C synthesis of {result['project_dir']} ({result['run']['seconds']:.0f} s): latency "
          f"{result['worst_latency_cycles']} cycles ({result['latency_us_at_target_clock']} us at "
          f"{result['target_clock_ns']} ns), interval {result['interval_min_cycles']}, DSP {res['dsp']}, "
          f"BRAM18K {res['bram_18k']}, LUT {res['lut']}, FF {res['ff']}")
    print(f"wrote {args.out / SYNTH_JSON}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
