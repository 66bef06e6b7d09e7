"""Analytic cycle / multiply / resource model of the generated design. Every figure is MODELLED.

Where this fits in the flow::

    build/<run>/<stage>/{config.json, masks.npz}
      -> model_estimate() / estimate_run()   (this module; no TensorFlow, no hls4ml, no Vivado)
           per layer and engine: multiplies, C-simulation counter values, cycles, initiation
           interval, multipliers, DSP / BRAM18K / LUT / FF
           + the same attention layers as a DENSE engine with the same multipliers and no masks
           + Q/K bytes buffered with and without the auto-encoder
      -> fit_report() / require_fit()         modelled estimate vs boards/<board>/board.tcl totals
                                              (vitcod.overlay.config.check_fit)
      -> vitcod.hls.bench                     the model next to measurements, `make bench`

Nothing here was synthesized: this machine has no Vitis HLS. The numbers are a model of what the
code describes, to compare design points and to refuse hopeless boards early; ``csynth`` and
Vivado reports replace them once the tools have run. Every dict this module emits carries
``"label": "modelled"``.

What is checked against the C-simulation: the MULTIPLY / MAC COUNTS. The counters of
``hls/firmware/vitcod_common.h`` (dense, sparse, softmax, reciprocal, pv, encoder, decoder, embed)
must equal :attr:`ModelEstimate.counters` exactly (``tests/test_perf.py``, ``vitcod.hls.bench``).
The counts are computed here from the masks (G, nnz_sparse, dense_keep per head), independently of
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

Pipelined loop: ``(trips - 1) * II + depth + loop_overhead`` cycles; depths come from
:class:`Assumptions` (multiplier / adder / memory latencies) and are the least certain part.

The standard hls4ml layers (io_parallel, Latency strategy, as ``hls/convert.py`` configures them) use
hls4ml's reuse-factor semantics: a layer with M multiplications per invocation has
``ceil(PF * n_in * n_out / ReuseFactor)`` multipliers, one partition of PF output positions every
ReuseFactor cycles (so M / (n_partitions * ReuseFactor) multiplications per cycle). Conv1D/Conv2D:
``out_positions / PF`` partitions; Dense: one. LayerNormalization: one token every ReuseFactor cycles.
The whole network is one DATAFLOW region of layers (``PipelineStyle: dataflow``): latency = sum,
interval = the slowest layer.

Resource rules (all in :class:`Assumptions`, all coarse):

* multiplier a x b (two's-complement widths; an unsigned operand needs one more bit): LUT fabric
  when both widths are <= ``lut_multiplier_max_bits`` (10: Vitis HLS' usual behaviour for narrow
  products), else DSP48 slices tiling ``dsp_a_bits x dsp_b_bits`` = 25 x 18 (the DSP48E1 of the
  Zynq-7000; UltraScale+ DSP48E2 is 27 x 18, so this is conservative there): <= 25 x 18 is 1 DSP;
  every multiplier adds an accumulator adder (LUTs + FFs of the accumulator width).
* memories: arrays of at most ``bram_min_bits`` bits go to LUTRAM (one LUT per 64 x 1 bits), larger
  ones to BRAM18K with the best aspect ratio (16K x 1 ... 512 x 36). PIPO buffers of a DATAFLOW
  region count ``pipo_copies`` (2) times. hls4ml weights (Latency strategy) are constants folded
  into the multipliers: no BRAM.
* io_parallel tensors between layers are completely partitioned by hls4ml: registers (FF), times
  the PIPO copies; our engines index them with loop variables, which costs N*H:1 multiplexers.
* control: ``control_lut`` / ``control_ff`` per process; the row division as a pipelined array
  divider (width^2 LUTs and FFs).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from ..model.config import ViTConfig
from ..model.polarize import HeadPolarization, polarize_head
from . import engines
from .fixed_point import FixedType, unsigned_bits_for

log = logging.getLogger(__name__)

LABEL = "modelled"
"""Every figure this module produces is a model, not a measurement or a synthesis result."""

#: Names of the C-simulation counters (hls/firmware/vitcod_common.h, enum mac_counter_id).
COUNTER_NAMES = ("dense", "sparse", "softmax", "reciprocal", "pv", "encoder", "decoder", "embed")
#: Counters of the attention core: q.k (dense + sparse engines), probability multiplies, P x V.
ATTENTION_CORE_COUNTERS = ("dense", "sparse", "softmax", "pv")
RESOURCE_KEYS = ("dsp", "bram_18k", "lut", "ff")
#: Stage folders of a run and their nominal sparsity (model/pipeline.py layout).
DEFAULT_STAGES = {"ae": 0.0, "sparse_0.80": 0.80, "sparse_0.90": 0.90, "sparse_0.95": 0.95}
MASKS_FILE = "masks.npz"
#: Global-token threshold the model stage uses (and hls/extension.py for masks without an artifact).
DEFAULT_GLOBAL_THRESHOLD = 0.5


# =============================================================================================
# Assumptions
# =============================================================================================


@dataclass(frozen=True)
class Assumptions:
    """Every number the model takes on faith. Change one with ``dataclasses.replace``.

    Design configuration (what the code generator is told):
        clock_mhz: clock of the IP (the boards' board.tcl use 100 MHz).
        reuse_factor: hls4ml ReuseFactor of every standard layer and of our head-mix / embed
            engines (``hls/convert.py`` leaves hls4ml's default, 1).
        parallelization_factor: hls4ml ParallelizationFactor of the Conv layers (default 1).
        activation_bits: width of the io_parallel tensors between hls4ml layers (hls4ml's default
            ap_fixed<16,6>; ``hls/convert.py`` derives 12 fraction bits + the profiled integer bits).
        weight_bits: None = ``ViTConfig.weight_bits``.
        accum_bits: accumulator width of the hls4ml Conv/Dense layers.
        layernorm_*: LayerNorm accumulator / 1-over-sqrt table / gamma-beta widths and table size
            (``PrecisionPolicy`` in hls/convert.py: 22 fraction bits, 18-bit parameters).
        softmax_*: the classifier softmax's table size and width (hls4ml defaults).
        lane_budget, dense_unroll, sparse_lanes: the attention engines' lanes (AttentionEngineConfig).
        attention_types: AttentionEngineConfig type overrides, e.g. ``(("q_type", "ap_fixed<16,6>"),)``.
    Micro-architecture (what HLS is assumed to do):
        memory_ports: ports per memory (2: true dual-port BRAM/LUTRAM).
        flatten_dense_rows: DenseRows/DenseCols is a perfect nest that HLS flattens.
        io_parallel_partitioned: the layer-boundary arrays are completely partitioned (hls4ml
            io_parallel), so variable-index reads are multiplexers.
        mul_latency, add_latency, mem_latency: pipeline stages of a multiply, an add, a memory read.
        loop_overhead: cycles to enter and leave a pipelined loop.
        divider_extra: cycles of the row division beyond one per quotient bit.
    Resource rules:
        dsp_a_bits, dsp_b_bits: DSP48 multiplier ports (25 x 18, DSP48E1).
        lut_multiplier_max_bits: both operands <= this -> LUT multiplier.
        lut_multiplier_factor: LUTs of a LUT multiplier = factor * a_bits * b_bits.
        bram_min_bits: arrays up to this size go to LUTRAM.
        pipo_copies: buffers per DATAFLOW channel array (ping-pong).
        control_lut, control_ff: per process (FSM, counters, handshakes).
    """

    clock_mhz: float = 100.0
    reuse_factor: int = 1
    parallelization_factor: int = 1
    activation_bits: int = 16
    weight_bits: int | None = None
    accum_bits: int = 32
    layernorm_accum_bits: int = 30
    layernorm_table_bits: int = 18
    layernorm_table_size: int = 1024
    layernorm_param_bits: int = 18
    softmax_table_size: int = 1024
    softmax_bits: int = 18
    lane_budget: int = 4
    dense_unroll: int | None = None
    sparse_lanes: int | None = None
    attention_types: tuple = ()
    memory_ports: int = 2
    flatten_dense_rows: bool = True
    io_parallel_partitioned: bool = True
    mul_latency: int = 3
    add_latency: int = 1
    mem_latency: int = 2
    loop_overhead: int = 2
    divider_extra: int = 3
    dsp_a_bits: int = 25
    dsp_b_bits: int = 18
    lut_multiplier_max_bits: int = 10
    lut_multiplier_factor: float = 0.5
    bram_min_bits: int = 2048
    pipo_copies: int = 2
    control_lut: int = 150
    control_ff: int = 200

    def __post_init__(self) -> None:
        for name in ("reuse_factor", "parallelization_factor", "activation_bits", "accum_bits", "lane_budget",
                     "memory_ports", "dsp_a_bits", "dsp_b_bits", "pipo_copies"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
                raise ValueError(f"Assumptions.{name} must be an integer >= 1, got {value!r}")
        if not self.clock_mhz > 0:
            raise ValueError(f"Assumptions.clock_mhz must be > 0, got {self.clock_mhz!r}")

    def to_dict(self) -> dict:
        return asdict(self)


# =============================================================================================
# Resource primitives
# =============================================================================================


@dataclass
class Resources:
    """DSP48 slices, BRAM18K blocks, LUTs, FFs (modelled)."""

    dsp: int = 0
    bram_18k: int = 0
    lut: int = 0
    ff: int = 0

    def __add__(self, other: "Resources") -> "Resources":
        return Resources(self.dsp + other.dsp, self.bram_18k + other.bram_18k, self.lut + other.lut,
                         self.ff + other.ff)

    def scaled(self, factor: int) -> "Resources":
        return Resources(self.dsp * factor, self.bram_18k * factor, self.lut * factor, self.ff * factor)

    def as_dict(self) -> dict[str, int]:
        return {"dsp": int(self.dsp), "bram_18k": int(self.bram_18k), "lut": int(self.lut), "ff": int(self.ff)}


def _total(items: Iterable[Resources]) -> Resources:
    out = Resources()
    for r in items:
        out = out + r
    return out


def signed_width(t: FixedType) -> int:
    """Bits of a two's-complement multiplier port that holds every value of ``t``."""
    return t.width + (0 if t.signed else 1)


def dsp_per_multiplier(a_bits: int, b_bits: int, a: Assumptions) -> int:
    """DSP48 slices of one a x b multiplier (two's-complement widths); 0 = built from LUTs."""
    if a_bits <= a.lut_multiplier_max_bits and b_bits <= a.lut_multiplier_max_bits:
        return 0
    big, small = max(a_bits, b_bits), min(a_bits, b_bits)
    return min(math.ceil(big / a.dsp_a_bits) * math.ceil(small / a.dsp_b_bits),
               math.ceil(big / a.dsp_b_bits) * math.ceil(small / a.dsp_a_bits))


def multipliers(count: int, a_bits: int, b_bits: int, accum_bits: int, a: Assumptions) -> Resources:
    """``count`` multipliers of a x b bits, each feeding an adder of ``accum_bits``."""
    if count <= 0:
        return Resources()
    per = dsp_per_multiplier(a_bits, b_bits, a)
    res = Resources(dsp=count * per, lut=count * accum_bits, ff=count * accum_bits)
    if per == 0:
        res.lut += count * math.ceil(a.lut_multiplier_factor * a_bits * b_bits)
        res.ff += count * (a_bits + b_bits)
    return res


_BRAM18K_SHAPES = ((16384, 1), (8192, 2), (4096, 4), (2048, 9), (1024, 18), (512, 36))


def bram18k_blocks(depth: int, width: int) -> int:
    """BRAM18K blocks of one depth x width memory (best aspect ratio)."""
    if depth <= 0 or width <= 0:
        return 0
    return min(math.ceil(width / w) * math.ceil(depth / d) for d, w in _BRAM18K_SHAPES)


def memory(depth: int, width: int, a: Assumptions, copies: int = 1) -> Resources:
    """One array of depth x width bits (``copies`` times): LUTRAM when small, else BRAM18K."""
    if depth <= 0 or width <= 0 or copies <= 0:
        return Resources()
    if depth * width <= a.bram_min_bits:
        return Resources(lut=copies * math.ceil(depth / 64) * width)
    return Resources(bram_18k=copies * bram18k_blocks(depth, width))


def registers(bits: int, copies: int = 1) -> Resources:
    return Resources(ff=bits * copies)


def _with_tensor(row: "EngineEstimate", values: int, bits: int, a: Assumptions) -> "EngineEstimate":
    """Add the row's output tensor: completely partitioned (io_parallel) -> registers, PIPO copies."""
    row.resources = row.resources + registers(values * bits, a.pipo_copies)
    row.register_ff = values * bits * a.pipo_copies
    return row


def mux_luts(width: int, inputs: int) -> int:
    """LUT6s of an ``inputs``:1 multiplexer of ``width`` bits (a LUT6 is a 4:1 mux)."""
    return width * math.ceil((inputs - 1) / 3) if inputs > 1 else 0


def control(a: Assumptions, processes: int = 1) -> Resources:
    return Resources(lut=a.control_lut * processes, ff=a.control_ff * processes)


def pipelined_loop(trips: int, ii: int, depth: int, a: Assumptions) -> int:
    """Cycles of a pipelined loop: (trips - 1) * II + depth, plus entering and leaving it."""
    if trips <= 0:
        return a.loop_overhead
    return (trips - 1) * ii + depth + a.loop_overhead


def _log2(n: int) -> int:
    return max(0, math.ceil(math.log2(n))) if n > 1 else 0


# =============================================================================================
# Per-engine rows
# =============================================================================================


@dataclass
class EngineEstimate:
    """One engine (process) of the design: modelled work, time and resources.

    Attributes:
        name: e.g. ``block0_q`` or ``block0_attention/sparse_engine``.
        kind: patch_embed, embed, layernorm, projection, encoder, decoder, attention (the whole
            layer), attention_load, dense_engine, sparse_engine, softmax, pv, mlp, add, relu,
            head, softmax_head.
        block: encoder block index (None outside the blocks).
        multiplies: multiplications per image.
        counters: the C-simulation counters this engine adds to (per image).
        cycles: latency of one invocation (per image).
        interval: initiation interval as a DATAFLOW process (cycles between images).
        multipliers: multiplier instances.
        resources: DSP/BRAM/LUT/FF.
        part_of: the attention layer a sub-engine belongs to (its cycles/resources are inside
            that layer's row; totals skip parts).
        note: how the row was modelled.
    """

    name: str
    kind: str
    block: int | None
    multiplies: int
    cycles: int
    interval: int
    multipliers: int
    resources: Resources
    counters: dict[str, int] = field(default_factory=dict)
    part_of: str | None = None
    note: str = ""
    register_ff: int = 0  # of resources.ff: the output tensor's registers (io_parallel, PIPO copies)

    def to_dict(self) -> dict:
        d = {k: v for k, v in asdict(self).items() if k != "resources"}
        d.update(self.resources.as_dict())
        d["label"] = LABEL
        return d


# =============================================================================================
# Attention: the ViTCoD engines and the dense baseline
# =============================================================================================


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
        return _total(e.resources for e in self.engines)

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
    dot_depth = mem + mul + _log2(d) * add + 1
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
        note=(f"per head: row max + exp loops over N*G_h" + (" + nnz_h" if sparse_on else "")
              + f" slots (all rows flattened, II 1), {n} pipelined {div_bits}-bit divisions (II 1, latency "
              f"{div_latency} once); the e*inv multiplies run in the P x V loop; same DATAFLOW process as P x V")))
    engines_.append(EngineEstimate(
        name=f"{full}/pv", kind="pv", block=block, multiplies=counters["pv"], counters={"pv": counters["pv"]},
        cycles=pv_cycles, interval=softmax_cycles + pv_cycles, multipliers=loops * d, resources=pv_res,
        part_of=full, note=f"per head: SoftmaxPv N*G_h" + (" + nnz_h" if sparse_on else "")
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


# =============================================================================================
# hls4ml layers and our head-mix / embed engines
# =============================================================================================


def _hls4ml_conv(name: str, kind: str, block: int | None, positions: int, n_in: int, n_out: int, a_bits: int,
                 w_bits: int, a: Assumptions, out_bits: int) -> EngineEstimate:
    """Conv1D/Conv2D io_parallel Latency: positions/PF partitions, one every ReuseFactor cycles."""
    rf, pf = a.reuse_factor, a.parallelization_factor
    pf = max(1, min(pf, positions))
    partitions = math.ceil(positions / pf)
    mult_count = math.ceil(pf * n_in * n_out / rf)
    depth = a.mul_latency + _log2(n_in) * a.add_latency + 1
    res = control(a) + multipliers(mult_count, a_bits, w_bits, a.accum_bits, a)
    return _with_tensor(EngineEstimate(
        name=name, kind=kind, block=block, multiplies=positions * n_in * n_out, cycles=partitions * rf + depth,
        interval=partitions * rf, multipliers=mult_count, resources=res,
        note=f"hls4ml io_parallel: {partitions} partitions x ReuseFactor {rf}, {mult_count} multipliers "
             f"({n_in}x{n_out} per position)"), positions * n_out, out_bits, a)


def _hls4ml_dense(name: str, n_in: int, n_out: int, a_bits: int, w_bits: int, a: Assumptions,
                  out_bits: int) -> EngineEstimate:
    rf = a.reuse_factor
    mult_count = math.ceil(n_in * n_out / rf)
    res = control(a) + multipliers(mult_count, a_bits, w_bits, a.accum_bits, a)
    return _with_tensor(EngineEstimate(
        name=name, kind="head", block=None, multiplies=n_in * n_out,
        cycles=rf + a.mul_latency + _log2(n_in) * a.add_latency + 1, interval=rf, multipliers=mult_count,
        resources=res, note=f"hls4ml Dense io_parallel: II = ReuseFactor {rf}"), n_out, out_bits, a)


def _layernorm(name: str, block: int | None, tokens: int, dim: int, a: Assumptions, in_bits: int,
               out_bits: int) -> EngineEstimate:
    """hls4ml layernormalize (firmware/vitcod_layernorm.h keeps its loops): one token per II."""
    rf = a.reuse_factor
    acc, tab, par = a.layernorm_accum_bits, a.layernorm_table_bits, a.layernorm_param_bits
    per_token = 3 * dim + 2  # diff^2 (dim), mean and variance products (2), diff * 1/sqrt * scale (2 dim)
    groups = ((dim + 2, acc, acc), (dim, acc, tab), (dim, acc, par))
    res = control(a) + _total(multipliers(math.ceil(c / rf), x, y, acc, a) for c, x, y in groups)
    res += memory(a.layernorm_table_size, tab, a)  # 1/sqrt table
    res += Resources(lut=dim * in_bits)  # the sum tree
    depth = 2 * _log2(dim) * a.add_latency + 4 * a.mul_latency + a.mem_latency + 3
    return _with_tensor(EngineEstimate(
        name=name, kind="layernorm", block=block, multiplies=tokens * per_token, cycles=tokens * rf + depth,
        interval=tokens * rf, multipliers=sum(math.ceil(c / rf) for c, _, _ in groups), resources=res,
        note=f"hls4ml LayerNormalization: {tokens} tokens x II {rf}, {per_token} multiplies per token"),
        tokens * dim, out_bits, a)


def _elementwise(name: str, kind: str, block: int | None, values: int, bits: int, a: Assumptions) -> EngineEstimate:
    """hls4ml Add / ReLU io_parallel: one fully unrolled pipelined step."""
    lut = values * (bits + 1) if kind == "add" else values * math.ceil(bits / 2)
    res = control(a) + Resources(lut=lut)
    return _with_tensor(EngineEstimate(name=name, kind=kind, block=block, multiplies=0, cycles=2, interval=1,
                                       multipliers=0, resources=res,
                                       note=f"hls4ml {kind} io_parallel: {values} lanes, one step"), values, bits, a)


def _softmax_head(n: int, a: Assumptions) -> EngineEstimate:
    res = control(a) + multipliers(n, a.softmax_bits, a.softmax_bits, a.softmax_bits, a)
    res += memory(a.softmax_table_size, a.softmax_bits, a, copies=2)  # exp and 1/sum tables
    cycles = 2 * _log2(n) * a.add_latency + 2 * a.mem_latency + a.mul_latency + 4
    return EngineEstimate(name="softmax", kind="softmax_head", block=None, multiplies=n, cycles=cycles, interval=1,
                          multipliers=n, resources=res, note="hls4ml softmax (stable): table exp, one inverse")


def _headmix(name: str, role: str, block: int, tokens: int, h_in: int, h_out: int, d: int, data_bits: int,
             w_bits: int, a: Assumptions) -> EngineEstimate:
    """vitcod_headmix.h: HeadMixTokens N x II ReuseFactor, ALLOCATION limit ceil(Hin*Hout*D/RF)."""
    rf = a.reuse_factor
    mult_count = math.ceil(h_in * h_out * d / rf)
    macs = tokens * h_in * h_out * d
    res = control(a) + multipliers(mult_count, data_bits, w_bits, a.accum_bits, a)
    depth = a.mul_latency + _log2(h_in) * a.add_latency + 1
    return _with_tensor(EngineEstimate(
        name=name, kind=role, block=block, multiplies=macs, counters={role: macs},
        cycles=pipelined_loop(tokens, rf, depth, a), interval=tokens * rf, multipliers=mult_count, resources=res,
        note=f"HeadMixTokens {tokens} x II {rf}, {mult_count} multipliers"), tokens * h_out * d, a.activation_bits, a)


def _embed(tokens: int, dim: int, a: Assumptions, bits: int) -> EngineEstimate:
    """vitcod_embed.h: EmbedCls unrolled, EmbedTokens N-1 x II ReuseFactor; additions only."""
    rf = a.reuse_factor
    res = control(a) + Resources(lut=2 * dim * (bits + 1))  # the two adder banks (CLS row, token rows)
    res += memory(tokens, bits, a, copies=dim)  # position table, one memory per channel
    return _with_tensor(EngineEstimate(
        name="embed", kind="embed", block=None, multiplies=0, counters={"embed": tokens * dim},
        cycles=1 + pipelined_loop(tokens - 1, rf, 2, a), interval=(tokens - 1) * rf + 1, multipliers=0, resources=res,
        note=f"CLS + position: {tokens * dim} additions (counter 'embed'), no multiplies"), tokens * dim, bits, a)


# =============================================================================================
# Whole model
# =============================================================================================


@dataclass
class ModelEstimate:
    """The modelled design of one run stage: every engine, the attention layers and their dense
    baseline, Q/K buffer bytes, totals."""

    config: ViTConfig
    assumptions: Assumptions
    engines: list[EngineEstimate]
    attention: list[AttentionEstimate]
    dense_attention: list[AttentionEstimate]
    autoencoder: bool
    sparsity: float
    stage: str | None = None
    #: the generated attention engines (masks, lanes, types), e.g. to C-simulate the same layers
    attention_engines: list = field(default_factory=list, repr=False)

    # ---- totals --------------------------------------------------------------------------------
    @property
    def top_level(self) -> list[EngineEstimate]:
        return [e for e in self.engines if e.part_of is None]

    @property
    def counters(self) -> dict[str, int]:
        """C-simulation counter values per image (sum over every engine)."""
        out = dict.fromkeys(COUNTER_NAMES, 0)
        for e in self.engines:
            if e.kind == "attention":
                continue  # its parts carry the counters
            for k, v in e.counters.items():
                out[k] += v
        return out

    @property
    def multiplies(self) -> int:
        return sum(e.multiplies for e in self.top_level)

    @property
    def cycles(self) -> int:
        """Latency of one image through the DATAFLOW chain of layers (sum)."""
        return sum(e.cycles for e in self.top_level)

    @property
    def interval(self) -> int:
        """Initiation interval of the chain (its slowest layer)."""
        return max(e.interval for e in self.top_level)

    @property
    def resources(self) -> Resources:
        return _total(e.resources for e in self.top_level)

    def resource_breakdown(self) -> dict[str, int]:
        """Where the modelled resources go: DSPs by engine kind, FFs of the io_parallel tensors."""
        dsp: dict[str, int] = {}
        for e in self.top_level:
            dsp[e.kind] = dsp.get(e.kind, 0) + e.resources.dsp
        tensor_ff = sum(e.register_ff for e in self.top_level)
        return {"dsp_by_kind": dsp, "tensor_register_ff": tensor_ff, "other_ff": self.resources.ff - tensor_ff}

    def resource_estimate(self) -> dict[str, int]:
        """``{dsp, bram_18k, lut, ff}`` in the form overlay_config.check_fit takes."""
        return self.resources.as_dict()

    def seconds(self, cycles: int) -> float:
        return cycles / (self.assumptions.clock_mhz * 1e6)

    # ---- attention vs the dense baseline -------------------------------------------------------
    def qk_bytes(self) -> dict[str, int]:
        """Q and K bytes one image holds between projection and attention, all blocks.

        Without the auto-encoder: two (N, H*D) tensors per block; with it the compressed
        (N, Hc*D) ones (ViTCoD keeps Q/K compressed and decodes on chip). Same element width.
        """
        c = self.config
        width = math.ceil(self.assumptions.activation_bits / 8)
        full = 2 * c.depth * c.num_tokens * c.num_heads * c.head_dim * width
        compressed = 2 * c.depth * c.num_tokens * c.compressed_heads * c.head_dim * width
        return {"without_autoencoder": full, "with_autoencoder": compressed,
                "this_design": compressed if self.autoencoder else full, "bytes_per_value": width}

    def attention_summary(self) -> dict:
        """ViTCoD engines vs the dense engine with the same q.k multipliers, per image, all blocks."""
        vit_mults = sum(l.multiplies for l in self.attention)
        dense_mults = sum(l.multiplies for l in self.dense_attention)
        ae_mults = sum(e.multiplies for e in self.engines if e.kind in ("encoder", "decoder"))
        ae_cycles = sum(e.cycles for e in self.engines if e.kind in ("encoder", "decoder"))
        vit_cycles = sum(l.cycles for l in self.attention)
        dense_cycles = sum(l.cycles for l in self.dense_attention)
        vit_ideal = sum(l.ideal_cycles for l in self.attention)
        dense_ideal = sum(l.ideal_cycles for l in self.dense_attention)
        bound = {"dense": 0, "sparse": 0}
        for layer in self.attention:
            for h in layer.head_estimates:
                bound[h.qk_bound] += 1
        stage_cycles: dict[str, int] = {}
        for layer in self.attention:
            for e in layer.engines:
                stage_cycles[e.kind] = stage_cycles.get(e.kind, 0) + e.cycles
        return {
            "label": LABEL,
            "sparsity": self.sparsity,
            "vitcod_multiplies": vit_mults,
            "vitcod_multiplies_incl_autoencoder": vit_mults + ae_mults,
            "dense_multiplies": dense_mults,
            "mult_ratio": dense_mults / vit_mults if vit_mults else None,
            "mult_ratio_incl_autoencoder": dense_mults / (vit_mults + ae_mults) if vit_mults + ae_mults else None,
            "vitcod_cycles": vit_cycles,
            "vitcod_cycles_incl_autoencoder": vit_cycles + ae_cycles,
            "dense_cycles": dense_cycles,
            "vitcod_latency_us": self.seconds(vit_cycles) * 1e6,
            "dense_latency_us": self.seconds(dense_cycles) * 1e6,
            "speedup": dense_cycles / vit_cycles if vit_cycles else None,
            "speedup_incl_autoencoder": dense_cycles / (vit_cycles + ae_cycles) if vit_cycles else None,
            "vitcod_streamed_cycles": sum(l.streamed_cycles for l in self.attention),
            "vitcod_ideal_cycles": vit_ideal,
            "dense_ideal_cycles": dense_ideal,
            "ideal_speedup": dense_ideal / vit_ideal if vit_ideal else None,
            "qk_multipliers": [l.qk_multipliers for l in self.attention],
            "lanes": [[l.dense_unroll, l.sparse_lanes] for l in self.attention],
            "heads_bound_by": bound,
            "vitcod_stage_cycles": stage_cycles,
        }

    # ---- output --------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        seconds = self.seconds(self.cycles)
        return {
            "label": LABEL,
            "stage": self.stage,
            "sparsity": self.sparsity,
            "autoencoder": self.autoencoder,
            "clock_mhz": self.assumptions.clock_mhz,
            "assumptions": self.assumptions.to_dict(),
            "totals": {
                "multiplies": self.multiplies, "cycles": self.cycles, "latency_us": seconds * 1e6,
                "interval_cycles": self.interval,
                "throughput_images_per_s": self.assumptions.clock_mhz * 1e6 / self.interval,
                **self.resource_estimate(),
            },
            "counters": self.counters,
            "resource_breakdown": self.resource_breakdown(),
            "attention_summary": self.attention_summary(),
            "qk_bytes": self.qk_bytes(),
            "engines": [e.to_dict() for e in self.engines],
            "attention": [l.to_dict() for l in self.attention],
            "dense_attention": [l.to_dict() for l in self.dense_attention],
        }

    def table(self) -> str:
        """A markdown table of the engines (parts of an attention layer indented)."""
        us = 1e6 / (self.assumptions.clock_mhz * 1e6)
        lines = ["| engine (modelled) | multiplies | cycles | latency [us] | II | multipliers | DSP | BRAM18K | LUT | FF |",
                 "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for e in self.engines:
            name = f"&nbsp;&nbsp;{e.name.split('/')[-1]}" if e.part_of else e.name
            r = e.resources
            lines.append(f"| {name} | {e.multiplies} | {e.cycles} | {e.cycles * us:.2f} | {e.interval} | "
                         f"{e.multipliers} | {r.dsp} | {r.bram_18k} | {r.lut} | {r.ff} |")
        r = self.resources
        lines.append(f"| **total** | {self.multiplies} | {self.cycles} | {self.cycles * us:.2f} | {self.interval} | "
                     f"{sum(e.multipliers for e in self.top_level)} | {r.dsp} | {r.bram_18k} | {r.lut} | {r.ff} |")
        return "\n".join(lines)


def _as_layer_heads(masks, config: ViTConfig) -> list[list[HeadPolarization]]:
    """Per-layer head polarizations from None (dense: all ones), a MaskArtifact, a (L, H, N, N) bool
    array, or a list of per-layer polarization lists."""
    n, h, depth = config.num_tokens, config.num_heads, config.depth
    if masks is None:
        ones = polarize_head(np.ones((n, n), dtype=bool), DEFAULT_GLOBAL_THRESHOLD)
        return [[ones] * h for _ in range(depth)]
    if hasattr(masks, "heads") and hasattr(masks, "num_layers"):
        if (masks.num_layers, masks.num_heads, masks.num_tokens) != (depth, h, n):
            raise ValueError(f"mask artifact has {masks.num_layers} layers x {masks.num_heads} heads x "
                             f"{masks.num_tokens} tokens, the config {depth} x {h} x {n}")
        return [masks.heads(l) for l in range(depth)]
    if isinstance(masks, np.ndarray):
        if masks.shape != (depth, h, n, n) or masks.dtype != np.bool_:
            raise ValueError(f"masks must be a bool array of shape {(depth, h, n, n)}, got {masks.dtype} {masks.shape}")
        return [[polarize_head(masks[l, i], DEFAULT_GLOBAL_THRESHOLD) for i in range(h)] for l in range(depth)]
    layers = [list(layer) for layer in masks]
    if len(layers) != depth or any(len(layer) != h for layer in layers):
        raise ValueError(f"expected {depth} layers of {h} head polarizations")
    return layers


def model_estimate(config: ViTConfig, masks=None, a: Assumptions = Assumptions(), *, autoencoder: bool = True,
                   stage: str | None = None) -> ModelEstimate:
    """Model the whole generated design of a ViT (every figure modelled).

    Args:
        config: the run's ViTConfig.
        masks: None (dense: every key global, as hls/extension.py does without masks), a
            MaskArtifact, a (depth, heads, N, N) bool keep-mask, or per-layer HeadPolarization lists.
        a: the assumptions.
        autoencoder: the Q/K encoder/decoder pairs are in the design (stages ae and sparse_*).
        stage: label only.
    """
    c = config
    n, e_dim, h, d, hc = c.num_tokens, c.embed_dim, c.num_heads, c.head_dim, c.compressed_heads
    act = a.activation_bits
    w_bits = a.weight_bits if a.weight_bits is not None else c.weight_bits
    layer_heads = _as_layer_heads(masks, c)
    rows: list[EngineEstimate] = []
    grid = c.image_size // c.patch_size
    rows.append(_hls4ml_conv("patch_embed", "patch_embed", None, grid * grid, c.embed_kernel ** 2 * c.channels,
                             e_dim, act, w_bits, a, act))
    rows.append(_embed(n, e_dim, a, act))
    attention: list[AttentionEstimate] = []
    dense_attention: list[AttentionEstimate] = []
    built: list[engines.AttentionEngine] = []
    kept = total = 0
    for b, heads in enumerate(layer_heads):
        p = f"block{b}_"
        rows.append(_layernorm(p + "norm1", b, n, e_dim, a, act, act))
        for name in ("q", "k", "v"):
            rows.append(_hls4ml_conv(p + name, "projection", b, n, e_dim, e_dim, act, w_bits, a, act))
        if autoencoder:
            for name in ("q", "k"):
                rows.append(_headmix(f"{p}{name}_encoder", "encoder", b, n, h, hc, d, act, w_bits, a))
                rows.append(_headmix(f"{p}{name}_decoder", "decoder", b, n, hc, h, d, act, w_bits, a))
        engine = build_engine(heads, d, a, name=p + "attention")
        built.append(engine)
        est = attention_estimate(engine, a, block=b)
        lanes = engine.dense_unroll + engine.sparse_lanes
        base = dense_attention_estimate(n, h, d, lanes, engine.types, a, name=p + "attention_dense",
                                        exp_table_size=engine.exp_table.size, block=b)
        attention.append(est)
        dense_attention.append(base)
        rows.append(_with_tensor(EngineEstimate(
            name=est.name, kind="attention", block=b, multiplies=est.multiplies, counters=dict(est.counters),
            cycles=est.cycles, interval=est.cycles, multipliers=est.multipliers, resources=est.resources,
            note=f"{h} heads one after the other: load + max(dense, sparse) + softmax/PV each; lanes "
                 f"{engine.dense_unroll} dense + {engine.sparse_lanes} sparse"), n * e_dim, engine.types.result.width, a))
        rows.extend(est.engines)
        rows.append(_hls4ml_conv(p + "proj", "projection", b, n, e_dim, e_dim, act, w_bits, a, act))
        rows.append(_elementwise(p + "add1", "add", b, n * e_dim, act, a))
        rows.append(_layernorm(p + "norm2", b, n, e_dim, a, act, act))
        rows.append(_hls4ml_conv(p + "mlp1", "mlp", b, n, e_dim, c.mlp_dim, act, w_bits, a, act))
        rows.append(_elementwise(p + "relu", "relu", b, n * c.mlp_dim, c.activation_bits, a))
        rows.append(_hls4ml_conv(p + "mlp2", "mlp", b, n, c.mlp_dim, e_dim, c.activation_bits, w_bits, a, act))
        rows.append(_elementwise(p + "add2", "add", b, n * e_dim, act, a))
        for pol in heads:
            kept += int(np.asarray(pol.dense_keep).sum()) + pol.nnz_sparse
            total += n * n
    rows.append(_layernorm("final_norm", None, n, e_dim, a, act, act))
    rows.append(_hls4ml_dense("head", e_dim, c.num_classes, act, w_bits, a, act))
    rows.append(_softmax_head(c.num_classes, a))
    return ModelEstimate(config=c, assumptions=a, engines=rows, attention=attention, dense_attention=dense_attention,
                         autoencoder=autoencoder, sparsity=1.0 - kept / total if total else 0.0, stage=stage,
                         attention_engines=built)


def stage_sparsity(stage: str) -> float | None:
    """Nominal sparsity of a stage folder name (``ae``/``dense`` -> 0, ``sparse_0.90`` -> 0.9)."""
    if stage in ("ae", "dense"):
        return 0.0
    if stage.startswith("sparse_"):
        try:
            return float(stage.split("_", 1)[1])
        except ValueError:
            return None
    return None


def load_config(path: str | Path) -> ViTConfig:
    """``ViTConfig.load``, also reading run folders written before ``patch_kernel`` became
    ``patch_overlap`` (kernel = patch + 2 * overlap); the translation is logged."""
    from ..model.config import ConfigError

    try:
        return ViTConfig.load(path)
    except ConfigError:
        data = json.loads(Path(path).read_text())
        known = set(ViTConfig.__dataclass_fields__)
        if "patch_kernel" not in data or "patch_kernel" in known or "patch_overlap" not in known:
            raise
        kernel, patch = data.pop("patch_kernel"), data.get("patch_size", 1)
        kernel = patch if kernel is None else kernel
        if (kernel - patch) % 2:
            raise
        data["patch_overlap"] = (kernel - patch) // 2
        log.warning("%s: legacy field patch_kernel=%s read as patch_overlap=%d", path, kernel, data["patch_overlap"])
        return ViTConfig.from_dict(data)


def estimate_run(run_dir: str | Path, stage: str = "sparse_0.90", a: Assumptions = Assumptions()) -> ModelEstimate:
    """:func:`model_estimate` for ``build/<run>/<stage>`` (config.json, and masks.npz when present).

    Stage ``dense`` has no auto-encoder; ``ae`` and ``sparse_*`` have one. A stage without masks.npz
    is dense attention (every key global), as the hls4ml extension builds it.

    Raises:
        FileNotFoundError: no config.json in the stage folder.
    """
    from ..model.mask_artifact import load_mask_artifact

    folder = Path(run_dir) / stage
    cfg_path = folder / "config.json"
    if not cfg_path.is_file():
        raise FileNotFoundError(f"no {cfg_path}: expected a trained stage folder (python -m vitcod ...)")
    config = load_config(cfg_path)
    masks_path = folder / MASKS_FILE
    masks = None
    if masks_path.is_file():
        masks = load_mask_artifact(masks_path, num_layers=config.depth, num_heads=config.num_heads,
                                   num_tokens=config.num_tokens)
    return model_estimate(config, masks, a, autoencoder=stage != "dense", stage=stage)


# =============================================================================================
# The counts checked against the C-simulation
# =============================================================================================


def counter_engines(estimate: ModelEstimate) -> list[tuple[str, Any, int, dict[str, int]]]:
    """The engines whose C-simulation counters the model predicts, as ``(label, engine, calls,
    expected counters per call)``.

    Attention: the generated engine of every block (its real masks, lanes and types). Head-mix and
    embedding: one engine per role at the model's sizes and reuse factor, with zero weights (the
    counts do not depend on weight values), called once per instance in the design.
    """
    c, a = estimate.config, estimate.assumptions
    out: list[tuple[str, Any, int, dict[str, int]]] = []
    for engine, layer in zip(estimate.attention_engines, estimate.attention):
        out.append((engine.name, engine, 1, dict(layer.counters)))
    roles = {}
    for e in estimate.engines:
        if e.kind in ("encoder", "decoder"):
            roles.setdefault(e.kind, []).append(e)
    for role, rows in roles.items():
        h_in, h_out = (c.num_heads, c.compressed_heads) if role == "encoder" else (c.compressed_heads, c.num_heads)
        cfg = engines.HeadMixEngineConfig(tokens=c.num_tokens, heads_in=h_in, heads_out=h_out, head_dim=c.head_dim,
                                          role=role, reuse_factor=a.reuse_factor)
        engine = engines.build_headmix_engine(cfg, np.zeros((h_in, h_out)), np.zeros(h_out), name=f"perf_{role}")
        out.append((f"{role} x{len(rows)}", engine, len(rows), dict(rows[0].counters)))
    embed = [e for e in estimate.engines if e.kind == "embed"]
    if embed:
        cfg = engines.EmbedEngineConfig(tokens=c.num_tokens, embed_dim=c.embed_dim, reuse_factor=a.reuse_factor)
        engine = engines.build_embed_engine(cfg, np.zeros(c.embed_dim), np.zeros((c.num_tokens, c.embed_dim)),
                                            name="perf_embed")
        out.append(("embed", engine, 1, dict(embed[0].counters)))
    return out


def check_counters_against_csim(estimate: ModelEstimate, jobs: int = 2) -> dict:
    """Compile (cached) and run every engine of :func:`counter_engines` with its C-simulation
    counters on, and compare with the model, counter by counter (exact equality).

    Returns:
        ``{"match": bool, "model": {...}, "csim": {...}, "engines": [per engine rows],
        "compile_seconds", "run_seconds"}``; ``model``/``csim`` are per image over the design.

    Raises:
        engine_csim.CompileError / FileNotFoundError: no g++ or no ap_types headers.
    """
    import time

    from . import engine_csim as ch

    items = counter_engines(estimate)
    t0 = time.perf_counter()
    libs = ch.build_many([engine for _, engine, _, _ in items], jobs=jobs)
    compile_seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    model_total = dict.fromkeys(COUNTER_NAMES, 0)
    csim_total = dict.fromkeys(COUNTER_NAMES, 0)
    rows = []
    for (label, engine, calls, expected), lib in zip(items, libs):
        zeros = [np.zeros((1, size), dtype=np.int64) for size in lib.input_sizes]
        measured = dict.fromkeys(COUNTER_NAMES, 0)
        for _ in range(calls):
            result = lib.run(*zeros)
            for k, v in result.counters_per_call().items():
                measured[k] += v
        want = {k: expected.get(k, 0) * calls for k in COUNTER_NAMES}
        for k in COUNTER_NAMES:
            model_total[k] += want[k]
            csim_total[k] += measured[k]
        rows.append({"engine": label, "calls": calls, "model": {k: v for k, v in want.items() if v or measured[k]},
                     "csim": {k: v for k, v in measured.items() if v or want[k]}, "match": want == measured})
    return {"match": all(r["match"] for r in rows) and model_total == csim_total, "model": model_total,
            "csim": csim_total, "engines": rows, "compile_seconds": compile_seconds,
            "run_seconds": time.perf_counter() - t0,
            "note": "model counts from the masks vs counters of the compiled engines (C-simulation), exact"}


# =============================================================================================
# Board fit
# =============================================================================================


def overlay_config():
    """:mod:`vitcod.overlay.config` (board totals and the fit check), imported when first needed."""
    from ..overlay import config as oc

    return oc


def _estimate_dict(estimate) -> dict[str, float]:
    if isinstance(estimate, ModelEstimate):
        return estimate.resource_estimate()
    return {k: estimate[k] for k in RESOURCE_KEYS}


def fit_report(estimate, boards: Sequence[str] | None = None, max_utilization: float = 1.0) -> dict[str, dict]:
    """Does the (modelled) resource estimate fit each board? Board totals from boards/<b>/board.tcl.

    Args:
        estimate: a :class:`ModelEstimate` or a ``{dsp, bram_18k, lut, ff}`` mapping.
        boards: board names (default: every overlay/boards/<board>/board.tcl).
        max_utilization: fraction of each resource the design may use.

    Returns:
        ``{board: {"fits": bool, "utilization": {resource: fraction}, "available": {...},
        "estimate": {...}, "message": None or the refusal, "label": "modelled"}}``.
    """
    oc = overlay_config()
    est = _estimate_dict(estimate)
    out = {}
    for board in boards or oc.available_boards():
        spec = oc.BoardSpec.load(board)
        available = dict(spec.resources)
        utilization = {k: est[k] / available[k] for k in RESOURCE_KEYS}
        try:
            oc.check_fit(est, available, board=board, max_utilization=max_utilization)
            fits, message = True, None
        except oc.ResourceFitError as err:
            fits, message = False, f"{err} (modelled estimate)"
        out[board] = {"label": LABEL, "fits": fits, "utilization": utilization, "available": available,
                      "estimate": dict(est), "max_utilization": max_utilization, "message": message}
    return out


def min_reuse_factor(config: ViTConfig, masks, board: str, a: Assumptions = Assumptions(), *,
                     autoencoder: bool = True, max_utilization: float = 1.0,
                     candidates: Sequence[int] = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)) -> int | None:
    """Smallest ReuseFactor (of those tried) at which the modelled design fits ``board``, else None."""
    for rf in candidates:
        est = model_estimate(config, masks, replace(a, reuse_factor=rf), autoencoder=autoencoder)
        if fit_report(est, [board], max_utilization)[board]["fits"]:
            return rf
    return None


def require_fit(run_dir: str | Path, board: str, *, stage: str = "sparse_0.90", max_utilization: float = 1.0,
                assumptions: Assumptions = Assumptions()) -> dict:
    """Refuse ``board`` when the modelled design of ``build/<run>/<stage>`` does not fit it.

    For ``make bitstream`` before any tool runs (the csynth-based ``fit`` step stays the real check).

    Returns:
        The board's entry of :func:`fit_report`.

    Raises:
        ResourceFitError (overlay_config's): the modelled estimate exceeds the board; the message
            names every resource over the limit.
        FileNotFoundError: no such stage / unknown board files.
    """
    oc = overlay_config()
    est = estimate_run(run_dir, stage, assumptions)
    entry = fit_report(est, [board], max_utilization)[board]
    if not entry["fits"]:
        raise oc.ResourceFitError(f"{run_dir}/{stage}: {entry['message']}")
    return entry


# =============================================================================================
# Command line
# =============================================================================================


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vitcod.hls.perf",
                                     description="Modelled cycles/multiplies/resources of the generated design.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, help_ in (("estimate", "print the modelled estimate of a run stage"),
                        ("fit", "exit 3 if the modelled design does not fit BOARD")):
        p = sub.add_parser(name, help=help_)
        p.add_argument("--run-dir", required=True, type=Path)
        p.add_argument("--stage", default="sparse_0.90")
        p.add_argument("--reuse-factor", type=int, default=1)
        p.add_argument("--clock-mhz", type=float, default=100.0)
        p.add_argument("--lane-budget", type=int, default=4)
        p.add_argument("--max-utilization", type=float, default=1.0)
        p.add_argument("--json", action="store_true")
        if name == "fit":
            p.add_argument("--board", required=True)
    args = parser.parse_args(argv)
    try:
        return _run(args)
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    a = Assumptions(reuse_factor=args.reuse_factor, clock_mhz=args.clock_mhz, lane_budget=args.lane_budget)
    if args.command == "fit":
        oc = overlay_config()
        try:
            entry = require_fit(args.run_dir, args.board, stage=args.stage, max_utilization=args.max_utilization,
                                assumptions=a)
        except oc.ResourceFitError as err:
            print(f"error: {err}", file=sys.stderr)
            return 3
        util = ", ".join(f"{k} {v:.0%}" for k, v in entry["utilization"].items())
        print(f"{args.board}: fits (modelled: {util})")
        return 0
    est = estimate_run(args.run_dir, args.stage, a)
    if args.json:
        print(json.dumps(est.to_dict(), indent=1, default=_json_default))
        return 0
    print(f"{args.run_dir}/{args.stage}: MODELLED at {a.clock_mhz:g} MHz, ReuseFactor {a.reuse_factor}")
    print(est.table())
    s = est.attention_summary()
    print(f"attention: {s['vitcod_multiplies']} multiplies vs {s['dense_multiplies']} dense "
          f"({s['mult_ratio']:.2f}x fewer), {s['vitcod_cycles']} vs {s['dense_cycles']} cycles "
          f"({s['speedup']:.2f}x) [modelled]")
    for board, entry in fit_report(est, max_utilization=args.max_utilization).items():
        print(f"{board}: {'fits' if entry['fits'] else 'does NOT fit'} "
              + ", ".join(f"{k} {v:.0%}" for k, v in entry["utilization"].items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
