"""ap_types type spellings: the one parser of ``ap_fixed<W,I,Q,O,N>`` and friends, and their geometry.

Where this fits: every stage names fixed-point types by their C++ spelling - the HLS precision
configuration, ``network.json`` (the network's input and output types), ``vitcod.json`` and the
IP config header. :meth:`ApType.parse` is the only place such a spelling is read; it accepts every
legal ap_types mode, and :class:`ApType` answers what each consumer needs: width, integer and
fraction bits, sign, the raw range and the modes.

Who may refuse what it cannot model (with a message naming the mode):

* the flow's exact arithmetic model (:mod:`vitcod.hls.fixed_point`) does not model ``AP_WRAP_SM``
  or a non-zero saturation-bit count ``N``;
* the host's float -> raw conversion (:mod:`vitcod.host.quantization`, mixed into
  :class:`ApType`) never wraps, so it accepts every mode: ``AP_WRAP_SM`` and ``N`` only change
  how a value wraps.

Raws are ``value * 2**frac`` as integers; they are handled as int64, hence widths 1..62.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from ..errors import ApTypeError
from ..quantization import HostConversion

ROUNDING_MODES = (
    "AP_TRN",  # floor (towards -inf); the ap_types default
    "AP_TRN_ZERO",  # towards zero
    "AP_RND",  # to nearest, ties towards +inf
    "AP_RND_ZERO",  # to nearest, ties towards zero
    "AP_RND_MIN_INF",  # to nearest, ties towards -inf
    "AP_RND_INF",  # to nearest, ties away from zero
    "AP_RND_CONV",  # to nearest, ties to even (convergent)
)
SATURATION_MODES = (
    "AP_WRAP",  # two's-complement wrap-around; the ap_types default
    "AP_SAT",  # clamp to [min, max]
    "AP_SAT_ZERO",  # overflow -> 0
    "AP_SAT_SYM",  # signed: clamp to [-max, max]; unsigned: as AP_SAT
    "AP_WRAP_SM",  # sign-magnitude wrap
)

MAX_WIDTH = 62
"""Widest type the contract carries (raws are int64; wider fields could not be sign-extended)."""

_FIXED_RE = re.compile(
    r"^\s*(ap_fixed|ap_ufixed)\s*<\s*(\d+)\s*,\s*(-?\d+)\s*"
    r"(?:,\s*(\w+)\s*)?(?:,\s*(\w+)\s*)?(?:,\s*(\d+)\s*)?>\s*$"
)
_INT_RE = re.compile(r"^\s*(ap_int|ap_uint)\s*<\s*(\d+)\s*>\s*$")


def raw_range(width: int, signed: bool) -> tuple[int, int]:
    """Lowest and highest raw of a ``width``-bit two's-complement (or unsigned) field."""
    return (-(1 << (width - 1)), (1 << (width - 1)) - 1) if signed else (0, (1 << width) - 1)


class RawGeometry:
    """Fraction bits and raw range of a type with ``width``, ``integer`` and ``signed`` attributes
    (shared by :class:`ApType` and the flow's arithmetic view, ``vitcod.hls.fixed_point.FixedType``)."""

    width: int
    integer: int
    signed: bool

    @property
    def frac(self) -> int:
        """Fraction bits, ``width - integer`` (may be negative)."""
        return self.width - self.integer

    @property
    def min_raw(self) -> int:
        return raw_range(self.width, self.signed)[0]

    @property
    def max_raw(self) -> int:
        return raw_range(self.width, self.signed)[1]


@dataclass(frozen=True)
class ApType(RawGeometry, HostConversion):
    """One ap_types type, as spelled in C++.

    Attributes:
        cpp: the spelling, as written (surrounding blanks removed).
        width: bits of a value (and on the wire).
        integer: integer bits, counting the sign bit of signed types (``ap_fixed<W, I>``); may be
            negative or above ``width``. ``ap_int<W>`` has ``W``.
        signed: two's-complement signed (``ap_fixed``, ``ap_int``).
        rounding: the quantization mode an assignment into the type applies: the spelled one,
            else ``AP_TRN`` (``AP_TRN_ZERO`` for ``ap_int``/``ap_uint``: a C cast drops the
            fraction towards zero).
        saturation: the overflow mode: the spelled one, else ``AP_WRAP``.
        rounding_explicit: whether the spelling names the quantization mode.
        is_int: ``ap_int``/``ap_uint``.
        saturation_bits: the ``N`` argument of ``ap_fixed<W,I,Q,O,N>`` (0 when not spelled).

    The host's float <-> raw conversion (``round_float``, ``quantize``, ``dequantize``, ...)
    comes from :class:`~vitcod.host.quantization.HostConversion`.
    """

    cpp: str
    width: int
    integer: int
    signed: bool
    rounding: str = "AP_TRN"
    saturation: str = "AP_WRAP"
    rounding_explicit: bool = False
    is_int: bool = False
    saturation_bits: int = 0

    @classmethod
    def parse(cls, cpp: str) -> "ApType":
        """Parse ``ap_fixed<W,I[,Q[,O[,N]]]>``, ``ap_ufixed<...>``, ``ap_int<W>`` or ``ap_uint<W>``.

        Raises:
            ApTypeError: another spelling (floats have no raw), an unknown mode, or a width
                outside 1..62.
        """
        if not isinstance(cpp, str):
            raise ApTypeError(f"a type must be a C++ spelling like 'ap_fixed<16,6>', got {cpp!r}")
        m = _FIXED_RE.match(cpp)
        if m:
            kind, width, integer, rnd, sat, nbits = m.groups()
            t = cls(cpp.strip(), int(width), int(integer), kind == "ap_fixed", rnd or "AP_TRN", sat or "AP_WRAP",
                    rounding_explicit=rnd is not None, saturation_bits=int(nbits or 0))
        else:
            m = _INT_RE.match(cpp)
            if not m:
                raise ApTypeError(
                    f"cannot parse type {cpp!r}: expected ap_fixed<W,I[,Q[,O[,N]]]>, ap_ufixed<...>, ap_int<W> or "
                    "ap_uint<W> (floats are not allowed: values are fixed-point raws)")
            width = int(m.group(2))
            t = cls(cpp.strip(), width, width, m.group(1) == "ap_int", "AP_TRN_ZERO", is_int=True)
        if t.rounding not in ROUNDING_MODES:
            raise ApTypeError(f"{cpp!r}: unknown quantization mode {t.rounding!r}; expected one of {ROUNDING_MODES}")
        if t.saturation not in SATURATION_MODES:
            raise ApTypeError(f"{cpp!r}: unknown overflow mode {t.saturation!r}; expected one of {SATURATION_MODES}")
        if not 1 <= t.width <= MAX_WIDTH:
            raise ApTypeError(f"{cpp!r}: width must be in 1..{MAX_WIDTH} bits, got {t.width}")
        return t

    @property
    def canonical(self) -> str:
        """The spelling with every parameter explicit (``ap_fixed<12,4>`` ->
        ``ap_fixed<12,4,AP_TRN,AP_WRAP,0>``): equal for every spelling of one C++ type."""
        if self.is_int:
            return f"ap_{'' if self.signed else 'u'}int<{self.width}>"
        return (f"ap_{'' if self.signed else 'u'}fixed<{self.width},{self.integer},{self.rounding},{self.saturation},"
                f"{self.saturation_bits}>")

    @property
    def code(self) -> int:
        """The 32-bit code of this type that the IP reports in ``in_type`` / ``out_type`` (:func:`type_code`)."""
        return type_code(self)

    @property
    def lsb(self) -> float:
        return float(np.ldexp(1.0, -self.frac))

    @property
    def min_value(self) -> float:
        return float(np.ldexp(float(self.min_raw), -self.frac))

    @property
    def max_value(self) -> float:
        return float(np.ldexp(float(self.max_raw), -self.frac))


# ---- type codes: what the IP's in_type / out_type registers report ---------------------------------
TYPE_CODE_VALID = 1 << 31
"""Set in every type code (a register that reads 0 holds no code)."""
TYPE_CODE_INTEGER_RANGE = (-512, 511)
"""Integer bits a code can carry (10-bit two's complement)."""
TYPE_CODE_MAX_SATURATION_BITS = 63


def type_code(t: ApType) -> int:
    """The 32-bit code the IP top computes from its C++ type (``vitcod::type_code`` in
    ``overlay/ip/vitcod_top.h``; ``tests/overlay/test_overlay_registers.py`` keeps the two equal).

    Layout: bits 0-6 width, bit 7 signed, bit 8 ap_int/ap_uint, bits 9-18 integer bits (10-bit two's
    complement), bits 19-21 quantization mode (index in :data:`ROUNDING_MODES`), bits 22-24 overflow
    mode (index in :data:`SATURATION_MODES`), bits 25-30 saturation bits ``N``, bit 31 set.

    Raises:
        ApTypeError: integer bits or ``N`` the code cannot carry.
    """
    lo, hi = TYPE_CODE_INTEGER_RANGE
    if not lo <= t.integer <= hi:
        raise ApTypeError(f"{t.cpp!r}: integer bits must be in {lo}..{hi} for the IP to report the type, got {t.integer}")
    if not 0 <= t.saturation_bits <= TYPE_CODE_MAX_SATURATION_BITS:
        raise ApTypeError(f"{t.cpp!r}: saturation bits must be in 0..{TYPE_CODE_MAX_SATURATION_BITS}, "
                          f"got {t.saturation_bits}")
    return (t.width | int(t.signed) << 7 | int(t.is_int) << 8 | (t.integer & 0x3FF) << 9
            | ROUNDING_MODES.index(t.rounding) << 19 | SATURATION_MODES.index(t.saturation) << 22
            | t.saturation_bits << 25 | TYPE_CODE_VALID)


def describe_type_code(code: int) -> str:
    """The canonical spelling of a type code (for messages), or a description of a malformed one."""
    if not code & TYPE_CODE_VALID:
        return f"no type (register value {code:#010x})"
    width, signed, is_int = code & 0x7F, bool(code >> 7 & 1), bool(code >> 8 & 1)
    integer = (code >> 9 & 0x3FF) - ((code >> 9 & 0x200) << 1)
    q, o, n = code >> 19 & 7, code >> 22 & 7, code >> 25 & 0x3F
    if q >= len(ROUNDING_MODES) or o >= len(SATURATION_MODES):
        return f"an unknown type code {code:#010x}"
    if is_int:
        return f"ap_{'' if signed else 'u'}int<{width}>"
    return f"ap_{'' if signed else 'u'}fixed<{width},{integer},{ROUNDING_MODES[q]},{SATURATION_MODES[o]},{n}>"
