"""vitcod.json: the schema (overlay/vitcod.schema.json), its small validator and the cross-field
rules in vitcod.overlay.metadata, and the archive packing."""

from __future__ import annotations

import copy
import json
import tarfile

import pytest
from json_edit import set_path as _set

from vitcod.overlay.config import OVERLAY_DIR as OVERLAY

from vitcod.overlay.codegen import configure
from vitcod.overlay.config import OverlayConfig
from vitcod.overlay.example import DummyNetwork
from vitcod.overlay.metadata import (
    MetadataError, build_metadata, check_metadata, load_schema, package, validate_schema,
)

TOOLS = {"vitis_hls": "2024.1", "vivado": "2024.1"}


@pytest.fixture()
def config(tmp_path, example_network) -> OverlayConfig:
    cfg = OverlayConfig.create(example_network, "kv260", max_batch=16, build_dir=tmp_path / "b")
    configure(cfg)
    (cfg.build_dir / "vitcod.bit").write_bytes(b"\x00bit")
    (cfg.build_dir / "vitcod.hwh").write_text("<hwh/>")
    return cfg


@pytest.fixture()
def meta(config) -> dict:
    return build_metadata(config, TOOLS, {"estimate": {"dsp": 1, "bram_18k": 2, "lut": 3, "ff": 4},
                                          "available": config.board.resources})


def test_valid_metadata_passes(meta, config):
    check_metadata(meta)
    assert meta["content_id"] == "0x0123456789abcdef" and meta["model_id"] == DummyNetwork().model_id
    assert meta["format_version"] == 2 and len(meta["ip"]["registers"]) == 14
    assert meta["input"]["values_per_word"] == 5 and meta["input"]["words_per_image"] == 5
    assert meta["output"]["values_per_word"] == 6 and meta["output"]["words_per_image"] == 2
    assert meta["dma"] == {"name": "axi_dma_0", "scatter_gather": False, "length_width": 10, "max_transfer_bytes": 640}
    assert meta["ip"]["registers"]["batch_count"] == {"offset": 0x10, "access": "rw"}
    assert meta["board"]["part"] == "xck26-sfvc784-2LV-c"


BROKEN = {
    "missing_model_id": (_set("model_id", KeyError), "missing required property 'model_id'"),
    "model_id_short": (_set("model_id", "0x1234"), "$.model_id"),
    "float_on_wire": (_set("input.type", "float"), "$.input.type"),
    "sg_enabled": (_set("dma.scatter_gather", True), "$.dma.scatter_gather"),
    "unknown_board": (_set("board.name", "zcu102"), "$.board.name"),
    "extra_key": (_set("stream.endianness", "big"), "unexpected property 'endianness'"),
    "tool_version": (_set("tools.vivado", "latest"), "$.tools.vivado"),
    "bool_as_int": (_set("max_batch", True), "$.max_batch: expected integer"),
    "values_per_word": (_set("input.values_per_word", 4), "values_per_word 4 != floor(64 / 12) = 5"),
    "words_per_image": (_set("output.words_per_image", 1), "words_per_image 1 != ceil(7 / 6) = 2"),
    "length_width": (_set("dma.length_width", 9), "cannot hold a 640-byte transfer"),
    "register_moved": (_set("ip.registers.batch_count", {"offset": 0x14, "access": "rw"}), "register map"),
    "width_vs_type": (_set("output.width", 12), "disagree with ap_fixed<10,3,AP_RND,AP_SAT>"),
    "bad_sha": (_set("files.hwh.sha256", "00"), "$.files.hwh.sha256"),
    "missing_content_id": (_set("content_id", KeyError), "missing required property 'content_id'"),
    "format_version_1": (_set("format_version", 1), "$.format_version: must be 2"),
    # a type edited after the build: the recorded identifier is no longer the interface's
    "edited_type": (_set("input.type", "ap_fixed<12,4,AP_RND>"), "but its content_id, input and output give"),
    "edited_content": (_set("content_id", "0x0000000000000001"), "a type, shape or content_id was edited"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_metadata_is_rejected(meta, case):
    change, message = BROKEN[case]
    broken = copy.deepcopy(meta)
    change(broken)
    with pytest.raises(MetadataError) as err:
        check_metadata(broken)
    assert any(message in p for p in err.value.problems), err.value.problems


def test_validator_rejects_unsupported_schema_keywords():
    with pytest.raises(MetadataError, match="unsupported keywords"):
        validate_schema({}, {"type": "object", "oneOf": []})
    assert validate_schema(3, {"type": "integer", "minimum": 4}) == ["$: 3 < minimum 4"]
    assert validate_schema([1, "x"], {"items": {"type": "integer"}}) == ["$[1]: expected integer, got str 'x'"]


def test_schema_uses_only_the_supported_subset(meta):
    schema = load_schema()
    assert validate_schema(meta, schema) == []
    assert json.loads((OVERLAY / "vitcod.schema.json").read_text())["$schema"].endswith("2020-12/schema")


def test_package_writes_json_and_archive(config):
    archive = package(config, TOOLS)
    meta = json.loads((config.build_dir / "vitcod.json").read_text())
    check_metadata(meta)
    assert "resources" not in meta
    with tarfile.open(archive) as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert sorted(members) == ["vitcod-kv260/vitcod.bit", "vitcod-kv260/vitcod.hwh", "vitcod-kv260/vitcod.json"]
        assert tar.extractfile("vitcod-kv260/vitcod.bit").read() == b"\x00bit"
        assert all(m.mtime == 0 for m in members.values())
    first = archive.read_bytes()
    assert package(config, TOOLS).read_bytes() == first  # reproducible


def test_package_refuses_incomplete_build(config):
    (config.build_dir / "vitcod.hwh").unlink()
    with pytest.raises(FileNotFoundError, match="vitcod.hwh"):
        package(config, TOOLS)
    assert not (config.build_dir / "vitcod.json").exists()
    assert not list(config.build_dir.glob("*.tar.gz"))


def test_package_refuses_invalid_metadata(config):
    with pytest.raises(MetadataError, match="tools.vivado"):
        package(config, {"vitis_hls": "2024.1", "vivado": "unknown"})
    assert not (config.build_dir / "vitcod.json").exists()
