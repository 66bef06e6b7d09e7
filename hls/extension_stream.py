"""io_stream code of our hls4ml extension layers (the io_parallel code is in hls/extension.py).

In an io_stream network every tensor is an ``hls::stream<nnet::array<T, C>>`` with one element per
token (C = channels). hls4ml 1.3.0 has stream kernels for the projections, Add, ReLU, the patch
embedding, Cropping1D (the CLS selection), Flatten and the head; for the rest the extension's
templates call our stream kernels, each the io_parallel kernel's per-token arithmetic around a
stream read and write (bit-exact with it by construction):

    LayerNormalization  vitcod::layernormalize_stream   firmware/vitcod_layernorm_stream.h
    VitcodEmbed         vitcod::cls_pos_embed_stream    firmware/vitcod_embed_stream.h
    VitcodHeadMix       vitcod::head_mix_stream         firmware/vitcod_headmix_stream.h
    VitcodAttention     vitcod::attention_stream        firmware/vitcod_attention_stream.h
                        (the streaming engine: K/V of the image in BRAM, dense and sparse engines,
                        softmax and P x V as a DATAFLOW region; hls/engines/attention_stream.py)

The attention call takes the four streams and the stream engine's generated config struct (its
sparse lane banks are ROMs behind the config's accessors, so no table is passed). A layer whose
``BufferStorage`` / ``ScoreStorage`` (the plan's storages) is bram, lutram or uram also includes
firmware/vitcod_attention_buffers_<storage>.h / vitcod_attention_scores_<storage>.h, which bind the
engine's token buffers / score sets to it.
"""

from __future__ import annotations

__all__ = ["BUFFER_STORAGES", "STREAM_SOURCES", "attention_stream_headers", "is_stream",
           "attention_stream_call", "headmix_stream_call", "embed_stream_call",
           "layernorm_stream_call"]

#: Storages the attention's per-image buffers can be bound to ("auto": the tool's choice, no header).
BUFFER_STORAGES = ("bram", "lutram", "uram")
#: What can be bound: attribute of the layer (hls4ml key) -> header family (token buffers, scores).
_BOUND = {"buffer_storage": ("BufferStorage", "vitcod_attention_buffers_{}.h"),
          "score_storage": ("ScoreStorage", "vitcod_attention_scores_{}.h")}
#: Stream kernels copied into every project (firmware/nnet_utils/).
STREAM_SOURCES = (("vitcod_layernorm_stream.h", "vitcod_embed_stream.h", "vitcod_headmix_stream.h",
                   "vitcod_attention_stream.h")
                  + tuple(h.format(s) for _, h in _BOUND.values() for s in BUFFER_STORAGES))


def attention_stream_headers(node) -> list[str]:
    """Headers of a streaming attention call: the engine, after the storage headers of its token
    buffers (BufferStorage) and score sets (ScoreStorage) where bound.

    Raises:
        ValueError: a storage other than auto, bram, lutram or uram, or attention layers of one design
            with different storages (the header's define binds every attention layer of the file).
    """
    headers = []
    for attr, (key, header) in _BOUND.items():
        storage = str(node.get_attr(attr, "auto") or "auto")
        others = {n.name: str(n.get_attr(attr, "auto") or "auto") for n in node.model.get_layers()
                  if n.class_name == node.class_name}
        if len(set(others.values())) > 1:
            raise ValueError(f"{key} must be the same for every attention layer of a design, got {others}")
        if storage != "auto" and storage not in BUFFER_STORAGES:
            raise ValueError(f"{node.name}: {key} must be auto or one of {list(BUFFER_STORAGES)}, got {storage!r}")
        if storage != "auto":
            headers.append("nnet_utils/" + header.format(storage))
    return headers + ["nnet_utils/vitcod_attention_stream.h"]


def is_stream(node) -> bool:
    """True if the node's model is converted with ``io_type='io_stream'``."""
    return node.model.config.get_config_value("IOType") == "io_stream"


def _type(node, name: str | None = None) -> str:
    var = node.get_input_variable(name) if name is not None else node.get_output_variable()
    return var.type.name


def attention_stream_call(node, engine) -> str:
    q, k, v = node.inputs
    out = node.get_output_variable()
    return (f"vitcod::attention_stream<{_type(node, q)}, {_type(node, k)}, {_type(node, v)}, {out.type.name}, "
            f"{engine.config_name}>({node.get_input_variable(q).name}, {node.get_input_variable(k).name}, "
            f"{node.get_input_variable(v).name}, {out.name});")


def headmix_stream_call(node, engine) -> str:
    return (f"vitcod::head_mix_stream<{_type(node, node.inputs[0])}, {_type(node)}, {engine.config_name}>("
            f"{node.get_input_variable().name}, {node.get_output_variable().name}, "
            f"{node.get_weights('weight').name}, {node.get_weights('bias').name});")


def embed_stream_call(node, engine) -> str:
    return (f"vitcod::cls_pos_embed_stream<{_type(node, node.inputs[0])}, {_type(node)}, {engine.config_name}>("
            f"{node.get_input_variable().name}, {node.get_output_variable().name}, "
            f"{node.get_weights('cls').name}, {node.get_weights('pos').name});")


def layernorm_stream_call(node, params: dict) -> str:
    return (f"vitcod::layernormalize_stream<{params['input_t']}, {params['output_t']}, {params['config']}_invsqrt>("
            f"{params['input']}, {params['output']}, {node.get_weights('scale').name}, "
            f"{node.get_weights('bias').name}, {node.name}_invsqrt::table);")
