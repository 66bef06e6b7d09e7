"""What the performance model takes on faith, and the resource / timing primitives it builds from.

Every engine model of :mod:`vitcod.hls.perf` (the attention engines in ``attention.py``, the hls4ml
layers in ``layers.py``) is written in terms of the functions here and fills in one
:class:`EngineEstimate` row. Every number the model assumes lives in :class:`Assumptions`.

Resource rules (all in :class:`Assumptions`, all coarse):

* multiplier a x b (two's-complement widths; an unsigned operand needs one more bit): LUT fabric
  when both widths are <= ``lut_multiplier_max_bits`` (10: Vitis HLS' usual behaviour for narrow
  products), else DSP48 slices tiling ``dsp_a_bits x dsp_b_bits`` = 25 x 18 (the DSP48E1 of the
  Zynq-7000; UltraScale+ DSP48E2 is 27 x 18, so this is conservative there): <= 25 x 18 is 1 DSP;
  every multiplier adds an accumulator adder (LUTs + FFs of the accumulator width).
* memories: arrays of at most ``bram_min_bits`` bits go to LUTRAM (one LUT per 64 x 1 bits), larger
  ones to BRAM18K with the best aspect ratio (16K x 1 ... 512 x 36) - the tool's own choice
  (storage "auto"). A buffer bound to a storage (``#pragma HLS BIND_STORAGE ... impl=``, the
  attention's per-image buffers: :data:`STORAGES`) costs that storage whatever its size: LUTRAM one
  LUT per 64 x 1 bits, BRAM18K as above, URAM ceil(width / 72) x ceil(depth / 4096) blocks of 4K x 72
  (UltraScale+ only; URAM has no initial contents, so ROMs never go there). PIPO buffers of a DATAFLOW
  region count ``pipo_copies`` (2) times. hls4ml weights (Latency strategy) are constants folded
  into the multipliers: no BRAM.
* io_parallel tensors between layers are completely partitioned by hls4ml: registers (FF), times
  the PIPO copies; our engines index them with loop variables, which costs N*H:1 multiplexers.
* control: ``control_lut`` / ``control_ff`` per process; the row division as a pipelined array
  divider (width^2 LUTs and FFs).

Pipelined loop: ``(trips - 1) * II + depth + loop_overhead`` cycles; depths come from
:class:`Assumptions` (multiplier / adder / memory latencies) and are the least certain part.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Iterable

import numpy as np

from ..fixed_point import FixedType

LABEL = "modelled"
"""Every figure this package produces is a model, not a measurement or a synthesis result."""

#: Names of the C-simulation counters (hls/firmware/vitcod_common.h, enum mac_counter_id).
COUNTER_NAMES = ("dense", "sparse", "softmax", "reciprocal", "pv", "encoder", "decoder", "embed")
#: Counters of the attention core: q.k (dense + sparse engines), probability multiplies, P x V.
ATTENTION_CORE_COUNTERS = ("dense", "sparse", "softmax", "pv")
#: The resources of an estimate, in the order ``vitcod.overlay.config.check_fit`` reports them.
RESOURCE_KEYS = ("dsp", "bram_18k", "lut", "ff", "uram")
#: Storages a per-image buffer can be bound to; "auto" leaves the choice to the tool (LUTRAM when
#: small, else BRAM: :func:`memory`).
STORAGES = ("auto", "bram", "lutram", "uram")
#: URAM288 block: 4096 words of 72 bits.
URAM_SHAPE = (4096, 72)


@dataclass(frozen=True)
class Assumptions:
    """Every number the model takes on faith. Change one with ``dataclasses.replace``.

    Design configuration (what the code generator is told):
        clock_mhz: clock of the IP (the boards' board.tcl use 100 MHz).
        reuse_factor: hls4ml ReuseFactor of every standard layer and of our head-mix / embed
            engines (``hls/convert.py`` leaves hls4ml's default, 1).
        parallelization_factor: hls4ml ParallelizationFactor of the Conv layers (default 1).
        activation_bits: width of the io_parallel tensors between hls4ml layers (hls4ml's default
            ap_fixed<16,6>; ``hls/precision.py`` derives 12 fraction bits + the profiled integer bits).
        weight_bits: None = ``ViTConfig.weight_bits``.
        accum_bits: accumulator width of the hls4ml Conv/Dense layers.
        layernorm_*: LayerNorm accumulator / 1-over-sqrt table / gamma-beta widths
            (``PrecisionPolicy`` in hls/precision.py: 22 fraction bits, 18-bit parameters).
        layernorm_table_size: entries of each LayerNorm's 1/sqrt ROM; None = what the precision policy
            builds for variances below 2^layernorm_top_exp with epsilon layernorm_epsilon (the octave
            table of vitcod.hls.engines.layernorm, ~1,000 entries).
        layernorm_tables: ``((layer, entries, bits), ...)`` of a converted project (its precision
            report); :func:`~vitcod.hls.perf.estimate.estimate_run` fills it when the run has one.
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
    io_stream (:mod:`vitcod.hls.perf.stream`, every one an ASSUMPTION):
        stream_token_overhead: cycles an hls4ml Resource-strategy stream Conv/Dense spends per output
            position outside its ``ReuseLoop`` (hls4ml 1.3.0 pipelines the outer position loop only for
            the Latency strategy, so each position costs the stream read, the kernel-window shift, the
            call into ``dense_resource`` whose ReuseLoop drains its pipeline, the cast and the write).
        stream_shift_cycles: cycles of a Conv2D line-buffer step for an input pixel with no output.
            Both constants are the published Vivado HLS figures of a 32-bit Resource-strategy stream
            Conv2D at RF 9/36/72 (:mod:`vitcod.hls.perf.published`, design 3: exactly RF + 11 and 4);
            our 8-16-bit products have shorter multiplier pipelines, so they are an upper bound here.
        fifo_srl_max_depth, fifo_srl_max_bits: a FIFO at most this deep and this many bits is a shift
            register (Vitis HLS ``config_storage fifo -auto_srl_max_depth 2 -auto_srl_max_bits 1024``
            defaults); a deeper one is a memory (BRAM / LUTRAM by :func:`memory`).
    """

    clock_mhz: float = 100.0
    reuse_factor: int = 1
    parallelization_factor: int = 1
    activation_bits: int = 16
    weight_bits: int | None = None
    accum_bits: int = 32
    layernorm_accum_bits: int = 30
    layernorm_table_bits: int = 20
    layernorm_table_size: int | None = None
    layernorm_top_exp: int = 3
    layernorm_epsilon: float = 1e-5
    layernorm_tables: tuple = ()
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
    stream_token_overhead: int = 11  # published: RF + 11 per windowed pixel (hls/perf/published.py, design 3)
    stream_shift_cycles: int = 4     # published: 4 per pixel without an output (same report)
    fifo_srl_max_depth: int = 2
    fifo_srl_max_bits: int = 1024

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

    def layernorm_table(self, layer: str) -> tuple[int, int]:
        """(entries, bits) of the 1/sqrt ROM of LayerNorm ``layer``: the converted project's when known,
        else :attr:`layernorm_table_size` or the precision policy's table for the assumed range."""
        for name, entries, bits in self.layernorm_tables:
            if name == layer:
                return int(entries), int(bits)
        if self.layernorm_table_size is not None:
            return self.layernorm_table_size, self.layernorm_table_bits
        from ..engines.layernorm import choose_invsqrt_table
        from ..precision import PrecisionPolicy

        policy = PrecisionPolicy()
        integer = self.layernorm_table_bits - policy.norm_table_frac_bits
        table = choose_invsqrt_table(2.0 ** self.layernorm_top_exp, self.layernorm_epsilon,
                                     f"ap_ufixed<{self.layernorm_table_bits},{integer}>", policy.norm_accum_frac_bits,
                                     max_error=policy.norm_table_error, max_size=policy.norm_table_max_size,
                                     margin=1.0, top_exp=self.layernorm_top_exp)
        return table.size, self.layernorm_table_bits


# =============================================================================================
# Resources and their primitives
# =============================================================================================


@dataclass
class Resources:
    """DSP48 slices, BRAM18K blocks, LUTs, FFs, URAM288 blocks (modelled)."""

    dsp: int = 0
    bram_18k: int = 0
    lut: int = 0
    ff: int = 0
    uram: int = 0

    def __add__(self, other: "Resources") -> "Resources":
        return Resources(self.dsp + other.dsp, self.bram_18k + other.bram_18k, self.lut + other.lut,
                         self.ff + other.ff, self.uram + other.uram)

    def scaled(self, factor: int) -> "Resources":
        return Resources(self.dsp * factor, self.bram_18k * factor, self.lut * factor, self.ff * factor,
                         self.uram * factor)

    def as_dict(self) -> dict[str, int]:
        return {k: int(getattr(self, k)) for k in RESOURCE_KEYS}


def total(items: Iterable[Resources]) -> Resources:
    """The sum of ``items`` (an empty sum is no resources)."""
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


def memory(depth: int, width: int, a: Assumptions, copies: int = 1, storage: str = "auto") -> Resources:
    """One array of depth x width bits (``copies`` times) in ``storage`` (:data:`STORAGES`; "auto":
    LUTRAM when small, else BRAM18K).

    Raises:
        ValueError: an unknown storage.
    """
    if storage not in STORAGES:
        raise ValueError(f"storage must be one of {STORAGES}, got {storage!r}")
    if depth <= 0 or width <= 0 or copies <= 0:
        return Resources()
    if storage == "lutram" or (storage == "auto" and depth * width <= a.bram_min_bits):
        return Resources(lut=copies * math.ceil(depth / 64) * width)
    if storage == "uram":
        return Resources(uram=copies * math.ceil(width / URAM_SHAPE[1]) * math.ceil(depth / URAM_SHAPE[0]))
    return Resources(bram_18k=copies * bram18k_blocks(depth, width))


def registers(bits: int, copies: int = 1) -> Resources:
    """``bits`` flip-flops, ``copies`` times."""
    return Resources(ff=bits * copies)


def mux_luts(width: int, inputs: int) -> int:
    """LUT6s of an ``inputs``:1 multiplexer of ``width`` bits (a LUT6 is a 4:1 mux)."""
    return width * math.ceil((inputs - 1) / 3) if inputs > 1 else 0


def control(a: Assumptions, processes: int = 1) -> Resources:
    """FSM, counters and handshakes of ``processes`` DATAFLOW processes."""
    return Resources(lut=a.control_lut * processes, ff=a.control_ff * processes)


def pipelined_loop(trips: int, ii: int, depth: int, a: Assumptions) -> int:
    """Cycles of a pipelined loop: (trips - 1) * II + depth, plus entering and leaving it."""
    if trips <= 0:
        return a.loop_overhead
    return (trips - 1) * ii + depth + a.loop_overhead


def log2_ceil(n: int) -> int:
    """Levels of an adder tree over ``n`` inputs (0 for one input)."""
    return max(0, math.ceil(math.log2(n))) if n > 1 else 0


# =============================================================================================
# One engine (process) of the design
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


def with_tensor(row: EngineEstimate, values: int, bits: int, a: Assumptions) -> EngineEstimate:
    """Add the row's output tensor: completely partitioned (io_parallel) -> registers, PIPO copies."""
    row.resources = row.resources + registers(values * bits, a.pipo_copies)
    row.register_ff = values * bits * a.pipo_copies
    return row
