"""The check that matters: the model's multiply / MAC counts equal the C-simulation counters.

The counters of ``hls/firmware/vitcod_common.h`` (dense, sparse, softmax, reciprocal, pv, encoder,
decoder, embed) of every engine the design instantiates, compiled with g++ and run
(:mod:`vitcod.hls.engine_csim`), must equal :attr:`ModelEstimate.counters` exactly. The model
computes its counts from the masks (``attention.py``); the engines count what their loops do.
``vitcod.bench`` and ``tests/hls/test_perf.py`` run this check.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from .. import engines
from .estimate import ModelEstimate
from .resources import COUNTER_NAMES

CounterEngine = tuple[str, Any, int, dict[str, int]]
"""``(label, engine, calls per image, expected counters per call)``."""


def counter_engines(estimate: ModelEstimate) -> list[CounterEngine]:
    """The engines whose C-simulation counters the model predicts, as ``(label, engine, calls,
    expected counters per call)``.

    Attention: the generated engine of every block (its real masks, lanes and types). Head-mix and
    embedding: one engine per role at the model's sizes and reuse factor, with zero weights (the
    counts do not depend on weight values), called once per instance in the design.
    """
    c, a = estimate.config, estimate.assumptions
    out: list[CounterEngine] = []
    for engine, layer in zip(estimate.attention_engines, estimate.attention):
        out.append((engine.name, engine, 1, dict(layer.counters)))
    roles = {}
    for e in estimate.engines:
        if e.kind in ("encoder", "decoder"):
            roles.setdefault(e.kind, []).append(e)
    for role, rows in roles.items():
        h_in, h_out = (c.num_heads, c.compressed_heads) if role == "encoder" else (c.compressed_heads, c.num_heads)
        cfg = engines.HeadMixEngineConfig(tokens=c.num_tokens, heads_in=h_in, heads_out=h_out, head_dim=c.head_dim,
                                          role=role, reuse_factor=a.reuse_factor)
        engine = engines.build_headmix_engine(cfg, np.zeros((h_in, h_out)), np.zeros(h_out), name=f"perf_{role}")
        out.append((f"{role} x{len(rows)}", engine, len(rows), dict(rows[0].counters)))
    embed = [e for e in estimate.engines if e.kind == "embed"]
    if embed:
        cfg = engines.EmbedEngineConfig(tokens=c.num_tokens, embed_dim=c.embed_dim, reuse_factor=a.reuse_factor)
        engine = engines.build_embed_engine(cfg, np.zeros(c.embed_dim), np.zeros((c.num_tokens, c.embed_dim)),
                                            name="perf_embed")
        out.append(("embed", engine, 1, dict(embed[0].counters)))
    return out


def check_counters_against_csim(estimate: ModelEstimate, jobs: int = 2) -> dict:
    """Compile (cached) and run every engine of :func:`counter_engines` with its C-simulation
    counters on, and compare with the model, counter by counter (exact equality).

    Returns:
        ``{"match": bool, "model": {...}, "csim": {...}, "engines": [per engine rows],
        "compile_seconds", "run_seconds"}``; ``model``/``csim`` are per image over the design.

    Raises:
        engine_csim.CompileError / FileNotFoundError: no g++ or no ap_types headers.
    """
    from .. import engine_csim as ch

    items = counter_engines(estimate)
    t0 = time.perf_counter()
    libs = ch.build_many([engine for _, engine, _, _ in items], jobs=jobs)
    compile_seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    model_total = dict.fromkeys(COUNTER_NAMES, 0)
    csim_total = dict.fromkeys(COUNTER_NAMES, 0)
    rows = []
    for (label, engine, calls, expected), lib in zip(items, libs):
        zeros = [np.zeros((1, size), dtype=np.int64) for size in lib.input_sizes]
        measured = dict.fromkeys(COUNTER_NAMES, 0)
        for _ in range(calls):
            result = lib.run(*zeros)
            for k, v in result.counters_per_call().items():
                measured[k] += v
        want = {k: expected.get(k, 0) * calls for k in COUNTER_NAMES}
        for k in COUNTER_NAMES:
            model_total[k] += want[k]
            csim_total[k] += measured[k]
        rows.append({"engine": label, "calls": calls, "model": {k: v for k, v in want.items() if v or measured[k]},
                     "csim": {k: v for k, v in measured.items() if v or want[k]}, "match": want == measured})
    return {"match": all(r["match"] for r in rows) and model_total == csim_total, "model": model_total,
            "csim": csim_total, "engines": rows, "compile_seconds": compile_seconds,
            "run_seconds": time.perf_counter() - t0,
            "note": "model counts from the masks vs counters of the compiled engines (C-simulation), exact"}
