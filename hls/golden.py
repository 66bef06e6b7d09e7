"""Bit-exact numpy golden model of the ViTCoD HLS engines, on raw integers.

Where this fits: :mod:`vitcod.hls.engines` resolves a layer (types, masks, exp table) into an
``AttentionEngine`` / ``HeadMixEngine`` / ``EmbedEngine``; the generated C++ and the functions here
both read that one object, so the golden model reproduces the firmware's arithmetic EXACTLY:
every value is a raw integer of its ap_fixed type (``raw = value * 2**frac``), every assignment
into a narrower type goes through :func:`vitcod.hls.fixed_point.quantize` with that type's rounding
and saturation modes, and the exp lookups read the same raw table.

Summation order does not matter anywhere: the firmware's accumulators (q.k, the row sum of exp,
P x V, head-mix, embed) are exact by construction (checked by the engine configs), so integer sums
here equal the C++ results whatever order HLS picks. The only data-dependent roundings are the
casts the firmware writes explicitly (score, exp index, reciprocal, probability, result).

Inputs/outputs: raw int64 arrays, one sample per leading index, flat token-major per sample
(``x[n * E + h * D + c]``); a single flat sample is accepted as well.
"""

from __future__ import annotations

import numpy as np

from .fixed_point import FixedType, check_raw, quantize, to_float, wrap_to_type

_FLOAT_EXACT = 2**53


def exact_matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Exact int64 batched matmul ``a @ b``; uses float64 BLAS when every partial sum is < 2^53."""
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    inner = a.shape[-1]
    bound = int(np.abs(a).max(initial=0)) * int(np.abs(b).max(initial=0)) * max(inner, 1)
    if bound < _FLOAT_EXACT:
        return np.matmul(a.astype(np.float64), b.astype(np.float64)).astype(np.int64)
    if bound >= 2**63:
        raise OverflowError("matmul bound exceeds int64; the types are too wide for the golden model")
    return np.matmul(a, b)


def _samples(x, size: int, t: FixedType, what: str) -> tuple[np.ndarray, bool]:
    arr = check_raw(x, t, what)
    single = arr.ndim == 1
    arr = arr.reshape(1, -1) if single else arr.reshape(arr.shape[0], -1)
    if arr.shape[1] != size:
        raise ValueError(f"{what}: expected {size} values per sample, got {arr.shape[1]}")
    return arr, single


def row_reciprocal(sum_raw: np.ndarray, sum_t: FixedType, inv_t: FixedType) -> np.ndarray:
    """``1/sum`` as the firmware's single integer division per row, rounded half up.

    raw(inv) = (2^(Finv + Fsum) + raw(sum) // 2) // raw(sum); the quotient's low bits are written
    into inv_t (``inv.range() = quotient``), which never truncates because sum >= 1.0.
    """
    sum_raw = np.asarray(sum_raw, dtype=np.int64)
    if np.any(sum_raw <= 0):
        raise ValueError("row sums must be positive (every row keeps at least one key)")
    shift = inv_t.frac + sum_t.frac
    quotient = ((np.int64(1) << shift) + (sum_raw >> 1)) // sum_raw
    return wrap_to_type(quotient, inv_t)


def attention(engine, q, k, v, *, return_probabilities: bool = False):
    """Golden sparse attention of one layer.

    Args:
        engine: a :class:`vitcod.hls.engines.AttentionEngine`.
        q, k, v: raws of the engine's q/k/v types, shape (S, N*E) (or (N*E,) for one sample).
        return_probabilities: also return the (S, H, N, N) raw prob_t matrix (0 where pruned).

    Returns:
        (S, N*E) int64 raws of result_type (and the probabilities if requested).

    Only kept entries are computed after the (BLAS, exact) q.k products; samples are processed in
    chunks so memory stays bounded for N = 197.
    """
    cfg, t = engine.config, engine.types
    n, h_count, d = cfg.tokens, cfg.heads, cfg.head_dim
    size = n * cfg.embed_dim
    qs, single = _samples(q, size, t.q, "q")
    ks, _ = _samples(k, size, t.k, "k")
    vs, _ = _samples(v, size, t.v, "v")
    if not qs.shape[0] == ks.shape[0] == vs.shape[0]:
        raise ValueError("q, k and v must have the same number of samples")
    samples = qs.shape[0]
    table = np.asarray(engine.exp_table.raw, dtype=np.int64)
    out = np.empty((samples, n, h_count, d), dtype=np.int64)
    probs = np.zeros((samples, h_count, n, n), dtype=np.int64) if return_probabilities else None
    chunk = max(1, 2_000_000 // (n * n))

    for h in range(h_count):
        # Kept entries in row-major order (grouped by query row; every row has at least one).
        rows, cols = np.nonzero(engine.masks[h])
        starts = np.searchsorted(rows, np.arange(n))
        sl = slice(h * d, (h + 1) * d)
        for s0 in range(0, samples, chunk):
            s1 = min(samples, s0 + chunk)
            qh = qs[s0:s1].reshape(-1, n, cfg.embed_dim)[:, :, sl]
            kh = ks[s0:s1].reshape(-1, n, cfg.embed_dim)[:, :, sl]
            vh = vs[s0:s1].reshape(-1, n, cfg.embed_dim)[:, :, sl]
            dot = exact_matmul(qh, kh.transpose(0, 2, 1))[:, rows, cols]
            score = quantize(dot, t.q.frac + t.k.frac, t.score)  # (c, nnz)

            # Row max over kept entries; d = max - s is exact; index = (exp_index_t) d.
            row_max = np.maximum.reduceat(score, starts, axis=1)
            index = quantize(row_max[:, rows] - score, t.score.frac, t.exp_index)
            e = table[index]

            # Exact row sum (sum_t keeps exp_t's fraction bits or more), one reciprocal per row.
            sum_raw = np.add.reduceat(e, starts, axis=1) << (t.sum.frac - t.exp.frac)
            inv = row_reciprocal(sum_raw, t.sum, t.inv)
            p = quantize(e * inv[:, rows], t.exp.frac + t.inv.frac, t.prob)

            # P x V over kept entries only: pruned entries are exactly 0.
            dense_p = np.zeros((s1 - s0, n, n), dtype=np.int64)
            dense_p[:, rows, cols] = p
            acc = exact_matmul(dense_p, vh)
            out[s0:s1, :, h, :] = quantize(acc, t.prob.frac + t.v.frac, t.result)
            if probs is not None:
                probs[s0:s1, h] = dense_p

    out = out.reshape(samples, size)
    out = out[0] if single else out
    return (out, probs) if return_probabilities else out


def head_mix(engine, x) -> np.ndarray:
    """Golden head-mix (encoder or decoder): (S, N*Hin*D) raws -> (S, N*Hout*D) raws of result_type."""
    cfg, t = engine.config, engine.config.types
    xs, single = _samples(x, cfg.tokens * cfg.heads_in * cfg.head_dim, t["data"], "data")
    xh = xs.reshape(-1, cfg.tokens, cfg.heads_in, cfg.head_dim)
    frac = max(t["data"].frac + t["weight"].frac, t["bias"].frac)
    prod = np.einsum("snic,ij->snjc", xh, engine.weights_raw.astype(np.int64))
    acc = (prod << (frac - t["data"].frac - t["weight"].frac)) + (
        engine.biases_raw.astype(np.int64) << (frac - t["bias"].frac)
    )[None, None, :, None]
    out = quantize(acc, frac, t["result"]).reshape(xs.shape[0], -1)
    return out[0] if single else out


def cls_pos_embed(engine, x) -> np.ndarray:
    """Golden CLS + position embedding: (S, (N-1)*E) raws -> (S, N*E) raws of result_type."""
    cfg, t = engine.config, engine.config.types
    n, e = cfg.tokens, cfg.embed_dim
    xs, single = _samples(x, (n - 1) * e, t["data"], "data")
    frac = max(t["data"].frac, t["cls"].frac, t["pos"].frac)
    tokens = np.empty((xs.shape[0], n, e), dtype=np.int64)
    tokens[:, 0, :] = engine.cls_raw.astype(np.int64) << (frac - t["cls"].frac)
    tokens[:, 1:, :] = xs.reshape(-1, n - 1, e) << (frac - t["data"].frac)
    acc = tokens + (engine.pos_raw.astype(np.int64) << (frac - t["pos"].frac))[None]
    out = quantize(acc, frac, t["result"]).reshape(xs.shape[0], -1)
    return out[0] if single else out


def float_attention(q: np.ndarray, k: np.ndarray, v: np.ndarray, masks: np.ndarray, head_dim: int) -> np.ndarray:
    """float64 masked attention (no quantization): the accuracy reference, not a bit-exact model.

    q, k, v: (S, N, E) float values; masks: (H, N, N) bool. Returns (S, N, E).
    """
    s_count, n, e = q.shape
    h_count = e // head_dim
    qh = q.reshape(s_count, n, h_count, head_dim).transpose(0, 2, 1, 3)
    kh = k.reshape(s_count, n, h_count, head_dim).transpose(0, 2, 1, 3)
    vh = v.reshape(s_count, n, h_count, head_dim).transpose(0, 2, 1, 3)
    logits = np.einsum("shic,shjc->shij", qh, kh) / np.sqrt(head_dim)
    logits = np.where(masks[None], logits, -np.inf)
    logits -= logits.max(axis=-1, keepdims=True)
    p = np.exp(logits)
    p /= p.sum(axis=-1, keepdims=True)
    out = np.einsum("shij,shjc->shic", p, vh)
    return out.transpose(0, 2, 1, 3).reshape(s_count, n, e)


def dequantize(raw, t) -> np.ndarray:
    """Raws to float64 values (convenience re-export for callers of the golden model)."""
    return to_float(raw, t)
