"""Fixtures of the host tests (vitcod.host: driver, backends, wire format, contract)."""

from __future__ import annotations

import pytest
from overlay_factory import TestOverlay, build_overlays


@pytest.fixture(scope="session")
def overlays(tmp_path_factory) -> dict[str, TestOverlay]:
    """The overlay folders of overlay_factory.NETWORKS, built once for the whole session."""
    return build_overlays(tmp_path_factory.mktemp("host-overlays"))
