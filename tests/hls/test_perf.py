"""vitcod.hls.perf: the modelled design.

What must hold exactly: the model's multiply/MAC counts, computed from the masks, equal the counters of
the compiled engines in C-simulation - on random masks with the edge cases (a head with G = 0, a head
with no sparse part, CLS-only rows, a fully dense head), for the dense baseline and for a whole small
model (head-mix and embedding engines included); and they agree with the model stage's own figures
(attention MACs, Q/K bytes). Cycles and resources are modelled (there is no HLS tool here); their tests
check structure the firmware fixes (which loop bounds a stage, the memory-port limit), not numbers.

Every run folder is synthetic (a tiny config and random masks, built in a tmp folder): nothing here
reads the working tree's build/.
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from synthetic_run import HLS_STAGE, STAGES, TINY

from vitcod.hls import engines, perf
from vitcod.model import run_layout
from vitcod.model.config import ViTConfig
from vitcod.model.mask_artifact import load_mask_artifact
from vitcod.model.polarize import polarize_head

needs_gxx = pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++ for the C-simulation")


# =============================================================================================
# Model counts == C-simulation counters (exact)
# =============================================================================================


def _csim_counters(engine) -> dict[str, int]:
    from vitcod.hls import engine_csim as ch

    lib = ch.build(engine)
    zeros = [np.zeros((2, size), dtype=np.int64) for size in lib.input_sizes]
    return lib.run(*zeros).counters_per_call()


def _edge_heads(n: int = 17) -> list:
    """G = 0 head (CLS-only rows in the sparse part), head without sparse part, fully dense head, normal."""
    rng = np.random.default_rng(11)
    heads = []
    m = rng.random((n, n)) < 0.15
    m[:, 0] = True
    m[0, :] = True
    m[3:6] = False
    m[3:6, 0] = True
    heads.append(polarize_head(m, n + 1))  # threshold above N: nothing is global
    m = np.zeros((n, n), dtype=bool)
    m[:, [0, 4, 9]] = rng.random((n, 3)) < 0.7
    m[:, 0] = True
    heads.append(polarize_head(m, 1))  # every kept column global: no sparse part
    heads.append(polarize_head(np.ones((n, n), dtype=bool), 0.5))  # G = N
    m = rng.random((n, n)) < 0.2
    m[:, 0] = True
    m[0, :] = True
    heads.append(polarize_head(m, 0.5))
    return heads


@needs_gxx
@pytest.mark.parametrize("lanes", [(1, 1), (2, 3)])
def test_counts_equal_csim_counters_on_random_masks_with_edge_cases(lanes):
    heads = _edge_heads()
    assert heads[0].num_global == 0 and heads[0].nnz_sparse > 0
    assert heads[1].nnz_sparse == 0 and heads[1].num_global == 3
    cfg = engines.AttentionEngineConfig(tokens=17, heads=len(heads), head_dim=4, dense_unroll=lanes[0],
                                        sparse_lanes=lanes[1])
    engine = engines.build_attention_engine(cfg, heads, name=f"perf_edge_{lanes[0]}_{lanes[1]}")
    est = perf.attention_estimate(engine)
    measured = _csim_counters(engine)
    assert {k: measured[k] for k in est.counters} == est.counters
    assert all(measured[k] == 0 for k in ("encoder", "decoder", "embed"))
    # per head: the G = 0 head adds nothing to the dense counter, the no-sparse head nothing to sparse
    one = perf.attention_counters(heads[:1], 4)
    two = perf.attention_counters(heads[1:2], 4)
    assert one["dense"] == 0 and two["sparse"] == 0


@needs_gxx
def test_dense_baseline_counts_equal_the_engine_on_an_all_ones_mask():
    n, h, d, lanes = 13, 2, 4, 3
    ones = [polarize_head(np.ones((n, n), dtype=bool), 0.5)] * h
    cfg = engines.AttentionEngineConfig(tokens=n, heads=h, head_dim=d, dense_unroll=lanes, sparse_lanes=1)
    engine = engines.build_attention_engine(cfg, ones, name="perf_all_ones")
    base = perf.dense_attention_estimate(n, h, d, lanes, engine.types)
    measured = _csim_counters(engine)
    assert {k: measured[k] for k in base.counters} == base.counters == perf.attention_counters(ones, d)
    assert base.counters["dense"] == h * n * n * d and base.counters["sparse"] == 0


@needs_gxx
def test_counts_equal_csim_counters_for_a_whole_small_model(synthetic_run):
    est = perf.estimate_run(synthetic_run, HLS_STAGE)
    check = perf.check_counters_against_csim(est, jobs=2)
    mismatches = [r for r in check["engines"] if not r["match"]]
    assert check["match"] and not mismatches, mismatches
    assert check["csim"] == est.counters
    kinds = {r["engine"].split(" ")[0] for r in check["engines"]}
    assert {"encoder", "decoder", "embed"} <= kinds
    # every counter really ran, both attention engines included
    assert all(check["csim"][k] > 0 for k in perf.COUNTER_NAMES)


# =============================================================================================
# Multiplies: what the headline ratio means, and the model stage's own figures
# =============================================================================================


def _structured_keep_mask(config: ViTConfig, sparsity: float, seed: int = 0) -> np.ndarray:
    """Keep-mask with three fully kept global columns per head (CLS among them) and a random sparse
    rest that no other column is dense enough to join (every other column < N / 2 rows)."""
    rng = np.random.default_rng(seed)
    n = config.num_tokens
    mask = np.zeros((config.depth, config.num_heads, n, n), dtype=bool)
    for l in range(config.depth):
        for h in range(config.num_heads):
            m = mask[l, h]
            m[:, [0, 1 + h, 2 + h]] = True
            free = np.flatnonzero(~m)
            extra = int(round((1 - sparsity) * n * n)) - int(m.sum())
            m.flat[rng.choice(free, extra, replace=False)] = True
            assert (np.delete(m.sum(axis=0), [0, 1 + h, 2 + h]) < n / 2).all()
    return mask


def test_multiply_ratio_is_the_kept_fraction_when_global_columns_are_fully_kept():
    """The dense engine computes all N rows of a global column: with those columns fully kept there
    is no wasted q.k and ViTCoD's multiplies are exactly kept * (2D + 1) (q.k, probability, P x V),
    the dense layer's N^2 * (2D + 1): the ratio is N^2 / kept (10x at 90% sparsity). A dropped entry
    inside a global column saves its probability and P x V multiplies (D + 1) but not its q.k."""
    config = ViTConfig()  # the demo geometry: 65 tokens, 4 heads, depth 2
    mask = _structured_keep_mask(config, 0.9)
    d, n, kept = config.head_dim, config.num_tokens, int(mask.sum())
    s = perf.model_estimate(config, mask).attention_summary()
    assert s["vitcod_multiplies"] == kept * (2 * d + 1)
    assert s["dense_multiplies"] == config.depth * config.num_heads * n * n * (2 * d + 1)
    assert s["mult_ratio"] == pytest.approx(mask.size / kept) and s["mult_ratio"] >= 9.0
    mask[0, 0, 5, 1] = False  # column 1 stays global (N - 1 rows)
    wasted = perf.model_estimate(config, mask).attention_summary()
    assert wasted["vitcod_multiplies"] == s["vitcod_multiplies"] - (d + 1)


@pytest.mark.parametrize("stage", list(STAGES))
def test_counts_agree_with_the_model_stage_report(synthetic_run, stage):
    """Independent of our counters: the model stage reports attention MACs as 2 * kept * D
    (``report/accuracy.json``), twice our P x V count, and Q/K bytes that are ours with and without
    the auto-encoder."""
    from vitcod.model import autoencoder, pipeline

    config = ViTConfig(**TINY)
    masks_path = synthetic_run / stage / run_layout.MASKS_FILE
    masks = load_mask_artifact(masks_path).mask if masks_path.is_file() else None
    est = perf.estimate_run(synthetic_run, stage)
    assert pipeline.attention_macs(config, masks) == 2 * est.counters["pv"]
    assert autoencoder.qk_storage_bytes(config, stage != run_layout.DENSE) == est.qk_bytes()["this_design"]


# =============================================================================================
# The cycle model follows the firmware's loop structure
# =============================================================================================


def test_dataflow_head_latency_takes_the_slower_of_dense_and_sparse():
    heads = _edge_heads()
    cfg = engines.AttentionEngineConfig(tokens=17, heads=len(heads), head_dim=4, dense_unroll=1, sparse_lanes=1)
    est = perf.attention_estimate(engines.build_attention_engine(cfg, heads, name="perf_df"))
    for h in est.head_estimates:
        assert h.latency == h.load + max(h.dense, h.sparse) + h.softmax + h.pv
        assert h.interval == max(h.load, h.dense, h.sparse, h.softmax + h.pv)
    # the dense loop runs to Gmax = N for every head (G_h only guards the work): all heads equal
    assert len({h.dense for h in est.head_estimates}) == 1
    assert est.n_global_max == 17
    assert est.cycles == sum(h.latency + 1 for h in est.head_estimates)


def _port_heads():
    rng = np.random.default_rng(0)
    m = rng.random((33, 33)) < 0.3
    m[:, 0] = True
    return [polarize_head(m, 0.9)]


def test_sparse_lanes_get_q_k_copies_so_no_memory_exceeds_its_ports():
    """Each pair of sparse lanes reads its own copy of the q/k rows and every lane its own ROM bank:
    the II stays 1 for any lane count, so more lanes keep paying off (no II 2 past two lanes)."""
    heads = _port_heads()
    cycles = {}
    for lanes in (1, 2, 3, 4, 6):
        cfg = engines.AttentionEngineConfig(tokens=33, heads=1, head_dim=4, dense_unroll=1, sparse_lanes=lanes)
        engine = engines.build_attention_engine(cfg, heads, name=f"perf_ports_{lanes}")
        assert engine.sparse_copies == -(-lanes // 2)
        assert perf.ports.port_problems(perf.ports.header_accesses(engine.header())) == []
        est = perf.attention_estimate(engine)
        assert est.port_problems == [] and set(est.loop_ii.values()) == {1}
        cycles[lanes] = est.head_estimates[0].sparse
    assert cycles[1] > cycles[2] > cycles[3] > cycles[4] > cycles[6]


def test_port_check_fails_on_a_config_that_asks_for_more_reads_than_ports():
    """The II comes from reads per cycle vs ports: a generated config whose three lanes share one q/k
    copy (3 reads on a 2-port memory) is reported, and the model's II becomes 2."""
    cfg = engines.AttentionEngineConfig(tokens=33, heads=1, head_dim=4, dense_unroll=1, sparse_lanes=3)
    header = engines.build_attention_engine(cfg, _port_heads(), name="perf_ports_bad").header()
    assert "static const unsigned sparse_copies = 2;" in header
    bad = header.replace("static const unsigned sparse_copies = 2;", "static const unsigned sparse_copies = 1;")
    problems = perf.ports.port_problems(perf.ports.header_accesses(bad))
    assert problems and all(p.startswith("SparseTrips:") for p in problems)
    assert any("q_sparse takes 3 accesses per iteration on a 2-port memory (II 2, not 1)" in p for p in problems)
    assert perf.ports.loop_ii(perf.ports.header_accesses(bad))["SparseTrips"] == 2
    assert perf.ports.loop_ii(perf.ports.header_accesses(header))["SparseTrips"] == 1
    # the embedding: a token reads E position entries; E banks -> 1 read per bank, fewer banks -> II up
    emb = engines.build_embed_engine(engines.EmbedEngineConfig(tokens=5, embed_dim=8), np.zeros(8), np.zeros((5, 8)))
    assert perf.ports.port_problems(perf.ports.header_accesses(emb.header())) == []
    squeezed = emb.header().replace("pos_banks = 8;", "pos_banks = 1;")
    assert perf.ports.loop_ii(perf.ports.header_accesses(squeezed))["EmbedTokens"] == 4


def test_dense_baseline_has_the_same_qk_multipliers(synthetic_run):
    est = perf.estimate_run(synthetic_run, HLS_STAGE)
    for vit, base in zip(est.attention, est.dense_attention):
        assert base.qk_multipliers == vit.qk_multipliers
        assert base.kind == "dense" and base.sparse_lanes == 0
        assert base.multiplies > vit.multiplies
    out = est.to_dict()
    assert out["label"] == "modelled" and all(e["label"] == "modelled" for e in out["engines"])
    assert out["totals"]["cycles"] == sum(e.cycles for e in est.engines if e.part_of is None)


def test_mask_inputs_are_equivalent(synthetic_run):
    art = load_mask_artifact(synthetic_run / HLS_STAGE / run_layout.MASKS_FILE)
    config = ViTConfig(**TINY)
    by_artifact = perf.model_estimate(config, art)
    by_array = perf.model_estimate(config, art.mask)
    assert by_artifact.counters == by_array.counters and by_artifact.cycles == by_array.cycles
    dense = perf.model_estimate(config, None)
    assert dense.counters["sparse"] == 0 and dense.sparsity == 0.0
    with pytest.raises(ValueError, match="shape"):
        perf.model_estimate(config, art.mask[:, :1])


# =============================================================================================
# Board fit
# =============================================================================================


def test_fit_report_uses_the_board_totals_and_refuses_an_oversized_design():
    oc = perf.overlay_config()
    report = perf.fit_report({"dsp": 10**6, "bram_18k": 1, "lut": 1, "ff": 1})
    assert set(report) == set(oc.available_boards()) and "pynq-z2" in report
    for board, entry in report.items():
        assert entry["available"] == oc.BoardSpec.load(board).resources
        assert entry["fits"] is False and entry["label"] == "modelled"
        assert board in entry["message"] and "dsp: 1e+06 needed" in entry["message"]
        assert entry["utilization"]["dsp"] > 1
    assert all(e["fits"] for e in perf.fit_report({"dsp": 1, "bram_18k": 1, "lut": 1, "ff": 1}).values())
    near = {"dsp": 0.95 * oc.BoardSpec.load("zcu104").resources["dsp"], "bram_18k": 0, "lut": 0, "ff": 0}
    assert perf.fit_report(near, ["zcu104"])["zcu104"]["fits"]
    assert not perf.fit_report(near, ["zcu104"], max_utilization=0.9)["zcu104"]["fits"]


def test_require_fit_refuses_a_board_the_model_does_not_fit(synthetic_run):
    oc = perf.overlay_config()
    est = perf.estimate_run(synthetic_run, HLS_STAGE)
    assert not perf.fit_report(est, ["pynq-z2"])["pynq-z2"]["fits"]  # io_parallel at ReuseFactor 1
    with pytest.raises(oc.ResourceFitError, match=r"does not fit pynq-z2: .*modelled estimate"):
        perf.require_fit(synthetic_run, "pynq-z2", stage=HLS_STAGE)


def _perf_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vitcod.hls.perf", *args], capture_output=True, text=True, cwd=cwd)


def test_fit_command_exit_codes(synthetic_run, tmp_path):
    """What ``make bitstream`` relies on: 3 = does not fit, 0 = fits, 2 = no such stage (the io_parallel
    estimate; the io_stream plan's fit: tests/hls/test_plan.py)."""
    run = ["--run-dir", str(synthetic_run), "--io-type", "io_parallel"]
    proc = _perf_cli("fit", *run, "--board", "pynq-z2", cwd=tmp_path)
    assert proc.returncode == 3 and "does not fit pynq-z2" in proc.stderr
    proc = _perf_cli("fit", *run, "--stage", HLS_STAGE, "--board", "zcu104", "--reuse-factor", "64", cwd=tmp_path)
    assert proc.returncode == 0 and proc.stdout.startswith("zcu104: fits (modelled: dsp "), proc.stderr
    proc = _perf_cli("fit", *run, "--stage", "sparse_0.99", "--board", "zcu104", cwd=tmp_path)
    assert proc.returncode == 2 and "sparse_0.99" in proc.stderr and "config.json" in proc.stderr


def test_estimate_command_prints_the_model_as_json(synthetic_run, tmp_path):
    proc = _perf_cli("estimate", "--run-dir", str(synthetic_run), "--stage", run_layout.AUTOENCODER, "--json",
                     cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    est = perf.estimate_run(synthetic_run, run_layout.AUTOENCODER)
    assert json.loads(proc.stdout) == json.loads(json.dumps(est.to_dict()))


def test_a_run_folder_from_before_patch_overlap_is_read_and_the_translation_logged(synthetic_run, tmp_path, caplog):
    """Old run folders store ``patch_kernel`` (= patch + 2 * overlap) instead of ``patch_overlap``."""
    stage = tmp_path / "old_run" / HLS_STAGE
    stage.mkdir(parents=True)
    data = ViTConfig(**TINY).to_dict()
    data["patch_kernel"] = data["patch_size"] + 2 * data.pop("patch_overlap")
    (stage / run_layout.CONFIG_FILE).write_text(json.dumps(data))
    shutil.copy(synthetic_run / HLS_STAGE / run_layout.MASKS_FILE, stage / run_layout.MASKS_FILE)
    with caplog.at_level(logging.WARNING):
        old = perf.estimate_run(tmp_path / "old_run", HLS_STAGE)
    assert "legacy field patch_kernel" in caplog.text
    assert old.to_dict() == perf.estimate_run(synthetic_run, HLS_STAGE).to_dict()
    data["patch_kernel"] += 1  # not patch + 2 * overlap
    (stage / run_layout.CONFIG_FILE).write_text(json.dumps(data))
    with pytest.raises(ValueError, match="patch_kernel"):
        perf.estimate_run(tmp_path / "old_run", HLS_STAGE)


# =============================================================================================
# Throughput basis and the LayerNorm tables
# =============================================================================================


def test_throughput_is_clock_over_latency_until_images_overlap(synthetic_run):
    """vitcod_top reads, runs and writes one image at a time: clock / latency, not clock / interval."""
    est = perf.estimate_run(synthetic_run, HLS_STAGE)
    totals = est.to_dict()["totals"]
    assert totals["throughput_basis"] == "latency" and "no DATAFLOW" in totals["throughput_note"]
    assert totals["throughput_images_per_s"] == pytest.approx(est.assumptions.clock_mhz * 1e6 / est.cycles)
    assert totals["overlapped_throughput_images_per_s"] == pytest.approx(est.assumptions.clock_mhz * 1e6 / est.interval)
    assert totals["overlapped_throughput_images_per_s"] > totals["throughput_images_per_s"]


def test_layernorm_tables_are_modelled_at_their_real_size(synthetic_run, tmp_path):
    """The default is the precision policy's octave table (~1,000 x 20 bits, a few BRAM18K, not
    hls4ml's 65,536-entry uniform one); a converted project's precision report gives the real sizes."""
    from vitcod.hls.perf.resources import bram18k_blocks

    a = perf.Assumptions()
    entries, bits = a.layernorm_table("block0_norm1")
    assert 512 < entries <= 4096 and bits == 20
    row = next(e for e in perf.estimate_run(synthetic_run, HLS_STAGE).engines if e.name == "block0_norm1")
    assert f"1/sqrt ROM {entries} x 20 bits" in row.note
    big = perf.layers.layernorm("block0_norm1", 0, 17, 16, perf.Assumptions(layernorm_table_size=65536), 16, 16)
    small = perf.layers.layernorm("block0_norm1", 0, 17, 16, a, 16, 16)
    assert big.resources.bram_18k - small.resources.bram_18k == bram18k_blocks(65536, 20) - bram18k_blocks(entries, 20)
    # the run's own report (copied run, so the shared fixture stays untouched)
    run = tmp_path / "run"
    shutil.copytree(synthetic_run, run)
    report = {"stage": HLS_STAGE, "precision_report": [
        {"layer": "block0_norm1", "kind": "LayerNormalization", "what": "variance", "table_size": 961,
         "table_bits": 961 * 20}]}
    (run / "hls").mkdir()
    (run / "hls" / run_layout.CSIM_REPORT_FILE).write_text(json.dumps(report))
    est = perf.estimate_run(run, HLS_STAGE)
    assert est.assumptions.layernorm_tables == (("block0_norm1", 961, 20),)
    assert "1/sqrt ROM 961 x 20 bits" in next(e for e in est.engines if e.name == "block0_norm1").note
    report["stage"] = "sparse_0.80"  # another stage's project: not used
    (run / "hls" / run_layout.CSIM_REPORT_FILE).write_text(json.dumps(report))
    assert perf.estimate_run(run, HLS_STAGE).assumptions.layernorm_tables == ()
