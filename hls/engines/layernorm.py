"""LayerNorm's 1/sqrt(var + eps) table: octave-indexed, generated here, a ROM in the layer's header.

Where this fits: hls4ml's LayerNormalization (config struct, weights, types, algorithm) is kept;
``hls/firmware/vitcod_layernorm.h`` replaces two things of its kernel, and this module generates
what they need, from the hls4ml layer config that ``hls/precision.py`` writes:

* the table is a generated constant array (raws computed here, emitted into parameters.h and
  passed to the kernel), not a float loop that hls4ml runs inside the pipelined kernel: under
  synthesis that loop (``init_invert_sqr_table``) is unrolled once per entry inside a PIPELINE
  region - 65,536 float divisions and square roots for the demo's first LayerNorm;
* the index is octave + mantissa of the variance (a leading-one detector and a shift), not
  ``floor(var * size / range)``. A uniform table needs its step to be small against the SMALLEST
  variance it must resolve: the demo's first LayerNorm sees variances from 0.0017 to 0.76 and got
  65,536 entries (~1.25 Mbit, ~76 BRAM18K); capped at 4,096 uniform entries its C-simulation
  agreement with QKeras fell from 100% to 98.6% of the digits test split. Octave indexing gives
  every variance the same relative step, 2^-M, so 17 octaves x 64 + 1 = 1,089 entries cover
  [2^-16, 2) at <= 0.4% error in 1/sqrt.

Index (:func:`InvSqrtTable.index`, the firmware's ``invsqrt_index``; ``var`` as the raw integer of
``accum_t`` with F fraction bits, R = ``top_exp``, O octaves, M mantissa bits)::

    lead = position of the leading one of raw (-1 for 0);  o = F + R - 1 - lead
    o < 0      (var >= 2^R)         -> 2^M - 1                 (clamped to the top bucket)
    o >= O or raw == 0              -> O * 2^M                  (the "tiny" entry, var < 2^(R-O))
    else                            -> o * 2^M + the M bits below the leading one

Entry ``o * 2^M + m`` is ``1/sqrt(eps + 2^(R-1-o) * (1 + (m + 1/2) / 2^M))`` (the bucket's middle),
the tiny entry ``1/sqrt(eps + 2^(R-O-1))``; both quantized to ``table_t`` with its own modes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from ..fixed_point import FixedType, from_float, parse_type
from ..tables import cpp_fixed_literals, cpp_initializer

#: Relative error of 1/sqrt within one bucket is at most 2^-(M+2); the tiny entry's at most err/2.


@dataclass(frozen=True)
class InvSqrtTable:
    """The 1/sqrt(var + eps) table of one LayerNorm.

    Attributes:
        top_exp: R; variances in [0, 2^R) are resolved (hls4ml's table range 2^-TableRangePower2).
        octaves: O octaves below 2^R, each with 2^mantissa_bits buckets; below them the tiny entry.
        mantissa_bits: M.
        epsilon: the LayerNorm's epsilon (hls4ml: 10^-epsilon_power_of_10).
        table_type: the entries' type (hls4ml's table_t).
    """

    top_exp: int
    octaves: int
    mantissa_bits: int
    epsilon: float
    table_type: FixedType

    def __post_init__(self) -> None:
        if self.octaves < 1 or not 1 <= self.mantissa_bits <= 12:
            raise ValueError(f"invsqrt table: octaves must be >= 1 and mantissa_bits in [1, 12], got "
                             f"{self.octaves} and {self.mantissa_bits}")
        if not self.epsilon > 0:
            raise ValueError(f"invsqrt table: epsilon must be > 0, got {self.epsilon}")
        object.__setattr__(self, "table_type", parse_type(self.table_type))

    @property
    def size(self) -> int:
        return self.octaves * (1 << self.mantissa_bits) + 1

    @property
    def floor(self) -> float:
        """Variances below 2^(R-O) read the tiny entry."""
        return 2.0 ** (self.top_exp - self.octaves)

    @property
    def max_relative_error(self) -> float:
        """Worst relative error of an entry against min(1/sqrt(var + eps), the type's maximum) over
        [0, 2^R), before the entry's own rounding: half a bucket (2^-(M+1) in var, about half that
        in 1/sqrt), or the tiny entry's over [0, 2^(R-O)) where the type does not saturate anyway."""
        bucket = 1.0 - 1.0 / math.sqrt(1.0 + 2.0 ** -(self.mantissa_bits + 1))
        top = float(self.table_type.max_value)
        mid = 2.0 ** (self.top_exp - self.octaves - 1)
        entry = min(1.0 / math.sqrt(self.epsilon + mid), top)
        ends = [min(1.0 / math.sqrt(self.epsilon + v), top) for v in (0.0, 2 * mid)]
        tiny = max(abs(entry / e - 1.0) for e in ends)
        return max(bucket, tiny)

    @cached_property
    def values(self) -> np.ndarray:
        """The float64 value of every entry (before quantization)."""
        m = 1 << self.mantissa_bits
        o = np.repeat(np.arange(self.octaves), m)
        mant = np.tile(np.arange(m), self.octaves)
        var = np.ldexp(1.0 + (mant + 0.5) / m, self.top_exp - 1 - o)
        var = np.append(var, 2.0 ** (self.top_exp - self.octaves - 1))
        return 1.0 / np.sqrt(self.epsilon + var)

    @cached_property
    def raw(self) -> np.ndarray:
        """The entries as raws of ``table_type`` (its rounding; saturation where 1/sqrt(eps) exceeds it)."""
        return from_float(self.values, self.table_type)

    def check_accumulator(self, accum: FixedType) -> None:
        """Reject an accumulator whose raw bits cannot hold 2^R (the index reads bit F + R - 1)."""
        top = accum.frac + self.top_exp
        if not 1 <= top <= accum.width - 1:
            raise ValueError(f"invsqrt table over [0, 2^{self.top_exp}) needs the variance's type to hold "
                             f"2^{self.top_exp} below its sign bit; {accum} does not")

    def index(self, raw, frac: int) -> np.ndarray:
        """The firmware's index for variance raws (integers in units of 2^-frac)."""
        raw = np.maximum(np.asarray(raw, dtype=np.int64), 0)
        m = self.mantissa_bits
        lead = np.array([int(r).bit_length() - 1 for r in raw.ravel()], dtype=np.int64).reshape(raw.shape)
        o = frac + self.top_exp - 1 - lead
        shifted = np.where(lead >= m, raw >> np.maximum(lead - m, 0), raw << np.maximum(m - lead, 0))
        mant = shifted & ((1 << m) - 1)
        out = o * (1 << m) + mant
        out = np.where(o < 0, (1 << m) - 1, out)
        return np.where((lead < 0) | (o >= self.octaves), self.octaves << m, out)

    # ---- code generation --------------------------------------------------------------------
    def cpp(self, layer: str, config: str) -> str:
        """The table (namespace ``<layer>_invsqrt``) and ``<config>_invsqrt``, hls4ml's config struct
        with the table's geometry added, for the kernel's template argument."""
        lits = cpp_fixed_literals(self.raw, self.table_type)
        return "\n".join([
            f"// 1/sqrt(var + {self.epsilon!r}) of LayerNorm '{layer}' (vitcod.hls.engines.layernorm): "
            f"{self.octaves} octaves below 2^{self.top_exp}, {1 << self.mantissa_bits} buckets each, + the entry",
            f"// for var < 2^{self.top_exp - self.octaves}; worst relative step error {self.max_relative_error:.2g}.",
            f"namespace {layer}_invsqrt {{",
            f"static const {config}::table_t table[{self.size}] = "
            f"{cpp_initializer(np.array(lits, dtype=object), per_line=8)};",
            "}",
            f"struct {config}_invsqrt : {config} {{",
            f"    static const int invsqrt_top_exp = {self.top_exp};",
            f"    static const unsigned invsqrt_octaves = {self.octaves};",
            f"    static const unsigned invsqrt_mantissa_bits = {self.mantissa_bits};",
            f"    static const unsigned invsqrt_table_size = {self.size};",
            "};",
        ]) + "\n"


def choose_invsqrt_table(var_max: float, epsilon: float, table_type, accum_frac: int, *, max_error: float,
                         max_size: int, margin: float = 1.5, top_exp: int | None = None) -> InvSqrtTable:
    """The smallest table that resolves [0, var_max * margin) with a relative step error <= ``max_error``.

    Mantissa bits M: the bucket's half-width 2^-(M+1) in var (half that in 1/sqrt) <= max_error.
    Octaves: down to where eps dominates (2^(R-O-1) <= 2 * max_error * eps), the accumulator's LSB, or
    the variance whose 1/sqrt saturates ``table_type`` (every entry below it is the type's maximum),
    whichever is highest. Over ``max_size`` entries, M shrinks first (coarser buckets), then O.
    """
    table_type = parse_type(table_type)
    if top_exp is None:
        top_exp = math.ceil(math.log2(max(var_max * margin, 2.0 ** -30)))
    m_bits = max(1, math.ceil(math.log2(1.0 / (2 * max_error))))
    v_sat = 1.0 / float(table_type.max_value) ** 2 - epsilon  # 1/sqrt(v + eps) >= the type's max below it
    saturating = math.floor(math.log2(v_sat)) - 1 if v_sat > 0 else -accum_frac
    floor_exp = max(math.floor(math.log2(4 * max_error * epsilon)), -accum_frac, saturating)
    floor_exp = min(floor_exp, top_exp - 1)
    octaves = max(1, top_exp - floor_exp)
    while octaves * (1 << m_bits) + 1 > max_size and m_bits > 1:
        m_bits -= 1
    octaves = min(octaves, max(1, (max_size - 1) >> m_bits))
    return InvSqrtTable(top_exp=top_exp, octaves=octaves, mantissa_bits=m_bits, epsilon=epsilon,
                        table_type=table_type)
