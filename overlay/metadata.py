"""``vitcod.json``: the build-time metadata the board-side driver is configured by, and its archive.

Where this fits: the last step of ``make -C overlay bitstream`` (:func:`package`) writes
``build/<board>/vitcod.json`` next to ``vitcod.bit`` / ``vitcod.hwh`` and packs the three into one
``vitcod-<board>.tar.gz`` to copy to the board. The host driver reads the shapes, fixed-point
formats, stream geometry, DMA / IP names and register map from the JSON instead of hard-coding
them, and compares ``model_id`` with the IP's identifier registers.

The JSON is checked twice: against ``overlay/vitcod.schema.json`` with :func:`validate_schema`, a
small validator for the subset of JSON Schema (2020-12) the schema uses (no extra dependency; a
schema keyword outside the subset is an error, not silently ignored), and by
:func:`check_metadata`'s cross-field rules (geometry follows the wire format, the DMA length
register holds the largest batch, the register map is the format version's, the model identifier
is the one of the recorded content id and interface).
"""

from __future__ import annotations

import gzip
import io
import json
import math
import re
import tarfile
from pathlib import Path
from typing import Any, Mapping

from ..fileio import atomic_write, sha256_file
from ..host.contract import (FORMAT_VERSION, STATUS_BITS, WORD_BITS, WORD_BYTES, ApType, TensorMeta,
                             identifier_problem, register_map, values_per_word)
from ..host.errors import ApTypeError, MetadataError
from .config import OverlayConfig

__all__ = ["SCHEMA_PATH", "MetadataError", "archive_name", "build_metadata", "check_metadata", "load_schema",
           "package", "validate_schema"]

SCHEMA_PATH = Path(__file__).resolve().parent / "vitcod.schema.json"


# ---- JSON Schema subset ------------------------------------------------------------------------
_ANNOTATIONS = {"$schema", "$id", "title", "description", "$comment", "$defs"}
_KEYWORDS = _ANNOTATIONS | {
    "$ref", "type", "properties", "required", "additionalProperties", "items", "minItems", "maxItems",
    "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "pattern", "enum", "const", "minLength",
    "minProperties",
}
_TYPES = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}


def _equal(a: Any, b: Any) -> bool:
    """JSON equality (True is not 1)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return a == b


def validate_schema(instance: Any, schema: Mapping[str, Any], *, root: Mapping[str, Any] | None = None,
                    path: str = "$") -> list[str]:
    """Validate ``instance`` against ``schema`` (the subset of JSON Schema listed in ``_KEYWORDS``).

    Returns:
        One message per violation, each starting with the JSON path; empty when valid.

    Raises:
        MetadataError: the schema uses a keyword outside the supported subset.
    """
    root = schema if root is None else root
    unknown = set(schema) - _KEYWORDS
    if unknown:
        raise MetadataError([f"schema at {path} uses unsupported keywords {sorted(unknown)}"])
    errors: list[str] = []
    if "$ref" in schema:
        ref = schema["$ref"]
        if not ref.startswith("#/"):
            raise MetadataError([f"schema at {path}: only local $ref are supported, got {ref!r}"])
        target: Any = root
        for part in ref[2:].split("/"):
            target = target[part]
        errors += validate_schema(instance, target, root=root, path=path)
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_TYPES[t](instance) for t in types):
            return errors + [f"{path}: expected {' or '.join(types)}, got {type(instance).__name__} {instance!r}"]
    if "const" in schema and not _equal(instance, schema["const"]):
        errors.append(f"{path}: must be {schema['const']!r}, got {instance!r}")
    if "enum" in schema and not any(_equal(instance, e) for e in schema["enum"]):
        errors.append(f"{path}: must be one of {schema['enum']!r}, got {instance!r}")
    if _TYPES["number"](instance):
        if "minimum" in schema and instance < schema["minimum"]:
            errors.append(f"{path}: {instance} < minimum {schema['minimum']}")
        if "maximum" in schema and instance > schema["maximum"]:
            errors.append(f"{path}: {instance} > maximum {schema['maximum']}")
        if "exclusiveMinimum" in schema and instance <= schema["exclusiveMinimum"]:
            errors.append(f"{path}: {instance} <= exclusive minimum {schema['exclusiveMinimum']}")
        if "exclusiveMaximum" in schema and instance >= schema["exclusiveMaximum"]:
            errors.append(f"{path}: {instance} >= exclusive maximum {schema['exclusiveMaximum']}")
    if isinstance(instance, str):
        if "minLength" in schema and len(instance) < schema["minLength"]:
            errors.append(f"{path}: shorter than {schema['minLength']} characters")
        if "pattern" in schema and not re.search(schema["pattern"], instance):
            errors.append(f"{path}: {instance!r} does not match {schema['pattern']!r}")
    if isinstance(instance, list):
        if "minItems" in schema and len(instance) < schema["minItems"]:
            errors.append(f"{path}: fewer than {schema['minItems']} items")
        if "maxItems" in schema and len(instance) > schema["maxItems"]:
            errors.append(f"{path}: more than {schema['maxItems']} items")
        if "items" in schema:
            for i, item in enumerate(instance):
                errors += validate_schema(item, schema["items"], root=root, path=f"{path}[{i}]")
    if isinstance(instance, dict):
        for key in schema.get("required", []):
            if key not in instance:
                errors.append(f"{path}: missing required property {key!r}")
        if "minProperties" in schema and len(instance) < schema["minProperties"]:
            errors.append(f"{path}: fewer than {schema['minProperties']} properties")
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties", True)
        for key, value in instance.items():
            if key in props:
                errors += validate_schema(value, props[key], root=root, path=f"{path}.{key}")
            elif extra is False:
                errors.append(f"{path}: unexpected property {key!r}")
            elif isinstance(extra, Mapping):
                errors += validate_schema(value, extra, root=root, path=f"{path}.{key}")
    return errors


def load_schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text())


# ---- cross-field rules ---------------------------------------------------------------------------
def check_metadata(meta: Mapping[str, Any]) -> None:
    """Validate vitcod.json: the schema, then the rules a schema cannot express.

    Raises:
        MetadataError: listing every problem found.
    """
    problems = validate_schema(meta, load_schema())
    if problems:
        raise MetadataError(problems)
    for key in ("input", "output"):
        t = meta[key]
        try:
            wt = ApType.parse(t["type"])
        except ApTypeError as exc:
            problems.append(f"$.{key}.type: {exc}")
            continue
        if (wt.width, wt.integer, wt.signed) != (t["width"], t["integer"], t["signed"]):
            problems.append(f"$.{key}: width/integer/signed {t['width']}/{t['integer']}/{t['signed']} disagree with {t['type']}")
        if t["values"] != math.prod(t["shape"]):
            problems.append(f"$.{key}.values {t['values']} != product of shape {t['shape']}")
        vpw = values_per_word(t["width"])
        words = -(-t["values"] // vpw)
        if t["values_per_word"] != vpw:
            problems.append(f"$.{key}.values_per_word {t['values_per_word']} != floor(64 / {t['width']}) = {vpw}")
        if t["words_per_image"] != words:
            problems.append(f"$.{key}.words_per_image {t['words_per_image']} != ceil({t['values']} / {vpw}) = {words}")
        if t["bytes_per_image"] != t["words_per_image"] * WORD_BYTES:
            problems.append(f"$.{key}.bytes_per_image {t['bytes_per_image']} != 8 * words_per_image")
    largest = meta["max_batch"] * max(meta["input"]["bytes_per_image"], meta["output"]["bytes_per_image"])
    if meta["dma"]["max_transfer_bytes"] != largest:
        problems.append(f"$.dma.max_transfer_bytes {meta['dma']['max_transfer_bytes']} != max_batch * largest image ({largest})")
    if 2 ** meta["dma"]["length_width"] - 1 < largest:
        problems.append(f"$.dma.length_width {meta['dma']['length_width']} bits cannot hold a {largest}-byte transfer")
    if meta["ip"]["registers"] != register_map():
        problems.append(f"$.ip.registers differ from the format-version-{FORMAT_VERSION} register map")
    if not problems:  # the identifier must be the one of the recorded content and interface
        tensors = [TensorMeta(tuple(meta[k]["shape"]), ApType.parse(meta[k]["type"]), meta[k].get("element_size"))
                   for k in ("input", "output")]  # element_size: io_stream only
        problem = identifier_problem("$", int(meta["model_id"], 16), int(meta["content_id"], 16), *tensors,
                                     meta["format_version"])
        if problem:
            problems.append(problem)
    if meta["files"]["bitstream"]["name"].rsplit(".", 1)[0] != meta["files"]["hwh"]["name"].rsplit(".", 1)[0]:
        problems.append("$.files: the .bit and .hwh must share a base name for PYNQ")
    if problems:
        raise MetadataError(problems)


# ---- building and packaging ----------------------------------------------------------------------
def build_metadata(config: OverlayConfig, tool_versions: Mapping[str, str],
                   resources: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The vitcod.json content for a finished build in ``config.build_dir`` (bit + hwh present)."""
    files = {}
    for key, name in (("bitstream", "vitcod.bit"), ("hwh", "vitcod.hwh")):
        path = config.build_dir / name
        if not path.is_file():
            raise FileNotFoundError(f"{path} missing: the bitstream step did not finish")
        files[key] = {"name": name, "sha256": sha256_file(path)}
    meta: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "model_id": config.network.model_id_hex,
        "content_id": f"0x{config.network.content_id:016x}",
        "board": {"name": config.board.name, "part": config.board.part, "board_part": config.board.board_part},
        "clock_mhz": config.clock_mhz,
        "tools": {"vitis_hls": tool_versions["vitis_hls"], "vivado": tool_versions["vivado"]},
        "network": {"name": config.network.name},
        "stream": {"width": WORD_BITS, "tlast": "last_word_of_batch"},
        "max_batch": config.max_batch,
        "input": config.input.to_dict(),
        "output": config.output.to_dict(),
        "dma": {"name": config.dma_cell, "scatter_gather": False, "length_width": config.dma_length_width,
                "max_transfer_bytes": config.max_transfer_bytes},
        "ip": {"name": config.ip_cell, "vlnv": config.ip.vlnv, "top": config.top,
               "registers": register_map(),
               "status_bits": dict(STATUS_BITS)},
        "files": files,
    }
    if resources is not None:
        meta["resources"] = {"estimate": dict(resources["estimate"]), "available": dict(resources["available"])}
    return meta


def archive_name(board: str) -> str:
    return f"vitcod-{board}.tar.gz"


def package(config: OverlayConfig, tool_versions: Mapping[str, str],
            resources: Mapping[str, Any] | None = None) -> Path:
    """Write build/<board>/vitcod.json and vitcod-<board>.tar.gz (bit + hwh + json under vitcod-<board>/).

    The JSON is validated before anything is written; both files are written atomically, and the
    archive is reproducible (fixed order, zero timestamps and owners).
    """
    meta = build_metadata(config, tool_versions, resources)
    check_metadata(meta)
    text = json.dumps(meta, indent=2) + "\n"
    atomic_write(config.build_dir / "vitcod.json", text)

    folder = f"vitcod-{config.board.name}"
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in ("vitcod.bit", "vitcod.hwh", "vitcod.json"):
            data = (config.build_dir / name).read_bytes()
            info = tarfile.TarInfo(f"{folder}/{name}")
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            tar.addfile(info, io.BytesIO(data))
    gz = io.BytesIO()
    with gzip.GzipFile(fileobj=gz, mode="wb", mtime=0) as f:
        f.write(raw.getvalue())
    out = config.build_dir / archive_name(config.board.name)
    atomic_write(out, gz.getvalue())
    return out
