"""Fixtures of the flow stages (tests/model, tests/hls): the digits data set and a tiny ViT config.

Imported by those stages' conftest.py files. TensorFlow is imported lazily so that collecting the
host and overlay tests never loads it.
"""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def digits():
    """scikit-learn's bundled 8x8 digits, the seeded split every stage uses."""
    from vitcod.model.data import load_digits

    return load_digits(seed=0)


@pytest.fixture(scope="session")
def tiny_config():
    """A small ViT that trains in seconds: 8x8 digits, patch 2 -> 16 patches + CLS."""
    from vitcod.model.config import ViTConfig

    return ViTConfig(patch_size=2, embed_dim=16, depth=1, num_heads=2, mlp_ratio=2.0)
