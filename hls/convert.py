"""Translate a trained ViTCoD model into an hls4ml project: checks, profiling, precisions, conversion.

Where this fits in the flow::

    build/<run>/sparse_0.90/{model.h5, config.json, masks.npz}
      -> convert()                 (this module)
           1. load the model and its ViTConfig, find the mask artifact
           2. reject unsupported or inconsistent configurations (io_stream, backend, mask artifact vs
              model shape, heads, masks the model was not fine-tuned with)     - ConversionError
           3. PROFILE the Keras model on the training set: per-layer output min/max, and per-token
              mean/variance at every LayerNormalization input
           4. derive the precision of every layer from the profile (results with headroom, exact
              accumulators, LayerNorm tables that cover the variances seen) and CHECK it: any layer
              whose configured type (e.g. a user override) cannot hold the range seen raises
              PrecisionOverflowError, or is widened (``policy.on_overflow='widen'``)
           5. hls4ml.converters.convert_from_keras_model with our extension (hls/extension.py)
              registered; our layers build and validate their engines (hls/engines.py) here, so a
              score type that cannot hold q.k is rejected too - all before any code is written
      -> write_project() / compile_project() / evaluate_csim()   and hls/network_csim.py (run level)

Precision choices (``PrecisionPolicy``) and the pitfalls they avoid (../shared/TOOLCHAIN.md):

* activations: ``ap_fixed<I+F, I, AP_RND_CONV, AP_SAT>`` with F = 12 fraction bits and I = the integer
  bits the profiled range needs plus one bit of headroom; rounding to nearest-even (no drift),
  saturation instead of wrap-around.
* Conv/Dense accumulators: EXACT from the types (all fraction bits of input*weight and of the bias,
  integer bits for the worst case over the input type) - no accumulator can overflow or round.
* head logits = softmax input: narrow ``ap_fixed<16, I>`` (hls4ml's "stable" softmax indexes its
  exp table with the top bits of its input type; a wide type breaks it); softmax output
  ``ap_ufixed<16,1,AP_RND_CONV,AP_SAT>``; its exp and 1/sum tables 4096 entries of
  ``ap_ufixed<18,1>`` and the sum ``ap_ufixed<21,4>`` (hls4ml's ap_fixed<18,8> defaults resolve
  1/sum in steps of 1/4 and cost up to 0.2 in the probabilities).
* LayerNormalization: ``table_t`` set directly in the layer config (``Precision: table`` is ignored by
  hls4ml 1.3.0), table range 2^-TableRangePower2 >= the largest variance seen times a margin, table
  size so the 1/sqrt step error is small at the 1st-percentile variance; wide ``accum`` with 22
  fraction bits (variances of the first block are ~1e-3). hls4ml 1.3.0's kernel cannot index a table
  wider than 1; ranges above 1 go through the fixed kernel in firmware/vitcod_layernorm.h.
* our engines: result types from the profile; their internal types (score, exp, sums, P x V) are
  derived exact/sufficient by hls/engines.py.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from .fixed_point import FixedType, parse_type

log = logging.getLogger(__name__)

SUPPORTED_BACKENDS = ("Vitis", "Vivado")
DEFAULT_STAGE = "sparse_0.90"
MASKS_FILE = "masks.npz"


# =============================================================================================
# Errors
# =============================================================================================


class ConversionError(ValueError):
    """The model cannot be converted with the requested settings (nothing has been written)."""


class UnsupportedConfigurationError(ConversionError):
    """A setting the flow does not support (io_stream, another backend, a layer type)."""


class InconsistentConfigurationError(ConversionError):
    """Inputs that contradict each other (mask artifact vs model, heads, config.json vs model)."""


class PrecisionOverflowError(ConversionError):
    """A configured fixed-point type cannot hold the values the profile saw.

    Attributes:
        rows: the offending rows of the precision report (layer, range seen, type, headroom bits).
    """

    def __init__(self, message: str, rows: list[dict]):
        super().__init__(message)
        self.rows = rows


# =============================================================================================
# Policy
# =============================================================================================


@dataclass(frozen=True)
class PrecisionPolicy:
    """How precisions are derived from the profile (see the module docstring for the reasons).

    Attributes:
        frac_bits: fraction bits of every activation type.
        headroom_bits: integer bits added above what the profiled range needs.
        rounding / saturation: modes of the activation types.
        logits_width: total width of the head output (= softmax input; must stay narrow).
        softmax_result: type of the softmax output.
        softmax_table_size: entries of hls4ml's softmax exp and 1/sum tables (indexed by top bits).
        softmax_table_frac_bits: fraction bits of the softmax tables and sum (values in [0, 1] and
            [1, classes]; hls4ml's defaults ap_fixed<18,8> keep only 10).
        norm_param_width: width of LayerNorm gamma/beta (float weights in Keras).
        norm_accum_frac_bits: fraction bits of the LayerNorm accumulator (mean, variance).
        norm_table_frac_bits: fraction bits of the LayerNorm 1/sqrt table entries.
        norm_table_error: target relative step error of the 1/sqrt table at the 1st-percentile variance.
        norm_table_min_size / norm_table_max_size: bounds of the table size (powers of two).
        norm_range_margin: the table range covers (largest variance seen) x margin.
        on_overflow: 'error' (raise PrecisionOverflowError) or 'widen' (add integer bits, log it).
    """

    frac_bits: int = 12
    headroom_bits: int = 1
    rounding: str = "AP_RND_CONV"
    saturation: str = "AP_SAT"
    logits_width: int = 16
    softmax_result: str = "ap_ufixed<16,1,AP_RND_CONV,AP_SAT>"
    softmax_table_size: int = 4096
    softmax_table_frac_bits: int = 17
    norm_param_width: int = 18
    norm_accum_frac_bits: int = 22
    norm_table_frac_bits: int = 14
    norm_table_error: float = 0.01
    norm_table_min_size: int = 1024
    norm_table_max_size: int = 65536
    norm_range_margin: float = 1.5
    on_overflow: str = "error"

    def __post_init__(self) -> None:
        if self.on_overflow not in ("error", "widen"):
            raise ValueError(f"on_overflow must be 'error' or 'widen', got {self.on_overflow!r}")
        for what in ("frac_bits", "logits_width", "norm_param_width", "norm_accum_frac_bits",
                     "norm_table_frac_bits"):
            if not isinstance(getattr(self, what), int) or getattr(self, what) < 1:
                raise ValueError(f"{what} must be a positive integer, got {getattr(self, what)!r}")
        if self.headroom_bits < 0:
            raise ValueError(f"headroom_bits must be >= 0, got {self.headroom_bits}")


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


def resolve_model_dir(run_dir_or_model_dir: str | Path, stage: str = DEFAULT_STAGE) -> Path:
    """``build/<run>/<stage>`` for a run directory, or the folder itself if it holds model.h5."""
    path = Path(run_dir_or_model_dir)
    if (path / "model.h5").is_file():
        return path
    if (path / stage / "model.h5").is_file():
        return path / stage
    raise FileNotFoundError(
        f"no model.h5 in {path} or {path / stage}: pass a model folder (model.h5 + config.json) or a run "
        f"directory whose stage '{stage}' has been trained (python -m vitcod finetune ...)")


def load_source(run_dir_or_model_dir, stage: str = DEFAULT_STAGE, masks=None) -> Source:
    """Load model + ViTConfig and locate the mask artifact (``masks=False`` ignores it)."""
    from ..model.storage import load_model

    model_dir = resolve_model_dir(run_dir_or_model_dir, stage)
    model, config = load_model(model_dir)
    if masks is None:
        candidate = model_dir / MASKS_FILE
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
    if io_type == "io_stream":
        raise UnsupportedConfigurationError(
            "io_type 'io_stream' is not supported: hls4ml 1.3.0 has no stream implementation of "
            "LayerNormalization (its C++ does not compile) and the ViTCoD engines are io_parallel; use io_parallel")
    if io_type != "io_parallel":
        raise UnsupportedConfigurationError(f"io_type {io_type!r}: expected 'io_parallel'")
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
# Profiling
# =============================================================================================


@dataclass
class ActivationRange:
    """Range of one Keras layer's output over the profiling set (and LayerNorm input statistics)."""

    name: str
    kind: str
    min: float
    max: float
    # LayerNormalization layers: statistics of the layer's INPUT, per token.
    var_min: float | None = None
    var_p1: float | None = None
    var_max: float | None = None
    sum_abs_max: float | None = None

    @property
    def abs_max(self) -> float:
        return max(abs(self.min), abs(self.max))


def _inbound(layer) -> list[str]:
    node = layer.inbound_nodes[0]
    layers = node.inbound_layers
    if not isinstance(layers, (list, tuple)):
        layers = [layers]
    return [l.name for l in layers]


def profile_activations(model, x: np.ndarray, batch_size: int = 64) -> dict[str, ActivationRange]:
    """Run the Keras model on ``x`` and record every layer's output range.

    For every LayerNormalization the per-token variance (min, 1st percentile, max) and the largest
    |sum| over the normalized axis of its input are recorded too (the LN table and accumulator
    depend on them).
    """
    import tensorflow as tf

    layers = list(model.layers)
    sub = tf.keras.Model(model.inputs, [layer.output for layer in layers])
    lo = {l.name: math.inf for l in layers}
    hi = {l.name: -math.inf for l in layers}
    norms = [l for l in layers if isinstance(l, tf.keras.layers.LayerNormalization)]
    norm_input = {l.name: _inbound(l)[0] for l in norms}
    variances = {l.name: [] for l in norms}
    sums = {l.name: 0.0 for l in norms}
    index = {l.name: i for i, l in enumerate(layers)}
    for start in range(0, len(x), batch_size):
        outs = sub(x[start:start + batch_size], training=False)
        outs = [np.asarray(o) for o in outs]
        for layer, out in zip(layers, outs):
            lo[layer.name] = min(lo[layer.name], float(out.min()))
            hi[layer.name] = max(hi[layer.name], float(out.max()))
        for layer in norms:
            inp = outs[index[norm_input[layer.name]]].astype(np.float64)
            variances[layer.name].append(inp.var(axis=-1).ravel())
            sums[layer.name] = max(sums[layer.name], float(np.abs(inp.sum(axis=-1)).max()))
    result = {}
    for layer in layers:
        r = ActivationRange(layer.name, type(layer).__name__, lo[layer.name], hi[layer.name])
        if layer.name in variances:
            v = np.concatenate(variances[layer.name])
            r.var_min, r.var_p1, r.var_max = float(v.min()), float(np.percentile(v, 1)), float(v.max())
            r.sum_abs_max = sums[layer.name]
        result[layer.name] = r
    return result


# =============================================================================================
# Precision derivation and checks
# =============================================================================================


def integer_bits_needed(lo: float, hi: float, frac: int, signed: bool = True) -> int:
    """Fewest integer bits (sign included) so that ``ap_[u]fixed<I+frac, I>`` holds [lo, hi]."""
    if not signed and lo < 0:
        raise ValueError("an unsigned type cannot hold negative values")
    lsb = 2.0 ** -frac
    i = 1 - frac if signed else -frac
    while True:
        top = 2.0 ** (i - 1) if signed else 2.0 ** i
        if (not signed or lo >= -top) and hi <= top - lsb:
            return i
        i += 1


def _holds(t: FixedType, lo: float, hi: float) -> bool:
    return float(t.min_value) <= lo and hi <= float(t.max_value)


def headroom_bits(t: FixedType, lo: float, hi: float) -> int:
    """Integer bits ``t`` has beyond what [lo, hi] needs (negative: it overflows)."""
    if not t.signed and lo < 0:
        return -99
    return t.integer - integer_bits_needed(lo, hi, t.frac, t.signed)


def activation_type(r: ActivationRange, policy: PrecisionPolicy) -> FixedType:
    """``ap_fixed<I+F, I>``: F = policy.frac_bits, I = integer bits of the range + headroom (>= 1)."""
    frac = policy.frac_bits
    i = max(1, integer_bits_needed(r.min, r.max, frac) + policy.headroom_bits)
    return FixedType(i + frac, i, True, policy.rounding, policy.saturation)


def logits_type(r: ActivationRange, policy: PrecisionPolicy) -> FixedType:
    """Softmax input: fixed total width ``policy.logits_width``, integer bits for the range + headroom."""
    width = policy.logits_width
    for i in range(2, width):
        t = FixedType(width, i, True, policy.rounding, policy.saturation)
        if headroom_bits(t, r.min, r.max) >= policy.headroom_bits:
            return t
    raise PrecisionOverflowError(f"logits range [{r.min}, {r.max}] does not fit {width} bits", [])


def exact_accumulator(x: FixedType, weights: np.ndarray, w: FixedType, bias: np.ndarray | None,
                      b: FixedType | None) -> FixedType:
    """Accumulator that holds sum_i x_i*w_ij + b_j exactly for every x of type ``x``.

    ``weights`` is (fan_in, outputs) (already quantized), ``bias`` (outputs,).
    """
    frac = x.frac + w.frac
    if b is not None:
        frac = max(frac, b.frac)
    x_abs = max(abs(float(x.min_value)), abs(float(x.max_value)))
    bound = np.abs(weights).sum(axis=0) * x_abs
    if bias is not None:
        bound = bound + np.abs(bias)
    worst = float(bound.max()) if bound.size else 0.0
    i = integer_bits_needed(-worst, worst, frac)
    return FixedType(i + frac, i, True)


def _quantized_kernel(layer) -> tuple[np.ndarray, np.ndarray | None]:
    quantizers = layer.get_quantizers() if hasattr(layer, "get_quantizers") else [None, None]
    kernel = np.asarray(layer.kernel)
    if quantizers and quantizers[0] is not None:
        kernel = np.asarray(quantizers[0](layer.kernel))
    bias = None
    if getattr(layer, "use_bias", False) and layer.bias is not None:
        bias = np.asarray(layer.bias)
        if len(quantizers) > 1 and quantizers[1] is not None:
            bias = np.asarray(quantizers[1](layer.bias))
    return kernel.reshape(-1, kernel.shape[-1]), bias


def _hls_type(spec: str, backend) -> FixedType:
    from .extension import cpp_type

    return parse_type(cpp_type(backend.convert_precision_string(spec)))


@dataclass
class PrecisionPlan:
    """The hls4ml config derived from the profile, the per-layer report, and the layers widened."""

    hls_config: dict
    report: list[dict]
    widened: list[str] = field(default_factory=list)

    def rows_for(self, layer: str) -> list[dict]:
        return [row for row in self.report if row["layer"] == layer]


def build_precision_config(model, profile: Mapping[str, ActivationRange], backend: str = "Vitis",
                           policy: PrecisionPolicy = PrecisionPolicy(),
                           layer_overrides: Mapping[str, Mapping] | None = None) -> PrecisionPlan:
    """Derive every layer's precision from ``profile``, apply ``layer_overrides``, check all of it.

    ``layer_overrides`` maps a layer name to hls4ml layer-config entries, e.g.
    ``{'block0_q': {'Precision': {'result': 'ap_fixed<8,1>'}}, 'block0_attention': {'DenseUnroll': 2}}``;
    they are applied on top of the derived config (and checked like it).

    Raises:
        PrecisionOverflowError: a type cannot hold the profiled range (``policy.on_overflow='error'``).
    """
    import hls4ml
    import tensorflow as tf

    from .extension import register

    register()
    overrides = {k: dict(v) for k, v in (layer_overrides or {}).items()}
    unknown = sorted(set(overrides) - {l.name for l in model.layers})
    if unknown:
        raise ConversionError(f"layer_overrides name unknown layer(s) {unknown}")
    be = hls4ml.backends.get_backend(backend)
    hc = hls4ml.utils.config_from_keras_model(model, granularity="name", backend=backend)
    hc["Model"]["Strategy"] = "Latency"
    hc["Model"]["PipelineStyle"] = "dataflow"
    names = hc["LayerName"]
    types: dict[str, FixedType] = {}
    report: list[dict] = []
    widened: list[str] = []
    overflows: list[dict] = []

    def override_precision(name: str, key: str) -> FixedType | None:
        spec = overrides.get(name, {}).get("Precision", {})
        spec = spec if isinstance(spec, Mapping) else {"result": spec}
        return _hls_type(spec[key], be) if key in spec else None

    def settle(name: str, kind: str, t: FixedType, lo: float, hi: float, what: str = "result") -> FixedType:
        """Check t against [lo, hi]; widen or record an overflow; add a report row."""
        room = headroom_bits(t, lo, hi)
        row = {"layer": name, "kind": kind, "what": what, "min": lo, "max": hi, "type": t.cpp(),
               "headroom_bits": room, "ok": room >= 0}
        if room < 0 and policy.on_overflow == "widen" and not (not t.signed and lo < 0):
            wide = FixedType(t.width - room, t.integer - room, t.signed, t.rounding, t.saturation)
            log.warning("%s %s: %s cannot hold [%g, %g]; widened to %s", name, what, t.cpp(), lo, hi, wide.cpp())
            row.update(type=wide.cpp(), headroom_bits=0, ok=True, widened_from=t.cpp())
            widened.append(f"{name}.{what}")
            t = wide
        if not row["ok"]:
            overflows.append(row)
        report.append(row)
        return t

    def set_result(name: str, t: FixedType) -> None:
        names[name].setdefault("Precision", {})
        if not isinstance(names[name]["Precision"], dict):
            names[name]["Precision"] = {}
        names[name]["Precision"]["result"] = t.cpp()
        linear = names.get(f"{name}_linear")
        if linear is not None:  # hls4ml splits a linear activation off Conv/Dense and removes it again
            linear.setdefault("Precision", {})["result"] = t.cpp()
        types[name] = t

    softmax_inputs = {_inbound(l)[0] for l in model.layers
                      if type(l).__name__ == "Activation" and l.get_config().get("activation") == "softmax"}
    for layer in model.layers:
        name, kind = layer.name, type(layer).__name__
        r = profile[name]
        derived_result = None
        if kind in ("Reshape", "Flatten", "Cropping1D"):
            derived_result = types[_inbound(layer)[0]]
        elif kind == "QActivation":
            derived_result = _hls_type(names[name]["Precision"]["result"], be)
        elif kind == "Activation":
            if layer.get_config()["activation"] != "softmax":
                raise UnsupportedConfigurationError(f"{name}: only the softmax Activation is supported")
            derived_result = parse_type(policy.softmax_result)
        elif name in softmax_inputs:
            derived_result = logits_type(r, policy)
        else:
            derived_result = activation_type(r, policy)
        result = override_precision(name, "result") or derived_result
        result = settle(name, kind, result, r.min, r.max)
        set_result(name, result)
        prec = names[name]["Precision"]

        if kind in ("QConv2D", "QConv1D", "QDense"):
            kernel, bias = _quantized_kernel(layer)
            w = _hls_type(prec["weight"], be)
            b = _hls_type(prec["bias"], be) if "bias" in prec else None
            x = types[_inbound(layer)[0]]
            accum = override_precision(name, "accum") or exact_accumulator(x, kernel, w, bias, b)
            prec["accum"] = accum.cpp()
            exact = exact_accumulator(x, kernel, w, bias, b)
            room = accum.integer - exact.integer
            row = {"layer": name, "kind": kind, "what": "accum", "min": None, "max": None, "type": accum.cpp(),
                   "headroom_bits": room, "ok": room >= 0 and accum.frac >= exact.frac,
                   "note": f"exact accumulator would be {exact.cpp()} (worst case over the input type)"}
            if not row["ok"]:
                # A narrower accumulator is only acceptable if the profiled outputs still fit.
                row["ok"] = _holds(accum, r.min, r.max)
                if not row["ok"]:
                    overflows.append(row)
            report.append(row)
        elif kind == "Activation":
            _softmax_precision(int(layer.output_shape[-1]), policy, names[name])
        elif isinstance(layer, tf.keras.layers.LayerNormalization):
            _layernorm_precision(layer, name, r, types[_inbound(layer)[0]], policy, names[name], overrides.get(name, {}),
                                 be, report, overflows, widened)
        for key, value in overrides.get(name, {}).items():
            if key == "Precision" and isinstance(value, Mapping):
                for pkey, pvalue in value.items():
                    if pkey not in ("result", "accum"):
                        prec[pkey] = pvalue
            elif key not in ("Precision",):
                names[name][key] = value

    if overflows:
        lines = [f"  {row['layer']} ({row['kind']}) {row['what']}: {row['type']} cannot hold "
                 + (f"[{row['min']:.6g}, {row['max']:.6g}]" if row["min"] is not None else row.get("note", ""))
                 + f" (headroom {row['headroom_bits']} bits)" for row in overflows]
        raise PrecisionOverflowError(
            "configured precisions overflow on the profiling set (nothing was written):\n" + "\n".join(lines)
            + "\nwiden these types, or use PrecisionPolicy(on_overflow='widen')", overflows)
    return PrecisionPlan(hls_config=hc, report=report, widened=widened)


def _softmax_precision(classes: int, policy: PrecisionPolicy, cfg: dict) -> None:
    """hls4ml's stable softmax: exp and 1/sum tables indexed by the TOP bits of their input types.

    exp values and 1/sum lie in (0, 1]; the sum of exp lies in [1, classes] (the maximum reads
    exp(0) = 1), so its type gets exactly the integer bits of ``classes`` and the table index (its top
    log2(size) bits) resolves the sum in steps of 2^-(log2(size) - I).
    """
    f = policy.softmax_table_frac_bits
    i = max(1, math.ceil(math.log2(classes + 1)))
    unit = f"ap_ufixed<{f + 1},1,AP_RND,AP_SAT>"
    types = {"exp_table": unit, "inv_table": unit, "inv_inp": f"ap_ufixed<{f + i},{i},AP_RND,AP_SAT>",
             "accum": f"ap_ufixed<{f + i},{i},AP_RND,AP_SAT>"}
    for key, spec in types.items():
        cfg["Precision"][key] = spec
        if key != "accum":  # accum is read from Precision; the table types only from direct *_t keys
            cfg[f"{key}_t"] = spec
    cfg["TableSize"] = policy.softmax_table_size


def _layernorm_precision(layer, name, r: ActivationRange, x: FixedType, policy: PrecisionPolicy, cfg: dict,
                         override: Mapping, be, report: list, overflows: list, widened: list) -> None:
    """LayerNorm: gamma/beta types, accumulator, 1/sqrt table type, range and size."""
    prec = cfg["Precision"]
    dim = int(layer.input_shape[-1])
    eps = float(layer.epsilon)
    gamma, beta = np.asarray(layer.gamma, dtype=np.float64), np.asarray(layer.beta, dtype=np.float64)
    for key, values in (("scale", gamma), ("bias", beta)):
        m = float(np.abs(values).max()) if values.size else 0.0
        i = max(1, integer_bits_needed(-m, m, policy.norm_param_width - 1))
        prec[key] = FixedType(policy.norm_param_width, i, True, policy.rounding, policy.saturation).cpp()

    # Table range 2^-p covers the largest variance seen times the margin.
    var_hi = max(r.var_max * policy.norm_range_margin, 2.0 ** -30)
    p = math.floor(-math.log2(var_hi))
    if "TableRangePower2" in override:
        p = int(override["TableRangePower2"])
    table_range = 2.0 ** -p
    # Table size: step <= 2 * error * (1st-percentile variance), as a power of two in [min, max].
    v_low = max(r.var_p1, eps)
    size = 2 ** math.ceil(math.log2(max(1.0, table_range / (2 * policy.norm_table_error * v_low))))
    size = int(min(max(size, policy.norm_table_min_size), policy.norm_table_max_size))
    if "TableSize" in override:
        size = int(override["TableSize"])
    step = table_range / size
    # Table type: entries 1/sqrt(eps + i*step); integer bits for the smallest variance seen / 2.
    top = 1.0 / math.sqrt(max(r.var_min / 2, eps))
    ti = max(1, math.ceil(math.log2(top + 1)))
    table = FixedType(ti + policy.norm_table_frac_bits, ti, False, policy.rounding, policy.saturation)
    if "table_t" in override:
        table = _hls_type(override["table_t"], be)
    # Accumulator: sum over dim of the input type's worst case, dim * variance (with margin), all
    # with norm_accum_frac_bits fraction bits.
    x_abs = max(abs(float(x.min_value)), abs(float(x.max_value)))
    acc_hi = max(dim * x_abs, dim * var_hi * 4, 2 * x_abs)
    ai = integer_bits_needed(-acc_hi, acc_hi, policy.norm_accum_frac_bits)
    accum = FixedType(ai + policy.norm_accum_frac_bits, ai, True, policy.rounding, policy.saturation)
    spec = override.get("Precision", {})
    if isinstance(spec, Mapping) and "accum" in spec:
        accum = _hls_type(spec["accum"], be)

    prec["accum"] = accum.cpp()
    cfg["table_t"] = table.cpp()  # hls4ml 1.3.0 ignores Precision: table for LayerNorm
    prec.pop("table", None)
    cfg["TableRangePower2"] = p
    cfg["TableSize"] = size

    # Checks: variance inside the table, accumulator holds sum and dim * variance.
    v_ok = r.var_max <= table_range
    if not v_ok and policy.on_overflow == "widen":
        p = math.floor(-math.log2(r.var_max * policy.norm_range_margin))
        table_range = 2.0 ** -p
        cfg["TableRangePower2"] = p
        widened.append(f"{name}.table_range")
        v_ok = True
    rel_err = (table_range / size) / (2 * v_low)
    row = {"layer": name, "kind": "LayerNormalization", "what": "variance", "min": r.var_min, "max": r.var_max,
           "type": f"1/sqrt table over [0, 2^{-p}={table_range:g}), {size} entries of {table.cpp()}",
           "headroom_bits": math.floor(math.log2(table_range / r.var_max)) if r.var_max > 0 else 99,
           "ok": v_ok, "var_p1": r.var_p1, "table_range": table_range, "table_size": size,
           "table_step_rel_error_at_p1": rel_err}
    if not v_ok:
        row["note"] = "variances beyond the table range read the last entry (1/sqrt of the range)"
        overflows.append(row)
    report.append(row)
    sum2 = dim * r.var_max
    need = max(r.sum_abs_max or 0.0, sum2, r.abs_max)
    room = headroom_bits(accum, -need, need)
    row = {"layer": name, "kind": "LayerNormalization", "what": "accum", "min": -need, "max": need,
           "type": accum.cpp(), "headroom_bits": room, "ok": room >= 0,
           "note": "holds the token sum and dim x variance"}
    if room < 0:
        overflows.append(row)
    report.append(row)


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

    def precision_report(self) -> list[dict]:
        return self.plan.report


def convert(run_dir_or_model_dir, out_dir, backend: str = "Vitis", io_type: str = "io_parallel",
            part: str = "xc7z020clg400-1", clock: float = 10, masks=None, *, stage: str = DEFAULT_STAGE,
            data=None, profile_samples: int | None = None, policy: PrecisionPolicy = PrecisionPolicy(),
            layer_overrides: Mapping[str, Mapping] | None = None, trace: bool = False,
            project_name: str = "myproject"):
    """Convert a trained ViTCoD model into an hls4ml ModelGraph (not written, not compiled).

    Args:
        run_dir_or_model_dir: ``build/<run>`` (then ``stage`` is used) or a model folder.
        out_dir: the hls4ml project folder (only written by :func:`write_project` / compile).
        backend: 'Vitis' or 'Vivado'.
        io_type: only 'io_parallel' (io_stream is rejected, see :func:`validate_configuration`).
        part, clock: FPGA part and clock period (ns).
        masks: None = ``<model folder>/masks.npz`` if present; a path / MaskArtifact; False = none.
        stage: stage folder inside a run directory.
        data: a :class:`vitcod.model.data.Dataset` for profiling (default: the digits).
        profile_samples: profile on the first n training images (None = the whole training set).
        policy: precision policy (:class:`PrecisionPolicy`).
        layer_overrides: hls4ml layer-config entries per layer name, checked like the derived ones.
        trace: enable hls4ml tracing of every layer (for per-layer comparisons).

    Returns:
        The hls4ml ModelGraph; ``hls_model.vitcod`` is a :class:`Conversion` with the profile and the
        precision report.

    Raises:
        UnsupportedConfigurationError, InconsistentConfigurationError, PrecisionOverflowError,
        vitcod.hls.extension.ExtensionError - always before any file is written.
    """
    source = load_source(run_dir_or_model_dir, stage, masks)
    validate_configuration(source.model, source.config, source.masks_path, backend, io_type)
    if data is None:
        from ..model.data import load_dataset

        data = load_dataset("digits")
    x = data.x_train if profile_samples is None else data.x_train[:profile_samples]
    return convert_keras_model(source.model, out_dir, x, backend=backend, io_type=io_type, part=part, clock=clock,
                               masks_path=source.masks_path, policy=policy, layer_overrides=layer_overrides,
                               trace=trace, project_name=project_name, source=source)


def convert_keras_model(model, out_dir, x_profile: np.ndarray, *, backend: str = "Vitis",
                        io_type: str = "io_parallel", part: str = "xc7z020clg400-1", clock: float = 10,
                        masks_path: Path | None = None, policy: PrecisionPolicy = PrecisionPolicy(),
                        layer_overrides: Mapping[str, Mapping] | None = None, trace: bool = False,
                        project_name: str = "myproject", source: Source | None = None):
    """The conversion core for any Keras model made of supported layers (used by :func:`convert`).

    Profiles ``model`` on ``x_profile``, derives and checks the precisions, and converts with hls4ml;
    ``masks_path`` (a masks.npz) supplies the polarization of the i-th attention layer from its layer i.
    """
    import hls4ml

    from .extension import register

    validate_target(model, backend, io_type)
    profile = profile_activations(model, x_profile)
    plan = build_precision_config(model, profile, backend, policy, layer_overrides)
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
                                  profile_samples=len(x_profile))
    return hls_model


def write_project(hls_model) -> Path:
    """Write the HLS project (firmware/, build scripts, weights) to the model's output folder."""
    hls_model.write()
    return Path(hls_model.config.get_output_dir())


def compile_project(hls_model, trace: bool = True) -> float:
    """Write and compile the C-simulation library (``hls_model.compile()``); returns the seconds taken.

    ``trace=True`` builds hls4ml's trace hooks into the library (every layer), so :func:`trace_layers`
    can read per-layer outputs without compiling a second time; the hooks do nothing unless a trace
    is running, so ``predict`` is unaffected.
    """
    if trace:
        for layer in hls_model.get_layers():
            layer.set_attr("trace", True)
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
        layer.set_attr("trace", True)
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
                  compile_seconds: float | None = None) -> dict:
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
    if trace_samples:
        xt = x64[:trace_samples]
        t0 = time.perf_counter()
        _, traces = trace_layers(hls_model, xt)
        report["trace_samples"] = int(len(xt))
        report["trace_seconds"] = time.perf_counter() - t0
        report["per_layer_max_abs_error"] = per_layer_errors(keras_model, traces, xt)
        report["engines_bit_exact"] = check_engines(hls_model, traces)
    return report


def engine_summary(hls_model) -> dict[str, dict]:
    """Types, sizes and parallelism of every one of our engines in a converted model."""
    from .extension import engine_for

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


def _traced_input(hls_model, traces: Mapping[str, np.ndarray], name: str) -> np.ndarray:
    """Trace of the tensor ``name``; io_parallel reshapes are aliases, so look through them."""
    if name in traces:
        return np.asarray(traces[name])
    producer = next((n for n in hls_model.get_layers() if name in n.outputs), None)
    if producer is not None and producer.class_name in ("Reshape",) and producer.inputs:
        return _traced_input(hls_model, traces, producer.inputs[0])
    raise KeyError(f"no trace for tensor {name!r} (trace every layer: compile_project(trace=True))")


def _raws(values: np.ndarray, t: FixedType, what: str) -> np.ndarray:
    from .fixed_point import from_float, to_float

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
    from .extension import engine_for, fixed_type

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


def precision_table(report: list[dict]) -> str:
    """The precision report as a fixed-width text table (one row per check)."""
    lines = [f"{'layer':22s} {'what':9s} {'range seen':>26s}  {'headroom':>8s}  type"]
    for row in report:
        rng = "" if row["min"] is None else f"[{row['min']:.5g}, {row['max']:.5g}]"
        lines.append(f"{row['layer']:22s} {row['what']:9s} {rng:>26s}  {row['headroom_bits']:>8}  {row['type']}")
    return "\n".join(lines)
