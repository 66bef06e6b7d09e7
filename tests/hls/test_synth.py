"""`make synth` (vitcod.hls.synth): tool check, the synthesis run, the report reader, and the bench's
modelled-vs-synthesized table.

Vitis HLS is not on this machine. The run is exercised with a fake `vitis_hls` that writes report
files in the tool's csynth.xml format (values below are a format sample for the reader, not a
synthesis result); the real synthesis test carries the `vivado` marker and is skipped here.
"""

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from vitcod.hls import synth
from vitcod.model.run_layout import DEFAULT_HLS_STAGE

ROOT = Path(__file__).resolve().parents[2]
MAKE = shutil.which("make")


def csynth_xml(top: str, worst: int, interval: int, dsp: int, bram: int, lut: int, ff: int) -> str:
    """A report in the layout of Vitis HLS's <top>_csynth.xml (only the elements hls4ml reads)."""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<profile>
  <ReportVersion><Version>2024.1</Version></ReportVersion>
  <UserAssignments><Part>xc7z020-clg400-1</Part><TopModelName>{top}</TopModelName>
    <TargetClockPeriod>10.00</TargetClockPeriod><ClockUncertainty>2.70</ClockUncertainty></UserAssignments>
  <PerformanceEstimates>
    <SummaryOfTimingAnalysis><unit>ns</unit><EstimatedClockPeriod>8.123</EstimatedClockPeriod></SummaryOfTimingAnalysis>
    <SummaryOfOverallLatency><unit>clock cycles</unit><Best-caseLatency>{worst - 10}</Best-caseLatency>
      <Average-caseLatency>{worst - 5}</Average-caseLatency><Worst-caseLatency>{worst}</Worst-caseLatency>
      <Interval-min>{interval}</Interval-min><Interval-max>{interval + 1}</Interval-max></SummaryOfOverallLatency>
  </PerformanceEstimates>
  <AreaEstimates>
    <Resources><BRAM_18K>{bram}</BRAM_18K><DSP>{dsp}</DSP><FF>{ff}</FF><LUT>{lut}</LUT><URAM>0</URAM></Resources>
    <AvailableResources><BRAM_18K>280</BRAM_18K><DSP>220</DSP><FF>106400</FF><LUT>53200</LUT><URAM>0</URAM>
    </AvailableResources>
  </AreaEstimates>
</profile>
"""


def hls4ml_project(root: Path) -> Path:
    """The files of an hls4ml Vitis project that the synth step reads (as `make hls` writes them)."""
    root.mkdir(parents=True)
    (root / "project.tcl").write_text('variable project_name\nset project_name "myproject"\n'
                                      'variable backend\nset backend "vitis"\n')
    (root / "build_prj.tcl").write_text("# hls4ml's script (not run by the fake tool)\n")
    return root


FAKE_TOOL = """#!/bin/sh
# fake {name}: records its arguments and build_opt.tcl, writes the reports Vitis HLS would
echo "$@" > fake_args.txt
cp build_opt.tcl fake_build_opt.txt
{body}
"""


def fake_tool(bin_dir: Path, name: str, body: str) -> None:
    bin_dir.mkdir(parents=True, exist_ok=True)
    path = bin_dir / name
    path.write_text(FAKE_TOOL.format(name=name, body=body))
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


def writes_reports(tmp_path: Path) -> str:
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "myproject_csynth.xml").write_text(csynth_xml("myproject", 16530, 7380, 180, 40, 41000, 52000))
    (reports / "vitcod_attention_0_csynth.xml").write_text(csynth_xml("vitcod_attention_0", 7200, 7200, 8, 4, 3000, 2500))
    (reports / "dense_latency_csynth.xml").write_text(csynth_xml("dense_latency", 10, 1, 64, 0, 900, 800))
    return ("mkdir -p myproject_prj/solution1/syn/report\n"
            "printf '<AutoPilot:project xmlns:AutoPilot=\"com.autoesl.autopilot.project\" top=\"myproject\">"
            "<solutions><solution name=\"solution1\" status=\"active\"/></solutions></AutoPilot:project>' "
            "> myproject_prj/hls.app\n"
            f"cp {reports}/*.xml myproject_prj/solution1/syn/report/\n")


def test_missing_tool_is_named(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(synth.SynthError, match=r"neither vitis-run .* nor vitis_hls .* is on PATH"):
        synth.find_tool()


def test_check_tools_cli_fails_fast_without_vitis(tmp_path):
    env = {"PATH": str(tmp_path), "HOME": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-m", "vitcod.hls.synth", "--check-tools"], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "make synth needs Vitis HLS" in proc.stderr


@pytest.mark.skipif(MAKE is None, reason="make not installed")
def test_make_synth_stops_at_the_tool_check(tmp_path):
    # Only the tool check may run: no conversion, nothing written.
    build = tmp_path / "build"
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin"}
    proc = subprocess.run([MAKE, "-C", str(ROOT), "synth", f"BUILD={build}", "RUN=none"], env=env,
                          capture_output=True, text=True, timeout=300)
    if shutil.which("vitis_hls", path=env["PATH"]) or shutil.which("vitis-run", path=env["PATH"]):
        pytest.skip("Vitis HLS is installed here")
    assert proc.returncode != 0 and "make synth needs Vitis HLS" in proc.stderr
    assert not build.exists()


def test_synthesis_run_and_report(tmp_path, monkeypatch):
    project = hls4ml_project(tmp_path / "hls" / "sparse_0.90")
    fake_tool(tmp_path / "bin", "vitis_hls", writes_reports(tmp_path))
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:{os.environ['PATH']}")
    result = synth.synthesize(tmp_path, "sparse_0.90", tmp_path / "bench")
    # the tool ran hls4ml's script with synthesis only
    assert (project / "fake_args.txt").read_text().split() == ["-f", "build_prj.tcl"]
    options = (project / "fake_build_opt.txt").read_text()
    for key, value in (("synth", 1), ("csim", 0), ("cosim", 0), ("export", 0), ("vsynth", 0)):
        assert f"{key} {value}" in " ".join(options.split()), key
    # the reader's fields
    assert result["worst_latency_cycles"] == 16530 and result["best_latency_cycles"] == 16520
    assert result["interval_min_cycles"] == 7380 and result["target_clock_ns"] == 10.0
    assert result["latency_us_at_target_clock"] == pytest.approx(165.3)
    assert result["resources"] == {"dsp": 180, "bram_18k": 40, "lut": 41000, "ff": 52000, "uram": 0}
    assert set(result["modules"]) == {"vitcod_attention_0"}  # our engines only
    assert json.loads((tmp_path / "bench" / "synth.json").read_text()) == result
    loaded, why = synth.load_synthesis(tmp_path / "bench", "sparse_0.90")
    assert why is None and loaded == result
    loaded, why = synth.load_synthesis(tmp_path / "bench", "sparse_0.80")
    assert loaded is None and "rerun make synth" in why


def test_report_is_read_without_hls_app(tmp_path, monkeypatch):
    # hls4ml's reader needs the project's hls.app; without it the top's csynth.xml is read directly
    project = hls4ml_project(tmp_path / "hls" / "s")
    fake_tool(tmp_path / "bin", "vitis_hls", writes_reports(tmp_path) + "rm myproject_prj/hls.app\n")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:{os.environ['PATH']}")
    result = synth.synthesize(tmp_path, "s", tmp_path / "bench")
    assert not (project / "myproject_prj" / "hls.app").exists()
    assert result["worst_latency_cycles"] == 16530 and result["estimated_clock_ns"] == pytest.approx(8.123)
    assert result["resources"] == {"dsp": 180, "bram_18k": 40, "lut": 41000, "ff": 52000, "uram": 0}
    assert result["available"]["lut"] == 53200


def test_failing_synthesis_reports_the_log(tmp_path, monkeypatch):
    hls4ml_project(tmp_path / "hls" / "s")
    fake_tool(tmp_path / "bin", "vitis_hls", "echo 'ERROR: [HLS 200-70] something the tool says'\nexit 3\n")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:{os.environ['PATH']}")
    with pytest.raises(synth.SynthError, match=r"exit code 3(.|\n)*HLS 200-70"):
        synth.synthesize(tmp_path, "s", tmp_path / "bench")
    assert not (tmp_path / "bench" / "synth.json").exists()


def test_missing_report_is_an_error_not_zeros(tmp_path, monkeypatch):
    hls4ml_project(tmp_path / "hls" / "s")
    fake_tool(tmp_path / "bin", "vitis_hls", "exit 0\n")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:{os.environ['PATH']}")
    with pytest.raises(synth.SynthError, match="no C synthesis report"):
        synth.synthesize(tmp_path, "s", tmp_path / "bench")


def test_modelled_and_synthesized_side_by_side():
    from vitcod.bench.modelled import modelled_vs_synthesized

    row = {"model_latency_us": 150.0, "model_interval_cycles": 7000, "model_latency_cycles": 15000,
           "resources": {"dsp": 100, "bram_18k": 40, "lut": 50000, "ff": 60000}}
    syn = {"latency_us_at_target_clock": 165.3, "interval_min_cycles": 7380, "worst_latency_cycles": 16530,
           "resources": {"dsp": 180, "bram_18k": 40, "lut": 41000, "ff": None}}
    table = modelled_vs_synthesized(row, syn)
    assert table["latency_us"] == {"modelled": 150.0, "synthesized": 165.3, "synthesized_over_modelled": pytest.approx(1.102)}
    assert table["dsp"]["synthesized_over_modelled"] == pytest.approx(1.8)
    assert table["ff"]["synthesized"] is None and table["ff"]["synthesized_over_modelled"] is None
    assert table["latency_cycles"]["synthesized_over_modelled"] == pytest.approx(1.102)  # what images/s rests on


@pytest.mark.vivado
@pytest.mark.slow
@pytest.mark.skipif(shutil.which("vitis_hls") is None and shutil.which("vitis-run") is None,
                    reason="Vitis HLS (vitis_hls / vitis-run) not on PATH")
def test_real_synthesis_of_a_small_run(tmp_path, tiny_run, digits):
    """Real C synthesis of the tiny trained ViT's HLS project (tests/hls/conftest.py)."""
    from vitcod.hls.convert import convert, write_project
    from vitcod.model.run_layout import hls_project_dir

    write_project(convert(tiny_run, hls_project_dir(tiny_run, DEFAULT_HLS_STAGE), stage=DEFAULT_HLS_STAGE, data=digits))
    result = synth.synthesize(tiny_run, DEFAULT_HLS_STAGE, tmp_path / "bench")
    assert result["worst_latency_cycles"] and result["resources"]["dsp"] is not None
