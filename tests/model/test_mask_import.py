"""Tests for vitcod.model.mask_import: masks made elsewhere, and the keep/pruned convention checked
against the file (an inverted reading is refused with the convention to pass instead)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from vitcod.model.mask_artifact import load_mask_artifact, save_mask_artifact
from vitcod.model.mask_import import (
    MaskConventionError,
    import_masks,
    inversion_evidence,
    masks_from_boolean_array,
)
from vitcod.user_errors import UserError

L, H, N = 2, 3, 12


def sparse_mask(seed: int = 0, keep_fraction: float = 0.2) -> np.ndarray:
    """A ViTCoD-like keep-mask: mostly pruned, CLS row and column kept, a diagonal."""
    rng = np.random.default_rng(seed)
    mask = rng.random((L, H, N, N)) < keep_fraction
    mask[:, :, 0, :] = True
    mask[:, :, :, 0] = True
    mask |= np.eye(N, dtype=bool)
    return mask


# --------------------------------------------------------------------------- conversion
def test_boolean_import_conventions():
    keep = sparse_mask(2)
    np.testing.assert_array_equal(masks_from_boolean_array(keep, "keep"), keep)
    np.testing.assert_array_equal(masks_from_boolean_array(~keep, "pruned"), keep)
    np.testing.assert_array_equal(masks_from_boolean_array(keep.astype(np.uint8), "keep"), keep)
    np.testing.assert_array_equal(masks_from_boolean_array((~keep).astype(np.int64), "pruned"), keep)
    result = masks_from_boolean_array(keep, "keep")
    result[0, 0, 0, 0] = False
    assert keep[0, 0, 0, 0]  # a copy, not a view


def test_boolean_import_rejections():
    keep = sparse_mask(2)
    with pytest.raises(TypeError):
        masks_from_boolean_array(keep)  # convention is required
    with pytest.raises(UserError, match="convention.*'mask'"):
        masks_from_boolean_array(keep, "mask")
    counts = keep.astype(np.int32)
    counts[0, 0, 1, 1] = 2
    with pytest.raises(UserError, match="0/1"):
        masks_from_boolean_array(counts, "keep")
    with pytest.raises(UserError, match="dtype bool.*float32"):
        masks_from_boolean_array(keep.astype(np.float32), "keep")
    with pytest.raises(UserError, match=r"shape \(layers, heads, N, N\).*got shape \(3, 12, 12\)"):
        masks_from_boolean_array(keep[0], "keep")
    with pytest.raises(UserError, match=r"got shape \(2, 3, 12, 11\)"):
        masks_from_boolean_array(keep[..., :-1], "keep")


def test_import_masks_from_npy_and_npz(tmp_path):
    keep = sparse_mask(3)
    np.save(tmp_path / "authors.npy", ~keep)  # the authors' files: True = pruned
    out = import_masks(tmp_path / "authors.npy", "pruned", tmp_path / "a" / "masks.npz", threshold=0.5)
    artifact = load_mask_artifact(out, num_tokens=N)
    np.testing.assert_array_equal(artifact.mask, keep)
    assert "authors.npy" in artifact.metadata["source"] and "pruned" in artifact.metadata["source"]

    np.savez(tmp_path / "single.npz", whatever=keep.astype(np.uint8))
    out = import_masks(tmp_path / "single.npz", "keep", tmp_path / "b" / "masks.npz", threshold=2)
    artifact = load_mask_artifact(out)
    np.testing.assert_array_equal(artifact.mask, keep)
    assert artifact.threshold == 2

    np.savez(tmp_path / "two.npz", a=keep, b=keep)
    with pytest.raises(UserError, match=r"one array or one named 'mask', got the arrays \['a', 'b'\]"):
        import_masks(tmp_path / "two.npz", "keep", tmp_path / "c" / "masks.npz")
    assert not (tmp_path / "c").exists()


# --------------------------------------------------------------------------- the convention
def test_the_authors_file_read_as_keep_is_refused_with_what_to_pass(tmp_path):
    # True = pruned, the CLS row never pruned: read as 'keep', the CLS row is empty in every head
    keep = sparse_mask(4)
    np.save(tmp_path / "deit.npy", ~keep)
    with pytest.raises(MaskConventionError) as info:
        import_masks(tmp_path / "deit.npy", "keep", tmp_path / "out.npz")
    message = str(info.value)
    assert message.startswith("--convention pruned for this file (or --force-convention")
    assert f"the CLS row in {L * H} of {L * H} heads" in message
    assert "prunes the CLS key column" in message and "keeps" in message
    assert message.endswith(f"({tmp_path / 'deit.npy'})")
    assert not (tmp_path / "out.npz").exists()
    # the right convention imports it
    assert import_masks(tmp_path / "deit.npy", "pruned", tmp_path / "out.npz").is_file()


def test_a_file_of_ours_imported_as_pruned_is_refused_by_its_own_metadata(tmp_path):
    keep = sparse_mask(5)
    ours = save_mask_artifact(tmp_path / "ours.npz", keep, 0.5, target_sparsity=0.8)
    with pytest.raises(MaskConventionError, match=r"--convention keep for this file.*far from the file's metadata "
                                                  r"sparsity 0\.\d+"):
        import_masks(ours, "pruned", tmp_path / "out.npz")


def plain_sparse_flags(seed: int) -> np.ndarray:
    """A sparse True = keep mask from a tool without the CLS rule (rows keep their diagonal)."""
    return (np.random.default_rng(seed).random((L, H, N, N)) < 0.1) | np.eye(N, dtype=bool)


def test_a_dense_reading_without_a_stated_sparsity_is_refused_and_the_sparsity_confirms_it(tmp_path):
    # no CLS structure in either reading: only the kept fraction speaks
    flags = plain_sparse_flags(6)
    np.save(tmp_path / "flags.npy", flags)
    with pytest.raises(MaskConventionError, match=r"--convention keep for this file.*it keeps \d+\.\d% of the "
                                                  r"entries .*pass its sparsity with --sparsity"):
        import_masks(tmp_path / "flags.npy", "pruned", tmp_path / "out.npz")
    dense_sparsity = float(flags.mean())  # the sparsity of the 'pruned' reading
    out = import_masks(tmp_path / "flags.npy", "pruned", tmp_path / "out.npz", expected_sparsity=dense_sparsity)
    assert load_mask_artifact(out).metadata["target_sparsity"] == pytest.approx(dense_sparsity)
    assert import_masks(tmp_path / "flags.npy", "keep", tmp_path / "keep.npz").is_file()  # no evidence


def test_an_expected_sparsity_far_from_the_reading_is_refused(tmp_path):
    keep = plain_sparse_flags(7)
    np.save(tmp_path / "keep.npy", keep)
    sparsity = 1.0 - keep.mean()
    with pytest.raises(MaskConventionError, match=r"far from the expected sparsity \(--sparsity\) 0\.100"):
        import_masks(tmp_path / "keep.npy", "keep", tmp_path / "out.npz", expected_sparsity=0.1)
    assert import_masks(tmp_path / "keep.npy", "keep", tmp_path / "out.npz", expected_sparsity=sparsity).is_file()


def test_force_imports_as_told_and_logs_the_evidence(tmp_path, caplog):
    flags = plain_sparse_flags(8)
    np.save(tmp_path / "flags.npy", flags)
    out = import_masks(tmp_path / "flags.npy", "pruned", tmp_path / "out.npz", force=True)
    np.testing.assert_array_equal(load_mask_artifact(out).mask, ~flags)
    assert "importing with --convention pruned although it keeps" in caplog.text


def test_no_evidence_for_a_correct_reading():
    keep = sparse_mask(9)
    assert inversion_evidence(keep, "keep") == []
    assert inversion_evidence(keep, "keep", stated_sparsity=float(1 - keep.mean())) == []
    assert inversion_evidence(~keep, "keep")  # and its inverse is suspicious


def test_the_sparsity_a_source_npz_states_is_read_from_metadata_or_a_scalar(tmp_path):
    flags = plain_sparse_flags(10)  # True = keep, about 10% kept
    sparsity = float(1 - flags.mean())
    np.savez(tmp_path / "scalar.npz", mask=flags, sparsity=np.float64(sparsity))
    np.savez(tmp_path / "meta.npz", mask=flags, metadata=np.array(json.dumps({"target_sparsity": 0.9})))
    assert import_masks(tmp_path / "scalar.npz", "keep", tmp_path / "a.npz").is_file()
    with pytest.raises(MaskConventionError, match=r"--convention keep for this file.*far from the file's "
                                                  r"metadata sparsity 0\.900"):
        import_masks(tmp_path / "meta.npz", "pruned", tmp_path / "b.npz")
    with pytest.raises(MaskConventionError, match=r"far from the file's metadata sparsity"):
        import_masks(tmp_path / "scalar.npz", "pruned", tmp_path / "c.npz")


def test_an_inverse_that_is_no_mask_is_not_suggested():
    keep = sparse_mask(11)  # CLS row kept: the inverse leaves it empty
    assert inversion_evidence(keep, "keep", stated_sparsity=0.01) == []
