"""Precision choice: every layer's fixed-point type, derived from the training-set profile and checked.

Where this fits in the flow::

    hls/convert.py  convert_keras_model()
      -> profile_activations()     hls/profiling.py: per-layer output ranges on the training images
      -> build_precision_config()  (this module) the hls4ml config with every layer's precision
                                   derived from the profile (results with headroom, exact accumulators,
                                   LayerNorm tables that cover the variances seen), then CHECKED: a configured type
                                   (e.g. a user override) that cannot hold the range seen raises
                                   PrecisionOverflowError, or is widened (``policy.on_overflow='widen'``)
      -> hls4ml.converters.convert_from_keras_model(hls_config=plan.hls_config)

Precision choices (``PrecisionPolicy``) and the hls4ml 1.3.0 pitfalls they avoid:

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
  hls4ml 1.3.0); the 1/sqrt table is octave-indexed (vitcod.hls.engines.layernorm, kernel in
  firmware/vitcod_layernorm.h): range 2^R >= the largest variance seen times a margin, mantissa bits
  for a relative step error <= ``norm_table_error``, octaves down to where epsilon dominates, at most
  ``norm_table_max_size`` entries (the demo's first LayerNorm: 1,025 entries instead of hls4ml's
  uniform 65,536, ~76 BRAM18K); wide ``accum`` with 22 fraction bits (variances of the first block
  are ~1e-3).
* our engines: result types from the profile; their internal types (score, exp, sums, P x V) are
  derived exact/sufficient by hls/engines.py.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Mapping

import numpy as np

from .errors import ConversionError, PrecisionOverflowError, UnsupportedConfigurationError
from .engines.layernorm import choose_invsqrt_table
from .fixed_point import FixedType, parse_type
from .profiling import ActivationRange, inbound_layer_names

log = logging.getLogger(__name__)


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
        norm_table_error: target relative error of a 1/sqrt table entry (half a bucket), for every
            variance the table resolves (octave indexing: the same relative step everywhere).
        norm_table_max_size: cap on the entries of one LayerNorm table (a ROM read once per token);
            above it the buckets get coarser first, then the octaves fewer.
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
    norm_table_max_size: int = 4096
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
    from .extension_types import cpp_type

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
                           layer_overrides: Mapping[str, Mapping] | None = None, *, io_type: str = "io_parallel",
                           reuse_plan: Mapping[str, int] | None = None) -> PrecisionPlan:
    """Derive every layer's precision from ``profile``, apply ``layer_overrides``, check all of it.

    ``layer_overrides`` maps a layer name to hls4ml layer-config entries, e.g.
    ``{'block0_q': {'Precision': {'result': 'ap_fixed<8,1>'}}, 'block0_attention': {'DenseUnroll': 2}}``;
    they are applied on top of the derived config (and checked like it).

    ``io_type='io_stream'`` adds the parallelism of the stream design (:func:`stream_parallelism`):
    Strategy Resource on every Conv/Dense layer and every layer's ReuseFactor from ``reuse_plan``
    (default :func:`vitcod.hls.plan.default_plan`). The precisions are the same for both io types, so
    the two designs compute the same arithmetic.

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

    softmax_inputs = {inbound_layer_names(l)[0] for l in model.layers
                      if type(l).__name__ == "Activation" and l.get_config().get("activation") == "softmax"}
    for layer in model.layers:
        name, kind = layer.name, type(layer).__name__
        r = profile[name]
        derived_result = None
        if kind in ("Reshape", "Flatten", "Cropping1D"):
            derived_result = types[inbound_layer_names(layer)[0]]
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
            x = types[inbound_layer_names(layer)[0]]
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
            _layernorm_precision(layer, name, r, types[inbound_layer_names(layer)[0]], policy, names[name],
                                 overrides.get(name, {}), be, report, overflows, widened)
        for key, value in overrides.get(name, {}).items():
            if key == "Precision" and isinstance(value, Mapping):
                for pkey, pvalue in value.items():
                    if pkey not in ("result", "accum"):
                        prec[pkey] = pvalue
            elif key not in ("Precision",):
                names[name][key] = value

    if io_type == "io_stream":
        stream_parallelism(model, names, reuse_plan, overrides)
    if overflows:
        lines = [f"  {row['layer']} ({row['kind']}) {row['what']}: {row['type']} cannot hold "
                 + (f"[{row['min']:.6g}, {row['max']:.6g}]" if row["min"] is not None else row.get("note", ""))
                 + f" (headroom {row['headroom_bits']} bits)" for row in overflows]
        raise PrecisionOverflowError(
            "configured precisions overflow on the profiling set (nothing was written):\n" + "\n".join(lines)
            + "\nwiden these types, or use PrecisionPolicy(on_overflow='widen')", overflows)
    return PrecisionPlan(hls_config=hc, report=report, widened=widened)


def stream_parallelism(model, names: dict, reuse_plan: Mapping[str, int] | None = None,
                       overrides: Mapping[str, Mapping] | None = None) -> None:
    """Strategy and ReuseFactor of every layer of the io_stream design, from ``reuse_plan``.

    Conv/Dense layers get hls4ml's Resource strategy (one dense kernel reused ``ReuseFactor`` times per
    pixel/token, the strategy hls4ml's stream convolutions are written for); every layer's
    ``ReuseFactor`` comes from the plan (missing layers: the default plan's value). A user override of
    ``ReuseFactor`` or ``Strategy`` (``layer_overrides``) has already been applied and wins.
    """
    from .plan import check_plan, default_plan, matrix_shape

    plan = default_plan(model)
    plan.update(reuse_plan or {})
    check_plan(model, plan)
    for layer in model.layers:
        cfg = names.get(layer.name)
        if cfg is None:
            continue
        user = (overrides or {}).get(layer.name, {})
        if "ReuseFactor" not in user:
            cfg["ReuseFactor"] = plan[layer.name]
        if matrix_shape(layer) is not None:
            if "Strategy" not in user:
                cfg["Strategy"] = "Resource"
            linear = names.get(f"{layer.name}_linear")
            if linear is not None:
                linear["ReuseFactor"] = cfg["ReuseFactor"]


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

    # Table range 2^R (hls4ml: 2^-TableRangePower2) covers the largest variance seen times the margin.
    var_hi = max(r.var_max * policy.norm_range_margin, 2.0 ** -30)
    p = math.floor(-math.log2(var_hi))
    if "TableRangePower2" in override:
        p = int(override["TableRangePower2"])
    table_range = 2.0 ** -p
    # Table type: entries 1/sqrt(eps + var); integer bits for the smallest variance seen / 2.
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

    # Checks: variance inside the table range.
    v_ok = r.var_max <= table_range
    if not v_ok and policy.on_overflow == "widen":
        p = math.floor(-math.log2(r.var_max * policy.norm_range_margin))
        table_range = 2.0 ** -p
        widened.append(f"{name}.table_range")
        v_ok = True
    # hls4ml's epsilon: 10^-epsilon_power_of_10 (what its parser derives from the Keras layer).
    eps_hls = 10.0 ** round(math.log10(eps))
    inv_sqrt = choose_invsqrt_table(table_range, eps_hls, table, accum.frac, max_error=policy.norm_table_error,
                                    max_size=int(override.get("TableSize", policy.norm_table_max_size)),
                                    margin=1.0, top_exp=-p)
    prec["accum"] = accum.cpp()
    cfg["table_t"] = table.cpp()  # hls4ml 1.3.0 ignores Precision: table for LayerNorm
    prec.pop("table", None)
    cfg["TableRangePower2"] = p
    cfg["TableSize"] = inv_sqrt.size
    cfg["InvSqrtTopExp"] = inv_sqrt.top_exp
    cfg["InvSqrtOctaves"] = inv_sqrt.octaves
    cfg["InvSqrtMantissaBits"] = inv_sqrt.mantissa_bits

    row = {"layer": name, "kind": "LayerNormalization", "what": "variance", "min": r.var_min, "max": r.var_max,
           "type": (f"1/sqrt table over [0, 2^{-p}={table_range:g}), {inv_sqrt.size} entries ({inv_sqrt.octaves} "
                    f"octaves x {1 << inv_sqrt.mantissa_bits}, + 1 below 2^{inv_sqrt.top_exp - inv_sqrt.octaves}) "
                    f"of {table.cpp()}"),
           "headroom_bits": math.floor(math.log2(table_range / r.var_max)) if r.var_max > 0 else 99,
           "ok": v_ok, "var_p1": r.var_p1, "table_range": table_range, "table_size": inv_sqrt.size,
           "table_octaves": inv_sqrt.octaves, "table_mantissa_bits": inv_sqrt.mantissa_bits,
           "table_rel_error": inv_sqrt.max_relative_error,
           "table_bits": inv_sqrt.size * table.width}
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


def precision_table(report: list[dict]) -> str:
    """The precision report as a fixed-width text table (one row per check)."""
    lines = [f"{'layer':22s} {'what':9s} {'range seen':>26s}  {'headroom':>8s}  type"]
    for row in report:
        rng = "" if row["min"] is None else f"[{row['min']:.5g}, {row['max']:.5g}]"
        lines.append(f"{row['layer']:22s} {row['what']:9s} {rng:>26s}  {row['headroom_bits']:>8}  {row['type']}")
    return "\n".join(lines)
