"""The run folder: where every stage of the flow reads and writes, in one place.

``build/<run>/``::

    dense/              model.h5 config.json metrics.json      (train)
    ae/                 model.h5 config.json metrics.json      (autoencoder)
    statistics/         attention_mean.npz                     (statistics)
    sparse_0.90/        masks.npz masks.json model.h5 config.json metrics.json
                                                               (masks + finetune)
    report/             accuracy.md accuracy.json *.png        (report)
    hls/sparse_0.90/    the Vitis HLS project, network.json    (hls)
    hls/csim_report.json                                       (csim)
    summary.json        one object per stage (the demo's summary)

Every stage folder name, file name and the meaning of a ``sparse_<s>`` name live here, so a
new stage or a renamed file lands once. Standard library only: the board package and the
performance model import it without TensorFlow.
"""

from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger(__name__)

DENSE = "dense"
AUTOENCODER = "ae"
STATISTICS = "statistics"
REPORT = "report"
HLS = "hls"

SUMMARY_FILE = "summary.json"
CONFIG_FILE = "config.json"
MODEL_FILE = "model.h5"
METRICS_FILE = "metrics.json"
MASKS_FILE = "masks.npz"
STATISTICS_FILE = "attention_mean.npz"
ACCURACY_FILE = "accuracy.json"
ACCURACY_TABLE_FILE = "accuracy.md"
CSIM_REPORT_FILE = "csim_report.json"

DEFAULT_SPARSITIES = (0.8, 0.9, 0.95)
"""Target sparsities of the demo's masked stages."""
DEFAULT_SPARSITY = 0.9
"""The sparsity of the stage that is converted, C-simulated and built by default."""


def sparse_stage(target: float) -> str:
    """Folder name of the masked stage at ``target`` sparsity (``0.9`` -> ``sparse_0.90``)."""
    return f"sparse_{target:.2f}"


DEFAULT_HLS_STAGE = sparse_stage(DEFAULT_SPARSITY)
"""The stage ``make hls`` / ``csim`` / ``bench`` / ``bitstream`` use unless told otherwise."""


def stage_sparsity(stage: str) -> float | None:
    """Nominal sparsity of a stage folder name (``ae``/``dense`` -> 0, ``sparse_0.90`` -> 0.9);
    None for a name that is neither."""
    if stage in (AUTOENCODER, DENSE):
        return 0.0
    if stage.startswith("sparse_"):
        try:
            return float(stage.split("_", 1)[1])
        except ValueError:
            return None
    return None


def stage_has_autoencoder(stage: str) -> bool:
    """Every stage after ``dense`` carries the Q/K auto-encoder."""
    return stage != DENSE


def stage_dir(run_dir: str | Path, stage: str) -> Path:
    """``build/<run>/<stage>``."""
    return Path(run_dir) / stage


def sparse_dir(run_dir: str | Path, target: float) -> Path:
    """``build/<run>/sparse_<target>``."""
    return stage_dir(run_dir, sparse_stage(target))


def hls_dir(run_dir: str | Path) -> Path:
    """``build/<run>/hls``: one HLS project per converted stage, and the C-sim report."""
    return Path(run_dir) / HLS


def hls_project_dir(run_dir: str | Path, stage: str) -> Path:
    """``build/<run>/hls/<stage>``: the Vitis HLS project of one stage."""
    return hls_dir(run_dir) / stage


REPORTED_METRICS = ("test_accuracy", "float_test_accuracy")
"""The fields of a stage's metrics.json the report reads."""


def read_stage_metrics(folder: Path) -> dict:
    """A stage's metrics.json, checked for the fields the report reads (no TensorFlow needed).

    Raises:
        vitcod.user_errors.MissingFileError: the stage has not been run.
        vitcod.user_errors.UserError: not UTF-8 JSON, not an object, or a reported field missing or
            not a number - naming the file.
    """
    from ..user_errors import UserError, read_json

    path = Path(folder) / METRICS_FILE
    metrics = read_json(path, f"the metrics of stage '{Path(folder).name}'",
                        hint=" - run that stage first (python -m vitcod ...)")
    for key in REPORTED_METRICS:
        value = metrics.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise UserError(f"a number in field '{key}'", repr(value), path)
    return metrics


def check_model_folder(folder: str | Path):
    """The ViTConfig of a model folder, after checking that its model.h5 is there (no TensorFlow:
    the command line checks a stage before importing it).

    Raises:
        vitcod.user_errors.MissingFileError: no model.h5 or config.json (run the stage first).
        vitcod.model.config.ConfigError: an unreadable or invalid config.json.
        vitcod.user_errors.UserError: a model.h5 that HDF5 cannot open (truncated, not HDF5).
    """
    from ..user_errors import UserError, require_file
    from .config import ViTConfig

    folder = Path(folder)
    path = require_file(folder / MODEL_FILE, f"a trained model ({MODEL_FILE})",
                        " - run `make train` (or the stage that writes this folder) first")
    config = ViTConfig.load(folder / CONFIG_FILE)
    import h5py  # here, not at import: the board package imports this module without h5py

    try:
        with h5py.File(path, "r"):
            pass
    except OSError as err:  # truncated, empty or not an HDF5 file: h5py says which
        raise UserError(f"a Keras model file ({MODEL_FILE}) that HDF5 can open",
                        f"an unreadable file ({str(err).splitlines()[0]})", path) from None
    return config


def read_stage_config_dict(path: str | Path) -> dict:
    """The fields of a stage's ``config.json``, with old run folders migrated.

    Run folders written before ``patch_kernel`` became ``patch_overlap`` (kernel = patch +
    2 * overlap) are translated here, and the translation is logged.

    Raises:
        vitcod.user_errors.MissingFileError: no such file.
        vitcod.model.config.ConfigError: not UTF-8 JSON, or an old ``patch_kernel`` that cannot be
            expressed as an overlap.
    """
    from .config import ConfigError, read_config_dict  # standard library only, like this module

    path = Path(path)
    data = read_config_dict(path)
    if isinstance(data, dict) and "patch_kernel" in data and "patch_overlap" not in data:
        kernel, patch = data.pop("patch_kernel"), data.get("patch_size", 1)
        kernel = patch if kernel is None else kernel
        if (kernel - patch) % 2:
            raise ConfigError("a legacy patch_kernel that is patch + 2 * overlap (retrain or edit the file)",
                              f"patch_kernel={kernel} with patch_size={patch}", path)
        data["patch_overlap"] = (kernel - patch) // 2
        log.warning("%s: legacy field patch_kernel=%s read as patch_overlap=%d", path, kernel, data["patch_overlap"])
    return data
