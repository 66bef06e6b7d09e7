"""The model stages end to end on a tiny ViT: every stage reads what the previous wrote."""

import json

import numpy as np
import pytest

pytest.importorskip("tensorflow")

from vitcod.model import pipeline, run_layout
from vitcod.model.mask_artifact import load_mask_artifact
from vitcod.model.storage import load_model
from vitcod.model.vit import model_masks


def test_masked_model_carries_the_artifact_masks(pipeline_run, tiny_config):
    run_dir, metrics, _ = pipeline_run
    folder = run_layout.sparse_dir(run_dir, 0.8)
    artifact = load_mask_artifact(folder / run_layout.MASKS_FILE,
                                  num_layers=tiny_config.depth, num_heads=tiny_config.num_heads,
                                  num_tokens=tiny_config.num_tokens)
    model, config = load_model(folder)
    assert config == tiny_config
    assert np.array_equal(model_masks(model), artifact.mask)
    assert abs(artifact.sparsity - 0.8) <= 0.005
    assert metrics["achieved_sparsity"] == pytest.approx(artifact.sparsity)


def test_report_rows_and_files(pipeline_run):
    run_dir, metrics, report = pipeline_run
    names = [r["model"] for r in report["rows"]]
    assert names == ["dense", "+AE", "+AE+mask 0.80"]
    masked = report["rows"][2]
    assert masked["quantized_test_accuracy"] == metrics["test_accuracy"]
    # attention MACs scale with the kept entries: 2 * kept * head_dim
    assert masked["attention_macs"] < report["rows"][0]["attention_macs"] * 0.21
    assert report["rows"][1]["qk_bytes_per_image"] * 2 == report["rows"][0]["qk_bytes_per_image"]
    out = run_dir / run_layout.REPORT
    for name in ("accuracy.md", "accuracy.json", "masks_layer0_0.80.png",
                 "accuracy_vs_sparsity.png"):
        assert (out / name).stat().st_size > 0
    assert (out / "masks_layer0_0.80.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = json.loads((out / "accuracy.json").read_text())["rows"]
    assert rows == json.loads(json.dumps(report["rows"]))


def test_stage_without_its_input_says_what_to_run(tmp_path, digits):
    with pytest.raises(FileNotFoundError, match="make train"):
        pipeline.train_autoencoder(tmp_path, digits, pipeline.FineTuneConfig(epochs=1))
    with pytest.raises(FileNotFoundError, match="statistics"):
        pipeline.make_masks(tmp_path, 0.9)


@pytest.mark.parametrize("field, value, expected", [
    ("epochs", 0, r"an integer >= 1, got 0 \(epochs\)"),
    ("epochs", -1, r"an integer >= 1, got -1 \(epochs\)"),
    ("batch_size", 2.5, r"an integer >= 1, got 2.5 \(batch_size\)"),
    ("learning_rate", float("nan"), r"a finite number > 0, got nan \(learning_rate\)"),
    ("learning_rate", 0.0, r"a finite number > 0, got 0.0 \(learning_rate\)"),
    ("weight_decay", -0.1, r"a finite number >= 0, got -0.1 \(weight_decay\)"),
    ("patience", -1, r"an integer >= 0, got -1 \(patience\)"),
])
def test_training_settings_that_cannot_run_are_refused_naming_the_field(field, value, expected):
    # epochs=-1 once trained nothing and ended in KeyError: 'loss'
    from vitcod.model.train import TrainConfig
    from vitcod.user_errors import UserError

    with pytest.raises(UserError, match=expected):
        TrainConfig(**{field: value})
    if field in ("epochs", "learning_rate", "patience"):
        with pytest.raises(UserError, match=expected):
            pipeline.FineTuneConfig(**{field: value})
