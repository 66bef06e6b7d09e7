"""Exact numpy model of Xilinx ``ap_fixed`` / ``ap_ufixed`` / ``ap_int`` arithmetic on raw integers.

Where this fits: the HLS engines in ``hls/firmware/`` compute in ``ap_fixed`` types; the golden model
(:mod:`vitcod.hls.golden`) must reproduce them bit for bit. It does so on *raw integers*: a value of
a type with ``F`` fraction bits is held as ``raw = value * 2**F`` in an ``int64`` array. Exact
operations (products, sums in a wide enough type) are plain integer arithmetic on raws; every place
where the C++ assigns into a narrower type is modelled by :func:`quantize`, which applies the target
type's quantization (rounding) mode and then its overflow (saturation) mode exactly as ``ap_types``
does (``ap_fixed_base::operator=`` in the ap_types headers shipped with hls4ml).

Type strings use the C++ spelling, e.g. ``'ap_fixed<16,6,AP_RND_CONV,AP_SAT>'``, ``'ap_ufixed<18,1>'``,
``'ap_int<8>'``; :func:`parse_type` reads them with the overlay contract's parser
(:class:`vitcod.host.contract.ApType`, the one parser of the project) and returns this model's
view of the type, :class:`FixedType`.

Limits: raws must fit int64, so widths up to 62 bits for values that are shifted; the
``AP_WRAP_SM`` mode and a non-zero saturation-bit count ``N`` are legal ap_types but not modelled
here: :func:`parse_type` and :class:`FixedType` refuse them with a message saying so.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from ..host.contract import MAX_WIDTH, ROUNDING_MODES, ApType, RawGeometry
from ..host.contract import SATURATION_MODES as AP_TYPES_SATURATION_MODES

SATURATION_MODES = tuple(m for m in AP_TYPES_SATURATION_MODES if m != "AP_WRAP_SM")
"""The overflow modes this model implements (every ap_types mode but the sign-magnitude wrap)."""


@dataclass(frozen=True)
class FixedType(RawGeometry):
    """One ap_types fixed-point type: ``width`` bits, ``integer`` of them above the binary point.

    ``integer`` counts the sign bit for signed types (as in ``ap_fixed<W, I>``). ``integer`` may be
    negative or larger than ``width`` (ap_types allows both). ``is_int`` marks ``ap_int``/``ap_uint``:
    ``ap_fixed<W, W>`` geometry, but a fraction is dropped towards zero (AP_TRN_ZERO) and it wraps.
    """

    width: int
    integer: int
    signed: bool = True
    rounding: str = "AP_TRN"
    saturation: str = "AP_WRAP"
    is_int: bool = False

    def __post_init__(self) -> None:
        if not 1 <= self.width <= MAX_WIDTH:
            raise ValueError(f"width must be in [1, {MAX_WIDTH}] for the int64 model, got {self.width}")
        if self.rounding not in ROUNDING_MODES:
            raise ValueError(f"unknown rounding mode {self.rounding!r}; expected one of {ROUNDING_MODES}")
        if self.saturation not in SATURATION_MODES:
            why = ("legal ap_types but not modelled by vitcod.hls.fixed_point"
                   if self.saturation in AP_TYPES_SATURATION_MODES else "unknown")
            raise ValueError(f"saturation mode {self.saturation!r} is {why}; expected one of {SATURATION_MODES}")
        if self.signed and self.width < 2 and self.saturation == "AP_SAT_SYM":
            raise ValueError("AP_SAT_SYM needs a signed width of at least 2 bits")

    # ---- geometry (frac, min_raw, max_raw: RawGeometry) -------------------------------------
    @property
    def min_value(self) -> Fraction:
        return Fraction(self.min_raw) * Fraction(2) ** (-self.frac)

    @property
    def max_value(self) -> Fraction:
        return Fraction(self.max_raw) * Fraction(2) ** (-self.frac)

    @property
    def lsb(self) -> Fraction:
        return Fraction(2) ** (-self.frac)

    # ---- spelling -------------------------------------------------------------------------
    def cpp(self) -> str:
        """The C++ type, with modes spelled out unless both are the defaults."""
        if self.is_int:
            return f"ap_{'' if self.signed else 'u'}int<{self.width}>"
        name = "ap_fixed" if self.signed else "ap_ufixed"
        if self.rounding == "AP_TRN" and self.saturation == "AP_WRAP":
            return f"{name}<{self.width},{self.integer}>"
        return f"{name}<{self.width},{self.integer},{self.rounding},{self.saturation}>"

    def __str__(self) -> str:
        return self.cpp()

    def with_modes(self, rounding: str | None = None, saturation: str | None = None) -> "FixedType":
        return FixedType(
            self.width,
            self.integer,
            self.signed,
            rounding or self.rounding,
            saturation or self.saturation,
            False,
        )

    def holds(self, lo: Fraction, hi: Fraction) -> bool:
        """True if every value in [lo, hi] lies inside this type's range (no overflow)."""
        return self.min_value <= lo and hi <= self.max_value


def parse_type(spec: "str | FixedType") -> FixedType:
    """Parse a C++ ap_types spelling into a :class:`FixedType` (a FixedType passes through).

    ``ap_int<W>``/``ap_uint<W>`` become ``is_int`` types whose rounding is ``AP_TRN_ZERO``
    (assigning an ap_fixed to an ap_int drops the fraction towards zero, like a C cast).

    Raises:
        TypeError: ``spec`` is neither a string nor a FixedType.
        ValueError: the string is not ``ap_fixed<W,I[,Q[,O[,N]]]>``, ``ap_ufixed<...>``,
            ``ap_int<W>`` or ``ap_uint<W>`` (:class:`~vitcod.host.errors.ApTypeError`), or uses a
            mode this model does not implement (``AP_WRAP_SM``, ``N`` > 0).
    """
    if isinstance(spec, FixedType):
        return spec
    if not isinstance(spec, str):
        raise TypeError(f"expected a type string like 'ap_fixed<16,6>', got {type(spec).__name__}")
    t = ApType.parse(spec)
    if t.saturation_bits:
        raise ValueError(f"type {spec!r}: saturation-bit count N={t.saturation_bits} is legal ap_types but not "
                         "modelled by vitcod.hls.fixed_point (use 0)")
    return FixedType(t.width, t.integer, t.signed, t.rounding, t.saturation, t.is_int)


# ---- raw-integer arithmetic ----------------------------------------------------------------


def _as_int64(raw) -> np.ndarray:
    arr = np.asarray(raw)
    if arr.dtype.kind not in "iub":
        raise TypeError(f"raw values must be integers, got dtype {arr.dtype}")
    return arr.astype(np.int64, copy=False)


def _round_shift(raw: np.ndarray, shift: int, rounding: str) -> np.ndarray:
    """``raw / 2**shift`` rounded to an integer with an ap_types quantization mode (shift > 0).

    Every mode is one bias added before an arithmetic (flooring) shift:
    floor((raw + bias) / 2**shift) with bias = half (ties up), half - 1 (ties down), or a per-element
    choice between the two for the sign- and parity-dependent tie rules.
    """
    if shift > 62:
        # |raw| < 2**62 is below half an LSB: nearest modes give 0, floor gives -1 for negatives.
        neg = raw < 0
        if rounding == "AP_TRN":
            return np.where(neg, -1, 0).astype(np.int64)
        return np.zeros_like(raw)
    half = np.int64(1) << (shift - 1)
    if rounding == "AP_TRN":
        return raw >> shift
    if rounding == "AP_TRN_ZERO":
        return (raw + (raw < 0) * ((np.int64(1) << shift) - 1)) >> shift
    if rounding == "AP_RND":  # ties towards +inf
        return (raw + half) >> shift
    if rounding == "AP_RND_MIN_INF":  # ties towards -inf
        return (raw + (half - 1)) >> shift
    if rounding == "AP_RND_ZERO":  # ties towards zero: down for positives, up for negatives
        return (raw + (half - 1) + (raw < 0)) >> shift
    if rounding == "AP_RND_INF":  # ties away from zero: up for positives, down for negatives
        return (raw + half - (raw < 0)) >> shift
    if rounding == "AP_RND_CONV":  # ties to even: up only when the floor is odd
        return (raw + (half - 1) + ((raw >> shift) & 1)) >> shift
    raise ValueError(rounding)  # pragma: no cover - FixedType validates modes


def _overflow(raw: np.ndarray, t: FixedType) -> np.ndarray:
    """Apply ``t``'s overflow mode to an (already quantized) raw of ``t``'s fraction bits."""
    lo, hi = t.min_raw, t.max_raw
    if t.saturation == "AP_WRAP":
        mask = (np.int64(1) << t.width) - 1 if t.width < 63 else np.int64(-1)
        wrapped = raw & mask
        if t.signed:
            wrapped = np.where(wrapped > hi, wrapped - (np.int64(1) << t.width), wrapped)
        return wrapped
    if t.saturation == "AP_SAT":
        return np.clip(raw, lo, hi)
    if t.saturation == "AP_SAT_ZERO":
        return np.where((raw < lo) | (raw > hi), 0, raw)
    if t.saturation == "AP_SAT_SYM":
        return np.clip(raw, -hi if t.signed else lo, hi)
    raise ValueError(t.saturation)  # pragma: no cover


def quantize(raw, frac: int, t: "FixedType | str") -> np.ndarray:
    """Convert exact values ``raw * 2**-frac`` into raws of type ``t``, as a C++ assignment would.

    The target's quantization mode is applied first (only if ``t`` has fewer fraction bits), then
    its overflow mode - the order ap_types uses, so a rounding carry can saturate or wrap.

    Args:
        raw: integer array (any shape) of exact values in units of ``2**-frac``.
        frac: fraction bits of ``raw``.
        t: the target type (FixedType or C++ spelling).

    Returns:
        int64 array of raws of ``t`` (units of ``2**-t.frac``), same shape as ``raw``.
    """
    t = parse_type(t)
    raw = _as_int64(raw)
    shift = frac - t.frac
    if shift > 0:
        q = _round_shift(raw, shift, t.rounding)
    elif shift < 0:
        q = raw << (-shift)
    else:
        q = raw.copy()
    # Sources whose magnitude makes the left shift above exceed int64 are out of scope (width cap).
    return _overflow(q, t)


def round_raw(raw, frac: int, t: "FixedType | str") -> np.ndarray:
    """Like :func:`quantize` but without the overflow step: the rounded raws, possibly out of range.

    Used to check, before any code is written, that a type can never overflow for a given range.
    """
    t = parse_type(t)
    raw = _as_int64(raw)
    shift = frac - t.frac
    if shift > 0:
        return _round_shift(raw, shift, t.rounding)
    return raw << (-shift) if shift < 0 else raw.copy()


_EXACT_SUBNORMAL_FRAC = 1021
"""Most fraction bits for which ap_types converts a subnormal double exactly: every subnormal (and
ap_types' reading of it, in [2**-1023, 2**-1022)) is then below half an LSB."""


def from_float(x, t: "FixedType | str") -> np.ndarray:
    """Quantize float64 values into raws of ``t`` (what ``t v = double_value;`` does in C++).

    Exact for |x * 2**t.frac| < 2**52: the scaling by a power of two, the floor and the comparison
    with the midpoint are exact in float64, so ties are detected exactly - except where the scaling underflows (a type with more
    integer bits than width, frac < 0, and a tiny x): ``x * 2**frac`` may round to a subnormal or to
    zero. Only the sign of such a value matters (it is far below half an LSB), but a negative one
    that became -0.0 would floor to 0 where ap_types gives -1 under AP_TRN; it is given back its sign.

    Subnormal inputs are refused for types with more than 1021 fraction bits: ap_types reads a
    subnormal double with the exponent of a normal one (``ap_fixed_base(double)``), which only
    shows once an LSB is that small.
    """
    t = parse_type(t)
    x = np.asarray(x, dtype=np.float64)
    if not np.all(np.isfinite(x)):
        raise ValueError("cannot quantize non-finite values")
    if t.frac > _EXACT_SUBNORMAL_FRAC and np.any((x != 0) & (np.abs(x) < np.finfo(np.float64).tiny)):
        raise ValueError(f"subnormal doubles into {t} ({t.frac} fraction bits) are not modelled: ap_types "
                         f"misreads their exponent once the type has more than {_EXACT_SUBNORMAL_FRAC} fraction bits")
    scaled = np.ldexp(x, t.frac)
    if t.frac < 0:
        underflow = (scaled == 0) & (x < 0)
        if underflow.any():
            # any value in (-1/2, 0) LSB rounds as the true one in every mode: -1/4 stands for it
            scaled = np.where(underflow, -0.25, scaled)
    if np.any(np.abs(scaled) >= 2.0**52):
        raise ValueError(f"values too large for an exact conversion to {t}")
    floor = np.floor(scaled)
    # Compared with the midpoint floor + 1/2 (exact for |floor| < 2**52), never through the fraction
    # scaled - floor: that difference rounds for -1/2 < scaled < 0 (1 + scaled needs more bits than
    # scaled), and the double just above -1/2 LSB would look like a tie.
    midpoint = floor + 0.5
    fl = floor.astype(np.int64)
    exact = scaled == floor
    half = scaled == midpoint
    above = scaled > midpoint
    neg = scaled < 0
    r = t.rounding
    if r == "AP_TRN":
        q = fl
    elif r == "AP_TRN_ZERO":
        q = fl + (neg & ~exact)
    else:
        tie_up = {
            "AP_RND": np.ones_like(half),
            "AP_RND_ZERO": neg,
            "AP_RND_MIN_INF": np.zeros_like(half),
            "AP_RND_INF": ~neg,
            "AP_RND_CONV": (fl & 1) == 1,
        }[r]
        q = fl + (above | (half & tie_up))
    return _overflow(q, t)


def to_float(raw, t: "FixedType | str") -> np.ndarray:
    """Raws of ``t`` as float64 values (exact for widths up to 53 bits)."""
    t = parse_type(t)
    return np.ldexp(_as_int64(raw).astype(np.float64), -t.frac)


def wrap_to_type(bits, t: "FixedType | str") -> np.ndarray:
    """Interpret the low ``t.width`` bits of unsigned ``bits`` (e.g. read back from C++) as raws of ``t``."""
    t = parse_type(t)
    b = _as_int64(bits) & ((np.int64(1) << t.width) - 1)
    if t.signed:
        b = np.where(b >= (np.int64(1) << (t.width - 1)), b - (np.int64(1) << t.width), b)
    return b


def check_raw(raw, t: "FixedType | str", what: str = "value") -> np.ndarray:
    """Return ``raw`` as int64 after checking that every entry is a valid raw of ``t``."""
    t = parse_type(t)
    arr = _as_int64(raw)
    if arr.size and (arr.min() < t.min_raw or arr.max() > t.max_raw):
        raise ValueError(
            f"{what}: raw values must lie in [{t.min_raw}, {t.max_raw}] for {t}, "
            f"got [{arr.min()}, {arr.max()}]"
        )
    return arr


def limit_raws(t: "FixedType | str") -> np.ndarray:
    """The raws at the type limits: most negative, -lsb, 0, +lsb, max positive (deduplicated)."""
    t = parse_type(t)
    cand = {t.min_raw, t.max_raw, 0, min(1, t.max_raw), max(-1, t.min_raw)}
    return np.array(sorted(cand), dtype=np.int64)


def signed_bits_for(lo: int, hi: int) -> int:
    """Smallest width W such that a signed W-bit integer holds every integer in [lo, hi]."""
    w = 1
    while not (-(1 << (w - 1)) <= lo and hi <= (1 << (w - 1)) - 1):
        w += 1
    return w


def unsigned_bits_for(hi: int) -> int:
    """Smallest width W >= 1 such that an unsigned W-bit integer holds every integer in [0, hi]."""
    if hi < 0:
        raise ValueError("unsigned range must be non-negative")
    return max(1, int(hi).bit_length())
