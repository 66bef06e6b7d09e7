"""The attention engine's walk tables: what every pipelined loop reads, indexed by its loop counter.

Where this fits: :mod:`.attention` builds an :class:`~.attention.AttentionEngine` from the head
polarizations; the two tables here are generated from the same polarizations and emitted into the
layer's header, so the firmware (``hls/firmware/vitcod_attention.h``) never derives a position from
a value it read in an earlier iteration. Why it matters for the hardware: a memory read whose
ADDRESS depends on the previous iteration (the CSR walk's ``row_ptr[i + 1]`` behind the row-end
test) sits on the loop-carried path, read latency included, and forces II >= 2. Indexed by the
loop counter, the read is issued as early as the pipeline likes and II 1 holds.

* :class:`SlotTable` - per head, one word per KEPT entry, rows in order (the row's kept global
  columns by g, then its CSR non-zeros): ``row``, ``key`` (ORIGINAL key index), ``dense`` (score
  in ``s_dense[row][index]``) or sparse (``s_sparse[index]``), ``index``, and ``row_end`` on the
  row's last kept entry. The softmax / P x V loops read word ``it`` at iteration ``it``; their only
  carried state is the running max / sum / accumulator (an add or compare, no memory).
* :class:`SparseLaneTable` - the sparse engine's (row, column) pairs, lane-interleaved: non-zero
  ``nz`` of head ``h`` sits at ``h * trips_max * L + nz``, so lane ``l`` of trip ``t`` reads
  ``t * L + l`` and a ``cyclic factor=L`` partition gives every lane its own ROM bank (one read
  per bank per cycle). Padding words (the head's last trip) carry ``valid = 0``.

Words are unsigned integers (``ap_uint<width>`` in C++); the bit layouts are the layout classes'
and are emitted as constants of the config struct, so C++ and Python share them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ...model.polarize import HeadPolarization
from ..fixed_point import unsigned_bits_for

#: Read/write ports of one memory (true dual-port BRAM / LUTRAM, dual-port ROM).
MEMORY_PORTS = 2


@dataclass(frozen=True)
class SlotLayout:
    """Bit fields of one slot word, from the least significant bit: index, key, row, dense, row_end."""

    index_bits: int
    token_bits: int

    @property
    def key_lo(self) -> int:
        return self.index_bits

    @property
    def row_lo(self) -> int:
        return self.index_bits + self.token_bits

    @property
    def dense_bit(self) -> int:
        return self.index_bits + 2 * self.token_bits

    @property
    def row_end_bit(self) -> int:
        return self.dense_bit + 1

    @property
    def width(self) -> int:
        return self.row_end_bit + 1

    def pack(self, row, key, dense, index, row_end) -> np.ndarray:
        f = [np.asarray(x, dtype=np.uint64) for x in (row, key, dense, index, row_end)]
        row, key, dense, index, row_end = f
        return (index | (key << np.uint64(self.key_lo)) | (row << np.uint64(self.row_lo))
                | (dense << np.uint64(self.dense_bit)) | (row_end << np.uint64(self.row_end_bit)))

    def unpack(self, words) -> dict[str, np.ndarray]:
        w = np.asarray(words, dtype=np.uint64)

        def field(lo: int, bits: int) -> np.ndarray:
            return ((w >> np.uint64(lo)) & np.uint64((1 << bits) - 1)).astype(np.int64)

        return {"index": field(0, self.index_bits), "key": field(self.key_lo, self.token_bits),
                "row": field(self.row_lo, self.token_bits), "dense": field(self.dense_bit, 1).astype(bool),
                "row_end": field(self.row_end_bit, 1).astype(bool)}


@dataclass(frozen=True, eq=False)
class SlotTable:
    """Per head, the kept entries in walk order as packed words (padding words are 0, never read).

    Attributes:
        words: (H, slots_max) uint64.
        counts: (H,) kept entries (= slots walked) per head.
        layout: the word's bit fields.
    """

    words: np.ndarray
    counts: np.ndarray
    layout: SlotLayout

    @property
    def slots_max(self) -> int:
        return int(self.words.shape[1])

    def decode(self, head: int) -> dict[str, np.ndarray]:
        """The fields of head ``head``'s slots (only the ``counts[head]`` real ones)."""
        return self.layout.unpack(self.words[head, : int(self.counts[head])])


def slot_entries(pol: HeadPolarization) -> dict[str, np.ndarray]:
    """One head's kept entries in walk order: per query row its kept global columns (by g), then its
    CSR non-zeros (by flat position), each with the row, the ORIGINAL key index, dense/sparse, the
    score index (g, or the flat non-zero index) and the row-end flag."""
    n, g_count = pol.num_tokens, pol.num_global
    keep = np.asarray(pol.dense_keep, dtype=bool).reshape(n, g_count)
    gtok = np.asarray(pol.global_tokens, dtype=np.int64)
    row_ptr = np.asarray(pol.row_ptr, dtype=np.int64)
    cols = np.asarray(pol.permutation, dtype=np.int64)[np.asarray(pol.col_idx, dtype=np.int64)]
    rows, keys, dense, index, row_end = [], [], [], [], []
    for i in range(n):
        gs = np.flatnonzero(keep[i]) if g_count else np.zeros(0, dtype=np.int64)
        nzs = np.arange(row_ptr[i], row_ptr[i + 1])
        count = len(gs) + len(nzs)
        if count == 0:
            raise ValueError(f"query row {i} keeps no key; every row must keep at least one")
        rows += [i] * count
        keys += gtok[gs].tolist() + cols[nzs].tolist()
        dense += [1] * len(gs) + [0] * len(nzs)
        index += gs.tolist() + nzs.tolist()
        row_end += [0] * (count - 1) + [1]
    return {k: np.asarray(v, dtype=np.int64) for k, v in
            (("row", rows), ("key", keys), ("dense", dense), ("index", index), ("row_end", row_end))}


def build_slot_table(heads: list[HeadPolarization] | tuple) -> SlotTable:
    """The slot table of a layer (every head padded to the longest walk)."""
    n = heads[0].num_tokens
    g_max = max(1, max(p.num_global for p in heads))
    nnz_max = max(1, max(p.nnz_sparse for p in heads))
    layout = SlotLayout(index_bits=unsigned_bits_for(max(g_max, nnz_max) - 1), token_bits=unsigned_bits_for(n - 1))
    entries = [slot_entries(p) for p in heads]
    counts = np.array([len(e["row"]) for e in entries], dtype=np.int64)
    words = np.zeros((len(heads), int(counts.max())), dtype=np.uint64)
    for h, e in enumerate(entries):
        words[h, : counts[h]] = layout.pack(e["row"], e["key"], e["dense"], e["index"], e["row_end"])
    return SlotTable(words=words, counts=counts, layout=layout)


@dataclass(frozen=True)
class SparseLayout:
    """Bit fields of one sparse-engine word, from the least significant bit: row, column, valid."""

    token_bits: int

    @property
    def width(self) -> int:
        return 2 * self.token_bits + 1

    @property
    def valid_bit(self) -> int:
        return 2 * self.token_bits


@dataclass(frozen=True, eq=False)
class SparseLaneTable:
    """The sparse engine's (row, ORIGINAL column) pairs, lane-interleaved and flattened over heads.

    Attributes:
        words: (H * trips_max * lanes,) uint64; head h's non-zero nz at h * trips_max * lanes + nz.
        trips: (H,) pipelined iterations of each head, ceil(nnz_h / lanes).
        lanes: L, the sparse engine's lanes (the ``cyclic factor`` of the ROM).
        layout: the word's bit fields.
    """

    words: np.ndarray
    trips: np.ndarray
    lanes: int
    layout: SparseLayout

    @property
    def trips_max(self) -> int:
        return max(1, int(self.trips.max()))

    def decode(self, head: int) -> dict[str, np.ndarray]:
        """Head ``head``'s valid (row, col) pairs in non-zero order."""
        stride = self.trips_max * self.lanes
        w = self.words[head * stride: (head + 1) * stride]
        t = self.layout.token_bits
        valid = ((w >> np.uint64(self.layout.valid_bit)) & np.uint64(1)).astype(bool)
        row = (w & np.uint64((1 << t) - 1)).astype(np.int64)
        col = ((w >> np.uint64(t)) & np.uint64((1 << t) - 1)).astype(np.int64)
        return {"row": row[valid], "col": col[valid], "valid": valid}


def build_sparse_lane_table(heads, sparse_rows: list[np.ndarray], sparse_cols: list[np.ndarray],
                            lanes: int) -> SparseLaneTable:
    """The lane-interleaved sparse table of a layer (``sparse_rows/cols``: per head, flat CSR order)."""
    n = heads[0].num_tokens
    layout = SparseLayout(token_bits=unsigned_bits_for(n - 1))
    trips = np.array([math.ceil(p.nnz_sparse / lanes) for p in heads], dtype=np.int64)
    stride = max(1, int(trips.max())) * lanes
    words = np.zeros(len(heads) * stride, dtype=np.uint64)
    t = np.uint64(layout.token_bits)
    for h, (rows, cols) in enumerate(zip(sparse_rows, sparse_cols)):
        w = (np.asarray(rows, dtype=np.uint64) | (np.asarray(cols, dtype=np.uint64) << t)
             | (np.uint64(1) << np.uint64(layout.valid_bit)))
        words[h * stride: h * stride + len(w)] = w
    return SparseLaneTable(words=words, trips=trips, lanes=lanes, layout=layout)


def rom_uint(width: int) -> str:
    """C++ element type of a generated ROM of ``width``-bit words: ``vitcod::rom_uint<W>::type``
    (vitcod_common.h: ap_uint<W> under synthesis, a plain unsigned integer in C-simulation)."""
    if not isinstance(width, (int, np.integer)) or not 1 <= int(width) <= 64:
        raise ValueError(f"ROM word width must be 1..64 bits, got {width!r}")
    return f"vitcod::rom_uint<{int(width)}>::type"


def cpp_uint_literals(words) -> np.ndarray:
    """Unsigned integer literals (``123u``, or ``123ull`` beyond 32 bits) for ap_uint initializers."""
    return np.array([f"{int(w)}u" if int(w) < 2**32 else f"{int(w)}ull" for w in np.ravel(words)],
                    dtype=object).reshape(np.shape(words))
