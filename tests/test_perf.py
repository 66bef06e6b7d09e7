"""vitcod.hls.perf (the modelled design) and vitcod.hls.bench, and the host's quantize+pack fast path.

What must hold exactly: the model's multiply/MAC counts, computed from the masks, equal the counters of
the compiled engines in C-simulation - on the demo run's 0.90 masks, on random masks with the edge
cases (a head with G = 0, a head with no sparse part, CLS-only rows, a fully dense head), for the
dense baseline and for a whole small model (head-mix and embedding engines included). Cycles and
resources are modelled (there is no HLS tool here); their tests check structure the firmware fixes
(which loop bounds a stage, the memory-port limit), not numbers.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from vitcod.hls import engines, perf
from vitcod.model.config import ViTConfig
from vitcod.model.mask_artifact import save_mask_artifact
from vitcod.model.polarize import polarize_head

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "build" / "demo"
DEMO_MASKS = DEMO / "sparse_0.90" / "masks.npz"
BENCH_JSON = REPO / "build" / "bench" / "bench.json"

needs_gxx = pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++ for the C-simulation")
needs_demo = pytest.mark.skipif(not DEMO_MASKS.is_file(), reason=f"{DEMO_MASKS} not found (run `make demo`)")

REQUIRED_BENCH_FIELDS = ("attention_mult_ratio_at_0.9", "modelled_attention_speedup_at_0.9",
                         "pack_vs_copy_throughput_ratio", "csim_test_split_seconds", "model_counts_match_csim")


# =============================================================================================
# Synthetic run directory (tiny model, random masks) - the bench and fit tests do not need a trained run
# =============================================================================================


def random_keep_mask(rng: np.random.Generator, layers: int, heads: int, n: int, sparsity: float) -> np.ndarray:
    mask = np.zeros((layers, heads, n, n), dtype=bool)
    for l in range(layers):
        for h in range(heads):
            m = mask[l, h]
            cols = rng.choice(np.arange(1, n), h + 1, replace=False)  # h+1 global-ish columns
            m[:, cols] = rng.random((n, h + 1)) < 0.9
            m[:, 0] = True
            m[0, :] = True
            free = np.flatnonzero(~m)
            extra = max(0, int(round((1 - sparsity) * n * n)) - int(m.sum()))
            m.flat[rng.choice(free, min(extra, free.size), replace=False)] = True
    return mask


TINY = dict(image_size=4, patch_size=1, embed_dim=16, depth=1, num_heads=2, mlp_ratio=2.0)


def make_run(root: Path) -> Path:
    """build/<run> layout with config.json per stage, masks.npz for sparse stages and a report.
    Accuracies are made-up placeholders (this run is never trained)."""
    config = ViTConfig(**TINY)
    rng = np.random.default_rng(3)
    rows = []
    for stage, sparsity in (("dense", None), ("ae", None), ("sparse_0.80", 0.8), ("sparse_0.90", 0.9),
                            ("sparse_0.95", 0.95)):
        folder = root / stage
        folder.mkdir(parents=True)
        config.save(folder / "config.json")
        achieved = 0.0
        if sparsity is not None:
            mask = random_keep_mask(rng, config.depth, config.num_heads, config.num_tokens, sparsity)
            save_mask_artifact(folder / "masks.npz", mask, 0.5, target_sparsity=sparsity)
            achieved = float(1 - mask.mean())
        name = {"dense": "dense", "ae": "+AE"}.get(stage) or f"+AE+mask {sparsity:.2f}"
        rows.append({"model": name, "target_sparsity": sparsity, "achieved_sparsity": achieved,
                     "quantized_test_accuracy": 0.5, "float_test_accuracy": 0.5, "attention_macs": 0,
                     "qk_bytes_per_image": 0})
    (root / "report").mkdir()
    (root / "report" / "accuracy.json").write_text(json.dumps({"rows": rows}))
    return root


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    return make_run(tmp_path_factory.mktemp("run"))


# =============================================================================================
# Model counts == C-simulation counters (exact)
# =============================================================================================


@needs_gxx
@needs_demo
def test_counts_equal_csim_counters_on_the_demo_masks():
    est = perf.estimate_run(DEMO, "sparse_0.90")
    check = perf.check_counters_against_csim(est, jobs=2)
    mismatches = [r for r in check["engines"] if not r["match"]]
    assert check["match"] and not mismatches, mismatches
    assert check["csim"] == est.counters
    # the demo masks really exercise both engines
    assert est.counters["dense"] > 0 and est.counters["sparse"] > 0


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
def test_counts_equal_csim_counters_for_a_whole_small_model(tiny_run):
    est = perf.estimate_run(tiny_run, "sparse_0.90")
    check = perf.check_counters_against_csim(est, jobs=2)
    assert check["match"], check["engines"]
    kinds = {r["engine"].split(" ")[0] for r in check["engines"]}
    assert {"encoder", "decoder", "embed"} <= kinds
    assert all(check["csim"][k] > 0 for k in perf.COUNTER_NAMES)


# =============================================================================================
# Measured figure: multiplies at 90% sparsity (demo masks)
# =============================================================================================


@needs_demo
def test_vitcod_needs_at_least_9x_fewer_attention_multiplies_than_dense_at_0_9():
    s = perf.estimate_run(DEMO, "sparse_0.90").attention_summary()
    # the figure to reach (measured on the demo masks; it is not adjusted if it misses)
    assert s["mult_ratio"] >= 9.0, f"{s['mult_ratio']:.2f}x fewer multiplies, target >= 9x"


@needs_demo
def test_counts_agree_with_the_model_stage_report():
    """Independent of our counters: report/accuracy.json's attention MACs (2 * kept * D, model/pipeline.py)
    is twice our P x V count, and its Q/K bytes are ours with and without the auto-encoder."""
    rows = json.loads((DEMO / "report" / "accuracy.json").read_text())["rows"]
    for row in rows:
        stage = {"dense": "dense", "+AE": "ae"}.get(row["model"]) or f"sparse_{row['target_sparsity']:.2f}"
        if not (DEMO / stage / "config.json").is_file():
            continue
        est = perf.estimate_run(DEMO, stage)
        assert row["attention_macs"] == 2 * est.counters["pv"], stage
        assert row["qk_bytes_per_image"] == est.qk_bytes()["this_design"], stage


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


def test_sparse_lanes_beyond_two_are_bound_by_the_memory_ports():
    rng = np.random.default_rng(0)
    m = rng.random((33, 33)) < 0.3
    m[:, 0] = True
    heads = [polarize_head(m, 0.9)]
    a = perf.Assumptions()

    def sparse_cycles(lanes):
        cfg = engines.AttentionEngineConfig(tokens=33, heads=1, head_dim=4, dense_unroll=1, sparse_lanes=lanes)
        return perf.attention_estimate(engines.build_attention_engine(cfg, heads, name="perf_ports"), a).head_estimates[0].sparse

    assert sparse_cycles(2) < sparse_cycles(1)
    assert abs(sparse_cycles(4) - sparse_cycles(2)) <= 2  # II = ceil(4/2): no gain past two ports
    banked = perf.Assumptions(memory_ports=4)
    cfg = engines.AttentionEngineConfig(tokens=33, heads=1, head_dim=4, dense_unroll=1, sparse_lanes=4)
    four = perf.attention_estimate(engines.build_attention_engine(cfg, heads, name="perf_ports4"), banked)
    assert four.head_estimates[0].sparse < sparse_cycles(2)


def test_dense_baseline_has_the_same_qk_multipliers(tiny_run):
    est = perf.estimate_run(tiny_run, "sparse_0.90")
    for vit, base in zip(est.attention, est.dense_attention):
        assert base.qk_multipliers == vit.qk_multipliers
        assert base.kind == "dense" and base.sparse_lanes == 0
        assert base.multiplies > vit.multiplies
    out = est.to_dict()
    assert out["label"] == "modelled" and all(e["label"] == "modelled" for e in out["engines"])
    assert out["totals"]["cycles"] == sum(e.cycles for e in est.engines if e.part_of is None)


def test_mask_inputs_are_equivalent(tiny_run):
    from vitcod.model.mask_artifact import load_mask_artifact

    art = load_mask_artifact(tiny_run / "sparse_0.90" / "masks.npz")
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
    assert set(report) == {"pynq-z2", "zcu104", "kv260"}
    for board, entry in report.items():
        assert entry["available"] == oc.BoardSpec.load(board).resources
        assert entry["fits"] is False and entry["label"] == "modelled"
        assert board in entry["message"] and "dsp: 1e+06 needed" in entry["message"]
        assert entry["utilization"]["dsp"] > 1
    assert all(e["fits"] for e in perf.fit_report({"dsp": 1, "bram_18k": 1, "lut": 1, "ff": 1}).values())
    near = {"dsp": 0.95 * 1728, "bram_18k": 0, "lut": 0, "ff": 0}
    assert perf.fit_report(near, ["zcu104"])["zcu104"]["fits"]
    assert not perf.fit_report(near, ["zcu104"], max_utilization=0.9)["zcu104"]["fits"]


def test_require_fit_refuses_a_board_the_model_does_not_fit(tiny_run):
    oc = perf.overlay_config()
    est = perf.estimate_run(tiny_run, "sparse_0.90")
    assert not perf.fit_report(est, ["pynq-z2"])["pynq-z2"]["fits"]  # io_parallel at ReuseFactor 1
    with pytest.raises(oc.ResourceFitError, match=r"does not fit pynq-z2: .*modelled estimate"):
        perf.require_fit(tiny_run, "pynq-z2", stage="sparse_0.90")
    proc = subprocess.run([sys.executable, "-m", "vitcod.hls.perf", "fit", "--run-dir", str(tiny_run),
                           "--board", "pynq-z2"], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 3 and "does not fit pynq-z2" in proc.stderr


# =============================================================================================
# Bench
# =============================================================================================


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
def test_bench_writes_every_field_with_a_unit(tiny_run, tmp_path):
    from vitcod.hls import bench as bench_mod

    out = tmp_path / "bench"
    bench = bench_mod.run_bench(tiny_run, out, counter_stages=["sparse_0.90"], whole_csim=False,
                                engine_probe=False, packing_repeats=2)
    check_bench_fields(bench)
    assert json.loads((out / "bench.json").read_text()) == bench
    assert (out / "bench.md").read_text().startswith("# Bench") and (out / "bench.png").stat().st_size > 0
    assert bench["model_counts_match_csim"] is True  # the counters really ran
    assert bench["csim_test_split_seconds"] is None and "skipped" in bench["reasons"]["csim_test_split_seconds"]
    assert bench["attention_mult_ratio_at_0.9"] > 1 and bench["pack_vs_copy_throughput_ratio"] > 0
    assert [r["stage"] for r in bench["sweep"]] == ["ae", "sparse_0.80", "sparse_0.90", "sparse_0.95"]


@pytest.mark.skipif(not BENCH_JSON.is_file(), reason=f"{BENCH_JSON} not found (run `make bench`)")
def test_make_bench_output_has_every_field():
    check_bench_fields(json.loads(BENCH_JSON.read_text()))


# =============================================================================================
# Host quantize+pack fast path: the same words as the general path
# =============================================================================================


def adversarial_inputs(fmt, dtype, rng) -> np.ndarray:
    lsb = fmt.lsb
    raws = np.arange(fmt.host_min_raw, fmt.max_raw + 1, max(1, (fmt.max_raw - fmt.min_raw) // 97))
    ties = (raws + 0.5) * lsb
    around = np.concatenate([np.nextafter(ties.astype(dtype), dtype(np.inf)), np.nextafter(ties.astype(dtype), dtype(-np.inf))])
    special = np.array([0.0, -0.0, -0.5 * lsb, 0.5 * lsb, np.nextafter(dtype(0.5), dtype(0)) * lsb,
                        -np.nextafter(dtype(0.5), dtype(0)) * lsb, fmt.min_value - 0.5 * lsb, fmt.max_value + 0.5 * lsb,
                        fmt.min_value - lsb, fmt.max_value + lsb, 1e30, -1e30, np.inf, -np.inf, 1e-40, -1e-40])
    span = fmt.max_value - fmt.min_value
    uniform = rng.uniform(fmt.min_value - span / 8, fmt.max_value + span / 8, 2000)
    return np.concatenate([ties, -ties, around, special, uniform]).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cpp", ["ap_ufixed<8,0>", "ap_fixed<8,3>", "ap_fixed<16,6>", "ap_fixed<16,6,AP_RND_CONV,AP_SAT>",
                                 "ap_ufixed<16,2,AP_TRN,AP_SAT>", "ap_fixed<32,10,AP_TRN_ZERO,AP_SAT>",
                                 "ap_fixed<8,1,AP_RND_CONV,AP_SAT_SYM>", "ap_fixed<12,4>", "ap_ufixed<5,1,AP_RND_CONV>",
                                 "ap_fixed<10,3,AP_RND_INF,AP_SAT>", "ap_int<8>", "ap_fixed<1,1,AP_RND_CONV,AP_SAT>"])
@pytest.mark.parametrize("path", ["compiled", "numpy"])
def test_quantize_pack_fast_path_gives_the_general_path_words(cpp, dtype, path, monkeypatch):
    from vitcod.host import FixedFormat, quantize_pack, wire
    from vitcod.host.wire import _pack_checked

    if path == "numpy":  # the fall-back when the kernel is not built: round_float_into + packing
        monkeypatch.setattr(wire, "_native", None)
    elif wire._native is None:
        pytest.skip("compiled kernel not built")

    fmt = FixedFormat.parse(cpp)
    x = adversarial_inputs(fmt, dtype, np.random.default_rng(5))
    x = x[: (x.size // 37) * 37].reshape(-1, 37)  # 37 values per image: padding slots in every word layout
    raws, saturated = fmt.round_float(x)
    expected = _pack_checked(raws, fmt.width, fmt.signed, None)
    words, count = quantize_pack(x, fmt)
    np.testing.assert_array_equal(words, expected)
    assert count == saturated


def test_quantize_pack_numpy_path_takes_its_fast_path(monkeypatch):
    from vitcod.host import FixedFormat, quantize_pack, unpack, wire

    monkeypatch.setattr(wire, "_native", None)

    fmt = FixedFormat.parse("ap_ufixed<8,0>")
    x = np.random.default_rng(0).uniform(0, 1.1, (5, 64)).astype(np.float32)
    expected_raws, expected_sat = fmt.quantize(x)

    def refuse(*_args, **_kwargs):
        raise AssertionError("general path used")

    monkeypatch.setattr(FixedFormat, "round_float", refuse)
    buffer = np.full(5 * 8, 0xFFFF_FFFF_FFFF_FFFF, dtype=np.uint64)
    words, saturated = quantize_pack(x, fmt, buffer)
    assert words is buffer and saturated == expected_sat > 0
    np.testing.assert_array_equal(unpack(words, 64, 8, False), expected_raws)
