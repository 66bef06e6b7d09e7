"""Command line of ``make bench``: ``python -m vitcod.bench --run-dir build/demo --out build/bench``.

Runs :func:`vitcod.bench.run.run_bench`, prints the figures vs their targets and where the files went.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Sequence

from ..hls.perf import Assumptions
from .dataset import describe
from .figures import BENCH_JSON, BENCH_MD, BENCH_PNG, BOARDS_PNG
from .report import fmt
from .run import run_bench

PROG = "python -m vitcod.bench"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="make bench: accuracy, modelled attention cost, "
                                     "measured C-simulation and host throughput, side by side.")
    parser.add_argument("--run-dir", type=Path, default=Path("build/demo"))
    parser.add_argument("--out", type=Path, default=Path("build/bench"))
    parser.add_argument("--counter-stages", default=None,
                        help="comma-separated stages to check against the C-simulation counters (default: all)")
    parser.add_argument("--no-whole-csim", action="store_true", help="skip the whole-network C-simulation")
    parser.add_argument("--no-engine-probe", action="store_true", help="skip the engine compile/throughput probe")
    parser.add_argument("--repeats", type=int, default=30, help="best-of repeats of the packing timings")
    parser.add_argument("--reuse-factor", type=int, default=1)
    parser.add_argument("--lane-budget", type=int, default=4)
    parser.add_argument("--clock-mhz", type=float, default=100.0)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("-v", "--verbose", action="store_true")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    if not args.run_dir.is_dir():
        print(f"error: run directory {args.run_dir} not found (make demo first)", file=sys.stderr)
        return 2
    a = Assumptions(reuse_factor=args.reuse_factor, lane_budget=args.lane_budget, clock_mhz=args.clock_mhz)
    stages = args.counter_stages.split(",") if args.counter_stages else None
    bench = run_bench(args.run_dir, args.out, assumptions=a, counter_stages=stages, whole_csim=not args.no_whole_csim,
                      engine_probe=not args.no_engine_probe, packing_repeats=args.repeats, jobs=args.jobs,
                      command=" ".join([PROG] + list(argv if argv is not None else sys.argv[1:])))
    print(f"dataset: {describe(bench['dataset'])}")
    for key, f in bench["figures"].items():
        met = "n/a" if f["met"] is None else ("met" if f["met"] else "NOT met")
        print(f"{key:36s} {fmt(f['value']):>12s}  target {f['target']:8s} {met} ({f['kind']})")
    for board, e in bench.get("boards", {}).items():
        print(f"{board:8s} {'fits' if e['fits'] else 'does NOT fit'} (max {e['max_utilization']:.0%}), "
              f"{e['images_per_s']:.0f} images/s at {e['clock_mhz']:g} MHz, latency {e['latency_us']:.1f} us, "
              f"bottleneck {e['bottleneck']}, ViTCoD/dense {e['vitcod_vs_dense_throughput']:.2f} (modelled)")
    print(f"wrote {args.out / BENCH_JSON}, {args.out / BENCH_MD}, {args.out / BENCH_PNG}, {args.out / BOARDS_PNG}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
