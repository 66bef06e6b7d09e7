"""The overlay's stream wire format, vectorised for the board: pack raws into 64-bit words and back.

Where this fits: the DMA buffers the driver hands to the AXI DMA hold the IP's AXI4-Stream words.
The format (version :data:`FORMAT_VERSION`) and its numpy reference are the overlay contract's
(:mod:`vitcod.host.contract.packing`); this module is the driver's fast path for the same words,
and ``tests/host/test_host_pack.py`` checks it against the reference on random data:

* a value of a ``W``-bit type travels as its raw two's-complement bits, ``floor(64 / W)`` values
  per word, value ``k`` in bits ``[k*W, k*W + W)``, unused bits zero;
* each image starts on a fresh word (``ceil(n / values_per_word)`` words per image).

Two code paths, same result: byte-aligned widths (8, 16, 32) are a reinterpreting cast on a
little-endian host (what PYNQ boards and x86 are); every other width shifts whole columns of
values into place, one numpy operation per slot of the word (at most 64), never per value.

:func:`quantize_pack` (floats -> words, what the driver runs per batch) uses the compiled kernel
``vitcod.host._quantize_pack`` (``host/native/quantize_pack.c``) when it was built at install time:
numpy cannot fuse scale, round, saturate and pack into one pass, and the passes cost far more than
the copy of the packed bytes. Without it (or with ``VITCOD_HOST_NATIVE=0``) the numpy path runs:
it rounds straight into the word buffer's fields (see
:meth:`vitcod.host.quantization.HostConversion.round_float_into`). Both give the same words and saturation
count, bit for bit (``tests/host/test_host_native.py``); :func:`native_kernel` says which one runs.
"""

from __future__ import annotations

import os
import sys

import numpy as np

from .contract import WORD_BITS, ApType, values_per_word, words_per_image
from .contract.packing import as_batch, check_padding, check_raws, check_width
from .errors import WireFormatError

try:  # built by setup.py when a C compiler was there at install time
    from . import _quantize_pack as _native
except ImportError:
    _native = None
if os.environ.get("VITCOD_HOST_NATIVE", "1") == "0" or sys.byteorder != "little":  # (fields are stored LE)
    _native = None

_LITTLE_ENDIAN = sys.byteorder == "little"
_CAST_TYPES = {(8, True): np.int8, (8, False): np.uint8, (16, True): np.int16, (16, False): np.uint16,
               (32, True): np.int32, (32, False): np.uint32}


def native_kernel() -> str | None:
    """Which compiled quantize+pack kernel :func:`quantize_pack` uses: ``"avx2"`` (x86-64 with AVX2
    and FMA), ``"generic"`` (compiled C, e.g. the boards' Arm cores), or None (numpy path: the
    extension was not built, or ``VITCOD_HOST_NATIVE=0``)."""
    return None if _native is None else _native.simd


def _cast_type(width: int, signed: bool):
    return _CAST_TYPES.get((width, signed)) if _LITTLE_ENDIAN else None


def _slots_view(words: np.ndarray, batch: int, width: int, signed: bool) -> np.ndarray:
    """The word buffer seen as (batch, words_per_image * values_per_word) fields (cast path only)."""
    return words.view(_cast_type(width, signed)).reshape(batch, -1)


def _check_out(out: np.ndarray | None, n_words: int) -> np.ndarray:
    if out is None:
        return np.empty(n_words, dtype=np.uint64)
    if out.dtype != np.uint64 or out.ndim != 1 or not out.flags.c_contiguous:
        raise WireFormatError(f"output buffer must be a contiguous 1-D uint64 array, got {out.dtype} {out.shape}")
    if out.size != n_words:
        raise WireFormatError(f"output buffer holds {out.size} words, the batch needs {n_words}")
    if not out.flags.writeable:
        raise WireFormatError("output buffer is read-only; pass a writable uint64 array (e.g. a DMA buffer)")
    return out


def pack(raws, width: int, signed: bool, out: np.ndarray | None = None) -> np.ndarray:
    """Pack raws ``(batch, n_values)`` into stream words.

    Args:
        raws: integer array (a single image may be 1-D); every raw must fit ``width`` bits.
        width: bits per value.
        signed: two's-complement signed raws.
        out: optional contiguous uint64 array of exactly ``batch * words_per_image`` words to
            write into (e.g. a DMA buffer); allocated when omitted.

    Returns:
        The uint64 words in stream order (``out`` when given).

    Raises:
        WireFormatError: raws that are not integers or do not fit ``width`` bits (never wrapped
            silently), or a wrong output buffer.
    """
    width = check_width(width)
    raws = as_batch(raws)
    if raws.dtype.kind not in "iu":
        raise WireFormatError(f"raws must be integers, got {raws.dtype}")
    check_raws(raws, width, signed)
    return _pack_checked(raws, width, signed, out)


def _pack_checked(values: np.ndarray, width: int, signed: bool, out: np.ndarray | None) -> np.ndarray:
    """Pack (batch, n) values already known to lie in the type's range (ints or integral floats)."""
    batch, n_values = values.shape
    vpw = values_per_word(width)
    n_words = words_per_image(n_values, width)
    out = _check_out(out, batch * n_words)
    if _cast_type(width, signed) is not None:
        fields = _slots_view(out, batch, width, signed)
        fields[:, :n_values] = values  # a cast: values fit the field type
        fields[:, n_values:] = 0
        return out
    slots = np.zeros((batch, n_words * vpw), dtype=np.int64)
    slots[:, :n_values] = values  # (a ufunc writing into this strided view is ~10x slower)
    return _pack_slots(slots, width, out)


def _pack_slots(slots: np.ndarray, width: int, out: np.ndarray) -> np.ndarray:
    """OR (batch, n_words * vpw) int64 raws (padding slots zero) into ``out``, one slot column per step."""
    vpw = values_per_word(width)
    slots &= (1 << width) - 1  # the low `width` bits of each raw: two's complement for negatives
    fields = slots.reshape(-1, vpw).view(np.uint64)
    np.copyto(out, fields[:, 0])
    for k in range(1, vpw):  # one column of slots per step, shifted into place
        out |= fields[:, k] << np.uint64(k * width)
    return out


def pack_formatted(raws: np.ndarray, fmt: ApType, out: np.ndarray | None = None) -> np.ndarray:
    """:func:`pack` with the width and sign of a type."""
    return pack(raws, fmt.width, fmt.signed, out)


def count_nonfinite(x: np.ndarray) -> int:
    """Number of NaN/inf values in a float array (one pass in the compiled kernel when it is built)."""
    if _native is not None:
        count = _native.count_nonfinite(x)
        if count >= 0:
            return count
    return int(x.size - np.count_nonzero(np.isfinite(x)))


def quantize_pack(x: np.ndarray, fmt: ApType, out: np.ndarray | None = None) -> tuple[np.ndarray, int]:
    """Quantize floats ``(batch, n_values)`` with the host policy and pack them in one go.

    float32/float64 images go through the compiled kernel when it is built (one pass, see the
    module docstring). The numpy path: a rounding mode of :meth:`ApType.round_float_into`
    rounds straight into the word buffer - for byte-aligned widths (8, 16, 32) into its
    reinterpreted view (no intermediate array of raws at all), otherwise into the int64 slot array
    the shifts read; everything else goes through :meth:`ApType.round_float`. All give the
    same words (tests compare them bit for bit).

    Returns:
        ``(words, saturated)``: the stream words (``out`` when given) and the number of values
        that were outside the type's range.
    """
    x = as_batch(x, "values")
    batch, n_values = x.shape
    if _native is not None:  # kept lean: this runs once per batch (the kernel returns -2 above 52 bits)
        words = np.empty(batch * -(-n_values // (WORD_BITS // fmt.width)), np.uint64) if out is None else out
        try:
            saturated = _native.quantize_pack(x, words, n_values, *fmt.conversion_plan)
        except (ValueError, BufferError):
            _check_out(out, batch * words_per_image(n_values, fmt.width))  # names what is wrong with `out`
            raise
        if saturated >= 0:
            return words, saturated
        # -1: NaN in the input, -2: not for the kernel (other dtype, not contiguous, width): numpy path
    width, signed = fmt.width, fmt.signed
    if x.dtype in (np.float32, np.float64) and width <= WORD_BITS - 2:
        n_words = words_per_image(n_values, width)
        if _cast_type(width, signed) is not None:
            words = _check_out(out, batch * n_words)
            fields = _slots_view(words, batch, width, signed)
            saturated = fmt.round_float_into(x, fields[:, :n_values])
            if saturated is not None:
                fields[:, n_values:] = 0
                return words, saturated
        else:
            slots = np.zeros((batch, n_words * values_per_word(width)), dtype=np.int64)
            saturated = fmt.round_float_into(x, slots[:, :n_values])
            if saturated is not None:
                return _pack_slots(slots, width, _check_out(out, batch * n_words)), saturated
    raws, saturated = fmt.round_float(x)
    return _pack_checked(raws, width, signed, out), saturated


def unpack(words, n_values: int, width: int, signed: bool, strict: bool = True) -> np.ndarray:
    """Unpack stream words into raws ``(batch, n_values)`` int64, the inverse of :func:`pack`.

    Runs in the compiled kernel when it is built (the numpy path below otherwise, and to name a
    padding bit that is set); both give the same raws.

    Args:
        words: uint64 words, a whole number of images.
        n_values: values per image.
        width: bits per value.
        signed: sign-extend the fields.
        strict: also check that every unused bit is zero, as the IP writes them (catches a
            wrong geometry or a corrupted buffer).

    Raises:
        WireFormatError: not a whole number of images, or (strict) a padding bit is set.
    """
    words = np.asarray(words)
    if words.ndim != 1 or words.dtype.kind not in "iu":
        raise WireFormatError(f"expected a 1-D integer array of words, got {words.dtype} {words.shape}")
    if words.dtype != np.uint64:
        words = words.astype(np.uint64)
    vpw = values_per_word(width)
    n_words = words_per_image(n_values, width)
    if words.size == 0 or words.size % n_words:
        raise WireFormatError(f"{words.size} words is not a whole number of images of {n_words} words ({n_values} values)")
    batch = words.size // n_words
    if _native is not None:  # one pass in the compiled kernel; a set padding bit is named below
        raws = np.empty((batch, n_values), dtype=np.int64)
        if _native.unpack(words, raws, n_values, width, signed, strict) == 0:
            return raws
    if _cast_type(width, signed) is not None:
        fields = _slots_view(np.ascontiguousarray(words), batch, width, signed)
        if strict:
            check_padding(words, fields, n_values, vpw * width)
        return fields[:, :n_values].astype(np.int64)
    mask = np.uint64((1 << width) - 1)
    grid = words.reshape(batch, n_words, 1)
    fields = np.empty((batch, n_words, vpw), dtype=np.uint64)
    for k in range(vpw):
        np.bitwise_and(grid[:, :, 0] >> np.uint64(k * width), mask, out=fields[:, :, k])
    fields = fields.reshape(batch, n_words * vpw)
    if strict:
        check_padding(words, fields, n_values, vpw * width)
    raw = fields[:, :n_values].astype(np.int64)
    if signed:
        sign = np.int64(1 << (width - 1))
        raw ^= sign
        raw -= sign
    return raw


def unpack_formatted(words: np.ndarray, n_values: int, fmt: ApType, strict: bool = True) -> np.ndarray:
    """:func:`unpack` with the width and sign of a type."""
    return unpack(words, n_values, fmt.width, fmt.signed, strict)
