"""Datasets: scikit-learn's bundled 8x8 digits by default, or a user's ``.npz``.

Everything is returned in Keras layout, (samples, height, width, channels) float32
scaled to [0, 1], with integer labels. Splits are fixed by a seed (stratified), so
every stage of the flow (training, statistics, C-simulation, host) sees the same
test images. Nothing is downloaded: digits ship inside scikit-learn.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..user_errors import MissingFileError, UserError, read_npz

DEFAULT_SEED = 0
#: Fractions of the digits set: 70% train, 10% validation, 20% test (360 images).
VALIDATION_FRACTION = 0.1
TEST_FRACTION = 0.2
REQUIRED_NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")


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


def _stratified_split(x: np.ndarray, y: np.ndarray, fraction: float, seed: int):
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
    """``None`` or ``'digits'`` -> the bundled digits; otherwise a path to a ``.npz``."""
    if name_or_path in (None, "", "digits"):
        return load_digits(seed)
    return load_npz(name_or_path, seed)
