"""The io_stream stage model (vitcod.hls.perf.stream) and the board planner (vitcod.hls.planner,
plan file vitcod.hls.plan_file, ``python -m vitcod.hls.plan``, ``python -m vitcod.hls.perf fit``).
Every run here is the synthetic run (tiny config, random masks): no training, no TensorFlow."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from dataclasses import fields

import pytest
from synthetic_run import HLS_STAGE

from vitcod.hls import engines, perf
from vitcod.hls.perf.resources import Assumptions
from vitcod.hls.perf.stream import attention_knob_names, design_slots, flat_slots, stream_estimate
from vitcod.hls.perf.stream_layers import hls4ml_matrix
from vitcod.hls.plan import legal_reuse_factors
from vitcod.hls.plan_file import Plan, PlanError
from vitcod.hls.planner import board_budget, load_stage, needs_run, plan_design, plan_run, slot_options


def _stage(run):
    config, masks, ae = load_stage(run, HLS_STAGE)
    return config, masks, ae


def test_stream_counts_equal_the_model_whose_counts_equal_the_csim_counters(synthetic_run):
    """The io_stream design computes the same multiplies as the io_parallel model (whose counters
    tests/hls/test_perf.py holds against the C-simulation), whatever the knobs."""
    ref = perf.estimate_run(synthetic_run, HLS_STAGE)
    config, masks, ae = _stage(synthetic_run)
    for knobs in ({}, {"block0_q": {"reuse_factor": 4}, "block0_attention": {"dense_unroll": 1, "sparse_lanes": 2}}):
        est = stream_estimate(config, masks, Assumptions(), knobs, autoencoder=ae)
        assert est.counters == ref.counters
        assert est.multiplies == ref.multiplies


def test_hls4ml_resource_layer_follows_dense_resource():
    """block_factor = ceil(n_in*n_out/RF) multipliers; RF + overhead cycles per position; weights in a
    ROM only when RF > 1 (nnet_dense_resource.h)."""
    a = Assumptions()
    for rf in legal_reuse_factors(32, 64)[:8]:
        s = hls4ml_matrix("m", "mlp", 0, 65, 32, 64, rf, 16, 8, a)
        assert s.multipliers == math.ceil(32 * 64 / rf)
        assert s.interval == 65 * (rf + a.stream_token_overhead)
        assert s.multiplies == 65 * 32 * 64
    one, many = hls4ml_matrix("m", "mlp", 0, 65, 32, 64, 1, 16, 8, a), hls4ml_matrix("m", "mlp", 0, 65, 32, 64, 512, 16, 8, a)
    assert many.resources.dsp < one.resources.dsp and one.resources.bram_18k == 0


def test_design_interval_is_its_slowest_stage_and_latency_covers_the_path(synthetic_run):
    config, masks, ae = _stage(synthetic_run)
    est = stream_estimate(config, masks, Assumptions(), autoencoder=ae)
    assert est.interval == max(s.interval for s in est.stages)
    assert est.bottleneck in {s.name for s in est.stages if s.interval == est.interval}
    attention = [s for s in est.stages if s.kind == "attention"]
    assert attention and est.latency > sum(s.depth + s.load for s in attention)
    assert est.resources.bram_18k >= sum(s.resources.bram_18k for s in attention)  # K/V buffers counted
    assert set(est.fifos) == set(perf.dataflow.safe_depths(config, autoencoder=ae))


def test_planner_uses_legal_reuse_factors_and_stays_under_the_cap(synthetic_run):
    plan = plan_run(synthetic_run, "pynq-z2", stage=HLS_STAGE)
    assert plan.fits and plan.modelled["max_utilization"] <= 0.8
    config, _, _ = _stage(synthetic_run)
    from vitcod.hls.perf.stream import matrix_layers

    for name, (n_in, n_out) in matrix_layers(config).items():
        assert plan.knobs[name]["reuse_factor"] in legal_reuse_factors(n_in, n_out), name
    assert all(s["interval"] <= plan.modelled["interval_cycles"] for s in plan.stages)


def test_a_tighter_cap_never_gives_a_faster_design_and_an_impossible_one_says_so(synthetic_run):
    loose = plan_run(synthetic_run, "zcu104", stage=HLS_STAGE, cap=0.8)
    tight = plan_run(synthetic_run, "zcu104", stage=HLS_STAGE, cap=0.02)
    assert tight.modelled["interval_cycles"] >= loose.modelled["interval_cycles"]
    impossible = plan_run(synthetic_run, "pynq-z2", stage=HLS_STAGE, cap=0.001)
    assert not impossible.fits and impossible.modelled["over"]


def test_the_planner_enumerates_every_lane_knob_the_engine_config_has(synthetic_run):
    have = {f.name for f in fields(engines.AttentionEngineConfig)}
    knobs = attention_knob_names()
    assert set(knobs) == {"dense_unroll", "sparse_lanes"} | ({"softmax_lanes", "pv_lanes"} & have)
    config, masks, ae = _stage(synthetic_run)
    slot = next(s for s in flat_slots(design_slots(config, masks, Assumptions(), autoencoder=ae))
                if s.kind == "attention")
    options = slot_options(slot)
    assert {tuple(sorted(o.knobs)) for o in options} == {tuple(sorted(knobs))}
    assert len({o.knobs["sparse_lanes"] for o in options}) > 1


def test_dense_baseline_is_slower_at_equal_resources(synthetic_run):
    vit = plan_run(synthetic_run, "zcu104", stage=HLS_STAGE)
    dense = plan_run(synthetic_run, "zcu104", stage=HLS_STAGE, dense=True)
    assert dense.attention == "dense" and vit.attention == "vitcod"
    assert dense.modelled["multiplies"] > vit.modelled["multiplies"]
    assert dense.modelled["interval_cycles"] >= vit.modelled["interval_cycles"]


def test_plan_file_round_trip_and_conversion_overrides(synthetic_run, tmp_path):
    plan = plan_run(synthetic_run, "kv260", stage=HLS_STAGE)
    path = plan.write(tmp_path / "plan.json")
    again = Plan.read(path)
    assert again.to_dict() == json.loads(path.read_text()) and again.knobs == plan.knobs
    over = again.layer_overrides()
    assert over["block0_mlp1"]["ReuseFactor"] == plan.knobs["block0_mlp1"]["reuse_factor"]
    att = over["block0_attention"]
    assert att["DenseUnroll"] >= 1 and att["SparseLanes"] >= 1
    with pytest.raises(PlanError, match="does not have"):
        again.layer_overrides(["patch_embed"])
    (tmp_path / "bad.json").write_text('{"schema": "other"}')
    with pytest.raises(PlanError, match="not a plan"):
        Plan.read(tmp_path / "bad.json")


def test_memory_storage_rules():
    from vitcod.hls.perf.resources import memory

    a = Assumptions()
    assert memory(788, 128, a, storage="bram").as_dict() == {"dsp": 0, "bram_18k": 8, "lut": 0, "ff": 0, "uram": 0}
    assert memory(788, 128, a, storage="uram").as_dict() == {"dsp": 0, "bram_18k": 0, "lut": 0, "ff": 0, "uram": 2}
    assert memory(788, 128, a, storage="lutram").lut == 13 * 128 and memory(788, 128, a).bram_18k == 8  # auto: BRAM
    assert memory(100, 8, a).bram_18k == 0 and memory(100, 8, a, storage="bram").bram_18k == 1  # bound: a block
    with pytest.raises(ValueError, match="storage must be one of"):
        memory(8, 8, a, storage="flash")


def test_attention_buffer_storage_is_planned_once_per_design(synthetic_run):
    """The planner searches the (token buffers, scores) storages the board offers (URAM only on
    UltraScale+) and keeps the fastest design that fits; the attention layers carry the pair to the
    conversion (BufferStorage, ScoreStorage)."""
    from vitcod.hls.planner import buffer_storages

    assert not any("uram" in pair for pair in buffer_storages(board_budget("pynq-z2")))
    assert ("lutram", "uram") in buffer_storages(board_budget("kv260"))
    config, masks, ae = _stage(synthetic_run)
    slot = next(s for s in flat_slots(design_slots(config, masks, Assumptions(), autoencoder=ae))
                if s.kind == "attention")
    auto, uram, lutram = (slot.build({**slot.default, "buffer_storage": s}).resources for s in ("auto", "uram", "lutram"))
    assert uram.uram > 0 and auto.uram == lutram.uram == 0
    assert uram.bram_18k < auto.bram_18k and lutram.bram_18k < auto.bram_18k and lutram.lut > auto.lut
    mixed = slot.build({**slot.default, "buffer_storage": "lutram", "score_storage": "uram"})
    assert 0 < mixed.resources.uram < uram.uram and mixed.knobs["score_storage"] == "uram"
    plan = plan_run(synthetic_run, "zcu104", stage=HLS_STAGE)
    pairs = buffer_storages(board_budget("zcu104"))
    alone = {p: plan_run(synthetic_run, "zcu104", stage=HLS_STAGE, storages=(p,)) for p in pairs}
    assert (plan.attention_storage, plan.score_storage) in alone and plan.fits
    assert all(plan.modelled["interval_cycles"] <= p.modelled["interval_cycles"] for p in alone.values() if p.fits)
    for name, knobs in plan.knobs.items():
        if "dense_unroll" in knobs:
            over = plan.layer_overrides()[name]
            assert knobs.get("buffer_storage", "auto") == over.get("BufferStorage", "auto") == plan.attention_storage
            assert knobs.get("score_storage", "auto") == over.get("ScoreStorage", "auto") == plan.score_storage
    same = plan_run(synthetic_run, "zcu104", stage=HLS_STAGE, storages=["lutram"])  # one name: both bound
    over = same.layer_overrides()["block0_attention"]
    assert (over["BufferStorage"], over["ScoreStorage"]) == ("lutram", "lutram")
    forced = plan_run(synthetic_run, "zcu104", stage=HLS_STAGE, storages=[("lutram", "uram")])
    assert (forced.attention_storage, forced.score_storage) == ("lutram", "uram") and forced.modelled["resources"]["uram"] > 0
    over = Plan.from_dict(forced.to_dict()).layer_overrides()["block0_attention"]
    assert (over["BufferStorage"], over["ScoreStorage"]) == ("lutram", "uram")


def test_a_throughput_target_says_what_it_needs_of_the_board(synthetic_run):
    """TargetNeeds: at the planned design's own throughput the search finds a design that fits (the
    same search, the same interval); under a tight cap that throughput is over it, by resource; far
    beyond the fastest option of some stage, those stages are named with their fastest interval."""
    plan = plan_run(synthetic_run, "zcu104", stage=HLS_STAGE)
    clock, interval = plan.clock_mhz * 1e6, plan.modelled["interval_cycles"]
    at_plan = needs_run(synthetic_run, "zcu104", clock / (interval + 0.5), stage=HLS_STAGE)
    assert at_plan.interval_cycles == interval and at_plan.reachable and not at_plan.too_slow
    assert at_plan.plan.modelled["interval_cycles"] <= interval and "under the cap" in at_plan.summary()

    tight = needs_run(synthetic_run, "zcu104", clock / (interval + 0.5), stage=HLS_STAGE, cap=0.02)
    assert not tight.reachable and tight.plan is not None and not tight.plan.fits
    over = tight.plan.modelled["over"]
    assert over and all(tight.plan.modelled["resources"][k] > 0.02 * tight.plan.available[k] for k in over)
    assert "over the cap on " + ", ".join(f"{k} (+{v})" for k, v in over.items()) in tight.summary()
    assert tight.to_dict()["over"] == over and tight.to_dict()["reachable"] is False

    config, masks, ae = _stage(synthetic_run)
    fastest = {s.name: min(o.interval for o in slot_options(s))
               for s in flat_slots(design_slots(config, masks, Assumptions(), autoencoder=ae))}
    t = min(fastest.values()) + 1  # faster than the slowest stages can go
    beyond = needs_run(synthetic_run, "zcu104", clock / (t + 0.5), stage=HLS_STAGE)
    assert beyond.plan is None and not beyond.reachable
    assert beyond.too_slow and set(beyond.too_slow) <= set(fastest)
    assert all(v > t and fastest[n] >= v for n, v in beyond.too_slow.items())
    assert "no knob makes" in beyond.summary()
    with pytest.raises(ValueError, match="images_per_s must be > 0"):
        needs_run(synthetic_run, "zcu104", 0, stage=HLS_STAGE)


def test_the_digits_small_preset_fits_pynq_z2_where_the_demo_does_not(tmp_path):
    """MODELLED, with random masks at 0.90: the digits-small preset (embed 16) plans under the 80% cap
    on PYNQ-Z2, the digits demo's geometry (embed 32) does not fit even at its cheapest design, and
    the token FIFOs hold a share of the LUTs no knob changes."""
    import numpy as np
    from synthetic_run import random_keep_mask

    from vitcod.model.mask_artifact import load_mask_artifact, save_mask_artifact
    from vitcod.model.presets import DIGITS, DIGITS_SMALL

    plans = {}
    for preset in (DIGITS_SMALL, DIGITS):
        c = preset.config
        path = tmp_path / f"{preset.name}.npz"
        save_mask_artifact(path, random_keep_mask(np.random.default_rng(0), c.depth, c.num_heads, c.num_tokens, 0.9),
                           0.5, target_sparsity=0.9)
        plans[preset.name] = plan_design(c, load_mask_artifact(path), board_budget("pynq-z2"))
    small, demo = plans["digits-small"], plans["digits"]
    assert small.fits and small.modelled["max_utilization"] <= 0.8
    assert not demo.fits and "lut" in demo.modelled["over"]
    fifo_lut = [p.modelled["fifo_resources"]["lut"] for p in (small, demo)]
    assert fifo_lut[1] > 1.9 * fifo_lut[0]  # every token FIFO carries embed_dim values


def test_budget_comes_from_the_board_files():
    b = board_budget("zcu104", {"dsp": 0.5})
    assert b.part == "xczu7ev-ffvc1156-2-e" and b.cap["dsp"] == 0.5 and b.cap["lut"] == 0.8
    assert b.limit("dsp") == 0.5 * b.available["dsp"]
    assert board_budget("zcu104", {"uram": 0.5}).limit("uram") == 48 and board_budget("pynq-z2").limit("uram") == 0
    with pytest.raises(ValueError, match="unknown resource"):
        board_budget("zcu104", {"hbm": 0.5})
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        board_budget("zcu104", 1.5)


def _cli(module: str, *args: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, cwd=cwd)


def test_plan_and_fit_commands(synthetic_run, tmp_path):
    run = ["--run-dir", str(synthetic_run), "--stage", HLS_STAGE]
    out = tmp_path / "p.json"
    proc = _cli("vitcod.hls.plan", *run, "--board", "zcu104", "--out", str(out), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "| **total** |" in proc.stdout and Plan.read(out).board == "zcu104"
    proc = _cli("vitcod.hls.perf", "fit", *run, "--board", "zcu104", cwd=tmp_path)
    assert proc.returncode == 0 and proc.stdout.startswith("zcu104: fits (modelled: dsp "), proc.stderr
    proc = _cli("vitcod.hls.perf", "fit", *run, "--board", "pynq-z2", "--cap", "0.001", cwd=tmp_path)
    assert proc.returncode == 3 and "does not fit pynq-z2" in proc.stderr and "of them in the stream FIFOs" in proc.stderr
    proc = _cli("vitcod.hls.perf", "fit", *run, "--board", "pynq-z2", "--plan", str(out), cwd=tmp_path)
    assert proc.returncode == 2 and "plan for zcu104" in proc.stderr
    proc = _cli("vitcod.hls.plan", *run, "--board", "zcu104", "--out", str(out), "--target-images-per-s", "1e9",
                cwd=tmp_path)
    assert proc.returncode == 0 and "target NOT met: 1e+09 images/s on zcu104 needs an interval <= 0 cycles" in proc.stdout
    proc = _cli("vitcod.hls.plan", *run, "--board", "no-such-board", cwd=tmp_path)
    assert proc.returncode == 2 and "no-such-board" in proc.stderr


def test_conversion_takes_the_plan(tiny_run, digits, tmp_path):
    """hls/convert.py: every planned ReuseFactor and the attention lanes reach the hls4ml config
    (the user's layer_overrides still win); an io_parallel conversion refuses a plan."""
    from vitcod.hls.convert import UnsupportedConfigurationError, convert

    plan = plan_run(tiny_run, "pynq-z2", stage=HLS_STAGE)
    hls_model = convert(tiny_run, tmp_path / "prj", io_type="io_stream", data=digits, profile_samples=64, plan=plan,
                        layer_overrides={"block0_mlp2": {"ReuseFactor": legal_reuse_factors(*plan_shape(plan, "block0_mlp2"))[0]}})
    cfg = hls_model.config.config["HLSConfig"]["LayerName"]
    for layer, knobs in plan.knobs.items():
        if layer == "block0_mlp2":
            continue
        if "reuse_factor" in knobs:
            assert cfg[layer]["ReuseFactor"] == knobs["reuse_factor"], layer
        else:
            assert cfg[layer]["DenseUnroll"] == knobs["dense_unroll"]
            assert cfg[layer].get("BufferStorage", "auto") == plan.attention_storage
            assert cfg[layer].get("ScoreStorage", "auto") == plan.score_storage
    assert cfg["block0_mlp2"]["ReuseFactor"] == legal_reuse_factors(*plan_shape(plan, "block0_mlp2"))[0]
    with pytest.raises(UnsupportedConfigurationError, match="io_stream"):
        convert(tiny_run, tmp_path / "par", io_type="io_parallel", data=digits, profile_samples=64, plan=plan)


def plan_shape(plan, layer):
    config, _, _ = load_stage(plan.run_dir, plan.stage)
    from vitcod.hls.perf.stream import matrix_layers

    return matrix_layers(config)[layer]
