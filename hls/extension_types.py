"""Types of the hls4ml extension: hls4ml precision objects as our C++ spellings and
:class:`~vitcod.hls.fixed_point.FixedType`, QKeras quantizers as exact ap_fixed types, and the check
that weights are exactly representable in their type. Shared by the extension's parsers and IR
layers (:mod:`vitcod.hls.extension`) and its node-to-engine builders (:mod:`vitcod.hls.extension_engines`).
"""

from __future__ import annotations

import numpy as np

from .fixed_point import FixedType, from_float, parse_type, to_float

__all__ = ["ExtensionError", "cpp_type", "exact_weights", "fixed_type", "is_specified", "quantize_weights",
           "quantizer_type"]


class ExtensionError(ValueError):
    """A layer cannot be translated (wrong shapes, weights that no exact type represents, ...)."""


def cpp_type(precision) -> str:
    """The C++ spelling (``ap_fixed<16,6,AP_RND_CONV,AP_SAT,0>``) of an hls4ml precision object."""
    if hasattr(precision, "precision"):  # a NamedType
        precision = precision.precision
    if hasattr(precision, "definition_cpp"):
        return precision.definition_cpp()
    from hls4ml.backends.fpga.fpga_types import APTypeConverter

    return APTypeConverter().convert(precision).definition_cpp()


def is_specified(precision) -> bool:
    """False for hls4ml's placeholder of a precision nobody set yet."""
    return type(precision).__name__ != "UnspecifiedPrecisionType"


def fixed_type(precision) -> FixedType:
    """An hls4ml precision as our :class:`~vitcod.hls.fixed_point.FixedType`."""
    return parse_type(cpp_type(precision))


def quantizer_type(spec: str | None) -> FixedType | None:
    """The exact ap_fixed type of a QKeras ``quantized_bits`` string (None for no quantizer).

    ``quantized_bits(b, i, keep_negative, alpha=1)`` produces multiples of 2^-(b-i-keep_negative) in
    [-2^i, 2^i): ``ap_fixed<b, i+1>`` (``ap_ufixed<b, i>`` without the sign).
    """
    if not spec:
        return None
    from qkeras import get_quantizer

    q = get_quantizer(spec)
    if type(q).__name__ != "quantized_bits":
        raise ExtensionError(f"quantizer {spec!r}: only quantized_bits has an exact ap_fixed type here")
    alpha = getattr(q, "alpha", None)
    if alpha not in (None, 1, 1.0, "1"):
        raise ExtensionError(f"quantizer {spec!r}: alpha={alpha!r} gives non power-of-two scales; use alpha=1")
    bits, integer, signed = int(q.bits), int(q.integer), bool(q.keep_negative)
    return FixedType(bits, integer + int(signed), signed)


def quantize_weights(values: np.ndarray, spec: str | None) -> np.ndarray:
    """Apply a QKeras quantizer string to float weights exactly as the Keras layer does."""
    values = np.asarray(values, dtype=np.float32)
    if not spec:
        return values
    from qkeras import get_quantizer

    return np.asarray(get_quantizer(spec)(values), dtype=np.float32)


def exact_weights(what: str, values: np.ndarray, t: FixedType) -> np.ndarray:
    """Check that every value is exactly representable in ``t``; returns float64 values."""
    values = np.asarray(values, dtype=np.float64)
    back = to_float(from_float(values, t), t)
    bad = np.flatnonzero(back.ravel() != values.ravel())
    if bad.size:
        i = int(bad[0])
        raise ExtensionError(
            f"{what}: {bad.size} value(s) are not exactly representable in {t.cpp()} "
            f"(first: {values.ravel()[i]!r} -> {back.ravel()[i]!r}); the weights and their type must agree"
        )
    return values
