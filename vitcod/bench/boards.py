"""Per board: the planned io_stream design and its dense-attention twin on the same budget (MODELLED).

For every board of ``overlay/boards/`` the planner (:mod:`vitcod.hls.planner`) sizes the headline
stage's io_stream design under the cap, and sizes the same model with dense attention (every key
global: the baseline of the attention sweep) under the same budget. ``bench.json`` ``boards.<board>``:

    fits, max_utilization, utilization, images_per_s, latency_us, bottleneck, interval_cycles,
    clock_mhz, dsp_efficiency (useful multiplies per image / (DSPs used x interval)),
    vitcod_vs_dense_throughput (images/s of the ViTCoD plan / of the dense plan), dense (the dense
    plan's figures), knobs (the plan), targets (:func:`targets_for`: issue #13 for the digits demo's
    model, issue #14 for the 197-token run's, none for any other) and whether each is met; a missed
    images/s target carries ``needs`` (:class:`vitcod.hls.planner.TargetNeeds`: the interval it asks
    for and the cheapest design found at that interval, with what it is over the cap by).

When a design does not fit even at its cheapest plan, its figures are those of that cheapest design
(``fits`` false, ``over`` says by how much); a ratio against a dense design that does not fit is a
lower bound of the advantage at equal resources (``dense.fits`` false says so).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

#: Issue #13's modelled targets: images/s per board at its board.tcl clock, utilization, ViTCoD / dense.
THROUGHPUT_TARGETS = {"pynq-z2": 6_000.0, "zcu104": 100_000.0, "kv260": 80_000.0}
MAX_UTILIZATION_TARGET = 0.8
RATIO_TARGET = 1.3
TARGETS_13 = {"issue": 13, "images_per_s": THROUGHPUT_TARGETS, "ratio": RATIO_TARGET, "boards": None}
#: Issue #14's, for the 197-token run: fit and ViTCoD / dense on the UltraScale+ boards, no images/s.
TARGETS_197 = {"issue": 14, "images_per_s": {}, "ratio": 1.8, "boards": ("zcu104", "kv260")}
#: Any other model: its figures are reported, not judged against an issue written for another model.
NO_TARGETS = {"issue": None, "images_per_s": {}, "ratio": None, "boards": ()}


def targets_for(config) -> dict:
    """The issue targets that apply to a model: #13's to the digits demo's geometry, #14's to the
    197-token MNIST preset's, none to any other (e.g. the digits-small preset)."""
    from ..model.presets import DIGITS, MNIST197

    if config == MNIST197.config:
        return TARGETS_197
    if config == DIGITS.config:
        return TARGETS_13
    return NO_TARGETS


def _figures(plan) -> dict:
    m = plan.modelled
    return {"fits": m["fits"], "max_utilization": m["max_utilization"], "utilization": m["utilization"],
            "resources": m["resources"], "over": m["over"], "images_per_s": m["images_per_s"],
            "latency_us": m["latency_us"], "interval_cycles": m["interval_cycles"], "bottleneck": m["bottleneck"],
            "dsp_efficiency": m["dsp_efficiency"], "clock_mhz": plan.clock_mhz}


def board_figures(run_dir: str | Path, stage: str, boards: Sequence[str] | None = None,
                  cap: float = MAX_UTILIZATION_TARGET, targets: dict | None = None) -> dict[str, dict]:
    """``{board: figures}`` of the ViTCoD plan and its dense twin (module docstring); ``targets``:
    default :func:`targets_for` the run's model."""
    from ..hls.planner import load_stage, needs_run, plan_run
    from ..overlay.config import available_boards

    goals = targets if targets is not None else targets_for(load_stage(run_dir, stage)[0])
    out = {}
    for board in boards or available_boards():
        vit = plan_run(run_dir, board, stage=stage, cap=cap)
        dense = plan_run(run_dir, board, stage=stage, cap=cap, dense=True)
        entry = {"label": "modelled", "stage": stage, "cap": cap, **_figures(vit), "knobs": vit.knobs,
                 "dense": _figures(dense),
                 "vitcod_vs_dense_throughput": vit.modelled["images_per_s"] / dense.modelled["images_per_s"],
                 "attention_knobs": vit.modelled["attention_knobs"]}
        target = goals["images_per_s"].get(board)
        applies = goals["boards"] is None or board in goals["boards"]
        ratio = goals["ratio"]
        ratio_met = ratio is not None and entry["vitcod_vs_dense_throughput"] >= ratio
        entry["targets"] = {
            "issue": goals["issue"],
            "fits_at_cap": {"target": f"<= {MAX_UTILIZATION_TARGET}" if applies else None,
                            "met": bool(entry["fits"]) if applies else None},
            "images_per_s": {"target": None if target is None else f">= {target:g}",
                             "met": None if target is None else entry["images_per_s"] >= target},
            # against a dense plan that does not fit, the ratio is a lower bound (no dense design exists)
            "vitcod_vs_dense_throughput": {"target": None if ratio is None or not applies else f">= {ratio:g}",
                                           "met": (ratio_met and bool(entry["fits"])) if applies else None,
                                           "lower_bound": not entry["dense"]["fits"]},
        }
        if not entry["fits"]:
            fifo = vit.modelled["fifo_resources"]
            entry["targets"]["fits_at_cap"]["bound_by"] = (
                "even the cheapest design is over the cap: " + ", ".join(
                    f"{k} +{v} ({entry['resources'][k]} modelled, {fifo.get(k, 0)} of them in the FIFOs)"
                    for k, v in entry["over"].items()))
        if target is not None and entry["images_per_s"] < target:
            needs = needs_run(run_dir, board, target, stage=stage, cap=cap)
            entry["targets"]["images_per_s"]["needs"] = needs.to_dict()
            entry["targets"]["images_per_s"]["bound_by"] = (
                f"{entry['bottleneck']}: {entry['interval_cycles']} cycles per image, "
                f"{entry['interval_cycles'] * target / (entry['clock_mhz'] * 1e6):.2f}x too slow; {needs.summary()}")
        out[board] = entry
    return out


def markdown(boards: dict[str, dict]) -> list[str]:
    """bench.md lines: one row per board (ViTCoD plan), its dense twin and the targets."""
    lines = ["## Per board: the planned io_stream design (modelled)", "",
             "`python -m vitcod.hls.plan --run-dir <run> --board <board>` per board, cap 80% of every resource, the "
             "board.tcl clock; dense = the same model with every key global, planned on the same budget.", "",
             "| board | clock [MHz] | fits | max util. | images/s | latency [us] | bottleneck | DSP eff. "
             "| dense images/s | dense fits | ViTCoD / dense |",
             "|---|---:|---|---:|---:|---:|---|---:|---:|---|---:|"]
    for board, e in boards.items():
        d = e["dense"]
        eff = "n/a" if e["dsp_efficiency"] is None else f"{e['dsp_efficiency']:.2f}"
        lines.append(f"| {board} | {e['clock_mhz']:g} | {'yes' if e['fits'] else '**no**'} | {e['max_utilization']:.0%} | "
                     f"{e['images_per_s']:.0f} | {e['latency_us']:.1f} | {e['bottleneck']} | {eff} | "
                     f"{d['images_per_s']:.0f} | {'yes' if d['fits'] else 'no'} | {e['vitcod_vs_dense_throughput']:.2f} |")
    issue = next(iter(boards.values()))["targets"]["issue"] if boards else None
    if issue is None:
        return lines + ["", "No issue targets for this model (issue #13's are the digits demo's, #14's the "
                        "197-token run's): figures only.", ""]
    lines += ["", f"Targets (issue #{issue}; a ratio against a dense plan that does not fit is a lower bound):", ""]
    for board, e in boards.items():
        parts = []
        for key, t in e["targets"].items():
            if key == "issue" or (t["met"] is None and t["target"] is None):
                continue
            met = "n/a" if t["met"] is None else ("met" if t["met"] else "**not met**")
            parts.append(f"{key} {t['target']}: {met}" + (f" ({t['bound_by']})" if t.get("bound_by") else ""))
        over = ", ".join(f"{k} +{v}" for k, v in e["over"].items())
        lines.append(f"- {board}: " + "; ".join(parts) + (f"; over the cap: {over}" if over else ""))
    return lines + [""]


def plot(boards: dict[str, dict], path: Path) -> Path:
    """boards.png: images/s (ViTCoD, dense; log scale) and utilization per resource, per board."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(boards)
    xs = range(len(names))
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    ax1.bar([x - 0.2 for x in xs], [boards[b]["images_per_s"] for b in names], 0.4, label="ViTCoD plan")
    ax1.bar([x + 0.2 for x in xs], [boards[b]["dense"]["images_per_s"] for b in names], 0.4, label="dense attention plan")
    ax1.set_yscale("log")
    ax1.set_xticks(list(xs), names)
    ax1.set_ylabel("images/s (MODELLED, board clock)")
    ax1.legend()
    ax1.grid(alpha=0.3, axis="y")
    keys = ("dsp", "bram_18k", "lut", "ff")
    for i, k in enumerate(keys):
        ax2.bar([x + (i - 1.5) * 0.2 for x in xs], [100 * boards[b]["utilization"][k] for b in names], 0.2, label=k)
    ax2.axhline(100 * MAX_UTILIZATION_TARGET, color="gray", ls="--", label="cap")
    ax2.set_xticks(list(xs), names)
    ax2.set_ylabel("utilization of the ViTCoD plan [%] (MODELLED)")
    ax2.legend(fontsize=8)
    ax2.grid(alpha=0.3, axis="y")
    fig.suptitle("ViTCoD io_stream design per board: throughput and utilization (modelled)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
