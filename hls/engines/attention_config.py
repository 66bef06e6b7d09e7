"""Configuration of one sparse-attention layer and the resolution of all its fixed-point types.

Where this fits: :class:`AttentionEngineConfig` is what a user (or the hls4ml integration in
``vitcod.hls.extension``) writes: sizes, C++ type spellings, exp-table size, lane budget. Building
it resolves and checks every internal type of the dense + sparse score engines, the softmax and
P x V (:class:`AttentionTypes`); :func:`vitcod.hls.engines.attention.build_attention_engine` then
adds the masks and makes the engine that writes the C++ config.

Type choices (defaults) and why:

* q/k/v/result: ``ap_fixed<16,6>`` in, ``ap_fixed<16,6,AP_RND_CONV,AP_SAT>`` out - hls4ml's default
  width; the result rounds to nearest-even (no bias) and saturates (never wraps).
* qk_accum_t / sum_t / accum_t: derived EXACT accumulators (all fraction bits of the summands,
  integer bits from a worst-case bound), so no partial sum ever rounds or overflows and the result
  does not depend on the summation order HLS picks for unrolled loops.
* score_t: the integer bits the worst-case dot product needs, the inputs' fraction bits,
  AP_RND_CONV + AP_SAT (saturation can never trigger - checked - it is the safe default).
* exp_t / inv_t / prob_t: ``ap_ufixed<18,1,AP_RND_CONV,AP_SAT>``: values in [0, 1], 1.0 exactly
  representable (table[0], a row with one key), 18 bits = one DSP48 multiplier port.
* exp index: ``ap_ufixed<t, t-k, AP_RND, AP_SAT>``: round d * 2^k to nearest, clamp at the table end.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction

from ..fixed_point import FixedType
from ..tables import auto_exp_input_frac_bits, make_exp_table
from .base import (
    DEFAULT_DATA_TYPE,
    DEFAULT_RESULT_TYPE,
    DEFAULT_SCORE_MODES,
    DEFAULT_UNIT_TYPE,
    check_positive,
    fits_int64_raw,
    holds_after_rounding,
    parse_field,
    product_range,
    raw_value,
    require_exact,
    type_for_range,
)


#: Upper bound of ``softmax_lanes`` / ``pv_lanes`` (the unrolled lane loops of the stream engine).
MAX_WALK_LANES = 64


@dataclass(frozen=True)
class AttentionTypes:
    """Every fixed-point type of one attention layer, resolved and checked."""

    q: FixedType
    k: FixedType
    v: FixedType
    qk_accum: FixedType
    score: FixedType
    exp_index: FixedType
    exp: FixedType
    sum: FixedType
    inv: FixedType
    prob: FixedType
    accum: FixedType
    result: FixedType
    exp_input_frac_bits: int
    scale: float


@dataclass(frozen=True)
class AttentionEngineConfig:
    """User-facing configuration of one sparse-attention layer (all heads).

    Types are C++ spellings (``'ap_fixed<16,6>'``). ``None`` means "derive": ``score_type`` gets the
    integer bits the worst-case q.k needs and the inputs' fraction bits; ``sum_type`` and
    ``accum_type`` become exact accumulators. Given types are checked instead.

    Parallelism: a *lane* computes one D-wide dot product per cycle (D multipliers). The layer has
    ``lane_budget`` lanes, split between the dense and the sparse engine in proportion to the
    layer's dense ratio G*N / (nnz_sparse + G*N) (ViTCoD's rule, each engine >= 1 lane);
    ``dense_unroll`` / ``sparse_lanes`` override the split (one given: the other gets the rest of
    the budget; both given: the budget is not used).

    ``softmax_lanes`` / ``pv_lanes`` (io_stream engine only; the io_parallel engine ignores them):
    kept entries of ONE query row handled per cycle by the row max + exp-sum walks / by the P x V
    walk (each P x V lane has its own probability multiplier and D MACs). 1 = one entry per cycle,
    the generated C++ of a 1/1 layer is exactly that of an engine without these knobs.

    ``exp_input_frac_bits`` (k): one exp-table step is 2^-k in score units; ``None`` picks the
    finest step whose table still reaches the point where exp rounds to 0.

    ``inv_type`` only sets the reciprocal's width and fraction bits: its rounding is fixed by the
    integer division (half up) and it never overflows, so its Q/O modes are not used.
    Configs are frozen: derive a new one (``dataclasses.replace``) to change a field.

    Validation runs on construction (types, sizes) and again, with the masks, in
    :func:`~vitcod.hls.engines.attention.build_attention_engine`.
    """

    tokens: int
    heads: int
    head_dim: int
    q_type: str = DEFAULT_DATA_TYPE
    k_type: str = DEFAULT_DATA_TYPE
    v_type: str = DEFAULT_DATA_TYPE
    score_type: str | None = None
    exp_type: str = DEFAULT_UNIT_TYPE
    sum_type: str | None = None
    inv_type: str = DEFAULT_UNIT_TYPE
    prob_type: str = DEFAULT_UNIT_TYPE
    accum_type: str | None = None
    result_type: str = DEFAULT_RESULT_TYPE
    exp_table_size: int = 1024
    exp_input_frac_bits: int | None = None
    lane_budget: int = 4
    dense_unroll: int | None = None
    sparse_lanes: int | None = None
    softmax_lanes: int = 1
    pv_lanes: int = 1
    types: AttentionTypes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "types", self._resolve_types())

    @property
    def embed_dim(self) -> int:
        return self.heads * self.head_dim

    def _resolve_types(self) -> AttentionTypes:
        n = check_positive("tokens", self.tokens)
        check_positive("heads", self.heads)
        d = check_positive("head_dim", self.head_dim)
        check_positive("exp_table_size", self.exp_table_size, 2)
        check_positive("lane_budget", self.lane_budget, 2)
        for what in ("dense_unroll", "sparse_lanes"):
            if getattr(self, what) is not None:
                check_positive(what, getattr(self, what))
        for what in ("softmax_lanes", "pv_lanes"):
            check_positive(what, getattr(self, what))
            if getattr(self, what) > MAX_WALK_LANES:
                raise ValueError(f"{what} must be at most {MAX_WALK_LANES} (a query row keeps at most N entries, "
                                 f"and every lane costs a score read port), got {getattr(self, what)}")

        q = parse_field("q_type", self.q_type)
        k = parse_field("k_type", self.k_type)
        v = parse_field("v_type", self.v_type)
        result = parse_field("result_type", self.result_type)
        for what, t in (("q_type", q), ("k_type", k), ("v_type", v), ("result_type", result)):
            fits_int64_raw(t, what)

        # q . k: exact accumulation, one rounding into score_t.
        p_lo, p_hi = product_range(q, k)
        dot_lo, dot_hi, dot_frac = d * p_lo, d * p_hi, q.frac + k.frac
        qk_accum = type_for_range(dot_lo, dot_hi, dot_frac)
        if self.score_type is None:
            frac = max(q.frac, k.frac)
            width = 2
            while True:
                score = FixedType(width, width - frac, True, *DEFAULT_SCORE_MODES)
                if holds_after_rounding(score, dot_lo, dot_hi, dot_frac):
                    break
                width += 1
        else:
            score = parse_field("score_type", self.score_type)
            if not holds_after_rounding(score, dot_lo, dot_hi, dot_frac):
                need = type_for_range(dot_lo, dot_hi, dot_frac)
                raise ValueError(
                    f"score_type {score} cannot hold the largest possible dot product of q_type {q} and "
                    f"k_type {k} over head_dim={d}: q.k spans [{raw_value(dot_lo, dot_frac)}, "
                    f"{raw_value(dot_hi, dot_frac)}] but {score} holds [{float(score.min_value)}, "
                    f"{float(score.max_value)}]; use at least {need.integer} integer bits"
                )
        fits_int64_raw(score, "score_type")

        # exp table.
        exp = parse_field("exp_type", self.exp_type)
        if exp.signed or exp.frac < 0 or (1 << exp.frac) > exp.max_raw:
            raise ValueError(f"exp_type {exp} must be an ap_ufixed that represents 1.0 exactly (table[0] = exp(0))")
        scale = 1.0 / math.sqrt(d)
        if self.exp_input_frac_bits is None:
            k_bits = auto_exp_input_frac_bits(scale, self.exp_table_size, exp, score.frac)
        else:
            k_bits = int(self.exp_input_frac_bits)
        if not -16 <= k_bits <= 30:
            raise ValueError(f"exp_input_frac_bits must be in [-16, 30], got {k_bits}")
        exp_index = make_exp_table(scale, self.exp_table_size, k_bits, exp).index_type

        # Row sum: exact, up to N entries of at most 1.0.
        sum_hi = n * (1 << exp.frac)
        if self.sum_type is None:
            sum_t = type_for_range(0, sum_hi, exp.frac, unsigned_ok=True)
        else:
            sum_t = parse_field("sum_type", self.sum_type)
            require_exact("sum_type", sum_t, exp.frac, 0, sum_hi, f"the sum of up to {n} exp values <= 1.0")

        # Reciprocal: quotient <= 2^Finv (inv <= 1.0), must fit inv_t; int64 golden bound.
        inv = parse_field("inv_type", self.inv_type)
        if inv.frac < 0 or (1 << inv.frac) > inv.max_raw:
            raise ValueError(f"inv_type {inv} must represent 1.0 (1/sum with sum >= 1 reaches 1.0 for a single kept key)")
        if inv.frac < 1:
            raise ValueError(f"inv_type {inv} needs at least one fraction bit (1/sum of a row with two or more "
                             "kept keys lies below 1.0)")
        if inv.frac + sum_t.frac + sum_t.width > 62:
            raise ValueError(
                f"inv_type {inv} and sum_type {sum_t}: the reciprocal numerator needs "
                f"{inv.frac + sum_t.frac + sum_t.width} bits, more than the 62 the golden model supports"
            )

        prob = parse_field("prob_type", self.prob_type)
        fits_int64_raw(prob, "prob_type")

        # P x V: exact; sum_j p_j <= 1 + N*(lsb_inv/2 + lsb_p) (rounding slack), and <= N*max(p).
        total_p = min(n * max(prob.max_value, Fraction(0)), 1 + n * (inv.lsb / 2 + prob.lsb))
        total_p_raw = math.floor(total_p / prob.lsb)
        acc_frac = prob.frac + v.frac
        acc_lo = total_p_raw * min(v.min_raw, 0)
        acc_hi = total_p_raw * max(v.max_raw, 0)
        if self.accum_type is None:
            accum = type_for_range(acc_lo, acc_hi, acc_frac)
        else:
            accum = parse_field("accum_type", self.accum_type)
            require_exact("accum_type", accum, acc_frac, acc_lo, acc_hi, "the P x V sum (probabilities times v_type)")
        for what, t in (("qk_accum", qk_accum), ("sum_type", sum_t), ("accum_type", accum)):
            if t.width > 62:
                raise ValueError(f"{what} {t} needs more than 62 bits; use narrower input types")

        return AttentionTypes(q=q, k=k, v=v, qk_accum=qk_accum, score=score, exp_index=exp_index, exp=exp,
                              sum=sum_t, inv=inv, prob=prob, accum=accum, result=result,
                              exp_input_frac_bits=k_bits, scale=scale)
