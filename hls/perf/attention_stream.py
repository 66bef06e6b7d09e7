"""The io_stream ViTCoD attention engine: modelled cycles, interval and resources (no synthesis).

What the per-stage model of a streaming network needs from one attention layer: how many cycles
one image spends in it (latency), how often a new image can enter (interval: the slowest process
of its DATAFLOW region, since every buffer is a ping-pong memory), the tokens it must swallow before
its first output token (all N: the residual FIFOs around it must hold them), its multipliers and
its memories. The counts are :func:`.attention.attention_counters` (the C-simulation counters
report the same; tested).

Cycle model, read off the loops of ``hls/firmware/vitcod_attention_stream.h`` (N tokens, D
head_dim, H heads, U = dense_unroll, L = sparse_lanes, Gmax = n_global_max, kept_h = kept entries
of head h, Ls / Lp = softmax_lanes / pv_lanes, groups_h(L) = sum over rows of ceil(kept_row / L),
the trip count of a lane walk: a group never spans two rows); each II comes from the memory ports
(:func:`.ports.attention_stream_accesses`)::

    load        StreamLoadHeads   H * N iterations (one head row per cycle into every buffer, the
                heads stacked in one memory; the q, k, v tokens read once every H iterations)
    dense       per head: N * ceil(Gmax / U) iterations (flattened nest; trip count Gmax for
                every head, G_h only guards the work)
    sparse      per head: ceil(nnz_h / L) iterations
    softmax_pv  (one lane: Ls = Lp = 1) per head: SoftmaxMax kept_h, SoftmaxExpSum kept_h,
                SoftmaxRecip N (pipelined divider), SoftmaxPv kept_h - one process
    softmax     (lanes: Ls or Lp > 1) per head: SoftmaxMax groups_h(Ls), SoftmaxExpSum groups_h(Ls)
                (with Ls > 1 the division sits at the row end of ExpSum: only its latency
                remains; with Ls = 1 SoftmaxRecip N follows)
    pv          (lanes) per head: SoftmaxPv groups_h(Lp) - a process of its own
                (each walk's depth grows by log2(L): the lanes' max / adder trees)
    write       StreamWriteHeads  H * N iterations (one head row of out_buf per cycle, a token
                leaves after its last head)

    latency  = load + max(dense, sparse) + softmax_pv (or softmax + pv) + write
    interval = max over the processes                (images overlap, PIPO buffers)

The same constants (mul / add / memory latencies, loop overhead, divider) as the io_parallel model
in :mod:`.attention`, so both designs are modelled alike. With Ls = Lp = 1 every figure is the
one-lane engine's (the model of the engine before the lanes, unchanged).

Memories (heads stacked in depth, as the firmware declares them): every per-head buffer - q_dense,
V (each copy), the sparse q/k copies, k_global (each cyclic bank), out_buf - is ONE memory of
H x rows words of D x W bits per copy and ping-pong buffer, i.e. ceil(H * rows / 512) x
ceil(D * W / 36)-ish BRAM18K (:func:`~.resources.memory`), where H memories of ``rows`` words cost
H x ceil(D * W / 36): no loop touches two heads of one buffer in one iteration, so one memory's two
ports suffice (:mod:`.ports`). The generator keeps one memory per head instead (the config's
``token_head_banks`` / ``global_head_banks`` = H) only where that is cheaper by this same rule: each
head's memory small enough for LUTRAM while the stacked one is not (e.g. the demo's k_global: 4 x 5
rows of 128 bits). The loader picks head h's D values out of the held token (an H:1
multiplexer of D x W bits per stream) and holds the three tokens (registers); the writer holds the
output token.

Lanes cost (resources): per P x V lane one e * inv multiplier and D MACs, plus an adder tree of
(Lp - 1) x D accum_t adders; per extra softmax lane a comparator and a sum_t adder (no DSP); one walk
ROM per lane and walk; ceil(Ls / 2) copies of the score memories (s_dense, s_sparse: written by the
q.k engines) and of the exp ROM for the softmax process, ceil(Lp / 2) of the scores, the exp ROM and
V (written by the loader) for the P x V process: every lane's read needs a port (two per memory);
the row max and 1/sum of every row ([H][N]) pass from the softmax to the P x V process.

Reproduce the lane tables of the report (modelled)::

    python -m vitcod.hls.perf.attention_stream --run-dir build/demo --lanes 1,2,4,8,4x2,8x4
    python -m vitcod.hls.perf.attention_stream --synthetic 197,3,64,0.9 --lanes 1,2,4,8,8x4
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from .. import engines
from ..fixed_point import unsigned_bits_for
from . import ports
from .attention import _divider_bits, _head_work, attention_counters
from .resources import (ATTENTION_CORE_COUNTERS, LABEL, Assumptions, Resources, control, log2_ceil, memory,
                        multipliers, mux_luts, pipelined_loop, registers, signed_width, total)

#: The DATAFLOW processes with one lane (softmax and P x V walks in one process) ...
PROCESSES = ("load", "dense", "sparse", "softmax_pv", "write")
#: ... and with softmax / P x V lanes (the walks in two processes).
LANE_PROCESSES = ("load", "dense", "sparse", "softmax", "pv", "write")


@dataclass
class StreamAttentionEstimate:
    """One io_stream attention layer: counts exact, cycles and resources modelled.

    ``process_cycles``: cycles of each DATAFLOW process for one image (all heads);
    ``process_resources``: its multipliers' DSPs, its memories (ping-pong, heads stacked in depth,
    channel rows reshaped into one word as the firmware's ARRAY_RESHAPE asks), control.
    """

    name: str
    tokens: int
    heads: int
    head_dim: int
    dense_unroll: int
    sparse_lanes: int
    sparse_copies: int
    softmax_lanes: int
    pv_lanes: int
    softmax_copies: int
    pv_copies: int
    counters: dict[str, int]
    process_cycles: dict[str, int]
    process_resources: dict[str, Resources]
    multipliers: int
    loop_ii: dict = field(default_factory=dict)
    port_problems: list = field(default_factory=list)

    @property
    def latency(self) -> int:
        c = self.process_cycles
        walks = c["softmax_pv"] if "softmax_pv" in c else c["softmax"] + c["pv"]
        return c["load"] + max(c["dense"], c["sparse"]) + walks + c["write"]

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
                "softmax_lanes": self.softmax_lanes, "pv_lanes": self.pv_lanes,
                "softmax_copies": self.softmax_copies, "pv_copies": self.pv_copies,
                "counters": dict(self.counters), "multiplies": self.multiplies, "multipliers": self.multipliers,
                "process_cycles": dict(self.process_cycles), "latency": self.latency, "interval": self.interval,
                "bound": self.bound, "tokens_before_first_output": self.tokens_before_first_output,
                "resources": self.resources.as_dict(),
                "process_resources": {k: v.as_dict() for k, v in self.process_resources.items()},
                "loop_ii": dict(self.loop_ii), "port_problems": list(self.port_problems)}


def attention_stream_estimate(engine: engines.AttentionEngine, a: Assumptions = Assumptions(),
                              buffer_storage: str = "auto", score_storage: str | None = None
                              ) -> StreamAttentionEstimate:
    """Model one generated attention layer as the io_stream engine (its masks, lanes and types).

    ``buffer_storage``: where the token buffers live (the q/k/v copies, the gathered global K rows,
    out_buf: VITCOD_BIND_BUFFER in the firmware), ``score_storage`` the score sets (s_dense,
    s_sparse: VITCOD_BIND_SCORES; None = as the buffers): "auto" (the tool's rule: LUTRAM when
    small, else BRAM), "bram", "lutram" or "uram"; ROMs and the row max / 1/sum rows are never bound.
    """
    cfg, t = engine.config, engine.types
    n, d, h_count = cfg.tokens, cfg.head_dim, cfg.heads
    u, lanes, copies = engine.dense_unroll, engine.sparse_lanes, engine.sparse_copies
    s_engine = engines.stream_engine(engine)
    sl, pl, split = s_engine.softmax_lanes, s_engine.pv_lanes, s_engine.laned
    sc, pc = s_engine.softmax_copies, s_engine.pv_copies
    fused = s_engine.fused_reciprocal
    s_walk, p_walk = s_engine.softmax_walk, s_engine.pv_walk
    g_max = engine.n_global_max
    works = [_head_work(p) for p in engine.heads]
    mul, add, mem = a.mul_latency, a.add_latency, a.mem_latency
    dot_depth = mem + mul + log2_ceil(d) * add + 1
    accesses = ports.attention_stream_accesses(h_count, u, lanes, copies, softmax_lanes=sl, pv_lanes=pl,
                                               softmax_copies=sc, pv_copies=pc, fused_reciprocal=fused)
    ii = ports.loop_ii(accesses, a.memory_ports)
    div_bits = _divider_bits(t)
    div_depth = div_bits + a.divider_extra
    dense_trips = math.ceil(g_max / u)

    cycles = dict.fromkeys(LANE_PROCESSES if split else PROCESSES, 0)
    cycles["load"] = pipelined_loop(h_count * n, ii["StreamLoadHeads"], 2 * mem + 1, a)
    cycles["write"] = pipelined_loop(h_count * n, ii["StreamWriteHeads"], mem + 1, a)
    s_tree, p_tree = log2_ceil(sl), log2_ceil(pl)
    softmax = pv = 0
    for h, w in enumerate(works):
        if a.flatten_dense_rows:
            cycles["dense"] += 1 + pipelined_loop(n * dense_trips, ii["StreamDenseCols"], dot_depth, a)
        else:
            cycles["dense"] += 1 + n * pipelined_loop(dense_trips, ii["StreamDenseCols"], dot_depth, a)
        cycles["sparse"] += 1 + pipelined_loop(math.ceil(w.nnz_sparse / lanes), ii["StreamSparseTrips"],
                                               2 * mem + dot_depth, a)
        s_trips, p_trips = int(s_walk.trips[h]), int(p_walk.trips[h])
        if fused:  # 1/sum at the row end of ExpSum: the divider deepens that walk, no loop of its own
            exp_sum = pipelined_loop(s_trips, ii["StreamSoftmaxExpSum"], 3 * mem + 1 + add + s_tree + div_depth, a)
        else:
            exp_sum = (pipelined_loop(s_trips, ii["StreamSoftmaxExpSum"], 3 * mem + 1 + add + s_tree, a)
                       + pipelined_loop(n, ii["StreamSoftmaxRecip"], mem + div_depth + 1, a))
        softmax += 1 + pipelined_loop(s_trips, ii["StreamSoftmaxMax"], 2 * mem + 2 + s_tree, a) + exp_sum
        pv += 1 + pipelined_loop(p_trips, ii["StreamSoftmaxPv"], 4 * mem + 1 + 2 * mul + add + p_tree, a)
    if split:
        cycles["softmax"], cycles["pv"] = softmax, pv
    else:
        cycles["softmax_pv"] = softmax + pv

    # ---- resources: every buffer of the region is a ping-pong pair (pipo_copies) ---------------
    pipo, tok_bits = a.pipo_copies, unsigned_bits_for(max(1, n - 1))
    st, sst = buffer_storage, score_storage or buffer_storage
    qb, kb, vb = signed_width(t.q), signed_width(t.k), signed_width(t.v)
    trips_max = engine.sparse_table.trips_max
    slots = engine.slot_table
    score_sets = sc + pc if split else 1  # score copies the q.k engines write
    v_sets = pc if split else 1
    # heads stacked in depth (banks 1: one memory of H x rows words) or one memory per head (banks
    # H), as the generator chose by this same memory rule (engines.attention_stream.head_banks)
    tb, gb = s_engine.token_head_banks, s_engine.global_head_banks
    hn = math.ceil(h_count / tb) * n  # rows of one token-buffer memory
    res = {
        # q_dense, v_buf (each copy), the sparse q/k copies: tb memories of hn rows x D*W bits each
        # (channels reshaped into one word); k_global: U cyclic banks x gb memories of
        # ceil(H / gb) * ceil(Gmax / U) rows; the H global_slot ROMs; the head-row muxes and the
        # held tokens
        "load": control(a) + memory(hn, d * t.q.width, a, copies=tb * pipo, storage=st)
        + memory(hn, d * t.v.width, a, copies=tb * v_sets * pipo, storage=st)
        + memory(hn, d * t.q.width, a, copies=tb * copies * pipo, storage=st)
        + memory(hn, d * t.k.width, a, copies=tb * copies * pipo, storage=st)
        + memory(math.ceil(h_count / gb) * math.ceil(g_max / u), d * t.k.width, a, copies=gb * u * pipo,
                 storage=st)
        + memory(n, engine_global_bits(engine), a, copies=h_count)  # global_slot ROMs
        + Resources(lut=sum(mux_luts(d * x.width, h_count) for x in (t.q, t.k, t.v)))
        + registers(cfg.embed_dim * (t.q.width + t.k.width + t.v.width)),
        "dense": control(a) + multipliers(u * d, qb, kb, t.qk_accum.width, a)
        + memory(h_count * n * dense_trips, t.score.width, a, copies=score_sets * u * pipo, storage=sst),  # s_dense, cyclic U
        "sparse": control(a) + multipliers(lanes * d, qb, kb, t.qk_accum.width, a)
        + memory(h_count * trips_max, t.score.width, a, copies=score_sets * lanes * pipo, storage=sst)  # s_sparse, cyclic L
        + memory(h_count * trips_max, 2 * tok_bits + 1, a, copies=lanes),  # sparse_rc_lane ROMs
        "write": control(a) + registers(cfg.embed_dim * t.result.width),  # the output token held
    }
    # the walks: row max / exp-sum (comparators, sum_t adders of the lanes, the divider, exp ROMs,
    # row buffers, walk ROMs) and P x V (Lp probability multipliers and Lp x D MACs, their adder
    # trees, the accumulators, exp ROMs, the output rows)
    softmax_res = (control(a) + Resources(lut=(sl - 1) * (2 * t.score.width + t.sum.width),
                                          ff=(sl - 1) * (t.score.width + t.sum.width))
                   + Resources(lut=div_bits * div_bits + t.score.width + t.sum.width,
                               ff=div_bits * div_bits + t.score.width + t.sum.width)
                   + memory(engine.exp_table.size, t.exp.width, a, copies=sc)
                   + memory(n, t.score.width, a) + memory(n, t.sum.width, a))
    pv_res = (multipliers(pl, signed_width(t.exp), t.inv.frac + 1, t.prob.width, a)
              + multipliers(pl * d, signed_width(t.prob), vb, t.accum.width, a) + registers(d * t.accum.width)
              + Resources(lut=(pl - 1) * d * t.accum.width, ff=(pl - 1) * d * t.accum.width)
              + memory(hn, d * t.result.width, a, copies=tb * pipo, storage=st))  # out_buf (as the token buffers)
    if split:  # own exp ROMs and walk ROMs per process; row max and 1/sum of every head passed on
        softmax_res += memory(h_count * s_walk.trips_max, s_walk.width, a, copies=sl)
        softmax_res += (memory(h_count * n, t.score.width, a, copies=pipo)
                        + memory(h_count * n, t.inv.width, a, copies=pipo))
        pv_res += (control(a) + memory(engine.exp_table.size, t.exp.width, a, copies=pc)
                   + memory(h_count * p_walk.trips_max, p_walk.width, a, copies=pl))
        res["softmax"], res["pv"] = softmax_res, pv_res
    else:
        softmax_res += memory(n, t.inv.width, a) + memory(h_count * slots.slots_max, slots.layout.width, a)
        res["softmax_pv"] = softmax_res + pv_res
    return StreamAttentionEstimate(
        name=engine.name, tokens=n, heads=h_count, head_dim=d, dense_unroll=u, sparse_lanes=lanes,
        sparse_copies=copies, softmax_lanes=sl, pv_lanes=pl, softmax_copies=sc, pv_copies=pc,
        counters=attention_counters(engine.heads, d), process_cycles=cycles,
        process_resources=res, multipliers=(u + lanes + pl) * d + pl, loop_ii=ii,
        port_problems=ports.port_problems(accesses, a.memory_ports))


def engine_global_bits(engine: engines.AttentionEngine) -> int:
    """Width of one global_slot word (g | valid), as the stream generator emits it."""
    return unsigned_bits_for(engine.n_global_max - 1) + 1


# ---- lane sweep: the modelled attention stage per softmax / P x V lane setting -----------------


def lane_sweep(heads, head_dim: int, lanes=(1, 2, 4, 8), a: Assumptions = Assumptions(), name: str = "attention",
               **config) -> list[dict]:
    """Model one attention layer (``heads``: its HeadPolarizations) per lane setting: an int L means
    softmax_lanes = pv_lanes = L, a pair (Ls, Lp) sets them apart; ``config``: further
    AttentionEngineConfig fields (types, lane_budget, ...)."""
    rows = []
    for setting in lanes:
        sl, pl = (setting, setting) if isinstance(setting, int) else setting
        cfg = engines.AttentionEngineConfig(tokens=heads[0].num_tokens, heads=len(heads), head_dim=head_dim,
                                            softmax_lanes=sl, pv_lanes=pl, **config)
        est = attention_stream_estimate(engines.build_attention_engine(cfg, heads, name=name), a)
        rows.append({"label": LABEL, "softmax_lanes": sl, "pv_lanes": pl, "interval": est.interval,
                     "latency": est.latency, "bound": est.bound, "process_cycles": dict(est.process_cycles),
                     "resources": est.resources.as_dict(), "multipliers": est.multipliers,
                     "dense_unroll": est.dense_unroll, "sparse_lanes": est.sparse_lanes})
    return rows


def main(argv=None) -> int:
    """``python -m vitcod.hls.perf.attention_stream``: the modelled attention stage per lane setting,
    for every attention layer of a run's stage (its masks.npz) or for a synthetic random mask."""
    import argparse
    import json

    from ...model import run_layout
    from ...model.mask_artifact import load_mask_artifact

    p = argparse.ArgumentParser(prog="python -m vitcod.hls.perf.attention_stream", description=main.__doc__)
    p.add_argument("--run-dir", help="a run folder (its --stage holds masks.npz and config.json)")
    p.add_argument("--stage", default=run_layout.DEFAULT_HLS_STAGE)
    p.add_argument("--synthetic", metavar="N,H,D,SPARSITY",
                   help="random polarized masks instead (e.g. 197,3,64,0.9: the DeiT-like test layer, lane budget 8)")
    p.add_argument("--lanes", default="1,2,4,8",
                   help="lane settings, comma separated: L (softmax = P x V lanes) or LsxLp, e.g. 1,4,8x4")
    p.add_argument("--clock-mhz", type=float, default=200.0)
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = p.parse_args(argv)
    lanes = tuple(int(x) if "x" not in x else tuple(int(y) for y in x.split("x")) for x in args.lanes.split(","))
    layers: list[tuple[str, list, int, dict]] = []
    if args.synthetic:
        from ...model.polarize import polarize_head
        from ..network_csim import random_attention_masks

        n, h, d, sparsity = args.synthetic.split(",")
        masks = random_attention_masks(int(n), int(h), float(sparsity), seed=1)
        layers.append((f"synthetic N={n} H={h} D={d}", [polarize_head(m, 0.5) for m in masks], int(d),
                       {"lane_budget": 8}))
    elif args.run_dir:
        folder = run_layout.stage_dir(args.run_dir, args.stage)
        cfg = run_layout.read_stage_config_dict(folder / run_layout.CONFIG_FILE)
        art = load_mask_artifact(folder / run_layout.MASKS_FILE)
        d = int(cfg["embed_dim"]) // int(cfg["num_heads"])
        layers += [(f"block{l}_attention", art.heads(l), d, {}) for l in range(art.num_layers)]
    else:
        p.error("give --run-dir or --synthetic")
    out = {}
    for name, heads, d, extra in layers:
        out[name] = lane_sweep(heads, d, lanes, **extra)
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    for name, rows in out.items():
        print(f"{name} ({LABEL}; interval in cycles, images/s at {args.clock_mhz:g} MHz)")
        print("| softmax x pv lanes | interval | images/s | latency | bound | softmax | pv | dense | sparse | DSP "
              "| BRAM18K | LUT | FF |")
        print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        for r in rows:
            c, res = r["process_cycles"], r["resources"]
            walks = (f"{c['softmax_pv']} (one process) | -" if "softmax_pv" in c else f"{c['softmax']} | {c['pv']}")
            print(f"| {r['softmax_lanes']} x {r['pv_lanes']} | {r['interval']} | "
                  f"{args.clock_mhz * 1e6 / r['interval']:,.0f} | {r['latency']} | {r['bound']} | {walks} | "
                  f"{c['dense']} | {c['sparse']} | {res['dsp']} | {res['bram_18k']} | {res['lut']} | {res['ff']} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
