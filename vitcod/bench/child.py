"""How the bench talks to its child programs: one JSON argument in, one ``BENCH_JSON:`` line out.

Compile times and compiler peak memory are measured in a fresh Python process, so that its
``getrusage(RUSAGE_CHILDREN)`` sees only the compilers that process started. The child programs
are the modules :mod:`vitcod.bench.engine_compile_child` and
:mod:`vitcod.bench.network_csim_child`, run as ``python -m <module> '<json arguments>'``; each
prints its result as one line ``BENCH_JSON:<json>`` on stdout (anything else they print, e.g.
hls4ml's log, is ignored).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any, Sequence

RESULT_PREFIX = "BENCH_JSON:"


class ChildArgumentError(ValueError):
    """A child program was not given exactly one JSON object as its argument."""


def parse_child_args(argv: Sequence[str], required: Sequence[str]) -> dict[str, Any]:
    """The child's JSON argument, checked to hold the ``required`` keys."""
    if len(argv) != 1:
        raise ChildArgumentError(f"expected one JSON object as the only argument, got {len(argv)} arguments")
    args = json.loads(argv[0])
    if not isinstance(args, dict):
        raise ChildArgumentError(f"expected a JSON object, got {type(args).__name__}")
    missing = [key for key in required if key not in args]
    if missing:
        raise ChildArgumentError(f"the JSON argument lacks {missing}; expected keys {list(required)}")
    return args


def print_result(result: dict[str, Any]) -> None:
    """Print the child's result as the one line the parent reads."""
    print(RESULT_PREFIX + json.dumps(result), flush=True)


def run_child(module: str, args: dict[str, Any], timeout: float,
              env: dict[str, str] | None = None) -> tuple[dict | None, str | None]:
    """Run ``python -m module '<args as JSON>'``; ``(its result, None)`` or ``(None, why not)``."""
    cmd = [sys.executable, "-m", module, json.dumps(args)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})})
    except subprocess.TimeoutExpired:
        return None, f"timed out after {timeout:.0f} s"
    for line in proc.stdout.splitlines()[::-1]:
        if line.startswith(RESULT_PREFIX):
            return json.loads(line[len(RESULT_PREFIX):]), None
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-6:]
    return None, f"exit code {proc.returncode}: " + " | ".join(tail)
