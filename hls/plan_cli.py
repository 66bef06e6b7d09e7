"""Command line of the board planner: ``python -m vitcod.hls.plan --run-dir build/demo --board zcu104``.

    python -m vitcod.hls.plan --run-dir build/demo --board zcu104 [--stage sparse_0.90] [--cap 0.8]
                              [--cap-dsp 0.7 ...] [--dense] [--out plan.json] [--json]
                              [--target-images-per-s 80000]

Plans the io_stream design of the run stage for the board (:mod:`vitcod.hls.planner`), prints the plan
as a table and writes it as JSON next to the HLS project (``build/<run>/hls/<stage>/plan.json``;
``--dense``: ``plan-dense.json``, the dense-attention baseline). With ``--target-images-per-s`` it
also says what that throughput would ask of the board: the interval it needs and the cheapest design
found at that interval, or the stages no knob makes that fast (:class:`~vitcod.hls.planner.TargetNeeds`;
a plan that misses a target says by how much, per resource). Exit 0 when the plan fits under the
cap, 3 when not even the cheapest design does, 2 on bad input.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

from ..model import run_layout
from .perf.resources import RESOURCE_KEYS
from .plan_file import PLAN_FILE
from .planner import DEFAULT_CAP, needs_run, plan_run


def caps(args: argparse.Namespace) -> dict[str, float]:
    """The cap per resource from ``--cap`` and the ``--cap-<resource>`` overrides."""
    out = dict.fromkeys(RESOURCE_KEYS, args.cap)
    for k in RESOURCE_KEYS:
        v = getattr(args, f"cap_{k}")
        if v is not None:
            out[k] = v
    return out


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m vitcod.hls.plan", description=__doc__.split("\n\n")[0])
    p.add_argument("--run-dir", required=True, type=Path)
    p.add_argument("--stage", default=run_layout.DEFAULT_HLS_STAGE)
    p.add_argument("--board", required=True)
    p.add_argument("--cap", type=float, default=DEFAULT_CAP, help="fraction of every resource the design may use")
    for k in RESOURCE_KEYS:
        p.add_argument(f"--cap-{k.replace('_', '-')}", dest=f"cap_{k}", type=float, default=None,
                       help=f"fraction of {k} (overrides --cap)")
    p.add_argument("--dense", action="store_true", help="plan the dense-attention baseline (every key global)")
    p.add_argument("--out", type=Path, default=None, help="plan file (default <run>/hls/<stage>/plan.json)")
    p.add_argument("--json", action="store_true", help="print the plan as JSON instead of the table")
    p.add_argument("--target-images-per-s", type=float, default=None,
                   help="also say what this throughput would need on the board (modelled)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        plan = plan_run(args.run_dir, args.board, stage=args.stage, cap=caps(args), dense=args.dense)
        needs = None if args.target_images_per_s is None else needs_run(
            args.run_dir, args.board, args.target_images_per_s, stage=args.stage, cap=caps(args), dense=args.dense)
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except Exception as err:  # an unknown board (vitcod.overlay.config.ConfigError)
        if type(err).__name__ == "ConfigError":
            print(f"error: {err}", file=sys.stderr)
            return 2
        raise
    out = args.out or run_layout.hls_project_dir(args.run_dir, args.stage) / (
        "plan-dense.json" if args.dense else PLAN_FILE)
    plan.write(out)
    print(json.dumps(plan.to_dict(), indent=1) if args.json else plan.table())
    if needs is not None:
        print(("target met: " if plan.modelled["images_per_s"] >= needs.images_per_s else "target NOT met: ")
              + needs.summary() + " (modelled)")
    print(f"wrote {out}")
    return 0 if plan.fits else 3


if __name__ == "__main__":
    sys.exit(main())
