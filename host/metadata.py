"""Build-time metadata the driver is configured by: ``vitcod.json`` and ``network.json``.

Where this fits: ``make -C overlay bitstream`` writes ``vitcod.json`` next to ``vitcod.bit`` and
``vitcod.hwh`` (schema: ``overlay/vitcod.schema.json``; writer: ``overlay/scripts/
overlay_metadata.py``). The driver reads the shapes, fixed-point formats, stream geometry, DMA and
IP names, register map and model identifier from it instead of hard-coding them, as finn-examples'
drivers read their ``io_shape_dict``. :class:`OverlayMetadata` is the board-side reader: it needs
only the standard library and checks the fields the driver relies on (the full schema check runs
at packaging time, on the build machine).

``network.json`` is the HLS stage's description of the network C function (name, header, sources,
include dirs, types, shapes, model id; see ``overlay/scripts/overlay_config.py``). The C-simulation
backend compiles the IP top against it (:class:`NetworkDescription`), and
:meth:`OverlayMetadata.from_network` derives the metadata a build would have, so the C simulation
of a network can run before any bitstream exists.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

from .errors import MetadataError
from .fixed import FixedFormat
from .wire import FORMAT_VERSION, WORD_BYTES, values_per_word, words_per_image

METADATA_FILE = "vitcod.json"
NETWORK_FILE = "network.json"

#: The register map of wire format 1 (offsets in the IP's s_axi_control); mirrors
#: overlay/scripts/overlay_config.py:REGISTERS, which the metadata records per build.
REGISTER_MAP_V1: dict[str, tuple[int, str]] = {
    "batch_count": (0x10, "rw"), "batch_done": (0x18, "ro"), "status": (0x20, "ro"),
    "format_version": (0x28, "ro"), "model_id_lo": (0x30, "ro"), "model_id_hi": (0x38, "ro"),
    "in_values": (0x40, "ro"), "in_words": (0x48, "ro"), "out_values": (0x50, "ro"),
    "out_words": (0x58, "ro"), "max_batch": (0x60, "ro"),
}
STATUS_BITS_V1 = {"tlast_early": 1, "tlast_missing": 2, "batch_clamped": 4}
DMA_LENGTH_WIDTH_MIN, DMA_LENGTH_WIDTH_MAX = 8, 26

_MODEL_ID = re.compile(r"^0x[0-9a-fA-F]{16}$")
_C_IDENT = re.compile(r"^[A-Za-z_]\w*$")


@dataclass(frozen=True)
class TensorMeta:
    """How one image of the input (or one result) travels: shape, type and stream geometry."""

    shape: tuple[int, ...]
    format: FixedFormat

    @property
    def values(self) -> int:
        return int(math.prod(self.shape))

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
        if not isinstance(data, Mapping):
            problems.append(f"{where}: expected an object, got {data!r}")
            return None
        try:
            fmt = FixedFormat.parse(data.get("type"))
        except MetadataError as exc:
            problems.append(f"{where}.type: {exc.problems[0]}")
            return None
        shape = data.get("shape")
        if not isinstance(shape, list) or not shape or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0
                                                                for d in shape):
            problems.append(f"{where}.shape: expected a list of positive integers, got {shape!r}")
            return None
        tensor = cls(tuple(shape), fmt)
        # Recorded geometry must be what this driver derives: otherwise the words would be misread.
        expected = {"values": tensor.values, "width": fmt.width, "integer": fmt.integer, "signed": fmt.signed,
                    "values_per_word": tensor.values_per_word, "words_per_image": tensor.words_per_image,
                    "bytes_per_image": tensor.bytes_per_image}
        for key, value in expected.items():
            if key in data and data[key] != value:
                problems.append(f"{where}.{key} is {data[key]!r} but {fmt.cpp} with shape {list(shape)} gives {value!r}")
        return tensor

    def to_dict(self) -> dict[str, Any]:
        return {"shape": list(self.shape), "values": self.values, "type": self.format.cpp, "width": self.format.width,
                "integer": self.format.integer, "signed": self.format.signed,
                "values_per_word": self.values_per_word, "words_per_image": self.words_per_image,
                "bytes_per_image": self.bytes_per_image}


@dataclass(frozen=True)
class OverlayMetadata:
    """What the driver needs from ``vitcod.json`` (see the module docstring).

    Attributes:
        model_id: the 64-bit model identifier the IP must report.
        max_batch: largest ``batch_count`` the IP honours.
        input, output: per-image tensors.
        dma_name, ip_name: block-design cell names of the AXI DMA and of the IP.
        dma_length_width: width of the DMA buffer-length register (bytes per transfer < 2**width).
        ip_vlnv: the IP's VLNV, as the .hwh records its type.
        registers: register name -> offset in the IP's AXI4-Lite space.
        files: ``{"bitstream": {"name", "sha256"}, "hwh": {...}}`` (empty when derived).
        path: the JSON file read, if any.
    """

    model_id: int
    max_batch: int
    input: TensorMeta
    output: TensorMeta
    dma_name: str
    dma_length_width: int
    ip_name: str
    ip_vlnv: str
    registers: dict[str, int]
    status_bits: dict[str, int] = field(default_factory=lambda: dict(STATUS_BITS_V1))
    format_version: int = FORMAT_VERSION
    network_name: str = "network"
    board: str = "unknown"
    clock_mhz: float = 100.0
    files: dict[str, dict[str, str]] = field(default_factory=dict)
    path: Path | None = None

    # ---- reading ---------------------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | Path) -> "OverlayMetadata":
        """Read ``vitcod.json`` (``path`` may be the file or the folder holding it).

        Raises:
            MetadataError: missing file, invalid JSON, or fields the driver cannot use.
        """
        path = Path(path)
        if path.is_dir():
            path = path / METADATA_FILE
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise MetadataError(f"{path} not found: the overlay build writes it next to vitcod.bit "
                                "(make -C overlay bitstream, or unpack vitcod-<board>.tar.gz)") from None
        except (OSError, json.JSONDecodeError) as exc:
            raise MetadataError(f"{path} cannot be read as JSON: {exc}") from None
        return cls.from_dict(data, path=path)

    @classmethod
    def from_dict(cls, data: Any, path: Path | None = None) -> "OverlayMetadata":
        """Check and convert the parsed vitcod.json content; lists every problem found."""
        where = str(path) if path else "vitcod.json"
        if not isinstance(data, Mapping):
            raise MetadataError(f"{where}: expected a JSON object, got {type(data).__name__}")
        problems: list[str] = []

        def need(key: str, kind: type | tuple[type, ...], parent: Mapping[str, Any] = data, prefix: str = "$"):
            value = parent.get(key) if isinstance(parent, Mapping) else None
            if value is None or not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
                problems.append(f"{prefix}.{key}: expected {getattr(kind, '__name__', kind)}, got {value!r}")
                return None
            return value

        version = need("format_version", int)
        if version is not None and version != FORMAT_VERSION:
            problems.append(f"$.format_version is {version}; this driver speaks wire format {FORMAT_VERSION} "
                            "(update vitcod on the board or rebuild the overlay)")
        model_id = need("model_id", str)
        if model_id is not None and not _MODEL_ID.match(model_id):
            problems.append(f"$.model_id must be '0x' + 16 hex digits, got {model_id!r}")
            model_id = None
        max_batch = need("max_batch", int)
        if max_batch is not None and not 1 <= max_batch < 2 ** 32:
            problems.append(f"$.max_batch must be in 1..2**32-1, got {max_batch}")
        tensors = {key: TensorMeta.from_dict(data.get(key), f"$.{key}", problems) for key in ("input", "output")}
        dma, ip = data.get("dma"), data.get("ip")
        dma_name = need("name", str, dma, "$.dma")
        length_width = need("length_width", int, dma, "$.dma")
        if length_width is not None and not DMA_LENGTH_WIDTH_MIN <= length_width <= DMA_LENGTH_WIDTH_MAX:
            problems.append(f"$.dma.length_width must be in {DMA_LENGTH_WIDTH_MIN}..{DMA_LENGTH_WIDTH_MAX}, got {length_width}")
        if isinstance(dma, Mapping) and dma.get("scatter_gather", False):
            problems.append("$.dma.scatter_gather is true; the driver drives the DMA in simple (direct register) mode")
        ip_name = need("name", str, ip, "$.ip")
        ip_vlnv = need("vlnv", str, ip, "$.ip")
        registers = cls._registers(ip.get("registers") if isinstance(ip, Mapping) else None, problems)
        status_bits = ip.get("status_bits", STATUS_BITS_V1) if isinstance(ip, Mapping) else STATUS_BITS_V1
        if not isinstance(status_bits, Mapping) or not all(isinstance(v, int) for v in status_bits.values()):
            problems.append(f"$.ip.status_bits: expected {{name: bit}}, got {status_bits!r}")
        clock_mhz = data.get("clock_mhz", 100.0)
        if isinstance(clock_mhz, bool) or not isinstance(clock_mhz, (int, float)) or clock_mhz <= 0:
            problems.append(f"$.clock_mhz: expected a positive number, got {clock_mhz!r}")
        # A length register too narrow for max_batch images is not an error here: the driver then
        # splits batches by what one transfer can hold (max_images_per_transfer).
        if tensors["input"] and tensors["output"] and length_width:
            largest = max(tensors["input"].bytes_per_image, tensors["output"].bytes_per_image)
            if largest > 2 ** length_width - 1:
                problems.append(f"$.dma.length_width {length_width} bits cannot hold even one image ({largest} bytes)")
        files = data.get("files", {})
        if not isinstance(files, Mapping):
            problems.append(f"$.files: expected an object, got {files!r}")
            files = {}
        if problems:
            raise MetadataError([f"{where}: {p}" for p in problems])
        board = data.get("board", {})
        network = data.get("network", {})
        return cls(
            model_id=int(model_id, 16), max_batch=max_batch, input=tensors["input"], output=tensors["output"],
            dma_name=dma_name, dma_length_width=length_width, ip_name=ip_name, ip_vlnv=ip_vlnv,
            registers=registers, status_bits={str(k): int(v) for k, v in dict(status_bits).items()},
            format_version=version, network_name=str(network.get("name", "network")) if isinstance(network, Mapping) else "network",
            board=str(board.get("name", "unknown")) if isinstance(board, Mapping) else "unknown",
            clock_mhz=float(clock_mhz), files={k: dict(v) for k, v in files.items()}, path=path,
        )

    @staticmethod
    def _registers(regs: Any, problems: list[str]) -> dict[str, int]:
        if not isinstance(regs, Mapping):
            problems.append(f"$.ip.registers: expected an object, got {regs!r}")
            return {}
        offsets = {}
        for name, (offset, access) in REGISTER_MAP_V1.items():
            entry = regs.get(name)
            if not isinstance(entry, Mapping) or not isinstance(entry.get("offset"), int):
                problems.append(f"$.ip.registers.{name}: missing (the driver needs every register of wire format 1)")
                continue
            if entry.get("access") != access:
                problems.append(f"$.ip.registers.{name}.access is {entry.get('access')!r}, expected {access!r}")
            if entry["offset"] < 0x10 or entry["offset"] % 4:
                problems.append(f"$.ip.registers.{name}.offset {entry['offset']:#x} is not a word offset above ap_ctrl")
            offsets[name] = entry["offset"]
        return offsets

    # ---- deriving (no build yet) -----------------------------------------------------------------------
    @classmethod
    def from_network(cls, network: "NetworkDescription", max_batch: int, *, board: str = "unbuilt",
                     clock_mhz: float = 100.0, dma_name: str = "axi_dma_0", ip_name: str = "vitcod_0",
                     ip_vlnv: str = "vitcod:hls:vitcod_top:1.0") -> "OverlayMetadata":
        """The metadata an overlay build of ``network`` would record (no files): for the C
        simulation before a bitstream exists. Mirrors overlay/scripts/overlay_config.py's rules
        (tests compare both)."""
        if not isinstance(max_batch, int) or not 1 <= max_batch < 2 ** 32:
            raise MetadataError(f"max_batch must be a positive 32-bit integer, got {max_batch!r}")
        largest = max_batch * max(network.input.bytes_per_image, network.output.bytes_per_image)
        length_width = max(DMA_LENGTH_WIDTH_MIN, largest.bit_length())
        if length_width > DMA_LENGTH_WIDTH_MAX:
            raise MetadataError(f"max_batch={max_batch} needs {largest}-byte transfers, more than the AXI DMA's "
                                f"{DMA_LENGTH_WIDTH_MAX}-bit length register allows")
        return cls(model_id=network.model_id, max_batch=max_batch, input=network.input, output=network.output,
                   dma_name=dma_name, dma_length_width=length_width, ip_name=ip_name, ip_vlnv=ip_vlnv,
                   registers={k: off for k, (off, _) in REGISTER_MAP_V1.items()}, network_name=network.name,
                   board=board, clock_mhz=clock_mhz)

    # ---- derived quantities -------------------------------------------------------------------------
    @property
    def model_id_hex(self) -> str:
        return f"0x{self.model_id:016x}"

    @property
    def dma_max_transfer_bytes(self) -> int:
        """Largest transfer the DMA's buffer-length register allows."""
        return 2 ** self.dma_length_width - 1

    @property
    def max_images_per_transfer(self) -> int:
        """Images one run can carry: ``max_batch``, or fewer if the DMA length register is smaller."""
        per_image = max(self.input.bytes_per_image, self.output.bytes_per_image)
        return max(1, min(self.max_batch, self.dma_max_transfer_bytes // per_image))

    def expected_identity(self) -> dict[str, int]:
        """What the IP's read-only registers must hold for this metadata."""
        return {"format_version": self.format_version, "model_id": self.model_id,
                "in_values": self.input.values, "in_words": self.input.words_per_image,
                "out_values": self.output.values, "out_words": self.output.words_per_image,
                "max_batch": self.max_batch}

    def file_path(self, key: str, folder: Path | None = None) -> Path:
        """Path of the recorded ``bitstream`` / ``hwh`` file (next to vitcod.json by default)."""
        name = self.files.get(key, {}).get("name", f"vitcod.{'bit' if key == 'bitstream' else key}")
        base = folder if folder is not None else (self.path.parent if self.path else Path("."))
        return base / name

    def verify_files(self, folder: Path | None = None, *, bitstream: Path | None = None,
                     hwh: Path | None = None) -> None:
        """Check the .bit / .hwh against the SHA-256 recorded in vitcod.json.

        Args:
            folder: where the files vitcod.json names are (default: next to vitcod.json).
            bitstream, hwh: check these files instead.

        Raises:
            MetadataError: no checksum recorded.
            OverlayMismatchError: a file is missing or differs from the one the metadata was
                written for.
        """
        from .errors import OverlayMismatchError

        for key, given in (("bitstream", bitstream), ("hwh", hwh)):
            expected = self.files.get(key, {}).get("sha256")
            if not expected:
                raise MetadataError(f"vitcod.json records no sha256 for the {key}; pass verify_files=False to skip")
            path = Path(given) if given is not None else self.file_path(key, folder)
            if not path.is_file():
                raise OverlayMismatchError(f"{path} not found (vitcod.json names it as the overlay's {key})")
            digest = _sha256(path)
            if digest != expected:
                raise OverlayMismatchError(
                    f"{path} has SHA-256 {digest[:16]}..., but vitcod.json was written for {expected[:16]}...: "
                    "the .bit/.hwh and vitcod.json come from different builds")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass(frozen=True)
class NetworkDescription:
    """``network.json``: the io_parallel network C function the IP wraps.

    Paths are absolute (resolved against the JSON file's folder).
    """

    name: str
    header: str
    sources: tuple[Path, ...]
    include_dirs: tuple[Path, ...]
    input: TensorMeta
    output: TensorMeta
    model_id: int
    path: Path | None = None
    #: Optional: hls4ml's C-simulation reads weights from text files in this folder at run
    #: time (its -DWEIGHTS_DIR); synthesis uses the initialised arrays instead.
    weights_dir: Path | None = None

    @classmethod
    def from_dict(cls, data: Any, base_dir: Path, where: str = "network.json") -> "NetworkDescription":
        problems: list[str] = []
        if not isinstance(data, Mapping):
            raise MetadataError(f"{where}: expected a JSON object")
        missing = {"name", "header", "sources", "include_dirs", "input", "output", "model_id"} - set(data)
        if missing:
            raise MetadataError(f"{where}: missing keys {sorted(missing)}")
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
        model_id = data["model_id"]
        if not isinstance(model_id, str) or not _MODEL_ID.match(model_id):
            problems.append(f"model_id must be '0x' + 16 hex digits, got {model_id!r}")
        weights_dir = data.get("weights_dir")
        if weights_dir is not None and not isinstance(weights_dir, str):
            problems.append(f"weights_dir must be a path, got {weights_dir!r}")
        if problems:
            raise MetadataError([f"{where}: {p}" for p in problems])
        return cls(data["name"], data["header"], paths["sources"], paths["include_dirs"], tensors["input"],
                   tensors["output"], int(model_id, 16),
                   weights_dir=None if weights_dir is None else (base_dir / weights_dir).resolve())

    @classmethod
    def load(cls, path: str | Path) -> "NetworkDescription":
        """Read a network description: ``network.json``, a folder holding one, or an overlay build's
        ``overlay_config.json`` (whose ``network`` entry is the same description, absolute paths)."""
        path = Path(path)
        if path.is_dir():
            path = path / NETWORK_FILE
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise MetadataError(f"network description {path} not found (the HLS stage writes network.json)") from None
        except (OSError, json.JSONDecodeError) as exc:
            raise MetadataError(f"network description {path} cannot be read as JSON: {exc}") from None
        if path.name == "overlay_config.json" and isinstance(data, Mapping):
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
            for name in (NETWORK_FILE, "overlay_config.json"):
                candidate = Path(overlay_dir) / name
                if candidate.is_file():
                    return cls.load(candidate)
        raise MetadataError(f"no network description for {overlay_dir}: pass network=path/to/network.json "
                            f"(or put {NETWORK_FILE} next to vitcod.json)")

    def source_files(self) -> list[Path]:
        """Every file the C simulation depends on: the sources and all C/C++ files under the
        include folders (hls4ml's firmware/: nnet_utils, weights...)."""
        files = set(self.sources)
        for folder in self.include_dirs:
            if folder.is_dir():
                files.update(p for p in folder.rglob("*") if p.is_file() and p.suffix in (".h", ".hpp", ".hh", ".cpp", ".cc", ".c", ".txt"))
        return sorted(files)
