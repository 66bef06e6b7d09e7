"""The standard hls4ml layers and our head-mix / embedding engines: modelled cycles and resources.

The standard hls4ml layers (io_parallel, Latency strategy, as ``hls/convert.py`` configures them) use
hls4ml's reuse-factor semantics: a layer with M multiplications per invocation has
``ceil(PF * n_in * n_out / ReuseFactor)`` multipliers, one partition of PF output positions every
ReuseFactor cycles (so M / (n_partitions * ReuseFactor) multiplications per cycle). Conv1D/Conv2D:
``out_positions / PF`` partitions; Dense: one. LayerNormalization: one token every ReuseFactor cycles.
Our head-mix (Q/K auto-encoder) and embedding engines follow the loops of
``hls/firmware/vitcod_headmix.h`` and ``hls/firmware/vitcod_embed.h``.

Each function returns one :class:`~vitcod.hls.perf.resources.EngineEstimate` row, its output
tensor included (``with_tensor``); ``estimate.py`` chains them into the whole model.
"""

from __future__ import annotations

import math

from . import ports
from .resources import (Assumptions, EngineEstimate, Resources, control, log2_ceil, memory, multipliers,
                        pipelined_loop, total, with_tensor)


def hls4ml_conv(name: str, kind: str, block: int | None, positions: int, n_in: int, n_out: int, a_bits: int,
                w_bits: int, a: Assumptions, out_bits: int) -> EngineEstimate:
    """Conv1D/Conv2D io_parallel Latency: positions/PF partitions, one every ReuseFactor cycles."""
    rf, pf = a.reuse_factor, a.parallelization_factor
    pf = max(1, min(pf, positions))
    partitions = math.ceil(positions / pf)
    mult_count = math.ceil(pf * n_in * n_out / rf)
    depth = a.mul_latency + log2_ceil(n_in) * a.add_latency + 1
    res = control(a) + multipliers(mult_count, a_bits, w_bits, a.accum_bits, a)
    return with_tensor(EngineEstimate(
        name=name, kind=kind, block=block, multiplies=positions * n_in * n_out, cycles=partitions * rf + depth,
        interval=partitions * rf, multipliers=mult_count, resources=res,
        note=f"hls4ml io_parallel: {partitions} partitions x ReuseFactor {rf}, {mult_count} multipliers "
             f"({n_in}x{n_out} per position)"), positions * n_out, out_bits, a)


def hls4ml_dense(name: str, n_in: int, n_out: int, a_bits: int, w_bits: int, a: Assumptions,
                 out_bits: int) -> EngineEstimate:
    """hls4ml Dense io_parallel (the classifier head): one invocation, II = ReuseFactor."""
    rf = a.reuse_factor
    mult_count = math.ceil(n_in * n_out / rf)
    res = control(a) + multipliers(mult_count, a_bits, w_bits, a.accum_bits, a)
    return with_tensor(EngineEstimate(
        name=name, kind="head", block=None, multiplies=n_in * n_out,
        cycles=rf + a.mul_latency + log2_ceil(n_in) * a.add_latency + 1, interval=rf, multipliers=mult_count,
        resources=res, note=f"hls4ml Dense io_parallel: II = ReuseFactor {rf}"), n_out, out_bits, a)


def layernorm(name: str, block: int | None, tokens: int, dim: int, a: Assumptions, in_bits: int,
              out_bits: int) -> EngineEstimate:
    """hls4ml layernormalize (firmware/vitcod_layernorm.h keeps its loops): one token per II."""
    rf = a.reuse_factor
    acc, tab, par = a.layernorm_accum_bits, a.layernorm_table_bits, a.layernorm_param_bits
    per_token = 3 * dim + 2  # diff^2 (dim), mean and variance products (2), diff * 1/sqrt * scale (2 dim)
    groups = ((dim + 2, acc, acc), (dim, acc, tab), (dim, acc, par))
    res = control(a) + total(multipliers(math.ceil(c / rf), x, y, acc, a) for c, x, y in groups)
    entries, tab_bits = a.layernorm_table(name)
    res += memory(entries, tab_bits, a)  # the generated 1/sqrt ROM (octave-indexed), read once per token
    res += Resources(lut=dim * in_bits)  # the sum tree
    depth = 2 * log2_ceil(dim) * a.add_latency + 4 * a.mul_latency + a.mem_latency + 3
    return with_tensor(EngineEstimate(
        name=name, kind="layernorm", block=block, multiplies=tokens * per_token, cycles=tokens * rf + depth,
        interval=tokens * rf, multipliers=sum(math.ceil(c / rf) for c, _, _ in groups), resources=res,
        note=f"hls4ml LayerNormalization: {tokens} tokens x II {rf}, {per_token} multiplies per token, "
             f"1/sqrt ROM {entries} x {tab_bits} bits"),
        tokens * dim, out_bits, a)


def elementwise(name: str, kind: str, block: int | None, values: int, bits: int, a: Assumptions) -> EngineEstimate:
    """hls4ml Add / ReLU io_parallel: one fully unrolled pipelined step."""
    lut = values * (bits + 1) if kind == "add" else values * math.ceil(bits / 2)
    res = control(a) + Resources(lut=lut)
    return with_tensor(EngineEstimate(name=name, kind=kind, block=block, multiplies=0, cycles=2, interval=1,
                                       multipliers=0, resources=res,
                                       note=f"hls4ml {kind} io_parallel: {values} lanes, one step"), values, bits, a)


def softmax_head(n: int, a: Assumptions) -> EngineEstimate:
    """hls4ml softmax of the ``n`` class scores (stable): table exp, one inverse."""
    res = control(a) + multipliers(n, a.softmax_bits, a.softmax_bits, a.softmax_bits, a)
    res += memory(a.softmax_table_size, a.softmax_bits, a, copies=2)  # exp and 1/sum tables
    cycles = 2 * log2_ceil(n) * a.add_latency + 2 * a.mem_latency + a.mul_latency + 4
    return EngineEstimate(name="softmax", kind="softmax_head", block=None, multiplies=n, cycles=cycles, interval=1,
                          multipliers=n, resources=res, note="hls4ml softmax (stable): table exp, one inverse")


def headmix(name: str, role: str, block: int, tokens: int, h_in: int, h_out: int, d: int, data_bits: int,
            w_bits: int, a: Assumptions) -> EngineEstimate:
    """vitcod_headmix.h: HeadMixTokens N x II ReuseFactor, ALLOCATION limit ceil(Hin*Hout*D/RF)."""
    rf = a.reuse_factor
    mult_count = math.ceil(h_in * h_out * d / rf)
    macs = tokens * h_in * h_out * d
    res = control(a) + multipliers(mult_count, data_bits, w_bits, a.accum_bits, a)
    depth = a.mul_latency + log2_ceil(h_in) * a.add_latency + 1
    return with_tensor(EngineEstimate(
        name=name, kind=role, block=block, multiplies=macs, counters={role: macs},
        cycles=pipelined_loop(tokens, rf, depth, a), interval=tokens * rf, multipliers=mult_count, resources=res,
        note=f"HeadMixTokens {tokens} x II {rf}, {mult_count} multipliers"), tokens * h_out * d, a.activation_bits, a)


def embed(tokens: int, dim: int, a: Assumptions, bits: int, pos_banks: int | None = None) -> EngineEstimate:
    """vitcod_embed.h: EmbedCls unrolled, EmbedTokens N-1 x II max(ReuseFactor, port limit); additions only.

    The position table is partitioned cyclic by ``pos_banks`` (the generator uses E): a token reads
    E entries, ceil(E / banks) per bank, and a bank has two ports (:mod:`.ports`).
    """
    rf = a.reuse_factor
    banks = dim if pos_banks is None else pos_banks
    ii = max(rf, ports.loop_ii(ports.embed_accesses(dim, banks), a.memory_ports)["EmbedTokens"])
    res = control(a) + Resources(lut=2 * dim * (bits + 1))  # the two adder banks (CLS row, token rows)
    res += memory(math.ceil(tokens * dim / banks), bits, a, copies=banks)  # position table, cyclic banks
    return with_tensor(EngineEstimate(
        name="embed", kind="embed", block=None, multiplies=0, counters={"embed": tokens * dim},
        cycles=1 + pipelined_loop(tokens - 1, ii, 2, a), interval=(tokens - 1) * ii + 1, multipliers=0, resources=res,
        note=f"CLS + position: {tokens * dim} additions (counter 'embed'), no multiplies; pos in {banks} banks, "
             f"II {ii}"), tokens * dim, bits, a)
