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
``labels``/``y``/``y_test``); ``--dataset digits`` loads the flow's digits test split and needs
scikit-learn, so it is meant for the build machine. The accuracy is printed whenever labels are
known. Exit status: 0 on success, 1 on a driver error (message on stderr), 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from . import BACKENDS, DEFAULT_TIMEOUT_S, open_driver, packing_benchmark
from .errors import InputError, VitcodError

_IMAGE_KEYS = ("images", "x", "x_test")
_LABEL_KEYS = ("labels", "y", "y_test")


def _load_images(path: Path, labels_path: Path | None) -> tuple[np.ndarray, np.ndarray | None]:
    try:
        loaded = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read images from {path}: {exc}") from None
    labels = None
    if isinstance(loaded, np.lib.npyio.NpzFile):
        with loaded:
            key = next((k for k in _IMAGE_KEYS if k in loaded.files), None)
            if key is None:
                raise InputError(f"{path} holds {loaded.files}; expected images under one of {list(_IMAGE_KEYS)}")
            images = loaded[key]
            label_key = next((k for k in _LABEL_KEYS if k in loaded.files), None)
            labels = loaded[label_key] if label_key else None
    else:
        images = loaded
    if labels_path is not None:
        labels = np.load(labels_path, allow_pickle=False)
    return images, labels


def _load_digits(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The flow's digits test split (scikit-learn, imported here only: never in the driver)."""
    try:
        from vitcod.model.data import load_digits

        data = load_digits(seed=seed)
    except ImportError as exc:
        raise InputError(f"--dataset digits needs scikit-learn ({exc}); on a board, save the images with numpy "
                         "on the build machine and pass --images") from None
    return data.x_test, data.y_test


def _open(args: argparse.Namespace):
    kwargs: dict[str, Any] = {"timeout": args.timeout}
    if args.batch_size is not None:
        kwargs["batch_size"] = args.batch_size
    if args.backend != "pynq":
        if args.network is not None:
            kwargs["network"] = args.network
        if args.max_batch is not None:
            kwargs["max_batch"] = args.max_batch
    elif args.network is not None or args.max_batch is not None:
        raise InputError("--network and --max-batch are for the csim and emulated backends; the pynq backend reads "
                         "everything from the overlay folder")
    if args.overlay is None and args.backend == "pynq":
        raise InputError("the pynq backend needs --overlay DIR (vitcod.bit, vitcod.hwh, vitcod.json)")
    return open_driver(args.overlay, backend=args.backend, **kwargs)


def cmd_predict(args: argparse.Namespace) -> int:
    if args.dataset:
        images, labels = _load_digits(args.seed)
    else:
        images, labels = _load_images(args.images, args.labels)
    if args.limit is not None:
        images = images[:args.limit]
        labels = labels[:args.limit] if labels is not None else None
    driver = _open(args)
    n_values = driver.metadata.input.values
    if images.ndim >= 2 and images.shape[1:] != driver.input_shape and int(np.prod(images.shape[1:])) == n_values:
        images = images.reshape(len(images), n_values)  # e.g. (N, 8, 8, 1) digits into a flat (64,) input
    if labels is not None and len(labels) != len(images):
        raise InputError(f"{len(labels)} labels for {len(images)} images")
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
        correct = int(np.count_nonzero(predicted == np.asarray(labels).reshape(-1)))
        report["accuracy"] = correct / len(images)
        report["correct"] = correct
    if args.output is not None:
        np.save(args.output, probabilities)
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
    parser = argparse.ArgumentParser(prog="python -m vitcod.host", description=__doc__.split("\n\n")[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log what the driver does")
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--backend", choices=BACKENDS, default="pynq", help="where the IP runs (default: pynq)")
        p.add_argument("--overlay", type=Path, help="folder with vitcod.json (+ .bit/.hwh for pynq)")
        p.add_argument("--network", type=Path, help="csim/emulated: network.json (default: next to vitcod.json)")
        p.add_argument("--max-batch", type=int, help="csim/emulated without --overlay: max batch of the simulated IP")
        p.add_argument("--batch-size", type=int, help="images per transfer (default: as many as one transfer holds)")
        p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, help="seconds per wait (default: %(default)s)")
        p.add_argument("--json", action="store_true", help="print one JSON object instead of text")

    p = sub.add_parser("predict", help="run images through the overlay; accuracy if labels are known")
    common(p)
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--images", type=Path, help=".npy images or .npz with images (+ labels)")
    source.add_argument("--dataset", choices=["digits"], help="the flow's digits test split (needs scikit-learn)")
    p.add_argument("--labels", type=Path, help=".npy labels for --images")
    p.add_argument("--seed", type=int, default=0, help="split seed of --dataset (default: %(default)s, as the flow)")
    p.add_argument("--limit", type=int, help="use only the first N images")
    p.add_argument("--output", type=Path, help="save the probabilities as .npy")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("bench", help="quantize+pack speed next to numpy copies, and throughput_test()")
    common(p)
    p.add_argument("--repeats", type=int, default=5, help="repetitions per measurement (default: %(default)s)")
    p.set_defaults(func=cmd_bench)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except VitcodError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
