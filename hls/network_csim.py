"""Run level C-simulation: convert a trained run, write the HLS project, compile it, compare with QKeras.

Where this fits in the flow::

    build/<run>/<stage>/{model.h5, config.json, masks.npz}       (model/ stage)
      -> run_csim(run_dir, stage)
           convert()          hls/convert.py: checks, profiling on the training set, precisions
           write_project()    build/<run>/hls/<stage>/            (the Vitis HLS project)
           compile_project()  hls_model.compile(): g++ C-simulation library (timed)
           evaluate_csim()    the whole test split through QKeras and the C-simulation;
                              hls4ml trace of every layer on the first images: per-layer max abs error
                              vs Keras, and our engines bit-exact vs their golden models
      -> build/<run>/hls/csim_report.json                      (read by the report and overlay steps)

Command line (from the repository root)::

    .venv/bin/python -c "from vitcod.hls.network_csim import run_csim; run_csim('build/demo')"
"""

from __future__ import annotations

import logging
import platform
import time
from dataclasses import asdict
from pathlib import Path

from .convert import (
    DEFAULT_STAGE,
    PrecisionPolicy,
    compile_project,
    convert,
    engine_summary,
    evaluate_csim,
    write_project,
)

log = logging.getLogger(__name__)

REPORT_FILE = "csim_report.json"


def run_csim(run_dir, stage: str = DEFAULT_STAGE, out_dir=None, *, backend: str = "Vitis",
             part: str = "xc7z020clg400-1", clock: float = 10, trace_samples: int = 32,
             policy: PrecisionPolicy = PrecisionPolicy(), layer_overrides=None, data=None) -> dict:
    """Convert, write, compile and C-simulate one stage of a run; write the JSON report.

    Args:
        run_dir: ``build/<run>``.
        stage: the model folder inside the run (default ``sparse_0.90``).
        out_dir: the hls4ml project folder (default ``<run_dir>/hls/<stage>``); the report goes to
            ``<out_dir>/../csim_report.json`` (``build/<run>/hls/csim_report.json`` by default).
        backend, part, clock: hls4ml backend, FPGA part, clock period (ns).
        trace_samples: test images traced layer by layer (0 = skip the per-layer comparison).
        policy, layer_overrides: see :func:`vitcod.hls.convert.build_precision_config`.
        data: dataset (default: the digits; profiled on its training split, evaluated on its test split).

    Returns:
        The report dict (also written as JSON).
    """
    from ..model.data import load_dataset
    from ..model.storage import jsonable, write_json
    from ..model.vit import model_masks
    from .network import write_network_description

    run_dir = Path(run_dir)
    out_dir = Path(out_dir) if out_dir is not None else run_dir / "hls" / stage
    data = data if data is not None else load_dataset("digits")

    t0 = time.perf_counter()
    hls_model = convert(run_dir, out_dir, backend=backend, part=part, clock=clock, stage=stage, data=data,
                        policy=policy, layer_overrides=layer_overrides)
    convert_seconds = time.perf_counter() - t0
    conv = hls_model.vitcod
    write_project(hls_model)
    compile_seconds = compile_project(hls_model, trace=trace_samples > 0)
    log.info("compiled %s in %.1f s", out_dir, compile_seconds)
    network_json = write_network_description(hls_model, conv.source.model,
                                             model_masks(conv.source.model))
    evaluation = evaluate_csim(hls_model, conv.source.model, data.x_test, data.y_test,
                               trace_samples=trace_samples, compile_seconds=compile_seconds)
    report = {
        "run_dir": str(run_dir),
        "stage": stage,
        "model_dir": str(conv.source.model_dir),
        "masks": str(conv.source.masks_path) if conv.source.masks_path else None,
        "project_dir": str(out_dir),
        "network_json": str(network_json),
        "backend": backend,
        "io_type": conv.io_type,
        "part": part,
        "clock_period_ns": clock,
        "dataset": data.summary(),
        "profile_samples": conv.profile_samples,
        "policy": asdict(policy),
        "convert_seconds": convert_seconds,
        **evaluation,
        "precision_report": conv.plan.report,
        "engines": engine_summary(hls_model),
        "widened": conv.plan.widened,
        "host": {"machine": platform.machine(), "python": platform.python_version()},
    }
    path = write_json(out_dir.parent / REPORT_FILE, jsonable(report))
    log.info("C-simulation report: %s (top-1 agreement %.4f, accuracy %.4f vs %.4f)", path,
             report["top1_agreement"], report["csim_accuracy"], report["keras_accuracy"])
    report["report_path"] = str(path)
    return report


def random_attention_masks(tokens: int, heads: int, sparsity: float, seed: int = 0,
                           global_columns: tuple[int, ...] = (0, 3, 9)) -> "np.ndarray":
    """(heads, N, N) keep-masks at ~``sparsity``: CLS row and column kept, head h gets
    ``global_columns[h % len]`` extra columns kept by ~90% of the rows, the rest random."""
    import numpy as np

    rng = np.random.default_rng(seed)
    masks = np.zeros((heads, tokens, tokens), dtype=bool)
    for h in range(heads):
        m = masks[h]
        g = global_columns[h % len(global_columns)]
        cols = rng.choice(np.arange(1, tokens), g, replace=False)
        m[:, cols] = rng.random((tokens, g)) < 0.9
        m[:, 0] = True
        m[0, :] = True
        target = int(round((1 - sparsity) * tokens * tokens))
        free = np.flatnonzero(~m)
        extra = max(0, target - int(m.sum()))
        m.flat[rng.choice(free, min(extra, free.size), replace=False)] = True
    return masks


def attention_layer_model(tokens: int, heads: int, head_dim: int, masks, in_dim: int = 16, seed: int = 0):
    """A small Keras model: input (N, in_dim) -> q/k/v QConv1D projections -> ViTCoDAttention."""
    import tensorflow as tf
    from qkeras import QConv1D

    from ..model.layers import ViTCoDAttention
    from ..model.vit import BIAS_BITS, BIAS_INTEGER_BITS

    tf.random.set_seed(seed)
    dim = heads * head_dim
    weight, bias = "quantized_bits(8,0,alpha=1)", f"quantized_bits({BIAS_BITS},{BIAS_INTEGER_BITS},alpha=1)"
    inp = tf.keras.Input((tokens, in_dim), name="tokens")
    qkv = [QConv1D(dim, 1, kernel_quantizer=weight, bias_quantizer=bias, name=n)(inp) for n in "qkv"]
    out = ViTCoDAttention(heads, mask=masks, name="attention")(qkv)
    return tf.keras.Model(inp, out, name="vitcod_attention_layer")


def single_attention_csim(out_dir, tokens: int = 197, heads: int = 3, head_dim: int = 64,
                          sparsity: float = 0.9, samples: int = 20, in_dim: int = 16, seed: int = 0,
                          backend: str = "Vitis", layer_overrides=None) -> dict:
    """One ViTCoD attention layer (DeiT-Tiny size by default) through hls4ml, g++ and the golden model.

    Builds :func:`attention_layer_model` with :func:`random_attention_masks`, converts it with our
    extension (profiled on random inputs), compiles the C-simulation and checks, on ``samples`` random
    inputs, that the attention layer's traced output equals the golden model
    (:func:`vitcod.hls.golden.attention`) bit for bit given its traced q/k/v inputs.

    Returns:
        dict with sizes, sparsity, engine split, compile/csim seconds, mismatches (0 = bit-exact), and
        the max abs difference to the float Keras layer (rounding only).
    """
    import numpy as np

    from .convert import check_engines, convert_keras_model, trace_layers
    from .extension import attention_engine

    rng = np.random.default_rng(seed)
    masks = random_attention_masks(tokens, heads, sparsity, seed)
    model = attention_layer_model(tokens, heads, head_dim, masks, in_dim, seed)
    x_profile = rng.normal(size=(64, tokens, in_dim)).astype(np.float32)
    x = rng.normal(size=(samples, tokens, in_dim)).astype(np.float32)
    t0 = time.perf_counter()
    hls_model = convert_keras_model(model, out_dir, x_profile, backend=backend, layer_overrides=layer_overrides)
    convert_seconds = time.perf_counter() - t0
    write_project(hls_model)
    compile_seconds = compile_project(hls_model, trace=True)
    t0 = time.perf_counter()
    y_csim = np.asarray(hls_model.predict(np.ascontiguousarray(x, dtype=np.float64)))
    csim_seconds = time.perf_counter() - t0
    _, traces = trace_layers(hls_model, x)
    exact = check_engines(hls_model, traces)["attention"]
    y_keras = model.predict(x, verbose=0).reshape(samples, -1)
    engine = attention_engine(hls_model.graph["attention"])
    return {
        "tokens": tokens, "heads": heads, "head_dim": head_dim, "target_sparsity": sparsity,
        "achieved_sparsity": float(1 - masks.mean()),
        "n_global": [p.num_global for p in engine.heads], "nnz_sparse": [p.nnz_sparse for p in engine.heads],
        "dense_ratio": engine.dense_ratio, "dense_unroll": engine.dense_unroll, "sparse_lanes": engine.sparse_lanes,
        "types": {"q": engine.types.q.cpp(), "score": engine.types.score.cpp(), "result": engine.types.result.cpp()},
        "samples": samples, "values_compared": exact["values"], "mismatches_vs_golden": exact["mismatches"],
        "max_abs_error_vs_keras": float(np.abs(y_csim.reshape(samples, -1) - y_keras).max()),
        "convert_seconds": convert_seconds, "compile_seconds": compile_seconds, "csim_seconds": csim_seconds,
        "project_dir": str(out_dir),
    }
