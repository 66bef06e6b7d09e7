"""``bench.md`` and ``bench.png``: the bench's dict (bench.json) as tables and one figure.

Reads only the dict :func:`vitcod.bench.run.run_bench` built; measures and models nothing. Every
table says whether its numbers are MODELLED or MEASURED.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .dataset import describe
from .figures import HEADLINE_SPARSITY


def fmt(value: Any, digits: int = 3) -> str:
    """A figure for a table: ``n/a`` for None, yes/NO for a bool, 3 significant digits for a float."""
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, float):
        return f"{value:.{digits}g}" if abs(value) < 1e5 else f"{value:.3e}"
    return str(value)


def markdown(bench: dict) -> str:
    """bench.md: the figures vs their targets, then one section per measurement."""
    lines = ["# Bench (`python -m vitcod.bench`)", "",
             f"Run: `{bench['run_dir']}`. MODELLED = `vitcod.hls.perf` (no synthesis, clock "
             f"{bench['clock_mhz']:g} MHz assumed); MEASURED = on this machine "
             f"({bench['environment']['cpus']} CPUs, load {bench['environment']['load_average']}).", "",
             *([f"Dataset: {describe(bench['dataset'])}.", ""] if bench.get("dataset") else []),
             "## Figures", "", "| figure | value | target | met | kind | unit |", "|---|---:|---|---|---|---|"]
    for key, f in bench["figures"].items():
        met = "n/a" if f["met"] is None else ("yes" if f["met"] else "**no**")
        lines.append(f"| {key} | {fmt(f['value'])} | {f['target']} | {met} | {f['kind']} | {bench['units'][key]} |")
    notes = [f"- `{k}`: {f['note']}" for k, f in bench["figures"].items() if f.get("note")]
    if notes:
        lines += ["", "Notes:", ""] + notes
    if bench["reasons"]:
        lines += ["", "Not measured:", ""] + [f"- `{k}`: {v}" for k, v in bench["reasons"].items()]
    lines += ["", "## Accuracy and attention cost vs sparsity", "",
              "| stage | sparsity | test acc. | ViTCoD attn. mult. | dense mult. | ratio | ratio incl. AE "
              "| ViTCoD attn. [us] | dense [us] | speedup | ideal speedup | whole model [us] |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    acc = {r["stage"]: r for r in (bench.get("accuracy") or [])}
    for r in bench["sweep"]:
        a = acc.get(r["stage"], {}).get("quantized_test_accuracy")
        lines.append(
            f"| {r['stage']} | {r['achieved_sparsity']:.4f} | {fmt(a, 4)} | {r['vitcod_attention_multiplies']} | "
            f"{r['dense_attention_multiplies']} | {fmt(r['attention_mult_ratio'])} | "
            f"{fmt(r['attention_mult_ratio_incl_autoencoder'])} | {fmt(r['vitcod_attention_latency_us'])} | "
            f"{fmt(r['dense_attention_latency_us'])} | {fmt(r['modelled_attention_speedup'])} | "
            f"{fmt(r['modelled_attention_speedup_ideal'])} | {fmt(r['model_latency_us'])} |")
    lines += ["", "Multiplies and latencies are modelled; accuracy is measured (report/accuracy.json). "
              "Dense engine = the same firmware loops with every key global and all q.k lanes in one engine "
              "(same multipliers). Ideal = the authors' analytic assumptions (every multiplier busy).", ""]
    if bench["sweep"]:
        lines += ["Modelled IP throughput (images/s) = clock / LATENCY, not clock / interval: `vitcod_top`'s "
                  "batch loop reads, runs and writes one image at a time (no DATAFLOW across images), so "
                  "image b + 1 enters only after image b has left. Clock / interval is what a design whose "
                  "images overlap would reach (the streaming design); it is listed for comparison only.", "",
                  "| stage | latency [cycles] | images/s (clock / latency) | interval [cycles] "
                  "| images/s if images overlapped (clock / interval) |",
                  "|---|---:|---:|---:|---:|"]
        for r in bench["sweep"]:
            lines.append(f"| {r['stage']} | {r['model_latency_cycles']} | {fmt(r['model_throughput_images_per_s'])} | "
                         f"{r['model_interval_cycles']} | {fmt(r['model_overlapped_throughput_images_per_s'])} |")
        lines.append("")
    if bench["sweep"]:
        lines += ["Where the ViTCoD attention cycles go (modelled, all blocks):", ""]
        for r in bench["sweep"]:
            parts = ", ".join(f"{k} {v}" for k, v in r["vitcod_stage_cycles"].items())
            lines.append(f"- {r['stage']}: {parts}; heads whose q.k stage is bound by {r['heads_bound_by']}")
    lines += ["", "## Model counts vs C-simulation counters", "",
              "| stage | engine | calls | match | counters (model = csim) |",
              "|---|---|---:|---|---|"]
    for stage, check in bench["counters_check"].items():
        if check.get("match") is None:
            lines.append(f"| {stage} | - | - | n/a | {check.get('reason')} |")
            continue
        for row in check["engines"]:
            lines.append(f"| {stage} | {row['engine']} | {row['calls']} | {fmt(row['match'])} | "
                         + ", ".join(f"{k} {v}" for k, v in row["model"].items()) + " |")
    w = bench["whole_csim"]
    lines += ["", "## C-simulation (measured)", ""]
    if w.get("available"):
        on = f"{w['dataset']} " if w.get("dataset") else ""
        lines += [f"- whole network, {w.get('samples')} {on}test images: {fmt(w.get('csim_seconds'))} s "
                  f"(QKeras predict {fmt(w.get('keras_predict_seconds'))} s warm, "
                  f"{fmt(w.get('keras_predict_first_seconds'))} s first call); accuracy C-sim "
                  f"{fmt(w.get('csim_accuracy'), 4)} vs QKeras {fmt(w.get('keras_accuracy'), 4)}, top-1 agreement "
                  f"{fmt(w.get('top1_agreement'), 4)}",
                  f"- compile {fmt(w.get('compile_seconds'))} s, compiler peak {fmt(w.get('compiler_peak_mb'))} MiB"]
    else:
        lines.append(f"- whole network: not measured ({w.get('reason')})")
    e = bench["engine_csim"]
    lines.append(f"- one attention engine, g++ from an empty cache: {fmt(e.get('compile_seconds'))} s, peak "
                 f"{fmt(e.get('peak_mb'))} MiB; all attention engines: {fmt(e.get('images_per_s'))} images/s"
                 + (f" ({e['reason']})" if e.get("reason") else ""))
    p = bench["packing"]
    own = "the network's own input type" if p.get("headline_is_network_input") else "no network.json found"
    lines += ["", "## Host quantize+pack (measured)", "",
              f"Kernel: `{p.get('kernel', 'numpy')}` (`vitcod.host.native_kernel()`); headline: "
              f"{bench['packing_headline']['format']} ({own}), batch {bench['packing_headline']['batch']}. "
              "Each row's four timings are interleaved, best of the row's repeats; the copies are `np.copyto` "
              "into preallocated arrays, as quantize_pack writes into a preallocated word buffer.", "",
              "| format | batch | quantize_pack [ms] | general path [ms] | copy packed [ms] | copy input [ms] "
              "| pack/copy throughput | pack/input-copy | speed-up vs general |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in p["pack"]:
        lines.append(f"| {r['format']} | {r['batch']} | {r['quantize_pack_ms']:.4f} | {r['reference_path_ms']:.4f} | "
                     f"{r['copy_packed_ms']:.4f} | {r['copy_input_ms']:.4f} | "
                     f"{r['pack_vs_copy_throughput_ratio']:.3f} | "
                     f"{r['pack_vs_input_copy_throughput_ratio']:.3f} | {r['pack_speedup_vs_reference_path']:.2f} |")
    lines += ["", "| output format | batch | unpack [ms] | copy [ms] | unpack/copy throughput |",
              "|---|---:|---:|---:|---:|"]
    for r in p["unpack"]:
        lines.append(f"| {r['format']} | {r['batch']} | {r['unpack_ms']:.4f} | {r['copy_ms']:.4f} | "
                     f"{r['unpack_vs_copy_throughput_ratio']:.3f} |")
    lines += ["", "## Modelled vs synthesized (0.90 design)", ""]
    if bench.get("modelled_vs_synthesized_at_0.9"):
        syn = bench["synthesized_at_0.9"]
        lines += [f"{syn['label']}; target clock {syn['target_clock_ns']} ns, estimated {syn['estimated_clock_ns']} ns "
                  f"(`make synth`, {syn['run']['command']}).", "",
                  "| quantity | modelled | synthesized | synthesized / modelled |", "|---|---:|---:|---:|"]
        for key, v in bench["modelled_vs_synthesized_at_0.9"].items():
            lines.append(f"| {key} | {fmt(v['modelled'])} | {fmt(v['synthesized'])} | "
                         f"{fmt(v['synthesized_over_modelled'])} |")
    else:
        lines.append(f"No synthesized figures: {bench['reasons'].get('synthesized_at_0.9', 'not available')}. "
                     "With Vitis HLS installed, `make synth` then `make bench` fills this table.")
    if bench.get("fit_at_0.9"):
        row = next(r for r in bench["sweep"] if r["nominal_sparsity"] == HEADLINE_SPARSITY)
        br, res = row["resource_breakdown"], row["resources"]
        lines += ["", "## Board fit of the modelled 0.90 design", "",
                  f"Modelled totals at ReuseFactor {bench['assumptions']['reuse_factor']}: {res['dsp']} DSP, "
                  f"{res['bram_18k']} BRAM18K, {res['lut']} LUT, {res['ff']} FF; of the FFs, "
                  f"{br['tensor_register_ff']} "
                  "are the io_parallel tensors between layers (completely partitioned, PIPO copies); DSPs by kind: "
                  + ", ".join(f"{k} {v}" for k, v in br["dsp_by_kind"].items() if v) + ".", "",
                  "| board | fits | DSP | BRAM18K | LUT | FF | smallest ReuseFactor that fits |",
                  "|---|---|---:|---:|---:|---:|---:|"]
        for board, f in bench["fit_at_0.9"].items():
            u = f["utilization"]
            lines.append(f"| {board} | {fmt(f['fits'])} | {u['dsp']:.0%} | {u['bram_18k']:.0%} | {u['lut']:.0%} | "
                         f"{u['ff']:.0%} | {fmt(bench['min_reuse_factor_at_0.9'].get(board))} |")
    if bench.get("boards"):
        from .boards import markdown as boards_markdown

        lines += [""] + boards_markdown(bench["boards"])
    from ..hls.perf.published import markdown as published_markdown

    lines += [""] + published_markdown()
    lines.append("")
    return "\n".join(lines)


def plot(bench: dict, path: Path) -> Path:
    """bench.png: measured accuracy and modelled attention latency vs sparsity (needs matplotlib)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = sorted(bench["sweep"], key=lambda r: r["achieved_sparsity"])
    acc = {r["stage"]: r["quantized_test_accuracy"] for r in (bench.get("accuracy") or [])}
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    xs = [r["achieved_sparsity"] for r in rows]
    ys = [acc.get(r["stage"]) for r in rows]
    pts = [(x, y) for x, y in zip(xs, ys) if y is not None]
    if pts:
        ax1.plot([p[0] for p in pts], [100 * p[1] for p in pts], "o-", label="+AE (+mask), quantized")
    dense = acc.get("dense")
    if dense is not None:
        ax1.axhline(100 * dense, color="gray", ls="--", label="dense, no AE")
    ax1.set_xlabel("attention sparsity")
    ax1.set_ylabel("test accuracy [%] (measured)")
    ax1.legend()
    ax1.grid(alpha=0.3)
    ax2.plot(xs, [r["vitcod_attention_latency_us"] for r in rows], "o-", label="ViTCoD engines")
    ax2.plot(xs, [r["dense_attention_latency_us"] for r in rows], "s--", label="dense engine, same multipliers")
    ax2.set_xlabel("attention sparsity")
    ax2.set_ylabel(f"attention latency [us] (MODELLED, {bench['clock_mhz']:g} MHz)")
    ax2.legend()
    ax2.grid(alpha=0.3)
    data = bench.get("dataset") or {}
    on = f" ({data['name']}" + (f", {data['tokens']} tokens)" if data.get("tokens") else ")") if data else ""
    fig.suptitle(f"ViTCoD bench{on}: accuracy measured, latency modelled")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
