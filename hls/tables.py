"""Lookup tables for the HLS engines, generated once in Python and emitted as C++ initialisers.

Where this fits: the attention engine's softmax reads ``exp`` from a ROM instead of computing it.
The table is computed here, quantized to its ap_fixed type as *raw integers*, and the very same
raws are (a) written into the generated per-layer C++ header by :mod:`vitcod.hls.engines` and
(b) indexed by the golden model :mod:`vitcod.hls.golden`. One source, so the two cannot drift.

The exp table has the softmax scale folded in. For a row with maximum score ``m`` and a kept score
``s``, the engine forms ``d = m - s >= 0`` (exact), converts ``d`` to the index type
``ap_ufixed<t, t-k, AP_RND, AP_SAT>`` (``T = 2**t`` entries, ``k`` = ``input_frac_bits``) whose raw
bits are ``min(round(d * 2**k), T - 1)``, and reads ``table[index] = exp(-scale * index / 2**k)``.
``table[0] == 1.0`` exactly, so every row sum is >= 1 and the reciprocal never exceeds 1.

The reciprocal ``1/sum`` is NOT a table (a table over [1, N] is far too coarse for N = 197): it is
one fixed-point integer division per row, see :func:`vitcod.hls.golden.row_reciprocal`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .fixed_point import FixedType, from_float, parse_type

#: Rounding of d * 2**k to a table index: to nearest (ties up), saturating at the last entry.
EXP_INDEX_ROUNDING = "AP_RND"


@dataclass(frozen=True)
class ExpTable:
    """The softmax exp table of one attention layer.

    Attributes:
        raw: (size,) int64 raws of ``exp_type``.
        exp_type: type of the entries (unsigned, must represent 1.0).
        index_type: ``ap_ufixed<t, t-k, AP_RND, AP_SAT>``; assigning ``d`` to it yields the index.
        scale: the softmax scale folded into the table (1/sqrt(D)).
        input_frac_bits: ``k``; one table step is ``2**-k`` in score units.
    """

    raw: np.ndarray
    exp_type: FixedType
    index_type: FixedType
    scale: float
    input_frac_bits: int

    @property
    def size(self) -> int:
        return int(self.raw.shape[0])

    @property
    def covered_range(self) -> float:
        """Largest ``d`` (in score units) the table resolves before clamping to the last entry."""
        return self.size / 2.0**self.input_frac_bits


def exp_index_type(size: int, input_frac_bits: int) -> FixedType:
    """``ap_ufixed<t, t-k, AP_RND, AP_SAT>`` for a table of ``size = 2**t`` entries."""
    t = _log2_exact(size, "exp table size")
    return FixedType(t, t - input_frac_bits, signed=False, rounding=EXP_INDEX_ROUNDING, saturation="AP_SAT")


def auto_exp_input_frac_bits(scale: float, size: int, exp_type: "FixedType | str", score_frac_bits: int) -> int:
    """Finest table step such that the table still covers every ``d`` whose exp is not 0.

    ``exp(-scale * d)`` rounds to 0 in ``exp_type`` once it is below half an LSB, i.e. for
    ``d > (F + 1) * ln 2 / scale``. The step ``2**-k`` is the finest one for which ``size`` entries
    reach that far, so clamping at the last entry never changes a result. It is not made finer
    than the score's own LSB (that would only waste entries).
    """
    exp_type = parse_type(exp_type)
    d_zero = (exp_type.frac + 1) * math.log(2.0) / scale
    k = math.floor(math.log2(size / d_zero))
    return int(min(k, score_frac_bits))


def make_exp_table(scale: float, size: int, input_frac_bits: int, exp_type: "FixedType | str") -> ExpTable:
    """Build ``table[i] = exp(-scale * i / 2**input_frac_bits)`` quantized to ``exp_type``.

    The quantization uses ``exp_type``'s own rounding/saturation mode (as a C++ ``exp_t x = double``
    would); float64 ``exp`` is only the starting point, the raws are the single source of truth.
    """
    exp_type = parse_type(exp_type)
    if exp_type.signed:
        raise ValueError(f"exp_type must be unsigned (exp values are in (0, 1]), got {exp_type}")
    one = 1 << exp_type.frac if exp_type.frac >= 0 else None
    if one is None or one > exp_type.max_raw:
        raise ValueError(f"exp_type {exp_type} must represent 1.0 exactly (table[0] = exp(0) = 1)")
    index_type = exp_index_type(size, input_frac_bits)
    steps = np.arange(size, dtype=np.float64)
    values = np.exp(-scale * np.ldexp(steps, -input_frac_bits))
    raw = from_float(values, exp_type)
    return ExpTable(raw=raw, exp_type=exp_type, index_type=index_type, scale=float(scale),
                    input_frac_bits=int(input_frac_bits))


# ---- C++ emission ---------------------------------------------------------------------------


def cpp_fixed_literals(raw: np.ndarray, t: "FixedType | str") -> list[str]:
    """Decimal literals whose double value is exactly ``raw * 2**-frac`` (exact: widths <= 53 bits).

    Python's ``repr`` of a float is the shortest string that parses back to the same double, and the
    double is the exact value, so ``t x = literal;`` in C++ reproduces the raw bit for bit.
    """
    t = parse_type(t)
    if t.width > 53:
        raise ValueError(f"{t}: widths over 53 bits cannot be emitted as exact double literals")
    values = np.ldexp(np.asarray(raw, dtype=np.int64).astype(np.float64), -t.frac)
    return [repr(float(v)) for v in values]


def cpp_initializer(items, per_line: int = 16, indent: str = "    ") -> str:
    """Brace initializer for a (possibly nested) array of already formatted C++ literals.

    ``items`` is a numpy array of strings/ints/bools, or nested lists; the nesting becomes nested
    braces, the innermost level is wrapped ``per_line`` items per line.
    """
    arr = np.asarray(items, dtype=object)
    return _init(arr, per_line, indent, 0)


def _fmt(v) -> str:
    if isinstance(v, (bool, np.bool_)):
        return "true" if v else "false"
    return str(v)


def _init(arr: np.ndarray, per_line: int, indent: str, depth: int) -> str:
    pad = indent * (depth + 1)
    if arr.ndim == 1:
        vals = [_fmt(v) for v in arr]
        if len(vals) <= per_line:
            return "{" + ", ".join(vals) + "}"
        lines = [", ".join(vals[i : i + per_line]) for i in range(0, len(vals), per_line)]
        return "{\n" + ",\n".join(pad + ln for ln in lines) + "\n" + indent * depth + "}"
    inner = [_init(sub, per_line, indent, depth + 1) for sub in arr]
    return "{\n" + ",\n".join(pad + s for s in inner) + "\n" + indent * depth + "}"


def _log2_exact(n: int, what: str) -> int:
    if n < 2 or n & (n - 1):
        raise ValueError(f"{what} must be a power of two >= 2, got {n}")
    return n.bit_length() - 1
