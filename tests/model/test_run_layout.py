"""The run folder layout (vitcod.model.run_layout): stage names, their sparsity, old config migration."""

import json

import pytest

from vitcod.model import run_layout


def test_sparse_stage_names_and_their_sparsity():
    assert run_layout.sparse_stage(0.9) == "sparse_0.90"  # the folder name runs on disk already use
    for target in run_layout.DEFAULT_SPARSITIES:
        assert run_layout.stage_sparsity(run_layout.sparse_stage(target)) == target
    assert run_layout.stage_sparsity(run_layout.DENSE) == 0.0
    assert run_layout.stage_sparsity(run_layout.AUTOENCODER) == 0.0
    assert run_layout.stage_sparsity(run_layout.REPORT) is None
    assert run_layout.stage_sparsity("sparse_high") is None


def test_stage_and_project_folders(tmp_path):
    assert run_layout.sparse_dir(tmp_path, 0.8) == tmp_path / "sparse_0.80"
    assert run_layout.hls_project_dir(tmp_path, run_layout.DEFAULT_HLS_STAGE) == tmp_path / "hls" / "sparse_0.90"
    assert not run_layout.stage_has_autoencoder(run_layout.DENSE)
    assert run_layout.stage_has_autoencoder(run_layout.DEFAULT_HLS_STAGE)


@pytest.mark.parametrize("patch_kernel, overlap", [(4, 1), (2, 0), (None, 0)])
def test_old_patch_kernel_read_as_overlap(tmp_path, caplog, patch_kernel, overlap):
    path = tmp_path / run_layout.CONFIG_FILE
    path.write_text(json.dumps({"patch_size": 2, "patch_kernel": patch_kernel, "embed_dim": 16}))
    data = run_layout.read_stage_config_dict(path)
    assert data == {"patch_size": 2, "patch_overlap": overlap, "embed_dim": 16}
    assert "legacy field patch_kernel" in caplog.text


def test_new_config_is_read_unchanged(tmp_path):
    path = tmp_path / run_layout.CONFIG_FILE
    path.write_text(json.dumps({"patch_size": 2, "patch_overlap": 1}))
    assert run_layout.read_stage_config_dict(path) == {"patch_size": 2, "patch_overlap": 1}


def test_old_patch_kernel_that_is_no_overlap_rejected(tmp_path):
    path = tmp_path / run_layout.CONFIG_FILE
    path.write_text(json.dumps({"patch_size": 2, "patch_kernel": 3}))
    with pytest.raises(ValueError, match=r"patch \+ 2 \* overlap.*got patch_kernel=3 with patch_size=2 \(.*config.json\)"):
        run_layout.read_stage_config_dict(path)


def test_stage_files_name_the_file_and_why(tmp_path):
    from vitcod.model.config import ConfigError, ViTConfig
    from vitcod.user_errors import MissingFileError, UserError

    folder = tmp_path / "ae"
    folder.mkdir()
    with pytest.raises(MissingFileError, match=r"model.h5.*got no such file"):
        run_layout.check_model_folder(folder)
    (folder / run_layout.MODEL_FILE).write_bytes(b"")
    (folder / run_layout.CONFIG_FILE).write_bytes(b"\xff\xfe{}")
    with pytest.raises(ConfigError, match=r"UTF-8.*config.json"):
        run_layout.check_model_folder(folder)
    ViTConfig().save(folder / run_layout.CONFIG_FILE)
    with pytest.raises(UserError, match=r"that HDF5 can open, got an unreadable file .*model.h5\)"):
        run_layout.check_model_folder(folder)  # an empty model.h5
    import h5py

    h5py.File(folder / run_layout.MODEL_FILE, "w").close()
    assert run_layout.check_model_folder(folder) == ViTConfig()
    metrics = folder / run_layout.METRICS_FILE
    with pytest.raises(MissingFileError, match="metrics of stage 'ae'.*run that stage first"):
        run_layout.read_stage_metrics(folder)
    metrics.write_text("[1, 2]")
    with pytest.raises(UserError, match=r"as a JSON object, got a JSON list \(.*metrics.json\)"):
        run_layout.read_stage_metrics(folder)
    metrics.write_text(json.dumps({"test_accuracy": 0.9}))
    with pytest.raises(UserError, match=r"a number in field 'float_test_accuracy', got None"):
        run_layout.read_stage_metrics(folder)
