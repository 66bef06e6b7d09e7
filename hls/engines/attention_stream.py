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

The golden model (:func:`vitcod.hls.golden.attention`) takes a stream engine as it is (same masks,
same types, same exp table).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from ..fixed_point import unsigned_bits_for
from ..tables import cpp_initializer
from .attention import AttentionEngine
from .attention_tables import cpp_uint_literals

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
    static sparse_rc_t sparse_rc_lane(unsigned l, unsigned i) {{
        switch (l) {{
{lane_cases}
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

    def cpp_tables(self) -> str:
        base = super().cpp_tables()
        gw, lanes = self.global_slot_words(), self.sparse_lane_words()
        gwidth, swidth = self.global_index_bits + 1, self.sparse_table.layout.width
        lines = [f"namespace {self.tables_namespace} {{",
                 "// io_stream only. Per head h, token n: its global column g | valid (one ROM per head).",
                 ]
        for h in range(gw.shape[0]):
            lines.append(f"static const ap_uint<{gwidth}> global_slot_h{h}[{gw.shape[1]}] = "
                         f"{cpp_initializer(cpp_uint_literals(gw[h]), per_line=12)};")
        lines.append("// io_stream only. The sparse (row | col | valid) table split into its lane banks: "
                     "bank l = sparse_rc[l::L].")
        for lane in range(lanes.shape[0]):
            lines.append(f"static const ap_uint<{swidth}> sparse_rc_lane{lane}[{lanes.shape[1]}] = "
                         f"{cpp_initializer(cpp_uint_literals(lanes[lane]), per_line=12)};")
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
        )
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


def stream_engine(engine: AttentionEngine) -> StreamAttentionEngine:
    """The io_stream variant of a built attention engine (same layer, same tables, same types)."""
    if isinstance(engine, StreamAttentionEngine):
        return engine
    if not isinstance(engine, AttentionEngine):
        raise TypeError(f"expected an AttentionEngine (vitcod.hls.engines.build_attention_engine), "
                        f"got {type(engine).__name__}")
    return StreamAttentionEngine(**{f.name: getattr(engine, f.name) for f in dataclasses.fields(engine)})
