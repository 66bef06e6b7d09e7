"""vitcod.bench's plumbing that the bench run itself does not exercise: the child-program protocol
and the figures-vs-targets check. (The whole bench on a synthetic run: test_bench_writes_every_field_with_a_unit below.)"""

from __future__ import annotations

import json

import shutil

import pytest
from synthetic_run import HLS_STAGE, STAGES

from vitcod.bench.child import ChildArgumentError, parse_child_args, run_child
from vitcod.bench.figures import TARGETS, UNITS, figures_vs_targets
from vitcod.model import run_layout

needs_gxx = pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++ for the C-simulation")

REQUIRED_BENCH_FIELDS = ("attention_mult_ratio_at_0.9", "modelled_attention_speedup_at_0.9",
                         "pack_vs_copy_throughput_ratio", "csim_test_split_seconds", "model_counts_match_csim")


def test_child_arguments_are_one_json_object_with_the_required_keys():
    assert parse_child_args([json.dumps({"run_dir": "r", "stage": "s"})], ("run_dir", "stage")) == {
        "run_dir": "r", "stage": "s"}
    with pytest.raises(ChildArgumentError, match="lacks"):
        parse_child_args([json.dumps({"run_dir": "r"})], ("run_dir", "stage"))
    with pytest.raises(ChildArgumentError, match="only argument"):
        parse_child_args([], ("run_dir",))
    with pytest.raises(ChildArgumentError, match="JSON object"):
        parse_child_args(["[1, 2]"], ("run_dir",))


def test_a_failing_child_gives_its_error_as_the_reason():
    result, reason = run_child("vitcod.bench.engine_compile_child", {"stage": "s"}, timeout=120)
    assert result is None
    assert reason.startswith("exit code 1") and "ChildArgumentError" in reason and "run_dir" in reason


def test_figures_vs_targets():
    bench = {key: None for key in TARGETS}
    bench.update({"attention_mult_ratio_at_0.9": 9.0, "modelled_attention_speedup_at_0.9": 4.9,
                  "csim_test_split_seconds": 31.0, "model_counts_match_csim": True})
    figures = figures_vs_targets(bench)
    assert list(figures) == list(TARGETS) and all(key in UNITS for key in figures)
    assert figures["attention_mult_ratio_at_0.9"]["met"] is True  # >= is inclusive
    assert figures["modelled_attention_speedup_at_0.9"]["met"] is False
    assert figures["csim_test_split_seconds"] == {"value": 31.0, "target": "<= 30.0", "met": False, "kind": "measured"}
    assert figures["pack_vs_copy_throughput_ratio"]["met"] is None  # not measured: neither met nor missed
    assert figures["model_counts_match_csim"]["met"] is True
    assert figures["modelled_attention_speedup_at_0.9"]["kind"] == "modelled"


def check_bench_fields(bench: dict) -> None:
    """Every headline field: a number (or bool) with a unit, or null with a reason."""
    for key in REQUIRED_BENCH_FIELDS:
        assert key in bench, key
        assert key in bench["units"] and bench["units"][key], f"{key} has no unit"
        value = bench[key]
        if value is None:
            assert bench["reasons"].get(key), f"{key} is null without a reason"
        else:
            assert isinstance(value, (int, float, bool)), (key, value)
    for key, figure in bench["figures"].items():
        assert figure["value"] == bench[key]


@needs_gxx
def test_bench_writes_every_field_with_a_unit(synthetic_run, tmp_path):
    from vitcod.bench import run_bench

    out = tmp_path / "bench"
    bench = run_bench(synthetic_run, out, counter_stages=[HLS_STAGE], whole_csim=False, engine_probe=True,
                      packing_repeats=2)
    check_bench_fields(bench)
    assert json.loads((out / "bench.json").read_text()) == bench
    assert (out / "bench.md").read_text().startswith("# Bench") and (out / "bench.png").stat().st_size > 0
    assert bench["model_counts_match_csim"] is True  # the counters really ran
    assert bench["csim_test_split_seconds"] is None and "skipped" in bench["reasons"]["csim_test_split_seconds"]
    assert bench["attention_mult_ratio_at_0.9"] > 1 and bench["pack_vs_copy_throughput_ratio"] > 0
    assert [r["stage"] for r in bench["sweep"]] == [s for s in STAGES if s != run_layout.DENSE]
    # a run folder without dense/metrics.json records no dataset: the bench's default, the digits, said so
    assert bench["dataset"]["name"] == "digits" and "not found" in bench["dataset"]["source"]
    assert bench["test_split"] == {"what": "digits test split", "images": 360}
    # the modelled IP throughput is clock / latency (no overlap of images in vitcod_top), and says so
    for r in bench["sweep"]:
        assert r["model_throughput_basis"] == "latency"
        assert r["model_throughput_images_per_s"] == pytest.approx(bench["clock_mhz"] * 1e6 / r["model_latency_cycles"])
        assert r["model_overlapped_throughput_images_per_s"] > r["model_throughput_images_per_s"]
    md = (out / "bench.md").read_text()
    assert "clock / LATENCY, not clock / interval" in md and "no DATAFLOW across images" in md
    # the engine probe's child program really ran (g++ from an empty cache, in its own process)
    assert bench["engine_csim_compile_seconds"] > 0 and bench["engine_csim_compile_peak_mb"] > 0, bench["engine_csim"]
    assert bench["engine_csim_images_per_s"] > 0
