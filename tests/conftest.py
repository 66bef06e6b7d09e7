"""Shared fixtures. TensorFlow is imported lazily so host-only tests stay light."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest


@pytest.fixture(scope="session")
def digits():
    from vitcod.model.data import load_digits

    return load_digits(seed=0)


@pytest.fixture(scope="session")
def tiny_config():
    """A small ViT that trains in seconds: 8x8 digits, patch 2 -> 16 patches + CLS."""
    from vitcod.model.config import ViTConfig

    return ViTConfig(patch_size=2, embed_dim=16, depth=1, num_heads=2, mlp_ratio=2.0)
