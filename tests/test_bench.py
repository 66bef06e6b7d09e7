"""vitcod.bench's plumbing that the bench run itself does not exercise: the child-program protocol
and the figures-vs-targets check. (The whole bench on a synthetic run: tests/test_perf.py.)"""

from __future__ import annotations

import json

import pytest

from vitcod.bench.child import ChildArgumentError, parse_child_args, run_child
from vitcod.bench.figures import TARGETS, UNITS, figures_vs_targets


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
