"""The ViTCoD attention layer and its dense baseline: exact counts, modelled cycles and resources.

The counts (what the C-simulation counters of ``hls/firmware/vitcod_common.h`` must report) are
computed here from the masks (G, nnz_sparse, dense_keep per head), independently of
:meth:`vitcod.hls.engines.AttentionEngine.expected_macs`.

Cycle model of our engines, read off the loops in ``hls/firmware/vitcod_attention.h`` (trip counts,
unroll factors as written there; N tokens, D head_dim, H heads, U = dense_unroll, L = sparse_lanes,
Gmax = n_global_max, kept_h = kept entries of head h). Every II comes from the memory ports
(:mod:`.ports`: accesses of the busiest bank per iteration vs the two ports of a BRAM / ROM), not
from the PIPELINE pragma::

    load_head     LoadRows N x II 1, then LoadGlobal Gmax x II 1
    dense_engine  DenseRows x DenseCols: N * ceil(Gmax / U) iterations (perfect nest, flattened) -
                  the trip count is Gmax for EVERY head, G_h only guards the work
    sparse_engine ceil(nnz_h / L) iterations per head; lane l reads ROM bank l and q/k copy
                  l % C (C = sparse_copies = ceil(L / 2)), so II 1 unless a config breaks that
    softmax_pv    four pipelined loops per head; the three slot walks visit the head's kept entries
                  only (the generated slot table, read at the loop counter, no loop-carried read):
                  SoftmaxMax kept_h, SoftmaxExpSum kept_h, SoftmaxRecip N rows (a pipelined
                  divider: its latency ~ its width is paid once per head, not per row), SoftmaxPv
                  kept_h (exp again + p = e * inv + D MACs per iteration)
    head          load + max(dense, sparse) + softmax_pv  (DATAFLOW: dense || sparse, the slower
                  one bounds that stage; the region's II would be max(load, dense, sparse, softmax))
    layer         sum over heads (the Heads loop calls the DATAFLOW region once per head)

The dense baseline runs the same firmware loops with all N keys in one dense engine with the same
q.k multipliers: every N x N score computed and kept, no sparse engine.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Sequence

import numpy as np

from ...model.polarize import HeadPolarization
from .. import engines
from . import ports
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
    loop_ii: dict = field(default_factory=dict)  # II of each pipelined loop, from the memory ports
    port_problems: list = field(default_factory=list)  # memories accessed more often than their ports allow

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
            "resources": self.resources.as_dict(), "loop_ii": dict(self.loop_ii),
            "port_problems": list(self.port_problems), "heads_detail": [h.to_dict() for h in self.head_estimates],
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
                     sparse_copies: int, types: engines.AttentionTypes, exp_table_size: int,
                     counters: dict[str, int], a: Assumptions, block: int | None) -> AttentionEstimate:
    """The loop-level model shared by the ViTCoD layer and the dense baseline (``kind='dense'``: no
    sparse engine, no sparse loops, every entry kept)."""
    n, d, h_count = tokens, head_dim, len(works)
    sparse_on = kind == "vitcod"
    u, lanes = dense_unroll, sparse_lanes
    t = types
    mul, add, mem = a.mul_latency, a.add_latency, a.mem_latency
    dot_depth = mem + mul + log2_ceil(d) * add + 1
    accesses = ports.attention_accesses(u, max(1, lanes), max(1, sparse_copies))
    ii = ports.loop_ii(accesses, a.memory_ports)
    div_bits = _divider_bits(t)
    div_latency = div_bits + a.divider_extra
    dense_trips = math.ceil(g_max / u)
    trips_max = max(1, max(math.ceil(w.nnz_sparse / lanes) for w in works)) if sparse_on else 0

    heads: list[HeadEstimate] = []
    for h, w in enumerate(works):
        load = (pipelined_loop(n, ii["LoadRows"], mem + 1, a)
                + pipelined_loop(g_max, ii["LoadGlobal"], 2 * mem + 1, a))
        if a.flatten_dense_rows:
            dense = pipelined_loop(n * dense_trips, ii["DenseCols"], dot_depth, a)
        else:
            dense = n * pipelined_loop(dense_trips, ii["DenseCols"], dot_depth, a)
        sparse = (pipelined_loop(math.ceil(w.nnz_sparse / lanes), ii["SparseTrips"], 2 * mem + dot_depth, a)
                  if sparse_on else 0)
        # The slot walks visit the kept entries only (the slot table lists nothing else).
        slots = w.nnz_dense + (w.nnz_sparse if sparse_on else 0)
        # 1. row max (slot word, score read, compare), 2. exp (slot word, score + row max reads, index
        # rounding, table read) + exact sum, 3. one pipelined division per row (row sum read, divider)
        softmax = (pipelined_loop(slots, ii["SoftmaxMax"], 2 * mem + 2, a)
                   + pipelined_loop(slots, ii["SoftmaxExpSum"], 3 * mem + 1 + add, a)
                   + pipelined_loop(n, ii["SoftmaxRecip"], mem + div_latency + 1, a))
        # 4. acc init, then per slot: slot word, score + row reads, exp again, p = e * inv, D MACs
        pv = 1 + pipelined_loop(slots, ii["SoftmaxPv"], 4 * mem + 1 + 2 * mul + add, a)
        heads.append(HeadEstimate(head=h, num_global=w.g, nnz_dense=w.nnz_dense, nnz_sparse=w.nnz_sparse,
                                  kept=w.nnz_dense + w.nnz_sparse, load=load, dense=dense, sparse=sparse,
                                  softmax=softmax, pv=pv))

    # ---- resources (one engine pair serves every head) ----------------------------------------
    tok_bits = unsigned_bits_for(max(1, n - 1))
    qb, kb, vb = signed_width(t.q), signed_width(t.k), signed_width(t.v)
    score_bits, exp_bits = t.score.width, t.exp.width
    pipo = a.pipo_copies
    copies = max(1, sparse_copies)
    flat_inputs = n * h_count  # a head's channel c of token i sits at one of N*H positions of the flat array
    mux = a.io_parallel_partitioned

    load_res = control(a)
    load_res += memory(n, t.q.width, a, copies=d * pipo)  # q_dense: complete dim 2 -> D memories of N
    load_res += memory(math.ceil(g_max / u), t.k.width, a, copies=d * u * pipo)  # k_global: D x U banks
    load_res += memory(h_count * g_max, tok_bits, a)  # global_tokens ROM
    if sparse_on:  # q_sparse / k_sparse: D memories per copy, C copies
        load_res += memory(n, t.q.width, a, copies=d * copies * pipo) + memory(n, t.k.width, a, copies=d * copies * pipo)
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
        note=f"LoadRows N + LoadGlobal Gmax per head, II {max(ii['LoadRows'], ii['LoadGlobal'])}"))
    dense_cycles = sum(hd.dense for hd in heads)
    engines_.append(EngineEstimate(
        name=f"{full}/dense_engine", kind="dense_engine", block=block, multiplies=counters["dense"],
        counters={"dense": counters["dense"]}, cycles=dense_cycles, interval=dense_cycles, multipliers=u * d,
        resources=dense_res, part_of=full,
        note=f"N*ceil(Gmax/U) = {n}*ceil({g_max}/{u}) iterations per head at II {ii['DenseCols']}"))
    if sparse_on:
        sparse_res = control(a) + multipliers(lanes * d, qb, kb, t.qk_accum.width, a)
        sparse_res += memory(trips_max, score_bits, a, copies=lanes * pipo)  # s_sparse, cyclic L
        sparse_res += memory(h_count * trips_max, 2 * tok_bits + 1, a, copies=lanes)  # (row, col) ROM, L banks
        sparse_cycles = sum(hd.sparse for hd in heads)
        engines_.append(EngineEstimate(
            name=f"{full}/sparse_engine", kind="sparse_engine", block=block, multiplies=counters["sparse"],
            counters={"sparse": counters["sparse"]}, cycles=sparse_cycles, interval=sparse_cycles,
            multipliers=lanes * d, resources=sparse_res, part_of=full,
            note=f"ceil(nnz_h/L) iterations per head (L = {lanes}, q/k rows in {copies} copies) at II "
                 f"{ii['SparseTrips']}"))

    slots_max = max(w.nnz_dense + (w.nnz_sparse if sparse_on else 0) for w in works)
    index_bits = unsigned_bits_for(max(1, max(g_max, nnz_max if sparse_on else 0) - 1))
    # p = e * inv: exp_t x inv's fraction bits (inv == 1.0 is a bypass, see probability() in the firmware)
    inv_frac_bits = t.inv.frac + 1  # unsigned F bits on a signed multiplier port
    softmax_res = control(a) + multipliers(1, signed_width(t.exp), inv_frac_bits, t.prob.width, a)
    softmax_res += Resources(lut=div_bits * div_bits, ff=div_bits * div_bits)  # pipelined array divider
    softmax_res += Resources(lut=score_bits + t.sum.width, ff=score_bits + t.sum.width)  # max, sum
    softmax_res += memory(exp_table_size, exp_bits, a)  # exp ROM (ExpSum and Pv, one after the other)
    softmax_res += memory(n, score_bits, a) + memory(n, t.sum.width, a) + memory(n, t.inv.width, a)  # row bufs
    softmax_res += memory(h_count * slots_max, index_bits + 2 * tok_bits + 2, a)  # slot ROM
    pv_res = control(a) + multipliers(d, signed_width(t.prob), vb, t.accum.width, a)
    pv_res += registers(d * t.accum.width)  # acc[D]
    if mux:
        pv_res.lut += d * mux_luts(t.v.width, flat_inputs)  # v[key*E + h*D + c]
        pv_res.lut += n * h_count * d  # write enables of res[i*E + h*D + c]
    softmax_cycles = sum(hd.softmax for hd in heads)
    pv_cycles = sum(hd.pv for hd in heads)
    walk_ii = max(ii["SoftmaxMax"], ii["SoftmaxExpSum"], ii["SoftmaxPv"])
    engines_.append(EngineEstimate(
        name=f"{full}/softmax", kind="softmax", block=block, multiplies=counters["softmax"],
        counters={"softmax": counters["softmax"], "reciprocal": counters["reciprocal"]}, cycles=softmax_cycles,
        interval=softmax_cycles + pv_cycles, multipliers=1, resources=softmax_res, part_of=full,
        note=(f"per head: row max + exp loops over the kept_h slots (II {walk_ii}, slot table read at the "
              f"loop counter), {n} pipelined {div_bits}-bit divisions (II 1, latency {div_latency} once); "
              "the e*inv multiplies run in the P x V loop; same DATAFLOW process as P x V")))
    engines_.append(EngineEstimate(
        name=f"{full}/pv", kind="pv", block=block, multiplies=counters["pv"], counters={"pv": counters["pv"]},
        cycles=pv_cycles, interval=softmax_cycles + pv_cycles, multipliers=d, resources=pv_res,
        part_of=full, note=f"per head: SoftmaxPv over the kept_h slots at II {ii['SoftmaxPv']}, {d} MACs each"))

    # Authors-style counter: every multiplier busy every cycle, dense || sparse, softmax and memory
    # fully overlapped (ViTCoD's simulator assumptions), on the same multipliers.
    qk_ideal = max(counters["dense"] / (u * d), counters["sparse"] / (lanes * d) if sparse_on else 0.0)
    ideal = math.ceil(qk_ideal) + math.ceil(counters["pv"] / d)  # one P x V lane of D, as both designs use at a time

    return AttentionEstimate(
        name=name, kind=kind, tokens=n, heads=h_count, head_dim=d, dense_unroll=u,
        sparse_lanes=lanes if sparse_on else 0, n_global_max=g_max, nnz_max=nnz_max if sparse_on else 0,
        row_nnz_max=row_nnz_max if sparse_on else 0, head_estimates=heads, counters=dict(counters),
        engines=engines_, ideal_cycles=ideal, loop_ii=ii,
        port_problems=ports.port_problems(accesses, a.memory_ports) if sparse_on else [])


def attention_estimate(engine: engines.AttentionEngine, a: Assumptions = Assumptions(),
                       block: int | None = None) -> AttentionEstimate:
    """Model one generated ViTCoD attention layer (its masks, lanes and types as built)."""
    works = [_head_work(p) for p in engine.heads]
    counters = attention_counters(engine.heads, engine.config.head_dim)
    return _attention_model(engine.name, "vitcod", engine.config.tokens, engine.config.head_dim, works,
                            engine.n_global_max, engine.nnz_max, engine.row_nnz_max, engine.dense_unroll,
                            engine.sparse_lanes, engine.sparse_copies, engine.types, engine.exp_table.size,
                            counters, a, block)


def dense_attention_estimate(tokens: int, heads: int, head_dim: int, lanes: int, types: engines.AttentionTypes,
                             a: Assumptions = Assumptions(), name: str = "dense_attention",
                             exp_table_size: int = 1024, block: int | None = None) -> AttentionEstimate:
    """The dense baseline: the same firmware loops with all N keys in one dense engine of ``lanes``
    lanes (``lanes * head_dim`` q.k multipliers), every N x N score computed, no masks or tables."""
    works = [_HeadWork(tokens, tokens * tokens, 0, (0,) * tokens)] * heads
    counters = dense_attention_counters(tokens, heads, head_dim)
    return _attention_model(name, "dense", tokens, head_dim, works, tokens, 0, 0, min(lanes, tokens), 0, 0, types,
                            exp_table_size, counters, a, block)


def build_engine(heads: Sequence[HeadPolarization], head_dim: int, a: Assumptions = Assumptions(),
                 name: str = "attention") -> engines.AttentionEngine:
    """The AttentionEngine the code generator would build for these masks under ``a``."""
    cfg = engines.AttentionEngineConfig(tokens=heads[0].num_tokens, heads=len(heads), head_dim=head_dim,
                                        lane_budget=a.lane_budget, dense_unroll=a.dense_unroll,
                                        sparse_lanes=a.sparse_lanes, **dict(a.attention_types))
    return engines.build_attention_engine(cfg, heads, name=name)
