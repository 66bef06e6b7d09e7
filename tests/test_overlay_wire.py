"""Tests for overlay/scripts/wire_format.py: the packed-word format of the overlay's AXI4-Stream."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest


from vitcod.overlay import wire_format as wf


def test_hand_packed_word_layout():
    # 12-bit signed values: 5 per word, value k at bits [12k, 12k+12), top 4 bits zero.
    raws = [-1, 2, 3, -2048, 2047, 5, 7]
    expected0 = 0xFFF | (2 << 12) | (3 << 24) | (0x800 << 36) | (0x7FF << 48)
    expected1 = 5 | (7 << 12)  # second word: 2 values, 3 empty slots stay zero
    words = wf.pack(np.array(raws), 12, signed=True)
    assert words.dtype == np.uint64
    assert [int(w) for w in words] == [expected0, expected1]
    assert expected0 >> 60 == 0
    np.testing.assert_array_equal(wf.unpack(words, 7, 12, signed=True), [raws])


@pytest.mark.parametrize("width", [1, 3, 8, 10, 12, 16, 21, 32, 33, 62])
@pytest.mark.parametrize("signed", [True, False])
def test_roundtrip_and_geometry(width, signed):
    rng = np.random.default_rng(width)
    n, batch = 37, 4
    lo, hi = (-(1 << (width - 1)), (1 << (width - 1)) - 1) if signed else (0, (1 << width) - 1)
    raws = rng.integers(lo, hi, size=(batch, n), endpoint=True, dtype=np.int64)
    raws[0, 0], raws[0, 1] = lo, hi  # the extremes travel too
    words = wf.pack(raws, width, signed)
    vpw = 64 // width
    assert wf.values_per_word(width) == vpw
    assert wf.words_per_image(n, width) == -(-n // vpw)
    assert words.size == batch * -(-n // vpw)
    np.testing.assert_array_equal(wf.unpack(words, n, width, signed), raws)


def test_each_image_starts_on_a_fresh_word():
    raws = np.arange(2 * 7).reshape(2, 7) - 5
    both = wf.pack(raws, 12, signed=True)
    separate = np.concatenate([wf.pack(raws[0], 12, True), wf.pack(raws[1], 12, True)])
    np.testing.assert_array_equal(both, separate)
    assert both.size == 4  # 2 words per image, never shared


def test_out_of_range_and_non_integer_raws_are_rejected():
    with pytest.raises(wf.WireFormatError, match="does not fit"):
        wf.pack(np.array([2048]), 12, signed=True)
    with pytest.raises(wf.WireFormatError, match="does not fit"):
        wf.pack(np.array([-1]), 8, signed=False)
    with pytest.raises(wf.WireFormatError, match="integers"):
        wf.pack(np.array([0.5]), 8, signed=True)


def test_unpack_checks_word_count_and_padding():
    words = wf.pack(np.array([[1, 2, 3, 4, 5, 6, 7]]), 12, signed=True)
    with pytest.raises(wf.WireFormatError, match="whole number of images"):
        wf.unpack(words[:1], 7, 12, signed=True)
    bad_slot = words.copy()
    bad_slot[1] |= np.uint64(1 << 30)  # third slot of the last word is padding
    with pytest.raises(wf.WireFormatError, match="padding"):
        wf.unpack(bad_slot, 7, 12, signed=True)
    bad_top = words.copy()
    bad_top[0] |= np.uint64(1 << 63)  # bits above 5 * 12 = 60
    with pytest.raises(wf.WireFormatError, match="bits above 60"):
        wf.unpack(bad_top, 7, 12, signed=True)
    assert wf.unpack(bad_top, 7, 12, signed=True, strict=False).shape == (1, 7)


@pytest.mark.parametrize("cpp, width, integer, signed", [
    ("ap_fixed<16,6>", 16, 6, True),
    ("ap_fixed<10, 3, AP_RND, AP_SAT>", 10, 3, True),
    ("ap_ufixed<8,0>", 8, 0, False),
    ("ap_int<7>", 7, 7, True),
    ("ap_uint<12>", 12, 12, False),
])
def test_wire_type_parse(cpp, width, integer, signed):
    t = wf.WireType.parse(cpp)
    assert (t.width, t.integer, t.signed, t.frac) == (width, integer, signed, width - integer)


@pytest.mark.parametrize("cpp", ["float", "ap_fixed<63,1>", "ap_fixed<0,0>", "int"])
def test_wire_type_rejects_unsupported(cpp):
    with pytest.raises(wf.WireFormatError):
        wf.WireType.parse(cpp)
