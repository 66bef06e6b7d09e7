"""vitcod.bench's per-board section: the planned io_stream design and its dense twin (modelled)."""

from __future__ import annotations

from synthetic_run import HLS_STAGE

from vitcod.bench.boards import board_figures, markdown, plot

KEYS = ("fits", "max_utilization", "images_per_s", "latency_us", "bottleneck", "dsp_efficiency",
        "vitcod_vs_dense_throughput")


def test_every_board_has_the_bench_keys_and_targets(synthetic_run, tmp_path):
    boards = board_figures(synthetic_run, HLS_STAGE)
    assert set(boards) == {"pynq-z2", "zcu104", "kv260"}
    for board, e in boards.items():
        assert all(k in e for k in KEYS), board
        assert e["images_per_s"] == e["clock_mhz"] * 1e6 / e["interval_cycles"]
        assert 0 < e["dsp_efficiency"] <= 1
        assert e["vitcod_vs_dense_throughput"] == e["images_per_s"] / e["dense"]["images_per_s"]
        assert e["targets"]["images_per_s"]["met"] in (True, False)
    md = "\n".join(markdown(boards))
    assert "| zcu104 |" in md and "ViTCoD / dense" in md
    assert plot(boards, tmp_path / "boards.png").stat().st_size > 0
