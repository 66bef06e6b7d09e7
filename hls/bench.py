"""``make bench``: accuracy, modelled attention cost, measured C-simulation and host throughput, side by side.

Command (from the repository root)::

    .venv/bin/python -m vitcod.hls.bench --run-dir build/demo --out build/bench

writes ``build/bench/bench.json`` (every number with its unit in ``units``; a number that could not
be measured is ``null`` with its reason in ``reasons``), ``build/bench/bench.md`` (the same as tables)
and ``build/bench/bench.png`` (accuracy and modelled attention latency vs sparsity).

What is measured and what is modelled - never mixed up:

* accuracy vs sparsity: read from the run's ``report/accuracy.json`` (measured by the model stage).
* attention multiplies and latency, ViTCoD engines vs a dense engine with the same q.k multipliers:
  MODELLED by :mod:`vitcod.hls.perf` (no Vitis HLS here). The multiply COUNTS are checked in this
  same run against the C-simulation counters of the compiled engines (``model_counts_match_csim``).
* C-simulation of the whole network on the digits test split (:func:`vitcod.hls.network_csim.run_csim`) next
  to the QKeras model's ``predict`` on the same images, the C-simulation compile time and the
  compiler's peak memory: MEASURED, in a child process (its ``getrusage(RUSAGE_CHILDREN)``).
* host quantize+pack and unpack (:mod:`vitcod.host`) next to a plain ``np.copyto`` of the same
  bytes: MEASURED, best of several repeats, in this process.

Ratios are only formed between numbers from the same run on the same machine.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from . import perf, synth

log = logging.getLogger(__name__)

BENCH_JSON, BENCH_MD, BENCH_PNG = "bench.json", "bench.md", "bench.png"
HEADLINE_SPARSITY = 0.9
SWEEP = (0.0, 0.8, 0.9, 0.95)

#: Input formats measured for the host packing besides the network's own input type (the
#: headline, from its network.json): a typical 8-bit image input, a byte-aligned 16-bit one and a
#: 12-bit one (5 values per word, the generic packing). The first is the headline when the
#: network's type is not known (no C-simulation project).
PACK_FORMATS = ("ap_ufixed<8,0>", "ap_fixed<16,6>", "ap_fixed<12,4>")
#: Output format of the digits overlay (10 class scores), for unpack.
UNPACK_FORMAT = ("ap_fixed<16,6,AP_RND,AP_SAT>", 10)

UNITS = {
    "attention_mult_ratio_at_0.9": "ratio: dense-engine multiplies / ViTCoD multiplies per image (q.k + softmax "
                                   "probabilities + P x V, all blocks); counts equal the C-simulation counters",
    "attention_mult_ratio_incl_autoencoder_at_0.9": "ratio: as attention_mult_ratio_at_0.9 with the Q/K "
                                                    "encoder/decoder multiplies added to the ViTCoD side",
    "modelled_attention_speedup_at_0.9": "ratio: modelled attention cycles of the dense engine / of the ViTCoD "
                                         "engines, same q.k multipliers, same clock",
    "modelled_attention_speedup_ideal_at_0.9": "ratio: the same with the authors' analytic assumptions (every "
                                               "multiplier busy, softmax and memory overlapped)",
    "modelled_attention_latency_us_at_0.9": "microseconds per image (modelled, all blocks, at clock_mhz)",
    "modelled_dense_attention_latency_us_at_0.9": "microseconds per image (modelled)",
    "pack_vs_copy_throughput_ratio": "ratio: quantize+pack throughput / np.copyto throughput of the same packed "
                                     "bytes (MB/s over MB/s), for the network's own input type and the test split "
                                     "(packing_headline; every format and batch in packing)",
    "pack_vs_input_copy_throughput_ratio": "ratio: images/s of quantize+pack / images/s of np.copyto of the float32 "
                                           "input images",
    "unpack_vs_copy_throughput_ratio": "ratio: unpack throughput / np.copyto throughput of the same words",
    "pack_speedup_vs_reference_path": "ratio: time of the general path (round_float + pack) / time of quantize_pack",
    "csim_test_split_seconds": "seconds (wall clock) of the C-simulation predict over the whole test split, "
                               "after compile",
    "keras_predict_test_split_seconds": "seconds (wall clock) of QKeras model.predict on the same images (warm)",
    "csim_vs_keras_throughput_ratio": "ratio: C-simulation images/s / QKeras images/s",
    "csim_compile_seconds": "seconds (wall clock) of the whole-model C-simulation compile",
    "csim_compile_peak_mb": "MiB: peak resident memory of the largest compiler process (getrusage children)",
    "engine_csim_compile_seconds": "seconds: g++ build of one attention engine's C-simulation library (fresh cache)",
    "engine_csim_compile_peak_mb": "MiB: peak resident memory of that g++ (getrusage children)",
    "engine_csim_images_per_s": "images/s: all attention engines of the design in C-simulation, per image",
    "model_counts_match_csim": "bool: modelled multiply counts == C-simulation counters, every engine, exact",
    "accuracy_at_0.9": "fraction of the test split classified correctly (QKeras, quantized), measured",
    "modelled_latency_us": "microseconds per image through the whole modelled design",
    "clock_mhz": "MHz (assumed clock of the modelled design)",
    "synthesized_at_0.9": "Vitis HLS C-synthesis estimate of the 0.90 design (make synth): cycles, ns, us, "
                          "resource counts; null where Vitis HLS is not installed",
    "modelled_vs_synthesized_at_0.9": "per quantity: modelled value, synthesized value, their ratio (latency in us at "
                                      "the target clock, interval in cycles, resources in DSP / BRAM18K / LUT / FF)",
}

TARGETS = {
    "attention_mult_ratio_at_0.9": (">=", 9.0),
    "modelled_attention_speedup_at_0.9": (">=", 5.0),
    "pack_vs_copy_throughput_ratio": (">=", 0.30),
    "csim_test_split_seconds": ("<=", 30.0),
    "model_counts_match_csim": ("==", True),
}


# =============================================================================================
# Accuracy and the modelled sweep
# =============================================================================================


def stages_of(run_dir: Path) -> dict[str, float]:
    """Stage folders of the run with a config.json -> nominal sparsity (ae = 0)."""
    out = {}
    for stage, sparsity in perf.DEFAULT_STAGES.items():
        if (run_dir / stage / "config.json").is_file():
            out[stage] = sparsity
    return out


def accuracy_rows(run_dir: Path) -> tuple[list[dict] | None, str | None]:
    path = run_dir / "report" / "accuracy.json"
    if not path.is_file():
        return None, f"{path} not found: run `python -m vitcod report --run-dir {run_dir}`"
    rows = json.loads(path.read_text()).get("rows", [])
    out = []
    for r in rows:
        name = r.get("model", "")
        stage = "dense" if name == "dense" else "ae" if name == "+AE" else (
            f"sparse_{r['target_sparsity']:.2f}" if r.get("target_sparsity") is not None else None)
        out.append({"model": name, "stage": stage, "target_sparsity": r.get("target_sparsity"),
                    "achieved_sparsity": r.get("achieved_sparsity"),
                    "quantized_test_accuracy": r.get("quantized_test_accuracy"),
                    "float_test_accuracy": r.get("float_test_accuracy"),
                    "report_attention_macs": r.get("attention_macs"),
                    "report_qk_bytes_per_image": r.get("qk_bytes_per_image")})
    return out, None


def sweep(run_dir: Path, assumptions: perf.Assumptions) -> tuple[list[dict], dict[str, perf.ModelEstimate]]:
    """The modelled design of every stage: attention ViTCoD vs dense, whole model, board fit."""
    rows, estimates = [], {}
    for stage, nominal in stages_of(run_dir).items():
        est = perf.estimate_run(run_dir, stage, assumptions)
        estimates[stage] = est
        s = est.attention_summary()
        fit = perf.fit_report(est)
        rows.append({
            "label": perf.LABEL, "stage": stage, "nominal_sparsity": nominal, "achieved_sparsity": est.sparsity,
            "vitcod_attention_multiplies": s["vitcod_multiplies"],
            "vitcod_attention_multiplies_incl_autoencoder": s["vitcod_multiplies_incl_autoencoder"],
            "dense_attention_multiplies": s["dense_multiplies"], "attention_mult_ratio": s["mult_ratio"],
            "attention_mult_ratio_incl_autoencoder": s["mult_ratio_incl_autoencoder"],
            "vitcod_attention_cycles": s["vitcod_cycles"], "dense_attention_cycles": s["dense_cycles"],
            "vitcod_attention_latency_us": s["vitcod_latency_us"], "dense_attention_latency_us": s["dense_latency_us"],
            "modelled_attention_speedup": s["speedup"], "modelled_attention_speedup_ideal": s["ideal_speedup"],
            "modelled_attention_speedup_incl_autoencoder": s["speedup_incl_autoencoder"],
            "vitcod_stage_cycles": s["vitcod_stage_cycles"], "heads_bound_by": s["heads_bound_by"],
            "lanes_dense_sparse": s["lanes"], "qk_multipliers": s["qk_multipliers"],
            "model_latency_us": est.seconds(est.cycles) * 1e6, "model_interval_cycles": est.interval,
            "resources": est.resource_estimate(), "resource_breakdown": est.resource_breakdown(),
            "qk_bytes": est.qk_bytes(),
            "fits": {board: entry["fits"] for board, entry in fit.items()},
            "utilization": {board: entry["utilization"] for board, entry in fit.items()},
        })
    return rows, estimates


# =============================================================================================
# Measurements
# =============================================================================================


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


def load_test_split(run_dir: Path) -> tuple[np.ndarray, np.ndarray, str]:
    """The digits test split (float32 images, labels) - the same images the C-simulation sees."""
    from ..model.data import load_digits

    data = load_digits()
    return np.ascontiguousarray(data.x_test, dtype=np.float32), data.y_test, "digits test split"


def modelled_vs_synthesized(row: dict, synthesized: dict) -> dict[str, dict[str, Any]]:
    """The same quantity modelled (sweep row) and C-synthesized (synth.json), side by side."""
    pairs = {"latency_us": (row["model_latency_us"], synthesized.get("latency_us_at_target_clock")),
             "interval_cycles": (row["model_interval_cycles"], synthesized.get("interval_min_cycles"))}
    for key in ("dsp", "bram_18k", "lut", "ff"):
        pairs[key] = (row["resources"][key], synthesized["resources"].get(key))
    return {key: {"modelled": m, "synthesized": s,
                  "synthesized_over_modelled": s / m if isinstance(s, (int, float)) and m else None}
            for key, (m, s) in pairs.items()}


def network_input_type(*hls_dirs: Path, stage: str | None) -> str | None:
    """The input type of the C-simulated network of ``stage`` (its network.json), or None."""
    for hls_dir in hls_dirs:
        path = Path(hls_dir) / str(stage) / "network.json"
        if stage and path.is_file():
            return json.loads(path.read_text())["input"]["type"]
    return None


def measure_packing(images: np.ndarray, repeats: int = 30, batches: Sequence[int] | None = None,
                    formats: Sequence[str] = PACK_FORMATS) -> dict:
    """Host quantize+pack / unpack vs np.copyto of the same bytes, per input format and batch size.

    Batches: the overlay's default MAX_BATCH (64), the test split, and a large batch (the test split
    tiled) where per-call overhead no longer dominates. Headline: the first format, the test split.
    Each row's timings are interleaved (:func:`best_times`), so a ratio compares like with like.
    """
    from ..host import FixedFormat, native_kernel, pack, quantize_pack, unpack
    from ..host.wire import _pack_checked, words_per_image

    flat = images.reshape(len(images), -1)
    n_test = len(flat)
    batches = list(batches or (64, n_test, 8192))
    rows = []
    for spec in formats:
        fmt = FixedFormat.parse(spec)
        for batch in batches:
            x = np.ascontiguousarray(np.resize(flat, (batch, flat.shape[1])), dtype=np.float32)
            n_words = batch * words_per_image(x.shape[1], fmt.width)
            words = np.empty(n_words, dtype=np.uint64)
            packed = quantize_pack(x, fmt, words)[0].copy()
            reference = _pack_checked(fmt.round_float(x)[0], fmt.width, fmt.signed, None)
            if not np.array_equal(packed, reference):  # the fast path must give the reference's words
                raise AssertionError(f"quantize_pack differs from round_float + pack for {spec}")
            x_copy = np.empty_like(x)
            reps = repeats if batch <= 1024 else max(5, repeats // 3)
            t = best_times({
                "quantize_pack": lambda: quantize_pack(x, fmt, words),
                "copy_packed": lambda: np.copyto(words, packed),
                "copy_input": lambda: np.copyto(x_copy, x),
                "reference": lambda: _pack_checked(fmt.round_float(x)[0], fmt.width, fmt.signed, words),
            }, reps)
            rows.append({
                "format": spec, "batch": batch, "values_per_image": int(x.shape[1]), "packed_bytes": int(words.nbytes),
                "input_bytes": int(x.nbytes), "repeats": reps,
                "quantize_pack_ms": t["quantize_pack"] * 1e3, "reference_path_ms": t["reference"] * 1e3,
                "copy_packed_ms": t["copy_packed"] * 1e3, "copy_input_ms": t["copy_input"] * 1e3,
                "quantize_pack_MBps": words.nbytes / t["quantize_pack"] / 1e6,
                "copy_packed_MBps": words.nbytes / t["copy_packed"] / 1e6,
                "pack_vs_copy_throughput_ratio": t["copy_packed"] / t["quantize_pack"],
                "pack_vs_input_copy_throughput_ratio": t["copy_input"] / t["quantize_pack"],
                "pack_speedup_vs_reference_path": t["reference"] / t["quantize_pack"],
            })
    out_spec, out_values = UNPACK_FORMAT
    ofmt = FixedFormat.parse(out_spec)
    unpack_rows = []
    rng = np.random.default_rng(0)
    for batch in batches:
        raws = rng.integers(ofmt.min_raw, ofmt.max_raw, size=(batch, out_values), endpoint=True)
        words = pack(raws, ofmt.width, ofmt.signed)
        dst = np.empty_like(words)
        t = best_times({"unpack": lambda: unpack(words, out_values, ofmt.width, ofmt.signed),
                        "copy": lambda: np.copyto(dst, words)}, repeats)
        unpack_rows.append({"format": out_spec, "batch": batch, "values_per_image": out_values,
                            "bytes": int(words.nbytes), "unpack_ms": t["unpack"] * 1e3, "copy_ms": t["copy"] * 1e3,
                            "unpack_vs_copy_throughput_ratio": t["copy"] / t["unpack"]})
    headline = next(r for r in rows if r["format"] == formats[0] and r["batch"] == n_test)
    kernel = native_kernel()
    return {"label": "measured", "pack": rows, "unpack": unpack_rows, "headline": headline,
            "kernel": kernel or "numpy",
            "note": "best of `repeats` interleaved samples; quantize_pack writes into a preallocated word buffer (as "
                    "the driver's DMA buffer) with the compiled kernel "
                    f"({kernel or 'not built: numpy path'}); reference_path = round_float + pack (the numpy "
                    "general path, same words)"}


def _rusage_child(code: str, args: dict, timeout: float, env: dict | None = None) -> tuple[dict | None, str | None]:
    """Run ``code`` in a fresh Python (cwd = repository root); it prints one ``BENCH_JSON:`` line."""
    cmd = [sys.executable, "-c", code, json.dumps(args)]
    try:
        proc = subprocess.run(cmd, cwd=perf.REPO_DIR, capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, **(env or {})})
    except subprocess.TimeoutExpired:
        return None, f"timed out after {timeout:.0f} s"
    for line in proc.stdout.splitlines()[::-1]:
        if line.startswith("BENCH_JSON:"):
            return json.loads(line[len("BENCH_JSON:"):]), None
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-6:]
    return None, f"exit code {proc.returncode}: " + " | ".join(tail)


_ENGINE_COMPILE_CHILD = r"""
import json, resource, sys, time
args = json.loads(sys.argv[1])
from vitcod.hls import engine_csim as ch, perf
a = dict(args["assumptions"], attention_types=tuple(tuple(x) for x in args["assumptions"]["attention_types"]))
est = perf.estimate_run(args["run_dir"], args["stage"], perf.Assumptions(**a))
engine = est.attention_engines[0]
t0 = time.perf_counter()
lib = ch.build(engine)
compile_s = time.perf_counter() - t0
peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print("BENCH_JSON:" + json.dumps({"engine": engine.name, "compile_seconds": compile_s, "peak_kb": peak_kb}))
"""

_WHOLE_CSIM_CHILD = r"""
import json, resource, sys, time
args = json.loads(sys.argv[1])
from vitcod.hls.network_csim import run_csim
from vitcod.model.data import load_digits
data = load_digits()
report = run_csim(args["run_dir"], args["stage"], out_dir=args["out_dir"], trace_samples=0, data=data)
peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
from vitcod.model.storage import load_model
model, _ = load_model(report.get("model_dir") or (args["run_dir"] + "/" + args["stage"]))
x = data.x_test
times = []
for _ in range(3):  # the first call also traces the graph
    t0 = time.perf_counter()
    model.predict(x, verbose=0, batch_size=64)
    times.append(time.perf_counter() - t0)
first, warm = times[0], min(times[1:])
keep = {k: report.get(k) for k in ("samples", "keras_accuracy", "csim_accuracy", "top1_agreement",
                                   "max_abs_output_error", "compile_seconds", "csim_seconds", "csim_seconds_per_image",
                                   "convert_seconds", "report_path", "project_dir")}
keep.update(compiler_peak_kb=peak_kb, keras_predict_first_seconds=first, keras_predict_seconds=warm)
print("BENCH_JSON:" + json.dumps(keep))
"""


def measure_engine_csim(run_dir: Path, stage: str, estimate: perf.ModelEstimate, out_dir: Path,
                        images: int, timeout: float = 900) -> dict:
    """Compile one attention engine in a child with an empty cache (time + g++ peak memory), then run
    every attention engine of the design on ``images`` random raw inputs (C-simulation speed)."""
    from . import engine_csim as ch

    cache = (out_dir / "csim_cache_probe").resolve()  # absolute: g++ runs in its own build folder
    shutil.rmtree(cache, ignore_errors=True)
    cache.mkdir(parents=True)
    args = {"run_dir": str(run_dir.resolve()), "stage": stage, "assumptions": estimate.assumptions.to_dict()}
    child, reason = _rusage_child(_ENGINE_COMPILE_CHILD, args, timeout, env={"VITCOD_CSIM_CACHE": str(cache)})
    shutil.rmtree(cache, ignore_errors=True)  # the probe's library is not needed afterwards
    out: dict[str, Any] = {"label": "measured", "stage": stage}
    if child is None:
        out.update(compile_seconds=None, peak_mb=None, reason=f"engine compile probe failed: {reason}")
    else:
        out.update(engine=child["engine"], compile_seconds=child["compile_seconds"],
                   peak_mb=child["peak_kb"] / 1024.0)
    libs = ch.build_many(estimate.attention_engines, jobs=2)
    rng = np.random.default_rng(0)
    total = 0.0
    for engine, lib in zip(estimate.attention_engines, libs):
        t = engine.types
        size = engine.config.tokens * engine.config.embed_dim
        q, k, v = (rng.integers(x.min_raw, x.max_raw, size=(images, size), endpoint=True) >> 4 for x in (t.q, t.k, t.v))
        t0 = time.perf_counter()
        lib.run(q, k, v)
        total += time.perf_counter() - t0
    out.update(images=images, attention_seconds=total, images_per_s=images / total if total else None)
    return out


def measure_whole_csim(run_dir: Path, stage: str, out_dir: Path, timeout: float = 3600) -> dict:
    """The whole network through vitcod.hls.network_csim.run_csim (child process) and QKeras predict."""
    try:
        import importlib.util

        if importlib.util.find_spec("vitcod.hls.network_csim") is None:
            return {"label": "measured", "available": False, "reason": "vitcod.hls.network_csim is not available yet"}
    except ImportError as err:
        return {"label": "measured", "available": False, "reason": f"vitcod.hls.network_csim cannot be imported: {err}"}
    if not (run_dir / stage / "model.h5").is_file():
        return {"label": "measured", "available": False, "reason": f"{run_dir / stage}/model.h5 not found"}
    args = {"run_dir": str(run_dir.resolve()), "stage": stage, "out_dir": str((out_dir / "hls" / stage).resolve())}
    t0 = time.perf_counter()
    child, reason = _rusage_child(_WHOLE_CSIM_CHILD, args, timeout)
    wall = time.perf_counter() - t0
    if child is None:
        return {"label": "measured", "available": False, "reason": f"run_csim failed: {reason}", "wall_seconds": wall}
    child.update(label="measured", available=True, wall_seconds=wall,
                 compiler_peak_mb=child["compiler_peak_kb"] / 1024.0)
    return child


# =============================================================================================
# The bench
# =============================================================================================


def _at(rows: list[dict], sparsity: float, key: str):
    for r in rows:
        if r["nominal_sparsity"] == sparsity:
            return r.get(key)
    return None


def run_bench(run_dir: str | Path, out_dir: str | Path, *, assumptions: perf.Assumptions = perf.Assumptions(),
              counter_stages: Sequence[str] | None = None, whole_csim: bool = True, engine_probe: bool = True,
              packing_repeats: int = 30, jobs: int = 2, command: str | None = None) -> dict:
    """Run every measurement, write bench.json / bench.md / bench.png into ``out_dir``; return the dict.

    Args:
        run_dir: ``build/<run>`` with its stage folders and report/accuracy.json.
        out_dir: where the three files (and the C-simulation projects) go.
        assumptions: of the modelled design (:class:`vitcod.hls.perf.Assumptions`).
        counter_stages: stages whose engines are C-simulated for the counter check (default: all).
        whole_csim: run the whole-network C-simulation + QKeras predict (minutes).
        engine_probe: time one engine compile from an empty cache and the engines' C-simulation speed.
        packing_repeats: best-of repeats of the host packing timings.
        jobs: parallel g++ builds.
        command: the command line, recorded in bench.json.
    """
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    reasons: dict[str, str] = {}
    bench: dict[str, Any] = {
        "description": "ViTCoD on FPGA bench: modelled figures (vitcod.hls.perf, no synthesis) next to measured ones",
        "run_dir": str(run_dir), "command": command,
        "units": UNITS, "reasons": reasons,
        "environment": {"machine": platform.machine(), "python": platform.python_version(),
                        "numpy": np.__version__, "cpus": os.cpu_count(),
                        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None},
    }

    # ---- accuracy and the modelled sweep --------------------------------------------------------
    acc, why = accuracy_rows(run_dir)
    bench["accuracy"] = acc
    if why:
        reasons["accuracy"] = why
    rows, estimates = sweep(run_dir, assumptions)
    bench["sweep"] = rows
    bench["assumptions"] = assumptions.to_dict()
    bench["clock_mhz"] = assumptions.clock_mhz
    headline_stage = next((r["stage"] for r in rows if r["nominal_sparsity"] == HEADLINE_SPARSITY), None)
    for key, src in (("attention_mult_ratio_at_0.9", "attention_mult_ratio"),
                     ("attention_mult_ratio_incl_autoencoder_at_0.9", "attention_mult_ratio_incl_autoencoder"),
                     ("modelled_attention_speedup_at_0.9", "modelled_attention_speedup"),
                     ("modelled_attention_speedup_ideal_at_0.9", "modelled_attention_speedup_ideal"),
                     ("modelled_attention_latency_us_at_0.9", "vitcod_attention_latency_us"),
                     ("modelled_dense_attention_latency_us_at_0.9", "dense_attention_latency_us")):
        bench[key] = _at(rows, HEADLINE_SPARSITY, src)
        if bench[key] is None:
            reasons[key] = f"no stage with sparsity {HEADLINE_SPARSITY} in {run_dir}"
    bench["modelled_latency_us"] = _at(rows, HEADLINE_SPARSITY, "model_latency_us")
    acc_09 = next((r["quantized_test_accuracy"] for r in (acc or []) if r["target_sparsity"] == HEADLINE_SPARSITY), None)
    bench["accuracy_at_0.9"] = acc_09
    if acc_09 is None:
        reasons["accuracy_at_0.9"] = reasons.get("accuracy") or "no 0.90 row in report/accuracy.json"
    if headline_stage:
        est = estimates[headline_stage]
        bench["fit_at_0.9"] = perf.fit_report(est)
        bench["min_reuse_factor_at_0.9"] = {
            board: perf.min_reuse_factor(est.config, [list(e.heads) for e in est.attention_engines], board,
                                         assumptions, autoencoder=est.autoencoder)
            for board in bench["fit_at_0.9"]}
        bench["engines_at_0.9"] = [e.to_dict() for e in est.engines]

    # ---- synthesized figures beside the modelled ones (make synth, where Vitis HLS is installed) --
    synthesized, why_not = synth.load_synthesis(out_dir, headline_stage) if headline_stage else (None, "no 0.9 stage")
    bench["synthesized_at_0.9"] = synthesized
    bench["modelled_vs_synthesized_at_0.9"] = modelled_vs_synthesized(
        next(r for r in rows if r["stage"] == headline_stage), synthesized) if synthesized else None
    if why_not:
        reasons["synthesized_at_0.9"] = why_not

    # ---- the model's counts vs the C-simulation counters -----------------------------------------
    stages = list(counter_stages) if counter_stages is not None else list(estimates)
    checks = {}
    for stage in stages:
        if stage not in estimates:
            checks[stage] = {"match": None, "reason": f"stage {stage} not in {run_dir}"}
            continue
        try:
            checks[stage] = perf.check_counters_against_csim(estimates[stage], jobs=jobs)
        except Exception as err:  # no g++ / ap_types: say so, never guess
            checks[stage] = {"match": None, "reason": f"C-simulation unavailable: {type(err).__name__}: {err}"}
    bench["counters_check"] = checks
    results = [c["match"] for c in checks.values()]
    bench["model_counts_match_csim"] = all(results) if results and None not in results else None
    if bench["model_counts_match_csim"] is None:
        reasons["model_counts_match_csim"] = "; ".join(c.get("reason", "") for c in checks.values() if c["match"] is None) \
            or "no stage checked"
    bench["counters_checked_stages"] = stages

    # ---- C-simulation: engines and the whole network ---------------------------------------------
    images, labels, what = load_test_split(run_dir)
    bench["test_split"] = {"what": what, "images": int(len(images))}
    if engine_probe and headline_stage:
        try:
            probe = measure_engine_csim(run_dir, headline_stage, estimates[headline_stage], out_dir, len(images))
        except Exception as err:
            probe = {"label": "measured", "reason": f"{type(err).__name__}: {err}"}
    else:
        probe = {"label": "measured", "reason": "skipped (engine_probe=False)" if headline_stage else
                 f"no {HEADLINE_SPARSITY} stage"}
    bench["engine_csim"] = probe
    bench["engine_csim_compile_seconds"] = probe.get("compile_seconds")
    bench["engine_csim_compile_peak_mb"] = probe.get("peak_mb")
    bench["engine_csim_images_per_s"] = probe.get("images_per_s")
    for key in ("engine_csim_compile_seconds", "engine_csim_compile_peak_mb", "engine_csim_images_per_s"):
        if bench[key] is None:
            reasons[key] = probe.get("reason", "not measured")

    if whole_csim and headline_stage:
        whole = measure_whole_csim(run_dir, headline_stage, out_dir)
    else:
        whole = {"label": "measured", "available": False,
                 "reason": "skipped (whole_csim=False)" if headline_stage else f"no {HEADLINE_SPARSITY} stage"}
    bench["whole_csim"] = whole
    ok = whole.get("available")
    bench["csim_test_split_seconds"] = whole.get("csim_seconds") if ok else None
    bench["csim_compile_seconds"] = whole.get("compile_seconds") if ok else None
    bench["csim_compile_peak_mb"] = whole.get("compiler_peak_mb") if ok else None
    bench["keras_predict_test_split_seconds"] = whole.get("keras_predict_seconds") if ok else None
    cs, ks = bench["csim_test_split_seconds"], bench["keras_predict_test_split_seconds"]
    bench["csim_vs_keras_throughput_ratio"] = ks / cs if ok and cs and ks else None
    for key in ("csim_test_split_seconds", "csim_compile_seconds", "csim_compile_peak_mb",
                "keras_predict_test_split_seconds", "csim_vs_keras_throughput_ratio"):
        if bench[key] is None:
            reasons[key] = whole.get("reason", "not measured")

    # ---- host packing --------------------------------------------------------------------------
    own_input = network_input_type(out_dir / "hls", run_dir / "hls", stage=headline_stage)
    formats = ((own_input,) if own_input else ()) + tuple(f for f in PACK_FORMATS if f != own_input)
    packing = measure_packing(images, repeats=packing_repeats, formats=formats)
    packing["headline_is_network_input"] = own_input is not None
    bench["packing"] = packing
    head = packing["headline"]
    bench["pack_vs_copy_throughput_ratio"] = head["pack_vs_copy_throughput_ratio"]
    bench["pack_vs_input_copy_throughput_ratio"] = head["pack_vs_input_copy_throughput_ratio"]
    bench["pack_speedup_vs_reference_path"] = head["pack_speedup_vs_reference_path"]
    bench["unpack_vs_copy_throughput_ratio"] = next(
        r["unpack_vs_copy_throughput_ratio"] for r in packing["unpack"] if r["batch"] == head["batch"])
    bench["packing_headline"] = {"format": head["format"], "batch": head["batch"]}

    # ---- figures vs targets --------------------------------------------------------------------
    figures = {}
    for key, (op, target) in TARGETS.items():
        value = bench.get(key)
        met = None if value is None else (value >= target if op == ">=" else value <= target if op == "<=" else value == target)
        figures[key] = {"value": value, "target": f"{op} {target}", "met": met,
                        "kind": "measured" if key in ("pack_vs_copy_throughput_ratio", "csim_test_split_seconds",
                                                      "model_counts_match_csim") else "modelled"}
    bench["figures"] = figures
    bench["bench_seconds"] = time.perf_counter() - started
    from ..model.storage import jsonable

    bench = jsonable(bench)
    (out_dir / BENCH_JSON).write_text(json.dumps(bench, indent=1) + "\n")
    (out_dir / BENCH_MD).write_text(markdown(bench))
    try:
        plot(bench, out_dir / BENCH_PNG)
    except ImportError as err:
        log.warning("no plot: %s", err)
    log.info("bench written to %s", out_dir)
    return bench


# =============================================================================================
# Markdown and plot
# =============================================================================================


def _fmt(value, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, float):
        return f"{value:.{digits}g}" if abs(value) < 1e5 else f"{value:.3e}"
    return str(value)


def markdown(bench: dict) -> str:
    lines = ["# Bench (`python -m vitcod.hls.bench`)", "",
             f"Run: `{bench['run_dir']}`. MODELLED = `vitcod.hls.perf` (no synthesis, clock "
             f"{bench['clock_mhz']:g} MHz assumed); MEASURED = on this machine "
             f"({bench['environment']['cpus']} CPUs, load {bench['environment']['load_average']}).", "",
             "## Figures", "", "| figure | value | target | met | kind | unit |", "|---|---:|---|---|---|---|"]
    for key, f in bench["figures"].items():
        met = "n/a" if f["met"] is None else ("yes" if f["met"] else "**no**")
        lines.append(f"| {key} | {_fmt(f['value'])} | {f['target']} | {met} | {f['kind']} | {bench['units'][key]} |")
    if bench["reasons"]:
        lines += ["", "Not measured:", ""] + [f"- `{k}`: {v}" for k, v in bench["reasons"].items()]
    lines += ["", "## Accuracy and attention cost vs sparsity", "",
              "| stage | sparsity | test acc. | ViTCoD attn. mult. | dense mult. | ratio | ratio incl. AE "
              "| ViTCoD attn. [us] | dense [us] | speedup | ideal speedup | whole model [us] |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    acc = {r["stage"]: r for r in (bench.get("accuracy") or [])}
    for r in bench["sweep"]:
        a = acc.get(r["stage"], {}).get("quantized_test_accuracy")
        lines.append(
            f"| {r['stage']} | {r['achieved_sparsity']:.4f} | {_fmt(a, 4)} | {r['vitcod_attention_multiplies']} | "
            f"{r['dense_attention_multiplies']} | {_fmt(r['attention_mult_ratio'])} | "
            f"{_fmt(r['attention_mult_ratio_incl_autoencoder'])} | {_fmt(r['vitcod_attention_latency_us'])} | "
            f"{_fmt(r['dense_attention_latency_us'])} | {_fmt(r['modelled_attention_speedup'])} | "
            f"{_fmt(r['modelled_attention_speedup_ideal'])} | {_fmt(r['model_latency_us'])} |")
    lines += ["", "Multiplies and latencies are modelled; accuracy is measured (report/accuracy.json). "
              "Dense engine = the same firmware loops with every key global and all q.k lanes in one engine "
              "(same multipliers). Ideal = the authors' analytic assumptions (every multiplier busy).", ""]
    if bench["sweep"]:
        lines += ["Where the ViTCoD attention cycles go (modelled, all blocks):", ""]
        for r in bench["sweep"]:
            parts = ", ".join(f"{k} {v}" for k, v in r["vitcod_stage_cycles"].items())
            lines.append(f"- {r['stage']}: {parts}; heads whose q.k stage is bound by {r['heads_bound_by']}")
    lines += ["", "## Model counts vs C-simulation counters", "", "| stage | engine | calls | match | counters (model = csim) |",
              "|---|---|---:|---|---|"]
    for stage, check in bench["counters_check"].items():
        if check.get("match") is None:
            lines.append(f"| {stage} | - | - | n/a | {check.get('reason')} |")
            continue
        for row in check["engines"]:
            lines.append(f"| {stage} | {row['engine']} | {row['calls']} | {_fmt(row['match'])} | "
                         + ", ".join(f"{k} {v}" for k, v in row["model"].items()) + " |")
    w = bench["whole_csim"]
    lines += ["", "## C-simulation (measured)", ""]
    if w.get("available"):
        lines += [f"- whole network, {w.get('samples')} test images: {_fmt(w.get('csim_seconds'))} s "
                  f"(QKeras predict {_fmt(w.get('keras_predict_seconds'))} s warm, "
                  f"{_fmt(w.get('keras_predict_first_seconds'))} s first call); accuracy C-sim "
                  f"{_fmt(w.get('csim_accuracy'), 4)} vs QKeras {_fmt(w.get('keras_accuracy'), 4)}, top-1 agreement "
                  f"{_fmt(w.get('top1_agreement'), 4)}",
                  f"- compile {_fmt(w.get('compile_seconds'))} s, compiler peak {_fmt(w.get('compiler_peak_mb'))} MiB"]
    else:
        lines.append(f"- whole network: not measured ({w.get('reason')})")
    e = bench["engine_csim"]
    lines.append(f"- one attention engine, g++ from an empty cache: {_fmt(e.get('compile_seconds'))} s, peak "
                 f"{_fmt(e.get('peak_mb'))} MiB; all attention engines: {_fmt(e.get('images_per_s'))} images/s"
                 + (f" ({e['reason']})" if e.get("reason") else ""))
    p = bench["packing"]
    own = "the demo network's own input type" if p.get("headline_is_network_input") else "no network.json found"
    lines += ["", "## Host quantize+pack (measured)", "",
              f"Kernel: `{p.get('kernel', 'numpy')}` (`vitcod.host.native_kernel()`); headline: "
              f"{bench['packing_headline']['format']} ({own}), batch {bench['packing_headline']['batch']}. "
              "Each row's four timings are interleaved, best of the row's repeats; the copies are `np.copyto` "
              "into preallocated arrays, as quantize_pack writes into a preallocated word buffer.", "",
              "| format | batch | quantize_pack [ms] | general path [ms] | copy packed [ms] | copy input [ms] "
              "| pack/copy throughput | pack/input-copy | speed-up vs general |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in p["pack"]:
        lines.append(f"| {r['format']} | {r['batch']} | {r['quantize_pack_ms']:.4f} | {r['reference_path_ms']:.4f} | "
                     f"{r['copy_packed_ms']:.4f} | {r['copy_input_ms']:.4f} | {r['pack_vs_copy_throughput_ratio']:.3f} | "
                     f"{r['pack_vs_input_copy_throughput_ratio']:.3f} | {r['pack_speedup_vs_reference_path']:.2f} |")
    lines += ["", "| output format | batch | unpack [ms] | copy [ms] | unpack/copy throughput |", "|---|---:|---:|---:|---:|"]
    for r in p["unpack"]:
        lines.append(f"| {r['format']} | {r['batch']} | {r['unpack_ms']:.4f} | {r['copy_ms']:.4f} | "
                     f"{r['unpack_vs_copy_throughput_ratio']:.3f} |")
    lines += ["", "## Modelled vs synthesized (0.90 design)", ""]
    if bench.get("modelled_vs_synthesized_at_0.9"):
        syn = bench["synthesized_at_0.9"]
        lines += [f"{syn['label']}; target clock {syn['target_clock_ns']} ns, estimated {syn['estimated_clock_ns']} ns "
                  f"(`make synth`, {syn['run']['command']}).", "",
                  "| quantity | modelled | synthesized | synthesized / modelled |", "|---|---:|---:|---:|"]
        for key, v in bench["modelled_vs_synthesized_at_0.9"].items():
            lines.append(f"| {key} | {_fmt(v['modelled'])} | {_fmt(v['synthesized'])} | "
                         f"{_fmt(v['synthesized_over_modelled'])} |")
    else:
        lines.append(f"No synthesized figures: {bench['reasons'].get('synthesized_at_0.9', 'not available')}. "
                     "With Vitis HLS installed, `make synth` then `make bench` fills this table.")
    if bench.get("fit_at_0.9"):
        row = next(r for r in bench["sweep"] if r["nominal_sparsity"] == HEADLINE_SPARSITY)
        br, res = row["resource_breakdown"], row["resources"]
        lines += ["", "## Board fit of the modelled 0.90 design", "",
                  f"Modelled totals at ReuseFactor {bench['assumptions']['reuse_factor']}: {res['dsp']} DSP, "
                  f"{res['bram_18k']} BRAM18K, {res['lut']} LUT, {res['ff']} FF; of the FFs, {br['tensor_register_ff']} "
                  "are the io_parallel tensors between layers (completely partitioned, PIPO copies); DSPs by kind: "
                  + ", ".join(f"{k} {v}" for k, v in br["dsp_by_kind"].items() if v) + ".", "",
                  "| board | fits | DSP | BRAM18K | LUT | FF | smallest ReuseFactor that fits |", "|---|---|---:|---:|---:|---:|---:|"]
        for board, f in bench["fit_at_0.9"].items():
            u = f["utilization"]
            lines.append(f"| {board} | {_fmt(f['fits'])} | {u['dsp']:.0%} | {u['bram_18k']:.0%} | {u['lut']:.0%} | "
                         f"{u['ff']:.0%} | {_fmt(bench['min_reuse_factor_at_0.9'].get(board))} |")
    lines.append("")
    return "\n".join(lines)


def plot(bench: dict, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = sorted(bench["sweep"], key=lambda r: r["achieved_sparsity"])
    acc = {r["stage"]: r["quantized_test_accuracy"] for r in (bench.get("accuracy") or [])}
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    xs = [r["achieved_sparsity"] for r in rows]
    ys = [acc.get(r["stage"]) for r in rows]
    pts = [(x, y) for x, y in zip(xs, ys) if y is not None]
    if pts:
        ax1.plot([p[0] for p in pts], [100 * p[1] for p in pts], "o-", label="+AE (+mask), quantized")
    dense = acc.get("dense")
    if dense is not None:
        ax1.axhline(100 * dense, color="gray", ls="--", label="dense, no AE")
    ax1.set_xlabel("attention sparsity")
    ax1.set_ylabel("test accuracy [%] (measured)")
    ax1.legend()
    ax1.grid(alpha=0.3)
    ax2.plot(xs, [r["vitcod_attention_latency_us"] for r in rows], "o-", label="ViTCoD engines")
    ax2.plot(xs, [r["dense_attention_latency_us"] for r in rows], "s--", label="dense engine, same multipliers")
    ax2.set_xlabel("attention sparsity")
    ax2.set_ylabel(f"attention latency [us] (MODELLED, {bench['clock_mhz']:g} MHz)")
    ax2.legend()
    ax2.grid(alpha=0.3)
    fig.suptitle("ViTCoD bench: accuracy measured, latency modelled")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


# =============================================================================================
# Command line
# =============================================================================================


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vitcod.hls.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--run-dir", type=Path, default=Path("build/demo"))
    parser.add_argument("--out", type=Path, default=Path("build/bench"))
    parser.add_argument("--counter-stages", default=None,
                        help="comma-separated stages to check against the C-simulation counters (default: all)")
    parser.add_argument("--no-whole-csim", action="store_true", help="skip the whole-network C-simulation")
    parser.add_argument("--no-engine-probe", action="store_true", help="skip the engine compile/throughput probe")
    parser.add_argument("--repeats", type=int, default=30, help="best-of repeats of the packing timings")
    parser.add_argument("--reuse-factor", type=int, default=1)
    parser.add_argument("--lane-budget", type=int, default=4)
    parser.add_argument("--clock-mhz", type=float, default=100.0)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    if not args.run_dir.is_dir():
        print(f"error: run directory {args.run_dir} not found (make demo first)", file=sys.stderr)
        return 2
    a = perf.Assumptions(reuse_factor=args.reuse_factor, lane_budget=args.lane_budget, clock_mhz=args.clock_mhz)
    stages = args.counter_stages.split(",") if args.counter_stages else None
    bench = run_bench(args.run_dir, args.out, assumptions=a, counter_stages=stages, whole_csim=not args.no_whole_csim,
                      engine_probe=not args.no_engine_probe, packing_repeats=args.repeats, jobs=args.jobs,
                      command=" ".join(["python -m vitcod.hls.bench"] + list(argv if argv is not None else sys.argv[1:])))
    for key, f in bench["figures"].items():
        met = "n/a" if f["met"] is None else ("met" if f["met"] else "NOT met")
        print(f"{key:36s} {_fmt(f['value']):>12s}  target {f['target']:8s} {met} ({f['kind']})")
    print(f"wrote {args.out / BENCH_JSON}, {args.out / BENCH_MD}, {args.out / BENCH_PNG}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
