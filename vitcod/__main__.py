"""Command line of the flow: ``python -m vitcod <stage> --run-dir build/<run>``.

Each sub-command is one stage: the model stages of :mod:`vitcod.model.pipeline`,
then ``hls``/``csim`` (:mod:`vitcod.hls`); ``demo`` runs them all on the bundled
digits and ends with the host driver (:mod:`vitcod.host`) on an emulated board.
The board-side CLI is ``python -m vitcod.host``; the bitstream flow is
``make bitstream`` (overlay/). The Makefile's targets are thin calls into these.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ banner out of logs

from vitcod.model import run_layout  # standard library only: the CLI stays light until a stage runs

log = logging.getLogger("vitcod")


def _dataset(args):
    from vitcod.model.data import load_dataset

    return load_dataset(args.dataset, seed=args.seed)


def _config(args, data):
    from vitcod.model.config import ViTConfig

    config = ViTConfig.load(args.config) if args.config else ViTConfig()
    if (config.image_size, config.channels) != (data.image_size, data.channels) or \
            config.num_classes != data.num_classes:
        raise SystemExit(
            f"error: config expects {config.image_size}x{config.image_size}x{config.channels} "
            f"images and {config.num_classes} classes, the dataset has "
            f"{data.image_size}x{data.image_size}x{data.channels} and {data.num_classes}; "
            f"pass --config with matching image_size/channels/num_classes")
    return config


def _tune(args, epochs: int | None = None):
    from vitcod.model.pipeline import FineTuneConfig

    return FineTuneConfig(epochs=epochs or args.finetune_epochs, learning_rate=args.finetune_lr,
                          reconstruction_weight=args.reconstruction_weight)


def cmd_train(args) -> dict:
    from vitcod.model.pipeline import train_dense
    from vitcod.model.train import TrainConfig

    data = _dataset(args)
    log.info("%s", data.summary())
    metrics = train_dense(args.run_dir, _config(args, data), data,
                          TrainConfig(epochs=args.epochs, seed=args.seed))
    return {"test_accuracy": metrics["test_accuracy"], "params": metrics["params"],
            "train_seconds": round(metrics["train_seconds"], 2)}


def cmd_evaluate(args) -> dict:
    from vitcod.model.pipeline import evaluate_model
    from vitcod.model.storage import load_model

    data = _dataset(args)
    folder = run_layout.stage_dir(args.run_dir, args.stage)
    model, config = load_model(folder)
    metrics = evaluate_model(model, config, data)
    print(json.dumps({"model": str(folder), **metrics}, indent=2))
    return metrics


def cmd_autoencoder(args) -> dict:
    from vitcod.model.pipeline import train_autoencoder

    epochs = getattr(args, "ae_epochs", None)  # the demo sets both stages' epochs
    metrics = train_autoencoder(args.run_dir, _dataset(args), _tune(args, epochs), args.seed)
    return {"test_accuracy": metrics["test_accuracy"], "qk_bytes_ratio": metrics["qk_bytes_ratio"]}


def cmd_statistics(args) -> None:
    from vitcod.model.pipeline import compute_statistics

    print(compute_statistics(args.run_dir, _dataset(args)))


def cmd_masks(args) -> None:
    from vitcod.model.pipeline import make_masks

    for target in args.sparsity:
        print(make_masks(args.run_dir, target, _threshold(args.global_threshold)))


def cmd_finetune(args) -> list[dict]:
    from vitcod.model.pipeline import finetune_masked

    data = _dataset(args)
    return [finetune_masked(args.run_dir, t, data, _tune(args), args.seed) for t in args.sparsity]


def cmd_report(args) -> None:
    from vitcod.model.pipeline import write_report

    print(write_report(args.run_dir, args.sparsity)["table"])


def cmd_import_masks(args) -> None:
    from vitcod.model.mask_artifact import import_masks

    print(import_masks(args.source, args.convention, args.out, _threshold(args.global_threshold)))


def cmd_hls(args) -> None:
    """Convert a stage with hls4ml + our extension and write the Vitis HLS project (no compile)."""
    from vitcod.hls.convert import convert, write_project

    out = args.out or run_layout.hls_project_dir(args.run_dir, args.stage)
    hls_model = convert(args.run_dir, out, backend=args.backend, part=args.part,
                        clock=args.clock, stage=args.stage)
    print(write_project(hls_model))


def cmd_csim(args) -> dict:
    """Convert, write, compile (g++) and C-simulate the test split; JSON report."""
    from vitcod.hls.network_csim import run_csim

    report = run_csim(args.run_dir, stage=args.stage, backend=args.backend, part=args.part,
                      clock=args.clock)
    print(f"QKeras accuracy {100 * report['keras_accuracy']:.2f}%  |  C-simulation accuracy "
          f"{100 * report['csim_accuracy']:.2f}%  |  top-1 agreement "
          f"{100 * report['top1_agreement']:.2f}%  |  compile {report['compile_seconds']:.0f} s")
    return report


def cmd_host_check(args, network_json: Path) -> dict:
    """Classify the test split through vitcod.host: emulated board vs C-simulation backend."""
    import numpy as np

    from vitcod.host import open_driver

    data = _dataset(args)
    outputs = {}
    for backend in ("csim", "emulated"):
        driver = open_driver(None, backend=backend, network=network_json, max_batch=64)
        outputs[backend] = driver.predict(data.x_test)
    accuracy = float(np.mean(outputs["emulated"].argmax(axis=1) == data.y_test))
    identical = bool(np.array_equal(outputs["emulated"], outputs["csim"]))
    print(f"host API, emulated board: accuracy {100 * accuracy:.2f}%, outputs identical to the "
          f"csim backend: {identical}")
    return {"backend": "emulated", "test_accuracy": accuracy, "identical_to_csim": identical}


def _threshold(text: str):
    """'0.5' -> fraction of N, '3' -> absolute count of query rows."""
    return int(text) if text.isdigit() else float(text)


def cmd_demo(args) -> None:
    """train -> AE -> statistics -> masks -> masked fine-tune -> polarize -> report."""
    from vitcod.model import pipeline

    run_dir = Path(args.run_dir)
    started = time.perf_counter()
    summary_path = run_dir / run_layout.SUMMARY_FILE
    if summary_path.exists():
        summary_path.unlink()  # a fresh demo never mixes with an older run's figures
    dense = cmd_train(args)
    pipeline.update_summary(run_dir, "dense", dense)
    ae_metrics = cmd_autoencoder(args)
    pipeline.update_summary(run_dir, "ae", ae_metrics)
    cmd_statistics(args)
    cmd_masks(args)
    sparse = {m["target_sparsity"]: m for m in cmd_finetune(args)}
    main_target = args.main_sparsity if args.main_sparsity in sparse else args.sparsity[0]
    m = sparse[main_target]
    pipeline.update_summary(run_dir, "sparse", {
        "target_sparsity": m["target_sparsity"], "achieved_sparsity": m["achieved_sparsity"],
        "test_accuracy": m["test_accuracy"],
        "masks": pipeline.repo_relative(run_layout.sparse_dir(run_dir, main_target) / run_layout.MASKS_FILE),
        "all": {f"{t:.2f}": {"achieved_sparsity": v["achieved_sparsity"],
                             "test_accuracy": v["test_accuracy"]} for t, v in sparse.items()}})
    report = pipeline.write_report(run_dir, args.sparsity)
    print("\n" + report["table"])
    args.stage = run_layout.sparse_stage(main_target)
    csim = cmd_csim(args)
    pipeline.update_summary(run_dir, "csim", {
        "test_accuracy": csim["csim_accuracy"], "agreement": csim["top1_agreement"],
        "keras_test_accuracy": csim["keras_accuracy"], "compile_seconds": csim["compile_seconds"],
        "project": pipeline.repo_relative(Path(csim["project_dir"]))})
    pipeline.update_summary(run_dir, "host", cmd_host_check(args, Path(csim["network_json"])))
    print(f"\nsummary: {summary_path}  ({time.perf_counter() - started:.0f} s)")
    print(json.dumps(json.loads(summary_path.read_text()), indent=2))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vitcod", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    def stage(name, func, help_text, data=True):
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--run-dir", type=Path, default=Path("build/demo"),
                       help="run directory (default build/demo)")
        if data:
            p.add_argument("--dataset", default="digits",
                           help="'digits' (bundled, default) or a .npz with x_train, y_train, "
                                "x_test, y_test")
            p.add_argument("--seed", type=int, default=0, help="seed of splits and training")
        p.set_defaults(func=func)
        return p

    def sparsities(p, default):
        p.add_argument("--sparsity", type=float, nargs="+", default=default,
                       help="target overall attention sparsity/sparsities")

    def tuning(p, epochs):
        p.add_argument("--finetune-epochs", type=int, default=epochs)
        p.add_argument("--finetune-lr", type=float, default=1e-3, help="peak learning rate")
        p.add_argument("--reconstruction-weight", type=float, default=1e-4,
                       help="weight of the Q/K reconstruction loss (ViTCoD: 1e-4)")

    p = stage("train", cmd_train, "train the quantized dense ViT")
    p.add_argument("--config", type=Path, help="ViTConfig JSON/YAML (default: digits demo)")
    p.add_argument("--epochs", type=int, default=100, help="maximum epochs (early stopping)")
    p = stage("evaluate", cmd_evaluate, "evaluate a trained stage on the test split")
    p.add_argument("--stage", default=run_layout.DENSE,
                   help=f"{run_layout.DENSE}, {run_layout.AUTOENCODER} or {run_layout.DEFAULT_HLS_STAGE} ...")
    tuning(stage("autoencoder", cmd_autoencoder, "add the Q/K auto-encoder and fine-tune"), 60)
    stage("statistics", cmd_statistics, "mean attention maps over the training set")
    p = stage("masks", cmd_masks, "fixed masks at target sparsities, polarized", data=False)
    sparsities(p, [run_layout.DEFAULT_SPARSITY])
    p.add_argument("--global-threshold", default="0.5",
                   help="global-token threshold: a fraction of N (0.5) or a row count (3)")
    p = stage("finetune", cmd_finetune, "masked fine-tuning")
    sparsities(p, [run_layout.DEFAULT_SPARSITY])
    tuning(p, 30)
    p = stage("report", cmd_report, "accuracy/MACs/bytes table and plots", data=False)
    sparsities(p, list(run_layout.DEFAULT_SPARSITIES))
    p = sub.add_parser("import-masks", help="masks.npz from a boolean (L,H,N,N) array made elsewhere")
    p.add_argument("source", type=Path, help=".npy or .npz holding the boolean array")
    p.add_argument("--convention", required=True, choices=["keep", "pruned"],
                   help="what True means in the source array")
    p.add_argument("--out", type=Path, required=True, help="output masks.npz")
    p.add_argument("--global-threshold", default="0.5")
    p.set_defaults(func=cmd_import_masks)
    def hls_target(p):
        p.add_argument("--stage", default=run_layout.DEFAULT_HLS_STAGE,
                       help=f"model folder in the run dir (default {run_layout.DEFAULT_HLS_STAGE})")
        p.add_argument("--backend", default="Vitis", choices=["Vitis", "Vivado"])
        p.add_argument("--part", default="xc7z020clg400-1", help="FPGA part (default PYNQ-Z2)")
        p.add_argument("--clock", type=float, default=10.0, help="clock period in ns")

    p = stage("hls", cmd_hls, "write the Vitis HLS project (hls4ml + our engines)", data=False)
    hls_target(p)
    p.add_argument("--out", type=Path, help="project folder (default <run>/hls/<stage>)")
    hls_target(stage("csim", cmd_csim, "compile the HLS project with g++ and C-simulate the test split",
                     data=False))
    p = stage("demo", cmd_demo, "the whole flow on the bundled digits")
    hls_target(p)
    p.add_argument("--config", type=Path)
    p.add_argument("--epochs", type=int, default=100)
    sparsities(p, list(run_layout.DEFAULT_SPARSITIES))
    p.add_argument("--main-sparsity", type=float, default=run_layout.DEFAULT_SPARSITY)
    p.add_argument("--global-threshold", default="0.5")
    tuning(p, 30)
    p.add_argument("--ae-epochs", type=int, default=60, help="epochs of the auto-encoder stage")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Our loggers at INFO; third-party root loggers (QKeras logs every quantizer
    # it parses at INFO) stay at WARNING.
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("vitcod").setLevel(logging.DEBUG if args.verbose else logging.INFO)
    result = args.func(args)
    if args.command in ("train", "autoencoder") and result:
        print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
