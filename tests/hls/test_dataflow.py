"""hls/perf/dataflow.py: the token-level DATAFLOW simulation proves the FIFO depths of the ViTCoD
io_stream graph - a batch of 8 completes with the computed depths and reports its interval, and one
residual FIFO one token shallower deadlocks (the check can fail)."""

from __future__ import annotations

import pytest

from vitcod.hls.perf import dataflow as df
from vitcod.model.config import ViTConfig

CONFIG = ViTConfig()  # the digits demo: 65 tokens, depth 2
N = CONFIG.num_tokens


@pytest.fixture(scope="module", params=["lockstep", "sequential"])
def reads(request) -> str:
    return request.param


def test_computed_depths_complete_a_batch_of_8_and_report_the_interval(reads):
    depths = df.safe_depths(CONFIG, attention_reads=reads)
    graph = df.with_depths(df.vit_graph(CONFIG, attention_reads=reads), depths)
    result = df.simulate(graph, images=8)
    assert not result.deadlock and result.completed == 8 and len(result.done_at) == 8, result.describe()
    # images overlap: the interval is about one attention (the slowest process), not the latency
    attention = 2 * N * N * CONFIG.head_dim
    assert attention <= result.interval < 1.1 * attention
    assert result.latency > 1.9 * result.interval  # two attention layers one after the other for image 0
    assert "interval" in result.describe()


@pytest.mark.parametrize("block", range(CONFIG.depth))
def test_a_residual_fifo_one_shallower_deadlocks(reads, block):
    depths = df.safe_depths(CONFIG, attention_reads=reads)
    edge = f"block{block}.fork0->block{block}.add1"
    assert depths[edge] == N  # every token the attention reads before its first output
    depths[edge] -= 1
    result = df.simulate(df.with_depths(df.vit_graph(CONFIG, attention_reads=reads), depths), images=8)
    assert result.deadlock and result.completed == 0
    assert edge in result.cause and edge in result.full_fifos
    if reads == "lockstep":
        assert result.cause == [edge]  # (sequential: the K/V branches wait full behind Q as well)
    assert f"block{block}.fork0" in result.stuck and "writes to full" in result.stuck[f"block{block}.fork0"]
    assert "DEADLOCK" in result.describe() and edge in result.describe()


def test_sequential_attention_reads_need_deep_k_and_v_fifos():
    lock = df.safe_depths(CONFIG, attention_reads="lockstep")
    seq = df.safe_depths(CONFIG, attention_reads="sequential")
    assert lock["block0.fork1->block0.v_proj"] == 2 and seq["block0.fork1->block0.v_proj"] == N
    seq["block0.fork1->block0.v_proj"] = 2  # V must be buffered while all of Q is read
    result = df.simulate(df.with_depths(df.vit_graph(CONFIG, attention_reads="sequential"), seq), images=2)
    assert result.deadlock and "block0.fork1->block0.v_proj" in result.full_fifos
    assert "block0.v_proj->block0.attention" in result.cause  # the V branch is full back to the fork


def test_hls4ml_default_depth_everywhere_deadlocks():
    """All FIFOs 2 deep (as C-simulation would never notice): the residual around attention blocks."""
    result = df.simulate(df.vit_graph(CONFIG), images=8)
    assert result.deadlock and result.cause == ["block0.fork0->block0.add1"]


def test_slack_only_helps_and_slower_layers_set_the_interval():
    base = df.simulate(df.with_depths(df.vit_graph(CONFIG), df.safe_depths(CONFIG)), images=4)
    more = df.simulate(df.with_depths(df.vit_graph(CONFIG), df.safe_depths(CONFIG, slack=8)), images=4)
    assert not more.deadlock and more.interval <= base.interval
    slow = df.vit_graph(CONFIG, token_ii={"block0.mlp1": 2000})  # a reuse factor that beats attention
    slow_result = df.simulate(df.with_depths(slow, df.safe_depths(CONFIG)), images=4)
    assert slow_result.interval >= 2000 * N  # the slowest process bounds it...
    # ... but shallow FIFOs after the attention keep it from running ahead: N-deep FIFOs decouple them
    deep = df.simulate(df.with_depths(slow, {e: max(d, N) for e, d in df.safe_depths(CONFIG).items()}), images=4)
    assert deep.interval == pytest.approx(2000 * N, rel=0.02) and deep.interval < 0.8 * slow_result.interval
    assert df.throughput(slow_result.interval, 100.0) == pytest.approx(100e6 / slow_result.interval)


def test_other_configs_get_their_token_count():
    config = ViTConfig(image_size=4, depth=1, embed_dim=16, num_heads=2)
    depths = df.safe_depths(config, slack=3)
    assert depths["block0.fork0->block0.add1"] == config.num_tokens + 3
    assert not df.simulate(df.with_depths(df.vit_graph(config), depths), images=8).deadlock


def test_stream_pragmas_render_the_depths_for_named_variables():
    depths = df.safe_depths(CONFIG)
    lines = df.stream_pragmas(depths, {"block0.fork0->block0.add1": "layer7_cpy1", "embed->block0.fork0": "layer5_out"})
    assert lines == [f"#pragma HLS STREAM variable=layer7_cpy1 depth={N}",
                     "#pragma HLS STREAM variable=layer5_out depth=2"]
    with pytest.raises(KeyError, match=r"no depth for the edges \['nope'\]"):
        df.stream_pragmas(depths, {"nope": "layer1_out"})
    with pytest.raises(KeyError, match="no FIFO named"):
        df.with_depths(df.vit_graph(CONFIG), {"nope": 3})


# ---- the throughput basis of the io_stream design (hls/perf/estimate.py) -----------------------------------
def test_io_stream_throughput_is_clock_over_interval_and_io_parallel_keeps_latency():
    from vitcod.hls.perf import model_estimate

    par, st = model_estimate(CONFIG), model_estimate(CONFIG, io_type="io_stream")
    tp, ts = par.to_dict()["totals"], st.to_dict()["totals"]
    assert tp["throughput_basis"] == "latency" and tp["image_cycles"] == par.cycles and tp["io_type"] == "io_parallel"
    assert ts["throughput_basis"] == "interval" and ts["io_type"] == "io_stream"
    assert st.image_cycles == max(st.interval, CONFIG.image_size ** 2 * CONFIG.channels) < st.cycles
    assert ts["throughput_images_per_s"] == pytest.approx(st.assumptions.clock_mhz * 1e6 / st.interval)
    assert ts["throughput_images_per_s"] > tp["throughput_images_per_s"]
    assert "DATAFLOW" in ts["throughput_note"]
    with pytest.raises(ValueError, match="io_type must be one of"):
        model_estimate(CONFIG, io_type="stream")


def test_the_estimated_graph_runs_at_about_the_modelled_interval():
    """The dataflow simulation of the modelled layers (reuse factor 32, attention from its engine):
    the slowest process bounds the interval; FIFO coupling costs a few percent more."""
    from vitcod.hls.perf import Assumptions, model_estimate

    est = model_estimate(CONFIG, None, Assumptions(reuse_factor=32), io_type="io_stream")
    graph = df.vit_graph_from_estimate(est)
    assert graph.processes["block0.mlp1"].ii == 32 and graph.processes["block1.attention"].latency == est.attention[1].cycles
    result = df.simulate(df.with_depths(graph, df.safe_depths(CONFIG)), images=8)
    assert not result.deadlock
    assert est.image_cycles <= result.interval < 1.1 * est.image_cycles
