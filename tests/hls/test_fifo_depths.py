"""FIFO depths of the converted io_stream design (issue #12 item 4; hls/fifo_depths.py).

The check reads the depths back from the written network function (the ``#pragma HLS STREAM`` lines
hls4ml wrote) and runs the token-level dataflow simulation of the graph hls4ml built: with the
emitted depths a batch of 8 images completes; with one residual FIFO one token shallower it
deadlocks (so the check can fail). MODELLED: C-simulation cannot show any of this.
"""

from __future__ import annotations

import json

import pytest

from vitcod.hls import fifo_depths as fd
from vitcod.hls.perf.dataflow import simulate, with_depths


@pytest.fixture(scope="module")
def stream_design(tiny_io_designs):
    d = tiny_io_designs["io_stream"]
    sg = fd.stream_graph(d["hls_model"])
    emitted = fd.read_emitted_depths(d["out"])
    depths = {e: emitted[v] for e, v in sg.variables.items()}
    return d, sg, emitted, depths


def _residuals(sg, depths):
    return sorted(e for e, d in depths.items() if d > 2)


def test_every_stream_of_the_network_gets_its_computed_depth(stream_design):
    d, sg, emitted, depths = stream_design
    plan = d["hls_model"].vitcod.fifo_plan
    assert set(sg.variables.values()) == set(emitted)  # one pragma per internal stream, no stale one
    assert depths == {e: plan.depths[e] for e in sg.variables}
    n = d["hls_model"].vitcod.source.config.num_tokens
    residuals = _residuals(sg, depths)
    # one residual around each attention: the Clone output that goes straight to the first Add
    blocks = d["hls_model"].vitcod.source.config.depth
    assert len(residuals) == blocks and all(depths[e] == n for e in residuals)
    assert all(e.split("->")[1].endswith("_add1") and e.startswith("clone_") for e in residuals)


def test_emitted_depths_complete_a_batch_of_8_images(stream_design):
    _, sg, _, depths = stream_design
    result = simulate(with_depths(sg.graph, depths), 8)
    assert not result.deadlock, result.describe()
    assert result.completed == 8 and result.interval is not None and result.interval > 0


def test_one_residual_fifo_one_token_shallower_deadlocks(stream_design):
    _, sg, _, depths = stream_design
    for edge in _residuals(sg, depths):
        result = simulate(with_depths(sg.graph, {**depths, edge: depths[edge] - 1}), 8)
        assert result.deadlock, edge
        assert result.cause == [edge], result.describe()


def test_hls4ml_defaults_would_cost_far_more_fifo_words(stream_design):
    d, _, _, _ = stream_design
    report = json.loads((d["out"] / fd.DEPTHS_FILE).read_text())
    assert report["simulation"]["deadlock"] is False and "MODELLED" in report["label"]
    assert report["total_depth"] < report["hls4ml_default_total_depth"] / 4
    assert {f["variable"] for f in report["fifos"] if f["variable"]} == set(fd.read_emitted_depths(d["out"]))


def test_io_parallel_models_have_no_stream_graph(tiny_io_designs):
    with pytest.raises(ValueError, match="io_stream"):
        fd.stream_graph(tiny_io_designs["io_parallel"]["hls_model"])


def test_bad_depth_settings_are_refused(stream_design):
    _, sg, _, _ = stream_design
    with pytest.raises(ValueError, match="base_depth"):
        fd.fork_depths(sg, base_depth=1)
    with pytest.raises(ValueError, match="slack"):
        fd.fork_depths(sg, slack=-1)
