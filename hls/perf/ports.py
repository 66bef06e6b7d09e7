"""Memory ports: the accesses each pipelined loop of our engines makes per iteration, and the II they allow.

A BRAM, LUTRAM or ROM has two ports (:data:`~vitcod.hls.engines.attention_tables.MEMORY_PORTS`). A
pipelined loop that reads one memory ``r`` times per iteration cannot start an iteration more than
every ``ceil(r / ports)`` cycles, whatever its PIPELINE pragma asks for (Vitis HLS reports the
violation and raises the II). The performance model takes each loop's II from here instead of
assuming the pragma's, and the same description checks a generated header: a config whose lanes
want more accesses of one bank than it has ports is reported (:func:`port_problems`).

The accesses follow the firmware's loops (``hls/firmware/vitcod_attention.h``,
``vitcod_attention_stream.h``, ``vitcod_embed.h``);
what varies with a generated layer are its lane counts and banks, read from the engine or from the
header's ``static const`` constants (:func:`header_constants`).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from ..engines.attention_tables import MEMORY_PORTS


@dataclass(frozen=True)
class MemoryAccess:
    """One memory (or each bank of a partitioned one) as one pipelined loop uses it."""

    loop: str
    memory: str
    per_bank: int  # accesses of the busiest bank per loop iteration
    banks: int = 1

    def ii(self, ports: int = MEMORY_PORTS) -> int:
        return max(1, math.ceil(self.per_bank / ports))


def attention_accesses(dense_unroll: int, sparse_lanes: int, sparse_copies: int) -> list[MemoryAccess]:
    """The memories of one attention layer's pipelined loops and their busiest bank's accesses.

    Sparse engine: lane ``l`` reads copy ``l % sparse_copies`` of the q and k rows (D banks each,
    complete dim 3) and bank ``l`` of the lane-interleaved (row, col) ROM; dense engine: U lanes on
    ``cyclic U`` banks of k_global / s_dense and one shared q_dense read; the softmax / P x V walk
    reads its slot word, one score, one row buffer and the exp ROM once per iteration.
    """
    lanes_per_copy = math.ceil(sparse_lanes / max(1, sparse_copies))
    out = [
        MemoryAccess("LoadRows", "q_dense, q_sparse, k_sparse (writes)", 1),
        MemoryAccess("LoadGlobal", "global_tokens ROM", 1),
        MemoryAccess("LoadGlobal", "k_global (writes)", 1, dense_unroll),
        MemoryAccess("DenseCols", "q_dense", 1),
        MemoryAccess("DenseCols", "k_global", 1, dense_unroll),
        MemoryAccess("DenseCols", "s_dense (writes)", 1, dense_unroll),
        MemoryAccess("SparseTrips", "sparse_rc ROM", 1, sparse_lanes),
        MemoryAccess("SparseTrips", "q_sparse", lanes_per_copy, sparse_copies),
        MemoryAccess("SparseTrips", "k_sparse", lanes_per_copy, sparse_copies),
        MemoryAccess("SparseTrips", "s_sparse (writes)", 1, sparse_lanes),
        MemoryAccess("SoftmaxRecip", "row_sum_buf, inv_buf", 1),
    ]
    for loop in ("SoftmaxMax", "SoftmaxExpSum", "SoftmaxPv"):
        out += [MemoryAccess(loop, "slots ROM", 1), MemoryAccess(loop, "s_dense", 1, dense_unroll),
                MemoryAccess(loop, "s_sparse", 1, sparse_lanes), MemoryAccess(loop, "row buffers", 1)]
    out += [MemoryAccess("SoftmaxExpSum", "exp ROM", 1), MemoryAccess("SoftmaxPv", "exp ROM", 1),
            MemoryAccess("SoftmaxPv", "inv_buf", 1)]
    return out


def attention_stream_accesses(heads: int, dense_unroll: int, sparse_lanes: int, sparse_copies: int,
                              softmax_lanes: int = 1, pv_lanes: int = 1, softmax_copies: int = 1, pv_copies: int = 1,
                              fused_reciprocal: bool = False, load_heads: int = 1) -> list[MemoryAccess]:
    """The io_stream attention engine's pipelined loops (``hls/firmware/vitcod_attention_stream.h``).

    Every per-head buffer stacks its heads in depth: ONE memory (per copy, per cyclic bank) holds
    head h's rows at h * rows + r (q_dense, k_global, the q/k sparse copies, the V copies, out_buf;
    the score buffers likewise). A loop that touches ``k`` heads of such a buffer in one iteration
    therefore makes ``k`` accesses of that one memory. StreamLoadHeads (the loader's flattened
    n / h nest) writes ``load_heads`` head rows per iteration (1 in the firmware) into every
    buffer copy and reads each head's global_slot ROM (H ROMs behind a switch: one read each); the
    gathered k_global row is one write per cyclic bank per head; StreamWriteHeads reads
    ``load_heads`` out_buf rows per iteration. The engines read what their io_parallel twins read,
    one head at a time, the sparse lanes their own ROM bank (``sparse_rc_lane``); both write every
    score copy once.

    The walks take L = softmax_lanes (row max, exp-sum) or pv_lanes (P x V) kept entries of one
    row per iteration: lane l reads its own walk ROM (L banks) and copy l % copies of the scores
    and the exp ROM (and of V in P x V), where copies = softmax_copies for the softmax walks and
    pv_copies for P x V (with lanes they are separate processes with separate copies; with one
    lane, one process and one copy). A variable index into a cyclic-partitioned score copy reads
    every bank of it, so a bank sees as many reads as lanes share the copy. The row buffers (row
    max, row sum, 1/sum) and the output row are accessed once per iteration (one row per group).
    StreamSoftmaxRecip exists only without ``fused_reciprocal``.
    """
    lanes_per_copy = math.ceil(sparse_lanes / max(1, sparse_copies))
    split = softmax_lanes > 1 or pv_lanes > 1
    score_sets = softmax_copies + pv_copies if split else 1

    def per_copy(lanes: int, copies: int) -> int:
        return math.ceil(lanes / max(1, copies))

    out = [
        MemoryAccess("StreamLoadHeads", "global_slot ROMs", 1, heads),
        MemoryAccess("StreamLoadHeads", "q_dense, q_sparse, k_sparse, v_buf copies (writes, heads stacked)",
                     load_heads),
        MemoryAccess("StreamLoadHeads", "k_global (writes, heads stacked)", load_heads, dense_unroll),
        MemoryAccess("StreamDenseCols", "q_dense", 1),
        MemoryAccess("StreamDenseCols", "k_global", 1, dense_unroll),
        MemoryAccess("StreamDenseCols", "s_dense copies (writes)", 1, dense_unroll * score_sets),
        MemoryAccess("StreamSparseTrips", "sparse_rc_lane ROMs", 1, sparse_lanes),
        MemoryAccess("StreamSparseTrips", "q_sparse", lanes_per_copy, sparse_copies),
        MemoryAccess("StreamSparseTrips", "k_sparse", lanes_per_copy, sparse_copies),
        MemoryAccess("StreamSparseTrips", "s_sparse copies (writes)", 1, sparse_lanes * score_sets),
        MemoryAccess("StreamWriteHeads", "out_buf (heads stacked)", load_heads),
    ]
    if not fused_reciprocal:
        out.append(MemoryAccess("StreamSoftmaxRecip", "row_sum_buf, inv_buf", 1))
    for loop, lanes, copies in (("StreamSoftmaxMax", softmax_lanes, softmax_copies),
                                ("StreamSoftmaxExpSum", softmax_lanes, softmax_copies),
                                ("StreamSoftmaxPv", pv_lanes, pv_copies)):
        out += [MemoryAccess(loop, "walk ROMs (one per lane)", 1, lanes),
                MemoryAccess(loop, "s_dense copies", per_copy(lanes, copies), dense_unroll * copies),
                MemoryAccess(loop, "s_sparse copies", per_copy(lanes, copies), sparse_lanes * copies),
                MemoryAccess(loop, "row buffers", 1)]
    out += [MemoryAccess("StreamSoftmaxExpSum", "exp ROM copies", per_copy(softmax_lanes, softmax_copies),
                         softmax_copies),
            MemoryAccess("StreamSoftmaxPv", "exp ROM copies", per_copy(pv_lanes, pv_copies), pv_copies),
            MemoryAccess("StreamSoftmaxPv", "inv_buf", 1),
            MemoryAccess("StreamSoftmaxPv", "v_buf copies", per_copy(pv_lanes, pv_copies), pv_copies),
            MemoryAccess("StreamSoftmaxPv", "out_buf (writes)", 1)]
    return out


def embed_accesses(embed_dim: int, pos_banks: int) -> list[MemoryAccess]:
    """EmbedTokens reads pos[n * E + e] for every e in one iteration: ceil(E / banks) per bank."""
    return [MemoryAccess("EmbedTokens", "pos", math.ceil(embed_dim / max(1, pos_banks)), pos_banks)]


def loop_ii(accesses: list[MemoryAccess], ports: int = MEMORY_PORTS) -> dict[str, int]:
    """The smallest II each loop's memories allow (1 where nothing limits it)."""
    out: dict[str, int] = {}
    for a in accesses:
        out[a.loop] = max(out.get(a.loop, 1), a.ii(ports))
    return out


def port_problems(accesses: list[MemoryAccess], ports: int = MEMORY_PORTS) -> list[str]:
    """Every memory a loop accesses more often per iteration than it has ports (empty: II 1 holds)."""
    return [f"{a.loop}: {a.memory} takes {a.per_bank} accesses per iteration on a {ports}-port memory "
            f"(II {a.ii(ports)}, not 1)" for a in accesses if a.ii(ports) > 1]


_CONST = re.compile(r"static\s+const\s+unsigned\s+(\w+)\s*=\s*(\d+)\s*;")


def header_constants(text: str) -> dict[str, int]:
    """``static const unsigned name = value;`` of a generated header (the last definition wins)."""
    return {m.group(1): int(m.group(2)) for m in _CONST.finditer(text)}


def header_accesses(text: str) -> list[MemoryAccess]:
    """The accesses a generated attention or embedding header asks for, from its own constants."""
    c = header_constants(text)
    if "global_index_bits" in c:  # the io_stream variant (vitcod.hls.engines.attention_stream)
        fused = re.search(r"static\s+const\s+bool\s+fused_reciprocal\s*=\s*true\s*;", text) is not None
        return attention_stream_accesses(
            c["n_heads"], c["dense_unroll"], c["sparse_lanes"], c.get("sparse_copies", 1),
            softmax_lanes=c.get("softmax_lanes", 1), pv_lanes=c.get("pv_lanes", 1),
            softmax_copies=c.get("softmax_copies", 1), pv_copies=c.get("pv_copies", 1), fused_reciprocal=fused)
    if "sparse_lanes" in c:
        return attention_accesses(c["dense_unroll"], c["sparse_lanes"], c.get("sparse_copies", 1))
    if "pos_banks" in c or "embed_dim" in c:
        return embed_accesses(c["embed_dim"], c.get("pos_banks", 1))
    raise ValueError("not a generated attention or embedding header (no sparse_lanes / embed_dim constant)")
