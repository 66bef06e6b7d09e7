"""Tests for vitcod.model.polarize: CSR round trip, edge cases, and output invariance."""

from __future__ import annotations

import numpy as np
import pytest

from vitcod.model.polarize import HeadPolarization, polarize, polarize_head


def random_mask(n: int, density: float, seed: int) -> np.ndarray:
    """A keep-mask with the CLS row and column kept and a few dense 'global' columns."""
    rng = np.random.default_rng(seed)
    mask = rng.random((n, n)) < density
    mask[:, rng.choice(n, size=3, replace=False)] |= rng.random((n, 3)) < 0.9
    mask[0, :] = True
    mask[:, 0] = True
    return mask


def check_structure(hp: HeadPolarization, mask: np.ndarray) -> None:
    n = mask.shape[0]
    g = hp.num_global
    np.testing.assert_array_equal(hp.to_mask(), mask)
    np.testing.assert_array_equal(np.sort(hp.permutation), np.arange(n))
    np.testing.assert_array_equal(hp.permutation[:g], hp.global_tokens)
    assert hp.row_ptr[0] == 0 and hp.row_ptr[-1] == hp.nnz_sparse
    assert np.all(np.diff(hp.row_ptr) >= 0)
    assert np.all(hp.col_idx >= g) and np.all(hp.col_idx < n)
    assert hp.nnz_dense + hp.nnz_sparse == int(mask.sum())
    assert hp.dense_keep.shape == (n, g)
    for dtype_array in (hp.permutation, hp.global_tokens, hp.row_ptr, hp.col_idx):
        assert dtype_array.dtype == np.int32


@pytest.mark.parametrize("threshold", [0.5, 0.1, 1.0, 3])
@pytest.mark.parametrize("density", [0.05, 0.3, 0.8])
@pytest.mark.parametrize("seed", [0, 1])
def test_csr_round_trip_random(threshold, density, seed):
    mask = random_mask(24, density, seed)
    hp = polarize_head(mask, threshold)
    check_structure(hp, mask)
    min_rows = threshold if isinstance(threshold, int) else int(np.ceil(threshold * 24 - 1e-9))
    np.testing.assert_array_equal(hp.global_tokens, np.flatnonzero(mask.sum(axis=0) >= min_rows))


def test_rows_with_only_the_cls_key():
    mask = np.zeros((8, 8), dtype=bool)
    mask[:, 0] = True  # every query keeps only CLS ...
    mask[0, :] = True  # ... except the CLS row itself
    hp = polarize_head(mask, 0.5)
    check_structure(hp, mask)
    np.testing.assert_array_equal(hp.global_tokens, [0])
    assert hp.nnz_sparse == 7  # the CLS row's 7 non-global keys
    np.testing.assert_array_equal(np.diff(hp.row_ptr), [7, 0, 0, 0, 0, 0, 0, 0])


def test_fully_dense_rows_and_fully_dense_head():
    mask = random_mask(10, 0.1, 3)
    mask[[2, 5], :] = True
    check_structure(polarize_head(mask, 0.5), mask)
    full = np.ones((10, 10), dtype=bool)
    hp = polarize_head(full, 0.5)
    check_structure(hp, full)
    assert hp.num_global == 10 and hp.nnz_sparse == 0 and hp.dense_ratio == 1.0


def test_no_global_token_when_threshold_above_every_density():
    mask = np.eye(6, dtype=bool)
    mask[:, 0] = True
    mask[5, 0] = False  # no column is kept by all 6 rows
    hp = polarize_head(mask, 1.0)
    check_structure(hp, mask)
    assert hp.num_global == 0
    assert hp.dense_keep.shape == (6, 0)
    np.testing.assert_array_equal(hp.permutation, np.arange(6))
    assert hp.nnz_sparse == int(mask.sum())
    assert hp.dense_ratio == 0.0


def test_head_with_no_sparse_part():
    mask = np.zeros((6, 6), dtype=bool)
    mask[:, [0, 3]] = True
    hp = polarize_head(mask, 1.0)
    check_structure(hp, mask)
    np.testing.assert_array_equal(hp.global_tokens, [0, 3])
    np.testing.assert_array_equal(hp.permutation, [0, 3, 1, 2, 4, 5])
    assert hp.nnz_sparse == 0 and hp.col_idx.shape == (0,)
    np.testing.assert_array_equal(hp.row_ptr, np.zeros(7))
    assert hp.dense_ratio == 1.0


@pytest.mark.parametrize("threshold", [0.5, 0.2])
def test_dense_ratio_formula(threshold):
    mask = random_mask(20, 0.2, 4)
    hp = polarize_head(mask, threshold)
    g, n = hp.num_global, 20
    sparse_nnz = int(mask[:, np.setdiff1d(np.arange(n), hp.global_tokens)].sum())
    assert hp.nnz_sparse == sparse_nnz
    assert hp.dense_ratio == pytest.approx(g * n / (sparse_nnz + g * n))


def test_polarize_all_heads():
    masks = np.stack([np.stack([random_mask(12, 0.3, 10 * l + h) for h in range(3)]) for l in range(2)])
    result = polarize(masks, 0.5)
    assert len(result) == 2 and all(len(layer) == 3 for layer in result)
    for l in range(2):
        for h in range(3):
            check_structure(result[l][h], masks[l, h])


# --------------------------------------------------------------------------- invariance
def masked_attention(q: np.ndarray, k: np.ndarray, v: np.ndarray, mask: np.ndarray) -> np.ndarray:
    scores = np.where(mask, q @ k.T / np.sqrt(q.shape[1]), -np.inf)
    probs = np.exp(scores - scores.max(axis=1, keepdims=True))
    return (probs / probs.sum(axis=1, keepdims=True)) @ v


def polarized_attention(q, k, v, hp: HeadPolarization) -> np.ndarray:
    """Attention as the two engines compute it: dense global block + CSR sparse block."""
    k_p, v_p = k[hp.permutation], v[hp.permutation]
    g, scale = hp.num_global, 1.0 / np.sqrt(q.shape[1])
    out = np.zeros_like(v)
    for i in range(q.shape[0]):
        cols = hp.col_idx[hp.row_ptr[i]: hp.row_ptr[i + 1]]
        dense = np.where(hp.dense_keep[i], k_p[:g] @ q[i] * scale, -np.inf)
        sparse = k_p[cols] @ q[i] * scale
        row = np.concatenate([dense, sparse])
        p = np.exp(row - row.max())
        out[i] = (p / p.sum()) @ np.concatenate([v_p[:g], v_p[cols]])
    return out


@pytest.mark.parametrize("threshold", [0.5, 0.25, 1.0])
def test_permuting_k_and_v_leaves_attention_unchanged(threshold):
    rng = np.random.default_rng(11)
    n, d = 32, 8
    q, k, v = (rng.normal(size=(n, d)).astype(np.float32) for _ in range(3))
    mask = random_mask(n, 0.15, 12)
    hp = polarize_head(mask, threshold)
    reference = masked_attention(q, k, v, mask)
    perm = hp.permutation
    permuted = masked_attention(q, k[perm], v[perm], mask[:, perm])
    two_engines = polarized_attention(q, k, v, hp)
    # The same kept terms are summed in a different order, so float32 results agree
    # only up to rounding (~1e-7 relative per term), not bit for bit.
    np.testing.assert_allclose(permuted, reference, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(two_engines, reference, rtol=1e-5, atol=1e-6)
    # and the check has teeth: a different mask gives a different output
    other = mask.copy()
    other[5, np.flatnonzero(mask[5])[-1]] = False
    assert not np.allclose(masked_attention(q, k, v, other), reference, atol=1e-3)
