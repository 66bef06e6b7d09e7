"""What C-simulation cannot show but Vitis HLS would: loop-carried memory reads, ports, the walk tables.

The engines are bit-exact in C-simulation (test_engines.py) whatever their loop structure; these
tests check the structure that decides the II in hardware:

* the softmax / P x V walk reads a generated slot table at its loop counter: the table lists every
  kept entry exactly once, in row order, with the right row-end flags, scores and keys;
* the sparse engine's lane-interleaved table puts lane l's entries in bank l;
* in the firmware's pipelined loops no array subscript or table accessor depends on a value carried
  from the previous iteration (a structural check, shown to catch the old CSR walker);
* no generated config asks a memory for more accesses per cycle than its two ports.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from test_engines import ATTENTION_CASES, deit_engine, embed_engine

from vitcod.hls import engines, perf
from vitcod.hls.engines import FIRMWARE_DIR

CASES = sorted(ATTENTION_CASES)


@pytest.fixture(scope="module")
def built():
    out = {name: make() for name, make in ATTENTION_CASES.items()}
    out["deit_tiny"] = deit_engine()
    return out


# =============================================================================================
# The generated walk tables
# =============================================================================================


@pytest.mark.parametrize("case", CASES + ["deit_tiny"])
def test_slot_table_walks_every_kept_entry_once_in_row_order(built, case):
    engine = built[case]
    table = engine.slot_table
    assert table.slots_max == max(int(m.sum()) for m in engine.masks)
    for h, pol in enumerate(engine.heads):
        f = table.decode(h)
        mask = engine.masks[h]
        assert len(f["row"]) == int(mask.sum()) == table.counts[h]
        # every kept (row, key) once, nothing else
        assert sorted(zip(f["row"].tolist(), f["key"].tolist())) == sorted(zip(*map(np.ndarray.tolist, np.nonzero(mask))))
        # rows in order, one row end per row, on its last slot
        assert np.all(np.diff(f["row"]) >= 0)
        ends = np.flatnonzero(f["row_end"])
        assert f["row"][ends].tolist() == list(range(engine.config.tokens))
        assert np.all(np.diff(np.append(f["row"], engine.config.tokens))[ends] == 1)
        assert not np.any(np.diff(f["row"])[~f["row_end"][:-1]])
        # the score each slot names: a kept global column (dense) or the CSR non-zero (sparse)
        d = f["dense"]
        assert np.all(f["index"][d] < pol.num_global)
        assert np.array_equal(np.asarray(pol.global_tokens)[f["index"][d]], f["key"][d])
        assert np.all(np.asarray(pol.dense_keep)[f["row"][d], f["index"][d]])
        assert np.array_equal(engine.sparse_rows[h][f["index"][~d]], f["row"][~d])
        assert np.array_equal(engine.sparse_cols[h][f["index"][~d]], f["key"][~d])
        assert (~d).sum() == pol.nnz_sparse
    # padding never read: words beyond a head's count are 0
    for h in range(engine.config.heads):
        assert not table.words[h, table.counts[h]:].any()


@pytest.mark.parametrize("case", CASES + ["deit_tiny"])
def test_sparse_lane_table_gives_every_lane_its_own_bank(built, case):
    engine = built[case]
    t = engine.sparse_table
    lanes = engine.sparse_lanes
    stride = t.trips_max * lanes
    assert t.words.size == engine.config.heads * stride and stride % lanes == 0
    for h, pol in enumerate(engine.heads):
        f = t.decode(h)
        assert np.array_equal(f["row"], engine.sparse_rows[h]) and np.array_equal(f["col"], engine.sparse_cols[h])
        assert t.trips[h] == -(-pol.nnz_sparse // lanes)
        # non-zero nz of head h sits at h * stride + nz: bank (h * stride + nz) % L == nz % L, its lane
        positions = h * stride + np.arange(pol.nnz_sparse)
        assert np.array_equal(positions % lanes, np.arange(pol.nnz_sparse) % lanes)
        assert f["valid"].sum() == pol.nnz_sparse and not f["valid"][pol.nnz_sparse:].any()


def test_generated_header_has_no_csr_walk_left(built):
    header = built["edge"].header()
    for gone in ("row_ptr", "dense_keep", "sparse_row[", "sparse_col["):
        assert gone not in header
    for table in ("slots[", "sparse_rc[", "n_slots[", "sparse_trips["):
        assert table in header
    assert "LOOP_TRIPCOUNT" not in header  # the pragmas live in the firmware, the counts in the config
    c = perf.ports.header_constants(header)
    assert c["slots_max"] == built["edge"].slot_table.slots_max
    assert c["slots_min"] <= c["slots_avg"] <= c["slots_max"]
    assert c["sparse_trips_min"] <= c["sparse_trips_avg"] <= c["sparse_trips_max"]


# =============================================================================================
# Structural check: no memory read on a loop-carried path
# =============================================================================================


def _loop_body(source: str, label: str) -> tuple[str, str]:
    """(text before the loop in its function, loop body) of the loop labelled ``label``."""
    start = source.index(f"{label}:")
    brace = source.index("{", start)
    depth, i = 0, brace
    while True:
        depth += {"{": 1, "}": -1}.get(source[i], 0)
        if depth == 0:
            break
        i += 1
    func = source.rfind("\nvoid ", 0, start)
    func = max(func, source.rfind("\ntemplate", 0, start))
    return source[func:start], source[brace + 1: i]


def carried_reads(source: str, label: str) -> list[str]:
    """Array subscripts and table accessor arguments in loop ``label`` that use a variable the loop
    body assigns but declares outside: state carried from one iteration to the next. Each hit is a
    memory read whose address waits for the previous iteration (II >= 2 with a read latency >= 1)."""
    before, body = _loop_body(source, label)
    declared_inside = set(re.findall(r"\b(?:const\s+)?[\w:<>]+\s+(\w+)\s*(?:\[[^\]]*\])?\s*=", body))
    assigned = set(re.findall(r"\b(\w+)(?:\.\w+)?(?:\[[^\]]*\])?\s*(?:\+\+|--|[+\-*]?=(?!=))", body))
    assigned |= set(re.findall(r"(?:\+\+|--)(\w+)", body))
    assigned |= set(re.findall(r"\b(\w+)\.(?:advance|start)\(", body))  # a walker object updated in place
    carried = {v for v in assigned - declared_inside if re.search(rf"\b{v}\b", before)}
    loop_var = re.search(r"for\s*\(\s*unsigned\s+(\w+)", source[source.index(f"{label}:"):]).group(1)
    carried.discard(loop_var)
    uses = re.findall(r"\[([^\[\]]+)\]", body) + re.findall(r"CONFIG_T::\w+\(([^()]*)\)", body)
    uses += re.findall(r"\b\w+\.(?:read|advance)\(([^()]*)\)", body)
    hits = []
    for expr in uses:
        for v in carried:
            if re.search(rf"\b{v}\b", expr):
                hits.append(f"{label}: [{expr.strip()}] uses carried {v}")
    # a walker whose methods read tables with its own carried fields (w.i, row_end, ...)
    for v in carried:
        if re.search(rf"\b{v}\.(?:read|advance)\(", body):
            hits.append(f"{label}: {v}.read/advance reads tables at the walker's carried position")
    return hits


SLOT_LOOPS = ("SoftmaxMax", "SoftmaxExpSum", "SoftmaxPv", "SparseTrips", "DenseCols", "LoadRows", "LoadGlobal",
              "SoftmaxRecip")


def test_no_pipelined_loop_reads_memory_at_a_carried_address():
    source = (FIRMWARE_DIR / "vitcod_attention.h").read_text()
    for label in SLOT_LOOPS:
        assert carried_reads(source, label) == [], label
    # the slot walks read their table at the loop counter
    for label in ("SoftmaxMax", "SoftmaxExpSum", "SoftmaxPv"):
        _, body = _loop_body(source, label)
        assert "CONFIG_T::slot(h, it)" in body
        assert "#pragma HLS LOOP_TRIPCOUNT" in body and "#pragma HLS PIPELINE II=1" in body


OLD_WALKER = """
template <class v_T, typename CONFIG_T>
void old_softmax(const unsigned h) {
    slot_walker<CONFIG_T> w;
    score_t row_max = 0;
    w.start(h);
SoftmaxMax:
    for (unsigned it = 0; it < max_slots; it++) {
        #pragma HLS PIPELINE II=1
        if (w.done()) break;
        const unsigned i = w.i;
        const bool kept = w.read(h, n_global, s_dense, s_sparse, s, key);
        if (kept) row_max = s;
        if (w.advance(h, n_global)) {
            row_max_buf[i] = row_max;
        }
    }
}
"""

OLD_CSR_ROW = """
void old_rows(const unsigned h) {
    unsigned i = 0;
    unsigned row_end = 0;
SoftmaxMax:
    for (unsigned nz = 0; nz < nnz; nz++) {
        #pragma HLS PIPELINE II=1
        acc += s_sparse[nz];
        if (nz + 1 >= row_end) {
            i++;
            row_end = CONFIG_T::row_ptr(h, i + 1);
        }
    }
}
"""


@pytest.mark.parametrize("snippet", [OLD_WALKER, OLD_CSR_ROW])
def test_structural_check_catches_a_carried_read(snippet):
    """The check fails on the slot walker this project used before (row_end -> i -> row_ptr(h, i+1)
    across iterations) and on a bare CSR row walk."""
    assert carried_reads(snippet, "SoftmaxMax") != []


# =============================================================================================
# Ports of every generated config
# =============================================================================================


@pytest.mark.parametrize("case", CASES + ["deit_tiny"])
def test_no_generated_attention_config_asks_for_more_accesses_than_ports(built, case):
    engine = built[case]
    accesses = perf.ports.header_accesses(engine.header())
    assert perf.ports.port_problems(accesses) == []
    assert set(perf.ports.loop_ii(accesses).values()) == {1}
    assert engine.sparse_copies * 2 >= engine.sparse_lanes


def test_embedding_partitions_its_position_table():
    engine = embed_engine()
    header = engine.header()
    assert f"static const unsigned pos_banks = {engine.config.embed_dim};" in header
    assert perf.ports.port_problems(perf.ports.header_accesses(header)) == []
    source = (FIRMWARE_DIR / "vitcod_embed.h").read_text()
    assert "#pragma HLS ARRAY_PARTITION variable=pos cyclic factor=CONFIG_T::pos_banks dim=1" in source
    # the model: pos in E banks, II = the reuse factor, not E / 2
    row = perf.layers.embed(65, 32, perf.Assumptions(), 16)
    assert row.interval == 64 + 1 and "32 banks, II 1" in row.note
    assert perf.layers.embed(65, 32, perf.Assumptions(), 16, pos_banks=1).interval == 64 * 16 + 1


def test_probability_multiply_fits_one_dsp():
    """p = e * inv multiplies exp_t by inv's fraction bits (inv == 1.0 bypasses): 18 x 17 unsigned, one
    DSP48 (25 x 18 signed); the full 18 x 18 would need two."""
    engine = engines.build_attention_engine(
        engines.AttentionEngineConfig(tokens=17, heads=1, head_dim=4), [built_head()], name="dsp")
    t = engine.types
    a = perf.Assumptions()
    assert perf.dsp_per_multiplier(perf.signed_width(t.exp), t.inv.frac + 1, a) == 1
    assert perf.dsp_per_multiplier(perf.signed_width(t.exp), perf.signed_width(t.inv), a) == 2
    softmax = next(e for e in perf.attention_estimate(engine, a).engines if e.kind == "softmax")
    assert softmax.resources.dsp == 1


def built_head():
    from vitcod.model.polarize import polarize_head

    m = np.zeros((17, 17), dtype=bool)
    m[:, 0] = True
    m[np.arange(17), np.arange(17)] = True
    return polarize_head(m, 0.5)


# =============================================================================================
# LayerNorm: the octave-indexed 1/sqrt table
# =============================================================================================

INDEX_DRIVER = """#include "vitcod_layernorm.h"
struct cfg : nnet::layernorm_config {
    typedef ap_fixed<30, 8> accum_t;
    static const int invsqrt_top_exp = %(top)d;
    static const unsigned invsqrt_octaves = %(octaves)d;
    static const unsigned invsqrt_mantissa_bits = %(mant)d;
};
extern "C" int run(long long n, const long long *raw, long long *out) {
    for (long long i = 0; i < n; i++) {
        cfg::accum_t v;
        v.range(29, 0) = (unsigned long long)raw[i];
        out[i] = vitcod::invsqrt_index<cfg>(v);
    }
    return 0;
}
"""


@pytest.mark.parametrize("top, octaves, mant", [(1, 15, 6), (3, 9, 6), (-2, 4, 3), (6, 20, 5)])
def test_invsqrt_index_matches_its_python_model(top, octaves, mant):
    """The firmware's leading-one + mantissa index equals InvSqrtTable.index bit for bit, at every
    octave boundary, around them, at 0, above the range and on random variances."""
    import ctypes
    import shutil

    from vitcod.hls import engine_csim as ch
    from vitcod.hls.engines import InvSqrtTable

    if shutil.which("g++") is None:
        pytest.skip("needs g++")
    import hls4ml

    nnet = Path(hls4ml.__file__).parent / "templates" / "vivado" / "nnet_utils"
    lib_path = ch.compile_library({"drv.cpp": INDEX_DRIVER % {"top": top, "octaves": octaves, "mant": mant}},
                                  "drv.cpp", extra_flags=["-I", str(nnet)])
    lib = ctypes.CDLL(str(lib_path))
    frac = 22
    edges = [0, 1, 2, 3]
    for b in range(0, 29):
        edges += [(1 << b) - 1, 1 << b, (1 << b) + 1, (3 << b) >> 1]
    rng = np.random.default_rng(3)
    raws = np.array(sorted(set(e for e in edges if 0 <= e < 2**29))
                    + rng.integers(0, 2**29, 2000).tolist(), dtype=np.int64)
    out = np.zeros_like(raws)
    lib.run(ctypes.c_longlong(raws.size), raws.ctypes.data_as(ctypes.c_void_p), out.ctypes.data_as(ctypes.c_void_p))
    table = InvSqrtTable(top_exp=top, octaves=octaves, mantissa_bits=mant, epsilon=1e-5,
                         table_type="ap_ufixed<20,6,AP_RND_CONV,AP_SAT>")
    expected = table.index(raws, frac)
    np.testing.assert_array_equal(out, expected)
    assert expected.min() >= 0 and expected.max() == table.size - 1
    # the index lands in the bucket whose value is closest to 1/sqrt(var + eps) within the error bound
    var = raws.astype(np.float64) * 2.0 ** -frac
    inside = (var >= table.floor) & (var < 2.0 ** top)
    truth = 1.0 / np.sqrt(var[inside] + table.epsilon)
    rel = np.abs(table.values[expected[inside]] / truth - 1)
    assert rel.max() <= table.max_relative_error * (1 + 1e-9)


def test_invsqrt_table_is_capped_and_fine_where_a_uniform_one_is_not():
    """The demo's first LayerNorm (variances 0.0017 .. 0.76, eps 1e-5): hls4ml's uniform table needed
    65,536 entries; the octave table holds the error target with under 1,024, and the perf model
    counts its real size."""
    from vitcod.hls.engines import choose_invsqrt_table
    from vitcod.hls.perf.resources import bram18k_blocks

    t = choose_invsqrt_table(0.7556, 1e-5, "ap_ufixed<20,6,AP_RND_CONV,AP_SAT>", 22, max_error=0.01, max_size=4096)
    assert t.size <= 1024 and t.max_relative_error <= 0.005
    var = np.geomspace(0.0017, 0.76, 500)
    uniform_step = 2.0 / 4096  # the same range, capped uniform table
    assert (uniform_step / (2 * var)).max() > 0.1  # 4096 uniform entries: >10% step error at the low end
    assert bram18k_blocks(t.size, 20) <= 3 < bram18k_blocks(65536, 20)
    capped = choose_invsqrt_table(0.7556, 1e-5, "ap_ufixed<20,6>", 22, max_error=0.01, max_size=300)
    assert capped.size <= 300 and capped.mantissa_bits < t.mantissa_bits
