"""A synthetic run folder (tiny config, random masks, placeholder report) for the tests that need a
run's layout but not a trained model: the performance model, the board fit and the bench.

Built in a tmp folder by the ``synthetic_run`` fixtures of tests/hls and tests/bench.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from vitcod.model import run_layout
from vitcod.model.config import ViTConfig
from vitcod.model.mask_artifact import save_mask_artifact

def random_keep_mask(rng: np.random.Generator, layers: int, heads: int, n: int, sparsity: float) -> np.ndarray:
    mask = np.zeros((layers, heads, n, n), dtype=bool)
    for l in range(layers):
        for h in range(heads):
            m = mask[l, h]
            cols = rng.choice(np.arange(1, n), h + 1, replace=False)  # h+1 global-ish columns
            m[:, cols] = rng.random((n, h + 1)) < 0.9
            m[:, 0] = True
            m[0, :] = True
            free = np.flatnonzero(~m)
            extra = max(0, int(round((1 - sparsity) * n * n)) - int(m.sum()))
            m.flat[rng.choice(free, min(extra, free.size), replace=False)] = True
    return mask


TINY = dict(image_size=4, patch_size=1, embed_dim=16, depth=1, num_heads=2, mlp_ratio=2.0)
#: The stages of a run, with the target sparsity of the masked ones.
STAGES = {run_layout.DENSE: None, run_layout.AUTOENCODER: None,
          **{run_layout.sparse_stage(s): s for s in run_layout.DEFAULT_SPARSITIES}}
HLS_STAGE = run_layout.DEFAULT_HLS_STAGE


def make_run(root: Path) -> Path:
    """build/<run> layout with config.json per stage, masks.npz for sparse stages and a report.
    Accuracies are made-up placeholders (this run is never trained)."""
    config = ViTConfig(**TINY)
    rng = np.random.default_rng(3)
    rows = []
    for stage, sparsity in STAGES.items():
        folder = run_layout.stage_dir(root, stage)
        folder.mkdir(parents=True)
        config.save(folder / run_layout.CONFIG_FILE)
        achieved = 0.0
        if sparsity is not None:
            mask = random_keep_mask(rng, config.depth, config.num_heads, config.num_tokens, sparsity)
            save_mask_artifact(folder / run_layout.MASKS_FILE, mask, 0.5, target_sparsity=sparsity)
            achieved = float(1 - mask.mean())
        name = {run_layout.DENSE: "dense", run_layout.AUTOENCODER: "+AE"}.get(stage) or f"+AE+mask {sparsity:.2f}"
        rows.append({"model": name, "target_sparsity": sparsity, "achieved_sparsity": achieved,
                     "quantized_test_accuracy": 0.5, "float_test_accuracy": 0.5, "attention_macs": 0,
                     "qk_bytes_per_image": 0})
    (root / run_layout.REPORT).mkdir()
    (root / run_layout.REPORT / run_layout.ACCURACY_FILE).write_text(json.dumps({"rows": rows}))
    return root
