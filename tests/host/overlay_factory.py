"""Overlay folders for the host tests, as ``make -C overlay bitstream`` leaves them.

Each is the dummy network of vitcod.overlay.example (a reference network the C-simulation
library of the IP top runs), its network.json, vitcod.json from
vitcod.overlay.metadata.build_metadata and placeholder .bit/.hwh files. ``conftest.py`` shares
one set per session (``overlays``); tests that need a modified folder call :func:`make_overlay`.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from vitcod.host import NetworkDescription, OverlayMetadata
from vitcod.overlay.codegen import configure
from vitcod.overlay.config import OverlayConfig
from vitcod.overlay.example import DummyNetwork
from vitcod.overlay.metadata import build_metadata, check_metadata

TOOLS = {"vitis_hls": "2024.1", "vivado": "2024.1"}

# The networks the host tests run: signed 12-bit in / rounded saturated 10-bit out (general pack
# path, 5 values per word with a partly empty last word), and unsigned 8-bit pixels in / 16-bit out
# (the byte-aligned cast path; input shaped like the digits, 8x8x1).
NETWORKS = {
    "fixed12": (DummyNetwork("ap_fixed<12,4>", "ap_fixed<10,3,AP_RND,AP_SAT>", n_in=23, n_out=7,
                             content_id="0x0123456789abcdef"), None),
    "digits": (DummyNetwork("ap_ufixed<8,0>", "ap_fixed<16,6,AP_RND,AP_SAT>", n_in=64, n_out=10,
                            content_id="0xfedcba9876543210"), [8, 8, 1]),
}
# Their io_stream twins: the same arithmetic behind hls4ml's io_stream signature, wrapped by the
# DATAFLOW top (overlay/ip/vitcod_top_stream.h); the host drives them unchanged.
STREAM_TWINS = {"fixed12_stream": "fixed12", "digits_stream": "digits"}
for _key, _twin in STREAM_TWINS.items():
    NETWORKS[_key] = (replace(NETWORKS[_twin][0], io_type="io_stream"), NETWORKS[_twin][1])
MAX_BATCH = 8


@dataclass
class TestOverlay:
    __test__ = False  # a helper, not a test class

    net: DummyNetwork
    folder: Path            # vitcod.json + vitcod.bit + vitcod.hwh + network.json
    network_json: Path
    config: OverlayConfig

    @property
    def metadata(self) -> OverlayMetadata:
        return OverlayMetadata.load(self.folder)

    def random_raws(self, batch: int, seed: int = 0) -> np.ndarray:
        meta = self.metadata.input.format
        return np.random.default_rng(seed).integers(meta.min_raw, meta.max_raw, size=(batch, self.net.n_in),
                                                    endpoint=True, dtype=np.int64)


def make_overlay(root: Path, key: str = "fixed12", max_batch: int = MAX_BATCH, board: str = "pynq-z2",
                 edit=None) -> TestOverlay:
    """An overlay folder as a build leaves it; ``edit(meta_dict)`` may change vitcod.json."""
    net, shape = NETWORKS[key]
    net_json = net.write(root / "net", input_shape=shape)  # (digits: same C function, the image's shape)
    config = OverlayConfig.create(net_json, board, max_batch=max_batch, build_dir=root / "build")
    configure(config)
    (config.build_dir / "vitcod.bit").write_bytes(b"\x00placeholder bitstream")
    (config.build_dir / "vitcod.hwh").write_text("<placeholder/>")
    meta = build_metadata(config, TOOLS)
    check_metadata(meta)
    if edit is not None:
        edit(meta)
    (config.build_dir / "vitcod.json").write_text(json.dumps(meta, indent=2))
    spec = json.loads(net_json.read_text())  # next to vitcod.json, with absolute paths
    for key in ("sources", "include_dirs"):
        spec[key] = [str((net_json.parent / p).resolve()) for p in spec[key]]
    (config.build_dir / "network.json").write_text(json.dumps(spec, indent=2))
    return TestOverlay(net, config.build_dir, config.build_dir / "network.json", config)


def build_overlays(root: Path) -> dict[str, TestOverlay]:
    """One overlay folder per network of :data:`NETWORKS` under ``root``, with its C-simulation
    library built (concurrently; cached across runs by content hash)."""
    from vitcod.host.csim_backend import CsimLibrary

    overlays = {key: make_overlay(root / key, key) for key in NETWORKS}

    def build(ov: TestOverlay):
        return CsimLibrary.build(NetworkDescription.load(ov.network_json), MAX_BATCH, board="pynq-z2")

    with ThreadPoolExecutor(len(overlays)) as pool:
        list(pool.map(build, overlays.values()))
    return overlays
