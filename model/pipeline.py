"""The model stages of the flow, each reading and writing one run directory.

train_dense -> train_autoencoder -> compute_statistics -> make_masks -> finetune_masked
-> write_report, each into its folder of ``build/<run>/`` (the layout, folder and file names
are :mod:`vitcod.model.run_layout`'s).

Each stage is a function here and a ``python -m vitcod <stage>`` command; a stage
reads what the previous one wrote, so any stage can be re-run on its own.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf

from ..fileio import atomic_write
from . import autoencoder as ae
from .config import ViTConfig
from .data import Dataset
from .mask_artifact import load_mask_artifact
from .mask_stage import make_masks  # noqa: F401 - a stage of this module's flow, without TensorFlow
from .run_layout import (
    ACCURACY_FILE,
    ACCURACY_TABLE_FILE,
    AUTOENCODER,
    CONFIG_FILE,
    DEFAULT_SPARSITIES,
    DEFAULT_SPARSITY,
    DENSE,
    MASKS_FILE,
    METRICS_FILE,
    REPORT,
    STATISTICS,
    STATISTICS_FILE,
    SUMMARY_FILE,
    read_stage_metrics,
    sparse_dir,
)
from .statistics import collect_attention_statistics
from .storage import load_model, save_model, update_json, write_json
from .train import TrainConfig, accuracy, check_training_numbers, fit, make_deterministic
from .vit import build_vit, model_masks

log = logging.getLogger(__name__)


@dataclass
class FineTuneConfig:
    """Fine-tuning after the dense training (auto-encoder and masked stages)."""

    epochs: int = 30
    #: Measured on digits: 1e-3 recovers the auto-encoder's loss (96.1% vs 94.4% at 5e-4).
    learning_rate: float = 1e-3
    patience: int = 15
    warmup_epochs: int = 2
    reconstruction_weight: float = ae.DEFAULT_RECONSTRUCTION_WEIGHT

    def __post_init__(self) -> None:
        check_training_numbers(epochs=self.epochs, learning_rate=self.learning_rate, patience=self.patience,
                               warmup_epochs=self.warmup_epochs, reconstruction_weight=self.reconstruction_weight)

    def train_config(self, seed: int) -> TrainConfig:
        return TrainConfig(epochs=self.epochs, learning_rate=self.learning_rate,
                           patience=self.patience, warmup_epochs=self.warmup_epochs, seed=seed)


def float_twin(model: tf.keras.Model, config: ViTConfig) -> tf.keras.Model:
    """Same weights, quantizers off: the float reference of a quantized model."""
    twin = build_vit(config, quantized=False,
                     autoencoder=any(layer.name.endswith("_encoder") for layer in model.layers),
                     masks=model_masks(model))
    ae.transfer_weights(model, twin)
    return twin


def evaluate_model(model: tf.keras.Model, config: ViTConfig, data: Dataset) -> dict:
    return {"test_accuracy": accuracy(model, data.x_test, data.y_test),
            "val_accuracy": accuracy(model, data.x_val, data.y_val),
            "float_test_accuracy": accuracy(float_twin(model, config), data.x_test, data.y_test)}


def _finish(folder: Path, model, config, data, extra: dict) -> dict:
    metrics = {**evaluate_model(model, config, data), **extra}
    save_model(model, config, folder)
    write_json(folder / METRICS_FILE, metrics)
    return metrics


# ----------------------------------------------------------------------------- stages
def train_dense(run_dir: Path, config: ViTConfig, data: Dataset, train: TrainConfig) -> dict:
    """Train the quantized dense ViT from scratch."""
    make_deterministic(train.seed)
    model = build_vit(config)
    result = fit(model, data, train, description="dense")
    metrics = _finish(Path(run_dir) / DENSE, model, config, data, {
        "params": int(model.count_params()), "train_seconds": result["train_seconds"],
        "epochs_run": result["epochs_run"], "train_config": train.to_dict(),
        "dataset": data.summary(), "dataset_name": data.name})
    log.info("dense: test accuracy %.4f (float twin %.4f)", metrics["test_accuracy"],
             metrics["float_test_accuracy"])
    return metrics


def _fine_tune(model, data: Dataset, tune: FineTuneConfig, seed: int, description: str) -> dict:
    losses, weights = ae.reconstruction_loss_settings(tune.reconstruction_weight)
    wrapper = ae.training_model(model)
    zeros = np.zeros(len(data.y_train), np.float32)
    return fit(wrapper, data, tune.train_config(seed), description=description,
               targets=(data.y_train, zeros),
               val_targets=(data.y_val, np.zeros(len(data.y_val), np.float32)),
               loss=losses, loss_weights=weights)


def train_autoencoder(run_dir: Path, data: Dataset, tune: FineTuneConfig, seed: int = 0) -> dict:
    """Insert the Q/K auto-encoder (PCA-initialised) and fine-tune jointly."""
    dense, config = load_model(Path(run_dir) / DENSE)
    make_deterministic(seed)
    model = build_vit(config, autoencoder=True)
    ae.transfer_weights(dense, model)
    ae.pca_initialise(model, data.x_train)
    after_init = accuracy(model, data.x_test, data.y_test)
    result = _fine_tune(model, data, tune, seed, "autoencoder")
    metrics = _finish(Path(run_dir) / AUTOENCODER, model, config, data, {
        "test_accuracy_after_pca_init": after_init,
        "qk_bytes_ratio": ae.qk_storage_bytes(config, True) / ae.qk_storage_bytes(config, False),
        "qk_channel_ratio_in_graph": ae.compressed_channel_ratio(model),
        "qk_bytes_per_image": {"before": ae.qk_storage_bytes(config, False),
                               "after": ae.qk_storage_bytes(config, True)},
        "train_seconds": result["train_seconds"], "epochs_run": result["epochs_run"]})
    log.info("autoencoder: test accuracy %.4f", metrics["test_accuracy"])
    return metrics


def compute_statistics(run_dir: Path, data: Dataset) -> Path:
    """Mean attention maps of the auto-encoder model over the training set."""
    model, _ = load_model(Path(run_dir) / AUTOENCODER)
    stats = collect_attention_statistics(model, data.x_train)
    return stats.save(Path(run_dir) / STATISTICS / STATISTICS_FILE)


def finetune_masked(run_dir: Path, target: float, data: Dataset, tune: FineTuneConfig,
                    seed: int = 0) -> dict:
    """Fine-tune the auto-encoder model with its fixed masks."""
    base, config = load_model(Path(run_dir) / AUTOENCODER)
    folder = sparse_dir(run_dir, target)
    artifact = load_mask_artifact(folder / MASKS_FILE, num_layers=config.depth,
                                  num_heads=config.num_heads, num_tokens=config.num_tokens)
    make_deterministic(seed)
    model = build_vit(config, autoencoder=True, masks=artifact.mask)
    ae.transfer_weights(base, model)
    before = accuracy(model, data.x_test, data.y_test)
    result = _fine_tune(model, data, tune, seed, f"masked {target:.2f}")
    metrics = _finish(folder, model, config, data, {
        "target_sparsity": target, "achieved_sparsity": artifact.sparsity,
        "info_cut": artifact.metadata.get("info_cut"),
        "test_accuracy_before_finetune": before,
        "train_seconds": result["train_seconds"], "epochs_run": result["epochs_run"]})
    log.info("masked %.2f: test accuracy %.4f", target, metrics["test_accuracy"])
    return metrics


def attention_macs(config: ViTConfig, masks: np.ndarray | None) -> int:
    """Multiply-accumulates of QK^T and PV per image over all blocks (kept entries only)."""
    kept = config.depth * config.num_heads * config.num_tokens ** 2 if masks is None \
        else int(np.asarray(masks).sum())
    return 2 * kept * config.head_dim


def write_report(run_dir: Path, sparsities=DEFAULT_SPARSITIES) -> dict:
    """Accuracy table, MACs/bytes, and plots, from the metrics the stages wrote."""
    from . import plots

    run_dir = Path(run_dir)
    out = run_dir / REPORT
    out.mkdir(parents=True, exist_ok=True)
    config = ViTConfig.load(run_dir / DENSE / CONFIG_FILE)
    rows = []

    def row(name, folder, sparsity_target=None, masks=None):
        metrics = read_stage_metrics(folder)
        rows.append({"model": name, "target_sparsity": sparsity_target,
                     "achieved_sparsity": metrics.get("achieved_sparsity", 0.0),
                     "quantized_test_accuracy": metrics["test_accuracy"],
                     "float_test_accuracy": metrics["float_test_accuracy"],
                     "attention_macs": attention_macs(config, masks),
                     "qk_bytes_per_image": ae.qk_storage_bytes(config, name != "dense")})

    row("dense", run_dir / DENSE)
    row("+AE", run_dir / AUTOENCODER)
    done = []
    for target in sparsities:
        folder = sparse_dir(run_dir, target)
        if (folder / METRICS_FILE).is_file():
            artifact = load_mask_artifact(folder / MASKS_FILE)
            row(f"+AE+mask {target:.2f}", folder, target, artifact.mask)
            done.append(target)
    dense_acc = rows[0]["quantized_test_accuracy"]
    lines = ["| model | sparsity (target / achieved) | test acc. quantized | test acc. float twin "
             "| drop vs dense (points) | attention MACs/image | Q/K bytes/image |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        target = "-" if r["target_sparsity"] is None else f"{r['target_sparsity']:.2f}"
        lines.append(
            f"| {r['model']} | {target} / {r['achieved_sparsity']:.4f} | "
            f"{100 * r['quantized_test_accuracy']:.2f}% | {100 * r['float_test_accuracy']:.2f}% | "
            f"{100 * (dense_acc - r['quantized_test_accuracy']):+.2f} | {r['attention_macs']} | "
            f"{r['qk_bytes_per_image']} |")
    table = "\n".join(lines)
    note = ("\nFloat twin = the same trained weights with every quantizer off. Q/K bytes assume "
            "16-bit activations in the hardware buffers; MACs count QK^T and PV over kept "
            "entries.\n")
    atomic_write(out / ACCURACY_TABLE_FILE, table + "\n" + note)
    write_json(out / ACCURACY_FILE, {"rows": rows})
    if done:
        mid = DEFAULT_SPARSITY if DEFAULT_SPARSITY in done else done[0]
        artifact = load_mask_artifact(sparse_dir(run_dir, mid) / MASKS_FILE)
        plots.plot_masks(artifact, layer=0, path=out / f"masks_layer0_{mid:.2f}.png")
        plots.plot_accuracy_vs_sparsity(rows, out / "accuracy_vs_sparsity.png")
    log.info("report:\n%s", table)
    return {"rows": rows, "table": table}


def update_summary(run_dir: Path, stage: str, values: dict) -> dict:
    return update_json(Path(run_dir) / SUMMARY_FILE, stage, values)


def repo_relative(path: Path) -> str:
    """A path relative to the current directory (the repo root under make), else absolute."""
    path = Path(path).resolve()
    try:
        return str(path.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


__all__ = ["train_dense", "train_autoencoder", "compute_statistics", "make_masks",
           "finetune_masked", "write_report", "FineTuneConfig", "update_summary"]
