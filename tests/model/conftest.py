"""Fixtures of the model tests (vitcod.model: the QKeras ViT, training, masks, polarization).

``digits`` and ``tiny_config`` come from tests/flow_fixtures.py (shared with tests/hls).
"""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def pipeline_run(tmp_path_factory, tiny_config, digits):
    """The tiny ViT through every model stage (dense, auto-encoder, statistics, masks at 0.8,
    masked fine-tuning, report), trained once: ``(run_dir, fine-tune metrics, report)``."""
    from vitcod.model import pipeline
    from vitcod.model.train import TrainConfig

    run_dir = tmp_path_factory.mktemp("run")
    tune = pipeline.FineTuneConfig(epochs=2, patience=2)
    pipeline.train_dense(run_dir, tiny_config, digits, TrainConfig(epochs=4, patience=4))
    pipeline.train_autoencoder(run_dir, digits, tune)
    pipeline.compute_statistics(run_dir, digits)
    pipeline.make_masks(run_dir, 0.8)
    metrics = pipeline.finetune_masked(run_dir, 0.8, digits, tune)
    report = pipeline.write_report(run_dir, sparsities=(0.8,))
    return run_dir, metrics, report
