"""The engines of our hls4ml IR nodes: the one object per layer that both the generated C++ and the
golden model (:mod:`vitcod.hls.golden`) are built from, so the two cannot drift apart.

An attention node's polarization (global tokens, keep bits, CSR) comes from the ``masks.npz``
artifact named in its hls4ml config (``MaskArtifact`` + ``MaskLayer``) or, without one, from the
fixed mask stored in the Keras layer, polarized with :func:`vitcod.model.polarize.polarize_head`.
The IR layers and templates that call these live in :mod:`vitcod.hls.extension`.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from ..model.polarize import HeadPolarization, polarize_head
from . import engines
from .extension_types import ExtensionError, cpp_type, fixed_type

__all__ = ["DEFAULT_GLOBAL_THRESHOLD", "attention_engine", "attention_polarizations", "embed_engine", "engine_for",
           "headmix_engine", "invsqrt_table"]

#: Global-token threshold used when polarizing a mask taken from the Keras layer (no artifact).
DEFAULT_GLOBAL_THRESHOLD = 0.5


def _layer_precisions(node) -> dict[str, str]:
    """Explicit ``Precision`` entries of a node's hls4ml layer config, as C++ spellings."""
    cfg = node.model.config.get_layer_config(node).get("Precision", {})
    if not isinstance(cfg, dict):
        return {}
    out = {}
    for key, value in cfg.items():
        if key == "result" or not isinstance(value, str):
            continue
        precision = node.model.config.backend.convert_precision_string(value)
        out[key] = cpp_type(precision)
    return out


@lru_cache(maxsize=64)
def _artifact(path: str, mtime: float):
    from ..model.mask_artifact import load_mask_artifact

    return load_mask_artifact(path)


def attention_polarizations(node) -> list[HeadPolarization]:
    """The polarization of every head of an attention node: from ``MaskArtifact`` or the Keras mask."""
    n, h = node.get_attr("n_tokens"), node.get_attr("n_heads")
    path = node.get_attr("mask_artifact", "")
    if path:
        layer = node.get_attr("mask_layer", -1)
        art = _artifact(str(Path(path).resolve()), Path(path).stat().st_mtime)
        if not 0 <= layer < art.num_layers:
            raise ExtensionError(f"{node.name}: MaskLayer={layer} is not a layer of {path} "
                                 f"({art.num_layers} layers)")
        if (art.num_heads, art.num_tokens) != (h, n):
            raise ExtensionError(f"{node.name}: mask artifact {path} has {art.num_heads} heads x "
                                 f"{art.num_tokens} tokens, the layer has {h} heads x {n} tokens")
        keras_mask = node.get_attr("keras_mask")
        if keras_mask is not None and not np.array_equal(keras_mask, art.mask[layer]):
            raise ExtensionError(f"{node.name}: the mask in the Keras layer differs from layer {layer} of {path}; "
                                 "the model was not fine-tuned with this artifact")
        return art.heads(layer)
    mask = node.get_attr("keras_mask")
    if mask is None:
        mask = np.ones((h, n, n), dtype=bool)  # dense attention: every key is a global token
    threshold = node.get_attr("global_threshold", DEFAULT_GLOBAL_THRESHOLD)
    return [polarize_head(mask[i], threshold) for i in range(h)]


def attention_engine(node) -> engines.AttentionEngine:
    """Build (and validate) the :class:`~vitcod.hls.engines.AttentionEngine` of an attention node."""
    n, h, d = node.get_attr("n_tokens"), node.get_attr("n_heads"), node.get_attr("head_dim")
    q, k, v = (cpp_type(node.get_input_variable(name).type.precision) for name in node.inputs)
    extra = _layer_precisions(node)
    kwargs = {f"{key}_type": extra[key] for key in ("score", "exp", "sum", "inv", "prob", "accum") if key in extra}
    dense_unroll = node.get_attr("dense_unroll", 0) or None
    sparse_lanes = node.get_attr("sparse_lanes", 0) or None
    try:
        cfg = engines.AttentionEngineConfig(
            tokens=n, heads=h, head_dim=d, q_type=q, k_type=k, v_type=v,
            result_type=cpp_type(node.get_output_variable().type.precision),
            exp_table_size=int(node.get_attr("exp_table_size", 1024)),
            lane_budget=int(node.get_attr("lane_budget", 4)),
            dense_unroll=dense_unroll, sparse_lanes=sparse_lanes, **kwargs,
            softmax_lanes=int(node.get_attr("softmax_lanes", 1)), pv_lanes=int(node.get_attr("pv_lanes", 1)))
        return engines.build_attention_engine(cfg, attention_polarizations(node), name=node.name)
    except ValueError as err:
        if isinstance(err, ExtensionError):
            raise
        raise ExtensionError(f"{node.name}: {err}") from None


def _token_kernel_settings(node) -> dict:
    """What every per-token kernel of ours (head mix, embedding) takes from its node: input and output
    types, ReuseFactor, the accumulator type when the config names one."""
    return {"data_type": cpp_type(node.get_input_variable().type.precision),
            "result_type": cpp_type(node.get_output_variable().type.precision),
            "reuse_factor": int(node.get_attr("reuse_factor", 1)), "accum_type": _layer_precisions(node).get("accum")}


def headmix_engine(node) -> engines.HeadMixEngine:
    """Build the :class:`~vitcod.hls.engines.HeadMixEngine` of an encoder/decoder node."""
    w, b = node.get_weights("weight"), node.get_weights("bias")
    try:
        cfg = engines.HeadMixEngineConfig(
            tokens=node.get_attr("n_tokens"), heads_in=node.get_attr("heads_in"),
            heads_out=node.get_attr("heads_out"), head_dim=node.get_attr("head_dim"), role=node.get_attr("role"),
            weight_type=cpp_type(w.type.precision), bias_type=cpp_type(b.type.precision), **_token_kernel_settings(node))
        return engines.build_headmix_engine(cfg, w.data, b.data, name=node.name)
    except ValueError as err:
        raise ExtensionError(f"{node.name}: {err}") from None


def embed_engine(node) -> engines.EmbedEngine:
    """Build the :class:`~vitcod.hls.engines.EmbedEngine` of a CLS/position embedding node."""
    c, p = node.get_weights("cls"), node.get_weights("pos")
    try:
        cfg = engines.EmbedEngineConfig(
            tokens=node.get_attr("n_tokens"), embed_dim=node.get_attr("embed_dim"),
            cls_type=cpp_type(c.type.precision), pos_type=cpp_type(p.type.precision), **_token_kernel_settings(node))
        return engines.build_embed_engine(cfg, c.data, p.data, name=node.name)
    except ValueError as err:
        raise ExtensionError(f"{node.name}: {err}") from None


def invsqrt_table(node) -> engines.InvSqrtTable:
    """The 1/sqrt table of a LayerNormalization node, from its hls4ml layer config: ``InvSqrtTopExp``,
    ``InvSqrtOctaves``, ``InvSqrtMantissaBits`` (written by vitcod.hls.precision), else derived from
    hls4ml's own ``table_range_power2`` / ``table_size`` with the default error target."""
    cfg = node.model.config.get_layer_config(node)
    accum = fixed_type(node.get_attr("accum_t").precision)
    table_t = fixed_type(node.get_attr("table_t").precision)
    epsilon = 10.0 ** -int(node.get_attr("epsilon_power_of_10", 3))
    top = int(cfg.get("InvSqrtTopExp", -int(node.get_attr("table_range_power2", 0))))
    try:
        if "InvSqrtOctaves" in cfg:
            table = engines.InvSqrtTable(top_exp=top, octaves=int(cfg["InvSqrtOctaves"]),
                                         mantissa_bits=int(cfg["InvSqrtMantissaBits"]), epsilon=epsilon,
                                         table_type=table_t)
        else:
            table = engines.choose_invsqrt_table(2.0 ** top, epsilon, table_t, accum.frac, max_error=0.01,
                                                 max_size=int(node.get_attr("table_size", 1024)) + 1, margin=1.0,
                                                 top_exp=top)
        table.check_accumulator(accum)
    except ValueError as err:
        raise ExtensionError(f"{node.name}: {err}") from None
    return table


def engine_for(node):
    """The engine of any of our IR nodes (None for a standard hls4ml layer)."""
    kind = node.class_name
    if kind == "VitcodAttention":
        return attention_engine(node)
    if kind == "VitcodHeadMix":
        return headmix_engine(node)
    if kind == "VitcodEmbed":
        return embed_engine(node)
    return None
