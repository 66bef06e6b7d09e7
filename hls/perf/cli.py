"""Command line of the performance model: ``python -m vitcod.hls.perf {estimate,fit}``.

    python -m vitcod.hls.perf estimate --run-dir build/demo [--stage sparse_0.90] [--json]
    python -m vitcod.hls.perf fit --run-dir build/demo --stage sparse_0.90 --board pynq-z2 [--cap 0.8]
                                  [--plan plan.json] [--io-type io_stream]

``estimate`` prints the modelled table, the attention summary and the fit on every board (or the
whole estimate as JSON). ``fit`` is what ``make bitstream`` runs first: exit 0 when the modelled
design fits BOARD, 3 when it does not, 2 on a missing stage or an invalid argument. For the
io_stream design (the default) the design is the board's plan (``--plan``, else planned now by
:mod:`vitcod.hls.planner` under ``--cap``) and it fits when every resource stays under the cap; for
io_parallel it is the old single-ReuseFactor estimate against ``--max-utilization``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

import numpy as np

from ...model import run_layout
from .estimate import estimate_run
from .fit import fit_report, overlay_config, require_fit
from .resources import Assumptions


def _json_default(value: object) -> object:
    """JSON for the numpy scalars and paths an estimate may hold."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (0 ok, 2 bad input, 3 does not fit)."""
    parser = argparse.ArgumentParser(prog="python -m vitcod.hls.perf",
                                     description="Modelled cycles/multiplies/resources of the generated design.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, help_ in (("estimate", "print the modelled estimate of a run stage"),
                        ("fit", "exit 3 if the modelled design does not fit BOARD")):
        p = sub.add_parser(name, help=help_)
        p.add_argument("--run-dir", required=True, type=Path)
        p.add_argument("--stage", default=run_layout.DEFAULT_HLS_STAGE)
        p.add_argument("--reuse-factor", type=int, default=1)
        p.add_argument("--clock-mhz", type=float, default=100.0)
        p.add_argument("--lane-budget", type=int, default=4)
        p.add_argument("--max-utilization", type=float, default=1.0)
        p.add_argument("--json", action="store_true")
        if name == "fit":
            p.add_argument("--board", required=True)
            p.add_argument("--io-type", choices=("io_stream", "io_parallel"), default="io_stream")
            p.add_argument("--cap", type=float, default=0.8, help="io_stream: fraction of every resource")
            p.add_argument("--plan", type=Path, default=None, help="io_stream: a plan file (default: plan now)")
    args = parser.parse_args(argv)
    try:
        return _run(args)
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    a = Assumptions(reuse_factor=args.reuse_factor, clock_mhz=args.clock_mhz, lane_budget=args.lane_budget)
    if args.command == "fit" and args.io_type == "io_stream":
        return _fit_stream(args)
    if args.command == "fit":
        oc = overlay_config()
        try:
            entry = require_fit(args.run_dir, args.board, stage=args.stage, max_utilization=args.max_utilization,
                                assumptions=a)
        except oc.ResourceFitError as err:
            print(f"error: {err}", file=sys.stderr)
            return 3
        util = ", ".join(f"{k} {v:.0%}" for k, v in entry["utilization"].items())
        print(f"{args.board}: fits (modelled: {util})")
        return 0
    est = estimate_run(args.run_dir, args.stage, a)
    if args.json:
        print(json.dumps(est.to_dict(), indent=1, default=_json_default))
        return 0
    print(f"{args.run_dir}/{args.stage}: MODELLED at {a.clock_mhz:g} MHz, ReuseFactor {a.reuse_factor}")
    print(est.table())
    s = est.attention_summary()
    print(f"attention: {s['vitcod_multiplies']} multiplies vs {s['dense_multiplies']} dense "
          f"({s['mult_ratio']:.2f}x fewer), {s['vitcod_cycles']} vs {s['dense_cycles']} cycles "
          f"({s['speedup']:.2f}x) [modelled]")
    for board, entry in fit_report(est, max_utilization=args.max_utilization).items():
        print(f"{board}: {'fits' if entry['fits'] else 'does NOT fit'} "
              + ", ".join(f"{k} {v:.0%}" for k, v in entry["utilization"].items()))
    return 0


def _fit_stream(args: argparse.Namespace) -> int:
    """``fit`` of the io_stream design: the board's plan under the cap (exit 0 / 3)."""
    from ..plan_file import Plan
    from ..planner import plan_run

    if args.plan is not None:
        plan = Plan.read(args.plan)
        if plan.board != args.board:
            raise ValueError(f"{args.plan} is a plan for {plan.board}, not {args.board}")
    else:
        try:
            plan = plan_run(args.run_dir, args.board, stage=args.stage, cap=args.cap)
        except Exception as err:  # an unknown board: vitcod.overlay.config.ConfigError
            if type(err).__name__ == "ConfigError":
                raise ValueError(str(err)) from None
            raise
    m = plan.modelled
    util = ", ".join(f"{k} {v:.0%}" for k, v in m["utilization"].items())
    if not plan.fits:
        fifo = m.get("fifo_resources", {})
        over = ", ".join(f"{k}: {m['resources'][k]} needed ({fifo.get(k, 0)} of them in the stream FIFOs, which no "
                         f"ReuseFactor or lane count shrinks), {int(plan.available[k] * plan.cap[k])} under the cap"
                         for k in m["over"])
        print(f"error: {args.run_dir}/{args.stage}: the io_stream design does not fit {args.board} even at its "
              f"cheapest plan ({over}; modelled: {util}); pick a larger board or a smaller model", file=sys.stderr)
        return 3
    print(f"{args.board}: fits (modelled: {util}; plan: {m['images_per_s']:.0f} images/s at {plan.clock_mhz:g} MHz, "
          f"bottleneck {m['bottleneck']})")
    return 0
