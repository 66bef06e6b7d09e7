"""Polarization of fixed attention masks into a dense and a sparse part (ViTCoD step 5).

Per head, a key column's *density* is how many query rows keep it. Columns whose
density reaches a threshold are *global tokens*: they are moved to the left of the
key order and form the DENSER block (every query row x G global columns, computed
densely by the dense engine, with a keep bit per entry so pruned entries still
contribute exactly 0). Everything else forms the SPARSER block, stored as CSR over
the query rows with column indices in the *permuted* key order (so every sparse
column index is >= G).

Permuting K and V rows together by ``permutation`` leaves the attention output
unchanged; this module only re-arranges the mask, it never changes which entries
are kept. The hardware step (vitcod.hls) compiles these arrays in as constants.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class HeadPolarization:
    """The polarized form of one head's (N, N) keep-mask.

    Attributes:
        permutation: (N,) int32; ``permutation[p]`` is the original key index at
            permuted position ``p``. Global tokens come first, each group in
            ascending original order.
        global_tokens: (G,) int32 original key indices of the dense columns.
        dense_keep: (N, G) bool; which (query, global column) entries are kept.
        row_ptr: (N + 1,) int32 CSR row pointers of the sparse part.
        col_idx: (nnz_sparse,) int32 CSR column indices in PERMUTED positions (>= G).
    """

    permutation: np.ndarray
    global_tokens: np.ndarray
    dense_keep: np.ndarray
    row_ptr: np.ndarray
    col_idx: np.ndarray

    @property
    def num_tokens(self) -> int:
        return int(self.permutation.shape[0])

    @property
    def num_global(self) -> int:
        return int(self.global_tokens.shape[0])

    @property
    def nnz_dense(self) -> int:
        return int(self.dense_keep.sum())

    @property
    def nnz_sparse(self) -> int:
        return int(self.col_idx.shape[0])

    @property
    def dense_ratio(self) -> float:
        """Share of the work in the dense engine: G*N / (nnz_sparse + G*N)."""
        dense_work = self.num_global * self.num_tokens
        total = self.nnz_sparse + dense_work
        return float(dense_work / total) if total else 0.0

    def to_mask(self) -> np.ndarray:
        """Rebuild the (N, N) keep-mask in the ORIGINAL key order."""
        n = self.num_tokens
        mask = np.zeros((n, n), dtype=bool)
        mask[:, self.global_tokens] = self.dense_keep
        rows = np.repeat(np.arange(n), np.diff(self.row_ptr))
        mask[rows, self.permutation[self.col_idx]] = True
        return mask


def global_threshold_count(threshold: float | int, num_tokens: int) -> int:
    """Turn a threshold into a row count: an int is absolute, a float in (0, 1] a fraction of N."""
    if isinstance(threshold, (bool, np.bool_)):
        raise TypeError(f"threshold must be an int count or a float fraction, got {threshold!r}")
    if isinstance(threshold, (int, np.integer)):
        if threshold < 1:
            raise ValueError(f"absolute threshold must be >= 1 query row, got {threshold}")
        return int(threshold)
    threshold = float(threshold)
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"fractional threshold must be in (0, 1], got {threshold}")
    return max(1, math.ceil(threshold * num_tokens - 1e-9))


def polarize_head(mask: np.ndarray, threshold: float | int = 0.5) -> HeadPolarization:
    """Split one head's (N, N) keep-mask into global (dense) columns and a CSR sparse part.

    Args:
        mask: (N, N) bool, True = keep; rows are queries, columns keys.
        threshold: columns kept by at least this many rows (int) or this fraction of
            the N rows (float) become global tokens.
    """
    mask = np.asarray(mask)
    if mask.ndim != 2 or mask.shape[0] != mask.shape[1]:
        raise ValueError(f"expected a square (N, N) mask, got shape {mask.shape}")
    if mask.dtype != np.bool_:
        raise TypeError(f"expected a bool mask, got dtype {mask.dtype}")
    n = mask.shape[0]
    min_rows = global_threshold_count(threshold, n)
    density = mask.sum(axis=0)
    is_global = density >= min_rows
    global_tokens = np.flatnonzero(is_global).astype(np.int32)
    others = np.flatnonzero(~is_global).astype(np.int32)
    permutation = np.concatenate([global_tokens, others]).astype(np.int32)

    permuted = mask[:, permutation]
    sparse_part = permuted[:, len(global_tokens):]
    counts = sparse_part.sum(axis=1)
    row_ptr = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(counts, out=row_ptr[1:])
    _, cols = np.nonzero(sparse_part)  # row-major order, so grouped by row
    col_idx = (cols + len(global_tokens)).astype(np.int32)
    return HeadPolarization(
        permutation=permutation,
        global_tokens=global_tokens,
        dense_keep=permuted[:, : len(global_tokens)].copy(),
        row_ptr=row_ptr,
        col_idx=col_idx,
    )


def polarize(masks: np.ndarray, threshold: float | int = 0.5) -> list[list[HeadPolarization]]:
    """Polarize every head of a (layers, heads, N, N) keep-mask; returns [layer][head]."""
    masks = np.asarray(masks)
    if masks.ndim != 4:
        raise ValueError(f"expected masks of shape (layers, heads, N, N), got {masks.shape}")
    return [[polarize_head(head, threshold) for head in layer] for layer in masks]
