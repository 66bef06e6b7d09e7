"""``vitcod.json``: the build-time metadata the driver is configured by.

Where this fits: ``make -C overlay bitstream`` writes ``vitcod.json`` next to ``vitcod.bit`` and
``vitcod.hwh`` (schema: ``overlay/vitcod.schema.json``; writer: ``vitcod.overlay.metadata``). The
driver reads the shapes, fixed-point formats, stream geometry, DMA and IP names, register map and
model identifier from it instead of hard-coding them, as finn-examples' drivers read their
``io_shape_dict``. :class:`OverlayMetadata` is the board-side reader: it needs only numpy and
checks the fields the driver relies on against the overlay contract (:mod:`vitcod.host.contract`;
the full schema check runs at packaging time, on the build machine).

``network.json`` (:class:`~vitcod.host.contract.NetworkDescription`) describes the network C
function; :meth:`OverlayMetadata.from_network` derives the metadata a build would record, so the C
simulation of a network can run before any bitstream exists.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from ..fileio import sha256_file
from .contract import (DMA_LENGTH_WIDTH_MAX, DMA_LENGTH_WIDTH_MIN, FORMAT_VERSION, MODEL_ID_PATTERN, REGISTERS,
                       STATUS_BITS, NetworkDescription, TensorMeta, dma_length_width, read_json)
from .errors import MetadataError

METADATA_FILE = "vitcod.json"


@dataclass(frozen=True)
class OverlayMetadata:
    """What the driver needs from ``vitcod.json`` (see the module docstring).

    Attributes:
        model_id: the 64-bit model identifier the IP must report (recorded; the driver also
            recomputes it from ``content_id`` and the interface).
        content_id: the hash of the weights, masks and precision the identifier covers.
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
    content_id: int
    max_batch: int
    input: TensorMeta
    output: TensorMeta
    dma_name: str
    dma_length_width: int
    ip_name: str
    ip_vlnv: str
    registers: dict[str, int]
    status_bits: dict[str, int] = field(default_factory=lambda: dict(STATUS_BITS))
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
        data = read_json(path, "overlay metadata", "the overlay build writes it next to vitcod.bit: "
                         "make -C overlay bitstream, or unpack vitcod-<board>.tar.gz")
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
        ids = {}
        for key in ("model_id", "content_id"):
            ids[key] = need(key, str)
            if ids[key] is not None and not MODEL_ID_PATTERN.match(ids[key]):
                problems.append(f"$.{key} must be '0x' + 16 hex digits, got {ids[key]!r}")
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
        status_bits = ip.get("status_bits", STATUS_BITS) if isinstance(ip, Mapping) else STATUS_BITS
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
        if not isinstance(files, Mapping) or not all(isinstance(v, Mapping) for v in files.values()):
            problems.append(f"$.files: expected an object of {{\"bitstream\"|\"hwh\": {{\"name\", \"sha256\"}}}}, "
                            f"got {json.dumps(files)[:80]}")
            files = {}
        if problems:
            raise MetadataError([f"{where}: {p}" for p in problems])
        board = data.get("board", {})
        network = data.get("network", {})
        return cls(
            model_id=int(ids["model_id"], 16), content_id=int(ids["content_id"], 16), max_batch=max_batch,
            input=tensors["input"], output=tensors["output"],
            dma_name=dma_name, dma_length_width=length_width, ip_name=ip_name, ip_vlnv=ip_vlnv,
            registers=registers, status_bits={str(k): int(v) for k, v in dict(status_bits).items()},
            format_version=version, network_name=str(network.get("name", "network")) if isinstance(network, Mapping) else "network",
            board=str(board.get("name", "unknown")) if isinstance(board, Mapping) else "unknown",
            clock_mhz=float(clock_mhz), files={k: dict(v) for k, v in files.items()}, path=path,
        )

    @staticmethod
    def _registers(regs: Any, problems: list[str]) -> dict[str, int]:
        """The register offsets, which must be wire format's (the IP's pragmas pin them; a map
        with a moved, duplicated or out-of-space register would make reads return another register)."""
        if not isinstance(regs, Mapping):
            problems.append(f"$.ip.registers: expected an object, got {regs!r}")
            return {}
        offsets, owners = {}, {}
        for reg in REGISTERS:
            entry = regs.get(reg.name)
            if not isinstance(entry, Mapping) or not isinstance(entry.get("offset"), int) \
                    or isinstance(entry.get("offset"), bool):
                problems.append(f"$.ip.registers.{reg.name}: missing (the driver needs every register of wire format "
                                f"{FORMAT_VERSION}), got {entry!r}")
                continue
            offset = entry["offset"]
            if entry.get("access") != reg.access:
                problems.append(f"$.ip.registers.{reg.name}.access is {entry.get('access')!r}, expected {reg.access!r}")
            if offset in owners:
                problems.append(f"$.ip.registers.{reg.name}.offset {offset:#x} is also the offset of {owners[offset]}")
            elif offset != reg.offset:
                problems.append(f"$.ip.registers.{reg.name}.offset is {offset:#x}, wire format {FORMAT_VERSION} "
                                f"puts it at {reg.offset:#x} (the IP's register space ends at 0x7f)")
            owners[offset] = reg.name
            offsets[reg.name] = offset
        return offsets

    # ---- deriving (no build yet) -----------------------------------------------------------------------
    @classmethod
    def from_network(cls, network: "NetworkDescription", max_batch: int, *, board: str = "unbuilt",
                     clock_mhz: float = 100.0, dma_name: str = "axi_dma_0", ip_name: str = "vitcod_0",
                     ip_vlnv: str = "vitcod:hls:vitcod_top:1.0") -> "OverlayMetadata":
        """The metadata an overlay build of ``network`` would record (no files): for the C
        simulation before a bitstream exists. The rules are the contract's, as in an overlay
        build (tests compare the two)."""
        if not isinstance(max_batch, int) or not 1 <= max_batch < 2 ** 32:
            raise MetadataError(f"max_batch must be a positive 32-bit integer, got {max_batch!r}")
        largest = max_batch * max(network.input.bytes_per_image, network.output.bytes_per_image)
        length_width = dma_length_width(largest)
        if length_width > DMA_LENGTH_WIDTH_MAX:
            raise MetadataError(f"max_batch={max_batch} needs {largest}-byte transfers, more than the AXI DMA's "
                                f"{DMA_LENGTH_WIDTH_MAX}-bit length register allows")
        return cls(model_id=network.model_id, content_id=network.content_id, max_batch=max_batch,
                   input=network.input, output=network.output, dma_name=dma_name, dma_length_width=length_width,
                   ip_name=ip_name, ip_vlnv=ip_vlnv, registers={r.name: r.offset for r in REGISTERS},
                   network_name=network.name, board=board, clock_mhz=clock_mhz, path=network.path)

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
                "max_batch": self.max_batch, "in_type": self.input.format.code,
                "out_type": self.output.format.code}

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
            digest = sha256_file(path)
            if digest != expected:
                raise OverlayMismatchError(
                    f"{path} has SHA-256 {digest[:16]}..., but vitcod.json was written for {expected[:16]}...: "
                    "the .bit/.hwh and vitcod.json come from different builds")
