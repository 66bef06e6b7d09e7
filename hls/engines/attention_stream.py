"""The io_stream variant of the sparse-attention engine: the same layer, fed as token streams.

Where this fits: :func:`~.attention.build_attention_engine` resolves a layer into an
:class:`~.attention.AttentionEngine` (types, masks, lanes, walk tables); :func:`stream_engine` turns
it into a :class:`StreamAttentionEngine`, whose header is the SAME config struct plus the members
only the stream engine (``hls/firmware/vitcod_attention_stream.h``) reads, and whose call is
``vitcod::attention_stream<q_T, k_T, v_T, res_T, CONFIG_T>(q, k, v, out)`` on
``hls::stream<nnet::array<T, heads * head_dim>>`` token streams (hls4ml's io_stream convention).
The io_parallel engine's generated text is not touched: a stream engine is a separate object.

Why the extra members: the io_stream call has four stream arguments and no room for the sparse
lane table that the io_parallel call passes in to partition it, so the tables the stream engine
reads several times per cycle are emitted as one ROM per reader instead, each behind a ``switch``
accessor that resolves to one ROM once the lane / head loop is unrolled:

* ``sparse_rc_lane(l, h * sparse_trips_max + t)``: bank ``l`` of the lane-interleaved sparse table
  (:class:`~.attention_tables.SparseLaneTable`, the one source: bank l is ``words[l::L]``);
* ``global_slot(h, n)``: for token ``n``, head ``h``'s global column ``g`` and a valid bit, so that
  the loader gathers the global-token K rows as the tokens pass, reading at its loop counter.

Heads stacked in depth (``token_head_banks``, ``global_head_banks``): the firmware keeps every per-head
buffer as ONE memory of H x rows words (cyclic factor 1 on its head dimension) unless
:func:`head_banks` finds one memory per head cheaper by the modelled memory rule (then the factor
is ``n_heads``); the loader and the writer take one head row per cycle, so both layouts meet the ports.

Softmax / P x V lanes (``softmax_lanes`` / ``pv_lanes`` of the config, :mod:`.attention_lanes`):
with either above 1 the firmware runs its lanes design (the softmax walks and the P x V walk as two
DATAFLOW processes) and the struct gets the lane members it reads (a ``lanes_tag`` typedef marks
them): per walk one ROM per lane (``softmax_walk(l, h, t)``, ``pv_walk(l, h, t)``, read at the
loop counter; the P x V walk has its own ROMs, another process reads them) and its trip counts, the
copy counts (``softmax_copies``: scores + exp ROM of the softmax process; ``pv_copies``: scores,
exp ROM and V of the P x V process) and ``exp_rom(c, index)`` over the exp-table copies (copy 0 is
``exp_table``). With both at 1 nothing is added: the header is byte for byte that of an engine
without lanes, and the firmware's default (``vitcod::stream_single_lane``) walks the slot table in
one process as before.

The golden model (:func:`vitcod.hls.golden.attention`) takes a stream engine as it is (same masks,
same types, same exp table; the lanes change no bit, see vitcod_attention_stream.h).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from ..fixed_point import unsigned_bits_for
from ..tables import cpp_fixed_literals, cpp_initializer
from .attention import AttentionEngine
from .attention_lanes import WalkLaneTable, build_walk_lane_table, walk_copies
from .attention_tables import MEMORY_PORTS, cpp_uint_literals, rom_uint

attention_stream_function_template = (
    "vitcod::attention_stream<{q_t}, {k_t}, {v_t}, {res_t}, {config}>({q}, {k}, {v}, {res});"
)

stream_members_template = """
    // ---- io_stream engine only (vitcod_attention_stream.h): one ROM per reader ----
    static const unsigned global_index_bits = {global_index_bits};  // global_slot word: g | valid
    typedef ap_uint<{global_slot_width}> global_slot_t;
    static global_slot_t global_slot(unsigned h, unsigned n) {{
        switch (h) {{
{global_cases}
        }}
    }}
    // memories per buffer along its head dimension (cyclic): 1 = the heads STACKED in depth (one
    // memory of H x rows words), n_heads = one memory per head; the smaller by the modelled cost
    static const unsigned token_head_banks = {token_head_banks};  // q_dense, q/k sparse copies, V, out_buf
    static const unsigned global_head_banks = {global_head_banks};  // k_global (each of its dense_unroll banks)
    static sparse_rc_t sparse_rc_lane(unsigned l, unsigned i) {{
        switch (l) {{
{lane_cases}
        }}
    }}
"""

lane_members_template = """
    // ---- io_stream softmax / P x V lanes (vitcod_attention_stream.h: stream_lanes finds lanes_tag) ----
    typedef void lanes_tag;
    static const unsigned softmax_lanes = {softmax_lanes};  // kept entries of one row per cycle: max, exp-sum
    static const unsigned pv_lanes = {pv_lanes};  // kept entries of one row per cycle: P x V
    // copies of the memories the lanes read (lane l reads copy l % copies: <= {memory_ports} reads per copy):
    static const unsigned softmax_copies = {softmax_copies};  // scores + exp ROM of StreamSoftmax
    static const unsigned pv_copies = {pv_copies};  // scores + exp ROM + V of StreamPv
    static const bool fused_reciprocal = {fused};  // 1/sum at the row end of the exp-sum walk
    static const unsigned softmax_trips_max = {s_max};  // row groups of a head (trip counts)
    static const unsigned softmax_trips_min = {s_min};
    static const unsigned softmax_trips_avg = {s_avg};
    static const unsigned pv_trips_max = {p_max};
    static const unsigned pv_trips_min = {p_min};
    static const unsigned pv_trips_avg = {p_avg};
    typedef ap_uint<{walk_width}> walk_t;  // slot word | valid
    static unsigned softmax_trips(unsigned h) {{ return {tables}::softmax_trips[h]; }}
    static unsigned pv_trips(unsigned h) {{ return {tables}::pv_trips[h]; }}
    static walk_t softmax_walk(unsigned l, unsigned h, unsigned t) {{
        switch (l) {{
{softmax_cases}
        }}
    }}
    static walk_t pv_walk(unsigned l, unsigned h, unsigned t) {{
        switch (l) {{
{pv_cases}
        }}
    }}
    static exp_t exp_rom(unsigned c, unsigned index) {{  // copies 0..softmax_copies-1: StreamSoftmax
        switch (c) {{
{exp_cases}
        }}
    }}
"""


def _switch_cases(count: int, expr: str) -> str:
    """``case i: return <expr % i>;`` lines, the last one as ``default`` (every index is covered)."""
    lines = [f"        case {i}: return {expr.format(i=i)};" for i in range(count - 1)]
    lines.append(f"        default: return {expr.format(i=count - 1)};")
    return "\n".join(lines)


@dataclass(frozen=True, eq=False)
class StreamAttentionEngine(AttentionEngine):
    """An :class:`~.attention.AttentionEngine` generated for the io_stream engine (same fields)."""

    @property
    def global_index_bits(self) -> int:
        return unsigned_bits_for(self.n_global_max - 1)

    def global_slot_words(self) -> np.ndarray:
        """(H, N) words: bit ``global_index_bits`` set where token n is head h's global column g (low bits)."""
        n, gb = self.config.tokens, self.global_index_bits
        words = np.zeros((self.config.heads, n), dtype=np.uint64)
        for h, p in enumerate(self.heads):
            for g, token in enumerate(np.asarray(p.global_tokens, dtype=np.int64)):
                words[h, token] = np.uint64(g) | (np.uint64(1) << np.uint64(gb))
        return words

    def sparse_lane_words(self) -> np.ndarray:
        """(L, H * sparse_trips_max) words: ROM bank l of the lane-interleaved sparse table."""
        table = self.sparse_table
        return table.words.reshape(-1, self.sparse_lanes).T.copy()

    # ---- heads stacked in depth or one memory per head -----------------------------------------
    @property
    def token_head_banks(self) -> int:
        """Memories along the head dimension of the token buffers (q_dense, the q/k sparse copies,
        V, out_buf; rows N, D values of q / k / v / result): see :func:`head_banks`."""
        t = self.types
        widths = [t.q.width, t.q.width, t.k.width, t.v.width, t.result.width]
        return head_banks(self.config.heads, self.config.tokens, [self.config.head_dim * w for w in widths])

    @property
    def global_head_banks(self) -> int:
        """Memories along the head dimension of k_global (per dense bank: ceil(Gmax / U) rows)."""
        rows = -(-self.n_global_max // self.dense_unroll)
        return head_banks(self.config.heads, rows, [self.config.head_dim * self.types.k.width])

    # ---- softmax / P x V lanes ----------------------------------------------------------------
    @property
    def softmax_lanes(self) -> int:
        return self.config.softmax_lanes

    @property
    def pv_lanes(self) -> int:
        return self.config.pv_lanes

    @property
    def laned(self) -> bool:
        """True if the walks have lanes (the header then carries the lane members)."""
        return self.softmax_lanes > 1 or self.pv_lanes > 1

    @property
    def softmax_copies(self) -> int:
        """Copies of the scores and the exp ROM that StreamSoftmax's Ls lanes read (2 lanes per copy)."""
        return walk_copies(self.softmax_lanes)

    @property
    def pv_copies(self) -> int:
        """Copies of the scores, the exp ROM and V that StreamPv's Lp lanes read (2 lanes per copy)."""
        return walk_copies(self.pv_lanes)

    @property
    def exp_copies(self) -> int:
        """exp ROMs of a lanes design: one set per walk process (softmax_copies + pv_copies)."""
        return self.softmax_copies + self.pv_copies if self.laned else 1

    @property
    def fused_reciprocal(self) -> bool:
        """With softmax lanes the row's 1/sum is computed at its row end in the exp-sum walk (the
        pipelined divider takes one row per cycle at most: a group never spans two rows)."""
        return self.softmax_lanes > 1

    @cached_property
    def softmax_walk(self) -> WalkLaneTable:
        return build_walk_lane_table(self.slot_table, self.softmax_lanes)

    @cached_property
    def pv_walk(self) -> WalkLaneTable:
        if self.pv_lanes == self.softmax_lanes:
            return self.softmax_walk  # same words; emitted as ROMs of their own (another process reads them)
        return build_walk_lane_table(self.slot_table, self.pv_lanes)

    def _lane_tables(self) -> list[str]:
        lines = ["// io_stream softmax / P x V lanes: per walk, group t of head h at h * trips_max + t, one ROM",
                 "// per lane (slot word | valid; row and row_end on lane 0); exp table copies."]
        for what, walk in (("softmax", self.softmax_walk), ("pv", self.pv_walk)):
            for lane in range(walk.lanes):
                lines.append(f"static const {rom_uint(walk.width)} {what}_walk_lane{lane}[{walk.words.shape[1]}] = "
                             f"{cpp_initializer(cpp_uint_literals(walk.words[lane]), per_line=12)};")
        for what, walk in (("softmax", self.softmax_walk), ("pv", self.pv_walk)):
            lines.append(f"static const unsigned {what}_trips[{len(walk.trips)}] = {cpp_initializer(walk.trips)};")
        t = self.types
        literals = np.array(cpp_fixed_literals(self.exp_table.raw, t.exp), dtype=object)
        for c in range(1, self.exp_copies):
            lines.append(f"static const {t.exp.cpp()} exp_table_copy{c}[{self.exp_table.size}] = "
                         f"{cpp_initializer(literals, per_line=8)};")
        return lines

    def _lane_members(self) -> str:
        tables = self.tables_namespace
        s, p = self.softmax_walk, self.pv_walk

        def walk_cases(rom: str, lanes: int, trips: str) -> str:
            return _switch_cases(lanes, f"{tables}::{rom}_walk_lane{{i}}[h * {trips} + t]")

        exp_cases = ([f"        case 0: return {tables}::exp_table[index];"] if self.exp_copies > 1 else [])
        exp_cases += [f"        case {c}: return {tables}::exp_table_copy{c}[index];" for c in range(1, self.exp_copies - 1)]
        last = "exp_table" if self.exp_copies == 1 else f"exp_table_copy{self.exp_copies - 1}"
        exp_cases.append(f"        default: return {tables}::{last}[index];")
        return lane_members_template.format(
            softmax_lanes=self.softmax_lanes, pv_lanes=self.pv_lanes, memory_ports=MEMORY_PORTS,
            softmax_copies=self.softmax_copies, pv_copies=self.pv_copies,
            fused="true" if self.fused_reciprocal else "false",
            s_max=s.trips_max, s_min=int(s.trips.min()), s_avg=round(float(s.trips.mean())),
            p_max=p.trips_max, p_min=int(p.trips.min()), p_avg=round(float(p.trips.mean())),
            walk_width=s.width, tables=tables,
            softmax_cases=walk_cases("softmax", self.softmax_lanes, "softmax_trips_max"),
            pv_cases=walk_cases("pv", self.pv_lanes, "pv_trips_max"),
            exp_cases="\n".join(exp_cases),
        )

    def cpp_tables(self) -> str:
        base = super().cpp_tables()
        gw, lanes = self.global_slot_words(), self.sparse_lane_words()
        gwidth, swidth = self.global_index_bits + 1, self.sparse_table.layout.width
        lines = [f"namespace {self.tables_namespace} {{",
                 "// io_stream only. Per head h, token n: its global column g | valid (one ROM per head).",
                 ]
        for h in range(gw.shape[0]):
            lines.append(f"static const {rom_uint(gwidth)} global_slot_h{h}[{gw.shape[1]}] = "
                         f"{cpp_initializer(cpp_uint_literals(gw[h]), per_line=12)};")
        lines.append("// io_stream only. The sparse (row | col | valid) table split into its lane banks: "
                     "bank l = sparse_rc[l::L].")
        for lane in range(lanes.shape[0]):
            lines.append(f"static const {rom_uint(swidth)} sparse_rc_lane{lane}[{lanes.shape[1]}] = "
                         f"{cpp_initializer(cpp_uint_literals(lanes[lane]), per_line=12)};")
        if self.laned:
            lines += self._lane_tables()
        lines.append(f"}} // namespace {self.tables_namespace}")
        return base + "\n".join(lines) + "\n"

    def cpp_config(self) -> str:
        base = super().cpp_config().rstrip()
        if not base.endswith("};"):
            raise AssertionError("the attention config template no longer ends with '};'")
        tables = self.tables_namespace
        members = stream_members_template.format(
            global_index_bits=self.global_index_bits, global_slot_width=self.global_index_bits + 1,
            global_cases=_switch_cases(self.config.heads, f"{tables}::global_slot_h{{i}}[n]"),
            lane_cases=_switch_cases(self.sparse_lanes, f"{tables}::sparse_rc_lane{{i}}[i]"),
            token_head_banks=self.token_head_banks, global_head_banks=self.global_head_banks,
        )
        if self.laned:
            members += self._lane_members().lstrip("\n")
        return base[:-2] + members.lstrip("\n") + "};\n"

    @property
    def description(self) -> str:
        return "sparse attention (io_stream)"

    @property
    def include(self) -> str:
        return "vitcod_attention_stream.h"

    def stream_types(self) -> dict[str, str]:
        """The token types of the call: ``nnet::array<elem, heads * head_dim>`` per stream."""
        t, e = self.types, self.config.embed_dim
        return {"q": f"nnet::array<{t.q.cpp()}, {e}>", "k": f"nnet::array<{t.k.cpp()}, {e}>",
                "v": f"nnet::array<{t.v.cpp()}, {e}>", "res": f"nnet::array<{t.result.cpp()}, {e}>"}

    def function_call(self, q: str = "q", k: str = "k", v: str = "v", res: str = "res") -> str:
        """The io_stream call on four ``hls::stream`` token streams (the tables are ROMs of the header)."""
        s = self.stream_types()
        return attention_stream_function_template.format(
            q_t=s["q"], k_t=s["k"], v_t=s["v"], res_t=s["res"], config=self.config_name, q=q, k=k, v=v, res=res)


#: LUTs one BRAM18K is worth when :func:`head_banks` weighs a LUTRAM layout against a BRAM one: the
#: LUT / BRAM18K ratio of the board scarcest in BRAM per LUT of the three (pynq-z2: 53,200 / 280;
#: zcu104 ~369, kv260 ~408), so a choice that is cheaper at this rate is cheaper on every board.
LUTS_PER_BRAM18K = 190


def head_banks(heads: int, rows: int, widths: list[int]) -> int:
    """1 (the heads stacked in depth: one memory of heads x rows words per buffer) or ``heads`` (one
    memory of ``rows`` words per head), whichever the modelled memory rule
    (:func:`vitcod.hls.perf.resources.memory`, default assumptions) makes cheaper for buffers of
    ``widths`` bits per row, counting a BRAM18K as :data:`LUTS_PER_BRAM18K` LUTs (ties: stacked).
    Stacking packs H short memories into one BRAM column (e.g. 4 x 65 rows of 128 bits: 4 BRAM18K
    instead of 16); one memory per head wins only where each head's memory is small enough for
    LUTRAM and the stacked one is not (e.g. 4 x 5 rows of 128 bits: 512 LUTs instead of 4 BRAM18K).
    Either way no loop touches two heads of one buffer per iteration, so the ports are the same
    (vitcod.hls.perf.ports)."""
    from ..perf.resources import Assumptions, memory  # lazy: vitcod.hls.perf imports this package

    a = Assumptions()

    def cost(depth: int, copies: int) -> int:
        items = [memory(depth, w, a, copies=copies) for w in widths]
        return sum(r.bram_18k * LUTS_PER_BRAM18K + r.lut for r in items)

    return 1 if cost(heads * rows, 1) <= cost(rows, heads) else heads


def stream_engine(engine: AttentionEngine) -> StreamAttentionEngine:
    """The io_stream variant of a built attention engine (same layer, same tables, same types)."""
    if isinstance(engine, StreamAttentionEngine):
        return engine
    if not isinstance(engine, AttentionEngine):
        raise TypeError(f"expected an AttentionEngine (vitcod.hls.engines.build_attention_engine), "
                        f"got {type(engine).__name__}")
    return StreamAttentionEngine(**{f.name: getattr(engine, f.name) for f in dataclasses.fields(engine)})
