"""The folding planner: the fastest io_stream design that fits a board (every figure MODELLED).

Where this fits in the flow::

    build/<run>/<stage>/{config.json, masks.npz}  +  overlay/boards/<board>/board.tcl (part, clock, totals)
      -> plan_design()   for every process of the design (vitcod.hls.perf.stream.design_slots) its
                         options: the legal hls4ml ReuseFactors of a Conv/Dense layer
                         (vitcod.hls.plan.legal_reuse_factors), a ReuseFactor of our LayerNorm /
                         embedding / encoder / decoder kernels, the lanes of each attention layer
                         (dense_unroll, sparse_lanes, and softmax_lanes / pv_lanes when this tree's
                         AttentionEngineConfig has them) - each option a modelled Stage
      -> Plan            (vitcod.hls.plan_file) the knobs, the modelled design, written as JSON

Search: the design's interval is its slowest stage's, and resources add up. For a target interval T
every stage takes its cheapest option whose interval is <= T (cost = its resources as fractions of
the budget, summed with weights); T is the smallest candidate (an interval some option has) at
which the sum stays under the cap for every resource. When one resource overflows, its weight is
raised and the choice repeated (a few rounds), so a DSP-poor board trades DSPs for LUT multipliers
where the options allow it. Binary search over the sorted candidates (feasibility is monotone in T:
a larger T only adds cheaper options).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Mapping, Sequence

from ..model import run_layout
from .perf.resources import RESOURCE_KEYS, STORAGES, Assumptions, Resources, total
from .perf.stream import Slot, StreamEstimate, assemble, attention_knob_names, design_slots, flat_slots
from .perf.stream_layers import Stage
from .plan import default_reuse, legal_reuse_factors
from .plan_file import Plan

DEFAULT_CAP = 0.8
#: ReuseFactors tried for our per-token kernels (any positive integer is legal for them).
OUR_REUSE = (1, 2, 3, 4, 5, 6, 8, 10, 12, 16, 20, 24, 32, 40, 48, 64, 96, 128, 192, 256)
#: Lanes tried per attention knob.
LANES = {"dense_unroll": (1, 2, 3, 4, 6, 8, 12, 16), "sparse_lanes": (1, 2, 3, 4, 6, 8, 12, 16),
         "softmax_lanes": (1, 2, 4, 8, 16), "pv_lanes": (1, 2, 4, 8, 16)}
WEIGHT_ROUNDS = 6


@dataclass(frozen=True)
class Budget:
    """What a board offers the design: totals, the cap per resource, the clock."""

    board: str
    part: str
    clock_mhz: float
    available: dict
    cap: dict

    def limit(self, key: str) -> float:
        return self.available[key] * self.cap[key]


def board_budget(board: str, cap: float | Mapping[str, float] = DEFAULT_CAP, clock_mhz: float | None = None) -> Budget:
    """The budget of ``overlay/boards/<board>/board.tcl`` (part, clock, DSP/BRAM18K/LUT/FF totals).

    A board.tcl without ``board(uram)`` (a part without UltraRAM) offers none.

    Raises:
        ValueError: a cap outside (0, 1] or naming an unknown resource. vitcod.overlay.config.ConfigError:
            an unknown board.
    """
    from ..overlay.config import BoardSpec

    spec = BoardSpec.load(board)
    caps = dict.fromkeys(RESOURCE_KEYS, cap) if isinstance(cap, (int, float)) else {**dict.fromkeys(RESOURCE_KEYS, DEFAULT_CAP), **cap}
    unknown = sorted(set(caps) - set(RESOURCE_KEYS))
    if unknown:
        raise ValueError(f"cap names unknown resource(s) {unknown}; known: {list(RESOURCE_KEYS)}")
    for k, v in caps.items():
        if not 0 < float(v) <= 1:
            raise ValueError(f"cap of {k} must be in (0, 1], got {v}")
    return Budget(board=board, part=spec.part, clock_mhz=float(clock_mhz or spec.clock_mhz),
                  available={k: int(spec.resources[k]) for k in RESOURCE_KEYS}, cap={k: float(v) for k, v in caps.items()})


def slot_options(slot: Slot, storage: tuple[str, str] = ("auto", "auto")) -> list[Stage]:
    """Every option the planner considers for one process (a Stage per knob setting); an attention
    layer's token buffers and score sets in ``storage`` (a pair of :data:`STORAGES`)."""
    if slot.kind == "attention":
        names = attention_knob_names()
        g_max, trips = slot.engine.n_global_max, max(p.nnz_sparse for p in slot.engine.heads)
        ranges = {"dense_unroll": [u for u in LANES["dense_unroll"] if u <= max(1, g_max)],
                  "sparse_lanes": [l for l in LANES["sparse_lanes"] if l <= max(1, trips)]}
        ranges.update({k: list(LANES[k]) for k in names if k not in ranges})
        out = []
        for combo in itertools.product(*(ranges[k] for k in names)):
            try:
                out.append(slot.build({**dict(zip(names, combo)), "buffer_storage": storage[0],
                                       "score_storage": storage[1]}))
            except ValueError:  # a lane split the engine rejects (e.g. more lanes than work)
                continue
        return out
    if slot.shape is not None:
        return [slot.build({"reuse_factor": rf}) for rf in legal_reuse_factors(*slot.shape)]
    if slot.default:
        return [slot.build({"reuse_factor": rf}) for rf in OUR_REUSE]
    return [slot.build({})]


def _cost(r: Resources, budget: Budget, weights: Mapping[str, float]) -> float:
    return sum(weights[k] * getattr(r, k) / max(budget.limit(k), 1e-9) for k in RESOURCE_KEYS)


def _choose(options: dict[str, list[Stage]], t: int, budget: Budget, weights) -> dict[str, Stage] | None:
    chosen = {}
    for name, opts in options.items():
        ok = [s for s in opts if s.interval <= t]
        if not ok:
            return None
        chosen[name] = min(ok, key=lambda s: (_cost(s.resources, budget, weights), s.interval))
    return chosen


def _over_cap(r: Resources, budget: Budget) -> list[str]:
    return [k for k in RESOURCE_KEYS if getattr(r, k) > budget.limit(k)]


def _over_ratio(r: Resources, budget: Budget) -> float:
    """The largest use / cap of ``r`` (> 1: over the cap; a resource the board lacks counts only when used)."""
    return max((getattr(r, k) / budget.limit(k)) if budget.limit(k) > 0 else (math.inf if getattr(r, k) else 0.0)
               for k in RESOURCE_KEYS)


def _least_over(options, t: int, budget: Budget, fixed: Resources) -> dict[str, Stage] | None:
    """Each stage's cheapest option at interval ``t``, the weights of the resources over the cap raised
    round by round (module docstring): the first choice that fits, else the round's choice whose
    largest use / cap is least (None: some stage has no option this fast)."""
    weights = dict.fromkeys(RESOURCE_KEYS, 1.0)
    best, best_ratio = None, math.inf
    for _ in range(WEIGHT_ROUNDS):
        chosen = _choose(options, t, budget, weights)
        if chosen is None:
            return None
        used = total(s.resources for s in chosen.values()) + fixed
        ratio = _over_ratio(used, budget)
        if ratio < best_ratio:
            best, best_ratio = chosen, ratio
        over = _over_cap(used, budget)
        if not over:
            break
        for k in over:
            weights[k] *= 4.0
    return best


def _feasible(options, t: int, budget: Budget, fixed: Resources) -> dict[str, Stage] | None:
    """:func:`_least_over`'s choice when it fits under the cap, else None."""
    chosen = _least_over(options, t, budget, fixed)
    if chosen is None or _over_cap(total(s.resources for s in chosen.values()) + fixed, budget):
        return None
    return chosen


def search(config, slots: Sequence, budget: Budget, a: Assumptions, *, autoencoder: bool = True,
           storage: tuple[str, str] = ("auto", "auto")) -> tuple[dict[str, dict], StreamEstimate]:
    """The knobs of the fastest design under the budget with the attention's token buffers and
    scores in ``storage``, and that design.

    When nothing fits, the knobs are the cheapest options (largest interval) and the design says by
    how much it is over (the Plan's ``fits`` is False).
    """
    flat = flat_slots(slots)
    options = {s.name: slot_options(s, storage) for s in flat}
    fifo = assemble(config, a, slots, {}, autoencoder=autoencoder).fifo_resources  # knob-independent
    candidates = sorted({s.interval for opts in options.values() for s in opts})
    floor = max(min(s.interval for s in opts) for opts in options.values())
    candidates = [t for t in candidates if t >= floor]
    lo, hi, best = 0, len(candidates) - 1, None
    while lo <= hi:
        mid = (lo + hi) // 2
        chosen = _feasible(options, candidates[mid], budget, fifo)
        if chosen is not None:
            best, hi = chosen, mid - 1
        else:
            lo = mid + 1
    if best is None:  # nothing fits: the cheapest design, reported as not fitting
        weights = dict.fromkeys(RESOURCE_KEYS, 1.0)
        best = {name: min(opts, key=lambda s: (_cost(s.resources, budget, weights), s.interval))
                for name, opts in options.items()}
    knobs = {name: dict(st.knobs) for name, st in best.items() if st.knobs}
    return knobs, assemble(config, a, slots, knobs, autoencoder=autoencoder)


def buffer_storages(budget: Budget) -> tuple[tuple[str, str], ...]:
    """(token buffers, score sets) storages the planner tries on this board (URAM only where the
    part has it): both in one storage, or the scores - smaller, read by every walk - in LUTRAM or
    URAM beside token buffers elsewhere."""
    have = [s for s in STORAGES if s != "uram" or budget.available.get("uram", 0) > 0]
    mixed = [(t, sc) for t in have if t != "uram" for sc in ("lutram", "uram") if sc in have and sc != t]
    return tuple((s, s) for s in have) + tuple(mixed)


def _storage_pairs(storages: Sequence[tuple[str, str] | str] | None, budget: Budget) -> list[tuple[str, str]]:
    return [(s, s) if isinstance(s, str) else tuple(s) for s in (storages or buffer_storages(budget))]


def plan_design(config, masks, budget: Budget, a: Assumptions = Assumptions(), *, autoencoder: bool = True,
                stage: str | None = None, run_dir: str | None = None, attention: str = "vitcod",
                storages: Sequence[tuple[str, str] | str] | None = None) -> Plan:
    """Plan the io_stream design of ``config`` (+ ``masks``; None = dense attention) for ``budget``.

    One search per storage of the attention's token buffers and score sets (``storages``: pairs, or
    one name for both; default :func:`buffer_storages`; one pair for the whole design, as the firmware
    binds it); the plan is the fastest design that fits (ties: the lower largest utilization), else
    the cheapest that does not.
    """
    a = replace(a, clock_mhz=budget.clock_mhz)
    slots = design_slots(config, masks, a, autoencoder=autoencoder, default_rf=default_reuse)
    plans = []
    for pair in _storage_pairs(storages, budget):
        knobs, est = search(config, slots, budget, a, autoencoder=autoencoder, storage=pair)
        plans.append(to_plan(est, budget, knobs, stage=stage, run_dir=run_dir, attention=attention,
                             attention_storage=pair[0], score_storage=pair[1]))
    return min(plans, key=lambda p: (not p.fits, p.modelled["interval_cycles"], p.modelled["max_utilization"]))


def to_plan(est: StreamEstimate, budget: Budget, knobs: dict, *, stage=None, run_dir=None,
            attention: str = "vitcod", attention_storage: str = "auto", score_storage: str = "auto") -> Plan:
    """A :class:`Plan` of a modelled design under a budget."""
    from ..overlay.config import utilization_of

    r = est.resources.as_dict()
    util = {k: utilization_of(r[k], budget.available[k]) for k in RESOURCE_KEYS}
    fits = all(r[k] <= budget.limit(k) for k in RESOURCE_KEYS)
    modelled = {"label": "modelled", "interval_cycles": est.interval, "latency_cycles": est.latency,
                "latency_us": est.latency_us, "images_per_s": est.throughput, "bottleneck": est.bottleneck,
                "resources": r, "utilization": util, "max_utilization": max(util.values()), "fits": fits,
                "over": {k: r[k] - math.floor(budget.limit(k)) for k in RESOURCE_KEYS if r[k] > budget.limit(k)},
                "dsp_efficiency": est.dsp_efficiency(), "multiplies": est.multiplies,
                "fifo_resources": est.fifo_resources.as_dict(), "attention_knobs": list(attention_knob_names())}
    stages = [{"name": s.name, "kind": s.kind, "knobs": dict(s.knobs), "interval": s.interval,
               **s.resources.as_dict()} for s in est.stages]
    return Plan(board=budget.board, part=budget.part, clock_mhz=budget.clock_mhz, cap=dict(budget.cap),
                available=dict(budget.available), knobs=knobs, modelled=modelled, stage=stage,
                run_dir=None if run_dir is None else str(run_dir), attention=attention, stages=stages,
                attention_storage=attention_storage, score_storage=score_storage)


def load_stage(run_dir: str | Path, stage: str = run_layout.DEFAULT_HLS_STAGE):
    """(ViTConfig, mask artifact or None, has auto-encoder) of ``build/<run>/<stage>`` (no TensorFlow).

    Raises:
        FileNotFoundError: no config.json in the stage folder.
    """
    from ..model.mask_artifact import load_mask_artifact
    from .perf.estimate import load_config

    folder = run_layout.stage_dir(run_dir, stage)
    cfg = folder / run_layout.CONFIG_FILE
    if not cfg.is_file():
        raise FileNotFoundError(f"no {cfg}: expected a trained stage folder (python -m vitcod ...)")
    config = load_config(cfg)
    masks_path = folder / run_layout.MASKS_FILE
    masks = load_mask_artifact(masks_path, num_layers=config.depth, num_heads=config.num_heads,
                               num_tokens=config.num_tokens) if masks_path.is_file() else None
    return config, masks, run_layout.stage_has_autoencoder(stage)


def plan_run(run_dir: str | Path, board: str, *, stage: str = run_layout.DEFAULT_HLS_STAGE,
             cap: float | Mapping[str, float] = DEFAULT_CAP, dense: bool = False,
             a: Assumptions = Assumptions(), storages: Sequence[tuple[str, str] | str] | None = None) -> Plan:
    """:func:`plan_design` for a run stage; ``dense=True`` plans the same model with dense attention
    (every key global: the baseline the bench compares against); ``storages``: as :func:`plan_design`."""
    config, masks, ae = load_stage(run_dir, stage)
    return plan_design(config, None if dense else masks, board_budget(board, cap), a, autoencoder=ae, stage=stage,
                       run_dir=str(run_dir), attention="dense" if dense else "vitcod", storages=storages)


@dataclass(frozen=True)
class TargetNeeds:
    """What a throughput target asks of a board (MODELLED, the planner's own search).

    ``interval_cycles`` is the largest interval that meets ``images_per_s`` at the board's clock.
    Either some stages cannot be that fast with any knob (``too_slow``: their fastest option's
    interval), or ``plan`` is the cheapest design the search finds with every stage that fast: its
    ``fits`` says whether it stays under the cap, its ``over`` by how much it does not. The search
    is a heuristic (each stage's cheapest option under weighted resource costs), so "over" means
    "over for the cheapest design found", the figure to hold a missed target against.
    """

    board: str
    clock_mhz: float
    images_per_s: float
    interval_cycles: int
    too_slow: dict
    plan: Plan | None

    @property
    def reachable(self) -> bool:
        return not self.too_slow and self.plan is not None and self.plan.fits

    def top_users(self, resource: str, n: int = 3) -> list[tuple[str, int]]:
        """The ``n`` stages of :attr:`plan` using most of ``resource`` (the FIFOs counted as one)."""
        if self.plan is None:
            return []
        users = [(s["name"], s.get(resource, 0)) for s in self.plan.stages]
        users.append(("FIFOs", self.plan.modelled["fifo_resources"].get(resource, 0)))
        return sorted(users, key=lambda u: -u[1])[:n]

    def summary(self) -> str:
        head = (f"{self.images_per_s:g} images/s on {self.board} needs an interval <= {self.interval_cycles} cycles "
                f"at {self.clock_mhz:g} MHz")
        if self.too_slow or self.plan is None:
            return head + "; no knob makes " + ", ".join(
                f"{name} that fast (its fastest option: {t} cycles)" for name, t in self.too_slow.items())
        m = self.plan.modelled
        used = ", ".join(f"{k} {m['utilization'][k]:.0%}" for k in RESOURCE_KEYS if m["resources"][k])
        text = (f"{head}; the cheapest design found at that interval (attention buffers {self.plan.attention_storage} / "
                f"scores {self.plan.score_storage}) uses {used}")
        if self.plan.fits:
            return text + " - under the cap"
        worst = max(m["over"], key=lambda k: m["utilization"][k] / self.plan.cap[k])
        users = ", ".join(f"{n} {v}" for n, v in self.top_users(worst))
        return (text + " - over the cap on " + ", ".join(f"{k} (+{v})" for k, v in m["over"].items())
                + f"; most {worst} in {users}")

    def to_dict(self) -> dict:
        return {"label": "modelled", "board": self.board, "clock_mhz": self.clock_mhz,
                "images_per_s": self.images_per_s, "interval_cycles": self.interval_cycles,
                "reachable": self.reachable, "too_slow": dict(self.too_slow),
                "fits": None if self.plan is None else self.plan.fits,
                "utilization": None if self.plan is None else self.plan.modelled["utilization"],
                "over": None if self.plan is None else self.plan.modelled["over"],
                "knobs": None if self.plan is None else self.plan.knobs, "summary": self.summary()}


def needs_for_target(config, masks, budget: Budget, images_per_s: float, a: Assumptions = Assumptions(), *,
                     autoencoder: bool = True, stage: str | None = None, run_dir: str | None = None,
                     attention: str = "vitcod", storages: Sequence[tuple[str, str] | str] | None = None) -> TargetNeeds:
    """What ``images_per_s`` asks of ``budget`` (:class:`TargetNeeds`), over the same storages as
    :func:`plan_design`; the design kept is the one whose largest use / cap is least.

    Raises:
        ValueError: ``images_per_s`` not > 0.
    """
    if not images_per_s > 0:
        raise ValueError(f"images_per_s must be > 0, got {images_per_s!r}")
    a = replace(a, clock_mhz=budget.clock_mhz)
    t = math.floor(budget.clock_mhz * 1e6 / images_per_s)
    slots = design_slots(config, masks, a, autoencoder=autoencoder, default_rf=default_reuse)
    flat = flat_slots(slots)
    fifo = assemble(config, a, slots, {}, autoencoder=autoencoder).fifo_resources
    fastest: dict[str, int] = {}
    best, best_ratio = None, math.inf
    for pair in _storage_pairs(storages, budget):
        options = {s.name: slot_options(s, pair) for s in flat}
        for name, opts in options.items():
            fastest[name] = min(fastest.get(name, math.inf), min(o.interval for o in opts))
        chosen = _least_over(options, t, budget, fifo)
        if chosen is None:
            continue
        knobs = {name: dict(st.knobs) for name, st in chosen.items() if st.knobs}
        est = assemble(config, a, slots, knobs, autoencoder=autoencoder)
        ratio = _over_ratio(est.resources, budget)
        if ratio < best_ratio:
            best, best_ratio = to_plan(est, budget, knobs, stage=stage, run_dir=run_dir, attention=attention,
                                       attention_storage=pair[0], score_storage=pair[1]), ratio
    too_slow = {n: int(v) for n, v in fastest.items() if v > t} if best is None else {}
    return TargetNeeds(board=budget.board, clock_mhz=budget.clock_mhz, images_per_s=float(images_per_s),
                       interval_cycles=t, too_slow=too_slow, plan=best)


def needs_run(run_dir: str | Path, board: str, images_per_s: float, *, stage: str = run_layout.DEFAULT_HLS_STAGE,
              cap: float | Mapping[str, float] = DEFAULT_CAP, dense: bool = False,
              a: Assumptions = Assumptions()) -> TargetNeeds:
    """:func:`needs_for_target` for a run stage (``dense``: as :func:`plan_run`)."""
    config, masks, ae = load_stage(run_dir, stage)
    return needs_for_target(config, None if dense else masks, board_budget(board, cap), images_per_s, a,
                            autoencoder=ae, stage=stage, run_dir=str(run_dir),
                            attention="dense" if dense else "vitcod")
