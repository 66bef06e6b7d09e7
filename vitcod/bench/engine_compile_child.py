"""Child program of the bench: build one attention engine's C-simulation library, timed.

Run by :func:`vitcod.bench.csim.measure_engine_csim` in a fresh process with an empty
``VITCOD_CSIM_CACHE``, so the g++ run is a real build and ``getrusage(RUSAGE_CHILDREN)`` is its
peak memory::

    python -m vitcod.bench.engine_compile_child \\
        '{"run_dir": "/abs/build/demo", "stage": "sparse_0.90", "assumptions": {...}}'

``assumptions`` is :meth:`vitcod.hls.perf.Assumptions.to_dict`. Prints
``BENCH_JSON:{"engine": ..., "compile_seconds": ..., "peak_kb": ...}`` (see :mod:`.child`).
"""

from __future__ import annotations

import resource
import sys
import time
from typing import Any, Sequence

from .child import parse_child_args, print_result


def compile_first_engine(run_dir: str, stage: str, assumptions: dict[str, Any]) -> dict[str, Any]:
    """Build the first attention engine of the stage's modelled design; its name, seconds, g++ peak KiB."""
    from ..hls import engine_csim
    from ..hls.perf import Assumptions, estimate_run

    a = dict(assumptions, attention_types=tuple(tuple(x) for x in assumptions["attention_types"]))
    engine = estimate_run(run_dir, stage, Assumptions(**a)).attention_engines[0]
    t0 = time.perf_counter()
    engine_csim.build(engine)
    compile_s = time.perf_counter() - t0
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {"engine": engine.name, "compile_seconds": compile_s, "peak_kb": peak_kb}


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_child_args(sys.argv[1:] if argv is None else argv, ("run_dir", "stage", "assumptions"))
    print_result(compile_first_engine(args["run_dir"], args["stage"], args["assumptions"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
