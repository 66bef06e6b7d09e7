"""Fixtures of the hls tests (vitcod.hls: extension, engines, conversion, C-simulation, perf model).

``digits`` and ``tiny_config`` come from tests/flow_fixtures.py (shared with tests/model).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from edge_case_masks import edge_case_masks
from synthetic_run import make_run

from vitcod.model.run_layout import DEFAULT_HLS_STAGE, MASKS_FILE


@pytest.fixture(scope="module")
def synthetic_run(tmp_path_factory) -> Path:
    """A run folder with every stage's config and masks, never trained (see synthetic_run.py)."""
    return make_run(tmp_path_factory.mktemp("synthetic_run"))


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, digits, tiny_config):
    """build/<run>/<default HLS stage> of a tiny ViT trained 4 epochs with fixed masks (+ masks.npz)."""
    import tensorflow as tf

    from vitcod.model.mask_artifact import save_mask_artifact
    from vitcod.model.storage import save_model
    from vitcod.model.vit import build_vit

    masks = edge_case_masks(tiny_config.num_tokens)
    tf.keras.utils.set_random_seed(0)
    model = build_vit(tiny_config, autoencoder=True, masks=masks)
    model.compile(optimizer=tf.keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(digits.x_train, digits.y_train, epochs=4, batch_size=32, verbose=0)
    run = tmp_path_factory.mktemp("tiny_run")
    folder = run / DEFAULT_HLS_STAGE
    save_model(model, tiny_config, folder)
    save_mask_artifact(folder / MASKS_FILE, masks, 0.5)
    return run


@pytest.fixture(scope="session")
def tiny_io_designs(tiny_run, digits, tmp_path_factory):
    """The tiny trained run converted both ways (io_parallel, io_stream with attention lanes 2 x 3 and
    its token buffers in URAM, its scores in LUTRAM),
    written, compiled (no trace hooks) and run on the whole digits test split: ``{io_type: {"hls_model", "out", "y",
    "compile_seconds", "csim_seconds"}}``."""
    import time

    import numpy as np

    from vitcod.hls.convert import convert, write_project
    from vitcod.hls.network_csim import compile_project

    x = np.ascontiguousarray(digits.x_test, dtype=np.float64)
    designs = {}
    for io_type in ("io_parallel", "io_stream"):
        out = tmp_path_factory.mktemp(f"tiny_{io_type}") / "prj"
        # the stream design with softmax / P x V lanes (the planner's knobs): its outputs must still be
        # the io_parallel design's, bit for bit (tests/hls/test_hls_stream.py)
        # and its attention buffers bound to URAM, its scores to LUTRAM (BIND_STORAGE pragmas only: same outputs)
        lanes = ({"block0_attention": {"SoftmaxLanes": 2, "PvLanes": 3, "BufferStorage": "uram", "ScoreStorage": "lutram"}}
                 if io_type == "io_stream" else None)
        hls_model = convert(tiny_run, out, io_type=io_type, data=digits, layer_overrides=lanes)
        write_project(hls_model)
        compile_seconds = compile_project(hls_model, trace=False)
        t0 = time.perf_counter()
        y = np.asarray(hls_model.predict(x)).reshape(len(x), -1)
        designs[io_type] = {"hls_model": hls_model, "out": out, "y": y, "compile_seconds": compile_seconds,
                            "csim_seconds": time.perf_counter() - t0}
    return designs
