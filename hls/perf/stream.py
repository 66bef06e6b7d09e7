"""The whole io_stream design of a run stage, stage by stage (every figure MODELLED).

Where this fits in the flow::

    build/<run>/<stage>/{config.json, masks.npz}
      -> design_slots()        every DATAFLOW process of the io_stream network in order, each a Slot
                               that builds its Stage for given knobs (ReuseFactor, attention lanes)
      -> stream_estimate()     the Stages for a plan's knobs + the FIFOs between them
                               (depths from vitcod.hls.perf.dataflow.safe_depths) -> StreamEstimate
      -> vitcod.hls.plan       chooses the knobs per board; vitcod.hls.perf fit, vitcod.bench

Whole design (a DATAFLOW pipeline from the top's reader to its writer, images overlap):

* interval = the slowest stage's interval (cycles per image; FIFO depths from ``safe_depths`` never
  stall a stage, :mod:`vitcod.hls.perf.dataflow` shows it by simulation);
* latency = one image alone along the path reader -> ... -> writer: each token-wise stage passes its
  first element on after its depth and its last one after ``(elements - 1) * token_ii`` more (or its
  depth after its last input, whichever is later); the attention is a barrier (first output after
  its last input and its compute); the Q/K/V branches join at the attention (the latest one counts);
* resources = every stage + every FIFO (a wide or deep FIFO is a memory, :func:`fifo_resources`).

The stage models and their assumptions: :mod:`vitcod.hls.perf.stream_layers`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace
from typing import Callable, Mapping, Sequence

from ...model.config import ViTConfig
from .. import engines
from . import dataflow
from .attention_stream import attention_stream_estimate
from .estimate import _as_layer_heads
from .resources import COUNTER_NAMES, LABEL, Assumptions, Resources, total
from .stream_layers import (Stage, attention_stage, embed_stream, fifo_resources, headmix_stream, hls4ml_matrix,
                            layernorm_stream, passthrough, softmax_stream, top_port)

#: Attention knobs the planner may set (the lanes fields the engine config has, see :func:`attention_knob_names`).
ATTENTION_KNOBS = ("dense_unroll", "sparse_lanes", "softmax_lanes", "pv_lanes")


def attention_knob_names() -> tuple[str, ...]:
    """The lane knobs :class:`vitcod.hls.engines.AttentionEngineConfig` has in this tree (softmax_lanes
    and pv_lanes arrive with the attention-lanes work; without them the planner leaves them out)."""
    have = {f.name for f in fields(engines.AttentionEngineConfig)}
    return tuple(k for k in ATTENTION_KNOBS if k in have)


@dataclass
class Slot:
    """One process of the design with the knob(s) the planner can set; ``build(knobs)`` -> Stage."""

    name: str
    kind: str
    build: Callable[[Mapping], Stage]
    default: dict
    shape: tuple[int, int] | None = None  # (n_in, n_out) of an hls4ml matrix layer (legal RFs)
    engine: object = None  # the attention engine (masks) of an attention slot


@dataclass
class StreamEstimate:
    """The io_stream design with a set of knobs: stages, FIFOs, totals (all MODELLED)."""

    config: ViTConfig
    assumptions: Assumptions
    stages: list[Stage]
    fifos: dict[str, dict]
    path_latency: float
    autoencoder: bool
    knobs: dict = field(default_factory=dict)

    @property
    def interval(self) -> int:
        return max(s.interval for s in self.stages)

    @property
    def bottleneck(self) -> str:
        return max(self.stages, key=lambda s: s.interval).name

    @property
    def latency(self) -> int:
        return int(math.ceil(self.path_latency))

    @property
    def throughput(self) -> float:
        return self.assumptions.clock_mhz * 1e6 / self.interval

    @property
    def latency_us(self) -> float:
        return self.latency / self.assumptions.clock_mhz

    @property
    def fifo_resources(self) -> Resources:
        return total(Resources(**f["resources"]) for f in self.fifos.values())

    @property
    def resources(self) -> Resources:
        return total(s.resources for s in self.stages) + self.fifo_resources

    @property
    def multiplies(self) -> int:
        return sum(s.multiplies for s in self.stages)

    @property
    def counters(self) -> dict[str, int]:
        out = dict.fromkeys(COUNTER_NAMES, 0)
        for s in self.stages:
            for k, v in s.counters.items():
                out[k] += v
        return out

    @property
    def useful_multiplies(self) -> int:
        """Multiplies of one image (the model's, = the C-simulation counters' and hls4ml layers')."""
        return self.multiplies

    def dsp_efficiency(self) -> float | None:
        """Useful multiplies per image / (DSPs used x interval): 1.0 = every DSP busy every cycle."""
        dsp = self.resources.dsp
        return self.multiplies / (dsp * self.interval) if dsp else None

    def to_dict(self) -> dict:
        return {"label": LABEL, "io_type": "io_stream", "clock_mhz": self.assumptions.clock_mhz,
                "interval_cycles": self.interval, "latency_cycles": self.latency, "latency_us": self.latency_us,
                "images_per_s": self.throughput, "bottleneck": self.bottleneck, "multiplies": self.multiplies,
                "dsp_efficiency": self.dsp_efficiency(), "resources": self.resources.as_dict(),
                "fifo_resources": self.fifo_resources.as_dict(), "counters": self.counters,
                "stages": [s.to_dict() for s in self.stages], "fifos": self.fifos}

    def table(self) -> str:
        """Markdown: one row per stage, then the FIFOs and the totals."""
        lines = ["| stage (modelled) | knobs | interval | token II | multipliers | DSP | BRAM18K | LUT | FF |",
                 "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
        for s in self.stages:
            r = s.resources
            knobs = ", ".join(f"{k} {v}" for k, v in s.knobs.items())
            mark = " **(bottleneck)**" if s.name == self.bottleneck else ""
            lines.append(f"| {s.name}{mark} | {knobs} | {s.interval} | {s.token_ii:.3g} | {s.multipliers} | "
                         f"{r.dsp} | {r.bram_18k} | {r.lut} | {r.ff} |")
        f = self.fifo_resources
        lines.append(f"| FIFOs ({len(self.fifos)}) | | | | | {f.dsp} | {f.bram_18k} | {f.lut} | {f.ff} |")
        r = self.resources
        lines.append(f"| **total** | | {self.interval} | | {sum(s.multipliers for s in self.stages)} | {r.dsp} | "
                     f"{r.bram_18k} | {r.lut} | {r.ff} |")
        return "\n".join(lines)


# ---- the design's processes ------------------------------------------------------------------------
def matrix_layers(config: ViTConfig) -> dict[str, tuple[int, int]]:
    """(n_in, n_out) per position of every hls4ml Conv/Dense layer, by Keras layer name (model/vit.py)."""
    c = config
    out = {"patch_embed": (c.embed_kernel ** 2 * c.channels, c.embed_dim)}
    for b in range(c.depth):
        for x in ("q", "k", "v", "proj"):
            out[f"block{b}_{x}"] = (c.embed_dim, c.embed_dim)
        out[f"block{b}_mlp1"] = (c.embed_dim, c.mlp_dim)
        out[f"block{b}_mlp2"] = (c.mlp_dim, c.embed_dim)
    out["head"] = (c.embed_dim, c.num_classes)
    return out


def _rf(knobs: Mapping, default: int = 1) -> int:
    rf = int(knobs.get("reuse_factor", default))
    if rf < 1:
        raise ValueError(f"reuse_factor must be >= 1, got {rf}")
    return rf


def design_slots(config: ViTConfig, masks=None, a: Assumptions = Assumptions(), *, autoencoder: bool = True,
                 default_rf: Callable[[int, int], int] | None = None) -> list:
    """Every process of the io_stream network in path order: a :class:`Slot`, or for the Q/K/V fork a
    list of three chains of Slots (joined again at the attention).

    ``masks``: as :func:`vitcod.hls.perf.estimate.model_estimate` takes them (None = dense attention,
    every key global). ``default_rf(n_in, n_out)``: the ReuseFactor of a matrix layer without a knob.
    """
    c = config
    n, e, h, d, hc, m = c.num_tokens, c.embed_dim, c.num_heads, c.head_dim, c.compressed_heads, c.mlp_dim
    act = a.activation_bits
    w_bits = a.weight_bits if a.weight_bits is not None else c.weight_bits
    shapes = matrix_layers(c)
    rf0 = default_rf or (lambda n_in, n_out: 1)

    def fixed(stage: Stage) -> Slot:
        return Slot(stage.name, stage.kind, lambda knobs, s=stage: s, {})

    def matrix(name: str, kind: str, block, positions: int, **kw) -> Slot:
        n_in, n_out = shapes[name]

        def build(knobs, name=name):
            return hls4ml_matrix(name, kind, block, positions, n_in, n_out, _rf(knobs, rf0(n_in, n_out)), act,
                                 w_bits, a, **kw)
        return Slot(name, kind, build, {"reuse_factor": rf0(n_in, n_out)}, shape=(n_in, n_out))

    def ours(name: str, kind: str, make: Callable[[int], Stage]) -> Slot:
        return Slot(name, kind, lambda knobs: make(_rf(knobs)), {"reuse_factor": 1})

    slots: list = [fixed(top_port("reader", c.image_size ** 2 * c.channels, a))]
    grid, k = c.image_size // c.patch_size, c.embed_kernel
    pad = (k - c.patch_size) // 2 if k != c.patch_size else 0
    side = c.image_size + 2 * pad
    if pad:
        slots.append(fixed(passthrough("zero_pad", "zero_pad", None, side * side, c.channels * act, a)))
    slots.append(matrix("patch_embed", "patch_embed", None, grid * grid, pixels_in=side * side,
                        first_need=(k - 1) * side + k, line_buffer=(k, side, c.channels)))
    slots.append(fixed(passthrough("patch_tokens", "repack", None, grid * grid, e * act, a)))
    slots.append(ours("embed", "embed", lambda rf: embed_stream(n, e, rf, a)))
    layer_heads = _as_layer_heads(masks, c)
    for b, heads in enumerate(layer_heads):
        p = f"block{b}_"
        slots.append(fixed(passthrough(p + "clone0", "clone", b, n, e * act, a, copies=2)))
        slots.append(ours(p + "norm1", "layernorm", lambda rf, name=p + "norm1", b=b:
                          layernorm_stream(name, b, n, e, rf, a)))
        slots.append(fixed(passthrough(p + "clone1", "clone", b, n, e * act, a, copies=3)))
        chains = []
        for x in ("q", "k", "v"):
            chain = [matrix(p + x, "projection", b, n)]
            if autoencoder and x != "v":
                chain.append(ours(f"{p}{x}_encoder", "encoder", lambda rf, name=f"{p}{x}_encoder", b=b:
                                  headmix_stream(name, "encoder", b, n, h, hc, d, rf, a, w_bits)))
                chain.append(ours(f"{p}{x}_decoder", "decoder", lambda rf, name=f"{p}{x}_decoder", b=b:
                                  headmix_stream(name, "decoder", b, n, hc, h, d, rf, a, w_bits)))
            chains.append(chain)
        slots.append(chains)
        slots.append(attention_slot(p + "attention", b, heads, d, a))
        slots.append(matrix(p + "proj", "projection", b, n))
        slots.append(fixed(passthrough(p + "add1", "add", b, n, e * act, a)))
        slots.append(fixed(passthrough(p + "clone2", "clone", b, n, e * act, a, copies=2)))
        slots.append(ours(p + "norm2", "layernorm", lambda rf, name=p + "norm2", b=b:
                          layernorm_stream(name, b, n, e, rf, a)))
        slots.append(matrix(p + "mlp1", "mlp", b, n))
        slots.append(fixed(passthrough(p + "relu", "relu", b, n, m * c.activation_bits, a)))
        slots.append(matrix(p + "mlp2", "mlp", b, n))
        slots.append(fixed(passthrough(p + "add2", "add", b, n, e * act, a)))
    slots.append(ours("final_norm", "layernorm", lambda rf: layernorm_stream("final_norm", None, n, e, rf, a)))
    slots.append(fixed(passthrough("cls_select", "cls_select", None, n, e * act, a, tokens_out=1, first_only=True)))
    slots.append(matrix("head", "head", None, 1))
    slots.append(fixed(softmax_stream(c.num_classes, a)))
    slots.append(fixed(top_port("writer", c.num_classes, a)))
    return slots


def attention_slot(name: str, block: int, heads, head_dim: int, a: Assumptions) -> Slot:
    """The streaming attention of one block; knobs: the lanes of :func:`attention_knob_names`,
    ``buffer_storage`` (token buffers) and ``score_storage`` (score sets; default: as the buffers),
    each one of :data:`~.resources.STORAGES` and one for the whole design (the firmware binds each
    with one define)."""
    base = engines.build_attention_engine(
        engines.AttentionEngineConfig(tokens=heads[0].num_tokens, heads=len(heads), head_dim=head_dim,
                                      lane_budget=a.lane_budget, dense_unroll=a.dense_unroll,
                                      sparse_lanes=a.sparse_lanes, **dict(a.attention_types)), list(heads), name=name)
    allowed = attention_knob_names()
    built: dict[tuple, engines.AttentionEngine] = {}
    tables: dict[tuple, object] = {}

    def share_tables(engine):
        """Give ``engine`` the tables an earlier option already built: they depend on the masks and
        one lane count only (slot table; walk tables per softmax / P x V lanes; sparse table per
        sparse lanes), and building them is most of the planner's time. Seeds the engine's
        cached properties."""
        seeds = {"slot_table": ("slot",), "softmax_walk": ("walk", engine.softmax_lanes),
                 "pv_walk": ("walk", engine.pv_lanes), "sparse_table": ("sparse", engine.sparse_lanes)}
        for attr, key in seeds.items():
            if key in tables:
                vars(engine)[attr] = tables[key]
            else:
                tables[key] = getattr(engine, attr)
        return engine

    def build(knobs):
        knobs = dict(knobs)
        storage = str(knobs.pop("buffer_storage", "auto"))
        scores = str(knobs.pop("score_storage", storage))
        unknown = sorted(set(knobs) - set(allowed))
        if unknown:
            raise ValueError(f"{name}: attention knobs {unknown} are not fields of this tree's "
                             f"AttentionEngineConfig (it has {list(allowed)}) nor buffer_storage / score_storage")
        key = tuple(sorted((k, int(v)) for k, v in knobs.items()))
        if key not in built:  # the planner asks for each lane setting once per buffer storage
            built[key] = share_tables(engines.stream_engine(base if not knobs else engines.build_attention_engine(
                replace(base.config, **dict(key)), list(heads), name=name)))
        engine = built[key]
        used = {"dense_unroll": engine.dense_unroll, "sparse_lanes": engine.sparse_lanes}
        used.update({k: int(getattr(engine.config, k)) for k in allowed if k not in used})
        if storage != "auto":
            used["buffer_storage"] = storage
        if scores != "auto":  # both recorded: the conversion binds each from its own key
            used["score_storage"] = scores
        return attention_stage(attention_stream_estimate(engine, a, storage, scores), block, used)

    default = {"dense_unroll": base.dense_unroll, "sparse_lanes": base.sparse_lanes}
    return Slot(name, "attention", build, default, engine=base)


def flat_slots(slots: Sequence) -> list[Slot]:
    """The Slots of :func:`design_slots` in order (the Q/K/V chains flattened)."""
    out = []
    for s in slots:
        if isinstance(s, list):
            for chain in s:
                out.extend(chain)
        else:
            out.append(s)
    return out


def fifo_widths(config: ViTConfig, a: Assumptions) -> Callable[[str], int]:
    """Bits of one element of the FIFO ``"<producer>-><consumer>"`` of :func:`dataflow.vit_graph`."""
    c, act = config, a.activation_bits

    def width(edge: str) -> int:
        src, dst = edge.split("->")
        if src == "reader":
            return c.channels * act
        if src.endswith("mlp1") or src.endswith("relu"):
            return c.mlp_dim * act
        if src.endswith("_encoder"):
            return c.compressed_heads * c.head_dim * act
        return c.embed_dim * act
    return width


def assemble(config: ViTConfig, a: Assumptions, slots: Sequence, knobs: Mapping[str, Mapping] | None = None, *,
             autoencoder: bool = True) -> StreamEstimate:
    """The design of ``slots`` with ``knobs`` ({slot name: knobs}; missing: each slot's default)."""
    knobs = dict(knobs or {})
    unknown = sorted(set(knobs) - {s.name for s in flat_slots(slots)})
    if unknown:
        raise ValueError(f"knobs name unknown stage(s) {unknown}")
    stages: list[Stage] = []
    first, last = 0.0, 0.0
    for s in slots:
        if isinstance(s, list):  # the Q/K/V fork: each chain from the same input, the latest counts
            ends = []
            for chain in s:
                f, l = first, last
                for slot in chain:
                    stage = slot.build(knobs.get(slot.name, slot.default))
                    stages.append(stage)
                    f, l = stage.propagate(f, l)
                ends.append((f, l))
            first, last = max(e[0] for e in ends), max(e[1] for e in ends)
            continue
        stage = s.build(knobs.get(s.name, s.default))
        stages.append(stage)
        if stage.kind == "reader":
            first, last = 1.0, float(stage.interval)
        else:
            first, last = stage.propagate(first, last)
    depths = dataflow.safe_depths(config, autoencoder=autoencoder)
    width = fifo_widths(config, a)
    fifos = {e: {"depth": d, "width_bits": width(e), "resources": fifo_resources(d, width(e), a).as_dict()}
             for e, d in sorted(depths.items())}
    used = {st.name: dict(st.knobs) for st in stages if st.knobs}
    return StreamEstimate(config=config, assumptions=a, stages=stages, fifos=fifos, path_latency=last,
                          autoencoder=autoencoder, knobs=used)


def stream_estimate(config: ViTConfig, masks=None, a: Assumptions = Assumptions(),
                    knobs: Mapping[str, Mapping] | None = None, *, autoencoder: bool = True) -> StreamEstimate:
    """The io_stream design of ``config`` (+ masks) with ``knobs`` (:func:`assemble`)."""
    return assemble(config, a, design_slots(config, masks, a, autoencoder=autoencoder), knobs,
                    autoencoder=autoencoder)
