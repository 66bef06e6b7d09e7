"""The io_stream ViTCoD attention engine: modelled cycles, interval and resources (no synthesis).

What the per-stage model of a streaming network needs from one attention layer: how many cycles
one image spends in it (latency), how often a new image can enter (interval: the slowest process
of its DATAFLOW region, since every buffer is a ping-pong memory), the tokens it must swallow before
its first output token (all N: the residual FIFOs around it must hold them), its multipliers and
its memories. The counts are :func:`.attention.attention_counters` (the C-simulation counters
report the same; tested).

Cycle model, read off the loops of ``hls/firmware/vitcod_attention_stream.h`` (N tokens, D
head_dim, H heads, U = dense_unroll, L = sparse_lanes, Gmax = n_global_max, kept_h = kept entries
of head h); each II comes from the memory ports (:func:`.ports.attention_stream_accesses`)::

    load        StreamLoadTokens  N iterations (one token of q, k, v per cycle)
    dense       per head: N * ceil(Gmax / U) iterations (flattened nest; trip count Gmax for
                every head, G_h only guards the work)
    sparse      per head: ceil(nnz_h / L) iterations
    softmax_pv  per head: SoftmaxMax kept_h, SoftmaxExpSum kept_h, SoftmaxRecip N (pipelined
                divider), SoftmaxPv kept_h
    write       StreamWriteTokens N iterations (one output token per cycle)

    latency  = load + max(dense, sparse) + softmax_pv + write   (one image through the region)
    interval = max(load, dense, sparse, softmax_pv, write)      (images overlap, PIPO buffers)

The same constants (mul / add / memory latencies, loop overhead, divider) as the io_parallel model
in :mod:`.attention`, so both designs are modelled alike.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from .. import engines
from ..fixed_point import unsigned_bits_for
from . import ports
from .attention import _divider_bits, _head_work, attention_counters
from .resources import (ATTENTION_CORE_COUNTERS, LABEL, Assumptions, Resources, control, log2_ceil, memory,
                        multipliers, pipelined_loop, registers, signed_width, total)

PROCESSES = ("load", "dense", "sparse", "softmax_pv", "write")


@dataclass
class StreamAttentionEstimate:
    """One io_stream attention layer: counts exact, cycles and resources modelled.

    ``process_cycles``: cycles of each DATAFLOW process for one image (all heads);
    ``process_resources``: its multipliers' DSPs, its memories (ping-pong, channel rows reshaped
    into one word as the firmware's ARRAY_RESHAPE asks), control.
    """

    name: str
    tokens: int
    heads: int
    head_dim: int
    dense_unroll: int
    sparse_lanes: int
    sparse_copies: int
    counters: dict[str, int]
    process_cycles: dict[str, int]
    process_resources: dict[str, Resources]
    multipliers: int
    loop_ii: dict = field(default_factory=dict)
    port_problems: list = field(default_factory=list)

    @property
    def latency(self) -> int:
        c = self.process_cycles
        return c["load"] + max(c["dense"], c["sparse"]) + c["softmax_pv"] + c["write"]

    @property
    def interval(self) -> int:
        return max(self.process_cycles.values())

    @property
    def bound(self) -> str:
        """The process that sets the interval."""
        return max(self.process_cycles, key=self.process_cycles.get)

    @property
    def tokens_before_first_output(self) -> int:
        """Input tokens consumed before the first output token leaves: the whole image."""
        return self.tokens

    @property
    def multiplies(self) -> int:
        return sum(self.counters.get(k, 0) for k in ATTENTION_CORE_COUNTERS)

    @property
    def resources(self) -> Resources:
        return total(self.process_resources.values())

    def to_dict(self) -> dict:
        return {"label": LABEL, "name": self.name, "io_type": "io_stream", "tokens": self.tokens,
                "heads": self.heads, "head_dim": self.head_dim, "dense_unroll": self.dense_unroll,
                "sparse_lanes": self.sparse_lanes, "sparse_copies": self.sparse_copies,
                "counters": dict(self.counters), "multiplies": self.multiplies, "multipliers": self.multipliers,
                "process_cycles": dict(self.process_cycles), "latency": self.latency, "interval": self.interval,
                "bound": self.bound, "tokens_before_first_output": self.tokens_before_first_output,
                "resources": self.resources.as_dict(),
                "process_resources": {k: v.as_dict() for k, v in self.process_resources.items()},
                "loop_ii": dict(self.loop_ii), "port_problems": list(self.port_problems)}


def attention_stream_estimate(engine: engines.AttentionEngine, a: Assumptions = Assumptions()
                              ) -> StreamAttentionEstimate:
    """Model one generated attention layer as the io_stream engine (its masks, lanes and types)."""
    cfg, t = engine.config, engine.types
    n, d, h_count = cfg.tokens, cfg.head_dim, cfg.heads
    u, lanes, copies = engine.dense_unroll, engine.sparse_lanes, engine.sparse_copies
    g_max = engine.n_global_max
    works = [_head_work(p) for p in engine.heads]
    mul, add, mem = a.mul_latency, a.add_latency, a.mem_latency
    dot_depth = mem + mul + log2_ceil(d) * add + 1
    accesses = ports.attention_stream_accesses(h_count, u, lanes, copies)
    ii = ports.loop_ii(accesses, a.memory_ports)
    div_bits = _divider_bits(t)
    dense_trips = math.ceil(g_max / u)

    cycles = dict.fromkeys(PROCESSES, 0)
    cycles["load"] = pipelined_loop(n, ii["StreamLoadTokens"], 2 * mem + 1, a)
    cycles["write"] = pipelined_loop(n, ii["StreamWriteTokens"], mem + 1, a)
    for w in works:
        if a.flatten_dense_rows:
            cycles["dense"] += 1 + pipelined_loop(n * dense_trips, ii["StreamDenseCols"], dot_depth, a)
        else:
            cycles["dense"] += 1 + n * pipelined_loop(dense_trips, ii["StreamDenseCols"], dot_depth, a)
        cycles["sparse"] += 1 + pipelined_loop(math.ceil(w.nnz_sparse / lanes), ii["StreamSparseTrips"],
                                               2 * mem + dot_depth, a)
        kept = w.nnz_dense + w.nnz_sparse
        cycles["softmax_pv"] += (1 + pipelined_loop(kept, ii["StreamSoftmaxMax"], 2 * mem + 2, a)
                                 + pipelined_loop(kept, ii["StreamSoftmaxExpSum"], 3 * mem + 1 + add, a)
                                 + pipelined_loop(n, ii["StreamSoftmaxRecip"], mem + div_bits + a.divider_extra + 1, a)
                                 + 1 + pipelined_loop(kept, ii["StreamSoftmaxPv"], 4 * mem + 1 + 2 * mul + add, a))

    # ---- resources: every buffer of the region is a ping-pong pair (pipo_copies) ---------------
    pipo, tok_bits = a.pipo_copies, unsigned_bits_for(max(1, n - 1))
    qb, kb, vb = signed_width(t.q), signed_width(t.k), signed_width(t.v)
    trips_max = engine.sparse_table.trips_max
    slots = engine.slot_table
    res = {
        # q_dense, v_buf: one memory of N rows x D*W bits per head (channels reshaped into one
        # word); the sparse q/k copies: C per head; k_global: U banks per head of D*W-bit rows
        "load": control(a) + memory(n, d * t.q.width, a, copies=h_count * pipo)
        + memory(n, d * t.v.width, a, copies=h_count * pipo)
        + memory(n, d * t.q.width, a, copies=copies * h_count * pipo)
        + memory(n, d * t.k.width, a, copies=copies * h_count * pipo)
        + memory(math.ceil(g_max / u), d * t.k.width, a, copies=h_count * u * pipo)
        + memory(n, engine_global_bits(engine), a, copies=h_count),  # global_slot ROMs
        "dense": control(a) + multipliers(u * d, qb, kb, t.qk_accum.width, a)
        + memory(h_count * n * dense_trips, t.score.width, a, copies=u * pipo),  # s_dense, cyclic U
        "sparse": control(a) + multipliers(lanes * d, qb, kb, t.qk_accum.width, a)
        + memory(h_count * trips_max, t.score.width, a, copies=lanes * pipo)  # s_sparse, cyclic L
        + memory(h_count * trips_max, 2 * tok_bits + 1, a, copies=lanes),  # sparse_rc_lane ROMs
        "softmax_pv": control(a) + multipliers(1, signed_width(t.exp), t.inv.frac + 1, t.prob.width, a)
        + multipliers(d, signed_width(t.prob), vb, t.accum.width, a) + registers(d * t.accum.width)
        + Resources(lut=div_bits * div_bits + t.score.width + t.sum.width,
                    ff=div_bits * div_bits + t.score.width + t.sum.width)
        + memory(engine.exp_table.size, t.exp.width, a)
        + memory(n, t.score.width, a) + memory(n, t.sum.width, a) + memory(n, t.inv.width, a)
        + memory(h_count * slots.slots_max, slots.layout.width, a)
        + memory(n, d * t.result.width, a, copies=h_count * pipo),  # out_buf, rows reshaped
        "write": control(a),
    }
    return StreamAttentionEstimate(
        name=engine.name, tokens=n, heads=h_count, head_dim=d, dense_unroll=u, sparse_lanes=lanes,
        sparse_copies=copies, counters=attention_counters(engine.heads, d), process_cycles=cycles,
        process_resources=res, multipliers=(u + lanes + 1) * d + 1, loop_ii=ii,
        port_problems=ports.port_problems(accesses, a.memory_ports))


def engine_global_bits(engine: engines.AttentionEngine) -> int:
    """Width of one global_slot word (g | valid), as the stream generator emits it."""
    return unsigned_bits_for(engine.n_global_max - 1) + 1
