"""Fixtures of the overlay tests (vitcod.overlay: configuration, codegen, metadata, IP top, Tcl dry run)."""

from __future__ import annotations

from pathlib import Path

import pytest

from vitcod.overlay.example import DummyNetwork


@pytest.fixture()
def example_network(tmp_path) -> Path:
    """network.json of the overlay's stand-in network (vitcod.overlay.example), in a tmp folder."""
    return DummyNetwork().write(tmp_path / "net")
