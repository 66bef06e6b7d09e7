"""The ViTCoD attention layer and its dense baseline: exact counts, modelled cycles and resources.

The counts (what the C-simulation counters of ``hls/firmware/vitcod_common.h`` must report) are
computed here from the masks (G, nnz_sparse, dense_keep per head), independently of
:meth:`vitcod.hls.engines.AttentionEngine.expected_macs`.

Cycle model of our engines, read off the loops in ``hls/firmware/vitcod_attention.h`` (trip counts,
unroll factors, pipeline IIs as written there; N tokens, D head_dim, H heads, U = dense_unroll,
L = sparse_lanes, Gmax = n_global_max, r_i = sparse non-zeros of query row i)::

    load_head     LoadRows N x II 1, then LoadGlobal Gmax x II 1
    dense_engine  DenseRows x DenseCols: N * ceil(Gmax / U) iterations at II 1 (perfect nest,
                  flattened) - the trip count is Gmax for EVERY head, G_h only guards the work
    sparse_engine ceil(nnz_max / L) iterations at II ceil(L / 2): every lane reads a random row
                  of q_sparse / k_sparse and a ROM entry; memories have 2 ports (the header's own
                  comment: beyond two lanes the II rises unless rows are banked)
    softmax_pv    four pipelined loops per head, each flattened over ALL query rows (row state
                  carried, no per-row restart); S_h = N * G_h + nnz_h slots (row i: its G_h dense
                  slots, kept or not, then its r_i CSR non-zeros):
                  SoftmaxMax S_h, SoftmaxExpSum S_h (II 1 each), SoftmaxRecip N rows at II 1 (a
                  pipelined divider: its latency ~ its width is paid once per head, not per row),
                  SoftmaxPv S_h (II 1, exp again + p = e * inv + D MACs per iteration)
    head          load + max(dense, sparse) + softmax_pv  (DATAFLOW: dense || sparse, the slower
                  one bounds that stage; the region's II would be max(load, dense, sparse, softmax))
    layer         sum over heads (the Heads loop calls the DATAFLOW region once per head)

The dense baseline runs the same firmware loops with all N keys in one dense engine with the same
q.k multipliers: every N x N score computed, no masks or tables.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np

from ...model.polarize import HeadPolarization
from .. import engines
from ..fixed_point import unsigned_bits_for
from .resources import (ATTENTION_CORE_COUNTERS, LABEL, Assumptions, EngineEstimate, Resources, control, log2_ceil,
                        memory, multipliers, mux_luts, pipelined_loop, registers, signed_width, total)


@dataclass
class HeadEstimate:
    """One head through the DATAFLOW region (cycles modelled)."""

    head: int
    num_global: int
    nnz_dense: int
    nnz_sparse: int
    kept: int
    load: int
    dense: int
    sparse: int
    softmax: int
    pv: int

    @property
    def softmax_pv(self) -> int:
        return self.softmax + self.pv

    @property
    def latency(self) -> int:
        """load, then dense || sparse (the slower bounds the stage), then softmax + P x V."""
        return self.load + max(self.dense, self.sparse) + self.softmax_pv

    @property
    def interval(self) -> int:
        """II of the DATAFLOW region if heads were streamed through it: its slowest process."""
        return max(self.load, self.dense, self.sparse, self.softmax_pv)

    @property
    def qk_bound(self) -> str:
        return "dense" if self.dense >= self.sparse else "sparse"

    def to_dict(self) -> dict:
        d = asdict(self)
        d.update(softmax_pv=self.softmax_pv, latency=self.latency, interval=self.interval, qk_bound=self.qk_bound)
        return d


@dataclass
class AttentionEstimate:
    """One attention layer (all heads): counts exact, cycles and resources modelled.

    ``kind`` is 'vitcod' (dense + sparse engines driven by the masks) or 'dense' (the baseline: one
    dense engine with the same q.k multipliers, all N x N scores, no masks).
    """

    name: str
    kind: str
    tokens: int
    heads: int
    head_dim: int
    dense_unroll: int
    sparse_lanes: int
    n_global_max: int
    nnz_max: int
    row_nnz_max: int
    head_estimates: list[HeadEstimate]
    counters: dict[str, int]
    engines: list[EngineEstimate]
    ideal_cycles: int
    heads_loop_overhead: int = 1

    @property
    def multiplies(self) -> int:
        """q.k + probability + P x V multiplies per image (the attention core)."""
        return sum(self.counters.get(k, 0) for k in ATTENTION_CORE_COUNTERS)

    @property
    def qk_multipliers(self) -> int:
        return (self.dense_unroll + self.sparse_lanes) * self.head_dim

    @property
    def cycles(self) -> int:
        """Layer latency: the heads one after the other (the Heads loop is not pipelined)."""
        return sum(h.latency + self.heads_loop_overhead for h in self.head_estimates)

    @property
    def streamed_cycles(self) -> int:
        """If the heads were streamed through the DATAFLOW region back to back (not what the code does)."""
        if not self.head_estimates:
            return 0
        return sum(h.interval for h in self.head_estimates[:-1]) + self.head_estimates[-1].latency

    @property
    def resources(self) -> Resources:
        return total(e.resources for e in self.engines)

    @property
    def multipliers(self) -> int:
        return sum(e.multipliers for e in self.engines)

    def to_dict(self) -> dict:
        return {
            "label": LABEL, "name": self.name, "kind": self.kind, "tokens": self.tokens, "heads": self.heads,
            "head_dim": self.head_dim, "dense_unroll": self.dense_unroll, "sparse_lanes": self.sparse_lanes,
            "qk_multipliers": self.qk_multipliers, "multipliers": self.multipliers,
            "n_global_max": self.n_global_max, "nnz_max": self.nnz_max, "row_nnz_max": self.row_nnz_max,
            "counters": dict(self.counters), "multiplies": self.multiplies, "cycles": self.cycles,
            "streamed_cycles": self.streamed_cycles, "ideal_cycles": self.ideal_cycles,
            "resources": self.resources.as_dict(), "heads_detail": [h.to_dict() for h in self.head_estimates],
            "engines": [e.to_dict() for e in self.engines],
        }


@dataclass(frozen=True)
class _HeadWork:
    g: int
    nnz_dense: int
    nnz_sparse: int
    rows: tuple  # sparse non-zeros per query row


def _head_work(pol: HeadPolarization) -> _HeadWork:
    rows = np.diff(np.asarray(pol.row_ptr, dtype=np.int64))
    return _HeadWork(pol.num_global, int(np.asarray(pol.dense_keep).sum()), pol.nnz_sparse, tuple(int(r) for r in rows))


def attention_counters(heads: Sequence[HeadPolarization], head_dim: int) -> dict[str, int]:
    """C-simulation counter values of ONE call of the ViTCoD attention engine, from the masks.

    dense: N * G_h * D per head (every query row against the G_h global columns, kept or not);
    sparse: nnz_sparse_h * D; softmax: one probability multiply per kept entry; reciprocal: one
    division per query row and head; pv: D MACs per kept entry.
    """
    out = dict.fromkeys(("dense", "sparse", "softmax", "reciprocal", "pv"), 0)
    for pol in heads:
        w = _head_work(pol)
        n = pol.num_tokens
        kept = w.nnz_dense + w.nnz_sparse
        out["dense"] += n * w.g * head_dim
        out["sparse"] += w.nnz_sparse * head_dim
        out["softmax"] += kept
        out["reciprocal"] += n
        out["pv"] += kept * head_dim
    return out


def dense_attention_counters(tokens: int, heads: int, head_dim: int) -> dict[str, int]:
    """Counter values of a dense attention layer (all N x N entries; what the ViTCoD engine reports
    for an all-ones mask, where every key is a global token)."""
    nn = tokens * tokens
    return {"dense": heads * nn * head_dim, "sparse": 0, "softmax": heads * nn, "reciprocal": heads * tokens,
            "pv": heads * nn * head_dim}


def _divider_bits(t: engines.AttentionTypes) -> int:
    """Width of the row division's numerator (vitcod_attention.h, row_reciprocal: num_bits)."""
    shift = t.inv.frac + t.sum.frac
    return max(shift, t.sum.width) + 2


def _attention_model(name: str, kind: str, tokens: int, head_dim: int, works: Sequence[_HeadWork],
                     g_max: int, nnz_max: int, row_nnz_max: int, dense_unroll: int, sparse_lanes: int,
                     types: engines.AttentionTypes, exp_table_size: int, counters: dict[str, int],
                     a: Assumptions, block: int | None) -> AttentionEstimate:
    """The loop-level model shared by the ViTCoD layer and the dense baseline (``kind='dense'``: no
    sparse engine, no sparse loops, no mask tables)."""
    n, d, h_count = tokens, head_dim, len(works)
    sparse_on = kind == "vitcod"
    u, lanes = dense_unroll, sparse_lanes
    t = types
    mul, add, mem = a.mul_latency, a.add_latency, a.mem_latency
    dot_depth = mem + mul + log2_ceil(d) * add + 1
    sparse_ii = math.ceil(lanes / a.memory_ports)
    div_bits = _divider_bits(t)
    div_latency = div_bits + a.divider_extra
    dense_trips = math.ceil(g_max / u)

    heads: list[HeadEstimate] = []
    for h, w in enumerate(works):
        load = pipelined_loop(n, 1, mem + 1, a) + pipelined_loop(g_max, 1, 2 * mem + 1, a)
        if a.flatten_dense_rows:
            dense = pipelined_loop(n * dense_trips, 1, dot_depth, a)
        else:
            dense = n * pipelined_loop(dense_trips, 1, dot_depth, a)
        sparse = pipelined_loop(math.ceil(nnz_max / lanes), sparse_ii, mem + dot_depth, a) if sparse_on else 0
        # Every softmax / P x V loop walks the head's slots once, flattened over the rows.
        slots = n * w.g + (w.nnz_sparse if sparse_on else 0)
        # 1. row max (keep bit / score read, compare), 2. exp (score + row max reads, index rounding,
        # table read) + exact sum, 3. one pipelined division per row (row sum read, divider)
        softmax = (pipelined_loop(slots, 1, mem + 2, a) + pipelined_loop(slots, 1, 2 * mem + 1 + add, a)
                   + pipelined_loop(n, 1, mem + div_latency + 1, a))
        # 4. acc init, then per slot: score + key reads, exp again, p = e * inv, D MACs; row store
        pv = 1 + pipelined_loop(slots, 1, 3 * mem + 1 + 2 * mul + add, a)
        heads.append(HeadEstimate(head=h, num_global=w.g, nnz_dense=w.nnz_dense, nnz_sparse=w.nnz_sparse,
                                  kept=w.nnz_dense + w.nnz_sparse, load=load, dense=dense, sparse=sparse,
                                  softmax=softmax, pv=pv))

    # ---- resources (one engine pair serves every head) ----------------------------------------
    tok_bits = unsigned_bits_for(n)
    nnz_bits = unsigned_bits_for(max(1, nnz_max))
    qb, kb, vb = signed_width(t.q), signed_width(t.k), signed_width(t.v)
    score_bits, exp_bits = t.score.width, t.exp.width
    pipo = a.pipo_copies
    flat_inputs = n * h_count  # a head's channel c of token i sits at one of N*H positions of the flat array
    mux = a.io_parallel_partitioned

    load_res = control(a)
    load_res += memory(n, t.q.width, a, copies=d * pipo)  # q_dense: complete dim 2 -> D memories of N
    load_res += memory(math.ceil(g_max / u), t.k.width, a, copies=d * u * pipo)  # k_global: D x U banks
    if sparse_on:
        load_res += memory(n, t.q.width, a, copies=d * pipo) + memory(n, t.k.width, a, copies=d * pipo)
        load_res += memory(h_count * g_max, tok_bits, a)  # global_tokens ROM
    if mux:
        k_reads = 2 if sparse_on else 1  # k_sparse rows and the gathered global rows
        load_res.lut += d * (mux_luts(t.q.width, flat_inputs) + k_reads * mux_luts(t.k.width, flat_inputs))

    dense_res = control(a) + multipliers(u * d, qb, kb, t.qk_accum.width, a)
    dense_res += memory(n * dense_trips, score_bits, a, copies=u * pipo)  # s_dense, cyclic U
    engines_: list[EngineEstimate] = []
    full = f"{name}"
    load_cycles = sum(hd.load for hd in heads)
    engines_.append(EngineEstimate(
        name=f"{full}/load", kind="attention_load", block=block, multiplies=0, cycles=load_cycles,
        interval=load_cycles, multipliers=0, resources=load_res, part_of=full,
        note="LoadRows N + LoadGlobal Gmax per head, II 1"))
    dense_cycles = sum(hd.dense for hd in heads)
    engines_.append(EngineEstimate(
        name=f"{full}/dense_engine", kind="dense_engine", block=block, multiplies=counters["dense"],
        counters={"dense": counters["dense"]}, cycles=dense_cycles, interval=dense_cycles, multipliers=u * d,
        resources=dense_res, part_of=full,
        note=f"N*ceil(Gmax/U) = {n}*ceil({g_max}/{u}) iterations per head at II 1"))
    if sparse_on:
        sparse_res = control(a) + multipliers(lanes * d, qb, kb, t.qk_accum.width, a)
        sparse_res += memory(math.ceil(nnz_max / lanes), score_bits, a, copies=lanes * pipo)  # s_sparse
        sparse_res += memory(h_count * nnz_max, tok_bits, a, copies=2)  # sparse_row, sparse_col ROMs
        sparse_cycles = sum(hd.sparse for hd in heads)
        engines_.append(EngineEstimate(
            name=f"{full}/sparse_engine", kind="sparse_engine", block=block, multiplies=counters["sparse"],
            counters={"sparse": counters["sparse"]}, cycles=sparse_cycles, interval=sparse_cycles,
            multipliers=lanes * d, resources=sparse_res, part_of=full,
            note=f"ceil(nnz_max/L) = ceil({nnz_max}/{lanes}) iterations per head at II {sparse_ii}"))

    loops = 1  # one merged (dense slots + CSR) loop per softmax / P x V pass
    softmax_res = control(a) + multipliers(loops, signed_width(t.exp), signed_width(t.inv), t.prob.width, a)
    softmax_res += Resources(lut=div_bits * div_bits, ff=div_bits * div_bits)  # pipelined array divider
    softmax_res += Resources(lut=loops * (score_bits + t.sum.width), ff=score_bits + t.sum.width)  # max, sum
    softmax_res += memory(exp_table_size, exp_bits, a, copies=2)  # exp ROM (ExpSum and Pv read it)
    softmax_res += memory(n, score_bits, a) + memory(n, t.sum.width, a) + memory(n, t.inv.width, a)  # row bufs
    if sparse_on:
        softmax_res += memory(h_count * n * g_max, 1, a)  # dense_keep ROM
        softmax_res += memory(h_count * (n + 1), nnz_bits, a)  # row_ptr ROM
    pv_res = control(a) + multipliers(loops * d, signed_width(t.prob), vb, t.accum.width, a)
    pv_res += registers(d * t.accum.width)  # acc[D]
    if sparse_on:
        pv_res += memory(h_count * g_max, tok_bits, a) + memory(h_count * nnz_max, tok_bits, a)  # key ROMs
    if mux:
        pv_res.lut += loops * d * mux_luts(t.v.width, flat_inputs)  # v[key*E + h*D + c]
        pv_res.lut += n * h_count * d  # write enables of res[i*E + h*D + c]
    softmax_cycles = sum(hd.softmax for hd in heads)
    pv_cycles = sum(hd.pv for hd in heads)
    engines_.append(EngineEstimate(
        name=f"{full}/softmax", kind="softmax", block=block, multiplies=counters["softmax"],
        counters={"softmax": counters["softmax"], "reciprocal": counters["reciprocal"]}, cycles=softmax_cycles,
        interval=softmax_cycles + pv_cycles, multipliers=loops, resources=softmax_res, part_of=full,
        note=("per head: row max + exp loops over N*G_h" + (" + nnz_h" if sparse_on else "")
              + f" slots (all rows flattened, II 1), {n} pipelined {div_bits}-bit divisions (II 1, latency "
              f"{div_latency} once); the e*inv multiplies run in the P x V loop; same DATAFLOW process as P x V")))
    engines_.append(EngineEstimate(
        name=f"{full}/pv", kind="pv", block=block, multiplies=counters["pv"], counters={"pv": counters["pv"]},
        cycles=pv_cycles, interval=softmax_cycles + pv_cycles, multipliers=loops * d, resources=pv_res,
        part_of=full, note="per head: SoftmaxPv N*G_h" + (" + nnz_h" if sparse_on else "")
        + f" slots at II 1 (all rows flattened), {d} MACs per kept entry"))

    # Authors-style counter: every multiplier busy every cycle, dense || sparse, softmax and memory
    # fully overlapped (ViTCoD's simulator assumptions), on the same multipliers.
    qk_ideal = max(counters["dense"] / (u * d), counters["sparse"] / (lanes * d) if sparse_on else 0.0)
    ideal = math.ceil(qk_ideal) + math.ceil(counters["pv"] / d)  # one P x V lane of D, as both designs use at a time

    return AttentionEstimate(
        name=name, kind=kind, tokens=n, heads=h_count, head_dim=d, dense_unroll=u,
        sparse_lanes=lanes if sparse_on else 0, n_global_max=g_max, nnz_max=nnz_max if sparse_on else 0,
        row_nnz_max=row_nnz_max if sparse_on else 0, head_estimates=heads, counters=dict(counters),
        engines=engines_, ideal_cycles=ideal)


def attention_estimate(engine: engines.AttentionEngine, a: Assumptions = Assumptions(),
                       block: int | None = None) -> AttentionEstimate:
    """Model one generated ViTCoD attention layer (its masks, lanes and types as built)."""
    works = [_head_work(p) for p in engine.heads]
    counters = attention_counters(engine.heads, engine.config.head_dim)
    return _attention_model(engine.name, "vitcod", engine.config.tokens, engine.config.head_dim, works,
                            engine.n_global_max, engine.nnz_max, engine.row_nnz_max, engine.dense_unroll,
                            engine.sparse_lanes, engine.types, engine.exp_table.size, counters, a, block)


def dense_attention_estimate(tokens: int, heads: int, head_dim: int, lanes: int, types: engines.AttentionTypes,
                             a: Assumptions = Assumptions(), name: str = "dense_attention",
                             exp_table_size: int = 1024, block: int | None = None) -> AttentionEstimate:
    """The dense baseline: the same firmware loops with all N keys in one dense engine of ``lanes``
    lanes (``lanes * head_dim`` q.k multipliers), every N x N score computed, no masks or tables."""
    works = [_HeadWork(tokens, tokens * tokens, 0, (0,) * tokens)] * heads
    counters = dense_attention_counters(tokens, heads, head_dim)
    return _attention_model(name, "dense", tokens, head_dim, works, tokens, 0, 0, min(lanes, tokens), 0, types,
                            exp_table_size, counters, a, block)


def build_engine(heads: Sequence[HeadPolarization], head_dim: int, a: Assumptions = Assumptions(),
                 name: str = "attention") -> engines.AttentionEngine:
    """The AttentionEngine the code generator would build for these masks under ``a``."""
    cfg = engines.AttentionEngineConfig(tokens=heads[0].num_tokens, heads=len(heads), head_dim=head_dim,
                                        lane_budget=a.lane_budget, dense_unroll=a.dense_unroll,
                                        sparse_lanes=a.sparse_lanes, **dict(a.attention_types))
    return engines.build_attention_engine(cfg, heads, name=name)
