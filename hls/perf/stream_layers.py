"""One stage of the io_stream design: its cycles, multipliers and resources (every figure MODELLED).

Where this fits: :mod:`vitcod.hls.perf.stream` chains these stages into the whole DATAFLOW design
(``python -m vitcod.hls.plan`` chooses their knobs). Each builder reads the code the conversion
instantiates and says where a formula is an ASSUMPTION:

* hls4ml 1.3.0 stream Conv1D / Conv2D / Dense with the Resource strategy (``nnet_conv1d_stream.h``
  ``conv_1d_buffer_cl``, ``nnet_conv_stream.h`` ``compute_output_buffer_{1,2}d``,
  ``nnet_dense_stream.h``, ``nnet_dense_resource.h``): per output position one call of
  ``dense_resource``, whose ``ReuseLoop`` runs ``ReuseFactor`` iterations at II 1 with
  ``block_factor = ceil(n_in * n_out / ReuseFactor)`` multipliers (``MultLoop`` unrolled), the weights
  reshaped by ``block_factor`` into a ROM of ``ReuseFactor`` words (``ROM_nP_BRAM`` when RF > 1) and
  the biases partitioned, the ReuseLoop's operand selects in LUTs (its indices depend on the loop
  counter: :func:`reuse_loop_mux_luts`). hls4ml's pointwise pass turns the k=1 Conv1D into a
  PointwiseConv1D node (ASSUMPTION: in io_stream it runs the same per-position dense_resource call;
  its Vitis template also partitions the weights completely, for every strategy - which of that and
  dense_resource's reshape Vitis HLS keeps is unverified here, the model takes the BRAM ROM).
  The outer position loop is NOT pipelined for the Resource strategy (its ``PIPELINE`` pragma is only
  emitted for Latency / DA), so a position costs ``ReuseFactor + stream_token_overhead`` cycles
  (ASSUMPTION: the overhead, see :class:`~.resources.Assumptions`).
  Conv2D keeps ``filt_height - 1`` line buffers of ``in_width * n_chan`` values (``ap_shift_reg``,
  shift-register LUTs) and a ``filt_h * filt_w * n_chan`` register window; an input pixel that
  completes no window costs ``stream_shift_cycles`` (ASSUMPTION).
  Held against a published Vivado HLS report of such layers (:mod:`vitcod.hls.perf.published`, design 3:
  io_stream Resource-strategy Conv2D at RF 9 / 36 / 72): DSP +12%, BRAM18K +6%, LUT -27%, FF -56%,
  worst-case cycles -6% in total; the published per-pixel cycles are RF + 11 and 4 (the
  assumptions' 8 and 2 are lower; FF from multiplier pipeline registers remain unmodelled).
* hls4ml stream Add / ReLU / Clone / Repack / Cropping1D / ZeroPadding2D: one ``PIPELINE`` II 1
  iteration per stream element (``nnet_merge_stream.h``, ``nnet_activation_stream.h``, the
  ``clone_stream`` / ``repack_stream`` passes, ``nnet_padding_stream.h``).
* hls4ml stream softmax (``softmax_stable``): one element of ``n`` scores, table exp + one inverse.
* our stream kernels (``hls/firmware/vitcod_{layernorm,embed,headmix}_stream.h``): one token per
  ``reuse_factor`` cycles (their ``PIPELINE II=reuse_factor``); multipliers = operations /
  reuse_factor (ASSUMPTION: Vitis HLS shares operators across the II cycles; the head-mix kernel
  asks for it with an ``ALLOCATION`` limit).
* the streaming ViTCoD attention: :func:`vitcod.hls.perf.attention_stream.attention_stream_estimate`
  (its K/V buffers are counted there, as BRAM).

Multiply counts per image are exact and equal the C-simulation counters (the same counts as the
io_parallel model, :mod:`vitcod.hls.perf.layers`, which tests/hls/test_perf.py checks).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from .resources import (LABEL, Assumptions, Resources, control, log2_ceil, memory, multipliers, mux_luts,
                        total)


@dataclass
class Stage:
    """One DATAFLOW process of the io_stream design (modelled).

    Attributes:
        name: the hls4ml / Keras layer name (our additions: ``reader``, ``writer``, ``<block>_clone*``,
            ``zero_pad``).
        kind: patch_embed, projection, mlp, head, layernorm, embed, encoder, decoder, attention, add,
            relu, clone, repack, cls_select, zero_pad, softmax, reader, writer.
        knobs: what the planner set (``{"reuse_factor": rf}`` or the attention's lanes); empty when
            the stage has none.
        tokens_in, tokens_out: stream elements read / written per image.
        interval: cycles per image (the process's initiation interval between images).
        depth: cycles from the first input element to the first output element (its pipeline depth;
            for a barrier the compute after the last input).
        token_ii: cycles per output element in the steady state.
        barrier: reads every input element before its first output (the attention).
        first_only: writes its only output after the first input (the CLS selection).
    """

    name: str
    kind: str
    block: int | None
    tokens_in: int
    tokens_out: int
    interval: int
    depth: int
    token_ii: float
    multiplies: int = 0
    multipliers: int = 0
    resources: Resources = field(default_factory=Resources)
    counters: dict = field(default_factory=dict)
    knobs: dict = field(default_factory=dict)
    barrier: bool = False
    first_only: bool = False
    load: int = 0
    note: str = ""

    def propagate(self, first_in: float, last_in: float) -> tuple[float, float]:
        """(first, last) output time of one image given its first / last input time (cycles)."""
        if self.barrier:
            first = max(last_in, first_in + self.load) + self.depth
            return first, first + (self.tokens_out - 1) * self.token_ii
        first = first_in + self.depth
        if self.first_only or self.tokens_out <= 1:
            return first, first
        return first, max(first + (self.tokens_out - 1) * self.token_ii, last_in + self.depth)

    def to_dict(self) -> dict:
        return {"label": LABEL, "name": self.name, "kind": self.kind, "block": self.block, "knobs": dict(self.knobs),
                "tokens_in": self.tokens_in, "tokens_out": self.tokens_out, "interval": self.interval,
                "depth": self.depth, "token_ii": self.token_ii, "multiplies": self.multiplies,
                "multipliers": self.multipliers, "counters": dict(self.counters), **self.resources.as_dict(),
                "note": self.note}


def _dense_resource(n_in: int, n_out: int, rf: int, a_bits: int, w_bits: int, a: Assumptions) -> tuple[int, Resources]:
    """hls4ml ``dense_resource``: block_factor multipliers, the weights ROM (RF words), the accumulators,
    the ReuseLoop's operand selects (:func:`reuse_loop_mux_luts`)."""
    block = math.ceil(n_in * n_out / rf)
    res = multipliers(block, a_bits, w_bits, a.accum_bits, a)
    if rf > 1:  # ROM_nP_BRAM: RF words of block_factor weights (ARRAY_RESHAPE block factor=block_factor)
        res += memory(rf, block * w_bits, a, storage="bram")  # the core pragma: BRAM whatever its size
    res += Resources(ff=n_out * a.accum_bits, lut=reuse_loop_mux_luts(n_in, n_out, rf, a_bits, a.accum_bits))
    return block, res


def reuse_loop_mux_luts(n_in: int, n_out: int, rf: int, a_bits: int, accum_bits: int) -> int:
    """LUTs of the selects ``dense_resource``'s ReuseLoop needs because its indices depend on ``ir``
    (hls4ml 1.3.0 ``nnet_dense_resource.h``).

    * RF <= n_in (``dense_resource_rf_leq_nin``): multiplier ``im`` reads ``data[ir + (im mod
      ceil(n_in/RF)) * RF]``, so there are ceil(n_in / RF) distinct RF:1 input selects (shared by the
      multipliers that read the same one); ``out_index`` is fixed per multiplier (no accumulator select).
    * RF > n_in (``_rf_gt_nin_rem0`` / ``_rf_gt_nin``): every multiplier reads ``data[in_index]``, one
      shared n_in:1 select, and accumulates into ``acc[outidx[ir] + im * outscale]``: one
      ceil(RF / n_in):1 accumulator select per multiplier.
    RF = 1: no select. Sizes from the code; one LUT6 per 4:1 of one bit (:func:`mux_luts`) is the
    ASSUMPTION.
    """
    if rf <= 1:
        return 0
    if rf <= n_in:
        return math.ceil(n_in / rf) * mux_luts(a_bits, rf)
    block = math.ceil(n_in * n_out / rf)
    return mux_luts(a_bits, n_in) + block * mux_luts(accum_bits, math.ceil(rf / n_in))


def resource_pixel_cycles(rf: int, a: Assumptions) -> tuple[int, int]:
    """Cycles of one input pixel of an hls4ml Resource-strategy stream Conv: (pixel that completes a
    window, pixel that does not). ``conv_{1,2}d_buffer_cl`` pipelines its pixel loop only for Latency /
    DA, so each pixel runs ``compute_output_buffer_{1,2}d`` (INLINE OFF) to completion: the window
    shift, then - when a window is complete - ``dense_resource`` (``ReuseLoop``: RF iterations at II 1),
    the cast and the stream write. The RF-independent parts are ASSUMPTIONS
    (``stream_token_overhead``, ``stream_shift_cycles``); :mod:`.published` holds them against a
    published report (its per-pixel cycles are exactly RF + 11 and 4 for RF 9, 36 and 72)."""
    return rf + a.stream_token_overhead, a.stream_shift_cycles


def hls4ml_matrix(name: str, kind: str, block: int | None, positions: int, n_in: int, n_out: int, rf: int,
                  a_bits: int, w_bits: int, a: Assumptions, *, pixels_in: int | None = None,
                  first_need: int = 1, line_buffer: tuple[int, int, int] | None = None) -> Stage:
    """hls4ml stream Conv1D (k=1) / Conv2D / Dense with the Resource strategy (module docstring).

    ``positions`` output positions per image; ``pixels_in`` input elements (Conv2D: the padded image;
    default = positions); ``first_need`` input elements before the first window is complete;
    ``line_buffer`` = (filt_height, in_width, n_chan) for Conv2D.
    """
    pixels_in = positions if pixels_in is None else pixels_in
    mults, res = _dense_resource(n_in, n_out, rf, a_bits, w_bits, a)
    per_position, shift = resource_pixel_cycles(rf, a)
    shift = shift if pixels_in > positions else 0
    interval = positions * per_position + (pixels_in - positions) * shift
    res += control(a)
    if line_buffer is not None:
        fh, width, chan = line_buffer
        res += Resources(lut=(fh - 1) * chan * a_bits * math.ceil(width / 32),  # SRL32 line buffers
                         ff=fh * fh * chan * a_bits)  # the kernel window (registers)
    depth = (first_need - 1) * shift + per_position + a.mul_latency + log2_ceil(n_in) * a.add_latency
    return Stage(name=name, kind=kind, block=block, tokens_in=pixels_in, tokens_out=positions, interval=interval,
                 depth=depth, token_ii=interval / positions, multiplies=positions * n_in * n_out, multipliers=mults,
                 resources=res, knobs={"reuse_factor": rf},
                 note=f"hls4ml Resource: {mults} multipliers, {positions} positions x (RF {rf} + "
                      f"{a.stream_token_overhead})" + (f" + {pixels_in - positions} line-buffer steps" if shift else ""))


def passthrough(name: str, kind: str, block: int | None, elements: int, width_bits: int, a: Assumptions,
                *, copies: int = 1, tokens_out: int | None = None, first_only: bool = False) -> Stage:
    """An hls4ml stream layer doing one element per cycle (Add, ReLU, Clone, Repack, Cropping, padding)."""
    lut = {"add": width_bits + width_bits // 16, "relu": width_bits // 2}.get(kind, 0) + width_bits // 8 * copies
    out = elements if tokens_out is None else tokens_out
    return Stage(name=name, kind=kind, block=block, tokens_in=elements, tokens_out=out, interval=elements + 1,
                 depth=2, token_ii=1.0, resources=control(a) + Resources(lut=lut, ff=width_bits * copies),
                 first_only=first_only, note=f"hls4ml stream {kind}: one element per cycle")


def layernorm_stream(name: str, block: int | None, tokens: int, dim: int, rf: int, a: Assumptions) -> Stage:
    """vitcod::layernormalize_stream: a token every ``rf`` cycles; the io_parallel kernel's multiplies
    shared over the II (ASSUMPTION); its 1/sqrt ROM."""
    acc, tab, par = a.layernorm_accum_bits, a.layernorm_table_bits, a.layernorm_param_bits
    groups = ((dim + 2, acc, acc), (dim, acc, tab), (dim, acc, par))
    res = control(a) + total(multipliers(math.ceil(c / rf), x, y, acc, a) for c, x, y in groups)
    entries, tab_bits = a.layernorm_table(name)
    res += memory(entries, tab_bits, a) + Resources(lut=dim * a.activation_bits)  # ROM + sum tree
    depth = 2 * log2_ceil(dim) * a.add_latency + 4 * a.mul_latency + a.mem_latency + 3
    return Stage(name=name, kind="layernorm", block=block, tokens_in=tokens, tokens_out=tokens,
                 interval=tokens * rf + depth, depth=depth, token_ii=float(rf), multiplies=tokens * (3 * dim + 2),
                 multipliers=sum(math.ceil(c / rf) for c, _, _ in groups), resources=res, knobs={"reuse_factor": rf},
                 note=f"layernormalize_stream: II {rf} per token")


def embed_stream(tokens: int, dim: int, rf: int, a: Assumptions) -> Stage:
    """vitcod::cls_pos_embed_stream: the CLS token, then N-1 tokens at II rf; additions only."""
    res = control(a) + Resources(lut=2 * dim * (a.activation_bits + 1))
    res += memory(math.ceil(tokens * dim / dim), a.activation_bits, a, copies=dim)  # pos: E cyclic banks
    return Stage(name="embed", kind="embed", block=None, tokens_in=tokens - 1, tokens_out=tokens,
                 interval=1 + (tokens - 1) * rf + 2, depth=2, token_ii=float(rf), counters={"embed": tokens * dim},
                 resources=res, knobs={"reuse_factor": rf}, note=f"cls_pos_embed_stream: II {rf}")


def headmix_stream(name: str, role: str, block: int, tokens: int, h_in: int, h_out: int, d: int, rf: int,
                   a: Assumptions, w_bits: int) -> Stage:
    """vitcod::head_mix_stream: II rf per token, ALLOCATION limit ceil(Hin*Hout*D / rf)."""
    mults = math.ceil(h_in * h_out * d / rf)
    depth = a.mul_latency + log2_ceil(h_in) * a.add_latency + 2
    macs = tokens * h_in * h_out * d
    return Stage(name=name, kind=role, block=block, tokens_in=tokens, tokens_out=tokens,
                 interval=tokens * rf + depth, depth=depth, token_ii=float(rf), multiplies=macs,
                 multipliers=mults, counters={role: macs},
                 resources=control(a) + multipliers(mults, a.activation_bits, w_bits, a.accum_bits, a),
                 knobs={"reuse_factor": rf}, note=f"head_mix_stream: II {rf}, {mults} multipliers")


def softmax_stream(n: int, a: Assumptions) -> Stage:
    """hls4ml softmax_stable on one element of ``n`` scores: exp and 1/sum tables, n multiplies."""
    res = control(a) + multipliers(n, a.softmax_bits, a.softmax_bits, a.softmax_bits, a)
    res += memory(a.softmax_table_size, a.softmax_bits, a, copies=2)
    depth = 2 * log2_ceil(n) * a.add_latency + 2 * a.mem_latency + a.mul_latency + 4
    return Stage(name="softmax", kind="softmax", block=None, tokens_in=1, tokens_out=1, interval=depth, depth=depth,
                 token_ii=float(depth), multiplies=n, multipliers=n, resources=res,
                 note="hls4ml softmax_stable: one element")


def top_port(name: str, values: int, a: Assumptions) -> Stage:
    """The DATAFLOW top's reader or writer (overlay/ip/vitcod_top_stream.h): one value per cycle."""
    return Stage(name=name, kind=name, block=None, tokens_in=values if name == "writer" else 0,
                 tokens_out=values if name == "reader" else 0, interval=values, depth=1, token_ii=1.0,
                 resources=control(a), note="one value per cycle")


def attention_stage(est, block: int, knobs: dict) -> Stage:
    """A :class:`~vitcod.hls.perf.attention_stream.StreamAttentionEstimate` as a stage (a barrier)."""
    c = est.process_cycles
    n = est.tokens
    compute = est.latency - c["load"] - c["write"]
    return Stage(name=est.name, kind="attention", block=block, tokens_in=n, tokens_out=n, interval=est.interval,
                 depth=compute, token_ii=c["write"] / n, multiplies=est.multiplies, multipliers=est.multipliers,
                 resources=est.resources, counters=dict(est.counters), knobs=dict(knobs), barrier=True, load=c["load"],
                 note=f"streaming attention: processes {c}, bound by {est.bound}")


def fifo_resources(depth: int, width: int, a: Assumptions) -> Resources:
    """One FIFO: a shift register when at most fifo_srl_max_depth deep and fifo_srl_max_bits (Vitis
    defaults, ASSUMPTION), else a memory (BRAM / LUTRAM by :func:`memory`) plus its pointers."""
    if depth <= a.fifo_srl_max_depth and depth * width <= a.fifo_srl_max_bits:
        return Resources(lut=width * math.ceil(depth / 32) + 8, ff=width + 8)
    return memory(depth, width, a) + Resources(lut=2 * log2_ceil(depth) + 16, ff=2 * log2_ceil(depth) + 16)


__all__ = ["Stage", "attention_stage", "embed_stream", "fifo_resources", "headmix_stream",
           "hls4ml_matrix", "layernorm_stream", "passthrough", "resource_pixel_cycles", "reuse_loop_mux_luts",
           "softmax_stream", "top_port"]
