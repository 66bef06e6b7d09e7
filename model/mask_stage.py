"""The masks stage (``python -m vitcod masks``): statistics -> keep-mask at a target sparsity -> masks.npz.

It needs numpy only (the statistics were computed by the previous stage), so it lives apart from
:mod:`vitcod.model.pipeline`, which imports TensorFlow: the command runs in a second, and its
errors (an unreachable sparsity, unreadable statistics) come before any heavy import.
"""

from __future__ import annotations

import logging
from pathlib import Path

from .mask_artifact import save_mask_artifact
from .masks import AttentionStatistics, format_sparsity_table, mask_for_sparsity, sparsity_report
from .run_layout import MASKS_FILE, STATISTICS, STATISTICS_FILE, sparse_dir

log = logging.getLogger("vitcod.model.pipeline")


def make_masks(run_dir: Path, target: float, threshold: float | int = 0.5) -> Path:
    """Masks at a target sparsity (info rule + bisection), polarized into masks.npz.

    Raises:
        vitcod.user_errors.MissingFileError: no statistics (run the statistics stage first).
        vitcod.user_errors.UserError: unreadable statistics, or a target they cannot reach
            (``where`` is ``target_sparsity``).
    """
    stats = AttentionStatistics.load(Path(run_dir) / STATISTICS / STATISTICS_FILE)
    mask, info_cut = mask_for_sparsity(stats.mean(), target)
    path = save_mask_artifact(sparse_dir(run_dir, target) / MASKS_FILE, mask, threshold,
                              info_cut=info_cut, target_sparsity=target)
    log.info("masks at %.2f:\n%s", target, format_sparsity_table(sparsity_report(mask)))
    return path
