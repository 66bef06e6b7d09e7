"""Tests for vitcod.model.mask_artifact: masks.npz round trip, validation, atomicity (imports:
test_mask_import.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from vitcod.model.mask_artifact import (
    REQUIRED_KEYS,
    MaskArtifactError,
    load_mask_artifact,
    save_mask_artifact,
)
from vitcod.model.polarize import polarize_head

L, H, N = 2, 3, 12


def make_mask(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    mask = rng.random((L, H, N, N)) < 0.25
    mask[..., rng.choice(N, 2, replace=False)] = True  # some global columns
    mask[:, :, 0, :] = True
    mask[:, :, :, 0] = True
    return mask


@pytest.fixture
def saved(tmp_path) -> tuple[Path, np.ndarray]:
    mask = make_mask()
    path = save_mask_artifact(tmp_path / "masks.npz", mask, 0.5, info_cut=0.4, target_sparsity=0.7)
    return path, mask


# --------------------------------------------------------------------------- round trip
@pytest.mark.parametrize("threshold", [0.5, 0.9, 4])
def test_round_trip(tmp_path, threshold):
    mask = make_mask(1)
    path = save_mask_artifact(tmp_path / "masks.npz", mask, threshold, info_cut=0.3, source="test")
    artifact = load_mask_artifact(path, num_layers=L, num_heads=H, num_tokens=N)
    assert artifact.path == path
    assert (artifact.num_layers, artifact.num_heads, artifact.num_tokens) == (L, H, N)
    np.testing.assert_array_equal(artifact.mask, mask)
    assert artifact.sparsity == pytest.approx(1 - mask.mean())
    assert artifact.threshold == threshold and type(artifact.threshold) is type(threshold)
    assert artifact.threshold_kind == ("count" if isinstance(threshold, int) else "fraction")
    assert artifact.metadata["info_cut"] == 0.3 and artifact.metadata["source"] == "test"
    assert artifact.metadata["target_sparsity"] is None
    for l in range(L):
        heads = artifact.heads(l)
        assert len(heads) == H
        for h in range(H):
            expected = polarize_head(mask[l, h], threshold)
            got = artifact.polarization(l, h)
            for name in ("permutation", "global_tokens", "dense_keep", "row_ptr", "col_idx"):
                np.testing.assert_array_equal(getattr(got, name), getattr(expected, name), err_msg=name)
                np.testing.assert_array_equal(getattr(heads[h], name), getattr(expected, name))
            np.testing.assert_array_equal(got.to_mask(), mask[l, h])
            assert artifact.dense_ratio[l, h] == pytest.approx(expected.dense_ratio)


def test_json_summary_beside_artifact(saved):
    path, mask = saved
    summary = json.loads(path.with_suffix(".json").read_text())
    assert summary["schema_version"] == 1
    assert summary["shape"] == {"layers": L, "heads": H, "tokens": N}
    assert summary["sparsity"] == pytest.approx(1 - mask.mean())
    assert np.array(summary["sparsity_per_head"]).shape == (L, H)
    artifact = load_mask_artifact(path)
    assert summary["num_global"] == artifact.num_global.tolist()
    assert summary["nnz_sparse"] == artifact.nnz_sparse.tolist()
    assert summary["dense_ratio"] == artifact.dense_ratio.tolist()
    assert summary["metadata"]["target_sparsity"] == 0.7


def test_stored_dtypes_and_shapes(saved):
    path, _ = saved
    with np.load(path) as data:
        assert set(data.files) == set(REQUIRED_KEYS)
        assert data["mask"].dtype == np.bool_ and data["mask"].shape == (L, H, N, N)
        assert data["row_ptr"].dtype == np.int32 and data["row_ptr"].shape == (L, H, N + 1)
        assert data["col_offset"].shape == (L * H + 1,)
        assert data["col_offset"][-1] == data["col_idx"].shape[0]
        assert data["global_tokens"].shape == (L, H, N)
        assert np.all((data["global_tokens"] >= 0) == (np.arange(N) < data["num_global"][..., None]))


# --------------------------------------------------------------------------- rejection
def rewrite(path: Path, out: Path, change: Callable[[dict], None]) -> Path:
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    change(arrays)
    with open(out, "wb") as handle:
        np.savez(handle, **arrays)
    return out


def setitem(key, value):
    def change(arrays):
        arrays[key] = value(arrays[key]) if callable(value) else value
    return change


def edited(key, edit):
    def change(arrays):
        array = arrays[key].copy()
        edit(array)
        arrays[key] = array
    return change


def delete(key):
    return lambda arrays: arrays.pop(key)


def first_sparse_head(arrays) -> tuple[int, int]:
    nnz = arrays["nnz_sparse"]
    l, h = np.argwhere(nnz > 1)[0]
    return int(l), int(h)


def corrupt_col_idx(arrays):
    """Move the last sparse entry of a row one column to the right (still ascending, in range)."""
    col_idx = arrays["col_idx"].copy()
    for flat in range(L * H):
        row_ptr = arrays["row_ptr"][flat // H, flat % H]
        for row in np.flatnonzero(np.diff(row_ptr) > 0):
            pos = arrays["col_offset"][flat] + row_ptr[row + 1] - 1
            if col_idx[pos] + 1 < N:
                col_idx[pos] += 1
                arrays["col_idx"] = col_idx
                return
    raise AssertionError("test mask has no movable sparse entry")


def corrupt_row_ptr(arrays):
    row_ptr = arrays["row_ptr"].copy()
    l, h = first_sparse_head(arrays)
    row = int(np.flatnonzero(np.diff(row_ptr[l, h]) > 0)[0])
    row_ptr[l, h, row + 1] -= 1  # move an entry from one row to the next
    arrays["row_ptr"] = row_ptr


def prune_a_whole_row(arrays):
    mask = arrays["mask"].copy()
    mask[1, 2, 5, :] = False
    arrays["mask"] = mask


def duplicate_in_permutation(arrays):
    perm = arrays["permutation"].copy()
    perm[0, 1, -1] = perm[0, 1, -2]
    arrays["permutation"] = perm


def flip_dense_keep(arrays):
    dense = arrays["dense_keep"].copy()
    dense[0, 0, 3, 0] = ~dense[0, 0, 3, 0]
    arrays["dense_keep"] = dense


BAD_FILES = {
    "mask shape": (setitem("mask", lambda m: m[..., :-1]), r"shape.*field 'mask'"),
    "mask dtype": (setitem("mask", lambda m: m.astype(np.uint8)), r"dtype bool.*uint8.*field 'mask'"),
    "row_ptr dtype": (setitem("row_ptr", lambda a: a.astype(np.int64)), r"int32.*int64.*field 'row_ptr'"),
    "permutation shape": (setitem("permutation", lambda a: a[:, :, :-1]), r"shape.*field 'permutation'"),
    "dense_keep shape": (setitem("dense_keep", lambda a: a[..., :-1]), r"shape.*field 'dense_keep'"),
    "all-pruned row": (prune_a_whole_row, r"all-pruned.*layer 1, head 2, query 5.*field 'mask'"),
    "missing col_idx": (delete("col_idx"), r"missing required field.*col_idx"),
    "missing metadata": (delete("metadata"), r"missing required field.*metadata"),
    "schema version": (setitem("schema_version", np.array(2, dtype=np.int64)), r"\(1,\).*2.*field 'schema_version'"),
    "schema version dtype": (setitem("schema_version", np.array(1.0)), r"integer.*field 'schema_version'"),
    "col_idx moved": (corrupt_col_idx, r"'col_idx'"),
    "col_idx out of range": (edited("col_idx", lambda a: a.__setitem__(0, N)), r"\[G, N\).*field 'col_idx'"),
    "row_ptr": (corrupt_row_ptr, r"'col_idx'|'row_ptr'"),
    "row_ptr total": (edited("row_ptr", lambda a: a.__setitem__((0, 0, N), 0)), r"'row_ptr'"),
    "col_offset": (edited("col_offset", lambda a: a.__setitem__(-1, a[-1] + 1)), r"'col_offset'"),
    "permutation": (duplicate_in_permutation, r"a permutation.*field 'permutation'"),
    "global_tokens": (edited("global_tokens", lambda a: a.__setitem__((0, 0, -1), 5)), r"'global_tokens'"),
    "num_global": (edited("num_global", lambda a: a.__setitem__((0, 0), N + 1)), r"'num_global'"),
    "dense_keep": (flip_dense_keep, r"'dense_keep'"),
    "nnz_sparse": (edited("nnz_sparse", lambda a: a.__setitem__((1, 1), a[1, 1] + 1)), r"'nnz_sparse'"),
    "nnz_dense": (edited("nnz_dense", lambda a: a.__setitem__((1, 1), 0)), r"'nnz_dense'"),
    "dense_ratio": (edited("dense_ratio", lambda a: a.__setitem__((0, 2), 0.123)), r"'dense_ratio'"),
    "threshold_kind": (setitem("threshold_kind", np.array("median")), r"median.*field 'threshold_kind'"),
    "threshold": (setitem("threshold", np.array(1.5)), r"'threshold'"),
    "metadata": (setitem("metadata", np.array("{not json")), r"JSON.*field 'metadata'"),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_file_rejected_naming_the_field(saved, tmp_path, case):
    path, _ = saved
    change, message = BAD_FILES[case]
    bad = rewrite(path, tmp_path / "bad.npz", change)
    with pytest.raises(MaskArtifactError, match=message):
        load_mask_artifact(bad)


@pytest.mark.parametrize(
    "expected, message",
    [
        ({"num_tokens": N + 1}, rf"num_tokens = {N + 1}.*got {N}"),
        ({"num_heads": H - 1}, rf"num_heads = {H - 1}.*got {H}"),
        ({"num_layers": L + 2}, rf"num_layers = {L + 2}.*got {L}"),
    ],
)
def test_mismatch_with_the_model_rejected(saved, expected, message):
    path, _ = saved
    with pytest.raises(MaskArtifactError, match=message):
        load_mask_artifact(path, **expected)


def test_missing_and_unreadable_files_rejected(saved, tmp_path):
    with pytest.raises(MaskArtifactError, match=r"got no such file \(.*nope.npz\)"):
        load_mask_artifact(tmp_path / "nope.npz")
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"this is not a zip archive")
    with pytest.raises(MaskArtifactError, match=r"got a file that is not a .npz archive \(.*garbage.npz\)"):
        load_mask_artifact(garbage)
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, mask=np.array([{"a": 1}], dtype=object))
    with pytest.raises(MaskArtifactError, match=r"got pickled Python objects \(.*pickled.npz\)"):
        load_mask_artifact(pickled)
    path, _ = saved
    truncated, empty = tmp_path / "truncated.npz", tmp_path / "empty.npz"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    empty.write_bytes(b"")
    with pytest.raises(MaskArtifactError, match=r"got a truncated or corrupt archive .*truncated.npz\)"):
        load_mask_artifact(truncated)
    with pytest.raises(MaskArtifactError, match=r"got an empty file \(.*empty.npz\)"):
        load_mask_artifact(empty)


def test_field_errors_name_the_field_and_the_file(saved, tmp_path):
    path, _ = saved
    bad = rewrite(path, tmp_path / "bad.npz", setitem("mask", lambda m: m.astype(np.uint8)))
    with pytest.raises(MaskArtifactError) as info:
        load_mask_artifact(bad)
    assert str(info.value) == f"dtype bool, got dtype uint8 (field 'mask' of {bad})"


def test_save_rejects_invalid_masks(tmp_path):
    mask = make_mask()
    mask[0, 1, 4, :] = False
    with pytest.raises(MaskArtifactError, match="all-pruned"):
        save_mask_artifact(tmp_path / "masks.npz", mask)
    with pytest.raises(MaskArtifactError, match="dtype bool"):
        save_mask_artifact(tmp_path / "masks.npz", make_mask().astype(np.int8))
    with pytest.raises(ValueError, match=r"\.npz"):
        save_mask_artifact(tmp_path / "masks.bin", make_mask())
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- atomicity
def test_failed_save_leaves_old_artifact_intact(saved, monkeypatch):
    path, old_mask = saved
    old_bytes = path.read_bytes()
    old_json = path.with_suffix(".json").read_bytes()

    def broken_savez(handle, **arrays):
        handle.write(b"PK half an archive")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez_compressed", broken_savez)
    with pytest.raises(OSError, match="disk full"):
        save_mask_artifact(path, make_mask(9), 0.5)
    monkeypatch.undo()

    assert path.read_bytes() == old_bytes
    assert path.with_suffix(".json").read_bytes() == old_json
    assert sorted(p.name for p in path.parent.iterdir()) == ["masks.json", "masks.npz"]  # no temp left
    np.testing.assert_array_equal(load_mask_artifact(path).mask, old_mask)

    invalid = make_mask(9)
    invalid[1, 1, 3, :] = False
    with pytest.raises(MaskArtifactError):
        save_mask_artifact(path, invalid)
    assert path.read_bytes() == old_bytes


def test_overwrite_replaces_both_files(saved):
    path, _ = saved
    new_mask = make_mask(5)
    save_mask_artifact(path, new_mask, 0.5, source="second")
    np.testing.assert_array_equal(load_mask_artifact(path).mask, new_mask)
    assert json.loads(path.with_suffix(".json").read_text())["metadata"]["source"] == "second"
