"""Softmax / P x V lanes of the io_stream attention engine: the lane walk tables and the copy counts.

Where this fits: the io_parallel engine and a one-lane stream engine walk the slot table of
:mod:`.attention_tables` one kept entry per cycle. With ``softmax_lanes`` (row max and exp-sum
walks) or ``pv_lanes`` (P x V walk) = L > 1, :class:`~.attention_stream.StreamAttentionEngine`
emits a *lane walk table* built here from that same slot table (one source): every query row's
kept entries are cut into groups of L, in walk order, and ONE GROUP is one pipelined iteration.
A group never spans two rows, so the iteration's carried state is still one running max / sum /
accumulator, the row buffers (row max, row sum, 1/sum, the output row) are read or written once
per iteration, and only the score, exp and V reads multiply by L.

Lane ``l`` of group ``t`` of head ``h`` reads word ``h * trips_max + t`` of ROM bank ``l`` (one ROM
per lane, read at the loop counter). A word is the slot word (``SlotLayout``) plus a valid bit on
top; lane 0 of a group is always valid and carries the group's row and ``row_end`` (set on lane 0
of the row's LAST group only); padding lanes of a row's last group have ``valid = 0``.

Memory ports (2 per memory, :data:`~.attention_tables.MEMORY_PORTS`): L lanes read L scores, L exp
entries and (P x V) L rows of V per cycle, so the engine keeps ``ceil(L / 2)`` copies of each of
those memories (lane ``l`` reads copy ``l % copies``): :func:`walk_copies`.

Cost of the row alignment: a row with k kept entries takes ceil(k / L) iterations instead of k / L
(every row at least one), :attr:`WalkLaneTable.trips` has the exact counts per head.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .attention_tables import MEMORY_PORTS, SlotTable


def walk_copies(lanes: int, ports: int = MEMORY_PORTS) -> int:
    """Copies of a memory that ``lanes`` lanes read once each per cycle: no copy serves more than ``ports``."""
    return max(1, math.ceil(lanes / ports))


@dataclass(frozen=True, eq=False)
class WalkLaneTable:
    """One walk's lane table (all heads).

    Attributes:
        words: (lanes, H * trips_max) uint64, bank l = lane l's ROM; head h's group t at h * trips_max + t.
        trips: (H,) groups (pipelined iterations) of each head.
        lanes: L.
        width: bits of a word (slot word + valid bit).
    """

    words: np.ndarray
    trips: np.ndarray
    lanes: int
    width: int

    @property
    def trips_max(self) -> int:
        return max(1, int(self.trips.max()))

    @property
    def valid_bit(self) -> int:
        return self.width - 1

    def valid(self) -> np.ndarray:
        """(lanes, H * trips_max) bool: which lane words carry a kept entry."""
        return ((self.words >> np.uint64(self.valid_bit)) & np.uint64(1)).astype(bool)


def build_walk_lane_table(slots: SlotTable, lanes: int) -> WalkLaneTable:
    """Group every row's kept entries (walk order) by ``lanes``; see the module docstring."""
    if lanes < 1:
        raise ValueError(f"lanes must be >= 1, got {lanes}")
    layout = slots.layout
    row_end_mask = np.uint64(1) << np.uint64(layout.row_end_bit)
    valid = np.uint64(1) << np.uint64(layout.width)
    per_head: list[list[np.ndarray]] = []
    for h in range(slots.words.shape[0]):
        count = int(slots.counts[h])
        words = slots.words[h, :count]
        ends = np.flatnonzero(slots.decode(h)["row_end"])
        groups: list[np.ndarray] = []
        start = 0
        for end in ends:
            row = (words[start:end + 1] & ~row_end_mask) | valid
            for g0 in range(0, len(row), lanes):
                group = np.zeros(lanes, dtype=np.uint64)
                chunk = row[g0:g0 + lanes]
                group[:len(chunk)] = chunk
                if g0 + lanes >= len(row):
                    group[0] |= row_end_mask
                groups.append(group)
            start = end + 1
        per_head.append(groups)
    trips = np.array([len(g) for g in per_head], dtype=np.int64)
    trips_max = max(1, int(trips.max()))
    words = np.zeros((lanes, len(per_head) * trips_max), dtype=np.uint64)
    for h, groups in enumerate(per_head):
        if groups:
            words[:, h * trips_max: h * trips_max + len(groups)] = np.stack(groups, axis=1)
    return WalkLaneTable(words=words, trips=trips, lanes=lanes, width=layout.width + 1)
