"""The overlay build entry points: `make -C overlay bitstream` (tool check, flow, package), the fit
check, configuration errors and the model identifier."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
import time
from dataclasses import replace
from pathlib import Path

import pytest

from vitcod.host import MetadataError
from vitcod.overlay import __main__ as overlay_build
from vitcod.overlay.config import OVERLAY_DIR as OVERLAY
from vitcod.overlay.config import ConfigError, OverlayConfig, ResourceFitError, check_fit, dma_length_width
from vitcod.overlay.csynth import CsynthReportError, resource_estimate
from vitcod.overlay.example import DummyNetwork
from vitcod.overlay.metadata import check_metadata

MAKE = shutil.which("make")
STUB_BIN = OVERLAY / "dryrun" / "tcl" / "bin"
needs_make = pytest.mark.skipif(MAKE is None, reason="make not found")


def fake_tool(folder: Path, name: str, version: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(f"#!/bin/sh\necho '****** {name} v{version} (64-bit)'\n")
    path.chmod(0o755)


# ---- tool check ---------------------------------------------------------------------------------------
@needs_make
def test_bitstream_without_tools_fails_at_once(tmp_path):
    empty = tmp_path / "empty-path"
    empty.mkdir()
    build = tmp_path / "build"
    start = time.monotonic()
    proc = subprocess.run([MAKE, "-C", str(OVERLAY), "bitstream", "BOARD=pynq-z2", f"BUILD_DIR={build}",
                           f"NETWORK={tmp_path / 'missing.json'}"],
                          env={"PATH": str(empty), "HOME": str(tmp_path)}, capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert "vitis_hls" in proc.stderr and "not found on PATH" in proc.stderr
    assert "2024.1" in proc.stderr
    assert time.monotonic() - start < 20
    assert not build.exists()  # nothing half-written


def test_missing_vivado_is_named(tmp_path, monkeypatch):
    fake_tool(tmp_path, "vitis_hls", "2024.1")
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(overlay_build.ToolError) as err:
        overlay_build.tool_versions("2024.1")
    assert str(err.value).startswith("vivado not found")


def test_tool_versions_found_and_mismatch(tmp_path, monkeypatch):
    fake_tool(tmp_path, "vitis_hls", "2024.1")
    fake_tool(tmp_path, "vivado", "2023.2")
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(overlay_build.ToolError) as err:
        overlay_build.tool_versions("2024.1")
    assert "vivado" in str(err.value) and "2023.2" in str(err.value) and "expected Vivado 2024.1" in str(err.value)
    fake_tool(tmp_path, "vivado", "2024.1")
    assert overlay_build.tool_versions("2024.1") == {"vitis_hls": "2024.1", "vivado": "2024.1"}


@needs_make
def test_tools_version_override(tmp_path):
    fake_tool(tmp_path, "vitis_hls", "2023.2")
    fake_tool(tmp_path, "vivado", "2023.2")
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"}
    base = [MAKE, "-s", "-C", str(OVERLAY), "check-tools"]
    refused = subprocess.run(base, env=env, capture_output=True, text=True)
    assert refused.returncode != 0 and "set TOOLS_VERSION=2023.2" in refused.stderr
    accepted = subprocess.run(base + ["TOOLS_VERSION=2023.2"], env=env, capture_output=True, text=True)
    assert accepted.returncode == 0, accepted.stderr
    assert "vivado: 2023.2" in accepted.stdout


# ---- the whole make flow with the stub tools ------------------------------------------------------------
@needs_make
@pytest.mark.skipif(shutil.which("tclsh") is None, reason="tclsh not found")
def test_make_bitstream_end_to_end_with_stub_tools(tmp_path, example_network):
    network = example_network
    build = tmp_path / "build"
    env = {**os.environ, "PATH": f"{STUB_BIN}:{os.environ['PATH']}", "VITCOD_STUB_RECORD_DIR": str(tmp_path)}
    proc = subprocess.run([MAKE, "-C", str(OVERLAY), "bitstream", "BOARD=zcu104", f"NETWORK={network}",
                           "MAX_BATCH=32", "CLOCK_MHZ=150", f"BUILD_DIR={build}"],
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    for name in ("vitcod.bit", "vitcod.hwh", "vitcod.json", "vitcod-zcu104.tar.gz"):
        assert (build / name).is_file(), name
    meta = json.loads((build / "vitcod.json").read_text())
    check_metadata(meta)
    assert meta["board"]["name"] == "zcu104" and meta["clock_mhz"] == 150
    assert meta["tools"] == {"vitis_hls": "2024.1 (stub)", "vivado": "2024.1 (stub)"}
    assert meta["max_batch"] == 32 and meta["input"]["values_per_word"] == 5
    assert meta["resources"]["available"]["dsp"] == 1728
    with tarfile.open(build / "vitcod-zcu104.tar.gz") as tar:
        names = sorted(tar.getnames())
        assert names == ["vitcod-zcu104/vitcod.bit", "vitcod-zcu104/vitcod.hwh", "vitcod-zcu104/vitcod.json"]
        assert json.load(tar.extractfile("vitcod-zcu104/vitcod.json")) == meta
    # the recorded steps ran in order, against the same parameters
    assert (tmp_path / "vitis_hls-build_ip.json").is_file() and (tmp_path / "vivado-bitstream.json").is_file()
    # a second run has nothing to redo and leaves the outputs alone
    bit_mtime = (build / "vitcod.bit").stat().st_mtime_ns
    again = subprocess.run([MAKE, "-C", str(OVERLAY), "bitstream", "BOARD=zcu104", f"NETWORK={network}",
                            "MAX_BATCH=32", "CLOCK_MHZ=150", f"BUILD_DIR={build}"],
                           env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0
    assert "block_design.tcl" not in again.stdout and "bitstream.tcl" not in again.stdout
    assert (build / "vitcod.bit").stat().st_mtime_ns == bit_mtime


# ---- fit check -----------------------------------------------------------------------------------------
PYNQ_Z2 = {"dsp": 220, "bram_18k": 280, "lut": 53200, "ff": 106400}


def test_fit_accepts_and_reports_utilization():
    util = check_fit({"dsp": 110, "bram_18k": 28, "lut": 26600, "ff": 0}, PYNQ_Z2, board="pynq-z2")
    assert util == {"dsp": 0.5, "bram_18k": 0.1, "lut": 0.5, "ff": 0.0, "uram": 0.0}  # no URAM asked or offered
    zcu104 = {**PYNQ_Z2, "uram": 96}
    assert check_fit({"dsp": 0, "bram_18k": 0, "lut": 0, "ff": 0, "uram": 48}, zcu104)["uram"] == 0.5


def test_fit_refuses_with_the_resources_named():
    with pytest.raises(ResourceFitError) as err:
        check_fit({"dsp": 300, "bram_18k": 10, "lut": 60000, "ff": 10}, PYNQ_Z2, board="pynq-z2")
    msg = str(err.value)
    assert "pynq-z2" in msg and "dsp: 300 needed > 220" in msg and "lut: 60000 needed > 53200" in msg
    assert "bram_18k" not in msg
    with pytest.raises(ResourceFitError, match="bram_18k"):
        check_fit({"dsp": 0, "bram_18k": 200, "lut": 0, "ff": 0}, PYNQ_Z2, max_utilization=0.5)
    with pytest.raises(ValueError, match="lacks"):
        check_fit({"dsp": 1}, PYNQ_Z2)
    with pytest.raises(ResourceFitError, match="uram: 1 needed > 0 allowed"):  # a part without URAM
        check_fit({"dsp": 0, "bram_18k": 0, "lut": 0, "ff": 0, "uram": 1}, PYNQ_Z2, board="pynq-z2")


@pytest.mark.parametrize("dsp_tag", ["DSP", "DSP48E"])
def test_csynth_report_is_read(tmp_path, dsp_tag):
    report = tmp_path / "csynth.xml"
    report.write_text(f"<profile><AreaEstimates><Resources><BRAM_18K>12</BRAM_18K><{dsp_tag}>34</{dsp_tag}>"
                      "<FF>5600</FF><LUT>7800</LUT><URAM>0</URAM></Resources></AreaEstimates></profile>")
    assert resource_estimate(report) == {"dsp": 34, "bram_18k": 12, "lut": 7800, "ff": 5600, "uram": 0}
    report.write_text(report.read_text().replace("<URAM>0</URAM>", ""))  # 7-series reports may omit it
    assert resource_estimate(report)["uram"] == 0
    report.write_text("<profile><AreaEstimates><Resources><LUT>7800</LUT></Resources></AreaEstimates></profile>")
    with pytest.raises(CsynthReportError, match="resource DSP missing"):
        resource_estimate(report)


def test_fit_command_stops_the_flow(tmp_path, capsys, example_network):
    config = OverlayConfig.create(example_network, "pynq-z2", max_batch=4, build_dir=tmp_path / "b")
    from vitcod.overlay.codegen import configure

    configure(config)
    estimate = tmp_path / "est.json"
    estimate.write_text(json.dumps({"dsp": 221, "bram_18k": 0, "lut": 0, "ff": 0}))
    assert overlay_build.main(["fit", "--build-dir", str(config.build_dir), "--estimate", str(estimate)]) == 1
    assert "design does not fit pynq-z2: dsp: 221 needed > 220" in capsys.readouterr().err
    assert not (config.build_dir / "resources.json").exists()
    estimate.write_text(json.dumps({"dsp": 220, "bram_18k": 0, "lut": 0, "ff": 0}))
    assert overlay_build.main(["fit", "--build-dir", str(config.build_dir), "--estimate", str(estimate)]) == 0
    assert json.loads((config.build_dir / "resources.json").read_text())["estimate"]["dsp"] == 220
    assert overlay_build.main(["fit", "--build-dir", str(config.build_dir)]) == 1  # no HLS report yet
    assert "run the ip step first" in capsys.readouterr().err


# ---- configuration ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("nbytes, width", [(1, 8), (255, 8), (256, 9), (40000, 16), (2**26 - 1, 26)])
def test_dma_length_width(nbytes, width):
    assert dma_length_width(nbytes) == width
    assert 2**width - 1 >= nbytes


def test_batch_too_large_for_one_transfer(tmp_path):
    network = DummyNetwork().write(tmp_path)
    with pytest.raises(ConfigError, match="at most 26 bits"):
        OverlayConfig.create(network, "pynq-z2", max_batch=2**26 // 40 + 1)  # 40 bytes per input image
    assert OverlayConfig.create(network, "pynq-z2", max_batch=(2**26 - 1) // 40).dma_length_width == 26


def test_network_description_errors(tmp_path, capsys):
    network = DummyNetwork().write(tmp_path)
    data = json.loads(network.read_text())
    del data["model_id"]
    network.write_text(json.dumps(data))
    with pytest.raises(MetadataError, match="missing keys \\['model_id'\\]"):
        OverlayConfig.create(network, "pynq-z2", max_batch=1)
    assert overlay_build.main(["configure", "--board", "pynq-z2", "--network", str(network), "--max-batch", "1",
                               "--build-dir", str(tmp_path / "b")]) == 1
    assert "missing keys ['model_id']" in capsys.readouterr().err and not (tmp_path / "b").exists()
    with pytest.raises(ConfigError, match="unknown board 'zcu102'"):
        OverlayConfig.create(DummyNetwork().write(tmp_path / "ok"), "zcu102", max_batch=1)


def test_overlay_config_round_trip_keeps_the_network(tmp_path, example_network):
    network = example_network
    data = json.loads(network.read_text())
    data["weights_dir"] = "weights"
    network.write_text(json.dumps(data))
    config = OverlayConfig.create(network, "pynq-z2", max_batch=4, build_dir=tmp_path / "b")
    again = OverlayConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert again.to_dict() == config.to_dict() and again.network == replace(config.network, path=None)
    assert again.network.weights_dir == (tmp_path / "net" / "weights").resolve()


@needs_make
@pytest.mark.vivado
@pytest.mark.slow
@pytest.mark.skipif(shutil.which("vitis_hls") is None or shutil.which("vivado") is None,
                    reason="vitis_hls / vivado not on PATH (the real build takes an hour or more)")
def test_real_bitstream_build(tmp_path, example_network):
    """The real flow on the example network, where the tools exist."""
    network = example_network
    build = tmp_path / "build"
    proc = subprocess.run([MAKE, "-C", str(OVERLAY), "bitstream", "BOARD=pynq-z2", f"NETWORK={network}",
                           "MAX_BATCH=8", f"BUILD_DIR={build}"], capture_output=True, text=True, timeout=4 * 3600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    meta = json.loads((build / "vitcod.json").read_text())
    check_metadata(meta)
    assert "(stub)" not in meta["tools"]["vivado"]
    assert (build / "vitcod.bit").stat().st_size > 100_000
