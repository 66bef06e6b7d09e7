"""Fixed attention masks from attention statistics (ViTCoD steps 2 and 3).

How this module fits the flow::

    trained model --(AttentionStatistics.update, batch by batch)--> mean attention
        (layers, heads, N, N)
    mean attention --(info_mask / mask_for_sparsity)--> keep-mask (layers, heads, N, N)
    keep-mask --(vitcod.model.mask_artifact.save_mask_artifact)--> masks.npz

The "info" rule (the one the ViTCoD paper uses): for every layer l, head h and
query row i, sort the row's mean attention probabilities in descending order and
keep the smallest prefix whose cumulative probability reaches ``info_cut``; the
rest of the row is pruned. Token 0 is CLS: the CLS query row and the CLS key
column are always kept. Sparsity is therefore not uniform across heads; the
overall sparsity is steered by ``info_cut``, and :func:`mask_for_sparsity`
searches it by bisection to hit a requested overall sparsity.

Everything here is pure numpy (no TensorFlow), so it runs anywhere.
Masks use True = keep throughout.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from ..fileio import atomic_write
from ..user_errors import UserError, read_npz

logger = logging.getLogger(__name__)

CLS_TOKEN = 0
"""Index of the CLS token, whose row and column are always kept."""

CUMULATIVE_TOLERANCE = 1e-9
"""A prefix "reaches" ``info_cut`` when its float64 cumulative sum is
>= ``info_cut - CUMULATIVE_TOLERANCE``; this absorbs float rounding of sums such
as 0.7 + 0.1 (= 0.7999999999999999), it is far below any meaningful probability."""

ROW_SUM_TOLERANCE = 1e-3
"""Rows of a mean softmax map must sum to 1 within this tolerance."""


# --------------------------------------------------------------------------- info rule
def _validate_attention(attn_mean: np.ndarray) -> np.ndarray:
    attn = np.asarray(attn_mean)
    if attn.ndim != 4 or attn.shape[2] != attn.shape[3]:
        raise ValueError(f"attn_mean: expected shape (layers, heads, N, N), got {attn.shape}")
    if not np.issubdtype(attn.dtype, np.floating):
        raise TypeError(f"attn_mean: expected a float array, got dtype {attn.dtype}")
    if attn.size == 0:
        raise ValueError(f"attn_mean: expected a non-empty array, got shape {attn.shape}")
    attn = attn.astype(np.float64, copy=False)
    if not np.all(np.isfinite(attn)):
        raise ValueError("attn_mean: expected finite probabilities, got NaN or inf")
    if attn.min() < 0.0:
        raise ValueError(f"attn_mean: expected probabilities >= 0, got minimum {attn.min():.3g}")
    row_sums = attn.sum(axis=-1)
    worst = float(np.abs(row_sums - 1.0).max())
    if worst > ROW_SUM_TOLERANCE:
        raise ValueError(
            f"attn_mean: expected every row to sum to 1 (mean softmax), "
            f"got a row sum off by {worst:.3g}"
        )
    return attn


def _validate_info_cut(info_cut: float) -> float:
    try:
        cut = float(info_cut)
    except (TypeError, ValueError):
        raise ValueError(f"info_cut must be a number in [0, 1], got {info_cut!r}") from None
    if not 0.0 <= cut <= 1.0:  # also rejects NaN
        raise ValueError(f"info_cut must be in [0, 1], got {info_cut!r}")
    return cut


class _SortedRows:
    """Rows sorted once (descending, stable) so masks for many cut-offs are cheap."""

    def __init__(self, attn: np.ndarray) -> None:
        # Stable argsort of the negated values = descending order with ties broken
        # by the LOWER key index first.
        self.order = np.argsort(-attn, axis=-1, kind="stable")
        self.cumulative = np.cumsum(np.take_along_axis(attn, self.order, axis=-1), axis=-1)

    def mask(self, info_cut: float) -> np.ndarray:
        n = self.order.shape[-1]
        # Entries whose running sum is still below the cut form a prefix; the kept
        # prefix is that plus the entry that reaches the cut (at least one entry).
        below = self.cumulative < info_cut - CUMULATIVE_TOLERANCE
        keep_count = np.minimum(below.sum(axis=-1) + 1, n)
        keep_sorted = np.arange(n) < keep_count[..., None]
        mask = np.zeros(self.order.shape, dtype=bool)
        np.put_along_axis(mask, self.order, keep_sorted, axis=-1)
        mask[:, :, CLS_TOKEN, :] = True
        mask[:, :, :, CLS_TOKEN] = True
        return mask


def info_mask(attn_mean: np.ndarray, info_cut: float) -> np.ndarray:
    """Keep-mask from mean attention by the "info" rule.

    For every (layer, head, query row) the row is sorted in descending order and
    the smallest prefix whose cumulative probability reaches ``info_cut`` is kept
    (at least one entry, so ``info_cut=0`` keeps each row's largest entry).
    "Reaches" means ``>= info_cut`` up to :data:`CUMULATIVE_TOLERANCE`.

    Ties are broken deterministically: the sort is stable on descending value, so
    among equal probabilities the LOWER key index comes first (and is kept first).

    The CLS query row (i = 0, every key) and the CLS key column (j = 0, every
    query) are always kept, whatever ``info_cut`` is.

    Parameters
    ----------
    attn_mean : np.ndarray
        Float (layers, heads, N, N): mean softmax probability of every
        (layer, head, query i, key j); every row sums to ~1.
    info_cut : float
        Cumulative-probability cut-off in [0, 1].

    Returns
    -------
    np.ndarray
        Bool (layers, heads, N, N), True = keep.

    Raises
    ------
    ValueError
        If ``info_cut`` is outside [0, 1] or ``attn_mean`` is not a valid map.
    """
    cut = _validate_info_cut(info_cut)
    return _SortedRows(_validate_attention(attn_mean)).mask(cut)


# --------------------------------------------------------------------------- sparsity
def _validate_mask(mask: np.ndarray) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.dtype != np.bool_:
        raise TypeError(f"mask: expected dtype bool (True = keep), got {mask.dtype}")
    if mask.ndim != 4 or mask.shape[2] != mask.shape[3]:
        raise ValueError(f"mask: expected shape (layers, heads, N, N), got {mask.shape}")
    if mask.size == 0:
        raise ValueError(f"mask: expected a non-empty array, got shape {mask.shape}")
    return mask


def sparsity(mask: np.ndarray) -> float:
    """Overall fraction of pruned entries of a bool (layers, heads, N, N) keep-mask."""
    mask = _validate_mask(mask)
    return float(1.0 - mask.mean())


def mask_for_sparsity(
    attn_mean: np.ndarray,
    target_sparsity: float,
    tolerance: float = 0.005,
    max_iter: int = 60,
) -> tuple[np.ndarray, float]:
    """Search ``info_cut`` by bisection so the info mask hits an overall sparsity.

    Sparsity decreases monotonically as ``info_cut`` grows (a larger cut keeps a
    longer prefix of every row), so bisection on [0, 1] converges.

    Parameters
    ----------
    attn_mean : np.ndarray
        Float (layers, heads, N, N) mean attention, see :func:`info_mask`.
    target_sparsity : float
        Requested overall fraction of pruned entries, in (0, 1).
    tolerance : float
        Accept any sparsity within ``target_sparsity +- tolerance``.
    max_iter : int
        Maximum number of bisection steps.

    Returns
    -------
    tuple[np.ndarray, float]
        The bool keep-mask and the ``info_cut`` that produced it.

    Raises
    ------
    ValueError
        If the target is outside (0, 1), or cannot be reached within the
        tolerance (above the maximum sparsity the CLS rule and "keep at least
        one entry per row" allow, below the sparsity at ``info_cut=1``, or
        skipped by a jump of the step function); the message gives the closest
        achievable sparsity and its ``info_cut``.
    """
    target = float(target_sparsity)
    if not 0.0 < target < 1.0:
        raise UserError("a target sparsity in (0, 1)", repr(target_sparsity), "target_sparsity")
    if not tolerance > 0.0:
        raise ValueError(f"tolerance must be > 0, got {tolerance!r}")
    if max_iter < 1:
        raise ValueError(f"max_iter must be >= 1, got {max_iter!r}")
    rows = _SortedRows(_validate_attention(attn_mean))

    def evaluate(cut: float) -> tuple[np.ndarray, float]:
        mask = rows.mask(cut)
        return mask, float(1.0 - mask.mean())

    lo, hi = 0.0, 1.0  # sparsity(lo) is the largest, sparsity(hi) the smallest
    mask_lo, s_lo = evaluate(lo)
    mask_hi, s_hi = evaluate(hi)
    for cut, mask, s in ((lo, mask_lo, s_lo), (hi, mask_hi, s_hi)):
        if abs(s - target) <= tolerance:
            logger.info("info_cut=%.6f gives sparsity %.4f (target %.4f)", cut, s, target)
            return mask, cut
    if s_lo < target - tolerance:
        raise UserError(
            f"a target sparsity these statistics can reach: the maximum achievable sparsity is {s_lo:.4f} "
            "(info_cut=0; the CLS row/column and one entry per row are always kept)",
            f"{target:.4f}", "target_sparsity")
    if s_hi > target + tolerance:
        raise UserError(
            f"a target sparsity these statistics can reach: the minimum achievable sparsity is {s_hi:.4f} "
            "(info_cut=1)", f"{target:.4f}", "target_sparsity")

    best_cut, best_s = (lo, s_lo) if abs(s_lo - target) < abs(s_hi - target) else (hi, s_hi)
    for step in range(max_iter):
        mid = 0.5 * (lo + hi)
        mask, s = evaluate(mid)
        logger.debug("bisection step %d: info_cut=%.6f sparsity=%.4f", step, mid, s)
        if abs(s - target) <= tolerance:
            logger.info("info_cut=%.6f gives sparsity %.4f (target %.4f)", mid, s, target)
            return mask, mid
        if abs(s - target) < abs(best_s - target):
            best_cut, best_s = mid, s
        if s > target:
            lo = mid  # too sparse: keep more
        else:
            hi = mid
    raise UserError(
        f"a target sparsity these statistics can reach within +- {tolerance:.4f} (sparsity jumps over it "
        f"as info_cut changes): the closest achievable sparsity is {best_s:.4f} at info_cut={best_cut:.6f}",
        f"{target:.4f}", "target_sparsity")


def sparsity_report(mask: np.ndarray) -> dict:
    """Per-layer, per-head and overall sparsity of a keep-mask, JSON-serialisable.

    Returns
    -------
    dict
        ``{"shape": [L, H, N, N], "overall": float, "per_layer": [L floats],
        "per_head": [[H floats] per layer], "kept": int, "total": int}``.
    """
    mask = _validate_mask(mask)
    per_head = 1.0 - mask.mean(axis=(2, 3))
    per_layer = 1.0 - mask.mean(axis=(1, 2, 3))
    return {
        "shape": [int(d) for d in mask.shape],
        "overall": float(1.0 - mask.mean()),
        "per_layer": [float(v) for v in per_layer],
        "per_head": [[float(v) for v in layer] for layer in per_head],
        "kept": int(mask.sum()),
        "total": int(mask.size),
    }


def format_sparsity_table(report: dict) -> str:
    """Render a :func:`sparsity_report` as a fixed-width text table (percent)."""
    per_head = report["per_head"]
    num_heads = len(per_head[0]) if per_head else 0
    header = ["layer"] + [f"h{h}" for h in range(num_heads)] + ["layer"]
    lines = ["  ".join(f"{c:>7}" for c in header)]
    for layer, (heads, layer_sparsity) in enumerate(zip(per_head, report["per_layer"])):
        cells = [f"{layer:>7d}"] + [f"{100 * s:6.2f}%" for s in heads] + [f"{100 * layer_sparsity:6.2f}%"]
        lines.append("  ".join(cells))
    lines.append(f"overall sparsity: {100 * report['overall']:.2f}%  "
                 f"(kept {report['kept']} of {report['total']})")
    return "\n".join(lines)


# --------------------------------------------------------------------------- statistics
class AttentionStatistics:
    """Running mean of softmax attention maps, accumulated batch by batch.

    Only a float64 running sum of shape (layers, heads, N, N) and a count of
    images are kept; the individual maps are never stored.

    Examples
    --------
    >>> stats = AttentionStatistics()
    >>> for probs in batches:          # (batch, layers, heads, N, N)
    ...     stats.update(probs)
    >>> attn_mean = stats.mean()       # (layers, heads, N, N) float32
    """

    def __init__(self) -> None:
        self._sum: np.ndarray | None = None
        self.count: int = 0

    @property
    def shape(self) -> tuple[int, ...] | None:
        """(layers, heads, N, N) once the first batch has been seen, else None."""
        return None if self._sum is None else tuple(self._sum.shape)

    def update(self, probs: np.ndarray | Sequence[np.ndarray]) -> None:
        """Add one batch of attention probabilities.

        Parameters
        ----------
        probs : np.ndarray or sequence of np.ndarray
            Either one array (batch, layers, heads, N, N) or one array per layer,
            each (batch, heads, N, N).
        """
        if isinstance(probs, (list, tuple)):
            layers = [np.asarray(p) for p in probs]
            if not layers:
                raise ValueError("probs: expected at least one layer, got an empty list")
            shapes = {p.shape for p in layers}
            if len(shapes) != 1 or layers[0].ndim != 4:
                raise ValueError(
                    f"probs: expected every layer as (batch, heads, N, N) of one shape, "
                    f"got shapes {[p.shape for p in layers]}"
                )
            batch = layers[0].shape[0]
            batch_sum = np.stack([p.sum(axis=0, dtype=np.float64) for p in layers])
        else:
            array = np.asarray(probs)
            if array.ndim != 5:
                raise ValueError(
                    f"probs: expected shape (batch, layers, heads, N, N), got {array.shape}"
                )
            batch = array.shape[0]
            batch_sum = array.sum(axis=0, dtype=np.float64)
        if batch_sum.shape[-1] != batch_sum.shape[-2]:
            raise ValueError(f"probs: expected square (N, N) maps, got {batch_sum.shape[-2:]}")
        if self._sum is None:
            self._sum = np.zeros(batch_sum.shape, dtype=np.float64)
        elif self._sum.shape != batch_sum.shape:
            raise ValueError(
                f"probs: expected maps of shape {self._sum.shape} (as in earlier batches), "
                f"got {batch_sum.shape}"
            )
        self._sum += batch_sum
        self.count += int(batch)

    def mean(self) -> np.ndarray:
        """Mean attention (layers, heads, N, N) as float32."""
        if self._sum is None or self.count == 0:
            raise ValueError("AttentionStatistics.mean: no batch has been added yet")
        return (self._sum / self.count).astype(np.float32)

    def save(self, path: str | os.PathLike) -> Path:
        """Write the running sum and count to ``path`` (.npz)."""
        if self._sum is None:
            raise ValueError("AttentionStatistics.save: no batch has been added yet")
        path = Path(path)
        # atomic: never a half-written statistics file; a handle, so numpy does not append .npz
        atomic_write(path, lambda handle: np.savez(handle, sum=self._sum, count=np.int64(self.count)))
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "AttentionStatistics":
        """Read statistics written by :meth:`save`.

        Raises:
            vitcod.user_errors.MissingFileError: no such file (run the statistics stage first).
            vitcod.user_errors.UserError: unreadable, a field missing, or not a (layers, heads, N, N)
                sum of probabilities with a count >= 1 - naming the file.
        """
        path = Path(path)
        arrays = read_npz(path, "the attention statistics", ("sum", "count"),
                          hint=" (written by `python -m vitcod statistics` / `make statistics`)")
        total, count = arrays["sum"], arrays["count"]
        if total.ndim != 4 or total.shape[2] != total.shape[3] or total.size == 0 or total.dtype.kind != "f":
            raise UserError("a float sum of shape (layers, heads, N, N)", f"{total.dtype} {total.shape}",
                            f"'sum' in {path}")
        if count.shape != () or count.dtype.kind not in "iu" or int(count) < 1:
            raise UserError("an integer image count >= 1", f"{count.dtype} {count.tolist()}", f"'count' in {path}")
        if not np.all(np.isfinite(total)) or total.min() < 0:
            raise UserError("finite sums of probabilities >= 0", "NaN, Inf or negative values", f"'sum' in {path}")
        stats = cls()
        stats._sum = total.astype(np.float64)
        stats.count = int(count)
        return stats
