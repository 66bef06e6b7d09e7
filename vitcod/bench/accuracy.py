"""Accuracy vs sparsity, as the model stage measured it: the rows of the run's ``report/accuracy.json``.

Nothing is measured here; the rows are read and each is given the stage folder it belongs to
(``dense``, ``ae``, ``sparse_<s>``), so the bench can put accuracy beside the modelled cost of the
same stage.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..model.run_layout import AUTOENCODER, DENSE, REPORT, sparse_stage

ACCURACY_FILE = "accuracy.json"
"""The report stage's accuracy table, in ``<run>/report/``."""


def _stage_of(row: dict[str, Any]) -> str | None:
    """Stage folder of a report row: its ``model`` name (``dense``, ``+AE``) or its target sparsity."""
    name = row.get("model", "")
    if name == "dense":
        return DENSE
    if name == "+AE":
        return AUTOENCODER
    return sparse_stage(row["target_sparsity"]) if row.get("target_sparsity") is not None else None


def accuracy_rows(run_dir: Path) -> tuple[list[dict] | None, str | None]:
    """``(rows, None)`` from ``<run_dir>/report/accuracy.json``, or ``(None, why not)``."""
    path = Path(run_dir) / REPORT / ACCURACY_FILE
    if not path.is_file():
        return None, f"{path} not found: run `python -m vitcod report --run-dir {run_dir}`"
    rows = json.loads(path.read_text()).get("rows", [])
    return [{"model": r.get("model", ""), "stage": _stage_of(r), "target_sparsity": r.get("target_sparsity"),
             "achieved_sparsity": r.get("achieved_sparsity"),
             "quantized_test_accuracy": r.get("quantized_test_accuracy"),
             "float_test_accuracy": r.get("float_test_accuracy"),
             "report_attention_macs": r.get("attention_macs"),
             "report_qk_bytes_per_image": r.get("qk_bytes_per_image")} for r in rows], None
