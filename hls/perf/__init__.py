"""Analytic cycle / multiply / resource model of the generated design. Every figure is MODELLED.

Where this fits in the flow::

    build/<run>/<stage>/{config.json, masks.npz}
      -> model_estimate() / estimate_run()   (no TensorFlow, no hls4ml, no Vivado)
           per layer and engine: multiplies, C-simulation counter values, cycles, initiation
           interval, multipliers, DSP / BRAM18K / LUT / FF
           + the same attention layers as a DENSE engine with the same multipliers and no masks
           + Q/K bytes buffered with and without the auto-encoder
      -> fit_report() / require_fit()         modelled estimate vs boards/<board>/board.tcl totals
                                              (vitcod.overlay.config.check_fit)
      -> vitcod.bench                         the model next to measurements, `make bench`

Nothing here was synthesized: this machine has no Vitis HLS. Held against published hls4ml synthesis
reports (:mod:`.published`, the table is in ``bench.md``), the Resource-strategy io_stream rules (the
case of our design) are within +12% on DSP, +6% on BRAM18K, -27% on LUT, -56% on FF and +0% on the
worst-case cycles (totals of design 3; the cycle constants are taken from that report); the io_parallel Latency-strategy rules over-count DSP by about
half (+54%, +44%) and miss LUT / FF / latency by large factors. The numbers are a model of what the
code describes, to compare design points and to refuse hopeless boards early; ``csynth`` and
Vivado reports replace them once the tools have run. Every dict this package emits carries
``"label": "modelled"``. What is checked against the C-simulation: the MULTIPLY / MAC COUNTS
(:func:`check_counters_against_csim`, exact).

Modules, one job each:

    resources   Assumptions (every number taken on faith), Resources and the DSP / BRAM / LUT /
                FF / pipelined-loop primitives, the EngineEstimate row
    ports       reads per cycle of each pipelined loop vs the memories' two ports: every II the model uses
    attention   the ViTCoD attention layer and its dense baseline (counts, cycles, resources)
    layers      the standard hls4ml layers and our head-mix / embedding engines
    estimate    the whole design of a run stage (ModelEstimate, model_estimate, estimate_run)
    stream_layers  one io_stream stage (hls4ml Resource-strategy Conv/Dense per nnet_dense_resource.h,
                the element-per-cycle layers, our stream kernels, the streaming attention), FIFOs
    stream      the whole io_stream design stage by stage (design_slots, stream_estimate,
                StreamEstimate: interval = slowest stage, latency along the path, FIFO depths from
                dataflow.safe_depths); what vitcod.hls.planner plans per board
    published   the model vs three published hls4ml csynth reports (the tutorial MLP at RF 1 and 2,
                io_parallel Latency; an io_stream Resource-strategy Conv2D design at RF = n_in): sources,
                computed modelled vs published DSP / LUT / FF / BRAM18K / latency and the error
    counters    the model's counts vs the C-simulation counters of the compiled engines
    fit         the modelled estimate vs the board totals (fit_report, require_fit)
    cli         ``python -m vitcod.hls.perf {estimate,fit}`` (fit: the io_stream board plan by default)

Everything other modules use is importable from here (``from vitcod.hls import perf``).
"""

from ...model.run_layout import MASKS_FILE, stage_sparsity
from . import ports
from .attention import (AttentionEstimate, HeadEstimate, attention_counters, attention_estimate, build_engine,
                        dense_attention_counters, dense_attention_estimate)
from .cli import main
from .counters import check_counters_against_csim, counter_engines
from .estimate import (DEFAULT_GLOBAL_THRESHOLD, DEFAULT_STAGES, ModelEstimate, estimate_run, load_config,
                       model_estimate)
from .fit import fit_report, min_reuse_factor, overlay_config, require_fit
from .stream import StreamEstimate, design_slots, stream_estimate
from .resources import (ATTENTION_CORE_COUNTERS, COUNTER_NAMES, LABEL, RESOURCE_KEYS, Assumptions, EngineEstimate,
                        Resources, bram18k_blocks, control, dsp_per_multiplier, memory, multipliers, mux_luts,
                        pipelined_loop, registers, signed_width)

__all__ = [
    "ATTENTION_CORE_COUNTERS", "COUNTER_NAMES", "DEFAULT_GLOBAL_THRESHOLD", "DEFAULT_STAGES", "LABEL", "MASKS_FILE",
    "RESOURCE_KEYS", "Assumptions", "AttentionEstimate", "EngineEstimate", "HeadEstimate", "ModelEstimate",
    "Resources", "attention_counters", "attention_estimate", "bram18k_blocks", "build_engine",
    "check_counters_against_csim", "control", "counter_engines", "dense_attention_counters",
    "dense_attention_estimate", "dsp_per_multiplier", "estimate_run", "fit_report", "load_config", "main",
    "memory", "min_reuse_factor", "model_estimate", "multipliers", "mux_luts", "overlay_config",
    "pipelined_loop", "ports", "registers", "require_fit", "signed_width", "stage_sparsity",
    "StreamEstimate", "design_slots", "stream_estimate",
]
