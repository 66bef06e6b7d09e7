"""The stream's word format: its constants, geometry, and the reference pack / unpack in numpy.

Where this fits: the IP top (``overlay/ip/vitcod_top.h``) reads images from, and writes results to,
a 64-bit AXI4-Stream fed by an AXI DMA. This module defines the bit layout on that stream; the
C-simulation of the IP is checked against :func:`pack` word for word, and the driver's fast paths
(:mod:`vitcod.host.wire`, the compiled kernel) are checked against it on random data.

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
* The IP never reads past an input TLAST and always reads up to one: when TLAST comes early it
  stops there and ends its output (TLAST) after the slot of the image it was reading; when the
  batch ends without TLAST (a longer transfer, or ``batch_count`` above ``max_batch``) it reads and
  discards words until TLAST, at most :func:`max_transfer_words` of them. The ``status`` and
  ``words_read`` registers say what happened (:mod:`.registers`), so neither DMA channel is left
  waiting.

Conversion between floats and raws is not part of the wire format: the host's policy is
:mod:`vitcod.host.quantization`, the exact ap_types model ``vitcod.hls.fixed_point``.
"""

from __future__ import annotations

import numpy as np

from ..errors import WireFormatError
from .aptypes import MAX_WIDTH, raw_range

FORMAT_VERSION = 2
"""Version of the word format and of the IP's register map; the IP reports it in a register.
(2: type, words-read registers; the IP stops at TLAST and drains to it.)"""

WORD_BITS = 64
"""TDATA width of the stream, in bits."""
WORD_BYTES = WORD_BITS // 8


def check_width(width, word_bits: int = WORD_BITS) -> int:
    """``width`` as an int if it is a legal value width (1..62 bits, at most a word).

    Raises:
        WireFormatError: naming the width (``pack(raws, -1, ...)`` must not fail inside a shift).
    """
    if not 8 <= word_bits <= 64 or word_bits % 8:
        raise WireFormatError(f"word width must be a multiple of 8 in 8..64 bits, got {word_bits}")
    limit = min(word_bits, MAX_WIDTH)
    if isinstance(width, bool) or not isinstance(width, (int, np.integer)) or not 1 <= width <= limit:
        raise WireFormatError(f"value width must be an integer in 1..{limit} bits, got {width!r}")
    return int(width)


def values_per_word(width: int, word_bits: int = WORD_BITS) -> int:
    """Values of ``width`` bits in one word: ``floor(word_bits / width)``."""
    return word_bits // check_width(width, word_bits)


def words_per_image(n_values: int, width: int, word_bits: int = WORD_BITS) -> int:
    """Words one image of ``n_values`` values occupies (each image starts on a fresh word)."""
    if n_values < 1:
        raise WireFormatError(f"an image needs at least one value, got {n_values}")
    return -(-n_values // values_per_word(width, word_bits))


def check_raws(raws: np.ndarray, width: int, signed: bool) -> None:
    """Refuse raws that do not fit ``width`` bits with the given signedness (never wrapped silently).

    Raises:
        WireFormatError: naming the first raw out of range.
    """
    lo, hi = raw_range(width, signed)
    if raws.size and (int(raws.min()) < lo or int(raws.max()) > hi):
        bad = raws[(raws < lo) | (raws > hi)].flat[0]
        raise WireFormatError(f"raw {int(bad)} does not fit {width}-bit {'signed' if signed else 'unsigned'}")


def as_batch(values, what: str = "raws") -> np.ndarray:
    """``values`` as a ``(batch, n_values)`` array (one image may be 1-D).

    Raises:
        WireFormatError: another number of dimensions, or no value per image.
    """
    values = np.asarray(values)
    if values.ndim == 1:
        values = values[None, :]
    if values.ndim != 2 or values.shape[1] < 1:
        raise WireFormatError(f"expected {what} of shape (batch, n_values), got {values.shape}")
    return values


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
    width = check_width(width, word_bits)
    raw = as_batch(raw)
    if not np.issubdtype(raw.dtype, np.integer):
        raise WireFormatError(f"raws must be integers (convert floats with the type's rules), got {raw.dtype}")
    raw = raw.astype(np.int64)
    check_raws(raw, width, signed)
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
        check_padding(words, fields, n_values, vpw * width)
    raw = fields[:, :n_values].astype(np.int64)
    if signed:
        sign = np.int64(1 << (width - 1))
        raw = (raw ^ sign) - sign
    return raw


def check_padding(words: np.ndarray, fields: np.ndarray, n_values: int, used_bits: int) -> None:
    """Refuse set padding bits: above ``used_bits`` in any word, or in an image's unused slots.

    Args:
        words: the uint64 words.
        fields: the same words as ``(batch, words_per_image * values_per_word)`` value slots.
        n_values: values per image (the slots after them are padding).
        used_bits: ``values_per_word * width``.

    Raises:
        WireFormatError: naming the first word or image with a set padding bit.
    """
    if used_bits < WORD_BITS:
        top = words >> np.uint64(used_bits)
        if np.any(top):
            raise WireFormatError(f"word {int(np.flatnonzero(top)[0])}: bits above {used_bits} are not zero")
    padding = fields[:, n_values:]
    if padding.size and np.any(padding):
        image = int(np.flatnonzero(np.any(padding, axis=1))[0])
        raise WireFormatError(f"image {image}: padding slots after value {n_values - 1} are not zero")


DMA_LENGTH_WIDTH_MIN, DMA_LENGTH_WIDTH_MAX = 8, 26
"""Range of the AXI DMA's buffer-length register width (``c_sg_length_width`` of AXI DMA 7.1)."""


def max_transfer_words(length_width: int) -> int:
    """Whole words the longest transfer of a DMA with a ``length_width``-bit length register carries
    (the IP's drain bound, :data:`FORMAT_VERSION` 2)."""
    return (2 ** length_width - 1) // WORD_BYTES


def dma_length_width(transfer_bytes: int) -> int:
    """Smallest buffer-length register width for a transfer of ``transfer_bytes`` (the register
    holds at most ``2**width - 1`` bytes). Above :data:`DMA_LENGTH_WIDTH_MAX` the DMA cannot
    carry the transfer; the callers refuse that with their own error."""
    return max(DMA_LENGTH_WIDTH_MIN, int(transfer_bytes).bit_length())
