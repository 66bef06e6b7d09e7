"""C-simulation of the converted network: compile the HLS project, run it, compare it with QKeras.

Where this fits in the flow::

    build/<run>/<stage>/{model.h5, config.json, masks.npz}       (model/ stage)
      -> run_csim(run_dir, stage)
           convert()          hls/convert.py: checks, profiling on the training set, precisions
           write_project()    build/<run>/hls/<stage>/            (the Vitis HLS project)
           compile_project()  hls_model.compile(): g++ C-simulation library (timed)
           evaluate_csim()    the whole test split through QKeras and the C-simulation;
                              hls4ml trace of every layer on the first images: per-layer max abs error
                              vs Keras (per_layer_errors), and our engines bit-exact vs their golden
                              models (check_engines)
      -> build/<run>/hls/csim_report.json                      (read by the report and overlay steps)

:func:`single_attention_csim` puts one ViTCoD attention layer (DeiT-Tiny size, random masks from
:func:`random_attention_masks`) through the same steps. The C-simulation of our engines alone
(no hls4ml) is :mod:`vitcod.hls.engine_csim`; the board driver's is :mod:`vitcod.host.csim_backend`.

Command line: ``python -m vitcod csim --run-dir build/<run> [--stage <stage>]``.
"""

from __future__ import annotations

import logging
import platform
import time
from dataclasses import asdict
from pathlib import Path
from typing import Mapping

import numpy as np

from ..model import run_layout
from .convert import convert, convert_keras_model, engine_summary, write_project
from .fixed_point import FixedType, from_float, to_float
from .precision import PrecisionPolicy

log = logging.getLogger(__name__)


def run_csim(run_dir, stage: str = run_layout.DEFAULT_HLS_STAGE, out_dir=None, *, backend: str = "Vitis",
             part: str = "xc7z020clg400-1", clock: float = 10, trace_samples: int = 32,
             policy: PrecisionPolicy = PrecisionPolicy(), layer_overrides=None, data=None,
             io_type: str = "io_parallel", compare_parallel: bool = False) -> dict:
    """Convert, write, compile and C-simulate one stage of a run; write the JSON report.

    Args:
        run_dir: ``build/<run>``.
        stage: the model folder inside the run (default :data:`vitcod.model.run_layout.DEFAULT_HLS_STAGE`).
        out_dir: the hls4ml project folder (default ``<run_dir>/hls/<stage>``); the report goes to
            ``<out_dir>/../csim_report.json`` (``build/<run>/hls/csim_report.json`` by default).
        backend, part, clock: hls4ml backend, FPGA part, clock period (ns).
        trace_samples: test images traced layer by layer (0 = skip the per-layer comparison).
        policy, layer_overrides: see :func:`vitcod.hls.precision.build_precision_config`.
        data: dataset (default: the digits; profiled on its training split, evaluated on its test split).
        io_type: 'io_parallel' or 'io_stream' (the same precisions and arithmetic, see hls/convert.py).
        compare_parallel: io_stream only: also build the io_parallel twin (``<out_dir>.io_parallel``,
            compiled without tracing) and compare the two designs' outputs on the whole test split
            (report keys ``identical_to_parallel`` and ``parallel_comparison``).

    Returns:
        The report dict (also written as JSON).
    """
    from ..model.data import load_dataset
    from ..model.storage import jsonable, write_json
    from ..model.vit import model_masks
    from .network import write_network_description

    run_dir = Path(run_dir)
    out_dir = Path(out_dir) if out_dir is not None else run_layout.hls_project_dir(run_dir, stage)
    data = data if data is not None else load_dataset("digits")

    t0 = time.perf_counter()
    hls_model = convert(run_dir, out_dir, backend=backend, part=part, clock=clock, stage=stage, data=data,
                        policy=policy, layer_overrides=layer_overrides, io_type=io_type)
    convert_seconds = time.perf_counter() - t0
    conv = hls_model.vitcod
    write_project(hls_model)
    compile_seconds = compile_project(hls_model, trace=trace_samples > 0)
    log.info("compiled %s in %.1f s", out_dir, compile_seconds)
    network_json = write_network_description(hls_model, conv.source.model,
                                             model_masks(conv.source.model))
    evaluation = evaluate_csim(hls_model, conv.source.model, data.x_test, data.y_test,
                               trace_samples=trace_samples, compile_seconds=compile_seconds, keep_outputs=True)
    outputs = evaluation.pop("outputs")
    comparison = None
    if compare_parallel and conv.io_type == "io_stream":
        twin = out_dir.parent / f"{out_dir.name}.io_parallel"
        comparison = compare_outputs(outputs, parallel_outputs(run_dir, twin, data.x_test, stage=stage, data=data,
                                                               backend=backend, part=part, clock=clock,
                                                               policy=policy, layer_overrides=layer_overrides))
    report = {
        "run_dir": str(run_dir),
        "stage": stage,
        "model_dir": str(conv.source.model_dir),
        "masks": str(conv.source.masks_path) if conv.source.masks_path else None,
        "project_dir": str(out_dir),
        "network_json": str(network_json),
        "backend": backend,
        "io_type": conv.io_type,
        "reuse_plan": conv.reuse_plan,
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
    if comparison is not None:
        report["identical_to_parallel"] = comparison["identical"]
        report["parallel_comparison"] = comparison
    path = write_json(out_dir.parent / run_layout.CSIM_REPORT_FILE, jsonable(report))
    log.info("C-simulation report: %s (top-1 agreement %.4f, accuracy %.4f vs %.4f)", path,
             report["top1_agreement"], report["csim_accuracy"], report["keras_accuracy"])
    report["report_path"] = str(path)
    return report


def compile_project(hls_model, trace: bool = True) -> float:
    """Write and compile the C-simulation library (``hls_model.compile()``); returns the seconds taken.

    ``trace=True`` builds hls4ml's trace hooks into the library (every layer), so :func:`trace_layers`
    can read per-layer outputs without compiling a second time; the hooks do nothing unless a trace
    is running, so ``predict`` is unaffected.
    """
    if trace:
        for layer in hls_model.get_layers():
            # io_stream's Clone layers write one trace per copy under the same name, which hls4ml's
            # reader miscounts; a copy is its input anyway (see _traced_input).
            layer.set_attr("trace", layer.class_name != "Clone")
        hls_model.config.trace_output = True
    t0 = time.perf_counter()
    hls_model.compile()
    seconds = time.perf_counter() - t0
    hls_model._vitcod_trace_build = trace
    return seconds


def trace_layers(hls_model, x: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """``hls_model.trace(x)`` in double precision (exact for every ap_fixed up to 53 bits).

    hls4ml's ``trace`` always recompiles; after :func:`compile_project` with ``trace=True`` the library
    already has the hooks, so the recompilation is skipped.
    """
    x = np.ascontiguousarray(x, dtype=np.float64)
    if getattr(hls_model, "_vitcod_trace_build", False):
        hls_model.compile = lambda: None  # instance attribute shadows ModelGraph.compile for this call
        try:
            return hls_model.trace(x)
        finally:
            del hls_model.compile
    for layer in hls_model.get_layers():
        layer.set_attr("trace", layer.class_name != "Clone")
    result = hls_model.trace(x)
    hls_model._vitcod_trace_build = True
    return result


def keras_layer_outputs(model, x: np.ndarray, names) -> dict[str, np.ndarray]:
    """Outputs of the named Keras layers on ``x`` (the counterpart of ``hls_model.trace``)."""
    import tensorflow as tf

    names = [n for n in names if any(l.name == n for l in model.layers)]
    sub = tf.keras.Model(model.inputs, [model.get_layer(n).output for n in names])
    outs = sub.predict(x, verbose=0, batch_size=64)
    if len(names) == 1:
        outs = [outs]
    return dict(zip(names, outs))


def evaluate_csim(hls_model, keras_model, x: np.ndarray, y: np.ndarray, *, trace_samples: int = 32,
                  compile_seconds: float | None = None, keep_outputs: bool = False) -> dict:
    """Run the compiled model on (x, y) and compare it with QKeras.

    Returns a dict with the accuracies of QKeras and the C-simulation, top-1 agreement, the largest
    output difference, csim seconds, and (``trace_samples > 0``) the per-layer max abs error between
    hls4ml's trace and the Keras layer outputs on the first ``trace_samples`` images (this recompiles
    the project with tracing, see ``hls_model.trace``).
    """
    x64 = np.ascontiguousarray(x, dtype=np.float64)
    t0 = time.perf_counter()
    y_csim = np.asarray(hls_model.predict(x64)).reshape(len(x), -1)
    csim_seconds = time.perf_counter() - t0
    y_keras = np.asarray(keras_model.predict(x, verbose=0, batch_size=64)).reshape(len(x), -1)
    top_csim, top_keras = y_csim.argmax(axis=1), y_keras.argmax(axis=1)
    report = {
        "samples": int(len(x)),
        "keras_accuracy": float(np.mean(top_keras == y)),
        "csim_accuracy": float(np.mean(top_csim == y)),
        "top1_agreement": float(np.mean(top_csim == top_keras)),
        "max_abs_output_error": float(np.abs(y_csim - y_keras).max()),
        "compile_seconds": compile_seconds,
        "csim_seconds": csim_seconds,
        "csim_seconds_per_image": csim_seconds / max(1, len(x)),
    }
    report["accuracy_drop_points"] = 100.0 * (report["keras_accuracy"] - report["csim_accuracy"])
    if keep_outputs:
        report["outputs"] = y_csim
    if trace_samples:
        xt = x64[:trace_samples]
        t0 = time.perf_counter()
        _, traces = trace_layers(hls_model, xt)
        report["trace_samples"] = int(len(xt))
        report["trace_seconds"] = time.perf_counter() - t0
        report["per_layer_max_abs_error"] = per_layer_errors(keras_model, traces, xt)
        report["engines_bit_exact"] = check_engines(hls_model, traces)
    return report


def _traced_input(hls_model, traces: Mapping[str, np.ndarray], name: str) -> np.ndarray:
    """Trace of the tensor ``name``; io_parallel reshapes and io_stream's clones and repacks copy their
    input value for value, so look through them."""
    if name in traces:
        return np.asarray(traces[name])
    producer = next((n for n in hls_model.get_layers() if name in n.outputs), None)
    if producer is not None and producer.class_name in ("Reshape", "Clone", "Repack") and producer.inputs:
        return _traced_input(hls_model, traces, producer.inputs[0])
    raise KeyError(f"no trace for tensor {name!r} (trace every layer: compile_project(trace=True))")


def _raws(values: np.ndarray, t: FixedType, what: str) -> np.ndarray:
    """Raw integers of traced values that must be exact values of ``t`` (ValueError otherwise)."""
    values = np.asarray(values, dtype=np.float64).reshape(len(values), -1)
    raw = from_float(values, t.with_modes("AP_TRN", "AP_WRAP"))
    if not np.array_equal(to_float(raw, t), values):
        raise ValueError(f"{what}: traced values are not exact values of {t.cpp()}")
    return raw


def check_engines(hls_model, traces: Mapping[str, np.ndarray]) -> dict[str, dict]:
    """Our layers inside the compiled model vs their numpy golden models, bit for bit.

    Each of our nodes gets its ACTUAL inputs from the hls4ml trace (the outputs of the layers that
    feed it), the golden model (:mod:`vitcod.hls.golden`) computes the expected raws from the same
    engine object the C++ was generated from, and the node's own traced output is compared.

    Returns:
        ``{layer: {"engine": kind, "values": n, "mismatches": m}}`` (m == 0 means bit-exact).
    """
    from . import golden
    from .extension_engines import engine_for
    from .extension_types import fixed_type

    out = {}
    for node in hls_model.get_layers():
        engine = engine_for(node)
        if engine is None or node.name not in traces:
            continue
        inputs = [_raws(_traced_input(hls_model, traces, name), fixed_type(node.get_input_variable(name).type),
                        f"{node.name} input {name}") for name in node.inputs]
        if node.class_name == "VitcodAttention":
            expected = golden.attention(engine, *inputs)
        elif node.class_name == "VitcodHeadMix":
            expected = golden.head_mix(engine, inputs[0])
        else:
            expected = golden.cls_pos_embed(engine, inputs[0])
        got = _raws(traces[node.name], fixed_type(node.get_output_variable().type), f"{node.name} output")
        out[node.name] = {"engine": node.class_name, "values": int(got.size),
                          "mismatches": int(np.count_nonzero(got != expected.reshape(got.shape)))}
    return out


def per_layer_errors(keras_model, traces: Mapping[str, np.ndarray], x: np.ndarray) -> dict[str, dict]:
    """Max abs error of every traced layer: hls4ml trace vs the Keras layer output on the same ``x``."""
    keras = keras_layer_outputs(keras_model, np.asarray(x, dtype=np.float32), traces.keys())
    out = {}
    for name, value in traces.items():
        if name not in keras:
            continue
        ref = keras[name].reshape(len(x), -1)
        got = np.asarray(value).reshape(len(x), -1)
        if ref.shape != got.shape:
            continue
        out[name] = {"max_abs_error": float(np.abs(got - ref).max()), "max_abs_value": float(np.abs(ref).max())}
    return out


def random_head_mask(rng: np.random.Generator, tokens: int, sparsity: float, n_global: int) -> np.ndarray:
    """(N, N) keep-mask at ~``sparsity``: CLS row and column kept, ``n_global`` extra columns kept
    by ~90% of the rows (global tokens for the polarization), the rest kept at random."""
    mask = np.zeros((tokens, tokens), dtype=bool)
    cols = rng.choice(np.arange(1, tokens), n_global, replace=False)
    mask[:, cols] = rng.random((tokens, n_global)) < 0.9
    mask[:, 0] = True
    mask[0, :] = True
    target = int(round((1 - sparsity) * tokens * tokens))
    free = np.flatnonzero(~mask)
    extra = max(0, target - int(mask.sum()))
    mask.flat[rng.choice(free, min(extra, free.size), replace=False)] = True
    return mask


def random_attention_masks(tokens: int, heads: int, sparsity: float, seed: int = 0,
                           global_columns: tuple[int, ...] = (0, 3, 9)) -> np.ndarray:
    """(heads, N, N) keep-masks from :func:`random_head_mask`, head h with
    ``global_columns[h % len]`` global columns, all drawn from one generator seeded with ``seed``."""
    rng = np.random.default_rng(seed)
    return np.stack([random_head_mask(rng, tokens, sparsity, global_columns[h % len(global_columns)])
                     for h in range(heads)])


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
    from .extension_engines import attention_engine

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


def parallel_outputs(run_dir, out_dir, x: np.ndarray, *, stage: str = run_layout.DEFAULT_HLS_STAGE, data=None,
                     **convert_args) -> dict:
    """The io_parallel design of a stage, written to ``out_dir``, compiled (no tracing) and run on ``x``:
    ``{"y", "compile_seconds", "csim_seconds", "project_dir"}``."""
    hls_model = convert(run_dir, out_dir, stage=stage, data=data, io_type="io_parallel", **convert_args)
    write_project(hls_model)
    compile_seconds = compile_project(hls_model, trace=False)
    t0 = time.perf_counter()
    y = np.asarray(hls_model.predict(np.ascontiguousarray(x, dtype=np.float64))).reshape(len(x), -1)
    return {"y": y, "compile_seconds": compile_seconds, "csim_seconds": time.perf_counter() - t0,
            "project_dir": str(out_dir)}


def compare_outputs(stream_y: np.ndarray, parallel: dict) -> dict:
    """Outputs of the io_stream design vs :func:`parallel_outputs`: exact values of the output type, so
    equal doubles are equal raws."""
    a, b = parallel["y"], np.asarray(stream_y)
    if a.shape != b.shape:
        raise ValueError(f"io_parallel outputs have shape {a.shape}, io_stream {b.shape}: not the same images")
    return {"identical": bool(np.array_equal(a, b)), "images": int(len(a)),
            "images_differing": int(np.count_nonzero((a != b).any(axis=1))),
            "top1_agreement": float(np.mean(a.argmax(axis=1) == b.argmax(axis=1))),
            "max_abs_difference": float(np.abs(a - b).max()),
            "io_parallel": {k: parallel[k] for k in ("compile_seconds", "csim_seconds", "project_dir")}}
