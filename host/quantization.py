"""The host's float <-> raw conversion policy, vectorised in numpy: a mixin of the contract's type.

Where this fits: ``vitcod.json`` names the input and output types of the network as C++
spellings, parsed by the overlay contract (:class:`vitcod.host.contract.ApType`, which mixes
this class in). The driver turns float images into *raws* (``raw = value * 2**frac`` as an
integer) before packing them onto the stream (:mod:`vitcod.host.wire`), and turns output raws
back into floats. This module holds only that policy; the type's parsing and geometry are the
contract's.

Host quantization policy (float -> raw):

* Rounding: the type's own quantization mode when its spelling names one, else round half up
  (``AP_RND``), which is what a user expects of "the nearest representable value". The modes are
  those of ap_types and are exact (ties are detected on the exact binary value, never with
  ``floor(x + 0.5)``).
* Tiny values: a type with more integer bits than width scales values down, and a tiny negative
  value may underflow to -0 on the way; it keeps its sign (AP_TRN floors it to -1 LSB, as ap_types
  does). Decisions compare with the midpoint floor + 1/2, never with a rounded fraction.
* Overflow: always saturate to the type's range (symmetric for ``AP_SAT_SYM``), never wrap:
  a wrapped input would silently turn a bright pixel into a dark one. Saturated values are
  counted, and the driver warns once. So every overflow mode is accepted, ``AP_WRAP_SM`` and a
  saturation-bit count included (they only change how a value would wrap).

Only board-side dependencies (numpy). The flow's exact ap_fixed model is
``vitcod.hls.fixed_point``; ``tests/host/test_host_pack.py`` checks this policy against it.
"""

from __future__ import annotations

from functools import cached_property, lru_cache
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .contract.aptypes import ApType

HOST_DEFAULT_ROUNDING = "AP_RND"
"""Rounding the host uses when a type does not name one: round half up."""

MAX_QUANTIZE_WIDTH = 52
"""Widest type whose float -> raw conversion is exact in float64."""


def _rne_bounds(lo: int, hi: int) -> tuple[float, bool, float, bool]:
    # Ties to even: lo - 0.5 rounds to lo only if lo is even, hi + 0.5 to hi only if hi is even.
    return -0.5, lo % 2 != 0, 0.5, hi % 2 != 0


#: Rounding modes of the fast path -> (lo, hi) -> (under offset, under inclusive, over offset, over
#: inclusive): a scaled value s saturates low iff s < lo + under offset (<= when inclusive), high iff
#: s > hi + over offset (>= when inclusive).
_FAST_BOUNDS = {
    "AP_RND": lambda lo, hi: (-0.5, False, 0.5, True),  # floor(s + 1/2)
    "AP_RND_CONV": _rne_bounds,
    "AP_TRN": lambda lo, hi: (0.0, False, 1.0, True),  # floor(s)
    "AP_TRN_ZERO": lambda lo, hi: (-1.0, True, 1.0, True),  # trunc(s)
}


@lru_cache(maxsize=256)
def _fast_plan(fmt: "ApType", dtype: np.dtype) -> tuple | None:
    """Constants of :meth:`HostConversion.round_float_into` for one type and input dtype (cached:
    the per-call numpy scalar set-up would otherwise cost as much as a pass over a small batch)."""
    if dtype == np.float32 and fmt.width <= 23:
        ftype = np.float32
    elif dtype == np.float64 and fmt.width <= MAX_QUANTIZE_WIDTH:
        ftype = np.float64
    else:
        return None
    mode = fmt.host_rounding
    if mode not in _FAST_BOUNDS:
        return None
    lo, hi = fmt.host_min_raw, fmt.max_raw
    under_off, under_eq, over_off, over_eq = _FAST_BOUNDS[mode](lo, hi)
    return (mode, ftype(2.0 ** fmt.frac), ftype(lo + under_off), under_eq, ftype(hi + over_off), over_eq,
            ftype(lo), ftype(hi), ftype(0.0), ftype(-0.5), np.nextafter(ftype(0.5), ftype(0.0)))


UNDERFLOW_STAND_IN = -0.25
"""What a negative value whose scaling underflowed to -0 becomes (see :func:`_restore_underflowed_signs`)."""


def _restore_underflowed_signs(x: np.ndarray, scaled: np.ndarray) -> None:
    """Give negative values whose scaling underflowed to zero their sign back, in place.

    Only a type with more integer bits than width (frac < 0) scales values down; a tiny negative x
    (a subnormal, or any value below the smallest float32 normal in float32) may then become -0,
    which would round to raw 0 where ap_types floors it to -1 under AP_TRN. Such a value lies far
    below half an LSB, so every rounding mode treats it as -1/4 LSB would: that is written instead.
    """
    underflow = (scaled == 0) & (x < 0)
    if underflow.any():
        np.copyto(scaled, scaled.dtype.type(UNDERFLOW_STAND_IN), where=underflow)


class HostConversion:
    """Float <-> raw conversion with the host policy (see the module docstring).

    A mixin of :class:`vitcod.host.contract.ApType`: it reads the type's ``cpp``, ``width``,
    ``signed``, ``frac``, ``min_raw``, ``max_raw``, ``rounding``, ``rounding_explicit`` and
    ``saturation``.
    """

    @property
    def host_rounding(self) -> str:
        """Rounding the host applies when converting floats: the type's, or round half up."""
        return self.rounding if self.rounding_explicit else HOST_DEFAULT_ROUNDING

    @cached_property
    def conversion_plan(self) -> tuple[int, int, int, float, int]:
        """``(width, host_min_raw, max_raw, 2**frac, index of host_rounding in ROUNDING_MODES)``:
        the format arguments of the compiled quantize+pack kernel, computed once per format (the
        driver converts every batch with the same one)."""
        from .contract.aptypes import ROUNDING_MODES  # (the contract imports this module)

        return (self.width, self.host_min_raw, self.max_raw, 2.0 ** self.frac,
                ROUNDING_MODES.index(self.host_rounding))

    @property
    def host_min_raw(self) -> int:
        """Lowest raw the host saturates to (``-max`` for ``AP_SAT_SYM`` signed types)."""
        return -self.max_raw if (self.signed and self.saturation == "AP_SAT_SYM") else self.min_raw

    # ---- conversion ----------------------------------------------------------------------------
    def round_float(self, x: np.ndarray) -> tuple[np.ndarray, int]:
        """Round floats to raws (as float64 integers) and saturate them to the type's range.

        Args:
            x: real values, any shape; must be finite (the driver checks before calling).

        Returns:
            ``(raws, saturated)``: float64 array of integral raws within
            ``[host_min_raw, max_raw]``, and how many values were out of range.
        """
        if self.width > MAX_QUANTIZE_WIDTH:
            raise NotImplementedError(
                f"{self.cpp}: float conversion is exact only up to {MAX_QUANTIZE_WIDTH} bits; pass raws instead")
        lo, hi = self.host_min_raw, self.max_raw
        x = np.asarray(x)
        # float32 images stay float32 when every raw of the type is a float32 integer (width <= 23):
        # scaling by 2**frac, floor and the fraction below are exact in either precision.
        dtype = np.float32 if x.dtype == np.float32 and self.width <= 23 else np.float64
        # exact: scaling by a power of two (np.ldexp is the same operation, ~40x slower)
        scaled = np.multiply(x, dtype(2.0 ** self.frac), dtype=dtype)
        if self.frac < 0:
            _restore_underflowed_signs(x, scaled)
        # Anything beyond [lo - 2, hi + 2] saturates whatever the rounding; clipping keeps every
        # later step exact and within int64. Skipped (two reductions instead) when nothing is out.
        if scaled.size and (scaled.min() < lo - 2 or scaled.max() > hi + 2):
            np.clip(scaled, lo - 2, hi + 2, out=scaled)
        raws = np.floor(scaled)
        mode = self.host_rounding
        # Decisions compare scaled with floor + 1/2 (exact), never the fraction scaled - floor: that
        # rounds for -1/2 < scaled < 0, where the float just above -1/2 LSB would look like a tie.
        if mode == "AP_TRN_ZERO":
            raws += (scaled > raws) & (raws < 0)
        elif mode != "AP_TRN":
            midpoint = raws + dtype(0.5)
            if mode == "AP_RND":  # ties towards +inf: the common case, one comparison
                up = scaled >= midpoint
            else:
                up = scaled > midpoint  # AP_RND_MIN_INF (ties towards -inf): only strictly above
                tie = scaled == midpoint
                if mode == "AP_RND_ZERO":  # ties towards zero
                    up |= tie & (raws < 0)
                elif mode == "AP_RND_INF":  # ties away from zero
                    up |= tie & (raws >= 0)
                elif mode == "AP_RND_CONV":  # ties to even
                    up |= tie & (np.fmod(raws, 2) != 0)
            raws += up
        saturated = 0
        if raws.size and (raws.min() < lo or raws.max() > hi):
            saturated = int(np.count_nonzero(raws < lo)) + int(np.count_nonzero(raws > hi))
            np.clip(raws, lo, hi, out=raws)
        return raws, saturated

    def round_float_into(self, x: np.ndarray, out: np.ndarray) -> int | None:
        """Fast path of :meth:`round_float`: round, saturate and write the raws into ``out`` directly.

        Same raws and the same saturation count as :meth:`round_float` (bit for bit; the tests compare
        both), in fewer numpy passes: scale (exact), min/max, saturate only if something is out of
        range, then ONE rounding ufunc that writes straight into the integer array ``out`` - e.g. the
        byte view of a DMA buffer, so no int64 or float intermediate of the raws is ever made.

        Rounding is exact in the input's own precision (float32 up to 23 bits, float64 up to 52):

        * AP_RND_CONV / AP_TRN / AP_TRN_ZERO: ``rint`` / ``floor`` / ``trunc`` are exact.
        * AP_RND (ties up): ``floor(s + c)`` with ``c`` the largest float below 0.5. The sum rounds,
          but never across an integer except for ``s == -0.5`` (checked exhaustively over every
          float32 with ``|s| < 2^23``); that one value is replaced by 0 first (it rounds to 0)
          whenever the minimum reaches -0.5. ``floor(s + 0.5)`` would instead fail for the largest
          float below 0.5, which is in the middle of every range.

        Args:
            x: real values; must be finite (the driver checks first).
            out: integer array of ``x``'s shape (may be a strided view) whose dtype holds every raw.

        Returns:
            How many values were out of range (saturated), or None when the fast path does not
            apply (another input dtype or width, another rounding mode, NaN) - nothing was written
            and the caller uses :meth:`round_float`.
        """
        x = np.asarray(x)
        plan = _fast_plan(self, x.dtype)
        if plan is None or out.shape != x.shape:
            return None
        if x.size == 0:
            return 0
        mode, scale, under_bound, under_eq, over_bound, over_eq, lo, hi, zero, minus_half, below_half = plan
        scaled = np.multiply(x, scale, dtype=scale.dtype)  # exact (power of two)
        if self.frac < 0:
            _restore_underflowed_signs(x, scaled)
        low, high = scaled.min(), scaled.max()
        if low != low or high != high:  # NaN
            return None
        saturated = 0
        if high > over_bound or (over_eq and high == over_bound):
            over = scaled >= over_bound if over_eq else scaled > over_bound
            saturated += int(np.count_nonzero(over))
            np.copyto(scaled, hi, where=over)
        if low < under_bound or (under_eq and low == under_bound):
            under = scaled <= under_bound if under_eq else scaled < under_bound
            saturated += int(np.count_nonzero(under))
            np.copyto(scaled, lo, where=under)
        if mode == "AP_RND":
            if low <= minus_half:
                np.copyto(scaled, zero, where=scaled == minus_half)  # the one value floor(s + c) misses
            np.add(scaled, below_half, out=scaled)
            np.floor(scaled, out=out, casting="unsafe")
        elif mode == "AP_RND_CONV":
            np.rint(scaled, out=out, casting="unsafe")
        elif mode == "AP_TRN":
            np.floor(scaled, out=out, casting="unsafe")
        else:  # AP_TRN_ZERO
            np.trunc(scaled, out=out, casting="unsafe")
        return saturated

    def quantize(self, x: np.ndarray) -> tuple[np.ndarray, int]:
        """Floats -> int64 raws with the host policy (see the module docstring).

        Returns:
            ``(raws, saturated)``.
        """
        raws, saturated = self.round_float(x)
        return raws.astype(np.int64), saturated

    def dequantize(self, raws: np.ndarray) -> np.ndarray:
        """Raws -> float64 values (exact for widths up to 53 bits)."""
        return np.ldexp(np.asarray(raws, dtype=np.float64), -self.frac)
