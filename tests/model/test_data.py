import numpy as np
import pytest

from vitcod.model.data import DatasetError, load_dataset, load_digits, load_npz


def test_digits_split_is_fixed_stratified_and_disjoint():
    a, b = load_digits(seed=0), load_digits(seed=0)
    assert np.array_equal(a.x_test, b.x_test) and np.array_equal(a.y_train, b.y_train)
    assert (len(a.x_train), len(a.x_val), len(a.x_test)) == (1257, 180, 360)
    assert a.x_train.shape[1:] == (8, 8, 1) and a.x_train.dtype == np.float32
    assert 0.0 <= a.x_train.min() and a.x_train.max() <= 1.0
    # stratified: every class is within 1 sample of its share of the test split
    counts = np.bincount(a.y_test, minlength=10)
    assert counts.min() >= 35 and counts.max() <= 37
    # the three splits together are exactly the 1797 digits (per-class counts add up)
    from sklearn.datasets import load_digits as sk_digits
    together = np.concatenate([a.y_train, a.y_val, a.y_test])
    assert np.array_equal(np.bincount(together), np.bincount(sk_digits().target))
    c = load_digits(seed=1)
    assert not np.array_equal(a.y_test, c.y_test)


def _save(path, **arrays):
    np.savez(path, **arrays)
    return path


@pytest.fixture
def good_arrays():
    rng = np.random.default_rng(0)
    return dict(x_train=rng.integers(0, 256, (50, 12, 12), dtype=np.uint8),
                y_train=np.arange(50) % 5,
                x_test=rng.integers(0, 256, (10, 12, 12), dtype=np.uint8),
                y_test=np.arange(10) % 5)


def test_user_npz_loads_in_keras_layout(tmp_path, good_arrays):
    ds = load_dataset(str(_save(tmp_path / "mine.npz", **good_arrays)))
    assert ds.name == "mine" and ds.num_classes == 5
    assert ds.x_train.shape[1:] == (12, 12, 1) and ds.x_train.dtype == np.float32
    assert len(ds.x_train) + len(ds.x_val) == 50 and ds.x_test.shape == (10, 12, 12, 1)
    assert ds.x_train.max() <= 1.0


@pytest.mark.parametrize("change, message", [
    (lambda a: a.pop("y_test"), r"got no \['y_test'\] \(it holds"),
    (lambda a: a.update(x_train=a["x_train"][:, :, :6]), "square"),
    (lambda a: a.update(x_train=a["x_train"].reshape(50, 144)), "samples, height, width"),
    (lambda a: a.update(x_train=a["x_train"].astype(np.int32)), "dtype"),
    (lambda a: a.update(x_train=a["x_train"].astype(np.float32)), r"\[0, 1\]"),
    (lambda a: a.update(y_train=a["y_train"].astype(np.float32)), "integer dtype"),
    (lambda a: a.update(y_train=a["y_train"][:40]), r"50 labels \(one per image\), got 40 \(y_train in .*bad.npz\)"),
    (lambda a: a.update(y_train=a["y_train"] - 1), ">= 0"),
    (lambda a: a.update(y_test=a["y_test"] + 5), r"labels within the training labels 0..4, got label \d+ \(y_test"),
    (lambda a: a.update(x_test=np.zeros((0, 12, 12), np.uint8), y_test=np.zeros(0, int)),
     "non-empty"),
    (lambda a: a.update(x_test=np.zeros((10, 10, 10), np.uint8)), r"the image shape of x_train \(12, 12, 1\), got \(10, 10, 1\) \(x_test"),
])
def test_bad_npz_gets_a_clear_error(tmp_path, good_arrays, change, message):
    change(good_arrays)
    with pytest.raises(DatasetError, match=message):
        load_npz(_save(tmp_path / "bad.npz", **good_arrays))


def test_nan_images_rejected(tmp_path, good_arrays):
    x = good_arrays["x_train"].astype(np.float32) / 255
    x[0, 0, 0] = np.nan
    good_arrays["x_train"] = x
    with pytest.raises(DatasetError, match="NaN"):
        load_npz(_save(tmp_path / "nan.npz", **good_arrays))


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"got no such file \(.*none.npz\)"):
        load_dataset(str(tmp_path / "none.npz"))


@pytest.mark.parametrize("content, message", [
    (b"", "got an empty file"),
    (b"hello", "got a file that is not a .npz archive"),
    (None, "got a truncated or corrupt archive"),
])
def test_unreadable_files_name_the_file(tmp_path, good_arrays, content, message):
    path = tmp_path / "data.npz"
    if content is None:
        whole = _save(tmp_path / "whole.npz", **good_arrays).read_bytes()
        content = whole[: len(whole) // 2]
    path.write_bytes(content)
    with pytest.raises(DatasetError, match=message + r".*\(.*data.npz\)"):
        load_dataset(str(path))


def test_every_array_error_names_the_array_and_the_file(tmp_path, good_arrays):
    good_arrays["x_train"] = good_arrays["x_train"].astype(np.int32)
    path = _save(tmp_path / "bad.npz", **good_arrays)
    with pytest.raises(DatasetError) as info:
        load_npz(path)
    assert str(info.value) == f"images of dtype uint8 (0..255) or float in [0, 1], got dtype int32 (x_train in {path})"


def test_a_class_with_one_image_is_refused_naming_the_cause(tmp_path, good_arrays):
    good_arrays["y_train"] = good_arrays["y_train"].copy()
    good_arrays["y_train"][good_arrays["y_train"] == 1] = 0
    good_arrays["y_train"][0] = 1  # class 1 has one training image: no stratified validation split
    with pytest.raises(DatasetError, match=r"stratified 10% validation split.*scikit-learn.*\(y_train in"):
        load_npz(_save(tmp_path / "one.npz", **good_arrays))
