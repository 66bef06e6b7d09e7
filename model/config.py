"""The ViT configuration: one dataclass, validated, saved beside every trained model.

Every later stage (auto-encoder, masks, HLS conversion, overlay, host) reads the
geometry from this file rather than from constants, so a run directory is
self-describing: ``build/<run>/config.json``.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from ..fileio import atomic_write
from ..user_errors import MissingFileError, UserError, read_text


class ConfigError(UserError):
    """A configuration value is invalid: ``<expected>, got <value> (<field>[ in <file>])``."""


@dataclass(frozen=True)
class ViTConfig:
    """Geometry and quantization of the QKeras Vision Transformer.

    Defaults are the digits demo: 8x8x1 images, patch 1 -> 64 patches + CLS = 65
    tokens (3x3 embedding kernel), embed 32, 4 heads (head dim 8), depth 2, MLP
    ratio 2, 8-bit weights.
    """

    image_size: int = 8
    channels: int = 1
    patch_size: int = 1
    #: Pixels each patch's embedding kernel reaches beyond the patch on every side:
    #: kernel = patch_size + 2 * patch_overlap, stride = patch_size, 'same' padding.
    #: 0 = plain non-overlapping patches. The default 1 gives a 1-pixel token its
    #: 3x3 neighbourhood: measured 90.3% -> 97.8% test accuracy on digits (README,
    #: "Defaults and why").
    patch_overlap: int = 1
    embed_dim: int = 32
    depth: int = 2
    num_heads: int = 4
    mlp_ratio: float = 2.0
    num_classes: int = 10
    weight_bits: int = 8
    weight_integer_bits: int = 0
    activation_bits: int = 8
    activation_integer_bits: int = 3
    # Q/K auto-encoder: heads after compression (None = ceil(heads / 2), as ViTCoD).
    ae_heads: int | None = None

    def __post_init__(self) -> None:
        self.validate()

    # ------------------------------------------------------------------ derived
    @property
    def num_patches(self) -> int:
        return (self.image_size // self.patch_size) ** 2

    @property
    def num_tokens(self) -> int:
        """Patches plus the CLS token (token 0)."""
        return self.num_patches + 1

    @property
    def head_dim(self) -> int:
        return self.embed_dim // self.num_heads

    @property
    def mlp_dim(self) -> int:
        return int(round(self.embed_dim * self.mlp_ratio))

    @property
    def embed_kernel(self) -> int:
        return self.patch_size + 2 * self.patch_overlap

    @property
    def compressed_heads(self) -> int:
        return self.ae_heads if self.ae_heads is not None else math.ceil(self.num_heads / 2)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (self.image_size, self.image_size, self.channels)

    # --------------------------------------------------------------- validation
    def validate(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "ae_heads" and value is None:
                continue
            if f.name == "mlp_ratio":
                if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) \
                        or value <= 0:
                    raise ConfigError("a positive finite number", repr(value), "mlp_ratio")
                continue
            if not isinstance(value, int) or isinstance(value, bool):
                raise ConfigError("an integer", repr(value), f.name)
            minimum = 0 if f.name.endswith("integer_bits") or f.name == "patch_overlap" else 1
            if value < minimum:
                raise ConfigError(f"an integer >= {minimum}", value, f.name)
        if self.num_classes < 2:
            raise ConfigError("at least 2 classes", self.num_classes, "num_classes")
        if self.image_size % self.patch_size:
            raise ConfigError(f"a patch size that divides image_size {self.image_size}", self.patch_size,
                              "patch_size")
        if self.embed_dim % self.num_heads:
            raise ConfigError(f"a head count that divides embed_dim {self.embed_dim}", self.num_heads, "num_heads")
        if self.ae_heads is not None and not 1 <= self.ae_heads <= self.num_heads:
            raise ConfigError(f"1..num_heads ({self.num_heads}) heads", self.ae_heads, "ae_heads")
        for bits, integer in (("weight_bits", "weight_integer_bits"),
                              ("activation_bits", "activation_integer_bits")):
            if getattr(self, integer) >= getattr(self, bits):
                raise ConfigError(f"fewer integer bits than {bits} ({getattr(self, bits)})",
                                  getattr(self, integer), integer)
        if self.mlp_dim < 1:
            raise ConfigError("embed_dim * mlp_ratio >= 1", self.mlp_dim, "mlp_ratio")

    # ---------------------------------------------------------------- file I/O
    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ViTConfig":
        if not isinstance(data, dict):
            raise ConfigError("a mapping of config fields", type(data).__name__, "the config's top level")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"config fields among {sorted(known)}", f"unknown field(s) {unknown}",
                              "the config's top level")
        return cls(**data)

    def save(self, path: str | Path) -> Path:
        """Write as JSON, or YAML when the suffix is .yaml/.yml (atomically)."""
        path = Path(path)
        if path.suffix in (".yaml", ".yml"):
            import yaml

            atomic_write(path, yaml.safe_dump(self.to_dict(), sort_keys=False))
        else:
            atomic_write(path, json.dumps(self.to_dict(), indent=2) + "\n")
        return path

    @classmethod
    def load(cls, path: str | Path) -> "ViTConfig":
        """Read a config written by :meth:`save` (or by hand: JSON, or YAML for .yaml/.yml).

        Raises:
            MissingFileError: no such file.
            ConfigError: not UTF-8, not valid JSON/YAML, or a field that is unknown or invalid -
                naming the field and the file.
        """
        return cls.from_file_dict(read_config_dict(path), path)

    @classmethod
    def from_file_dict(cls, data: Any, path: str | Path) -> "ViTConfig":
        """:meth:`from_dict` whose errors name ``path`` too."""
        try:
            return cls.from_dict(data)
        except ConfigError as err:
            raise err.at(f"{err.where} in {path}") from None


def read_config_dict(path: str | Path) -> Any:
    """The parsed content of a config file (JSON, or YAML for .yaml/.yml), errors naming the file.

    Raises:
        MissingFileError: no such file (a FileNotFoundError).
        ConfigError: not UTF-8, empty, or not valid JSON/YAML.
    """
    path = Path(path)
    try:
        text = read_text(path, "a ViT config file")
    except MissingFileError:
        raise
    except UserError as err:
        raise ConfigError(err.expected, err.got, err.where) from None
    if path.suffix in (".yaml", ".yml"):
        import yaml

        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            where = f" at line {mark.line + 1} column {mark.column + 1}" if mark else ""
            raise ConfigError("a ViT config in valid YAML", f"{getattr(err, 'problem', None) or err}{where}",
                              path) from None
    if not text.strip():
        raise ConfigError("a ViT config in JSON", "an empty file", path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise ConfigError("a ViT config in valid JSON", f"{err.msg} at line {err.lineno} column {err.colno}",
                          path) from None
