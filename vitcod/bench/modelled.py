"""The modelled design of every stage of a run (:mod:`vitcod.hls.perf`), and ``make synth`` beside it.

Every figure here is MODELLED (no Vitis HLS): attention multiplies, cycles and latency of the
ViTCoD engines vs a dense engine with the same q.k multipliers, the whole model's latency and
resources, and the board fit. When ``make synth`` ran (Vitis HLS installed), its C-synthesis
estimate is set beside the modelled figures of the same design (:func:`modelled_vs_synthesized`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..hls.perf import LABEL, Assumptions, ModelEstimate, estimate_run, fit_report, min_reuse_factor
from ..model.run_layout import AUTOENCODER, CONFIG_FILE, DEFAULT_SPARSITIES, sparse_stage, stage_dir

BENCH_STAGES = {AUTOENCODER: 0.0, **{sparse_stage(s): s for s in DEFAULT_SPARSITIES}}
"""Stage folders the bench models, with their nominal sparsity (the auto-encoder stage is dense)."""

#: bench.json ``*_at_0.9`` headline figures -> the sweep-row field they are read from.
HEADLINE_FIELDS = (("attention_mult_ratio_at_0.9", "attention_mult_ratio"),
                   ("attention_mult_ratio_incl_autoencoder_at_0.9", "attention_mult_ratio_incl_autoencoder"),
                   ("modelled_attention_speedup_at_0.9", "modelled_attention_speedup"),
                   ("modelled_attention_speedup_ideal_at_0.9", "modelled_attention_speedup_ideal"),
                   ("modelled_attention_latency_us_at_0.9", "vitcod_attention_latency_us"),
                   ("modelled_dense_attention_latency_us_at_0.9", "dense_attention_latency_us"))


def stages_of(run_dir: Path) -> dict[str, float]:
    """Stage folders of the run with a config.json -> nominal sparsity (ae = 0)."""
    return {stage: sparsity for stage, sparsity in BENCH_STAGES.items()
            if (stage_dir(run_dir, stage) / CONFIG_FILE).is_file()}


def sweep(run_dir: Path, assumptions: Assumptions) -> tuple[list[dict], dict[str, ModelEstimate]]:
    """The modelled design of every stage: attention ViTCoD vs dense, whole model, board fit."""
    rows, estimates = [], {}
    for stage, nominal in stages_of(run_dir).items():
        est = estimate_run(run_dir, stage, assumptions)
        estimates[stage] = est
        s = est.attention_summary()
        fit = fit_report(est)
        rows.append({
            "label": LABEL, "stage": stage, "nominal_sparsity": nominal, "achieved_sparsity": est.sparsity,
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
            "model_latency_cycles": est.cycles,
            "model_throughput_images_per_s": est.throughput, "model_throughput_basis": est.throughput_basis,
            "model_overlapped_throughput_images_per_s": est.assumptions.clock_mhz * 1e6 / est.interval,
            "resources": est.resource_estimate(), "resource_breakdown": est.resource_breakdown(),
            "qk_bytes": est.qk_bytes(),
            "fits": {board: entry["fits"] for board, entry in fit.items()},
            "utilization": {board: entry["utilization"] for board, entry in fit.items()},
        })
    return rows, estimates


def at_sparsity(rows: list[dict], sparsity: float, key: str) -> Any:
    """Field ``key`` of the sweep row at nominal ``sparsity`` (None when there is no such row)."""
    for r in rows:
        if r["nominal_sparsity"] == sparsity:
            return r.get(key)
    return None


def headline_stage(rows: list[dict], sparsity: float) -> str | None:
    """The stage whose nominal sparsity is ``sparsity`` (the design the headline figures describe)."""
    return next((r["stage"] for r in rows if r["nominal_sparsity"] == sparsity), None)


def board_fit(est: ModelEstimate, assumptions: Assumptions) -> dict[str, dict]:
    """``fit_at_0.9``, ``min_reuse_factor_at_0.9`` and ``engines_at_0.9`` of bench.json."""
    fit = fit_report(est)
    return {"fit_at_0.9": fit,
            "min_reuse_factor_at_0.9": {
                board: min_reuse_factor(est.config, [list(e.heads) for e in est.attention_engines], board,
                                        assumptions, autoencoder=est.autoencoder)
                for board in fit},
            "engines_at_0.9": [e.to_dict() for e in est.engines]}


def modelled_vs_synthesized(row: dict, synthesized: dict) -> dict[str, dict[str, Any]]:
    """The same quantity modelled (sweep row) and C-synthesized (synth.json), side by side."""
    # The IP does not overlap images yet, so the modelled images/s is clock / latency; the network's own
    # csynth interval is set beside the modelled network interval (what overlapping would give).
    pairs = {"latency_us": (row["model_latency_us"], synthesized.get("latency_us_at_target_clock")),
             "interval_cycles": (row["model_interval_cycles"], synthesized.get("interval_min_cycles")),
             "latency_cycles": (row.get("model_latency_cycles"), synthesized.get("worst_latency_cycles"))}
    for key in ("dsp", "bram_18k", "lut", "ff"):
        pairs[key] = (row["resources"][key], synthesized["resources"].get(key))
    return {key: {"modelled": m, "synthesized": s,
                  "synthesized_over_modelled": s / m if isinstance(s, (int, float)) and m else None}
            for key, (m, s) in pairs.items()}
