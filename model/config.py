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


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the field."""


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
                if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
                    raise ConfigError(f"mlp_ratio: expected a positive number, got {value!r}")
                continue
            if not isinstance(value, int) or isinstance(value, bool):
                raise ConfigError(f"{f.name}: expected an integer, got {value!r}")
            minimum = 0 if f.name.endswith("integer_bits") or f.name == "patch_overlap" else 1
            if value < minimum:
                raise ConfigError(f"{f.name}: expected an integer >= {minimum}, got {value}")
        if self.num_classes < 2:
            raise ConfigError(f"num_classes: expected >= 2, got {self.num_classes}")
        if self.image_size % self.patch_size:
            raise ConfigError(
                f"patch_size: {self.patch_size} must divide image_size {self.image_size}"
            )
        if self.embed_dim % self.num_heads:
            raise ConfigError(
                f"num_heads: {self.num_heads} must divide embed_dim {self.embed_dim}"
            )
        if self.ae_heads is not None and not 1 <= self.ae_heads <= self.num_heads:
            raise ConfigError(
                f"ae_heads: expected 1..num_heads ({self.num_heads}), got {self.ae_heads}"
            )
        for bits, integer in (("weight_bits", "weight_integer_bits"),
                              ("activation_bits", "activation_integer_bits")):
            if getattr(self, integer) >= getattr(self, bits):
                raise ConfigError(
                    f"{integer}: must be smaller than {bits} ({getattr(self, bits)}), "
                    f"got {getattr(self, integer)}"
                )
        if self.mlp_dim < 1:
            raise ConfigError(f"mlp_ratio: embed_dim * mlp_ratio must be >= 1, got {self.mlp_dim}")

    # ---------------------------------------------------------------- file I/O
    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ViTConfig":
        if not isinstance(data, dict):
            raise ConfigError(f"expected a mapping of config fields, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown config field(s) {unknown}; known fields: {sorted(known)}")
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
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"config file not found: {path}")
        text = path.read_text()
        if path.suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        else:
            try:
                data = json.loads(text)
            except json.JSONDecodeError as err:
                raise ConfigError(f"{path}: not valid JSON ({err})") from err
        return cls.from_dict(data)
