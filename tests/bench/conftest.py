"""Fixtures of the bench tests (vitcod.bench)."""

from __future__ import annotations

from pathlib import Path

import pytest
from synthetic_run import make_run


@pytest.fixture(scope="module")
def synthetic_run(tmp_path_factory) -> Path:
    """A run folder with every stage's config and masks, never trained (see synthetic_run.py)."""
    return make_run(tmp_path_factory.mktemp("synthetic_run"))
