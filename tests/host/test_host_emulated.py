"""The emulated board (vitcod.host.emulated) and the pynq backend's transport (vitcod.host.overlay):
pynq.Overlay built from the generated .hwh binds PYNQ's real DMA driver, the register models behave
as PG021 / ap_ctrl_hs say, and the driver turns hangs and DMA error bits into clear exceptions
within its timeout - leaving itself usable for the next call."""

from __future__ import annotations

import hashlib
import json
import time
import warnings

import numpy as np
import pytest

with warnings.catch_warnings():  # pynqutils imports pkg_resources, deprecated by setuptools
    warnings.simplefilter("ignore", DeprecationWarning)
    import pynq
    from pynq.lib.dma import DMA, _SDMAChannel
from overlay_factory import make_overlay

from vitcod.host import (DeviceError, DeviceTimeoutError, DmaError, NetworkDescription, OverlayMismatchError,
                         StreamError, open_driver)
from vitcod.host.csim_backend import CsimLibrary
from vitcod.host.emulated import DMA_BASE, IP_BASE, EmulatedDevice, emulation_hwh
from vitcod.host.overlay import AP_CTRL, DMASR, LENGTH, MM2S, S2MM, VitcodOverlay

pytestmark = pytest.mark.filterwarnings("ignore:pkg_resources is deprecated:DeprecationWarning")


@pytest.fixture()
def ov(overlays):
    return overlays["fixed12"]


@pytest.fixture()
def emulated(ov) -> VitcodOverlay:
    return open_driver(ov.folder, backend="emulated", timeout=2.0)


def check_results(drv, ov, n: int = 11, seed: int = 0) -> None:
    raws = ov.random_raws(n, seed=seed)
    np.testing.assert_array_equal(drv.execute_raw(raws), ov.net.reference(raws))


# ---- pynq's own code runs ------------------------------------------------------------------------------
def test_pynq_overlay_binds_its_dma_driver(emulated):
    assert isinstance(emulated, pynq.Overlay) and emulated.is_loaded()
    assert isinstance(emulated.device, EmulatedDevice) and emulated.backend == "emulated"
    assert type(emulated.axi_dma_0) is DMA and emulated._dma is not None
    assert isinstance(emulated.axi_dma_0.sendchannel, _SDMAChannel)
    assert isinstance(emulated.axi_dma_0.recvchannel, _SDMAChannel)
    assert emulated.axi_dma_0.buffer_max_size == 2 ** emulated.metadata.dma_length_width - 1
    assert emulated.ip_dict["axi_dma_0"]["phys_addr"] == DMA_BASE
    assert emulated.ip_dict["vitcod_0"]["type"] == "vitcod:hls:vitcod_top:1.0"
    assert emulated.ip_dict["vitcod_0"]["registers"]["model_id_lo"]["address_offset"] == 0x30
    assert emulated.device.stats["downloads"] == 1


def test_generated_hwh_describes_the_block_design(ov):
    from pynq.metadata.runtime_metadata_parser import RuntimeMetadataParser
    from pynqmetadata.frontends import Metadata

    text = emulation_hwh(ov.metadata)
    path = ov.folder.parent / "emulation.hwh"
    path.write_text(text)
    parser = RuntimeMetadataParser(Metadata(input=str(path)))
    dma = parser.ip_dict["axi_dma_0"]
    assert dma["type"] == "xilinx.com:ip:axi_dma:7.1" and dma["addr_range"] == 0x10000
    assert {k: dma["parameters"][k] for k in ("c_include_sg", "c_sg_length_width", "c_m_axis_mm2s_tdata_width")} == \
        {"c_include_sg": "0", "c_sg_length_width": str(ov.metadata.dma_length_width), "c_m_axis_mm2s_tdata_width": "64"}
    registers = parser.ip_dict["vitcod_0"]["registers"]
    assert parser.ip_dict["vitcod_0"]["phys_addr"] == IP_BASE
    assert {name: reg["address_offset"] for name, reg in registers.items() if name in ov.metadata.registers} == \
        ov.metadata.registers
    assert registers["batch_done_ctrl"]["address_offset"] == 0x1C  # ap_vld after each read-only register
    assert parser.clock_dict[0]["enable"] == 1


def test_flush_and_invalidate_are_needed_and_done(emulated, ov, monkeypatch):
    stats = emulated.device.stats
    before = dict(stats)
    check_results(emulated, ov, n=3)
    assert stats["runs"] == before["runs"] + 1
    assert stats["flushes"] == before["flushes"] + 1 and stats["invalidates"] == before["invalidates"] + 1
    # the model is not coherent: without the invalidate the CPU would read stale memory
    monkeypatch.setattr(pynq.buffer.PynqBuffer, "invalidate", lambda self: None)
    raws = ov.random_raws(3, seed=99)
    assert not np.array_equal(emulated.execute_raw(raws), ov.net.reference(raws))


def test_dma_model_sets_pg021_error_bits_for_bad_transfers(emulated):
    dma = emulated.axi_dma_0
    buf = pynq.allocate((16,), dtype=np.uint64, target=emulated.device)
    dma.write(MM2S + 0x18, buf.physical_address)
    dma.write(MM2S + LENGTH, 0)  # zero length: DMAIntErr, and the channel halts
    assert dma.read(MM2S + DMASR) & 0x11 == 0x11
    assert dma.sendchannel.error and not dma.sendchannel.running  # PYNQ's reading of the bits
    assert dma.recvchannel.running and not dma.recvchannel.error
    dma.write(S2MM + 0x18, 0x0BAD_0000)  # no buffer there: decode error
    dma.write(S2MM + LENGTH, 64)
    assert dma.read(S2MM + DMASR) & 0x41 == 0x41 and dma.recvchannel.error
    emulated.recover()  # DMA reset + restart: both channels run again, errors cleared
    assert dma.sendchannel.running and dma.recvchannel.running
    assert not dma.sendchannel.error and not dma.recvchannel.error


# ---- hangs and errors ---------------------------------------------------------------------------------------
def test_a_hang_times_out_within_the_timeout_and_the_driver_recovers(emulated, ov):
    emulated.timeout = 0.3
    emulated.device.inject_fault("hang")
    raws = ov.random_raws(5, seed=1)
    start = time.monotonic()
    with pytest.raises(DeviceTimeoutError) as err:
        emulated.execute_raw(raws)
    elapsed = time.monotonic() - start
    assert 0.3 <= elapsed < 1.5, elapsed  # the deadline, plus recovery (DMA reset, reload, identify)
    assert err.value.timeout == 0.3
    assert set(err.value.waiting_for) == {"MM2S idle", "S2MM idle", "IP ap_done"}
    assert "did not finish within 0.3 s" in str(err.value)
    assert emulated.recoveries == 1 and emulated.device.stats["downloads"] == 2  # the IP was stuck: reloaded
    check_results(emulated, ov)


@pytest.mark.parametrize("bit", ["DMAIntErr", "DMASlvErr", "DMADecErr"])
@pytest.mark.parametrize("channel", ["MM2S", "S2MM"])
def test_dma_error_bits_raise_with_the_bit_named(emulated, ov, bit, channel):
    emulated.device.inject_fault(bit, channel)
    with pytest.raises(DmaError) as err:
        emulated.execute_raw(ov.random_raws(4, seed=2))
    assert (err.value.channel, err.value.bits) == (channel, [bit])
    assert f"DMA {channel} channel reported {bit}" in str(err.value)
    assert err.value.status & 0x1  # the channel halted
    check_results(emulated, ov)  # usable again


def test_every_wait_is_bounded_even_the_identify_run(emulated, ov):
    emulated.timeout = 0.2
    emulated.device.inject_fault("hang")
    start = time.monotonic()
    with pytest.raises(DeviceTimeoutError, match="identify run"):
        emulated.identify()
    assert time.monotonic() - start < 1.0
    check_results(emulated, ov)  # the next call finds the IP busy, reloads, and runs


def test_an_ip_stuck_even_after_a_reload_is_reported(emulated, ov):
    emulated.device.ip.take_start()  # busy, and a reload will not help:
    emulated.device.download = lambda bitstream, parser=None: None
    with pytest.raises(DeviceError, match="still busy after the bitstream was downloaded again"):
        emulated.execute_raw(ov.random_raws(2))


def test_a_wrong_output_length_is_reported(emulated, ov, monkeypatch):
    real_run = emulated.device.library.run

    def one_word_short(in_words, batch, out_words):  # the S2MM packet ends a word early
        run = real_run(in_words, batch, out_words)
        run.tlast_at -= 1
        return run
    monkeypatch.setattr(emulated.device.library, "run", one_word_short)
    with pytest.raises(StreamError, match="7 output words arrived, expected 8"):
        emulated.execute_raw(ov.random_raws(4, seed=3))
    monkeypatch.undo()
    check_results(emulated, ov)


def test_the_ip_model_follows_ap_ctrl_hs(emulated):
    ip = emulated._ip
    assert ip.read(AP_CTRL) & 0x4  # idle
    ip.write(emulated.metadata.registers["batch_count"], 0)
    ip.write(AP_CTRL, 1)
    first, second = ip.read(AP_CTRL), ip.read(AP_CTRL)
    assert first & 0x2 and not second & 0x2  # ap_done is clear-on-read
    assert ip.read(0x18 + 4) == 1 and ip.read(0x18 + 4) == 0  # ap_vld of batch_done, clear-on-read
    ip.write(emulated.metadata.registers["batch_count"], 2)
    ip.write(AP_CTRL, 1)  # started, but no stream yet: not idle, not done
    assert ip.read(AP_CTRL) & 0x6 == 0


# ---- refusing overlays that do not match vitcod.json ------------------------------------------------------
def test_dma_or_ip_missing_from_the_hwh_is_refused(tmp_path, ov):
    def renamed(meta):
        meta["dma"]["name"] = "axi_dma_1"
    other = make_overlay(tmp_path, edit=renamed)
    hwh = tmp_path / "design.hwh"
    hwh.write_text(emulation_hwh(ov.metadata))  # the design has axi_dma_0
    with pytest.raises(OverlayMismatchError, match="'axi_dma_1'.*no such IP"):
        open_driver(other.folder, backend="emulated", hwh=hwh)


def test_ip_of_another_type_is_refused(tmp_path, ov):
    def other_vlnv(meta):
        meta["ip"]["vlnv"] = "vitcod:hls:vitcod_top:2.0"
    other = make_overlay(tmp_path, edit=other_vlnv)
    hwh = tmp_path / "design.hwh"
    hwh.write_text(emulation_hwh(ov.metadata))
    with pytest.raises(OverlayMismatchError, match="vitcod_top:1.0, vitcod.json expects vitcod:hls:vitcod_top:2.0"):
        open_driver(other.folder, backend="emulated", hwh=hwh, network=other.network_json)


def test_dma_configured_differently_is_refused(tmp_path, ov):
    hwh = tmp_path / "design.hwh"
    hwh.write_text(emulation_hwh(ov.metadata).replace('NAME="c_include_sg" VALUE="0"', 'NAME="c_include_sg" VALUE="1"'))
    with pytest.raises(OverlayMismatchError, match="scatter-gather is enabled"):
        open_driver(ov.folder, backend="emulated", hwh=hwh)


def test_pynq_backend_on_a_deployed_overlay_folder(tmp_path, ov):
    # as on a board: vitcod.{bit,hwh,json} side by side, checksums verified, bitstream "downloaded"
    deployed = make_overlay(tmp_path)
    (deployed.folder / "vitcod.hwh").write_text(emulation_hwh(deployed.metadata))
    meta = json.loads((deployed.folder / "vitcod.json").read_text())
    meta["files"]["hwh"]["sha256"] = hashlib.sha256((deployed.folder / "vitcod.hwh").read_bytes()).hexdigest()
    (deployed.folder / "vitcod.json").write_text(json.dumps(meta))
    library = CsimLibrary.build(NetworkDescription.load(deployed.network_json), deployed.metadata.max_batch,
                                board="pynq-z2")
    device = EmulatedDevice(library, deployed.metadata.ip_vlnv, deployed.metadata.registers)
    drv = VitcodOverlay(deployed.folder, device=device)  # the board's call, with another device
    assert drv.bitfile_name == str((deployed.folder / "vitcod.bit").resolve())
    assert device.stats["downloads"] == 1 and drv.is_loaded()
    check_results(drv, ov)


def test_pynq_backend_checks_the_files_before_loading(tmp_path, ov):
    other = make_overlay(tmp_path)
    (other.folder / "vitcod.bit").write_bytes(b"a bitstream from another build")
    device = EmulatedDevice(None, other.metadata.ip_vlnv, other.metadata.registers)
    with pytest.raises(OverlayMismatchError, match="come from different builds"):
        open_driver(other.folder, backend="pynq", device=device)
    (other.folder / "vitcod.hwh").unlink()
    with pytest.raises(OverlayMismatchError, match="vitcod.hwh not found"):
        open_driver(other.folder, backend="pynq", device=device)
    assert device.stats["downloads"] == 0
