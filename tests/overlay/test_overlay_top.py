"""C simulation of the overlay IP top (overlay/ip/vitcod_top.h + vitcod_top.cpp) with g++.

The top is compiled with the example network of vitcod.overlay.example (an exact numpy reference)
and the config header that vitcod.overlay.codegen generates, then driven by
overlay/ip/sim/vitcod_top_tb.cpp: packed words in, packed words + TLAST/TKEEP + registers out.
Outputs are compared bit for bit with the reference packed by the overlay contract
(vitcod.host.contract.pack).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytest

from vitcod.overlay.config import OVERLAY_DIR as OVERLAY

from vitcod.host import contract
from vitcod.host.cxx_build import ap_types_dir
from vitcod.overlay.codegen import configure
from vitcod.overlay.config import OverlayConfig
from vitcod.overlay.example import DummyNetwork

MAX_BATCH = 6

# Two networks: signed 12-bit in (5 per word, last word partly empty) -> rounded, saturated 10-bit
# out; unsigned 8-bit pixels (8 per word, exact fit) -> truncated, wrapping 16-bit out.
NETWORKS = {
    "fixed12_sat": DummyNetwork("ap_fixed<12,4>", "ap_fixed<10,3,AP_RND,AP_SAT>", n_in=23, n_out=7,
                                content_id="0x0123456789abcdef"),
    "ufixed8_wrap": DummyNetwork("ap_ufixed<8,0>", "ap_fixed<16,2>", n_in=64, n_out=10,
                                 content_id="0xfedcba9876543210"),
}
# Their io_stream twins (the DATAFLOW top of vitcod_top_stream.h): same arithmetic, hls4ml's stream
# signature; the 8-bit one streams pixels of 4 channels (input shape [16, 4]).
STREAM_TWINS = {"fixed12_sat_stream": "fixed12_sat", "ufixed8_wrap_stream": "ufixed8_wrap"}
for _key, _twin in STREAM_TWINS.items():
    NETWORKS[_key] = replace(NETWORKS[_twin], io_type="io_stream")
SHAPES = {"ufixed8_wrap_stream": [16, 4]}


@dataclass
class Top:
    net: DummyNetwork
    config: OverlayConfig
    binary: Path
    workdir: Path

    @property
    def config_drain_limit(self) -> int:
        """The drain bound the generated header gives the IP: the longest transfer of this build's DMA."""
        return contract.max_transfer_words(self.config.dma_length_width)

    def random_raws(self, batch: int, seed: int) -> np.ndarray:
        t = self.config.input.format
        return np.random.default_rng(seed).integers(t.min_raw, t.max_raw, size=(batch, self.net.n_in),
                                                    endpoint=True, dtype=np.int64)

    def run(self, batch_count: int, words: np.ndarray, last: np.ndarray | None = None) -> dict:
        """Stream ``words`` (TLAST on the final one unless ``last`` says otherwise) into the top."""
        if last is None:
            last = np.zeros(words.size, dtype=int)
            if words.size:
                last[-1] = 1
        infile = self.workdir / f"in_{os.getpid()}_{batch_count}.txt"
        infile.write_text("".join(f"{int(w):016x} {int(t)}\n" for w, t in zip(words, last)))
        proc = subprocess.run([str(self.binary), str(batch_count), str(infile)], capture_output=True,
                              text=True, timeout=30, check=True)
        regs, out = {}, []
        left = None
        for line in proc.stdout.splitlines():
            kind, *rest = line.split()
            if kind == "reg":
                regs[rest[0]] = int(rest[1])
            elif kind == "out":
                out.append((int(rest[0], 16), int(rest[1]), int(rest[2]), int(rest[3])))
            elif kind == "left_in":
                left = int(rest[0])
        arr = np.array(out, dtype=np.uint64).reshape(-1, 4)
        return {"regs": regs, "words": arr[:, 0], "last": arr[:, 1], "keep": arr[:, 2], "strb": arr[:, 3],
                "left_in": left}


@pytest.fixture(scope="module")
def tops(tmp_path_factory) -> dict[str, Top]:
    """Both networks' C-simulation binaries, compiled concurrently (g++ -std=c++11, one unit each)."""
    if shutil.which("g++") is None:
        pytest.skip("g++ not found")
    builds = {}
    for key, net in NETWORKS.items():
        work = tmp_path_factory.mktemp(key)
        config = OverlayConfig.create(net.write(work / "net", SHAPES.get(key)), "pynq-z2", max_batch=MAX_BATCH, build_dir=work / "build")
        configure(config)
        unit = work / "unit.cpp"  # top + harness in one translation unit: ap_types is parsed once
        unit.write_text('#include "vitcod_top.cpp"\n#include "vitcod_top_tb.cpp"\n')
        includes = [OVERLAY / "ip" / "sim", OVERLAY / "ip", config.config_header.parent, work / "net", ap_types_dir()]
        cmd = ["g++", "-std=c++11", "-O1", "-w", *(f"-I{d}" for d in includes), str(unit), "-o", str(work / "tb")]
        builds[key] = (Top(net, config, work / "tb", work), subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True))
    for key, (top, proc) in builds.items():
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, f"{key}: {err[-3000:]}"
    return {key: top for key, (top, _) in builds.items()}


@pytest.fixture(params=sorted(NETWORKS))
def top(request, tops) -> Top:
    return tops[request.param]


def test_reference_is_not_trivial(top):
    # The check below would be weak if every output saturated/wrapped to the same few values.
    raws = top.random_raws(64, seed=1)
    ref = top.net.reference(raws)
    t = top.config.output.format
    assert len(np.unique(ref)) > 20
    if "AP_SAT" in t.cpp:
        assert np.any(ref == t.max_raw) and np.any(ref == t.min_raw)
        assert np.any((ref > t.min_raw) & (ref < t.max_raw))
    else:  # wrapping: some exact sums lie outside the type's range (output has more fraction bits here)
        exact = (raws @ top.net.coefficients()) << (t.frac - top.config.input.format.frac)
        assert np.any((exact < t.min_raw) | (exact > t.max_raw))


@pytest.mark.parametrize("batch", [1, 3, MAX_BATCH])
def test_batch_matches_reference_bit_exact(top, batch):
    raws = top.random_raws(batch, seed=batch)
    res = top.run(batch, contract.pack(raws, top.config.input.format.width, top.config.input.format.signed))
    out_t = top.config.output.format
    expected = contract.pack(top.net.reference(raws), out_t.width, out_t.signed)
    assert res["words"].size == batch * top.config.output.words_per_image
    np.testing.assert_array_equal(res["words"], expected)
    np.testing.assert_array_equal(contract.unpack(res["words"], top.net.n_out, out_t.width, out_t.signed),
                                  top.net.reference(raws))
    # TLAST exactly on the last word of the whole transfer; all bytes valid
    assert np.flatnonzero(res["last"]).tolist() == [res["words"].size - 1]
    assert np.all(res["keep"] == 0xFF) and np.all(res["strb"] == 0xFF)
    assert res["left_in"] == 0
    assert res["regs"]["batch_done"] == batch
    assert res["regs"]["status"] == 0


def test_registers_hold_identity_and_geometry(top):
    regs = top.run(0, np.zeros(0, dtype=np.uint64))["regs"]
    mid = int(contract.model_identifier(*top.net.tensors(list(top.config.input.shape))), 16)
    assert regs["model_id_lo"] == mid & 0xFFFFFFFF
    assert regs["model_id_hi"] == mid >> 32
    assert regs["format_version"] == contract.FORMAT_VERSION
    cin, cout = top.config.input, top.config.output
    assert (regs["in_values"], regs["in_words"]) == (top.net.n_in, contract.words_per_image(top.net.n_in, cin.format.width))
    assert (regs["out_values"], regs["out_words"]) == (top.net.n_out, contract.words_per_image(top.net.n_out, cout.format.width))
    assert regs["max_batch"] == MAX_BATCH
    # the C++ types, coded by the IP itself: what the contract's type_code gives for the spellings
    assert (regs["in_type"], regs["out_type"]) == (cin.format.code, cout.format.code)
    assert regs["batch_done"] == 0 and regs["status"] == 0 and regs["words_read"] == 0


def test_zero_batch_moves_no_data(top):
    words = contract.pack(top.random_raws(1, seed=9), top.config.input.format.width, top.config.input.format.signed)
    res = top.run(0, words)
    assert res["words"].size == 0
    assert res["left_in"] == words.size and res["regs"]["words_read"] == 0  # nothing consumed


def packed(top, raws):
    t = top.config.input.format
    return contract.pack(raws, t.width, t.signed)


def results(top, raws):
    t = top.config.output.format
    return contract.pack(top.net.reference(raws), t.width, t.signed)


def test_batch_count_above_max_is_clamped_and_the_rest_drained(top):
    raws = top.random_raws(MAX_BATCH + 1, seed=42)
    words = packed(top, raws)
    res = top.run(MAX_BATCH + 1, words)
    assert res["regs"]["batch_done"] == MAX_BATCH
    assert res["regs"]["status"] == 4 | 2  # batch_clamped; the last image processed had no TLAST
    np.testing.assert_array_equal(res["words"], results(top, raws[:MAX_BATCH]))
    assert res["left_in"] == 0 and res["regs"]["words_read"] == words.size  # the extra image drained: MM2S ends
    assert np.flatnonzero(res["last"]).tolist() == [res["words"].size - 1]


def test_a_longer_transfer_is_drained_to_its_tlast(top):
    raws = top.random_raws(3, seed=5)
    words = packed(top, raws)  # three images sent, two announced
    res = top.run(2, words)
    assert res["regs"]["status"] == 2 and res["regs"]["batch_done"] == 2  # tlast_missing
    np.testing.assert_array_equal(res["words"], results(top, raws[:2]))
    assert np.flatnonzero(res["last"]).tolist() == [res["words"].size - 1]
    assert res["left_in"] == 0 and res["regs"]["words_read"] == words.size


def test_an_early_tlast_inside_an_image_stops_the_reading(top):
    raws = top.random_raws(2, seed=6)
    words = packed(top, raws)
    last = np.zeros(words.size, dtype=int)
    last[0] = 1  # a transfer of one word (what the IP sees of a short DMA transfer)
    res = top.run(2, words, last=last)
    wpi_out = top.config.output.words_per_image
    assert res["regs"]["status"] == 1 and res["regs"]["batch_done"] == 0  # tlast_early, nothing processed
    assert res["regs"]["words_read"] == 1 and res["left_in"] == words.size - 1  # not a word past TLAST
    assert res["words"].size == wpi_out and not res["words"].any()  # the cut image's slot: zeros...
    assert np.flatnonzero(res["last"]).tolist() == [wpi_out - 1]  # ... ending the packet, so S2MM completes


def test_an_early_tlast_between_images_ends_the_batch_there(top):
    raws = top.random_raws(3, seed=8)
    words = packed(top, raws)
    wpi = top.config.input.words_per_image
    last = np.zeros(words.size, dtype=int)
    last[wpi - 1] = 1  # one image sent, three announced
    res = top.run(3, words, last=last)
    assert res["regs"]["status"] == 1 and res["regs"]["batch_done"] == 1
    np.testing.assert_array_equal(res["words"], results(top, raws[:1]))  # the whole image is processed
    assert np.flatnonzero(res["last"]).tolist() == [res["words"].size - 1]
    assert res["regs"]["words_read"] == wpi and res["left_in"] == words.size - wpi


def test_draining_stops_after_the_longest_dma_transfer(top):
    raws = top.random_raws(1, seed=9)
    words = np.concatenate([packed(top, raws), np.zeros(300, dtype=np.uint64)])  # no TLAST in reach
    res = top.run(1, words)
    drain = top.config_drain_limit
    assert res["regs"]["status"] == 2 | 8  # tlast_missing, drain_limit
    assert res["regs"]["words_read"] == top.config.input.words_per_image + drain
    assert res["left_in"] == 300 - drain
    np.testing.assert_array_equal(res["words"], results(top, raws))


def _scenarios(top):
    """(batch_count, words, last) of every case above: whole batches, clamped, longer, early TLAST, no TLAST."""
    raws = top.random_raws(MAX_BATCH + 1, seed=77)
    words = packed(top, raws)
    wpi = top.config.input.words_per_image
    early_in = np.zeros(words.size, dtype=int)
    early_in[0] = 1
    early_between = np.zeros(words.size, dtype=int)
    early_between[2 * wpi - 1] = 1
    long_words = np.concatenate([words[:wpi], np.zeros(300, dtype=np.uint64)])
    return [(3, words[:3 * wpi], None), (MAX_BATCH, words[:MAX_BATCH * wpi], None), (MAX_BATCH + 1, words, None),
            (2, words[:3 * wpi], None), (3, words, early_in), (4, words, early_between), (1, long_words, None),
            (0, words[:wpi], None)]


@pytest.mark.parametrize("key", sorted(STREAM_TWINS))
def test_stream_top_matches_its_io_parallel_twin(tops, key):
    """The DATAFLOW top gives the io_parallel top's words, TLAST, TKEEP, registers and leftovers in
    every case (the model identifiers differ: io_type enters them)."""
    stream, parallel = tops[key], tops[STREAM_TWINS[key]]
    assert stream.net.model_id != parallel.net.model_id
    for batch, words, last in _scenarios(stream):
        a, b = stream.run(batch, words, last), parallel.run(batch, words, last)
        for field in ("words", "last", "keep", "strb"):
            np.testing.assert_array_equal(a[field], b[field], err_msg=f"batch {batch}: {field}")
        assert a["left_in"] == b["left_in"]
        skip = {"model_id_lo", "model_id_hi"}
        assert {k: v for k, v in a["regs"].items() if k not in skip} == \
            {k: v for k, v in b["regs"].items() if k not in skip}, f"batch {batch}"
