"""vitcod.host.metadata: reading vitcod.json (and finding network.json) on the board side, what the
overlay flow writes, and refusing what the driver cannot use."""

from __future__ import annotations

import copy
import json

import pytest
from json_edit import set_path as _set
from overlay_factory import MAX_BATCH, NETWORKS, TestOverlay, make_overlay

from vitcod.host import MetadataError, NetworkDescription, OverlayMetadata, OverlayMismatchError
from vitcod.host.contract import REGISTERS


@pytest.fixture()
def overlay(tmp_path) -> TestOverlay:
    return make_overlay(tmp_path)


# ---- reading what the flow writes ------------------------------------------------------------------
def test_reads_packaged_metadata(overlay):
    meta = overlay.metadata
    assert meta.content_id == 0x0123456789ABCDEF and meta.model_id_hex == overlay.net.model_id
    assert meta.max_batch == MAX_BATCH
    assert meta.input.shape == (23,) and meta.input.format.cpp == "ap_fixed<12,4>"
    assert (meta.input.values_per_word, meta.input.words_per_image, meta.input.bytes_per_image) == (5, 5, 40)
    assert (meta.output.values_per_word, meta.output.words_per_image) == (6, 2)
    assert meta.output.format.rounding == "AP_RND" and meta.output.format.saturation == "AP_SAT"
    assert (meta.dma_name, meta.ip_name, meta.ip_vlnv) == ("axi_dma_0", "vitcod_0", "vitcod:hls:vitcod_top:1.0")
    assert meta.registers == {r.name: r.offset for r in REGISTERS}
    assert meta.max_images_per_transfer == MAX_BATCH
    assert meta.file_path("bitstream") == overlay.folder / "vitcod.bit"
    meta.verify_files()  # the SHA-256 recorded at packaging time


@pytest.mark.parametrize("key", sorted(NETWORKS))
def test_derived_metadata_equals_a_builds(tmp_path, key):
    ov = make_overlay(tmp_path, key)
    built = ov.metadata
    derived = OverlayMetadata.from_network(NetworkDescription.load(ov.network_json), MAX_BATCH)
    for attr in ("model_id", "max_batch", "input", "output", "dma_name", "dma_length_width", "ip_name", "ip_vlnv",
                 "registers", "status_bits", "format_version"):
        assert getattr(derived, attr) == getattr(built, attr), attr


def test_network_found_next_to_metadata_or_in_overlay_config(overlay):
    assert NetworkDescription.find(overlay.folder).path.name == "network.json"
    (overlay.folder / "network.json").unlink()
    found = NetworkDescription.find(overlay.folder)  # the configure step's overlay_config.json
    assert found.path.name == "overlay_config.json" and found.name == "dummy_net"
    assert found.sources == ((overlay.folder.parent / "net" / "dummy_net.cpp").resolve(),)
    (overlay.folder / "overlay_config.json").unlink()
    with pytest.raises(MetadataError, match="network=path/to/network.json"):
        NetworkDescription.find(overlay.folder)


# ---- refusing what the driver cannot use -----------------------------------------------------------------
BROKEN = {
    "no_model_id": (_set("model_id", KeyError), "$.model_id"),
    "short_model_id": (_set("model_id", "0x12"), "16 hex digits"),
    "format_version": (_set("format_version", 1), "wire format 2"),
    "no_content_id": (_set("content_id", KeyError), "$.content_id: expected str"),
    "float_input": (_set("input.type", "float"), "floats are not allowed"),
    "words_per_image": (_set("input.words_per_image", 4), "words_per_image is 4"),
    "shape": (_set("output.shape", [0]), "positive integers"),
    "missing_register": (_set("ip.registers.status", KeyError), "registers.status: missing"),
    "register_access": (_set("ip.registers.batch_count", {"offset": 16, "access": "ro"}), "expected 'rw'"),
    "scatter_gather": (_set("dma.scatter_gather", True), "simple (direct register) mode"),
    "no_dma_name": (_set("dma.name", KeyError), "$.dma.name"),
    "length_width": (_set("dma.length_width", 40), "length_width must be in 8..26"),
    "max_batch": (_set("max_batch", 0), "max_batch"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_metadata_is_refused(overlay, case):
    change, message = BROKEN[case]
    meta = json.loads((overlay.folder / "vitcod.json").read_text())
    broken = copy.deepcopy(meta)
    change(broken)
    with pytest.raises(MetadataError) as err:
        OverlayMetadata.from_dict(broken)
    assert any(message in p for p in err.value.problems), err.value.problems


def test_every_problem_is_listed(overlay):
    meta = json.loads((overlay.folder / "vitcod.json").read_text())
    meta["model_id"] = "nope"
    meta["input"]["type"] = "double"
    with pytest.raises(MetadataError) as err:
        OverlayMetadata.from_dict(meta)
    assert len(err.value.problems) == 2


def test_missing_or_unreadable_metadata(tmp_path):
    with pytest.raises(MetadataError, match="make -C overlay bitstream"):
        OverlayMetadata.load(tmp_path)
    (tmp_path / "vitcod.json").write_text("{not json")
    with pytest.raises(MetadataError, match="cannot be read as JSON"):
        OverlayMetadata.load(tmp_path)


def test_files_from_another_build_are_refused(overlay):
    (overlay.folder / "vitcod.bit").write_bytes(b"another bitstream")
    with pytest.raises(OverlayMismatchError, match="different builds"):
        overlay.metadata.verify_files()


def test_narrow_dma_length_register_limits_images_per_transfer(tmp_path):
    # 5 words (40 bytes) in, 2 words out per image; an 8-bit length register holds 255 bytes
    ov = make_overlay(tmp_path, max_batch=32, edit=_set("dma.length_width", 8))
    assert ov.metadata.max_images_per_transfer == 255 // 40 == 6
    meta = json.loads((ov.folder / "vitcod.json").read_text())
    meta["input"].update(shape=[200], values=200, words_per_image=40, bytes_per_image=320)  # 320 > 255 bytes
    with pytest.raises(MetadataError, match="even one image"):
        OverlayMetadata.from_dict(meta)
