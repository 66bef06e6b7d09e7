"""Wire format of the ViTCoD overlay's AXI4-Stream: packed fixed-point words.

Where this fits: the IP top (``overlay/ip/vitcod_top.h``) reads images from, and writes results to,
a 64-bit AXI4-Stream fed by an AXI DMA. This module is the numpy reference for the bit layout on
that stream; the C-simulation test checks the C++ against it word for word, and the board-side host
driver packs and unpacks its DMA buffers with the same functions.

The rules (format version :data:`FORMAT_VERSION`):

* Values travel as their raw two's-complement bits (``raw = value * 2**frac``), never as floats.
  A type ``ap_fixed<W, I>`` / ``ap_ufixed<W, I>`` / ``ap_int<W>`` / ``ap_uint<W>`` occupies ``W``
  bits on the wire.
* One TDATA word (:data:`WORD_BITS` = 64) holds ``values_per_word = floor(64 / W)`` values. Value
  ``k`` of a word sits in bits ``[k*W, k*W + W)`` (value 0 in the least significant bits). The
  ``64 - values_per_word*W`` top bits of every word are zero.
* Each image starts on a fresh word: an image of ``n`` values takes
  ``words_per_image = ceil(n / values_per_word)`` words; the unused value slots of its last word
  are zero. Images follow each other with no gap; the values of one image are in the C order of the
  network's flattened io_parallel input (or output) array.
* A batch of ``B`` images is one DMA transfer of ``B * words_per_image`` words each way; the IP sets
  TLAST on the last word of the whole output transfer, and expects TLAST on the last input word.

Conversion between floats and raws is not part of the wire format: use the type's own rounding
and overflow rules (``vitcod.hls.fixed_point.from_float`` / ``to_float`` model them exactly).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

FORMAT_VERSION = 1
"""Version of the word format and of the IP's register map; the IP reports it in a register."""

WORD_BITS = 64
"""TDATA width of the stream, in bits."""

_MAX_VALUE_BITS = 62  # raws are handled as int64; wider fields could not be sign-extended safely

_FIXED_RE = re.compile(r"^\s*(ap_fixed|ap_ufixed)\s*<\s*(\d+)\s*,\s*(-?\d+)\s*(?:,[^<>]*)?>\s*$")
_INT_RE = re.compile(r"^\s*(ap_int|ap_uint)\s*<\s*(\d+)\s*>\s*$")


class WireFormatError(ValueError):
    """A value, word buffer or type that does not follow the wire format."""


@dataclass(frozen=True)
class WireType:
    """What the wire needs to know of an ap_types type: its C++ spelling, width, integer bits, sign.

    ``integer`` counts the sign bit for signed types, as ``ap_fixed<W, I>`` does; ``frac`` is
    ``width - integer``. Quantization/overflow modes stay in ``cpp`` (they do not change the bits).
    """

    cpp: str
    width: int
    integer: int
    signed: bool

    @property
    def frac(self) -> int:
        return self.width - self.integer

    @classmethod
    def parse(cls, cpp: str) -> "WireType":
        """Parse ``ap_fixed<W,I[,Q,O[,N]]>``, ``ap_ufixed<...>``, ``ap_int<W>`` or ``ap_uint<W>``.

        Raises:
            WireFormatError: the spelling is none of these, or ``W`` is outside 1..62.
        """
        m = _FIXED_RE.match(cpp)
        if m:
            kind, width, integer = m.group(1), int(m.group(2)), int(m.group(3))
            signed = kind == "ap_fixed"
        else:
            m = _INT_RE.match(cpp)
            if not m:
                raise WireFormatError(
                    f"unsupported wire type {cpp!r}; expected ap_fixed<W,I,...>, ap_ufixed<W,I,...>, "
                    "ap_int<W> or ap_uint<W> (floats are not allowed on the wire)"
                )
            kind, width = m.group(1), int(m.group(2))
            integer, signed = width, kind == "ap_int"
        if not 1 <= width <= _MAX_VALUE_BITS:
            raise WireFormatError(f"{cpp!r}: width must be in 1..{_MAX_VALUE_BITS} bits, got {width}")
        return cls(cpp=cpp.strip(), width=width, integer=integer, signed=signed)

    @property
    def min_raw(self) -> int:
        return -(1 << (self.width - 1)) if self.signed else 0

    @property
    def max_raw(self) -> int:
        return (1 << (self.width - 1)) - 1 if self.signed else (1 << self.width) - 1


def values_per_word(width: int, word_bits: int = WORD_BITS) -> int:
    """Values of ``width`` bits in one word: ``floor(word_bits / width)``."""
    _check_width(width, word_bits)
    return word_bits // width


def words_per_image(n_values: int, width: int, word_bits: int = WORD_BITS) -> int:
    """Words one image of ``n_values`` values occupies (each image starts on a fresh word)."""
    if n_values < 1:
        raise WireFormatError(f"an image needs at least one value, got {n_values}")
    vpw = values_per_word(width, word_bits)
    return -(-n_values // vpw)


def pack(raw, width: int, signed: bool, word_bits: int = WORD_BITS) -> np.ndarray:
    """Pack raws into stream words.

    Args:
        raw: integer array ``(batch, n_values)`` (or ``(n_values,)`` for one image) of raw values.
        width: bits per value.
        signed: whether the raws are two's-complement signed.
        word_bits: TDATA width (64 for this overlay).

    Returns:
        ``uint64`` array of ``batch * words_per_image`` words, in stream order.

    Raises:
        WireFormatError: a raw does not fit ``width`` bits with the given signedness (raws are
            never silently wrapped), or the array is not 1-D/2-D integers.
    """
    raw = np.asarray(raw)
    if raw.ndim == 1:
        raw = raw[None, :]
    if raw.ndim != 2 or raw.shape[1] < 1:
        raise WireFormatError(f"expected raws of shape (batch, n_values), got {raw.shape}")
    if not np.issubdtype(raw.dtype, np.integer):
        raise WireFormatError(f"raws must be integers (convert floats with the type's rules), got {raw.dtype}")
    raw = raw.astype(np.int64)
    lo, hi = (-(1 << (width - 1)), (1 << (width - 1)) - 1) if signed else (0, (1 << width) - 1)
    if raw.size and (raw.min() < lo or raw.max() > hi):
        bad = raw[(raw < lo) | (raw > hi)][0]
        raise WireFormatError(f"raw {int(bad)} does not fit {width}-bit {'signed' if signed else 'unsigned'}")
    batch, n_values = raw.shape
    vpw = values_per_word(width, word_bits)
    n_words = words_per_image(n_values, width, word_bits)
    mask = np.uint64((1 << width) - 1)
    slots = np.zeros((batch, n_words * vpw), dtype=np.uint64)
    slots[:, :n_values] = raw.astype(np.uint64) & mask  # two's complement of negatives, cut to width
    shifts = np.arange(vpw, dtype=np.uint64) * np.uint64(width)
    words = np.bitwise_or.reduce(slots.reshape(batch, n_words, vpw) << shifts, axis=2)
    return words.reshape(-1)


def unpack(words, n_values: int, width: int, signed: bool, word_bits: int = WORD_BITS, strict: bool = True) -> np.ndarray:
    """Unpack stream words into raws, the inverse of :func:`pack`.

    Args:
        words: ``uint64`` array of ``batch * words_per_image`` words in stream order.
        n_values: values per image.
        width: bits per value.
        signed: sign-extend the fields.
        word_bits: TDATA width.
        strict: also check that every unused bit (top bits of each word, unused slots of each
            image's last word) is zero, as the IP writes them.

    Returns:
        ``int64`` array ``(batch, n_values)``.

    Raises:
        WireFormatError: the word count is not a multiple of ``words_per_image``, or (strict) a
            padding bit is set.
    """
    words = np.asarray(words)
    if words.ndim != 1 or not np.issubdtype(words.dtype, np.integer):
        raise WireFormatError(f"expected a 1-D integer array of words, got {words.dtype} {words.shape}")
    words = words.astype(np.uint64)
    vpw = values_per_word(width, word_bits)
    n_words = words_per_image(n_values, width, word_bits)
    if words.size == 0 or words.size % n_words:
        raise WireFormatError(
            f"{words.size} words is not a whole number of images of {n_words} words ({n_values} values)"
        )
    batch = words.size // n_words
    mask = np.uint64((1 << width) - 1)
    shifts = np.arange(vpw, dtype=np.uint64) * np.uint64(width)
    fields = ((words.reshape(batch, n_words, 1) >> shifts) & mask).reshape(batch, n_words * vpw)
    if strict:
        used_bits = vpw * width
        if used_bits < 64:
            top = words >> np.uint64(used_bits)
            if np.any(top):
                raise WireFormatError(f"word {int(np.flatnonzero(top)[0])}: bits above {used_bits} are not zero")
        if np.any(fields[:, n_values:]):
            img = int(np.flatnonzero(np.any(fields[:, n_values:], axis=1))[0])
            raise WireFormatError(f"image {img}: padding slots after value {n_values - 1} are not zero")
    raw = fields[:, :n_values].astype(np.int64)
    if signed:
        sign = np.int64(1 << (width - 1))
        raw = (raw ^ sign) - sign
    return raw


def _check_width(width: int, word_bits: int) -> None:
    if not 8 <= word_bits <= 64 or word_bits % 8:
        raise WireFormatError(f"word width must be a multiple of 8 in 8..64 bits, got {word_bits}")
    if not 1 <= width <= min(word_bits, _MAX_VALUE_BITS):
        raise WireFormatError(f"value width must be in 1..{min(word_bits, _MAX_VALUE_BITS)} bits, got {width}")
