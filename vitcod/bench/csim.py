"""The C-simulation figures of the bench: counters vs the model, the engines' compile and speed, the whole network.

* :func:`check_counters` - the model's multiply counts vs the C-simulation counters of every
  engine of the checked stages (:func:`vitcod.hls.perf.check_counters_against_csim`), exact.
* :func:`measure_engine_csim` - one attention engine compiled from an empty cache in a child
  (:mod:`.engine_compile_child`: seconds and g++ peak memory), then every attention engine of the
  design run on random raw inputs (images/s).
* :func:`measure_whole_csim` - the whole network's hls4ml C-simulation on the test split and
  QKeras predict on the same images, in a child (:mod:`.network_csim_child`).

All MEASURED on this machine, except the counter check, which is exact or not.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..hls.perf import ModelEstimate, check_counters_against_csim
from ..model.run_layout import MODEL_FILE, hls_project_dir, stage_dir
from .child import run_child

ENGINE_COMPILE_CHILD = "vitcod.bench.engine_compile_child"
NETWORK_CSIM_CHILD = "vitcod.bench.network_csim_child"
PROBE_CACHE = "csim_cache_probe"
"""Folder under the bench output for the engine probe's empty C-simulation cache (removed after)."""


def check_counters(estimates: dict[str, ModelEstimate], stages: Sequence[str], run_dir: Path,
                   jobs: int) -> tuple[dict[str, dict], bool | None, str | None]:
    """``(per-stage check, all matched, why not known)``: the model's counts vs the C-simulation counters.

    ``all matched`` is None (with the reason) when a stage could not be checked or none was.
    """
    checks: dict[str, dict] = {}
    for stage in stages:
        if stage not in estimates:
            checks[stage] = {"match": None, "reason": f"stage {stage} not in {run_dir}"}
            continue
        try:
            checks[stage] = check_counters_against_csim(estimates[stage], jobs=jobs)
        except Exception as err:  # no g++ / ap_types: say so, never guess
            checks[stage] = {"match": None, "reason": f"C-simulation unavailable: {type(err).__name__}: {err}"}
    results = [c["match"] for c in checks.values()]
    match = all(results) if results and None not in results else None
    why = None
    if match is None:
        why = "; ".join(c.get("reason", "") for c in checks.values() if c["match"] is None) or "no stage checked"
    return checks, match, why


def measure_engine_csim(run_dir: Path, stage: str, estimate: ModelEstimate, out_dir: Path,
                        images: int, timeout: float = 900) -> dict[str, Any]:
    """Compile one attention engine in a child with an empty cache (time + g++ peak memory), then run
    every attention engine of the design on ``images`` random raw inputs (C-simulation speed)."""
    from ..hls import engine_csim

    cache = (out_dir / PROBE_CACHE).resolve()  # absolute: g++ runs in its own build folder
    shutil.rmtree(cache, ignore_errors=True)
    cache.mkdir(parents=True)
    args = {"run_dir": str(run_dir.resolve()), "stage": stage, "assumptions": estimate.assumptions.to_dict()}
    child, reason = run_child(ENGINE_COMPILE_CHILD, args, timeout, env={"VITCOD_CSIM_CACHE": str(cache)})
    shutil.rmtree(cache, ignore_errors=True)  # the probe's library is not needed afterwards
    out: dict[str, Any] = {"label": "measured", "stage": stage}
    if child is None:
        out.update(compile_seconds=None, peak_mb=None, reason=f"engine compile probe failed: {reason}")
    else:
        out.update(engine=child["engine"], compile_seconds=child["compile_seconds"],
                   peak_mb=child["peak_kb"] / 1024.0)
    libs = engine_csim.build_many(estimate.attention_engines, jobs=2)
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


def measure_whole_csim(run_dir: Path, stage: str, out_dir: Path, timeout: float = 3600) -> dict[str, Any]:
    """The whole network through vitcod.hls.network_csim.run_csim (child process) and QKeras predict.

    The C-simulation project goes to ``<out_dir>/hls/<stage>`` (the run folder is not touched).
    """
    if not (stage_dir(run_dir, stage) / MODEL_FILE).is_file():
        return {"label": "measured", "available": False,
                "reason": f"{stage_dir(run_dir, stage)}/{MODEL_FILE} not found"}
    args = {"run_dir": str(run_dir.resolve()), "stage": stage,
            "out_dir": str(hls_project_dir(out_dir, stage).resolve())}
    t0 = time.perf_counter()
    child, reason = run_child(NETWORK_CSIM_CHILD, args, timeout)
    wall = time.perf_counter() - t0
    if child is None:
        return {"label": "measured", "available": False, "reason": f"run_csim failed: {reason}", "wall_seconds": wall}
    child.update(label="measured", available=True, wall_seconds=wall,
                 compiler_peak_mb=child["compiler_peak_kb"] / 1024.0)
    return child
