"""``network.json``: the HLS stage's hand-over of the network to the overlay build and the host.

Where this fits: ``vitcod.hls.network`` writes it next to the hls4ml project; the overlay build
(``vitcod.overlay.config``) wraps the named C function in the IP top, and the host's C-simulation
and emulated backends compile the same function. :class:`NetworkDescription` is the one reader
and writer; :func:`model_identifier` makes the 64-bit identifier it carries (and the IP reports).

The format (paths relative to the file, or absolute)::

    {
      "name": "myproject",                 # C function: void myproject(input_t in[N_IN], result_t out[N_OUT])
      "header": "myproject.h",             # declares it and its input_t / result_t
      "sources": ["myproject.cpp"],        # compiled by Vitis HLS with the top
      "include_dirs": ["."],               # -I for the network sources (hls4ml: its firmware/ dir)
      "input":  {"type": "ap_fixed<16,6>", "shape": [8, 8, 1]},
      "output": {"type": "ap_fixed<16,6>", "shape": [10]},
      "content_id": "0x0123456789abcdef",  # content_identifier(weights, masks, precision)
      "model_id": "0x...",                 # model_identifier(content_id, input, output)
      "weights_dir": "weights",            # optional: hls4ml's C-simulation weight files
      "io_type": "io_parallel"             # optional (default io_parallel); see below
    }

An ``"io_type": "io_stream"`` network keeps hls4ml's io_stream signature
``void myproject(hls::stream<input_t> &in, hls::stream<result_t> &out)`` (one call per image), and
each tensor then carries ``"element_size"``: the values of one stream element (``nnet::array<T, N>``'s
N): the input's is its channels (``shape[-1]``, one element per pixel, C-order pixels), the output's
divides its values (hls4ml: all of them, one element per image). ``io_type`` and the element sizes
enter the model identifier (only for io_stream, so io_parallel identifiers are unchanged).

A tensor may also carry its derived geometry (``values``, ``width``, ``values_per_word``, ...,
as ``vitcod.json`` does); each recorded value must be the one this module derives.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ...fileio import atomic_write
from ..errors import ApTypeError, MetadataError
from .aptypes import ApType
from .packing import FORMAT_VERSION, WORD_BITS, WORD_BYTES, values_per_word, words_per_image

NETWORK_FILE = "network.json"
OVERLAY_CONFIG_FILE = "overlay_config.json"
"""The overlay build's resolved configuration; its ``network`` entry is a network description."""

MODEL_ID_PATTERN = re.compile(r"^0x[0-9a-fA-F]{16}$")
_C_IDENT = re.compile(r"^[A-Za-z_]\w*$")
_REQUIRED = ("name", "header", "sources", "include_dirs", "input", "output", "content_id", "model_id")
_OPTIONAL = ("weights_dir", "io_type")
IO_TYPES = ("io_parallel", "io_stream")


def read_json(path: Path, what: str, missing_hint: str) -> Any:
    """Parse a JSON artifact, every failure a :class:`MetadataError` naming the file and why.

    Args:
        path: the file.
        what: what it is, for messages (``"network description"``).
        missing_hint: who writes it, said when it does not exist.
    """
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise MetadataError(f"expected the {what} ({missing_hint}), got no such file ({path})") from None
    except OSError as exc:
        raise MetadataError(f"expected a readable {what}, got {exc.strerror or exc} ({path})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MetadataError(f"expected UTF-8 JSON text, got byte {raw[exc.start]:#04x} at offset {exc.start}: not UTF-8 "
                            f"({what} {path})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise MetadataError(f"expected a JSON {what}, got text that cannot be read as JSON ({exc.msg} at line "
                            f"{exc.lineno} column {exc.colno}) ({path})") from None


def content_identifier(weights: Mapping[str, Any], masks: Mapping[str, Any], precision: Mapping[str, Any]) -> str:
    """64-bit hash of what a model computes with: its weights, masks and precision config.

    Arrays are hashed by name (sorted), dtype (little-endian), shape and bytes; ``precision`` as
    canonical JSON (the caller replaces file paths in it by the files' content, so the hash does
    not depend on where a run folder lies). Any change to a weight, a mask bit or a type changes it.

    Returns:
        ``"0x"`` + 16 lowercase hex digits.
    """
    h = hashlib.sha256(b"vitcod-model-id-v1\0")
    for section, arrays in (("weights", weights), ("masks", masks)):
        for name in sorted(arrays):
            a = np.ascontiguousarray(arrays[name])
            a = a.astype(a.dtype.newbyteorder("<"), copy=False)
            h.update(f"{section}/{name}|{a.dtype.str}|{a.shape}\0".encode())
            h.update(a.tobytes())
    h.update(json.dumps(precision, sort_keys=True, separators=(",", ":")).encode())
    return "0x" + h.hexdigest()[:16]


def interface_fields(input: "TensorMeta", output: "TensorMeta", format_version: int = FORMAT_VERSION) -> dict[str, Any]:
    """Everything that defines the IP's interface, as :func:`model_identifier` hashes it: the wire
    format version and word width, and per tensor its shape, its type with every mode explicit
    (:attr:`ApType.canonical`) and its stream geometry."""
    def tensor(t: "TensorMeta") -> dict[str, Any]:
        fields = {"shape": list(t.shape), "type": t.format.canonical, "values": t.values,
                  "values_per_word": t.values_per_word, "words_per_image": t.words_per_image}
        if t.element is not None:  # io_stream only: io_parallel identifiers stay what they were
            fields["element_size"] = t.element
        return fields
    fields = {"format_version": format_version, "word_bits": WORD_BITS, "input": tensor(input), "output": tensor(output)}
    if input.element is not None or output.element is not None:
        fields["io_type"] = "io_stream"
    return fields


def model_identifier(content_id: int | str, input: "TensorMeta", output: "TensorMeta",
                     format_version: int = FORMAT_VERSION) -> str:
    """The 64-bit identifier of a deployed model, which the IP reports (``model_id_lo``/``_hi``).

    A hash of :func:`content_identifier` (weights, masks, precision) and of the interface
    (:func:`interface_fields`: types with their quantization/overflow modes, shapes, stream
    geometry, wire-format version). The host recomputes it from ``network.json`` / ``vitcod.json``
    and refuses an IP that reports another one, so a description edited in any of these fields
    (or written for another model) cannot drive the IP. No path enters it.

    Returns:
        ``"0x"`` + 16 lowercase hex digits.
    """
    content = int(content_id, 16) if isinstance(content_id, str) else int(content_id)
    h = hashlib.sha256(b"vitcod-model-id-v2\0")
    h.update(content.to_bytes(8, "little"))
    h.update(json.dumps(interface_fields(input, output, format_version), sort_keys=True,
                        separators=(",", ":")).encode())
    return "0x" + h.hexdigest()[:16]


def identifier_problem(where: str, recorded: int, content_id: int, input: "TensorMeta", output: "TensorMeta",
                       format_version: int = FORMAT_VERSION) -> str | None:
    """A message if ``recorded`` is not :func:`model_identifier` of the other fields (the file was
    edited after it was written), else None."""
    derived = int(model_identifier(content_id, input, output, format_version), 16)
    if derived == recorded:
        return None
    return (f"{where}: model_id is 0x{recorded:016x}, but its content_id, input and output give 0x{derived:016x} "
            "(a type, shape or content_id was edited after the file was written; regenerate it)")


@dataclass(frozen=True)
class TensorMeta:
    """How one image of the input (or one result) travels: shape, type and stream geometry."""

    shape: tuple[int, ...]
    format: ApType
    #: io_stream only: values per stream element (``nnet::array<T, element>``); None for io_parallel.
    element: int | None = None

    @property
    def values(self) -> int:
        return int(math.prod(self.shape))

    @property
    def elements_per_image(self) -> int:
        """Stream elements of one image (1 value each for io_parallel, which has none)."""
        return self.values // (self.element or 1)

    @property
    def values_per_word(self) -> int:
        return values_per_word(self.format.width)

    @property
    def words_per_image(self) -> int:
        return words_per_image(self.values, self.format.width)

    @property
    def bytes_per_image(self) -> int:
        return self.words_per_image * WORD_BYTES

    @classmethod
    def from_dict(cls, data: Any, where: str, problems: list[str]) -> "TensorMeta | None":
        """Read ``{"type", "shape", [derived geometry]}``; problems are appended, None returned."""
        if not isinstance(data, Mapping):
            problems.append(f"{where}: expected an object, got {data!r}")
            return None
        try:
            fmt = ApType.parse(data.get("type"))
        except ApTypeError as exc:
            problems.append(f"{where}.type: {exc}")
            return None
        shape = data.get("shape")
        if not isinstance(shape, list) or not shape or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0
                                                                for d in shape):
            problems.append(f"{where}.shape: expected a list of positive integers, got {shape!r}")
            return None
        element = data.get("element_size")
        if element is not None and (not isinstance(element, int) or isinstance(element, bool) or element <= 0
                                    or math.prod(shape) % element):
            problems.append(f"{where}.element_size: expected a positive integer dividing the {math.prod(shape)} "
                            f"values of shape {list(shape)}, got {element!r}")
            return None
        tensor = cls(tuple(shape), fmt, element)
        # Recorded geometry must be what the contract derives: otherwise the words would be misread.
        for key, value in tensor.to_dict().items():
            if key not in ("shape", "type") and key in data and data[key] != value:
                problems.append(f"{where}.{key} is {data[key]!r} but {fmt.cpp} with shape {list(shape)} gives {value!r}")
        return tensor

    def to_dict(self) -> dict[str, Any]:
        """The tensor with its geometry, as ``vitcod.json`` records it."""
        return {"shape": list(self.shape), "values": self.values, "type": self.format.cpp, "width": self.format.width,
                "integer": self.format.integer, "signed": self.format.signed,
                "values_per_word": self.values_per_word, "words_per_image": self.words_per_image,
                "bytes_per_image": self.bytes_per_image, **self.element_dict()}

    def element_dict(self) -> dict[str, int]:
        """``{"element_size": n}`` for an io_stream tensor, else empty."""
        return {} if self.element is None else {"element_size": self.element}


@dataclass(frozen=True)
class NetworkDescription:
    """``network.json``: the network C function the IP wraps (io_parallel or io_stream, see the module
    docstring).

    Paths are absolute (resolved against the JSON file's folder).
    """

    name: str
    header: str
    sources: tuple[Path, ...]
    include_dirs: tuple[Path, ...]
    input: TensorMeta
    output: TensorMeta
    model_id: int
    content_id: int
    path: Path | None = None
    #: Optional: hls4ml's C-simulation reads weights from text files in this folder at run
    #: time (its -DWEIGHTS_DIR); synthesis uses the initialised arrays instead.
    weights_dir: Path | None = None

    @classmethod
    def from_dict(cls, data: Any, base_dir: Path, where: str = NETWORK_FILE) -> "NetworkDescription":
        """Check and convert a parsed description; relative paths are resolved against ``base_dir``.

        Raises:
            MetadataError: listing every problem found (missing or unknown keys, a name that is
                not a C identifier, a type or shape the contract refuses, a malformed model id).
        """
        if not isinstance(data, Mapping):
            raise MetadataError(f"{where}: expected a JSON object, got {type(data).__name__}")
        missing = sorted(set(_REQUIRED) - set(data))
        unknown = sorted(set(data) - set(_REQUIRED) - set(_OPTIONAL))
        if missing or unknown:
            raise MetadataError(f"{where}: missing keys {missing}, unknown keys {unknown}")
        problems: list[str] = []
        if not isinstance(data["name"], str) or not _C_IDENT.match(data["name"]):
            problems.append(f"name must be a C identifier, got {data['name']!r}")
        if not isinstance(data["header"], str) or not data["header"]:
            problems.append(f"header must be a file name, got {data['header']!r}")
        paths = {}
        for key in ("sources", "include_dirs"):
            items = data[key]
            if not isinstance(items, list) or not all(isinstance(p, str) for p in items):
                problems.append(f"{key} must be a list of paths, got {items!r}")
                items = []
            paths[key] = tuple((base_dir / p).resolve() for p in items)
        tensors = {key: TensorMeta.from_dict(data[key], key, problems) for key in ("input", "output")}
        for key in ("content_id", "model_id"):
            if not isinstance(data[key], str) or not MODEL_ID_PATTERN.match(data[key]):
                problems.append(f"{key} must be '0x' + 16 hex digits, got {data[key]!r}")
        weights_dir = data.get("weights_dir")
        if weights_dir is not None and not isinstance(weights_dir, str):
            problems.append(f"weights_dir must be a path, got {weights_dir!r}")
        problems += _io_problems(data.get("io_type", "io_parallel"), tensors["input"], tensors["output"])
        if problems:
            raise MetadataError([f"{where}: {p}" for p in problems])
        return cls(data["name"], data["header"], paths["sources"], paths["include_dirs"], tensors["input"],
                   tensors["output"], int(data["model_id"], 16), int(data["content_id"], 16),
                   weights_dir=None if weights_dir is None else (base_dir / weights_dir).resolve())

    def to_dict(self) -> dict[str, Any]:
        """The description with absolute paths (every field: :meth:`from_dict` reads it back equal)."""
        data = {
            "name": self.name,
            "header": self.header,
            "sources": [str(p) for p in self.sources],
            "include_dirs": [str(p) for p in self.include_dirs],
            "input": {"type": self.input.format.cpp, "shape": list(self.input.shape)},
            "output": {"type": self.output.format.cpp, "shape": list(self.output.shape)},
            "content_id": f"0x{self.content_id:016x}",
            "model_id": self.model_id_hex,
        }
        if self.io_type == "io_stream":
            data["io_type"] = self.io_type
            data["input"].update(self.input.element_dict())
            data["output"].update(self.output.element_dict())
        if self.weights_dir is not None:
            data["weights_dir"] = str(self.weights_dir)
        return data

    @property
    def io_type(self) -> str:
        """``"io_stream"`` when the tensors carry stream element sizes, else ``"io_parallel"``."""
        return "io_stream" if self.input.element is not None else "io_parallel"

    @property
    def model_id_hex(self) -> str:
        return f"0x{self.model_id:016x}"

    def identifier_problem(self) -> str | None:
        """A message if ``model_id`` is not the identifier of this description's fields, else None."""
        return identifier_problem(str(self.path or NETWORK_FILE), self.model_id, self.content_id, self.input,
                                  self.output)

    @classmethod
    def load(cls, path: str | Path) -> "NetworkDescription":
        """Read a network description: ``network.json``, a folder holding one, or an overlay build's
        ``overlay_config.json`` (whose ``network`` entry is the same description, absolute paths).

        Raises:
            MetadataError: missing file, invalid JSON, or a description :meth:`from_dict` refuses.
        """
        path = Path(path)
        if path.is_dir():
            path = path / NETWORK_FILE
        data = read_json(path, "network description", "the HLS stage writes network.json")
        if path.name == OVERLAY_CONFIG_FILE and isinstance(data, Mapping):
            data = data.get("network")
        return replace(cls.from_dict(data, path.resolve().parent, where=str(path)), path=path)

    @classmethod
    def find(cls, overlay_dir: str | Path | None, network: str | Path | None = None) -> "NetworkDescription":
        """The network description for an overlay folder: ``network`` if given, else
        ``<overlay_dir>/network.json``, else ``<overlay_dir>/overlay_config.json`` (written by
        ``make -C overlay configure`` into the build folder).

        Raises:
            MetadataError: none found.
        """
        if network is not None:
            return cls.load(network)
        if overlay_dir is not None:
            for name in (NETWORK_FILE, OVERLAY_CONFIG_FILE):
                candidate = Path(overlay_dir) / name
                if candidate.is_file():
                    return cls.load(candidate)
        raise MetadataError(f"no network description for {overlay_dir}: pass network=path/to/network.json "
                            f"(or put {NETWORK_FILE} next to vitcod.json)")

    def save(self, path: str | Path) -> Path:
        """Write the description with absolute paths (atomically); returns ``path``."""
        path = Path(path)
        atomic_write(path, json.dumps(self.to_dict(), indent=2) + "\n")
        return path

    def source_files(self) -> list[Path]:
        """Every file the C simulation depends on: the sources and all C/C++ files under the
        include folders (hls4ml's firmware/: nnet_utils, weights...)."""
        files = set(self.sources)
        for folder in self.include_dirs:
            if folder.is_dir():
                files.update(p for p in folder.rglob("*") if p.is_file() and p.suffix in (".h", ".hpp", ".hh", ".cpp", ".cc", ".c", ".txt"))
        return sorted(files)


def _io_problems(io_type: Any, input: TensorMeta | None, output: TensorMeta | None) -> list[str]:
    """What is wrong with ``io_type`` and the tensors' ``element_size`` entries (see the module docstring)."""
    if io_type not in IO_TYPES:
        return [f"io_type: expected one of {list(IO_TYPES)}, got {io_type!r}"]
    if input is None or output is None:
        return []
    problems = []
    if io_type == "io_parallel":
        for key, t in (("input", input), ("output", output)):
            if t.element is not None:
                problems.append(f"{key}.element_size is given but io_type is io_parallel (an io_stream network "
                                "says \"io_type\": \"io_stream\")")
        return problems
    for key, t in (("input", input), ("output", output)):
        if t.element is None:
            problems.append(f"{key}.element_size: io_stream needs the values per stream element (nnet::array "
                            "size), got none")
    if input.element is not None and input.element != input.shape[-1]:
        problems.append(f"input.element_size is {input.element}, but an io_stream input streams one element per "
                        f"pixel: its channels, shape[-1] = {input.shape[-1]}")
    return problems
