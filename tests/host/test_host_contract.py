"""vitcod.host.contract: the rules the HLS stage, the overlay build, the IP and the driver share -
ap_types spellings, the stream's word format, network.json, the model identifier and the IP's
config header. (The register map against the C++ is tests/overlay/test_overlay_registers.py.)"""

from __future__ import annotations

import json
import re
from dataclasses import replace

import numpy as np
import pytest

from vitcod.hls.fixed_point import parse_type
from vitcod.host import ApTypeError, MetadataError, WireFormatError
from vitcod.host import contract
from vitcod.host.contract import ROUNDING_MODES, SATURATION_MODES, ApType, NetworkDescription
from vitcod.overlay.example import DummyNetwork


# ---- the word format --------------------------------------------------------------------------------
def test_hand_packed_word_layout():
    # 12-bit signed values: 5 per word, value k at bits [12k, 12k+12), top 4 bits zero.
    raws = [-1, 2, 3, -2048, 2047, 5, 7]
    expected0 = 0xFFF | (2 << 12) | (3 << 24) | (0x800 << 36) | (0x7FF << 48)
    expected1 = 5 | (7 << 12)  # second word: 2 values, 3 empty slots stay zero
    words = contract.pack(np.array(raws), 12, signed=True)
    assert words.dtype == np.uint64
    assert [int(w) for w in words] == [expected0, expected1]
    assert expected0 >> 60 == 0
    np.testing.assert_array_equal(contract.unpack(words, 7, 12, signed=True), [raws])


@pytest.mark.parametrize("width", [1, 3, 8, 10, 12, 16, 21, 32, 33, 62])
@pytest.mark.parametrize("signed", [True, False])
def test_roundtrip_and_geometry(width, signed):
    rng = np.random.default_rng(width)
    n, batch = 37, 4
    lo, hi = contract.raw_range(width, signed)
    raws = rng.integers(lo, hi, size=(batch, n), endpoint=True, dtype=np.int64)
    raws[0, 0], raws[0, 1] = lo, hi  # the extremes travel too
    words = contract.pack(raws, width, signed)
    vpw = 64 // width
    assert contract.values_per_word(width) == vpw
    assert contract.words_per_image(n, width) == -(-n // vpw)
    assert words.size == batch * -(-n // vpw)
    np.testing.assert_array_equal(contract.unpack(words, n, width, signed), raws)


def test_each_image_starts_on_a_fresh_word():
    raws = np.arange(2 * 7).reshape(2, 7) - 5
    both = contract.pack(raws, 12, signed=True)
    separate = np.concatenate([contract.pack(raws[0], 12, True), contract.pack(raws[1], 12, True)])
    np.testing.assert_array_equal(both, separate)
    assert both.size == 4  # 2 words per image, never shared


def test_out_of_range_and_non_integer_raws_are_rejected():
    with pytest.raises(WireFormatError, match="does not fit"):
        contract.pack(np.array([2048]), 12, signed=True)
    with pytest.raises(WireFormatError, match="does not fit"):
        contract.pack(np.array([-1]), 8, signed=False)
    with pytest.raises(WireFormatError, match="integers"):
        contract.pack(np.array([0.5]), 8, signed=True)
    with pytest.raises(WireFormatError, match="1..62"):
        contract.values_per_word(63)


def test_unpack_checks_word_count_and_padding():
    words = contract.pack(np.array([[1, 2, 3, 4, 5, 6, 7]]), 12, signed=True)
    with pytest.raises(WireFormatError, match="whole number of images"):
        contract.unpack(words[:1], 7, 12, signed=True)
    bad_slot = words.copy()
    bad_slot[1] |= np.uint64(1 << 30)  # third slot of the last word is padding
    with pytest.raises(WireFormatError, match="padding"):
        contract.unpack(bad_slot, 7, 12, signed=True)
    bad_top = words.copy()
    bad_top[0] |= np.uint64(1 << 63)  # bits above 5 * 12 = 60
    with pytest.raises(WireFormatError, match="bits above 60"):
        contract.unpack(bad_top, 7, 12, signed=True)
    assert contract.unpack(bad_top, 7, 12, signed=True, strict=False).shape == (1, 7)


@pytest.mark.parametrize("nbytes, width", [(1, 8), (255, 8), (256, 9), (40000, 16), (2**26 - 1, 26), (2**26, 27)])
def test_dma_length_width_rule(nbytes, width):
    assert contract.dma_length_width(nbytes) == width  # above 26 bits the callers refuse the transfer


# ---- ap_types spellings -------------------------------------------------------------------------------
@pytest.mark.parametrize("cpp, width, integer, signed, rounding, saturation, is_int", [
    ("ap_fixed<16,6>", 16, 6, True, "AP_TRN", "AP_WRAP", False),
    ("ap_fixed<10, 3, AP_RND, AP_SAT>", 10, 3, True, "AP_RND", "AP_SAT", False),
    ("ap_ufixed<8,0>", 8, 0, False, "AP_TRN", "AP_WRAP", False),
    ("ap_fixed< 8 , -2 , AP_RND >", 8, -2, True, "AP_RND", "AP_WRAP", False),
    ("ap_int<7>", 7, 7, True, "AP_TRN_ZERO", "AP_WRAP", True),  # a C cast drops the fraction towards zero
    ("ap_uint<12>", 12, 12, False, "AP_TRN_ZERO", "AP_WRAP", True),
])
def test_type_geometry(cpp, width, integer, signed, rounding, saturation, is_int):
    t = ApType.parse(cpp)
    assert (t.width, t.integer, t.signed, t.frac) == (width, integer, signed, width - integer)
    assert (t.rounding, t.saturation, t.is_int, t.cpp) == (rounding, saturation, is_int, cpp.strip())
    assert (t.min_raw, t.max_raw) == contract.raw_range(width, signed)
    assert t.lsb == 2.0 ** -t.frac and t.max_value == t.max_raw * t.lsb


def test_every_legal_mode_parses_and_the_arithmetic_model_names_what_it_cannot_model():
    for q in ROUNDING_MODES:
        for o in SATURATION_MODES:
            t = ApType.parse(f"ap_fixed<8,3,{q},{o}>")
            assert (t.rounding, t.saturation, t.rounding_explicit) == (q, o, True)
    assert ApType.parse("ap_fixed<8,3,AP_RND,AP_SAT,2>").saturation_bits == 2
    # AP_WRAP_SM and N > 0 are legal ap_types; the flow's exact model refuses them by name
    with pytest.raises(ValueError, match="AP_WRAP_SM' is legal ap_types but not modelled"):
        parse_type("ap_fixed<8,3,AP_RND,AP_WRAP_SM>")
    with pytest.raises(ValueError, match="N=2 is legal ap_types but not modelled"):
        parse_type("ap_fixed<8,3,AP_RND,AP_SAT,2>")
    assert parse_type("ap_fixed<8,3,AP_RND,AP_SAT,0>").saturation == "AP_SAT"


@pytest.mark.parametrize("cpp, message", [
    ("float", "floats are not allowed"), ("int", "cannot parse type 'int'"), ("ap_fixed<70,3>", "1..62"),
    ("ap_fixed<0,0>", "1..62"), ("ap_fixed<8,3,AP_ROUND>", "unknown quantization mode 'AP_ROUND'"),
    ("ap_fixed<8,3,AP_RND,AP_CLAMP>", "unknown overflow mode 'AP_CLAMP'"), (16, "C\\+\\+ spelling"),
])
def test_unsupported_spellings_are_refused(cpp, message):
    with pytest.raises(ApTypeError, match=message):
        ApType.parse(cpp)


# ---- network.json -------------------------------------------------------------------------------------
@pytest.fixture()
def network_json(tmp_path):
    return DummyNetwork(n_in=9, n_out=3).write(tmp_path / "a")


def test_network_description_round_trip_keeps_every_field(tmp_path, network_json):
    data = json.loads(network_json.read_text())
    data["weights_dir"] = "weights"
    network_json.write_text(json.dumps(data))
    net = NetworkDescription.load(network_json)
    assert net.weights_dir == (tmp_path / "a" / "weights").resolve()
    assert net.sources == ((tmp_path / "a" / "dummy_net.cpp").resolve(),)
    assert (net.input.values, net.output.values, net.content_id) == (9, 3, 0x0123456789ABCDEF)
    assert net.model_id_hex == DummyNetwork(n_in=9, n_out=3).model_id and net.identifier_problem() is None
    again = NetworkDescription.load(net.save(tmp_path / "b" / "network.json"))  # absolute paths survive the move
    assert replace(again, path=None) == replace(net, path=None)
    assert again.to_dict() == net.to_dict() and again.to_dict()["weights_dir"] == str(net.weights_dir)


def _broken(network_json, change):
    data = json.loads(network_json.read_text())
    change(data)
    network_json.write_text(json.dumps(data))
    return network_json


@pytest.mark.parametrize("change, message", [
    (lambda d: d.pop("model_id"), r"missing keys \['model_id'\], unknown keys \[\]"),
    (lambda d: d.pop("content_id"), r"missing keys \['content_id'\], unknown keys \[\]"),
    (lambda d: d.update(content_id=12), "content_id must be '0x' \\+ 16 hex digits, got 12"),
    (lambda d: d.update(extra=1), r"unknown keys \['extra'\]"),
    (lambda d: d.update(model_id="0x1234"), "16 hex digits"),
    (lambda d: d["input"].update(type="float"), "input.type: cannot parse type 'float'"),
    (lambda d: d["output"].update(shape=[0]), "output.shape: expected a list of positive integers"),
    (lambda d: d["input"].update(words_per_image=1), "input.words_per_image is 1 but ap_fixed<12,4> with shape"),
    (lambda d: d.update(name="3net"), "C identifier"),
    (lambda d: d.update(weights_dir=3), "weights_dir must be a path"),
])
def test_network_description_problems_are_named(network_json, change, message):
    with pytest.raises(MetadataError, match=message):
        NetworkDescription.load(_broken(network_json, change))


def test_network_description_missing_or_not_json(tmp_path):
    with pytest.raises(MetadataError, match="the HLS stage writes network.json"):
        NetworkDescription.load(tmp_path)
    (tmp_path / "network.json").write_text("{")
    with pytest.raises(MetadataError, match="cannot be read as JSON"):
        NetworkDescription.load(tmp_path)


# ---- model identifier and config header ----------------------------------------------------------------
def test_content_identifier_tracks_weights_masks_and_precision():
    w = {"dense/kernel": np.arange(6, dtype=np.float32).reshape(2, 3), "dense/bias": np.zeros(3, np.float32)}
    m = {"layer0": np.eye(4, dtype=bool)}
    p = {"default": "ap_fixed<16,6>"}
    base = contract.content_identifier(w, m, p)
    assert base == "0xb137911aa9e1061a"  # pinned: deployed bitstreams carry it, it must never drift
    assert base == contract.content_identifier(dict(reversed(list(w.items()))), m, p)  # order-independent
    w2 = {**w, "dense/bias": np.array([0, 0, np.float32(1e-7)], np.float32)}
    m2 = {"layer0": np.eye(4, dtype=bool)[::-1]}
    variants = {contract.content_identifier(w2, m, p), contract.content_identifier(w, m2, p),
                contract.content_identifier(w, m, {"default": "ap_fixed<16,7>"})}
    assert base not in variants and len(variants) == 3


def tensor(shape, spelling):
    return contract.TensorMeta(tuple(shape), ApType.parse(spelling))


def test_model_identifier_covers_content_and_the_whole_interface():
    x, y = tensor([23], "ap_fixed<12,4>"), tensor([7], "ap_fixed<10,3,AP_RND,AP_SAT>")
    base = contract.model_identifier(0x0123456789ABCDEF, x, y)
    assert base == "0x5352dfcd123cd458"  # pinned, as above
    assert contract.model_identifier("0x0123456789abcdef", x, y) == base  # int or hex text
    # the same C++ types spelled with their defaults: the same identifier
    assert contract.model_identifier(0x0123456789ABCDEF, tensor([23], "ap_fixed<12,4,AP_TRN,AP_WRAP,0>"), y) == base
    variants = {
        "content": contract.model_identifier(0x0123456789ABCDEF + 1, x, y),
        "input width": contract.model_identifier(0x0123456789ABCDEF, tensor([23], "ap_fixed<11,4>"), y),
        "input integer bits": contract.model_identifier(0x0123456789ABCDEF, tensor([23], "ap_fixed<12,5>"), y),
        "input rounding": contract.model_identifier(0x0123456789ABCDEF, tensor([23], "ap_fixed<12,4,AP_RND>"), y),
        "input sign": contract.model_identifier(0x0123456789ABCDEF, tensor([23], "ap_ufixed<12,4>"), y),
        "output overflow": contract.model_identifier(0x0123456789ABCDEF, x, tensor([7], "ap_fixed<10,3,AP_RND>")),
        "input shape": contract.model_identifier(0x0123456789ABCDEF, tensor([1, 23], "ap_fixed<12,4>"), y),
        "output shape": contract.model_identifier(0x0123456789ABCDEF, x, tensor([8], "ap_fixed<10,3,AP_RND,AP_SAT>")),
        "format version": contract.model_identifier(0x0123456789ABCDEF, x, y, contract.FORMAT_VERSION + 1),
    }
    assert base not in variants.values() and len(set(variants.values())) == len(variants)
    assert "path" not in json.dumps(contract.interface_fields(x, y))  # no location enters it


@pytest.mark.parametrize("spelling", ["ap_fixed<12,4>", "ap_ufixed<8,0>", "ap_fixed<10,3,AP_RND,AP_SAT>",
                                      "ap_fixed<16,-3,AP_RND_CONV,AP_SAT_SYM,2>", "ap_ufixed<20,30,AP_TRN_ZERO>",
                                      "ap_int<7>", "ap_uint<32>", "ap_fixed<62,511,AP_RND_INF,AP_WRAP_SM,63>"])
def test_type_codes_name_the_type_back(spelling):
    t = ApType.parse(spelling)
    assert t.code >> 31 == 1 and contract.describe_type_code(t.code) == t.canonical
    assert ApType.parse(t.canonical) .code == t.code


def test_type_codes_refuse_what_they_cannot_carry():
    with pytest.raises(ApTypeError, match="integer bits must be in -512..511"):
        ApType.parse("ap_fixed<8,600>").code
    assert contract.describe_type_code(0) == "no type (register value 0x00000000)"


def test_config_header_binds_the_top_to_the_network(network_json):
    net = NetworkDescription.load(network_json)
    text = contract.render_config_header(replace(net, model_id=0x0123456789ABCDEF), 16, "pynq-z2")
    for line in ('#include "dummy_net.h"', '#include "vitcod_top.h"',
                 "typedef ::input_t in_t;", "typedef ::result_t out_t;",
                 "// the description, which declares ap_fixed<12,4> [9] -> ap_fixed<10,3,AP_RND,AP_SAT> [3]).",
                 "static const unsigned n_in = (9);", "static const unsigned n_out = (3);",
                 "static const unsigned max_batch = 16;", "static const unsigned model_id_lo = 0x89abcdefu;",
                 "static const unsigned model_id_hi = 0x01234567u;", "dummy_net(x, y);",
                 "// Binds the overlay top (vitcod_top.cpp) to the network `dummy_net` for board pynq-z2."):
        assert line in [t.strip() for t in text.splitlines()], line
    assert text.startswith("// Generated by") and text.endswith("#endif\n")


# ---- the network's own array sizes (what the IP reports, not what network.json says) ------------------
HLS4ML_HEADER = """\
#ifndef MYPROJECT_H_
#define MYPROJECT_H_
#include "defines.h"
// Prototype of top level function for C-synthesis
void myproject(
    input_t input_1[N_INPUT_1_1*N_INPUT_2_1*N_INPUT_3_1], /* the image */
    result_t layer7_out[N_LAYER_7]
);
#endif
"""


@pytest.mark.parametrize("header, sizes", [
    (HLS4ML_HEADER, ("N_INPUT_1_1*N_INPUT_2_1*N_INPUT_3_1", "N_LAYER_7")),
    ("inline void myproject(input_t x[23], result_t y[7]) { }", ("23", "7")),
    ("// void myproject(input_t x[1], result_t y[1]);\nvoid myproject(const input_t &x [ 4 * (2 + 1) ], result_t y[N])"
     "{}", ("4 * (2 + 1)", "N")),
])
def test_array_sizes_come_from_the_network_prototype(tmp_path, network_json, header, sizes):
    net = NetworkDescription.load(network_json)
    (tmp_path / "h").mkdir()
    (tmp_path / "h" / "myproject.h").write_text(header)
    net = replace(net, name="myproject", header="myproject.h", include_dirs=(tmp_path / "h",))
    assert contract.network_array_sizes(net) == sizes
    text = contract.render_config_header(net, 4, "pynq-z2")
    assert f"static const unsigned n_in = ({sizes[0]});" in text and f"static const unsigned n_out = ({sizes[1]});" in text


@pytest.mark.parametrize("header, message", [
    ("void other(input_t x[3], result_t y[3]);",
     "expected a function `void myproject(input_t x[N_IN], result_t y[N_OUT])` (network.json's io_parallel signature), "
     "got no such prototype"),
    ("void myproject(input_t *x, result_t *y);", "got the parameters ['input_t *x', 'result_t *y']"),
])
def test_a_header_without_the_prototype_is_refused(tmp_path, network_json, header, message):
    net = NetworkDescription.load(network_json)
    (tmp_path / "myproject.h").write_text(header)
    net = replace(net, name="myproject", header="myproject.h", include_dirs=(tmp_path,))
    with pytest.raises(MetadataError, match=re.escape(message)):
        contract.network_array_sizes(net)
    missing = replace(net, header="nowhere.h")
    with pytest.raises(MetadataError, match="header 'nowhere.h' not found"):
        contract.network_array_sizes(missing)
