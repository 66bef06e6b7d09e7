"""Host quantize+pack and unpack (:mod:`vitcod.host`) next to ``np.copyto`` of the same bytes, MEASURED.

What the driver does per batch on the board - floats -> fixed-point raws -> 64-bit stream words,
and words -> raws for the output - timed beside the cheapest thing that could fill the DMA buffer
(a copy of the already packed words) and beside a copy of the float input. Only the public API of
the board package is used, so this measures what a user of the driver gets.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ..host import ApType, native_kernel, pack, quantize_pack, unpack
from ..host.contract import NETWORK_FILE

#: Input formats measured for the host packing besides the network's own input type (the
#: headline, from its network.json): a typical 8-bit image input, a byte-aligned 16-bit one and a
#: 12-bit one (5 values per word, the generic packing). The first is the headline when the
#: network's type is not known (no C-simulation project).
PACK_FORMATS = ("ap_ufixed<8,0>", "ap_fixed<16,6>", "ap_fixed<12,4>")
#: Output format of the flow's overlays and its default number of values (10 class scores, as the
#: digits and MNIST), for unpack; :func:`measure_packing` takes the run's class count.
UNPACK_FORMAT = ("ap_fixed<16,6,AP_RND,AP_SAT>", 10)


def best_times(fns: dict[str, Callable[[], Any]], repeats: int, min_sample_s: float = 2e-4) -> dict[str, float]:
    """Best seconds per call of each function, the functions interleaved so that all see the same
    machine (this 2-core VM's speed drifts by tens of percent over seconds).

    Each sample times a loop of calls lasting at least ``min_sample_s`` (a single microsecond call
    would mostly time the clock); the best of ``repeats`` samples is kept.
    """
    loops = {}
    for name, fn in fns.items():  # calibrate (and warm up) each
        fn()
        t0 = time.perf_counter()
        fn()
        loops[name] = max(1, int(min_sample_s / max(time.perf_counter() - t0, 1e-9)))
    best = {name: math.inf for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            n = loops[name]
            t0 = time.perf_counter()
            for _ in range(n):
                fn()
            best[name] = min(best[name], (time.perf_counter() - t0) / n)
    return {name: max(t, 1e-12) for name, t in best.items()}


def network_input_type(*project_dirs: Path) -> str | None:
    """The input type of the first C-simulated network found (the ``network.json`` of one of the HLS
    project folders, in order), or None."""
    for project in project_dirs:
        path = Path(project) / NETWORK_FILE
        if path.is_file():
            return json.loads(path.read_text())["input"]["type"]
    return None


def reference_pack(x: np.ndarray, fmt: ApType, out: np.ndarray) -> np.ndarray:
    """The general path the fast one must agree with: round to raws with the host policy
    (:meth:`ApType.quantize`, the host's float -> raw policy), then :func:`vitcod.host.pack`."""
    return pack(fmt.quantize(x)[0], fmt.width, fmt.signed, out)


def _pack_row(spec: str, fmt: ApType, flat: np.ndarray, batch: int, repeats: int) -> dict[str, Any]:
    """One format and batch: quantize_pack, the reference path and the two copies, interleaved."""
    x = np.ascontiguousarray(np.resize(flat, (batch, flat.shape[1])), dtype=np.float32)
    packed = quantize_pack(x, fmt)[0]
    words = np.empty_like(packed)  # the preallocated buffer (the driver's DMA buffer)
    if not np.array_equal(packed, reference_pack(x, fmt, words)):  # the fast path must give the reference's words
        raise AssertionError(f"quantize_pack differs from round_float + pack for {spec}")
    x_copy = np.empty_like(x)
    reps = repeats if batch <= 1024 else max(5, repeats // 3)
    t = best_times({
        "quantize_pack": lambda: quantize_pack(x, fmt, words),
        "copy_packed": lambda: np.copyto(words, packed),
        "copy_input": lambda: np.copyto(x_copy, x),
        "reference": lambda: reference_pack(x, fmt, words),
    }, reps)
    return {
        "format": spec, "batch": batch, "values_per_image": int(x.shape[1]), "packed_bytes": int(words.nbytes),
        "input_bytes": int(x.nbytes), "repeats": reps,
        "quantize_pack_ms": t["quantize_pack"] * 1e3, "reference_path_ms": t["reference"] * 1e3,
        "copy_packed_ms": t["copy_packed"] * 1e3, "copy_input_ms": t["copy_input"] * 1e3,
        "quantize_pack_MBps": words.nbytes / t["quantize_pack"] / 1e6,
        "copy_packed_MBps": words.nbytes / t["copy_packed"] / 1e6,
        "pack_vs_copy_throughput_ratio": t["copy_packed"] / t["quantize_pack"],
        "pack_vs_input_copy_throughput_ratio": t["copy_input"] / t["quantize_pack"],
        "pack_speedup_vs_reference_path": t["reference"] / t["quantize_pack"],
    }


def _unpack_rows(batches: Sequence[int], repeats: int, out_values: int = UNPACK_FORMAT[1]) -> list[dict[str, Any]]:
    """Unpack of random output words of :data:`UNPACK_FORMAT` (``out_values`` per image) vs a copy of
    the words, per batch."""
    out_spec = UNPACK_FORMAT[0]
    ofmt = ApType.parse(out_spec)
    rows = []
    rng = np.random.default_rng(0)
    for batch in batches:
        raws = rng.integers(ofmt.min_raw, ofmt.max_raw, size=(batch, out_values), endpoint=True)
        words = pack(raws, ofmt.width, ofmt.signed)
        dst = np.empty_like(words)
        t = best_times({"unpack": lambda: unpack(words, out_values, ofmt.width, ofmt.signed),
                        "copy": lambda: np.copyto(dst, words)}, repeats)
        rows.append({"format": out_spec, "batch": batch, "values_per_image": out_values,
                     "bytes": int(words.nbytes), "unpack_ms": t["unpack"] * 1e3, "copy_ms": t["copy"] * 1e3,
                     "unpack_vs_copy_throughput_ratio": t["copy"] / t["unpack"]})
    return rows


def measure_packing(images: np.ndarray, repeats: int = 30, batches: Sequence[int] | None = None,
                    formats: Sequence[str] = PACK_FORMATS, output_values: int = UNPACK_FORMAT[1]) -> dict[str, Any]:
    """Host quantize+pack / unpack vs np.copyto of the same bytes, per input format and batch size.

    ``images``: the run's test split (any image shape: each image is packed as its flat values);
    ``output_values``: values per image of the unpacked output (the run's class count).

    Batches: the overlay's default MAX_BATCH (64), the test split, and a large batch (the test split
    tiled) where per-call overhead no longer dominates. Headline: the first format, the test split.
    Each row's timings are interleaved (:func:`best_times`), so a ratio compares like with like.
    """
    flat = images.reshape(len(images), -1)
    n_test = len(flat)
    batches = list(batches or (64, n_test, 8192))
    rows = [_pack_row(spec, ApType.parse(spec), flat, batch, repeats) for spec in formats for batch in batches]
    unpack_rows = _unpack_rows(batches, repeats, output_values)
    headline = next(r for r in rows if r["format"] == formats[0] and r["batch"] == n_test)
    kernel = native_kernel()
    return {"label": "measured", "pack": rows, "unpack": unpack_rows, "headline": headline,
            "kernel": kernel or "numpy",
            "note": "best of `repeats` interleaved samples; quantize_pack writes into a preallocated word buffer (as "
                    "the driver's DMA buffer) with the compiled kernel "
                    f"({kernel or 'not built: numpy path'}); reference_path = round_float + pack (the numpy "
                    "general path, same words)"}


def packing_figures(packing: dict[str, Any]) -> dict[str, Any]:
    """The bench.json headline figures of the packing measurement (its headline format and batch)."""
    head = packing["headline"]
    return {"pack_vs_copy_throughput_ratio": head["pack_vs_copy_throughput_ratio"],
            "pack_vs_input_copy_throughput_ratio": head["pack_vs_input_copy_throughput_ratio"],
            "pack_speedup_vs_reference_path": head["pack_speedup_vs_reference_path"],
            "unpack_vs_copy_throughput_ratio": next(r["unpack_vs_copy_throughput_ratio"] for r in packing["unpack"]
                                                    if r["batch"] == head["batch"]),
            "packing_headline": {"format": head["format"], "batch": head["batch"]}}
