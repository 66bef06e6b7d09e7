"""Saving and loading trained models: one folder per model, self-describing.

A model folder holds ``model.h5`` (architecture + weights; masks are in the
attention layers' config) and ``config.json`` (the ViTConfig). Loading needs our
custom layers and QKeras' quantized objects, registered here in one place.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import h5py
import tensorflow as tf
from qkeras.utils import _add_supported_quantized_objects

from ..fileio import atomic_write
from .config import ViTConfig
from .layers import CUSTOM_LAYERS
from .run_layout import CONFIG_FILE, MODEL_FILE, check_model_folder


def custom_objects() -> dict[str, Any]:
    objects: dict[str, Any] = dict(CUSTOM_LAYERS)
    _add_supported_quantized_objects(objects)
    return objects


def h5_image(model: tf.keras.Model) -> bytes:
    """The bytes of ``model.save(path, save_format="h5")``, built in memory.

    HDF5's in-memory (core) driver writes the same file image as saving to a path; h5py's
    Python-file-object driver does not, so the model is not saved into an open handle.
    """
    with h5py.File(MODEL_FILE, "w", driver="core", backing_store=False) as h5:
        model.save(h5, save_format="h5", include_optimizer=False)
        h5.flush()
        return h5.id.get_file_image()


def save_model(model: tf.keras.Model, config: ViTConfig, folder: str | Path) -> Path:
    """Write model.h5 and config.json into ``folder`` (atomically per file)."""
    folder = Path(folder)
    atomic_write(folder / MODEL_FILE, h5_image(model))
    config.save(folder / CONFIG_FILE)
    return folder


def load_model(folder: str | Path) -> tuple[tf.keras.Model, ViTConfig]:
    """Load a model folder written by :func:`save_model`.

    Raises:
        vitcod.user_errors.MissingFileError: no model.h5 or config.json.
        vitcod.model.config.ConfigError: an invalid config.json.
        vitcod.user_errors.UserError: a model.h5 that HDF5 cannot open (truncated, not HDF5).
    """
    folder = Path(folder)
    config = check_model_folder(folder)  # model.h5 there and HDF5, config.json valid
    path = folder / MODEL_FILE
    model = tf.keras.models.load_model(path, custom_objects=custom_objects(), compile=False)
    return model, config


def jsonable(value: Any) -> Any:
    """Strict-JSON form of a report: numpy scalars -> Python, NaN/Inf -> null, paths -> str."""
    import math

    import numpy as np

    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


def write_json(path: str | Path, data: dict) -> Path:
    """Write JSON atomically (temp file + rename), so a crash never leaves half a file."""
    path = Path(path)
    atomic_write(path, json.dumps(data, indent=2, sort_keys=False) + "\n")
    return path


def update_json(path: str | Path, key: str, value: Any) -> dict:
    """Set one top-level key of a JSON object file (e.g. a stage of summary.json)."""
    from ..user_errors import read_json

    path = Path(path)
    data = read_json(path, "a JSON object of stage results") if path.is_file() else {}
    data[key] = value
    write_json(path, data)
    return data
