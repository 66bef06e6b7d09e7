"""The modelled design of one run stage: every engine, the attention layers and their dense baseline.

``model_estimate`` chains the engine models of ``layers.py`` and ``attention.py`` in the order the
generated design runs them (patch embedding, embedding, then per block: norm, Q/K/V projections,
the Q/K auto-encoder when the stage has one, attention, projection, residual, norm, MLP, residual;
then the final norm and the classifier head). ``estimate_run`` does the same for a stage folder of
a run (``config.json``, and ``masks.npz`` when present; layout in :mod:`vitcod.model.run_layout`).

The whole network is one DATAFLOW region of layers (``PipelineStyle: dataflow``): latency = sum,
interval = the slowest layer. For an io_parallel network the IP top (``run_top``) does not overlap
images (its batch loop has no DATAFLOW), so the modelled throughput is clock / latency
(``throughput_basis: "latency"``); clock / interval is reported beside it as what overlapping images
would give. For an io_stream network (``io_type="io_stream"``) the top is a DATAFLOW pipeline
(overlay/ip/vitcod_top_stream.h): images overlap, and the throughput is clock / interval
(``throughput_basis: "interval"``), the interval being the slowest of the layers and the top's
reader / writer (one value per cycle). Whether FIFOs are deep enough for that is
:mod:`vitcod.hls.perf.dataflow`'s question. Every figure is MODELLED.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ...model import run_layout
from ...model.config import ConfigError, ViTConfig
from ...model.polarize import HeadPolarization, polarize_head
from .. import engines
from .attention import AttentionEstimate, attention_estimate, build_engine, dense_attention_estimate
from .layers import elementwise, embed, headmix, hls4ml_conv, hls4ml_dense, layernorm, softmax_head
from .resources import COUNTER_NAMES, LABEL, Assumptions, EngineEstimate, Resources, total, with_tensor

#: The default stages of a run that carry the auto-encoder, with their nominal sparsity (ae: dense attention).
DEFAULT_STAGES = {run_layout.AUTOENCODER: 0.0,
                  **{run_layout.sparse_stage(s): s for s in run_layout.DEFAULT_SPARSITIES}}
#: Why the modelled throughput is clock / latency (bench.md and the estimate JSON say it too).
THROUGHPUT_NOTE = ("clock / latency: vitcod_top's batch loop reads, runs and writes one image at a time (no "
                   "DATAFLOW across images), so images do not overlap; clock / interval "
                   "(overlapped_throughput_images_per_s) is what a design whose images overlap would reach")
#: Why the modelled throughput of the io_stream design is clock / interval.
THROUGHPUT_NOTE_STREAM = ("clock / interval: the io_stream top is a DATAFLOW pipeline (read -> network -> write, "
                          "each looping over the batch), so image b+1 enters while image b is inside; interval = "
                          "the slowest layer or the top's reader/writer (one value per cycle); FIFO depths from "
                          "vitcod.hls.perf.dataflow")
IO_TYPES = ("io_parallel", "io_stream")
#: Global-token threshold the model stage uses (and hls/extension.py for masks without an artifact).
DEFAULT_GLOBAL_THRESHOLD = 0.5


@dataclass
class ModelEstimate:
    """The modelled design of one run stage: every engine, the attention layers and their dense
    baseline, Q/K buffer bytes, totals."""

    config: ViTConfig
    assumptions: Assumptions
    engines: list[EngineEstimate]
    attention: list[AttentionEstimate]
    dense_attention: list[AttentionEstimate]
    autoencoder: bool
    sparsity: float
    stage: str | None = None
    #: the generated attention engines (masks, lanes, types), e.g. to C-simulate the same layers
    attention_engines: list = field(default_factory=list, repr=False)
    #: the network's io_type: sets the IP top, hence the throughput basis (module docstring)
    io_type: str = "io_parallel"

    # ---- totals --------------------------------------------------------------------------------
    @property
    def top_level(self) -> list[EngineEstimate]:
        return [e for e in self.engines if e.part_of is None]

    @property
    def counters(self) -> dict[str, int]:
        """C-simulation counter values per image (sum over every engine)."""
        out = dict.fromkeys(COUNTER_NAMES, 0)
        for e in self.engines:
            if e.kind == "attention":
                continue  # its parts carry the counters
            for k, v in e.counters.items():
                out[k] += v
        return out

    @property
    def multiplies(self) -> int:
        return sum(e.multiplies for e in self.top_level)

    @property
    def cycles(self) -> int:
        """Latency of one image through the DATAFLOW chain of layers (sum)."""
        return sum(e.cycles for e in self.top_level)

    @property
    def interval(self) -> int:
        """Initiation interval of the chain (its slowest layer): what images WOULD cost each if they
        overlapped in the network. They do not yet: see :attr:`image_cycles`."""
        return max(e.interval for e in self.top_level)

    @property
    def top_stream_cycles(self) -> int:
        """Cycles per image of the io_stream top's reader and writer (one value per cycle each)."""
        c = self.config
        return max(c.image_size * c.image_size * c.channels, c.num_classes)

    @property
    def image_cycles(self) -> int:
        """Cycles per image of the IP as built. io_parallel: its latency - ``run_top`` runs read,
        network and write one after another per image (its batch loop has no DATAFLOW), so image
        b + 1 enters only when image b has left (the stream read / write cycles, a few dozen words
        per image, are not modelled). io_stream: the interval - the DATAFLOW top overlaps images,
        so the slowest layer (or the top's reader / writer) sets the pace."""
        if self.io_type == "io_stream":
            return max(self.interval, self.top_stream_cycles)
        return self.cycles

    @property
    def throughput_basis(self) -> str:
        """``"latency"`` (io_parallel) or ``"interval"`` (io_stream): what :attr:`throughput` divides by."""
        return "interval" if self.io_type == "io_stream" else "latency"

    @property
    def throughput(self) -> float:
        """Modelled images per second of the IP as built: clock / :attr:`image_cycles`."""
        return self.assumptions.clock_mhz * 1e6 / self.image_cycles

    @property
    def resources(self) -> Resources:
        return total(e.resources for e in self.top_level)

    def resource_breakdown(self) -> dict[str, int]:
        """Where the modelled resources go: DSPs by engine kind, FFs of the io_parallel tensors."""
        dsp: dict[str, int] = {}
        for e in self.top_level:
            dsp[e.kind] = dsp.get(e.kind, 0) + e.resources.dsp
        tensor_ff = sum(e.register_ff for e in self.top_level)
        return {"dsp_by_kind": dsp, "tensor_register_ff": tensor_ff, "other_ff": self.resources.ff - tensor_ff}

    def resource_estimate(self) -> dict[str, int]:
        """``{dsp, bram_18k, lut, ff}`` in the form ``vitcod.overlay.config.check_fit`` takes."""
        return self.resources.as_dict()

    def seconds(self, cycles: int) -> float:
        return cycles / (self.assumptions.clock_mhz * 1e6)

    # ---- attention vs the dense baseline -------------------------------------------------------
    def qk_bytes(self) -> dict[str, int]:
        """Q and K bytes one image holds between projection and attention, all blocks.

        Without the auto-encoder: two (N, H*D) tensors per block; with it the compressed
        (N, Hc*D) ones (ViTCoD keeps Q/K compressed and decodes on chip). Same element width.
        """
        c = self.config
        width = math.ceil(self.assumptions.activation_bits / 8)
        full = 2 * c.depth * c.num_tokens * c.num_heads * c.head_dim * width
        compressed = 2 * c.depth * c.num_tokens * c.compressed_heads * c.head_dim * width
        return {"without_autoencoder": full, "with_autoencoder": compressed,
                "this_design": compressed if self.autoencoder else full, "bytes_per_value": width}

    def attention_summary(self) -> dict:
        """ViTCoD engines vs the dense engine with the same q.k multipliers, per image, all blocks."""
        vit_mults = sum(l.multiplies for l in self.attention)
        dense_mults = sum(l.multiplies for l in self.dense_attention)
        ae_mults = sum(e.multiplies for e in self.engines if e.kind in ("encoder", "decoder"))
        ae_cycles = sum(e.cycles for e in self.engines if e.kind in ("encoder", "decoder"))
        vit_cycles = sum(l.cycles for l in self.attention)
        dense_cycles = sum(l.cycles for l in self.dense_attention)
        vit_ideal = sum(l.ideal_cycles for l in self.attention)
        dense_ideal = sum(l.ideal_cycles for l in self.dense_attention)
        bound = {"dense": 0, "sparse": 0}
        for layer in self.attention:
            for h in layer.head_estimates:
                bound[h.qk_bound] += 1
        stage_cycles: dict[str, int] = {}
        for layer in self.attention:
            for e in layer.engines:
                stage_cycles[e.kind] = stage_cycles.get(e.kind, 0) + e.cycles
        return {
            "label": LABEL,
            "sparsity": self.sparsity,
            "vitcod_multiplies": vit_mults,
            "vitcod_multiplies_incl_autoencoder": vit_mults + ae_mults,
            "dense_multiplies": dense_mults,
            "mult_ratio": dense_mults / vit_mults if vit_mults else None,
            "mult_ratio_incl_autoencoder": dense_mults / (vit_mults + ae_mults) if vit_mults + ae_mults else None,
            "vitcod_cycles": vit_cycles,
            "vitcod_cycles_incl_autoencoder": vit_cycles + ae_cycles,
            "dense_cycles": dense_cycles,
            "vitcod_latency_us": self.seconds(vit_cycles) * 1e6,
            "dense_latency_us": self.seconds(dense_cycles) * 1e6,
            "speedup": dense_cycles / vit_cycles if vit_cycles else None,
            "speedup_incl_autoencoder": dense_cycles / (vit_cycles + ae_cycles) if vit_cycles else None,
            "vitcod_streamed_cycles": sum(l.streamed_cycles for l in self.attention),
            "vitcod_ideal_cycles": vit_ideal,
            "dense_ideal_cycles": dense_ideal,
            "ideal_speedup": dense_ideal / vit_ideal if vit_ideal else None,
            "qk_multipliers": [l.qk_multipliers for l in self.attention],
            "lanes": [[l.dense_unroll, l.sparse_lanes] for l in self.attention],
            "heads_bound_by": bound,
            "vitcod_stage_cycles": stage_cycles,
        }

    # ---- output --------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        seconds = self.seconds(self.cycles)
        return {
            "label": LABEL,
            "stage": self.stage,
            "sparsity": self.sparsity,
            "autoencoder": self.autoencoder,
            "clock_mhz": self.assumptions.clock_mhz,
            "assumptions": self.assumptions.to_dict(),
            "totals": {
                "multiplies": self.multiplies, "cycles": self.cycles, "latency_us": seconds * 1e6,
                "interval_cycles": self.interval,
                "throughput_images_per_s": self.throughput,
                "io_type": self.io_type,
                "image_cycles": self.image_cycles,
                "throughput_basis": self.throughput_basis,
                "throughput_note": THROUGHPUT_NOTE_STREAM if self.io_type == "io_stream" else THROUGHPUT_NOTE,
                "overlapped_throughput_images_per_s": self.assumptions.clock_mhz * 1e6 / self.interval,
                **self.resource_estimate(),
            },
            "counters": self.counters,
            "resource_breakdown": self.resource_breakdown(),
            "attention_summary": self.attention_summary(),
            "qk_bytes": self.qk_bytes(),
            "engines": [e.to_dict() for e in self.engines],
            "attention": [l.to_dict() for l in self.attention],
            "dense_attention": [l.to_dict() for l in self.dense_attention],
        }

    def table(self) -> str:
        """A markdown table of the engines (parts of an attention layer indented)."""
        us = 1e6 / (self.assumptions.clock_mhz * 1e6)
        lines = ["| engine (modelled) | multiplies | cycles | latency [us] | II | multipliers | DSP | BRAM18K | LUT | FF |",
                 "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for e in self.engines:
            name = f"&nbsp;&nbsp;{e.name.split('/')[-1]}" if e.part_of else e.name
            r = e.resources
            lines.append(f"| {name} | {e.multiplies} | {e.cycles} | {e.cycles * us:.2f} | {e.interval} | "
                         f"{e.multipliers} | {r.dsp} | {r.bram_18k} | {r.lut} | {r.ff} |")
        r = self.resources
        lines.append(f"| **total** | {self.multiplies} | {self.cycles} | {self.cycles * us:.2f} | {self.interval} | "
                     f"{sum(e.multipliers for e in self.top_level)} | {r.dsp} | {r.bram_18k} | {r.lut} | {r.ff} |")
        return "\n".join(lines)


def _as_layer_heads(masks, config: ViTConfig) -> list[list[HeadPolarization]]:
    """Per-layer head polarizations from None (dense: all ones), a MaskArtifact, a (L, H, N, N) bool
    array, or a list of per-layer polarization lists."""
    n, h, depth = config.num_tokens, config.num_heads, config.depth
    if masks is None:
        ones = polarize_head(np.ones((n, n), dtype=bool), DEFAULT_GLOBAL_THRESHOLD)
        return [[ones] * h for _ in range(depth)]
    if hasattr(masks, "heads") and hasattr(masks, "num_layers"):
        if (masks.num_layers, masks.num_heads, masks.num_tokens) != (depth, h, n):
            raise ValueError(f"mask artifact has {masks.num_layers} layers x {masks.num_heads} heads x "
                             f"{masks.num_tokens} tokens, the config {depth} x {h} x {n}")
        return [masks.heads(l) for l in range(depth)]
    if isinstance(masks, np.ndarray):
        if masks.shape != (depth, h, n, n) or masks.dtype != np.bool_:
            raise ValueError(f"masks must be a bool array of shape {(depth, h, n, n)}, got {masks.dtype} {masks.shape}")
        return [[polarize_head(masks[l, i], DEFAULT_GLOBAL_THRESHOLD) for i in range(h)] for l in range(depth)]
    layers = [list(layer) for layer in masks]
    if len(layers) != depth or any(len(layer) != h for layer in layers):
        raise ValueError(f"expected {depth} layers of {h} head polarizations")
    return layers


def model_estimate(config: ViTConfig, masks=None, a: Assumptions = Assumptions(), *, autoencoder: bool = True,
                   stage: str | None = None, io_type: str = "io_parallel") -> ModelEstimate:
    """Model the whole generated design of a ViT (every figure modelled).

    Args:
        config: the run's ViTConfig.
        masks: None (dense: every key global, as hls/extension.py does without masks), a
            MaskArtifact, a (depth, heads, N, N) bool keep-mask, or per-layer HeadPolarization lists.
        a: the assumptions.
        autoencoder: the Q/K encoder/decoder pairs are in the design (stages ae and sparse_*).
        stage: label only.
        io_type: ``"io_parallel"`` or ``"io_stream"``: the IP top, hence the throughput basis.
    """
    if io_type not in IO_TYPES:
        raise ValueError(f"io_type must be one of {list(IO_TYPES)}, got {io_type!r}")
    c = config
    n, e_dim, h, d, hc = c.num_tokens, c.embed_dim, c.num_heads, c.head_dim, c.compressed_heads
    act = a.activation_bits
    w_bits = a.weight_bits if a.weight_bits is not None else c.weight_bits
    layer_heads = _as_layer_heads(masks, c)
    rows: list[EngineEstimate] = []
    grid = c.image_size // c.patch_size
    rows.append(hls4ml_conv("patch_embed", "patch_embed", None, grid * grid, c.embed_kernel ** 2 * c.channels,
                            e_dim, act, w_bits, a, act))
    rows.append(embed(n, e_dim, a, act))
    attention: list[AttentionEstimate] = []
    dense_attention: list[AttentionEstimate] = []
    built: list[engines.AttentionEngine] = []
    kept = entries = 0
    for b, heads in enumerate(layer_heads):
        p = f"block{b}_"
        rows.append(layernorm(p + "norm1", b, n, e_dim, a, act, act))
        for name in ("q", "k", "v"):
            rows.append(hls4ml_conv(p + name, "projection", b, n, e_dim, e_dim, act, w_bits, a, act))
        if autoencoder:
            for name in ("q", "k"):
                rows.append(headmix(f"{p}{name}_encoder", "encoder", b, n, h, hc, d, act, w_bits, a))
                rows.append(headmix(f"{p}{name}_decoder", "decoder", b, n, hc, h, d, act, w_bits, a))
        engine = build_engine(heads, d, a, name=p + "attention")
        built.append(engine)
        est = attention_estimate(engine, a, block=b)
        lanes = engine.dense_unroll + engine.sparse_lanes
        base = dense_attention_estimate(n, h, d, lanes, engine.types, a, name=p + "attention_dense",
                                        exp_table_size=engine.exp_table.size, block=b)
        attention.append(est)
        dense_attention.append(base)
        rows.append(with_tensor(EngineEstimate(
            name=est.name, kind="attention", block=b, multiplies=est.multiplies, counters=dict(est.counters),
            cycles=est.cycles, interval=est.cycles, multipliers=est.multipliers, resources=est.resources,
            note=f"{h} heads one after the other: load + max(dense, sparse) + softmax/PV each; lanes "
                 f"{engine.dense_unroll} dense + {engine.sparse_lanes} sparse"), n * e_dim, engine.types.result.width, a))
        rows.extend(est.engines)
        rows.append(hls4ml_conv(p + "proj", "projection", b, n, e_dim, e_dim, act, w_bits, a, act))
        rows.append(elementwise(p + "add1", "add", b, n * e_dim, act, a))
        rows.append(layernorm(p + "norm2", b, n, e_dim, a, act, act))
        rows.append(hls4ml_conv(p + "mlp1", "mlp", b, n, e_dim, c.mlp_dim, act, w_bits, a, act))
        rows.append(elementwise(p + "relu", "relu", b, n * c.mlp_dim, c.activation_bits, a))
        rows.append(hls4ml_conv(p + "mlp2", "mlp", b, n, c.mlp_dim, e_dim, c.activation_bits, w_bits, a, act))
        rows.append(elementwise(p + "add2", "add", b, n * e_dim, act, a))
        for pol in heads:
            kept += int(np.asarray(pol.dense_keep).sum()) + pol.nnz_sparse
            entries += n * n
    rows.append(layernorm("final_norm", None, n, e_dim, a, act, act))
    rows.append(hls4ml_dense("head", e_dim, c.num_classes, act, w_bits, a, act))
    rows.append(softmax_head(c.num_classes, a))
    return ModelEstimate(config=c, assumptions=a, engines=rows, attention=attention, dense_attention=dense_attention,
                         autoencoder=autoencoder, sparsity=1.0 - kept / entries if entries else 0.0, stage=stage,
                         attention_engines=built, io_type=io_type)


def load_config(path: str | Path) -> ViTConfig:
    """A stage's ``config.json`` as a :class:`ViTConfig`, also from run folders written before
    ``patch_kernel`` became ``patch_overlap`` (:func:`vitcod.model.run_layout.read_stage_config_dict`
    translates them and logs the translation).

    Raises:
        ConfigError: not valid JSON, or an unknown or invalid field.
        ValueError: an old ``patch_kernel`` that is not ``patch_size + 2 * overlap``.
    """
    try:
        data = run_layout.read_stage_config_dict(path)
    except json.JSONDecodeError as err:
        raise ConfigError(f"{path}: not valid JSON ({err})") from err
    return ViTConfig.from_dict(data)


def estimate_run(run_dir: str | Path, stage: str = run_layout.DEFAULT_HLS_STAGE,
                 a: Assumptions = Assumptions(), io_type: str = "io_parallel") -> ModelEstimate:
    """:func:`model_estimate` for ``build/<run>/<stage>`` (config.json, and masks.npz when present).

    Stage ``dense`` has no auto-encoder; ``ae`` and ``sparse_*`` have one. A stage without masks.npz
    is dense attention (every key global), as the hls4ml extension builds it.

    Raises:
        FileNotFoundError: no config.json in the stage folder.
    """
    from ...model.mask_artifact import load_mask_artifact

    folder = run_layout.stage_dir(run_dir, stage)
    cfg_path = folder / run_layout.CONFIG_FILE
    if not cfg_path.is_file():
        raise FileNotFoundError(f"no {cfg_path}: expected a trained stage folder (python -m vitcod ...)")
    config = load_config(cfg_path)
    masks_path = folder / run_layout.MASKS_FILE
    masks = None
    if masks_path.is_file():
        masks = load_mask_artifact(masks_path, num_layers=config.depth, num_heads=config.num_heads,
                                   num_tokens=config.num_tokens)
    tables = converted_layernorm_tables(run_dir, stage)
    if tables and not a.layernorm_tables:
        a = replace(a, layernorm_tables=tables)
    return model_estimate(config, masks, a, autoencoder=run_layout.stage_has_autoencoder(stage), stage=stage,
                          io_type=io_type)


def converted_layernorm_tables(run_dir: str | Path, stage: str) -> tuple:
    """``((layer, entries, bits), ...)`` of the LayerNorm 1/sqrt ROMs of the stage's converted project,
    from its precision report (``build/<run>/hls/csim_report.json``, when it is this stage's and
    written by the octave-table flow); empty otherwise."""
    path = run_layout.hls_dir(run_dir) / run_layout.CSIM_REPORT_FILE
    try:
        report = json.loads(path.read_text())
    except (OSError, ValueError):
        return ()
    if report.get("stage") != stage:
        return ()
    rows = [r for r in report.get("precision_report", [])
            if r.get("kind") == "LayerNormalization" and r.get("what") == "variance" and "table_bits" in r]
    return tuple((r["layer"], int(r["table_size"]), int(r["table_bits"]) // int(r["table_size"])) for r in rows)
