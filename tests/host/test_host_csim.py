"""vitcod.host.csim_backend: the C-simulation library of the IP top - its C ABI, its content-hash cache, and
the errors when something it needs is missing."""

from __future__ import annotations

import subprocess
from dataclasses import replace

import numpy as np
import pytest
from overlay_factory import MAX_BATCH

from vitcod.host import FORMAT_VERSION, ApType, CsimBuildError, MetadataError, NetworkDescription, StreamError, open_driver
from vitcod.host import cxx_build
from vitcod.host.csim_backend import RUN_INPUT_SHORT, RUN_OUTPUT_LONG, CsimLibrary, check_run
from vitcod.host.wire import pack


@pytest.fixture(scope="module")
def library(overlays) -> CsimLibrary:
    return CsimLibrary.build(NetworkDescription.load(overlays["fixed12"].network_json), MAX_BATCH, board="pynq-z2")


def words_for(ov, raws):
    fmt = ov.metadata.input.format
    return pack(raws, fmt.width, fmt.signed)


def test_abi_runs_a_batch(library, overlays):
    ov = overlays["fixed12"]
    raws = ov.random_raws(3, seed=1)
    out = np.zeros(3 * 2 + 4, dtype=np.uint64)  # room to spare
    run = library.run(words_for(ov, raws), 3, out)
    assert run.code == 0 and run.consumed == 15 and run.produced == 6 and run.tlast_at == 6
    np.testing.assert_array_equal(out[:6], pack(ov.net.reference(raws), 10, True))
    assert not out[6:].any()
    assert run.registers["batch_done"] == 3 and run.registers["status"] == 0
    check_run(run, 3, ov.metadata)


def test_abi_identify_run(library, overlays):
    regs = library.identify()
    model_id = int(overlays["fixed12"].net.model_id, 16)
    assert (regs["model_id_hi"], regs["model_id_lo"]) == (model_id >> 32, model_id & 0xFFFFFFFF)
    assert (regs["in_values"], regs["in_words"], regs["out_values"], regs["out_words"], regs["max_batch"]) == \
        (23, 5, 7, 2, MAX_BATCH)
    assert (regs["in_type"], regs["out_type"]) == (ApType.parse("ap_fixed<12,4>").code,
                                                   ApType.parse("ap_fixed<10,3,AP_RND,AP_SAT>").code)
    assert regs["format_version"] == FORMAT_VERSION and regs["words_read"] == 0


def test_abi_short_input_ends_at_its_tlast(library, overlays):
    ov = overlays["fixed12"]
    raws = ov.random_raws(2, seed=2)
    words = words_for(ov, raws)
    out = np.zeros(4, dtype=np.uint64)
    run = library.run(words[:-1], 2, out)  # TLAST on word 8 of 10: the IP stops there
    assert run.code == 0 and run.consumed == 9 and run.registers["words_read"] == 9
    assert run.registers["batch_done"] == 1 and run.registers["status"] == 1  # tlast_early
    assert run.produced == run.tlast_at == 4  # image 0's result, then image 1's slot (zeros) with TLAST
    np.testing.assert_array_equal(out[:2], pack(ov.net.reference(raws[:1]), 10, True))
    assert not out[2:].any()
    with pytest.raises(StreamError, match=r"status register is 0x1 \(tlast_early: TLAST came before") as err:
        check_run(run, 2, ov.metadata)
    assert err.value.status_bits == ["tlast_early"] and err.value.batch_done == 1
    assert "the IP processed 1 of 2 images" in str(err.value) and "read 9 input words, 2 images take 10" in str(err.value)


def test_abi_without_any_input_word_does_not_call_the_top(library, overlays):
    run = library.run(np.zeros(0, dtype=np.uint64), 2, np.zeros(4, dtype=np.uint64))
    assert run.code == RUN_INPUT_SHORT and run.produced == 0  # no TLAST would ever come: the IP would wait
    with pytest.raises(StreamError, match="holds no word although 2 images need 10"):
        check_run(run, 2, overlays["fixed12"].metadata)


def test_abi_drains_a_longer_input_to_its_tlast(library, overlays):
    ov = overlays["fixed12"]
    raws = ov.random_raws(3, seed=7)
    run = library.run(words_for(ov, raws), 2, np.zeros(4, dtype=np.uint64))  # 3 images sent, 2 announced
    assert run.registers["batch_done"] == 2 and run.registers["status"] == 2  # tlast_missing
    assert run.consumed == run.registers["words_read"] == 15  # every word taken: MM2S can finish
    with pytest.raises(StreamError, match="tlast_missing: the batch's last input word had no TLAST"):
        check_run(run, 2, ov.metadata)


def test_abi_drain_is_bounded_by_the_longest_dma_transfer(library, overlays):
    # 8 images of 40 bytes need a 9-bit DMA length register: a transfer carries at most 63 words
    ov = overlays["fixed12"]
    words = np.zeros(200, dtype=np.uint64)
    run = library.run(words, 1, np.zeros(2, dtype=np.uint64))
    assert run.registers["status"] == 2 | 8  # tlast_missing, drain_limit
    assert run.consumed == 5 + 63 and run.registers["batch_done"] == 1


def test_abi_reports_output_longer_than_the_buffer(library, overlays):
    ov = overlays["fixed12"]
    raws = ov.random_raws(2, seed=3)
    out = np.zeros(3, dtype=np.uint64)
    run = library.run(words_for(ov, raws), 2, out)
    assert run.code == RUN_OUTPUT_LONG and run.produced == 4
    np.testing.assert_array_equal(out, pack(ov.net.reference(raws), 10, True)[:3])


def test_abi_reports_clamped_batches(library, overlays):
    ov = overlays["fixed12"]
    raws = ov.random_raws(MAX_BATCH + 1, seed=4)
    run = library.run(words_for(ov, raws), MAX_BATCH + 1, np.zeros(2 * (MAX_BATCH + 1), dtype=np.uint64))
    # clamped to max_batch; the last image it read did not carry TLAST (the extra one did)
    assert run.registers["batch_done"] == MAX_BATCH and run.registers["status"] == 4 | 2
    assert run.consumed == 5 * (MAX_BATCH + 1)  # the extra image is drained, so the DMA can finish
    assert run.tlast_at == run.produced == 2 * MAX_BATCH
    with pytest.raises(StreamError, match=r"status register is 0x6 \(tlast_missing, batch_clamped: "):
        check_run(run, MAX_BATCH + 1, ov.metadata)


def test_abi_checks_buffer_types(library):
    with pytest.raises(TypeError, match="uint64"):
        library.run(np.zeros(5, dtype=np.int64), 1, np.zeros(2, dtype=np.uint64))


def test_second_build_comes_from_the_cache(library, overlays, monkeypatch):
    def no_compiler(*args, **kwargs):
        raise AssertionError("compiled again although nothing changed")
    monkeypatch.setattr(cxx_build.subprocess, "run", no_compiler)
    monkeypatch.setattr(cxx_build, "_compiler_ids", {"g++": cxx_build._compiler_ids.get("g++", "g++ (cached)")})
    again = CsimLibrary.build(NetworkDescription.load(overlays["fixed12"].network_json), MAX_BATCH, board="pynq-z2")
    assert again.path == library.path
    assert (library.path.parent / "vitcod_top_config.h").is_file()  # kept for debugging


def test_cache_key_follows_the_network_sources(tmp_path, library, overlays, monkeypatch):
    compiled: list = []

    def fake_compile(generated, target, *args):
        compiled.append(target)
        raise CsimBuildError("stop here")
    monkeypatch.setattr(CsimLibrary, "_compile", staticmethod(fake_compile))
    net = NetworkDescription.load(overlays["fixed12"].network_json)
    header = net.include_dirs[0] / "dummy_net.h"
    copy = tmp_path / "net"
    copy.mkdir()
    (copy / "dummy_net.h").write_text(header.read_text().replace("% 5) - 2", "% 5) - 1"))
    (copy / "dummy_net.cpp").write_text('#include "dummy_net.h"\n')
    changed = replace(net, sources=(copy / "dummy_net.cpp",), include_dirs=(copy,))
    with pytest.raises(CsimBuildError, match="stop here"):
        CsimLibrary.build(changed, MAX_BATCH, board="pynq-z2")
    with pytest.raises(CsimBuildError, match="stop here"):
        CsimLibrary.build(net, MAX_BATCH + 1, board="pynq-z2")
    assert len(set(compiled)) == 2 and library.path not in compiled  # each change: a new library


def test_missing_inputs_are_reported(tmp_path, overlays):
    net = NetworkDescription.load(overlays["fixed12"].network_json)
    with pytest.raises(CsimBuildError, match="VITCOD_OVERLAY_IP"):
        CsimLibrary.build(net, MAX_BATCH, ip_dir=tmp_path)
    with pytest.raises(CsimBuildError, match="ap_fixed.h not found"):
        CsimLibrary.build(net, MAX_BATCH, ap_types=tmp_path)
    gone = replace(net, sources=(tmp_path / "gone.cpp",))
    with pytest.raises(CsimBuildError, match="gone.cpp not found"):
        CsimLibrary.build(gone, MAX_BATCH)
    with pytest.raises(CsimBuildError, match="not found on PATH"):
        CsimLibrary.build(net, MAX_BATCH, cxx="no-such-compiler")


def test_compiler_errors_are_shown(tmp_path, overlays, monkeypatch):
    def failing(cmd, **kwargs):
        return subprocess.CompletedProcess(cmd, 1, "", "dummy_net.h:3: error: expected ';'")
    monkeypatch.setattr(cxx_build.subprocess, "run", failing)
    monkeypatch.setattr(cxx_build, "_compiler_ids", {"g++": "g++ (test)"})
    net = NetworkDescription.load(overlays["fixed12"].network_json)
    with pytest.raises(CsimBuildError, match="expected ';'"):
        CsimLibrary.build(net, MAX_BATCH, cache=tmp_path)
    assert not list(tmp_path.rglob("*.so"))


def test_driver_without_an_overlay_folder(overlays):
    ov = overlays["fixed12"]
    drv = open_driver(None, backend="csim", network=ov.network_json, max_batch=MAX_BATCH)
    assert drv.metadata.board == "unbuilt" and drv.metadata.model_id_hex == ov.net.model_id
    assert drv.metadata.path == ov.network_json  # errors name the description the driver runs with
    raws = ov.random_raws(9, seed=5)
    np.testing.assert_array_equal(drv.execute_raw(raws), ov.net.reference(raws))
    with pytest.raises(MetadataError, match="give max_batch"):
        open_driver(None, backend="csim", network=ov.network_json)
