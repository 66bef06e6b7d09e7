"""vitcod.bench's per-board section: the planned io_stream design and its dense twin (modelled)."""

from __future__ import annotations

from synthetic_run import HLS_STAGE

from vitcod.bench.boards import NO_TARGETS, TARGETS_13, board_figures, markdown, plot, targets_for

KEYS = ("fits", "max_utilization", "images_per_s", "latency_us", "bottleneck", "dsp_efficiency",
        "vitcod_vs_dense_throughput")


def test_every_board_has_the_bench_keys_and_targets(synthetic_run, tmp_path):
    boards = board_figures(synthetic_run, HLS_STAGE, targets=TARGETS_13)
    assert set(boards) == {"pynq-z2", "zcu104", "kv260"}
    for board, e in boards.items():
        assert all(k in e for k in KEYS), board
        assert e["images_per_s"] == e["clock_mhz"] * 1e6 / e["interval_cycles"]
        assert 0 < e["dsp_efficiency"] <= 1
        assert e["vitcod_vs_dense_throughput"] == e["images_per_s"] / e["dense"]["images_per_s"]
        assert e["targets"]["images_per_s"]["met"] in (True, False) and e["targets"]["issue"] == 13
        ratio = e["targets"]["vitcod_vs_dense_throughput"]
        assert ratio["lower_bound"] == (not e["dense"]["fits"])
        assert ratio["met"] == (e["fits"] and e["vitcod_vs_dense_throughput"] >= 1.3)
        assert ("needs" in e["targets"]["images_per_s"]) == (not e["targets"]["images_per_s"]["met"])
    md = "\n".join(markdown(boards))
    assert "| zcu104 |" in md and "ViTCoD / dense" in md
    assert plot(boards, tmp_path / "boards.png").stat().st_size > 0


def test_a_missed_target_says_what_it_needs_of_the_board(synthetic_run):
    """Under a cap too tight for the target, the entry carries planner.TargetNeeds: the interval the
    target asks for, and that the cheapest design found at it is over the cap (the FIFOs' share named)."""
    from vitcod.bench import boards as boards_module
    from vitcod.hls.planner import plan_run

    cheapest = plan_run(synthetic_run, "pynq-z2", stage=HLS_STAGE, cap=0.001)
    target = 1.5 * cheapest.modelled["images_per_s"]
    goals = {**boards_module.TARGETS_13, "images_per_s": {"pynq-z2": target}}
    e = board_figures(synthetic_run, HLS_STAGE, boards=["pynq-z2"], cap=0.001, targets=goals)["pynq-z2"]
    goal = e["targets"]["images_per_s"]
    assert goal["met"] is False and not e["fits"]
    needs = goal["needs"]
    assert needs["interval_cycles"] == int(e["clock_mhz"] * 1e6 // target) < e["interval_cycles"]
    assert needs["summary"] in goal["bound_by"] and needs["reachable"] is False and needs["over"]
    assert "of them in the FIFOs" in e["targets"]["fits_at_cap"]["bound_by"]


def test_each_issue_judges_only_its_own_model(synthetic_run):
    """Issue #14's targets (fit and ViTCoD / dense >= 1.8x on zcu104 and kv260, no images/s) for the
    197-token preset's model, #13's (per-board images/s, 1.3x) for the digits demo's, none for any
    other model: the synthetic run's figures are reported without a verdict."""
    from vitcod.model.presets import DIGITS, DIGITS_SMALL, MNIST197

    t = targets_for(MNIST197.config)
    assert (t["issue"], t["ratio"], t["images_per_s"], set(t["boards"])) == (14, 1.8, {}, {"zcu104", "kv260"})
    d = targets_for(DIGITS.config)
    assert d["issue"] == 13 and d["ratio"] == 1.3 and d["images_per_s"]["kv260"] == 80_000 and d["boards"] is None
    assert targets_for(DIGITS_SMALL.config) is NO_TARGETS
    e = board_figures(synthetic_run, HLS_STAGE, boards=["zcu104"])["zcu104"]
    assert e["targets"]["issue"] is None
    assert all(t["met"] is None and t["target"] is None for k, t in e["targets"].items() if k != "issue")
    assert "No issue targets for this model" in "\n".join(markdown({"zcu104": e}))
