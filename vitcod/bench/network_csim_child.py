"""Child program of the bench: the whole network's C-simulation on the test split, and QKeras predict.

Run by :func:`vitcod.bench.csim.measure_whole_csim` in a fresh process, so that
``getrusage(RUSAGE_CHILDREN)`` is the peak memory of the compiler hls4ml starts::

    python -m vitcod.bench.network_csim_child \\
        '{"run_dir": "/abs/build/demo", "stage": "sparse_0.90", "out_dir": "/abs/build/bench/hls/sparse_0.90"}'

Converts and compiles the stage with :func:`vitcod.hls.network_csim.run_csim` (into ``out_dir``)
on the test split of the run's own dataset (:mod:`.dataset`), then times the QKeras model's ``predict`` on the same images (first call and best warm call).
Prints ``BENCH_JSON:{...}`` with the C-simulation report's figures (see :mod:`.child`).
"""

from __future__ import annotations

import resource
import sys
import time
from typing import Any, Sequence

from .child import parse_child_args, print_result

#: Fields of the C-simulation report the bench keeps.
REPORT_FIELDS = ("samples", "keras_accuracy", "csim_accuracy", "top1_agreement", "max_abs_output_error",
                 "compile_seconds", "csim_seconds", "csim_seconds_per_image", "convert_seconds", "report_path",
                 "project_dir")
PREDICT_CALLS = 3
"""QKeras predict calls: the first also traces the graph; the best of the others is the warm time."""


def csim_and_predict(run_dir: str, stage: str, out_dir: str) -> dict[str, Any]:
    """C-simulate the stage on the test split of the run's own dataset (:func:`.dataset.load_bench_dataset`:
    the digits for the demo, MNIST for mnist197), then time QKeras predict on the same images."""
    from ..hls.network_csim import run_csim
    from ..model.run_layout import stage_dir
    from ..model.storage import load_model
    from .dataset import load_bench_dataset

    data, _source = load_bench_dataset(run_dir)
    report = run_csim(run_dir, stage, out_dir=out_dir, trace_samples=0, data=data, io_type="io_stream")
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    model, _ = load_model(report.get("model_dir") or str(stage_dir(run_dir, stage)))
    times = []
    for _ in range(PREDICT_CALLS):
        t0 = time.perf_counter()
        model.predict(data.x_test, verbose=0, batch_size=64)
        times.append(time.perf_counter() - t0)
    keep = {k: report.get(k) for k in REPORT_FIELDS}
    keep.update(dataset=data.name, compiler_peak_kb=peak_kb, keras_predict_first_seconds=times[0],
                keras_predict_seconds=min(times[1:]))
    return keep


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_child_args(sys.argv[1:] if argv is None else argv, ("run_dir", "stage", "out_dir"))
    print_result(csim_and_predict(args["run_dir"], args["stage"], args["out_dir"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
