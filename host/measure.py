"""``packing_benchmark``: the host's quantize+pack speed next to plain numpy copies of the same bytes.

Where this fits: ``python -m vitcod.host bench`` and ``make bench`` show it next to the driver's
``throughput_test()``; it needs only the metadata (no device), so it runs anywhere.
"""

from __future__ import annotations

import time
from typing import Any, Callable

import numpy as np

from .metadata import OverlayMetadata
from .wire import native_kernel, pack, quantize_pack, unpack


def packing_benchmark(metadata: OverlayMetadata, batch_size: int, repeats: int = 5, seed: int = 0) -> dict[str, Any]:
    """Quantize+pack throughput next to plain numpy copies of the same bytes, in one run.

    Measures (best of ``repeats``) on float32 images of one batch:
    ``quantize_pack`` (floats -> packed words, into a preallocated buffer), ``copy_packed``
    (``np.copyto`` of the packed words: the floor for filling the DMA buffer), ``copy_input``
    (``np.copyto`` of the float input) and ``unpack`` of an output buffer.

    Returns:
        seconds per stage (``<stage>[ms]``), images/s and MB/s per stage, the ratio of
        quantize_pack to the packed copy, and which quantize+pack ``kernel`` ran.
    """
    rng = np.random.default_rng(seed)
    fmt = metadata.input.format
    images = rng.uniform(fmt.min_value, fmt.max_value, size=(batch_size, metadata.input.values)).astype(np.float32)
    words = np.empty(batch_size * metadata.input.words_per_image, dtype=np.uint64)
    packed = quantize_pack(images, fmt, words)[0].copy()
    out_fmt = metadata.output.format
    out_raws = rng.integers(out_fmt.min_raw, out_fmt.max_raw, size=(batch_size, metadata.output.values),
                            endpoint=True, dtype=np.int64)
    out_words = pack(out_raws, out_fmt.width, out_fmt.signed)
    images_copy = np.empty_like(images)
    stages: dict[str, tuple[Callable[[], Any], int]] = {
        "quantize_pack": (lambda: quantize_pack(images, fmt, words), words.nbytes),
        "copy_packed": (lambda: np.copyto(words, packed), words.nbytes),
        "copy_input": (lambda: np.copyto(images_copy, images), images.nbytes),
        "unpack": (lambda: unpack(out_words, metadata.output.values, out_fmt.width, out_fmt.signed), out_words.nbytes),
    }
    result: dict[str, Any] = {"batch_size": batch_size, "repeats": repeats, "kernel": native_kernel() or "numpy"}
    for name, (fn, nbytes) in stages.items():
        best = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - t0)
        best = max(best, 1e-9)
        result[f"{name}[ms]"] = best * 1e3
        result[f"{name}[images/s]"] = batch_size / best
        result[f"{name}[MB/s]"] = nbytes / best / 1e6
    result["quantize_pack/copy_packed"] = result["quantize_pack[ms]"] / result["copy_packed[ms]"]
    return result
