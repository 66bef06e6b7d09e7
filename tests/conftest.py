"""Test-suite root: quiet TensorFlow logs, and a marker per stage folder.

Tests live by stage (model/, hls/, overlay/, host/, bench/), each folder with its own conftest.py;
every test carries its folder's name as a marker, so ``pytest -m host`` runs one stage.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

pytest_plugins = ("flow_fixtures",)  # digits, tiny_config: shared by the model and hls stages

STAGES = ("model", "hls", "overlay", "host", "bench")


def pytest_collection_modifyitems(config, items):
    import pytest

    for item in items:
        stage = item.path.parent.name
        if stage in STAGES:
            item.add_marker(getattr(pytest.mark, stage))
