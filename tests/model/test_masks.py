"""Tests for vitcod.model.masks: the info rule, the sparsity search and the statistics."""

from __future__ import annotations

import json

import numpy as np
import pytest

from vitcod.model.masks import (
    AttentionStatistics,
    format_sparsity_table,
    info_mask,
    mask_for_sparsity,
    sparsity,
    sparsity_report,
)


def dirichlet_maps(layers: int, heads: int, n: int, alpha: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.dirichlet(np.full(n, alpha), size=(layers, heads, n))


def reference_info_mask(attn: np.ndarray, info_cut: float) -> np.ndarray:
    """Row-by-row loop version of the rule, written independently of the vectorised one."""
    mask = np.zeros(attn.shape, dtype=bool)
    for index in np.ndindex(*attn.shape[:3]):
        row = attn[index]
        order = sorted(range(len(row)), key=lambda j: (-row[j], j))  # ties: lower j first
        total = 0.0
        for j in order:
            mask[index + (j,)] = True
            total += row[j]
            if total >= info_cut - 1e-9:
                break
    mask[:, :, 0, :] = True
    mask[:, :, :, 0] = True
    return mask


# --------------------------------------------------------------------------- info rule
def hand_map() -> np.ndarray:
    """One head, N = 4, exact binary fractions so the sums are exact."""
    return np.array(
        [
            [0.25, 0.25, 0.25, 0.25],  # CLS row: always fully kept
            [0.125, 0.5, 0.25, 0.125],  # ordinary row
            [0.0, 0.25, 0.25, 0.5],  # tie between keys 1 and 2
            [1.0, 0.0, 0.0, 0.0],  # all mass on CLS
        ]
    )[None, None]


@pytest.mark.parametrize(
    "info_cut, expected_rows",
    [
        # cut 0: only each row's largest entry (+ the CLS column)
        (0.0, [[1, 1, 1, 1], [1, 1, 0, 0], [1, 0, 0, 1], [1, 0, 0, 0]]),
        # cut 0.5: row 1 reaches it with key 1 alone; row 2 with key 3 alone
        (0.5, [[1, 1, 1, 1], [1, 1, 0, 0], [1, 0, 0, 1], [1, 0, 0, 0]]),
        # cut 0.6: row 2 needs one of the tied keys 1/2 -> the lower index, key 1
        (0.6, [[1, 1, 1, 1], [1, 1, 1, 0], [1, 1, 0, 1], [1, 0, 0, 0]]),
        # cut 0.75: row 1 = 0.5 + 0.25 reaches exactly (>=), key 3 stays pruned
        (0.75, [[1, 1, 1, 1], [1, 1, 1, 0], [1, 1, 0, 1], [1, 0, 0, 0]]),
        # cut 1: everything with probability > 0; row 3 still keeps only CLS
        (1.0, [[1, 1, 1, 1], [1, 1, 1, 1], [1, 1, 1, 1], [1, 0, 0, 0]]),
    ],
)
def test_info_mask_known_answers(info_cut, expected_rows):
    mask = info_mask(hand_map(), info_cut)
    assert mask.dtype == np.bool_
    np.testing.assert_array_equal(mask[0, 0], np.array(expected_rows, dtype=bool))


def test_tie_between_equal_entries_keeps_lower_index():
    attn = np.full((1, 1, 5, 5), 0.2)
    mask = info_mask(attn, 0.5)  # needs 3 of 5 equal entries: keys 0, 1, 2
    np.testing.assert_array_equal(mask[0, 0, 1:], np.tile([True, True, True, False, False], (4, 1)))


def test_tie_ignores_ordering_of_the_input_row():
    attn = np.zeros((1, 1, 4, 4))
    attn[0, 0, :] = [0.0, 0.4, 0.2, 0.4]
    mask = info_mask(attn, 0.3)  # 0.4 tie between keys 1 and 3 -> key 1 only
    np.testing.assert_array_equal(mask[0, 0, 2], [True, True, False, False])


@pytest.mark.parametrize("info_cut", [0.0, 0.1, 0.37, 0.5, 0.83, 0.99, 1.0])
def test_info_mask_matches_row_by_row_reference(info_cut):
    attn = dirichlet_maps(2, 2, 9, alpha=0.4, seed=3)
    np.testing.assert_array_equal(info_mask(attn, info_cut), reference_info_mask(attn, info_cut))


@pytest.mark.parametrize("info_cut", [0.0, 0.3, 0.9])
def test_cls_row_and_column_always_kept(info_cut):
    attn = dirichlet_maps(3, 2, 16, alpha=0.1, seed=1)
    attn[:, :, :, 0] = 0.0  # no mass on CLS at all: the column must still be kept
    attn /= attn.sum(axis=-1, keepdims=True)
    mask = info_mask(attn, info_cut)
    assert mask[:, :, 0, :].all()
    assert mask[:, :, :, 0].all()


def test_cut_zero_keeps_one_entry_plus_cls():
    attn = dirichlet_maps(2, 3, 20, alpha=0.3, seed=2)
    kept = info_mask(attn, 0.0)[:, :, 1:, 1:].sum(axis=-1)
    argmax_is_cls = attn[:, :, 1:].argmax(axis=-1) == 0
    np.testing.assert_array_equal(kept, np.where(argmax_is_cls, 0, 1))


def test_sparsity_decreases_with_info_cut():
    attn = dirichlet_maps(2, 2, 32, alpha=0.2, seed=4)
    values = [sparsity(info_mask(attn, c)) for c in np.linspace(0, 1, 21)]
    assert all(a >= b for a, b in zip(values, values[1:]))
    assert values[0] > values[-1]


@pytest.mark.parametrize("bad", [-0.01, 1.5, float("nan")])
def test_info_cut_out_of_range_rejected(bad):
    with pytest.raises(ValueError, match=r"info_cut.*" + (r"nan" if bad != bad else str(bad))):
        info_mask(hand_map(), bad)


def test_attention_that_is_not_a_distribution_rejected():
    with pytest.raises(ValueError, match="sum to 1"):
        info_mask(np.full((1, 1, 4, 4), 0.5), 0.5)
    with pytest.raises(ValueError, match="shape"):
        info_mask(np.full((1, 4, 4), 0.25), 0.5)


# --------------------------------------------------------------------------- sparsity
def test_sparsity_value_and_report():
    mask = np.ones((2, 2, 4, 4), dtype=bool)
    mask[0, 1, 1:, 1:] = False  # 9 of 16 pruned in head (0, 1)
    mask[1, 0, 3, 2] = False  # 1 of 16 pruned in head (1, 0)
    assert sparsity(mask) == pytest.approx(10 / 64)
    report = sparsity_report(mask)
    json.dumps(report)  # JSON-serialisable
    assert report["shape"] == [2, 2, 4, 4]
    assert report["overall"] == pytest.approx(10 / 64)
    assert report["per_layer"] == pytest.approx([9 / 32, 1 / 32])
    assert report["per_head"][0] == pytest.approx([0.0, 9 / 16])
    assert report["per_head"][1] == pytest.approx([1 / 16, 0.0])
    table = format_sparsity_table(report)
    assert "56.25%" in table and "15.62%" in table
    assert len(table.splitlines()) == 1 + 2 + 1  # header, 2 layers, overall


def test_sparsity_rejects_non_bool():
    with pytest.raises(TypeError, match="bool"):
        sparsity(np.ones((1, 1, 2, 2), dtype=np.uint8))


@pytest.mark.parametrize("target", [0.8, 0.9, 0.95])
def test_bisection_reaches_target(target):
    attn = dirichlet_maps(2, 3, 197, alpha=0.1, seed=0)
    mask, info_cut = mask_for_sparsity(attn, target)
    assert abs(sparsity(mask) - target) <= 0.005
    assert 0.0 <= info_cut <= 1.0
    np.testing.assert_array_equal(mask, info_mask(attn, info_cut))


def test_target_above_maximum_is_unreachable():
    attn = dirichlet_maps(1, 2, 20, alpha=0.3, seed=5)
    maximum = sparsity(info_mask(attn, 0.0))
    with pytest.raises(ValueError, match=f"maximum achievable sparsity is {maximum:.4f}"):
        mask_for_sparsity(attn, 0.97)


def test_target_on_a_jump_reports_closest():
    # Uniform rows: every non-CLS row keeps k = 1..4 keys together, so the sparsity
    # only takes the values 9/16, 6/16, 3/16, 0 and 0.47 falls between two of them.
    attn = np.full((1, 1, 4, 4), 0.25)
    with pytest.raises(ValueError, match=r"closest achievable sparsity is 0\.5625"):
        mask_for_sparsity(attn, 0.47)


@pytest.mark.parametrize("bad", [0.0, 1.0, -0.2, 1.3])
def test_target_outside_open_interval_rejected(bad):
    with pytest.raises(ValueError, match="target_sparsity"):
        mask_for_sparsity(hand_map(), bad)


# --------------------------------------------------------------------------- statistics
def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def test_statistics_equal_mean_of_all_batches():
    rng = np.random.default_rng(7)
    batches = [softmax(rng.normal(size=(b, 2, 3, 6, 6))).astype(np.float32) for b in (3, 5, 1, 4)]
    stats = AttentionStatistics()
    for batch in batches:
        stats.update(batch)
    expected = np.concatenate(batches).astype(np.float64).mean(axis=0)
    mean = stats.mean()
    assert mean.dtype == np.float32 and mean.shape == (2, 3, 6, 6)
    assert stats.count == 13
    # float32 output of a float64 mean: equal to float32 rounding
    np.testing.assert_allclose(mean, expected, rtol=1e-6, atol=1e-7)
    # only the running sum is held, never the maps
    held = [v for v in vars(stats).values() if isinstance(v, np.ndarray)]
    assert sum(a.nbytes for a in held) == 2 * 3 * 6 * 6 * 8


def test_statistics_per_layer_list_and_save_load(tmp_path):
    rng = np.random.default_rng(8)
    batches = [softmax(rng.normal(size=(4, 3, 2, 5, 5))) for _ in range(3)]
    whole = AttentionStatistics()
    per_layer = AttentionStatistics()
    for batch in batches:
        whole.update(batch)
        per_layer.update([batch[:, layer] for layer in range(batch.shape[1])])
    np.testing.assert_array_equal(whole.mean(), per_layer.mean())

    path = per_layer.save(tmp_path / "stats.npz")
    loaded = AttentionStatistics.load(path)
    assert loaded.count == 12
    np.testing.assert_array_equal(loaded.mean(), per_layer.mean())
    loaded.update(batches[0])  # continues accumulating after load
    assert loaded.count == 16


def test_statistics_errors():
    stats = AttentionStatistics()
    with pytest.raises(ValueError, match="no batch"):
        stats.mean()
    stats.update(np.full((2, 1, 1, 3, 3), 1 / 3))
    with pytest.raises(ValueError, match=r"\(1, 1, 3, 3\)"):
        stats.update(np.full((2, 1, 1, 4, 4), 1 / 4))
    with pytest.raises(ValueError, match="batch, layers, heads"):
        stats.update(np.full((1, 3, 3), 1 / 3))
