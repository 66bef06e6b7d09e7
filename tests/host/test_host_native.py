"""The compiled quantize+pack kernel (host/native/quantize_pack.c) against the numpy reference.

The reference is FixedFormat.round_float + pack (the general numpy path). The kernel has one
portable C path (the one the boards' Arm cores run); every case must give the reference's words
and saturation count bit for bit.
"""

import os
import shutil
import subprocess
import sysconfig
from pathlib import Path

import numpy as np
import pytest

from vitcod.host import FixedFormat, WireFormatError, native_kernel, quantize_pack, unpack
from vitcod.host import wire
from vitcod.host.wire import _pack_checked, words_per_image


def kernel():
    if wire._native is None:
        pytest.skip("compiled kernel not built or disabled")
    return wire._native


def reference(x, fmt):
    raws, saturated = fmt.round_float(x)
    return _pack_checked(raws, fmt.width, fmt.signed, None), saturated


def run_kernel(x, fmt):
    words = np.empty(x.shape[0] * words_per_image(x.shape[1], fmt.width), dtype=np.uint64)
    saturated = kernel().quantize_pack(x, words, x.shape[1], *fmt.conversion_plan)
    return words, saturated


def edge_values(fmt, dtype, rng, n_uniform=3000):
    """Ties and their neighbours, range bounds, infinities, huge and tiny values, random values."""
    lsb = fmt.lsb
    raws = np.unique(np.concatenate([np.linspace(fmt.host_min_raw, fmt.max_raw, 97).round(),
                                     [fmt.host_min_raw, fmt.max_raw, 0, 1, -1]]))
    ties = (raws + 0.5) * lsb
    around = np.concatenate([np.nextafter(ties.astype(dtype), dtype(np.inf)),
                             np.nextafter(ties.astype(dtype), dtype(-np.inf))])
    half_below = np.nextafter(dtype(0.5), dtype(0))
    special = np.array([0.0, -0.0, 0.5 * lsb, -0.5 * lsb, half_below * lsb, -half_below * lsb, 1.5 * lsb,
                        -1.5 * lsb, fmt.min_value - 0.5 * lsb, fmt.max_value + 0.5 * lsb, fmt.min_value - lsb,
                        fmt.max_value + lsb, fmt.max_value + 0.75 * lsb, 2.0 ** 31 * lsb, -(2.0 ** 31) * lsb,
                        -32768 * lsb, -32769 * lsb, 1e30, -1e30, np.inf, -np.inf, 1e-40, -1e-40, 1e-45, -1e-45])
    span = fmt.max_value - fmt.min_value
    uniform = rng.uniform(fmt.min_value - span / 4, fmt.max_value + span / 4, n_uniform)
    with np.errstate(over="ignore"):
        return np.concatenate([ties, -ties, around, special, uniform]).astype(dtype)


FORMATS = ["ap_ufixed<8,0>", "ap_fixed<8,3>", "ap_fixed<8,1,AP_RND_CONV,AP_SAT_SYM>", "ap_ufixed<8,0,AP_TRN,AP_SAT>",
           "ap_fixed<8,2,AP_TRN_ZERO,AP_SAT>", "ap_fixed<16,6>", "ap_ufixed<16,2,AP_TRN,AP_SAT>",
           "ap_fixed<16,6,AP_RND_CONV,AP_SAT>", "ap_fixed<15,3,AP_RND_CONV,AP_SAT>", "ap_ufixed<15,1>", "ap_fixed<14,4>",
           "ap_ufixed<14,4,AP_RND_CONV>", "ap_fixed<13,5,AP_TRN,AP_SAT>", "ap_fixed<14,4,AP_RND_INF,AP_SAT>",
           "ap_ufixed<13,1,AP_RND_ZERO,AP_SAT>", "ap_fixed<12,4>", "ap_fixed<10,3,AP_RND_MIN_INF,AP_SAT>",
           "ap_ufixed<5,1,AP_RND_CONV>", "ap_fixed<1,1,AP_RND_CONV,AP_SAT>", "ap_fixed<20,8>", "ap_fixed<22,2,AP_TRN,AP_SAT>",
           "ap_fixed<23,12,AP_RND_CONV,AP_SAT>", "ap_fixed<24,8>", "ap_fixed<32,10,AP_TRN_ZERO,AP_SAT>",
           "ap_fixed<40,20,AP_RND_CONV,AP_SAT>", "ap_ufixed<52,26>", "ap_int<8>", "ap_fixed<8,10>", "ap_fixed<16,20,AP_TRN,AP_SAT>"]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cpp", FORMATS)
def test_kernel_gives_the_reference_words(cpp, dtype):
    fmt = FixedFormat.parse(cpp)
    values = edge_values(fmt, dtype, np.random.default_rng(len(cpp)))
    for n_values in (37, 64):  # 37: padding after every image; 64: the flat layout for most widths
        x = values[: (values.size // n_values) * n_values].reshape(-1, n_values)
        expected, saturated = reference(x, fmt)
        if dtype == np.float32 and fmt.width > 23:  # the wrapper computes these in float64, as round_float
            x = x.astype(np.float64)
        words, count = run_kernel(x, fmt)
        np.testing.assert_array_equal(words, expected, err_msg=f"{cpp} n={n_values}")
        assert count == saturated


MODES = ["AP_TRN", "AP_TRN_ZERO", "AP_RND", "AP_RND_ZERO", "AP_RND_MIN_INF", "AP_RND_INF", "AP_RND_CONV"]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("base", ["ap_fixed<8,10", "ap_ufixed<8,10", "ap_fixed<16,70", "ap_fixed<8,300", "ap_fixed<8,1100",
                                  "ap_fixed<6,-3"])
def test_kernel_on_denormals_and_tiny_values(base, mode, dtype):
    # Types with more integer bits than width scale values down: a tiny negative x may underflow to
    # -0 (ap_fixed<8,1100>: 2**frac itself is 0 in float64), yet ap_types floors it to -1 under
    # AP_TRN. The reference (round_float) is checked against the flow's model in test_host_pack.
    fmt = FixedFormat.parse(f"{base},{mode},AP_SAT>")
    mags = np.array([5e-324, 1e-310, 2.2250738585072014e-308, 1e-45, 1e-40, 1.1754943508222875e-38, 1e-30, 0.5, 1.0,
                     3e38, 1e300], dtype=np.float64)
    with np.errstate(over="ignore"):  # huge values overflow float32, and the scaling (they saturate)
        lsb = fmt.lsb  # inf for ap_fixed<8,1100>
        steps = np.array([0.5, 1.0, 1.5, 2.5, 100.0]) * lsb if np.isfinite(lsb) else np.array([])
        x = np.concatenate([[0.0, -0.0], mags, -mags, steps, -steps]).astype(dtype)
        x = x[np.isfinite(x)]
        x = np.resize(x, (x.size + 15) // 16 * 16).reshape(-1, 16)
        expected, saturated = reference(x, fmt)
    words, count = run_kernel(x, fmt)
    np.testing.assert_array_equal(words, expected, err_msg=fmt.cpp)
    assert count == saturated
    if mode == "AP_TRN" and fmt.frac < -130:  # every negative value of `mags` is below half an LSB
        raws = unpack(words, 16, fmt.width, fmt.signed).ravel()
        tiny_negative = np.isin(x.ravel(), -mags[mags < 1e300].astype(dtype)) & (x.ravel() != 0)
        np.testing.assert_array_equal(raws[tiny_negative], -1 if fmt.signed else 0)


@pytest.mark.parametrize("cpp", ["ap_ufixed<8,0>", "ap_fixed<16,6,AP_RND_CONV,AP_SAT>", "ap_fixed<15,3,AP_RND_CONV,AP_SAT>",
                                 "ap_fixed<12,4>", "ap_fixed<22,6,AP_TRN,AP_SAT>"])
@pytest.mark.parametrize("n_values", [1, 31, 33, 4095, 4097, 9000])
def test_kernel_blocks_tails_and_chunk_boundaries(cpp, n_values):
    # images shorter than, around and longer than a block (CHUNK = 4096 values), padded or not
    fmt = FixedFormat.parse(cpp)
    rng = np.random.default_rng(n_values)
    span = fmt.max_value - fmt.min_value
    x = rng.uniform(fmt.min_value - span / 8, fmt.max_value + span / 8, (3, n_values)).astype(np.float32)
    expected, saturated = reference(x, fmt)
    words, count = run_kernel(x, fmt)
    np.testing.assert_array_equal(words, expected)
    assert count == saturated


def test_every_float32_bit_pattern_of_a_range_rounds_like_the_reference():
    # 2^20 consecutive float32 patterns around +-0.5 lsb, +-1 lsb and the range ends of an 8-bit and
    # a 15-bit type: every fraction and tie case the rounding modes distinguish.
    rng_bits = np.arange(2 ** 18, dtype=np.uint32)
    for cpp in ("ap_ufixed<8,0>", "ap_fixed<8,1,AP_RND_CONV,AP_SAT>", "ap_fixed<15,3,AP_RND_CONV,AP_SAT>",
                "ap_fixed<8,3,AP_TRN,AP_SAT>", "ap_fixed<8,3,AP_TRN_ZERO,AP_SAT>"):
        fmt = FixedFormat.parse(cpp)
        for centre in (0.5 * fmt.lsb, -0.5 * fmt.lsb, fmt.lsb, fmt.max_value):
            start = np.array([centre], dtype=np.float32).view(np.uint32)[0] - np.uint32(2 ** 17)
            x = (rng_bits + start).view(np.float32).reshape(-1, 64)
            expected, saturated = reference(x, fmt)
            words, count = run_kernel(x, fmt)
            np.testing.assert_array_equal(words, expected, err_msg=f"{cpp} around {centre}")
            assert count == saturated


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_count_nonfinite(dtype, monkeypatch):
    x = np.random.default_rng(1).normal(size=(7, 33)).astype(dtype)
    x[0, 0], x[3, 5], x[6, 32] = np.nan, np.inf, -np.inf
    x[2, 2] = np.finfo(dtype).max  # finite extremes are not counted
    x[2, 3] = np.finfo(dtype).tiny / 4  # subnormal
    if dtype != np.float16:
        assert kernel().count_nonfinite(x) == 3
        assert kernel().count_nonfinite(x[:, 1:]) == -2  # not contiguous: for numpy
    assert wire.count_nonfinite(x) == 3
    assert wire.count_nonfinite(np.asfortranarray(x)) == 3
    monkeypatch.setattr(wire, "_native", None)
    assert wire.count_nonfinite(x) == 3


def test_nan_is_reported_and_left_to_the_numpy_path():
    fmt = FixedFormat.parse("ap_ufixed<8,0>")
    x = np.full((2, 64), 0.25, dtype=np.float32)
    x[1, 7] = np.nan
    words = np.empty(16, dtype=np.uint64)
    assert kernel().quantize_pack(x, words, 64, *fmt.conversion_plan) == -1


@pytest.mark.parametrize("x", [np.zeros((2, 64), dtype=np.int32), np.zeros((2, 128), dtype=np.float32)[:, ::2],
                               np.zeros((2, 64), dtype=np.float16)], ids=["int", "strided", "float16"])
def test_inputs_it_does_not_cover_go_to_the_numpy_path(x):
    fmt = FixedFormat.parse("ap_fixed<16,6>")
    words = np.empty(32, dtype=np.uint64)
    assert kernel().quantize_pack(x, words, 64, *fmt.conversion_plan) == -2
    np.testing.assert_array_equal(quantize_pack(x, fmt)[0], reference(x.astype(np.float64), fmt)[0])


def test_a_wrong_output_buffer_is_refused_with_what_was_expected():
    fmt = FixedFormat.parse("ap_fixed<16,6>")
    x = np.zeros((3, 64), dtype=np.float32)
    kernel()
    with pytest.raises(WireFormatError, match="holds 47 words, the batch needs 48"):
        quantize_pack(x, fmt, np.empty(47, dtype=np.uint64))
    with pytest.raises(WireFormatError, match="uint64"):
        quantize_pack(x, fmt, np.empty(48, dtype=np.int64))
    read_only = np.empty(48, dtype=np.uint64)
    read_only.flags.writeable = False
    with pytest.raises(WireFormatError, match="read-only"):
        quantize_pack(x, fmt, read_only)
    with pytest.MonkeyPatch.context() as mp:  # the numpy path says the same
        mp.setattr(wire, "_native", None)
        with pytest.raises(WireFormatError, match="read-only"):
            quantize_pack(x, fmt, read_only)


@pytest.mark.parametrize("cpp", ["ap_fixed<53,20>", "ap_fixed<62,20>"])
def test_types_too_wide_for_float_conversion_keep_their_error(cpp):
    with pytest.raises(NotImplementedError, match="exact only up to 52 bits"):
        quantize_pack(np.zeros((2, 8), dtype=np.float64), FixedFormat.parse(cpp))


@pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc not installed")
@pytest.mark.parametrize("opt", ["-O2", "-O3"])
def test_kernel_compiles_cleanly(opt, tmp_path):
    # the one portable source the boards compile; -O3 is setup.py's level (some warnings need it)
    source = Path(wire.__file__).parent / "native" / "quantize_pack.c"
    proc = subprocess.run(["gcc", "-c", opt, "-std=c99", "-fno-math-errno", "-Wall", "-Wextra", "-Werror",
                           f"-I{sysconfig.get_paths()['include']}", str(source), "-o", str(tmp_path / "k.o")],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_the_kernel_is_built_and_quantize_pack_uses_it(monkeypatch):
    # `make setup` builds it (setup.py; gcc is part of the flow's requirements); a silent
    # fall-back to numpy would hide a broken build behind slower but passing tests.
    if os.environ.get("VITCOD_HOST_NATIVE") == "0":
        pytest.skip("VITCOD_HOST_NATIVE=0 disables the kernel")
    assert native_kernel() == "generic", (
        "vitcod.host._quantize_pack is not importable: reinstall with `make setup` and read the compiler output")
    fmt = FixedFormat.parse("ap_ufixed<8,0>")
    x = np.random.default_rng(0).uniform(0, 1.1, (5, 64)).astype(np.float32)

    def refuse(*_args, **_kwargs):
        raise AssertionError("numpy path used")

    monkeypatch.setattr(FixedFormat, "round_float", refuse)
    monkeypatch.setattr(FixedFormat, "round_float_into", refuse)
    words, saturated = quantize_pack(x, fmt)
    monkeypatch.undo()
    expected_raws, expected_saturated = fmt.quantize(x)
    assert saturated == expected_saturated > 0
    np.testing.assert_array_equal(unpack(words, 64, 8, False), expected_raws)


# ---- unpack ------------------------------------------------------------------------------------


def numpy_unpack(words, n_values, width, signed, strict=True):
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(wire, "_native", None)
        return wire.unpack(words, n_values, width, signed, strict)


@pytest.mark.parametrize("signed", [True, False])
@pytest.mark.parametrize("width", [1, 5, 7, 8, 10, 12, 15, 16, 21, 24, 31, 32, 33, 48, 62])
def test_unpack_gives_the_numpy_raws(width, signed):
    kernel()
    rng = np.random.default_rng(width)
    lo, hi = (-(1 << (width - 1)), (1 << (width - 1)) - 1) if signed else (0, (1 << width) - 1)
    for n_values in (1, 10, 37, 64):
        raws = rng.integers(lo, hi, size=(5, n_values), endpoint=True, dtype=np.int64)
        raws[0, :2] = [lo, hi][: n_values]  # the extremes
        words = wire.pack(raws, width, signed)
        out = wire.unpack(words, n_values, width, signed)
        np.testing.assert_array_equal(out, raws)
        np.testing.assert_array_equal(out, numpy_unpack(words, n_values, width, signed))


@pytest.mark.parametrize("width, n_values", [(16, 10), (15, 10), (12, 37), (8, 64), (21, 4)])
def test_unpack_names_a_set_padding_bit(width, n_values):
    kernel()
    words = wire.pack(np.zeros((3, n_values), dtype=np.int64), width, False)
    vpw, wpi = 64 // width, words_per_image(n_values, width)
    # a bit above the used bits of a word (when a word has unused top bits), or a padding slot
    bad = words.copy()
    if vpw * width < 64:
        bad[wpi + 0] |= np.uint64(1) << np.uint64(63)
        with pytest.raises(WireFormatError, match="bits above"):
            wire.unpack(bad, n_values, width, False)
        np.testing.assert_array_equal(wire.unpack(bad, n_values, width, False, strict=False),
                                      numpy_unpack(bad, n_values, width, False, strict=False))
    if n_values % vpw:
        bad = words.copy()
        bad[2 * wpi - 1] |= np.uint64(1) << np.uint64((n_values % vpw) * width)  # first padding slot, image 1
        with pytest.raises(WireFormatError, match="image 1: padding slots"):
            wire.unpack(bad, n_values, width, False)
    assert kernel().unpack(words, np.empty((3, n_values), dtype=np.int64), n_values, width, False, True) == 0


def test_unpack_refuses_what_it_does_not_cover():
    words = wire.pack(np.arange(20).reshape(2, 10), 16, False)
    assert kernel().unpack(words.astype(np.int64), np.empty((2, 10), dtype=np.int64), 10, 16, False, True) == -2
    assert kernel().unpack(words[:5], np.empty((2, 10), dtype=np.int64), 10, 16, False, True) == -2  # not whole
    with pytest.raises(ValueError, match="20 int64"):
        kernel().unpack(words, np.empty((2, 9), dtype=np.int64), 10, 16, False, True)
    np.testing.assert_array_equal(wire.unpack(words.astype(np.int64), 10, 16, False), np.arange(20).reshape(2, 10))
