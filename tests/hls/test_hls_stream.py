"""The io_stream design (issue #12): same arithmetic as the io_parallel design, bit for bit.

The tiny trained run of conftest.py is converted both ways, compiled once each (session fixture
``tiny_io_designs``) and run on the whole digits test split. The stream design uses hls4ml's stream
layers (projections, Add, ReLU, patch embedding, Cropping1D, head, softmax) with the Resource strategy
and the reuse plan of vitcod.hls.plan, and our stream kernels for LayerNorm, the CLS/position
embedding, the Q/K encoder/decoder and the attention (the streaming engine); every one of them keeps
the io_parallel arithmetic, so the outputs must be identical.
"""

from __future__ import annotations

import json
import re
import subprocess

import numpy as np
import pytest


def test_stream_outputs_identical_to_parallel_on_the_test_split(tiny_io_designs, digits):
    a, b = tiny_io_designs["io_parallel"]["y"], tiny_io_designs["io_stream"]["y"]
    assert a.shape == b.shape == (len(digits.x_test), 10)
    differing = np.flatnonzero((a != b).any(axis=1))
    assert differing.size == 0, f"{differing.size} test images differ, first {differing[:8].tolist()}"
    assert np.isfinite(b).all() and (b.sum(axis=1) > 0.9).all()  # real probabilities, not an empty stream


def test_stream_project_calls_the_stream_kernels(tiny_io_designs):
    out = tiny_io_designs["io_stream"]["out"]
    top = (out / "firmware" / "myproject.cpp").read_text()
    assert "hls::stream<input_t>" in top
    for call in ("vitcod::layernormalize_stream<", "vitcod::cls_pos_embed_stream<", "vitcod::head_mix_stream<",
                 "vitcod::attention_stream<", "nnet::cropping1d_cl<"):
        assert call in top, call
    for header in ("vitcod_layernorm_stream.h", "vitcod_embed_stream.h", "vitcod_headmix_stream.h",
                   "vitcod_attention_stream.h"):
        assert (out / "firmware" / "nnet_utils" / header).is_file(), header
    params = (out / "firmware" / "parameters.h").read_text()
    # our ROMs are vitcod::rom_uint words (plain integers in C-simulation, see vitcod_common.h)
    assert "vitcod::rom_uint<" in params and not re.search(r"static const ap_uint<\d+> \w+\[", params)
    # the fixture's stream design runs the attention with softmax / P x V lanes (conftest.py)
    assert "static const unsigned softmax_lanes = 2;" in params and "static const unsigned pv_lanes = 3;" in params
    parallel = (tiny_io_designs["io_parallel"]["out"] / "firmware" / "myproject.cpp").read_text()
    assert "_stream<" not in parallel and "hls::stream" not in parallel


def test_attention_buffers_are_bound_to_the_planned_storage(tiny_io_designs):
    """BufferStorage "uram", ScoreStorage "lutram" (conftest.py): the storage headers are included
    before the engine, and the engine's buffers carry the BIND_STORAGE pragmas (seen in the
    preprocessed source: the C-simulation itself ignores HLS pragmas)."""
    from vitcod.hls.engine_csim import ap_types_dir

    out = tiny_io_designs["io_stream"]["out"]
    params = (out / "firmware" / "parameters.h").read_text()
    tokens, scores, engine = (params.index(f'#include "nnet_utils/{h}"') for h in (
        "vitcod_attention_buffers_uram.h", "vitcod_attention_scores_lutram.h", "vitcod_attention_stream.h"))
    assert tokens < engine and scores < engine
    pre = subprocess.run(["g++", "-std=c++11", "-E", "-isystem", str(ap_types_dir()), "-I", str(out / "firmware"),
                          str(out / "firmware" / "myproject.cpp")], capture_output=True, text=True, check=True).stdout
    bound = dict(re.findall(r"#pragma HLS BIND_STORAGE variable=(\w+) type=ram_2p impl=(\w+)", pre))
    assert {v: bound.get(v) for v in ("q_dense", "k_global", "q_sparse", "k_sparse", "v_buf", "out_buf")} == dict.fromkeys(
        ("q_dense", "k_global", "q_sparse", "k_sparse", "v_buf", "out_buf"), "uram"), bound
    assert {v: bound.get(v) for v in ("s_dense_sm", "s_dense_pv", "s_sparse_sm", "s_sparse_pv")} == dict.fromkeys(
        ("s_dense_sm", "s_dense_pv", "s_sparse_sm", "s_sparse_pv"), "lutram"), bound
    assert "impl=bram" not in pre


def test_stream_design_uses_the_reuse_plan(tiny_io_designs):
    from vitcod.hls.plan import default_plan, legal_reuse_factors, matrix_shape

    hls_model = tiny_io_designs["io_stream"]["hls_model"]
    keras = hls_model.vitcod.source.model
    plan = default_plan(keras)
    assert hls_model.vitcod.reuse_plan is not None
    checked = 0
    for layer in keras.layers:
        shape = matrix_shape(layer)
        if shape is None or layer.name not in hls_model.graph:
            continue
        node = hls_model.graph[layer.name]
        assert node.get_attr("strategy").lower() == "resource", layer.name
        assert node.get_attr("reuse_factor") == plan[layer.name], layer.name
        assert plan[layer.name] in legal_reuse_factors(*shape)
        assert shape[0] * shape[1] / plan[layer.name] <= 64 or plan[layer.name] == legal_reuse_factors(*shape)[-1]
        checked += 1
    assert checked >= 6  # patch embedding, q, k, v, proj, mlp1, mlp2, head
    assert tiny_io_designs["io_parallel"]["hls_model"].vitcod.reuse_plan is None


def test_stream_network_json_names_io_type_and_element_sizes(tiny_io_designs, tmp_path):
    from vitcod.hls.network import write_network_description

    designs = {}
    for io_type in ("io_parallel", "io_stream"):
        hls_model = tiny_io_designs[io_type]["hls_model"]
        path = write_network_description(hls_model, hls_model.vitcod.source.model, None,
                                         tmp_path / f"{io_type}.json")
        designs[io_type] = json.loads(path.read_text())
    stream, parallel = designs["io_stream"], designs["io_parallel"]
    assert "io_type" not in parallel and "element_size" not in parallel["input"]
    assert stream["io_type"] == "io_stream"
    assert stream["input"]["shape"] == [8, 8, 1] and stream["input"]["element_size"] == 1
    assert stream["output"]["shape"] == [10] and stream["output"]["element_size"] == 10


@pytest.mark.parametrize("n_in, n_out", [(16, 16), (4, 16), (16, 32), (64, 10), (12, 7)])
def test_legal_reuse_factors_are_hls4mls(n_in, n_out):
    import hls4ml

    from vitcod.hls.plan import legal_reuse_factors

    assert legal_reuse_factors(n_in, n_out) == hls4ml.backends.get_backend("Vitis").get_valid_reuse_factors(n_in, n_out)


def test_bad_reuse_plan_rejected_before_anything_is_written(tiny_run, digits, tmp_path):
    from vitcod.hls.convert import convert

    out = tmp_path / "prj"
    with pytest.raises(ValueError, match=r"block0_q .*reuse factor 3 is not one hls4ml accepts"):
        convert(tiny_run, out, io_type="io_stream", data=digits, reuse_plan={"block0_q": 3})
    with pytest.raises(ValueError, match="unknown layer"):
        convert(tiny_run, out, io_type="io_stream", data=digits, reuse_plan={"no_such_layer": 1})
    assert not out.exists()


STREAM_LOOPS = {
    "vitcod_layernorm_stream.h": ("LayerNormStreamTokens",),
    "vitcod_embed_stream.h": ("EmbedStreamTokens",),
    "vitcod_headmix_stream.h": ("HeadMixStreamTokens",),
}


@pytest.mark.parametrize("header", sorted(STREAM_LOOPS))
def test_stream_kernels_are_pipelined_without_carried_reads(header):
    """Issue #16's rules for the new kernels: every per-token loop pipelined, fixed bounds, no memory read
    at an address carried from the previous iteration, no dynamic memory or STL."""
    from test_synthesis_readiness import _loop_body, carried_reads

    from vitcod.hls.engines import FIRMWARE_DIR

    source = (FIRMWARE_DIR / header).read_text()
    for label in STREAM_LOOPS[header]:
        assert carried_reads(source, label) == [], label
        _, body = _loop_body(source, label)
        assert "#pragma HLS PIPELINE" in body, label
        loop = source[source.index(f"{label}:"):source.index(f"{label}:") + 200]
        assert "CONFIG_T::" in loop.split("{")[0] or "< n;" in loop.split("{")[0], f"{label}: bound not constant"
    for banned in ("new ", "malloc", "std::vector", "#include <"):
        assert banned not in source, f"{header}: {banned!r}"


def test_compare_outputs_reports_what_the_demo_writes(tiny_io_designs):
    """summary.json csim.identical_to_parallel comes from compare_outputs (hls/network_csim.py): true
    on the two designs' real outputs, false (naming how many images) when one raw differs."""
    from vitcod.hls.network_csim import compare_outputs

    parallel = {"y": tiny_io_designs["io_parallel"]["y"], "compile_seconds": 1.0, "csim_seconds": 1.0,
                "project_dir": "p"}
    stream = tiny_io_designs["io_stream"]["y"]
    same = compare_outputs(stream, parallel)
    assert same["identical"] and same["images_differing"] == 0 and same["top1_agreement"] == 1.0
    changed = stream.copy()
    changed[3, 0] += 2.0 ** -10  # one LSB-sized change in one image
    diff = compare_outputs(changed, parallel)
    assert not diff["identical"] and diff["images_differing"] == 1 and diff["max_abs_difference"] > 0
    with pytest.raises(ValueError, match="not the same images"):
        compare_outputs(stream[:-1], parallel)
