"""``make bench``: accuracy, modelled attention cost, measured C-simulation and host throughput, side by side.

Command (from the repository root)::

    .venv/bin/python -m vitcod.bench --run-dir build/demo --out build/bench

writes ``build/bench/bench.json`` (every number with its unit in ``units``; a number that could not
be measured is ``null`` with its reason in ``reasons``), ``build/bench/bench.md`` (the same as tables)
``build/bench/bench.png`` (accuracy and modelled attention latency vs sparsity) and
``build/bench/boards.png`` (modelled throughput and utilization per board).

What is measured and what is modelled - never mixed up, one module each:

* :mod:`.accuracy` - accuracy vs sparsity: read from the run's ``report/accuracy.json`` (measured by
  the model stage).
* :mod:`.modelled` - attention multiplies and latency, ViTCoD engines vs a dense engine with the
  same q.k multipliers: MODELLED by :mod:`vitcod.hls.perf` (no Vitis HLS here), the board fit, and
  the ``make synth`` figures beside the modelled ones where Vitis HLS ran.
* :mod:`.csim` - the multiply COUNTS of the model checked in this same run against the
  C-simulation counters of the compiled engines (``model_counts_match_csim``); the C-simulation of
  the whole network on the test split of the run's own dataset (:func:`vitcod.hls.network_csim.run_csim`) next to
  the QKeras model's ``predict`` on the same images, the C-simulation compile time and the
  compiler's peak memory: MEASURED, in child processes (:mod:`.network_csim_child`,
  :mod:`.engine_compile_child`: their ``getrusage(RUSAGE_CHILDREN)`` sees only the compilers).
* :mod:`.boards` - per board (pynq-z2, zcu104, kv260): the io_stream design planned for the board
  by :mod:`vitcod.hls.planner` (cap 80%, board.tcl clock) and the same model with dense attention
  planned on the same budget: fits, utilization, images/s, latency, bottleneck, DSP efficiency,
  ViTCoD / dense throughput (``bench.json`` ``boards``, ``boards.png``): MODELLED. bench.md also
  holds the model vs published hls4ml reports (:mod:`vitcod.hls.perf.published`).
* :mod:`.dataset` - the images every measured figure is taken on: the test split of the dataset the
  run was trained on (``dense/metrics.json``: the digits for ``build/demo``, MNIST for
  ``build/mnist197``; the digits for a run folder that records none), and the model's token count
  (``bench.json`` ``dataset``, ``tokens``).
* :mod:`.packing` - host quantize+pack and unpack (:mod:`vitcod.host`) next to a plain
  ``np.copyto`` of the same bytes: MEASURED, best of several repeats, in this process.
* :mod:`.figures` - units, targets and the headline figures; :mod:`.report` - bench.md and the
  plot; :mod:`.run` - :func:`run_bench`, which runs them all; :mod:`.__main__` - the command line.

Ratios are only formed between numbers from the same run on the same machine.
"""

from __future__ import annotations

from typing import Any

__all__ = ["run_bench"]


def __getattr__(name: str) -> Any:
    """``run_bench`` on first use: the child programs import this package and need none of it."""
    if name == "run_bench":
        from .run import run_bench

        return run_bench
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
