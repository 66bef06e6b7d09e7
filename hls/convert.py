"""Translate a trained ViTCoD model into an hls4ml project: checks, precisions, conversion.

Where this fits in the flow::

    build/<run>/<stage>/{model.h5, config.json, masks.npz}      (vitcod.model.run_layout)
      -> convert()                 (this module)
           1. load the model and its ViTConfig, find the mask artifact
           2. reject unsupported or inconsistent configurations (io_type, backend, mask artifact vs
              model shape, heads, masks the model was not fine-tuned with)     - ConversionError
           3. profile the Keras model on the training set (hls/profiling.py), derive and check
              every layer's precision (hls/precision.py); io_stream: Resource strategy and a
              ReuseFactor per layer from the plan (hls/plan.py)                - PrecisionOverflowError
              (a board plan, hls/plan_file.py, adds every layer's ReuseFactor and the attention lanes)
           4. hls4ml.converters.convert_from_keras_model with our extension (hls/extension.py)
              registered; our layers build and validate their engines (hls/engines.py) here, so a
              score type that cannot hold q.k is rejected too - all before any code is written
      -> write_project()           build/<run>/hls/<stage>/, the Vitis HLS project
      -> hls/network_csim.py       compile, C-simulate, compare with QKeras (run level)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ..model import run_layout
from .errors import (
    ConversionError,
    InconsistentConfigurationError,
    PrecisionOverflowError,
    UnsupportedConfigurationError,
)
from .precision import PrecisionPlan, PrecisionPolicy, build_precision_config
from .profiling import ActivationRange, profile_activations

__all__ = [
    "ConversionError", "UnsupportedConfigurationError", "InconsistentConfigurationError", "PrecisionOverflowError",
    "Source", "resolve_model_dir", "load_source", "validate_target", "validate_configuration", "Conversion",
    "convert", "convert_keras_model", "plan_overrides", "write_project", "engine_summary",
]

SUPPORTED_BACKENDS = ("Vitis", "Vivado")
IO_TYPES = ("io_parallel", "io_stream")


# =============================================================================================
# Loading and validation
# =============================================================================================


@dataclass
class Source:
    """A model folder resolved from a run or model directory."""

    model: Any
    config: Any
    model_dir: Path
    masks_path: Path | None


def resolve_model_dir(run_dir_or_model_dir: str | Path, stage: str = run_layout.DEFAULT_HLS_STAGE) -> Path:
    """``build/<run>/<stage>`` for a run directory, or the folder itself if it holds model.h5."""
    path = Path(run_dir_or_model_dir)
    if (path / run_layout.MODEL_FILE).is_file():
        return path
    folder = run_layout.stage_dir(path, stage)
    if (folder / run_layout.MODEL_FILE).is_file():
        return folder
    raise FileNotFoundError(
        f"no {run_layout.MODEL_FILE} in {path} or {folder}: pass a model folder ({run_layout.MODEL_FILE} + "
        f"{run_layout.CONFIG_FILE}) or a run directory whose stage '{stage}' has been trained "
        "(python -m vitcod finetune ...)")


def load_source(run_dir_or_model_dir, stage: str = run_layout.DEFAULT_HLS_STAGE, masks=None) -> Source:
    """Load model + ViTConfig and locate the mask artifact (``masks=False`` ignores it)."""
    from ..model.storage import load_model

    model_dir = resolve_model_dir(run_dir_or_model_dir, stage)
    model, config = load_model(model_dir)
    if masks is None:
        candidate = model_dir / run_layout.MASKS_FILE
        masks_path = candidate if candidate.is_file() else None
    elif masks is False:
        masks_path = None
    else:
        masks_path = Path(getattr(masks, "path", None) or masks)
        if not masks_path.is_file():
            raise FileNotFoundError(f"mask artifact not found: {masks_path}")
    return Source(model=model, config=config, model_dir=model_dir, masks_path=masks_path)


SUPPORTED_KERAS_LAYERS = (
    "InputLayer", "QConv2D", "QConv1D", "QDense", "Reshape", "Flatten", "Cropping1D", "LayerNormalization",
    "Add", "QActivation", "Activation", "ClassTokenPosition", "QKEncoder", "QKDecoder", "ViTCoDAttention",
)


def validate_target(model, backend: str, io_type: str) -> None:
    """Reject a backend, io_type or layer type the flow does not support.

    Raises:
        UnsupportedConfigurationError.
    """
    if backend not in SUPPORTED_BACKENDS:
        raise UnsupportedConfigurationError(
            f"backend {backend!r}: expected one of {SUPPORTED_BACKENDS} (the extension registers its templates "
            "and engine headers with these)")
    if io_type not in IO_TYPES:
        raise UnsupportedConfigurationError(
            f"io_type {io_type!r}: expected one of {IO_TYPES} (io_stream: hls4ml's stream layers plus our "
            "stream kernels for LayerNorm, the embedding, the Q/K encoder/decoder and the attention)")
    unsupported = sorted({type(layer).__name__ for layer in model.layers} - set(SUPPORTED_KERAS_LAYERS))
    if unsupported:
        raise UnsupportedConfigurationError(f"layer type(s) {unsupported} are not supported; "
                                            f"supported: {SUPPORTED_KERAS_LAYERS}")


def validate_configuration(model, config, masks_path: Path | None, backend: str, io_type: str) -> None:
    """Reject unsupported or inconsistent settings before anything is profiled or written.

    Checks the target (:func:`validate_target`), the model against its config.json (depth, heads,
    tokens) and the mask artifact against both (shape, and equality with the masks the model was
    fine-tuned with).

    Raises:
        UnsupportedConfigurationError, InconsistentConfigurationError.
    """
    from ..model.mask_artifact import MaskArtifactError, load_mask_artifact
    from ..model.vit import attention_layers, model_masks

    validate_target(model, backend, io_type)
    attn = attention_layers(model)
    if len(attn) != config.depth:
        raise InconsistentConfigurationError(
            f"config.json says depth={config.depth} but the model has {len(attn)} attention layers")
    for layer in attn:
        if layer.num_heads != config.num_heads:
            raise InconsistentConfigurationError(
                f"{layer.name}: {layer.num_heads} heads in the model but config.json says num_heads={config.num_heads}")
        tokens = int(layer.input_shape[0][1])
        if tokens != config.num_tokens:
            raise InconsistentConfigurationError(
                f"{layer.name}: {tokens} tokens in the model but config.json implies {config.num_tokens}")
    keras_masks = model_masks(model)
    if masks_path is None:
        return
    try:
        artifact = load_mask_artifact(masks_path, num_layers=config.depth, num_heads=config.num_heads,
                                      num_tokens=config.num_tokens)
    except MaskArtifactError as err:
        raise InconsistentConfigurationError(f"mask artifact {masks_path} does not match the model "
                                             f"({config.depth} layers, {config.num_heads} heads, "
                                             f"{config.num_tokens} tokens): {err}") from None
    if keras_masks is None:
        raise InconsistentConfigurationError(
            f"mask artifact {masks_path} given but the model's attention layers have no mask: the model was not "
            "fine-tuned with these masks, so the hardware would not compute what Keras computes "
            "(pass masks=False for a dense model, or convert the fine-tuned sparse stage)")
    for i in range(config.depth):
        if not np.array_equal(keras_masks[i], artifact.mask[i]):
            diff = int(np.count_nonzero(keras_masks[i] != artifact.mask[i]))
            raise InconsistentConfigurationError(
                f"mask artifact {masks_path}: layer {i} differs from the mask the model was fine-tuned with "
                f"({diff} entries differ)")


# =============================================================================================
# Conversion
# =============================================================================================


@dataclass
class Conversion:
    """What :func:`convert` returns besides the ModelGraph (also attached as ``hls_model.vitcod``)."""

    source: Source | None
    plan: PrecisionPlan
    profile: dict[str, ActivationRange]
    backend: str
    io_type: str
    profile_samples: int
    reuse_plan: dict | None = None
    fifo_plan: Any = None  # io_stream: hls/fifo_depths.py FifoPlan (the emitted FIFO depths)

    def precision_report(self) -> list[dict]:
        return self.plan.report


def convert(run_dir_or_model_dir, out_dir, backend: str = "Vitis", io_type: str = "io_parallel",
            part: str = "xc7z020clg400-1", clock: float = 10, masks=None, *,
            stage: str = run_layout.DEFAULT_HLS_STAGE, data=None, profile_samples: int | None = None,
            policy: PrecisionPolicy = PrecisionPolicy(), layer_overrides: Mapping[str, Mapping] | None = None,
            trace: bool = False, project_name: str = "myproject", reuse_plan: Mapping[str, int] | None = None,
            plan=None):
    """Convert a trained ViTCoD model into an hls4ml ModelGraph (not written, not compiled).

    Args:
        run_dir_or_model_dir: ``build/<run>`` (then ``stage`` is used) or a model folder.
        out_dir: the hls4ml project folder (only written by :func:`write_project` / compile).
        backend: 'Vitis' or 'Vivado'.
        io_type: 'io_parallel' (whole tensors between layers) or 'io_stream' (one token per FIFO element;
            same precisions, same arithmetic).
        part, clock: FPGA part and clock period (ns).
        masks: None = ``<model folder>/masks.npz`` if present; a path / MaskArtifact; False = none.
        stage: stage folder inside a run directory.
        data: a :class:`vitcod.model.data.Dataset` for profiling (default: the digits).
        profile_samples: profile on the first n training images (None = the whole training set).
        policy: precision policy (:class:`PrecisionPolicy`).
        layer_overrides: hls4ml layer-config entries per layer name, checked like the derived ones.
        trace: enable hls4ml tracing of every layer (for per-layer comparisons).
        reuse_plan: io_stream only: ``{layer: ReuseFactor}`` on top of :func:`vitcod.hls.plan.default_plan`.
        plan: io_stream only: a board plan (:class:`vitcod.hls.plan_file.Plan` or its JSON path, from
            ``python -m vitcod.hls.plan``): every layer's ReuseFactor and the attention layers' lanes
            (:func:`plan_overrides`); ``layer_overrides`` entries win over it.

    Returns:
        The hls4ml ModelGraph; ``hls_model.vitcod`` is a :class:`Conversion` with the profile and the
        precision report.

    Raises:
        UnsupportedConfigurationError, InconsistentConfigurationError, PrecisionOverflowError,
        vitcod.hls.extension.ExtensionError - always before any file is written.
    """
    source = load_source(run_dir_or_model_dir, stage, masks)
    validate_configuration(source.model, source.config, source.masks_path, backend, io_type)
    if plan is not None:
        layer_overrides = plan_overrides(plan, source.model, io_type, layer_overrides)
    if data is None:
        from ..model.data import load_dataset

        data = load_dataset("digits")
    x = data.x_train if profile_samples is None else data.x_train[:profile_samples]
    return convert_keras_model(source.model, out_dir, x, backend=backend, io_type=io_type, part=part, clock=clock,
                               masks_path=source.masks_path, policy=policy, layer_overrides=layer_overrides,
                               trace=trace, project_name=project_name, source=source, reuse_plan=reuse_plan)


def plan_overrides(plan, model, io_type: str, layer_overrides: Mapping[str, Mapping] | None = None) -> dict:
    """``layer_overrides`` with a board plan's entries underneath (the user's entries win).

    Raises:
        UnsupportedConfigurationError: a plan for an io_parallel conversion (plans are io_stream designs).
        vitcod.hls.plan_file.PlanError: a plan naming layers the model does not have.
    """
    from .plan_file import Plan

    if io_type != "io_stream":
        raise UnsupportedConfigurationError(f"a board plan sizes the io_stream design; got io_type {io_type!r} "
                                            "(convert with io_type='io_stream', or without the plan)")
    plan = plan if isinstance(plan, Plan) else Plan.read(plan)
    merged = {k: dict(v) for k, v in plan.layer_overrides([layer.name for layer in model.layers]).items()}
    for name, entry in (layer_overrides or {}).items():
        merged.setdefault(name, {}).update(entry)
    return merged


def convert_keras_model(model, out_dir, x_profile: np.ndarray, *, backend: str = "Vitis",
                        io_type: str = "io_parallel", part: str = "xc7z020clg400-1", clock: float = 10,
                        masks_path: Path | None = None, policy: PrecisionPolicy = PrecisionPolicy(),
                        layer_overrides: Mapping[str, Mapping] | None = None, trace: bool = False,
                        project_name: str = "myproject", source: Source | None = None,
                        reuse_plan: Mapping[str, int] | None = None):
    """The conversion core for any Keras model made of supported layers (used by :func:`convert`).

    Profiles ``model`` on ``x_profile``, derives and checks the precisions, and converts with hls4ml;
    ``masks_path`` (a masks.npz) supplies the polarization of the i-th attention layer from its layer i.
    """
    import hls4ml

    from .extension import register

    validate_target(model, backend, io_type)
    profile = profile_activations(model, x_profile)
    plan = build_precision_config(model, profile, backend, policy, layer_overrides, io_type=io_type,
                                  reuse_plan=reuse_plan)
    hc = plan.hls_config
    if masks_path is not None:
        from ..model.vit import attention_layers

        for i, layer in enumerate(attention_layers(model)):
            hc["LayerName"][layer.name]["MaskArtifact"] = str(Path(masks_path).resolve())
            hc["LayerName"][layer.name]["MaskLayer"] = i
    if trace:
        for entry in hc["LayerName"].values():
            entry["Trace"] = True
    register()
    hls_model = hls4ml.converters.convert_from_keras_model(
        model, hls_config=hc, output_dir=str(Path(out_dir)), project_name=project_name, backend=backend,
        io_type=io_type, part=part, clock_period=clock)
    hls_model.vitcod = Conversion(source=source, plan=plan, profile=profile, backend=backend, io_type=io_type,
                                  profile_samples=len(x_profile),
                                  reuse_plan={k: v.get("ReuseFactor") for k, v in hc["LayerName"].items()}
                                  if io_type == "io_stream" else None)
    if io_type == "io_stream":
        from .fifo_depths import apply_fifo_depths

        hls_model.vitcod.fifo_plan = apply_fifo_depths(hls_model, attention_latency=_attention_latencies(hls_model))
    return hls_model


def _attention_latencies(hls_model) -> dict[str, int]:
    """Modelled cycles from each attention layer's last input token to its first output token (the
    dataflow simulation's latency of that process): the engine's modelled latency minus its load and
    write loops (hls/perf/attention_stream.py)."""
    from .engines.attention_stream import stream_engine
    from .extension_engines import engine_for
    from .perf.attention_stream import attention_stream_estimate

    out = {}
    for node in hls_model.get_layers():
        if node.class_name == "VitcodAttention":
            est = attention_stream_estimate(stream_engine(engine_for(node)))
            cycles = est.process_cycles
            out[node.name] = max(1, est.latency - cycles["load"] - cycles["write"])
    return out


def write_project(hls_model) -> Path:
    """Write the HLS project (firmware/, build scripts, weights) to the model's output folder; an
    io_stream project also gets fifo_depths.json (hls/fifo_depths.py: what depths and why)."""
    hls_model.write()
    out = Path(hls_model.config.get_output_dir())
    plan = getattr(getattr(hls_model, "vitcod", None), "fifo_plan", None)
    if plan is not None:
        from .fifo_depths import write_depths_report

        write_depths_report(out, plan)
    return out


def engine_summary(hls_model) -> dict[str, dict]:
    """Types, sizes and parallelism of every one of our engines in a converted model."""
    from .extension_engines import engine_for

    out = {}
    for node in hls_model.get_layers():
        engine = engine_for(node)
        if engine is None:
            continue
        if node.class_name == "VitcodAttention":
            t = engine.types
            out[node.name] = {
                "engine": "sparse_attention", "tokens": engine.config.tokens, "heads": engine.config.heads,
                "head_dim": engine.config.head_dim, "sparsity": float(1 - engine.masks.mean()),
                "n_global": [p.num_global for p in engine.heads], "nnz_sparse": [p.nnz_sparse for p in engine.heads],
                "dense_ratio": engine.dense_ratio, "dense_unroll": engine.dense_unroll,
                "sparse_lanes": engine.sparse_lanes, "macs_per_image": engine.expected_macs(),
                "types": {k: getattr(t, k).cpp() for k in ("q", "k", "v", "qk_accum", "score", "exp_index", "exp",
                                                           "sum", "inv", "prob", "accum", "result")},
            }
        else:
            cfg = engine.config
            out[node.name] = {"engine": "head_mix" if node.class_name == "VitcodHeadMix" else "cls_pos_embed",
                              "macs_per_image": engine.expected_macs(),
                              "types": {k: v.cpp() for k, v in cfg.types.items()}}
    return out
