"""The model vs published hls4ml synthesis reports (vitcod.hls.perf.published)."""

from __future__ import annotations

import math
import re
from dataclasses import replace

import vitcod.hls.perf as perf
from vitcod.hls.perf.published import (PUBLISHED, QUANTITIES, compare, conv_instance, markdown,
                                       published_pixel_cycles, stream_cycle_calibration)
from vitcod.hls.perf.resources import Assumptions
from vitcod.hls.perf.stream_layers import hls4ml_matrix, reuse_loop_mux_luts


def test_at_least_three_designs_each_citing_a_report_and_a_commit():
    assert len(PUBLISHED) >= 3
    assert len({d["key"] for d in PUBLISHED}) == len(PUBLISHED)
    for d in PUBLISHED:
        repo, path, commit = d["source"]
        assert "/" in repo and path and re.fullmatch(r"[0-9a-f]{40}", commit), d["key"]
        assert d["config_source"]
    md = "\n".join(markdown())
    for d in PUBLISHED:
        assert d["source"][0] in md and d["source"][2][:12] in md


def test_every_quantity_has_a_published_and_a_modelled_figure_and_the_error_is_computed():
    for d in PUBLISHED:
        c = compare(d)
        assert c["label"] == "modelled vs published"
        keys = set(c["published"])
        assert {"dsp", "lut", "ff", "bram_18k"} <= keys
        assert "latency_cycles" in keys or {"latency_min", "latency_max"} <= keys
        for k in keys:
            assert c["error"][k] == (c["modelled"][k] - c["published"][k]) / c["published"][k]
    assert set(compare(PUBLISHED[0])["published"]) == set(QUANTITIES)


def test_the_tutorial_mlps_are_modelled_from_their_layers():
    rf1, rf2 = compare(PUBLISHED[0]), compare(PUBLISHED[1])
    assert rf1["published"] == {"dsp": 2774, "lut": 109157, "ff": 13339, "bram_18k": 4, "latency_cycles": 10}
    assert rf2["published"] == {"dsp": 1486, "lut": 84841, "ff": 8756, "bram_18k": 4, "latency_cycles": 12}
    # one DSP per 16 x 16 product (16*64 + 64*32 + 32*32 + 32*5 = 4256), halved at RF 2; + the softmax's 5
    assert rf1["modelled"]["dsp"] == 4256 + 5
    assert rf2["modelled"]["dsp"] == 4256 // 2 + 5


def test_the_comparison_follows_the_models_assumptions():
    """Changing an assumption changes the computed table (nothing is typed in)."""
    conv, mlp = PUBLISHED[2], PUBLISHED[1]
    base = compare(conv)
    slower = compare(conv, replace(Assumptions(), stream_token_overhead=20, stream_shift_cycles=7))
    assert slower["modelled"]["latency_max"] > base["modelled"]["latency_max"]
    assert slower["modelled"]["latency_min"] > base["modelled"]["latency_min"]
    wide_dsp = compare(conv, replace(Assumptions(), dsp_a_bits=35, dsp_b_bits=35))
    assert wide_dsp["modelled"]["dsp"] < base["modelled"]["dsp"]
    assert compare(mlp, replace(Assumptions(), lut_multiplier_max_bits=16))["modelled"]["dsp"] == 5
    total_row = next(line for line in markdown() if "all 7 Conv2D" in line)
    assert f"| 118 / {base['modelled']['dsp']} ({base['error']['dsp']:+.0%}) |" in total_row


def test_conv_instances_are_the_io_stream_resource_layer():
    """Design 3 is modelled by the same builder the io_stream design uses (hls4ml_matrix)."""
    a = replace(Assumptions(), activation_bits=32, weight_bits=32, accum_bits=32)
    inst = PUBLISHED[2]["instances"][1]  # conv2d_148: 18x18x8 -> 16x16x4, RF 72
    m = conv_instance(inst, 32, a)
    stage = hls4ml_matrix("x", "conv2d", None, 256, 72, 4, 72, 32, 32, a, pixels_in=324, first_need=2 * 18 + 3,
                          line_buffer=(3, 18, 8))
    assert m["multipliers"] == stage.multipliers == 4
    assert m["dsp"] == stage.resources.dsp and m["interval"] == stage.interval
    assert m["latency_max"] == 324 * (72 + a.stream_token_overhead)
    assert m["latency_min"] == 324 * a.stream_shift_cycles


def test_published_per_pixel_cycles_are_rf_plus_a_constant():
    """The report's latencies divided by the pixels: RF + 11 and 4 for every RF (9, 36, 72)."""
    cycles = published_pixel_cycles()
    assert {rf for _, rf, _, _ in cycles} == {9, 36, 72}
    assert {o for _, _, o, _ in cycles} == {11.0} and {s for _, _, _, s in cycles} == {4.0}
    assert stream_cycle_calibration() == {"stream_token_overhead": 11, "stream_shift_cycles": 4}
    defaults = Assumptions()  # the model's defaults are the published constants
    assert (defaults.stream_token_overhead, defaults.stream_shift_cycles) == (11, 4)
    after = compare(PUBLISHED[2], replace(Assumptions(), **stream_cycle_calibration()))
    assert after["error"]["latency_max"] == 0 and after["error"]["latency_min"] == 0


def test_reuse_loop_selects_follow_dense_resource():
    """nnet_dense_resource.h: RF = 1 no select; RF <= n_in: ceil(n_in/RF) RF:1 input selects; RF > n_in:
    one n_in:1 input select + one ceil(RF/n_in):1 accumulator select per multiplier."""
    assert reuse_loop_mux_luts(72, 4, 1, 16, 32) == 0
    assert reuse_loop_mux_luts(72, 4, 72, 32, 32) == 32 * math.ceil(71 / 3)  # one shared 72:1
    assert reuse_loop_mux_luts(64, 32, 16, 16, 32) == 4 * 16 * 5  # four 16:1
    block = math.ceil(8 * 4 / 16)
    assert reuse_loop_mux_luts(8, 4, 16, 16, 32) == 16 * 3 + block * 32 * 1  # 8:1 in, 2:1 per accumulator
    a = Assumptions()
    one = hls4ml_matrix("m", "mlp", 0, 65, 64, 32, 1, 16, 8, a)
    many = hls4ml_matrix("m", "mlp", 0, 65, 64, 32, 16, 16, 8, a)
    assert many.multipliers == 128 and many.resources.lut > 0 and one.resources.bram_18k == 0


def test_the_perf_docstring_states_the_computed_errors():
    c = compare(PUBLISHED[2])
    doc = " ".join(perf.__doc__.split())
    for q in ("dsp", "bram_18k", "lut", "ff", "latency_max"):
        assert f"{c['error'][q]:+.0%}".replace("+-", "-") in doc, q
    mlp = compare(PUBLISHED[0])["error"]["dsp"], compare(PUBLISHED[1])["error"]["dsp"]
    assert f"({mlp[0]:+.0%}, {mlp[1]:+.0%})" in doc
