"""Per-layer configs of the ViTCoD HLS engines, their validation, and the C++ code generator.

Where this fits in the flow::

    model/ (masks -> vitcod.model.polarize.HeadPolarization per head)
      -> hls/engines/     config + layer data --build_*_engine--> engine
                          (validated, types resolved, tables quantized) --.header()--> C++ config
      -> hls/firmware/    the engine templates (vitcod_attention.h, vitcod_headmix.h,
                          vitcod_embed.h); the generated config plugs in
      -> hls/golden.py    the same engine object drives the bit-exact numpy model
      -> hls/engine_csim.py  compiles header + engine with g++ and runs it on raw integers

One module per engine, on a shared base:

* :mod:`.base`: :data:`FIRMWARE_DIR`, default types, the generated header
  (:class:`GeneratedEngine`) and the exact type/argument checks every config uses;
* :mod:`.attention_config` / :mod:`.attention`: sparse attention (dense + sparse score engines,
  softmax, P x V): :class:`AttentionEngineConfig` resolves the types, :func:`build_attention_engine`
  adds the head polarizations, splits the lanes and returns an :class:`AttentionEngine`;
* :mod:`.headmix`: the Q/K encoder/decoder across heads (:class:`HeadMixEngine`);
* :mod:`.embed`: the CLS token + position embedding (:class:`EmbedEngine`);
* :mod:`.layernorm`: the octave-indexed 1/sqrt table of hls4ml's LayerNorm (:class:`InvSqrtTable`);
* :mod:`.attention_tables`: the attention walk tables (slot table, lane-interleaved sparse table);
* :mod:`.attention_stream`: the same attention layer for the io_stream engine (:func:`stream_engine`).

Why we write our own engines: hls4ml 1.3.0 cannot convert attention at all (``MultiHeadAttention`` is
an unsupported layer) and has nothing that exploits a fixed sparse mask; the Q/K head-mix
auto-encoder and the CLS/position embedding have no hls4ml layer either. The generated code follows
hls4ml's conventions so the hls4ml integration (``vitcod.hls.extension``) can wrap it: a config
struct that inherits the engine's default struct (the ``*_config_template`` format strings, the
counterpart of hls4ml's ``backends/*/passes/*_templates.py``) and a templated function call
(``*_function_template``).

Validation happens when an engine is built, before any code is written: inconsistent masks, a
head count that does not match, a score type that cannot hold the largest possible q.k dot product,
accumulators that would round or overflow, lanes beyond the work available - each raises
ValueError naming the field, what was expected and what came.
"""

from __future__ import annotations

from .attention import (
    AttentionEngine,
    attention_config_template,
    attention_function_template,
    build_attention_engine,
    check_polarization,
    split_lanes,
)
from .attention_config import AttentionEngineConfig, AttentionTypes
from .attention_stream import StreamAttentionEngine, attention_stream_function_template, stream_engine
from .base import (
    DEFAULT_DATA_TYPE,
    DEFAULT_RESULT_TYPE,
    DEFAULT_SCORE_MODES,
    DEFAULT_UNIT_TYPE,
    DEFAULT_WEIGHT_TYPE,
    FIRMWARE_DIR,
    GeneratedEngine,
)
from .embed import EmbedEngine, EmbedEngineConfig, build_embed_engine, embed_config_template, embed_function_template
from .layernorm import InvSqrtTable, choose_invsqrt_table
from .headmix import (
    HeadMixEngine,
    HeadMixEngineConfig,
    build_headmix_engine,
    headmix_config_template,
    headmix_function_template,
)

__all__ = [
    "FIRMWARE_DIR",
    "DEFAULT_DATA_TYPE",
    "DEFAULT_RESULT_TYPE",
    "DEFAULT_WEIGHT_TYPE",
    "DEFAULT_UNIT_TYPE",
    "DEFAULT_SCORE_MODES",
    "GeneratedEngine",
    # attention (dense + sparse engines, softmax, P x V)
    "AttentionTypes",
    "AttentionEngineConfig",
    "AttentionEngine",
    "build_attention_engine",
    "check_polarization",
    "split_lanes",
    "attention_config_template",
    "attention_function_template",
    # the same layer as an io_stream engine (vitcod_attention_stream.h)
    "StreamAttentionEngine",
    "stream_engine",
    "attention_stream_function_template",
    # Q/K encoder/decoder
    "HeadMixEngineConfig",
    "HeadMixEngine",
    "build_headmix_engine",
    "headmix_config_template",
    "headmix_function_template",
    # LayerNorm 1/sqrt table
    "InvSqrtTable",
    "choose_invsqrt_table",
    # CLS + position embedding
    "EmbedEngineConfig",
    "EmbedEngine",
    "build_embed_engine",
    "embed_config_template",
    "embed_function_template",
]
