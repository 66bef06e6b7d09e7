"""What ``bench.json`` promises: file names, the headline sparsity, units, targets and their check.

Every top-level figure of ``bench.json`` has a unit here (:data:`UNITS`); the figures with a
target (:data:`TARGETS`) are collected by :func:`figures_vs_targets` into ``bench["figures"]``,
which the command line prints and ``bench.md`` tabulates.
"""

from __future__ import annotations

from typing import Any

from ..model.run_layout import DEFAULT_SPARSITY

BENCH_JSON, BENCH_MD, BENCH_PNG, BOARDS_PNG = "bench.json", "bench.md", "bench.png", "boards.png"
HEADLINE_SPARSITY = DEFAULT_SPARSITY
"""The ``*_at_0.9`` figures are those of the stage at this nominal sparsity."""

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
    "dataset": "the run's dataset every measured figure is taken on: name, source (the run's dense/metrics.json, "
               "or the digits when the run records none), test_images, image_shape [H, W, C], num_classes, the "
               "model's input shape and tokens, matches_model (bool)",
    "tokens": "count: tokens of the benchmarked model (patches + CLS), from its config.json",
    "boards": "per board (MODELLED, io_stream design planned by vitcod.hls.planner at the board.tcl clock, cap 0.8): "
              "fits (bool), max_utilization (fraction), images_per_s, latency_us, bottleneck (stage), dsp_efficiency "
              "(useful multiplies per image / (DSPs x interval cycles)), vitcod_vs_dense_throughput (ratio of the "
              "images/s of the ViTCoD plan and of the dense-attention plan on the same budget)",
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

NOTES = {
    "pack_vs_copy_throughput_ratio": "measured on this x86 machine with the portable C kernel, the path the "
                                     "boards' Arm cores run; x86 itself only runs the csim/emulated backends, "
                                     "where packing is < 0.001% of a predict (an x86-only AVX2 path reached "
                                     "0.33 and was removed for that reason); the figure that matters, on the "
                                     "board, is not measured here (no board)",
}
"""Why a figure reads as it does, where the number alone would mislead."""

MEASURED_FIGURES = ("pack_vs_copy_throughput_ratio", "csim_test_split_seconds", "model_counts_match_csim")
"""Figures of :data:`TARGETS` that are measured (or checked) in the run; the others are modelled."""


def figures_vs_targets(bench: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each figure of :data:`TARGETS`: its value in ``bench``, the target, whether it is met (None
    when not measured), and whether it is measured or modelled."""
    figures = {}
    for key, (op, target) in TARGETS.items():
        value = bench.get(key)
        met = None if value is None else (
            value >= target if op == ">=" else value <= target if op == "<=" else value == target)
        figures[key] = {"value": value, "target": f"{op} {target}", "met": met,
                        "kind": "measured" if key in MEASURED_FIGURES else "modelled"}
        if key in NOTES:
            figures[key]["note"] = NOTES[key]
    return figures
