"""Attention masks with the edge cases the engines must handle (shared by tests/hls)."""

from __future__ import annotations

import numpy as np


def edge_case_masks(n: int) -> np.ndarray:
    """(1 layer, 2 heads, n, n) keep-masks.

    Head 0: CLS column kept everywhere (a global token), rows 3-5 keep ONLY the CLS key, row 0 is
    fully dense, ~25% random elsewhere. Head 1: a band (key i and i+1) plus one fully dense row: no
    column reaches the global threshold, so the head has G = 0 (everything in the sparse engine).
    """
    rng = np.random.default_rng(3)
    m0 = rng.random((n, n)) < 0.25
    m0[:, 0] = True
    m0[0, :] = True
    m0[3:6] = False
    m0[3:6, 0] = True
    m1 = np.zeros((n, n), dtype=bool)
    idx = np.arange(n)
    m1[idx, idx] = True
    m1[idx[:-1], idx[:-1] + 1] = True
    m1[n - 1, :] = True
    m1[7] = False
    m1[7, 7] = True  # a row with a single, non-CLS key
    return np.stack([m0, m1])[None]
