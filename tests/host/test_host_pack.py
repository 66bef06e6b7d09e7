"""The board's fast paths: vitcod.host.wire (vectorised pack/unpack, quantize+pack) must give the
contract's words (vitcod.host.contract.pack, the reference the IP's C simulation is checked
against), and vitcod.host.quantization (the host's float -> raw policy) must round each ap_types mode
exactly as the flow's ap_fixed model (vitcod.hls.fixed_point) does, and saturate."""

from __future__ import annotations

import numpy as np
import pytest

from vitcod.hls import fixed_point as fp
from vitcod.host import ApType, WireFormatError, contract, pack, quantize_pack, unpack
from vitcod.host.wire import words_per_image

WIDTHS = [1, 3, 7, 8, 10, 12, 16, 21, 32, 33, 62]


def random_raws(width: int, signed: bool, shape, seed: int) -> np.ndarray:
    lo, hi = (-(1 << (width - 1)), (1 << (width - 1)) - 1) if signed else (0, (1 << width) - 1)
    raws = np.random.default_rng(seed).integers(lo, hi, size=shape, endpoint=True, dtype=np.int64)
    raws.flat[0], raws.flat[-1] = lo, hi  # the extremes travel too
    return raws


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("signed", [True, False])
@pytest.mark.parametrize("n_values", [1, 37, 64])
def test_fast_pack_and_unpack_give_the_contracts_words(width, signed, n_values):
    # the cast path (8/16/32 bits) and the shift path against the contract's reference
    raws = random_raws(width, signed, (5, n_values), seed=width * 100 + n_values)
    words = pack(raws, width, signed)
    assert words.dtype == np.uint64
    np.testing.assert_array_equal(words, contract.pack(raws, width, signed))
    np.testing.assert_array_equal(unpack(words, n_values, width, signed), raws)


@pytest.mark.parametrize("width,signed", [(8, False), (16, True), (12, True)])
def test_pack_into_a_preallocated_buffer(width, signed):
    raws = random_raws(width, signed, (3, 23), seed=1)
    buffer = np.full(3 * words_per_image(23, width), 0xFFFF_FFFF_FFFF_FFFF, dtype=np.uint64)  # stale data
    assert pack(raws, width, signed, out=buffer) is buffer
    np.testing.assert_array_equal(buffer, contract.pack(raws, width, signed))  # padding overwritten with zeros
    with pytest.raises(WireFormatError, match="needs"):
        pack(raws, width, signed, out=buffer[:-1])
    with pytest.raises(WireFormatError, match="uint64"):
        pack(raws, width, signed, out=buffer.view(np.int64))


def test_pack_refuses_raws_that_do_not_fit():
    with pytest.raises(WireFormatError, match="does not fit 8-bit signed"):
        pack(np.array([[0, 128]]), 8, True)
    with pytest.raises(WireFormatError, match="does not fit 12-bit unsigned"):
        pack(np.array([[-1, 3]]), 12, False)
    with pytest.raises(WireFormatError, match="integers"):
        pack(np.array([[0.5]]), 8, True)


@pytest.mark.parametrize("width,signed", [(8, True), (12, True), (10, False)])
def test_unpack_checks_padding(width, signed):
    raws = random_raws(width, signed, (2, 23), seed=3)
    words = pack(raws, width, signed)
    last_of_first_image = words_per_image(23, width) - 1
    corrupt = words.copy()
    corrupt[last_of_first_image] |= np.uint64(1) << np.uint64(63)  # an unused slot, or the unused top bits
    with pytest.raises(WireFormatError, match="not zero"):
        unpack(corrupt, 23, width, signed)
    np.testing.assert_array_equal(unpack(corrupt, 23, width, signed, strict=False), raws)  # tolerated on request
    with pytest.raises(WireFormatError, match="whole number of images"):
        unpack(words[:-1], 23, width, signed)


# ---- float -> raw ----------------------------------------------------------------------------------------
FORMATS = ["ap_fixed<8,2>", "ap_fixed<16,6>", "ap_ufixed<8,0>", "ap_uint<4>", "ap_int<8>", "ap_fixed<12,4,AP_TRN>"]


@pytest.mark.parametrize("cpp", FORMATS)
def test_saturation_at_the_limits(cpp):
    fmt = ApType.parse(cpp)
    lsb, lo, hi = fmt.lsb, fmt.min_value, fmt.max_value
    x = np.array([lo, hi, lo - lsb, hi + lsb, -1e30, 1e30, hi + lsb / 4, lo - lsb / 4, 0.0])
    raws, saturated = fmt.quantize(x)
    rounds_up = fmt.host_rounding == "AP_RND"
    expected = [fmt.min_raw, fmt.max_raw, fmt.min_raw, fmt.max_raw, fmt.min_raw, fmt.max_raw, fmt.max_raw,
                fmt.min_raw, 0]
    np.testing.assert_array_equal(raws, expected)
    # out of range: one lsb beyond each limit and the huge values; a quarter lsb above max rounds
    # back to max (round half up), a quarter below min floors out of range when truncating
    assert saturated == 4 + (0 if rounds_up else 1)
    words, count = quantize_pack(x[None, :], fmt)
    assert count == saturated
    np.testing.assert_array_equal(unpack(words, x.size, fmt.width, fmt.signed)[0], expected)


@pytest.mark.parametrize("mode", ["AP_TRN", "AP_TRN_ZERO", "AP_RND", "AP_RND_ZERO", "AP_RND_MIN_INF", "AP_RND_INF",
                                  "AP_RND_CONV", None])
@pytest.mark.parametrize("base", ["ap_fixed<8,3", "ap_ufixed<10,4", "ap_fixed<16,6", "ap_fixed<30,10"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])  # float32 is computed in float32 up to 23 bits
def test_rounding_equals_the_flows_ap_fixed_model(mode, base, dtype):
    cpp = f"{base},{mode},AP_SAT>" if mode else f"{base}>"
    fmt = ApType.parse(cpp)
    rng = np.random.default_rng(7)
    span = fmt.max_value - fmt.min_value
    x = rng.uniform(fmt.min_value - span / 8, fmt.max_value + span / 8, size=4000)
    ties = (rng.integers(fmt.min_raw, fmt.max_raw, size=400) + 0.5) * fmt.lsb  # exact halves of an lsb
    tiny = np.array([1e-30, -1e-30, 1e-45, -1e-45, fmt.lsb / 2 ** 30, -fmt.lsb / 2 ** 30])
    x = np.concatenate([x, ties, -ties, tiny]).astype(dtype)
    # the host's policy: the type's rounding if spelled out, else round half up; always saturate
    model_type = fp.parse_type(cpp).with_modes(rounding=fmt.host_rounding, saturation="AP_SAT")
    raws, _ = fmt.quantize(x)
    np.testing.assert_array_equal(raws, fp.from_float(x.astype(np.float64), model_type))
    assert fmt.host_rounding == (mode or "AP_RND")


ALL_MODES = ["AP_TRN", "AP_TRN_ZERO", "AP_RND", "AP_RND_ZERO", "AP_RND_MIN_INF", "AP_RND_INF", "AP_RND_CONV"]


def tiny_values(fmt, dtype) -> np.ndarray:
    """Subnormals, the smallest normals, and the floats next to +-1/2 LSB, with both signs: where a
    scaling that underflows (integer bits > width) or a fraction that rounds could decide wrongly."""
    info = np.finfo(dtype)
    lsb = dtype(fmt.lsb) if np.isfinite(dtype(fmt.lsb)) and dtype(fmt.lsb) > 0 else None
    mags = [5e-324, 1e-310, np.finfo(np.float64).tiny, 1e-45, 1e-40, info.tiny, np.nextafter(info.tiny, dtype(1)), 1e-30]
    if lsb is not None:
        half = lsb / dtype(2)
        mags += [half, np.nextafter(half, dtype(0)), np.nextafter(half, dtype(np.inf)), lsb, np.nextafter(lsb, dtype(0))]
    mags = np.array(mags, dtype=np.float64).astype(dtype)
    return np.concatenate([[dtype(0), dtype(-0.0)], mags, -mags]).astype(dtype)


NUMPY_FAST_PATH_MODES = ("AP_RND", "AP_RND_CONV", "AP_TRN", "AP_TRN_ZERO")  # round_float_into's


@pytest.mark.parametrize("mode,path", [(m, p) for m in ALL_MODES for p in ("round_float", "round_float_into", "quantize_pack")
                                       if p != "round_float_into" or m in NUMPY_FAST_PATH_MODES])
@pytest.mark.parametrize("base", ["ap_fixed<8,10", "ap_ufixed<8,10", "ap_fixed<12,40", "ap_fixed<6,-3", "ap_fixed<8,3"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_tiny_and_denormal_values_round_like_the_flows_model(mode, base, dtype, path):
    # -5e-324 into ap_fixed<8,10,AP_TRN> is raw -1 in ap_types (tests/hls checks from_float against
    # compiled ap_types); x * 2**frac underflowing to -0 once gave 0 here. And the float just above
    # -1/2 LSB once looked like a tie (AP_RND_INF / AP_RND_MIN_INF gave -1 instead of 0).
    cpp = f"{base},{mode},AP_SAT>"
    fmt = ApType.parse(cpp)
    x = tiny_values(fmt, dtype)
    model = fp.parse_type(cpp)
    expected = fp.from_float(x.astype(np.float64), model)
    unbounded = fp.from_float(x.astype(np.float64), fp.FixedType(62, 62 - model.frac, True, mode, "AP_SAT"))
    expected_saturated = int(np.count_nonzero(unbounded != expected))
    if path == "round_float":
        raws, saturated = fmt.quantize(x)
    elif path == "round_float_into":
        raws = np.empty(x.shape, dtype=np.int64)
        saturated = fmt.round_float_into(x, raws)
    else:
        words, saturated = quantize_pack(x[None, :], fmt)
        raws = unpack(words, x.size, fmt.width, fmt.signed)[0]
    np.testing.assert_array_equal(raws, expected, err_msg=f"{cpp} {dtype.__name__} on {x.tolist()}")
    assert saturated == expected_saturated
    if dtype == np.float64 and mode == "AP_TRN":
        assert raws[x.tolist().index(-5e-324)] == (-1 if fmt.signed else 0)


def test_float32_and_integer_inputs_convert_exactly():
    fmt = ApType.parse("ap_fixed<16,6>")
    x = np.array([0.1, -3.3, 7.77, -0.0009765625], dtype=np.float32)
    np.testing.assert_array_equal(fmt.quantize(x)[0], fp.from_float(x.astype(np.float64), "ap_fixed<16,6,AP_RND,AP_SAT>"))
    np.testing.assert_array_equal(ApType.parse("ap_uint<4>").quantize(np.array([0, 7, 15, 16], dtype=np.uint8))[0],
                                  [0, 7, 15, 15])


def test_dequantize_is_exact():
    fmt = ApType.parse("ap_fixed<10,3,AP_RND,AP_SAT>")
    raws = np.arange(fmt.min_raw, fmt.max_raw + 1)
    values = fmt.dequantize(raws)
    np.testing.assert_array_equal(values, raws / 2.0 ** 7)
    np.testing.assert_array_equal(fmt.quantize(values)[0], raws)


def test_symmetric_saturation():
    fmt = ApType.parse("ap_fixed<8,1,AP_RND,AP_SAT_SYM>")
    raws, saturated = fmt.quantize(np.array([-1.0, -2.0, 0.99]))
    np.testing.assert_array_equal(raws, [-127, -127, 127])
    assert saturated == 2


@pytest.mark.parametrize("overflow", ["AP_WRAP_SM", "AP_SAT,3", "AP_WRAP"])
def test_wrapping_modes_are_saturated_on_the_host(overflow):
    # The host never wraps an input, so the modes only ap_types' wrap knows are accepted here
    # (the flow's arithmetic model refuses them: see test_host_contract).
    fmt = ApType.parse(f"ap_fixed<8,3,AP_RND,{overflow}>")
    raws, saturated = fmt.quantize(np.array([-5.0, 4.5, 1.0]))
    np.testing.assert_array_equal(raws, [fmt.min_raw, fmt.max_raw, 32])
    assert saturated == 2


# =============================================================================================
# Host quantize+pack fast path: the same words as the general path
# =============================================================================================


def adversarial_inputs(fmt, dtype, rng) -> np.ndarray:
    lsb = fmt.lsb
    raws = np.arange(fmt.host_min_raw, fmt.max_raw + 1, max(1, (fmt.max_raw - fmt.min_raw) // 97))
    ties = (raws + 0.5) * lsb
    around = np.concatenate([np.nextafter(ties.astype(dtype), dtype(np.inf)), np.nextafter(ties.astype(dtype), dtype(-np.inf))])
    special = np.array([0.0, -0.0, -0.5 * lsb, 0.5 * lsb, np.nextafter(dtype(0.5), dtype(0)) * lsb,
                        -np.nextafter(dtype(0.5), dtype(0)) * lsb, fmt.min_value - 0.5 * lsb, fmt.max_value + 0.5 * lsb,
                        fmt.min_value - lsb, fmt.max_value + lsb, 1e30, -1e30, np.inf, -np.inf, 1e-40, -1e-40])
    span = fmt.max_value - fmt.min_value
    uniform = rng.uniform(fmt.min_value - span / 8, fmt.max_value + span / 8, 2000)
    return np.concatenate([ties, -ties, around, special, uniform]).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cpp", ["ap_ufixed<8,0>", "ap_fixed<8,3>", "ap_fixed<16,6>", "ap_fixed<16,6,AP_RND_CONV,AP_SAT>",
                                 "ap_ufixed<16,2,AP_TRN,AP_SAT>", "ap_fixed<32,10,AP_TRN_ZERO,AP_SAT>",
                                 "ap_fixed<8,1,AP_RND_CONV,AP_SAT_SYM>", "ap_fixed<12,4>", "ap_ufixed<5,1,AP_RND_CONV>",
                                 "ap_fixed<10,3,AP_RND_INF,AP_SAT>", "ap_int<8>", "ap_fixed<1,1,AP_RND_CONV,AP_SAT>"])
@pytest.mark.parametrize("path", ["compiled", "numpy"])
def test_quantize_pack_fast_path_gives_the_general_path_words(cpp, dtype, path, monkeypatch):
    from vitcod.host import FixedFormat, quantize_pack, wire
    from vitcod.host.wire import _pack_checked

    if path == "numpy":  # the fall-back when the kernel is not built: round_float_into + packing
        monkeypatch.setattr(wire, "_native", None)
    elif wire._native is None:
        pytest.skip("compiled kernel not built")

    fmt = FixedFormat.parse(cpp)
    x = adversarial_inputs(fmt, dtype, np.random.default_rng(5))
    x = x[: (x.size // 37) * 37].reshape(-1, 37)  # 37 values per image: padding slots in every word layout
    raws, saturated = fmt.round_float(x)
    expected = _pack_checked(raws, fmt.width, fmt.signed, None)
    words, count = quantize_pack(x, fmt)
    np.testing.assert_array_equal(words, expected)
    assert count == saturated


def test_quantize_pack_numpy_path_takes_its_fast_path(monkeypatch):
    from vitcod.host import FixedFormat, quantize_pack, unpack, wire

    monkeypatch.setattr(wire, "_native", None)

    fmt = FixedFormat.parse("ap_ufixed<8,0>")
    x = np.random.default_rng(0).uniform(0, 1.1, (5, 64)).astype(np.float32)
    expected_raws, expected_sat = fmt.quantize(x)

    def refuse(*_args, **_kwargs):
        raise AssertionError("general path used")

    monkeypatch.setattr(FixedFormat, "round_float", refuse)
    buffer = np.full(5 * 8, 0xFFFF_FFFF_FFFF_FFFF, dtype=np.uint64)
    words, saturated = quantize_pack(x, fmt, buffer)
    assert words is buffer and saturated == expected_sat > 0
    np.testing.assert_array_equal(unpack(words, 64, 8, False), expected_raws)
