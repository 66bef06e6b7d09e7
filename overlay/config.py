"""Everything the overlay build needs to know, resolved once: network, board, IP identity, geometry.

Where this fits: the HLS stage hands the overlay a *network description* (``network.json``: the
hls4ml io_parallel function's name, header, sources, input/output types and shapes, and the model
identifier); ``boards/<board>/board.tcl`` describes the board. :class:`OverlayConfig` joins the
two with the build choices (max batch, clock) and derives every number the flow uses - stream
geometry, DMA buffer-length width, register map - so that :mod:`vitcod.overlay.codegen` can write them
into ``params.tcl`` and the IP's config header, and :mod:`vitcod.overlay.metadata` into ``vitcod.json``.
Nothing downstream recomputes them.

``network.json`` (paths relative to the file)::

    {
      "name": "myproject",                 # C function: void myproject(input_t in[N_IN], result_t out[N_OUT])
      "header": "myproject.h",             # declares it and its input_t / result_t
      "sources": ["myproject.cpp"],        # compiled by Vitis HLS with the top
      "include_dirs": ["."],               # -I for the network sources (hls4ml: its firmware/ dir)
      "input":  {"type": "ap_fixed<16,6>", "shape": [8, 8, 1]},
      "output": {"type": "ap_fixed<16,6>", "shape": [10]},
      "model_id": "0x0123456789abcdef"     # from model_identifier(weights, masks, precision)
    }
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from .wire_format import WORD_BITS, WireType, values_per_word, words_per_image

OVERLAY_DIR = Path(__file__).resolve().parent
BOARDS_DIR = OVERLAY_DIR / "boards"
IP_DIR = OVERLAY_DIR / "ip"
TCL_DIR = OVERLAY_DIR / "tcl"

TOOLS_VERSION = "2024.1"
"""Vitis HLS / Vivado release the flow is written for (PYNQ 3.x images pair with 2022.1-2024.1)."""

RESOURCE_KEYS = ("dsp", "bram_18k", "lut", "ff")

DMA_LENGTH_WIDTH_MIN = 8  # c_sg_length_width range of AXI DMA 7.1
DMA_LENGTH_WIDTH_MAX = 26

# Port names Vitis HLS renames (HDL keywords get an "_r" suffix: `in` -> in_r).
_HDL_RESERVED = frozenset(
    "in out inout input output reg wire begin end signal process port type entity module case "
    "if else for while function task assign always buffer range".split()
)


class ConfigError(ValueError):
    """An input of the overlay build (network.json, board.tcl, a build option) is missing or wrong."""


class ResourceFitError(RuntimeError):
    """The design's resource estimate exceeds what the board offers."""


# ---- register map (mirrors the INTERFACE pragmas of overlay/ip/vitcod_top.cpp) -------------------
@dataclass(frozen=True)
class Register:
    name: str
    offset: int
    access: str  # "rw" (host writes), "ro" (IP writes; its ap_vld bit sits at offset + 4)
    description: str


REGISTERS: tuple[Register, ...] = (
    Register("batch_count", 0x10, "rw", "images in this run (0: only refresh the read-only registers)"),
    Register("batch_done", 0x18, "ro", "images processed by the last run (batch_count clamped to max_batch)"),
    Register("status", 0x20, "ro", "bit0 TLAST before the last input word, bit1 no TLAST on it, bit2 batch clamped"),
    Register("format_version", 0x28, "ro", "wire format / register map version"),
    Register("model_id_lo", 0x30, "ro", "model identifier, bits 31..0"),
    Register("model_id_hi", 0x38, "ro", "model identifier, bits 63..32"),
    Register("in_values", 0x40, "ro", "input values per image"),
    Register("in_words", 0x48, "ro", "input words per image"),
    Register("out_values", 0x50, "ro", "output values per image"),
    Register("out_words", 0x58, "ro", "output words per image"),
    Register("max_batch", 0x60, "ro", "largest batch_count honoured"),
)
CONTROL_REGISTERS = {"ap_ctrl": 0x00, "gie": 0x04, "ier": 0x08, "isr": 0x0C}
STATUS_BITS = {"tlast_early": 1, "tlast_missing": 2, "batch_clamped": 4}


def hls_rtl_name(port: str) -> str:
    """RTL name Vitis HLS gives a C argument (``in`` -> ``in_r``)."""
    return port + "_r" if port in _HDL_RESERVED else port


# ---- model identifier --------------------------------------------------------------------------
def model_identifier(weights: Mapping[str, Any], masks: Mapping[str, Any], precision: Mapping[str, Any]) -> str:
    """64-bit identifier of a deployed model: a hash of its weights, masks and precision config.

    Arrays are hashed by name (sorted), dtype (little-endian), shape and bytes; ``precision`` as
    canonical JSON. Any change to a weight, a mask bit or a type changes the identifier, so the
    host can refuse a bitstream built for another model.

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


def _parse_model_id(text: Any) -> int:
    if not isinstance(text, str) or not re.fullmatch(r"0x[0-9a-fA-F]{16}", text):
        raise ConfigError(f"model_id must be '0x' + 16 hex digits, got {text!r}")
    return int(text, 16)


# ---- network description -------------------------------------------------------------------------
@dataclass(frozen=True)
class TensorSpec:
    type: WireType
    shape: tuple[int, ...]

    @property
    def values(self) -> int:
        return int(math.prod(self.shape))


@dataclass(frozen=True)
class NetworkSpec:
    """The hls4ml io_parallel network the IP wraps (see the module docstring for network.json)."""

    name: str
    header: str
    sources: tuple[Path, ...]
    include_dirs: tuple[Path, ...]
    input: TensorSpec
    output: TensorSpec
    model_id: int

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], base_dir: Path) -> "NetworkSpec":
        expected = {"name", "header", "sources", "include_dirs", "input", "output", "model_id"}
        optional = {"weights_dir"}  # hls4ml's C-simulation weight files; synthesis ignores it
        missing, extra = expected - set(data), set(data) - expected - optional
        if missing or extra:
            raise ConfigError(f"network description: missing keys {sorted(missing)}, unknown keys {sorted(extra)}")
        if not re.fullmatch(r"[A-Za-z_]\w*", str(data["name"])):
            raise ConfigError(f"network name must be a C identifier, got {data['name']!r}")

        def tensor(key: str) -> TensorSpec:
            t = data[key]
            if not isinstance(t, Mapping) or set(t) != {"type", "shape"}:
                raise ConfigError(f"network {key}: expected {{'type', 'shape'}}, got {t!r}")
            shape = tuple(t["shape"])
            if not shape or not all(isinstance(d, int) and d > 0 for d in shape):
                raise ConfigError(f"network {key} shape must be positive integers, got {t['shape']!r}")
            return TensorSpec(WireType.parse(t["type"]), shape)

        def paths(key: str) -> tuple[Path, ...]:
            items = data[key]
            if not isinstance(items, list) or not all(isinstance(p, str) for p in items):
                raise ConfigError(f"network {key} must be a list of paths, got {items!r}")
            return tuple((base_dir / p).resolve() for p in items)

        return cls(
            name=str(data["name"]),
            header=str(data["header"]),
            sources=paths("sources"),
            include_dirs=paths("include_dirs"),
            input=tensor("input"),
            output=tensor("output"),
            model_id=_parse_model_id(data["model_id"]),
        )

    @classmethod
    def load(cls, path: str | Path) -> "NetworkSpec":
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise ConfigError(f"network description {path} not found (the HLS stage writes it)") from None
        except json.JSONDecodeError as exc:
            raise ConfigError(f"network description {path} is not valid JSON: {exc}") from None
        return cls.from_dict(data, path.resolve().parent)

    def save(self, path: str | Path) -> Path:
        """Write network.json (absolute paths), as the HLS stage hands the network to the overlay."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        return path

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "header": self.header,
            "sources": [str(p) for p in self.sources],
            "include_dirs": [str(p) for p in self.include_dirs],
            "input": {"type": self.input.type.cpp, "shape": list(self.input.shape)},
            "output": {"type": self.output.type.cpp, "shape": list(self.output.shape)},
            "model_id": f"0x{self.model_id:016x}",
        }


# ---- board description ---------------------------------------------------------------------------
_BOARD_LINE = re.compile(r"^set\s+board\((\w+)\)\s+(\{[^{}]*\}|\"[^\"$\[\]\\]*\"|[^\s{}\"$\[\]\\;]+)\s*(?:;?\s*#.*)?$")
_BOARD_KEYS = {
    "name": str, "part": str, "board_part": str, "board_connections": str, "ps_family": str,
    "hp_port": str, "gp_port": str, "clock_mhz": float, "dma_addr_width": int,
    "dsp": int, "bram_18k": int, "lut": int, "ff": int,
}


def parse_board_tcl(path: str | Path) -> dict[str, Any]:
    """Read a ``boards/<board>/board.tcl``: only comments and ``set board(key) value`` lines.

    The file is Tcl (the step scripts ``source`` it) kept to a subset Python can read without a Tcl
    interpreter, so the resource totals and part live in one place for both.

    Raises:
        ConfigError: a line outside the subset, an unknown or missing key, or a non-numeric number.
    """
    path = Path(path)
    values: dict[str, Any] = {}
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        m = _BOARD_LINE.match(stripped)
        if not m:
            raise ConfigError(f"{path}:{lineno}: only 'set board(key) value' lines are allowed, got {stripped!r}")
        key, raw = m.group(1), m.group(2)
        if key not in _BOARD_KEYS:
            raise ConfigError(f"{path}:{lineno}: unknown board key {key!r}; known: {sorted(_BOARD_KEYS)}")
        value = raw[1:-1] if raw[0] in "{\"" else raw
        try:
            values[key] = _BOARD_KEYS[key](value)
        except ValueError:
            raise ConfigError(f"{path}:{lineno}: board({key}) must be a {_BOARD_KEYS[key].__name__}, got {value!r}") from None
    missing = set(_BOARD_KEYS) - set(values)
    if missing:
        raise ConfigError(f"{path}: missing board keys {sorted(missing)}")
    return values


def available_boards() -> list[str]:
    return sorted(p.parent.name for p in BOARDS_DIR.glob("*/board.tcl"))


@dataclass(frozen=True)
class BoardSpec:
    name: str
    part: str
    board_part: str
    ps_family: str
    hp_port: str
    gp_port: str
    clock_mhz: float
    dma_addr_width: int
    resources: dict[str, int]
    tcl_path: Path

    @classmethod
    def load(cls, board: str) -> "BoardSpec":
        path = BOARDS_DIR / board / "board.tcl"
        if not path.is_file():
            raise ConfigError(f"unknown board {board!r}; available: {', '.join(available_boards())}")
        v = parse_board_tcl(path)
        if v["name"] != board:
            raise ConfigError(f"{path}: board(name) is {v['name']!r}, expected the folder name {board!r}")
        return cls(
            name=v["name"], part=v["part"], board_part=v["board_part"], ps_family=v["ps_family"],
            hp_port=v["hp_port"], gp_port=v["gp_port"], clock_mhz=v["clock_mhz"],
            dma_addr_width=v["dma_addr_width"], resources={k: v[k] for k in RESOURCE_KEYS}, tcl_path=path,
        )


# ---- geometry and DMA --------------------------------------------------------------------------
@dataclass(frozen=True)
class StreamGeometry:
    """How one image of a tensor travels on the stream."""

    type: WireType
    shape: tuple[int, ...]
    values: int
    values_per_word: int
    words: int

    @property
    def bytes(self) -> int:
        return self.words * WORD_BITS // 8

    @classmethod
    def of(cls, tensor: TensorSpec) -> "StreamGeometry":
        width = tensor.type.width
        return cls(tensor.type, tensor.shape, tensor.values, values_per_word(width), words_per_image(tensor.values, width))


def dma_length_width(max_transfer_bytes: int) -> int:
    """Smallest AXI DMA buffer-length register width (c_sg_length_width) for a transfer.

    The register holds at most ``2**width - 1`` bytes.

    Raises:
        ConfigError: the transfer needs more than the DMA's 26 bits (64 MiB - 1).
    """
    width = max(DMA_LENGTH_WIDTH_MIN, int(max_transfer_bytes).bit_length())
    if width > DMA_LENGTH_WIDTH_MAX:
        raise ConfigError(
            f"a transfer of {max_transfer_bytes} bytes needs a {width}-bit DMA length register; "
            f"AXI DMA allows at most {DMA_LENGTH_WIDTH_MAX} bits ({2**DMA_LENGTH_WIDTH_MAX - 1} bytes)"
        )
    return width


@dataclass(frozen=True)
class IpIdentity:
    vendor: str = "vitcod"
    library: str = "hls"
    name: str = "vitcod_top"
    version: str = "1.0"

    @property
    def vlnv(self) -> str:
        return f"{self.vendor}:{self.library}:{self.name}:{self.version}"


@dataclass(frozen=True)
class OverlayConfig:
    """Network + board + build choices, with everything derived from them."""

    network: NetworkSpec
    board: BoardSpec
    max_batch: int
    clock_mhz: float
    build_dir: Path
    ip: IpIdentity = field(default_factory=IpIdentity)
    top: str = "vitcod_top"
    ip_cell: str = "vitcod_0"
    dma_cell: str = "axi_dma_0"
    dma_burst_beats: int = 64
    jobs: int = 4

    def __post_init__(self) -> None:
        if not isinstance(self.max_batch, int) or self.max_batch < 1:
            raise ConfigError(f"max_batch must be a positive integer, got {self.max_batch!r}")
        if not 10.0 <= self.clock_mhz <= 500.0:
            raise ConfigError(f"clock must be within 10..500 MHz, got {self.clock_mhz}")
        if self.max_batch >= 2**32:
            raise ConfigError("max_batch must fit the 32-bit batch_count register")
        if not re.fullmatch(r"\d+\.\d+", self.ip.version):
            raise ConfigError(f"IP version must look like 1.0, got {self.ip.version!r}")
        _ = self.dma_length_width  # raises ConfigError when the batch cannot fit one DMA transfer

    @classmethod
    def create(cls, network: str | Path | NetworkSpec, board: str, *, max_batch: int,
               clock_mhz: float | None = None, build_dir: str | Path | None = None, **kwargs: Any) -> "OverlayConfig":
        spec = network if isinstance(network, NetworkSpec) else NetworkSpec.load(network)
        board_spec = BoardSpec.load(board)
        return cls(
            network=spec, board=board_spec, max_batch=max_batch,
            clock_mhz=float(clock_mhz if clock_mhz is not None else board_spec.clock_mhz),
            build_dir=Path(build_dir if build_dir is not None else OVERLAY_DIR / "build" / board).resolve(),
            **kwargs,
        )

    # geometry
    @property
    def input(self) -> StreamGeometry:
        return StreamGeometry.of(self.network.input)

    @property
    def output(self) -> StreamGeometry:
        return StreamGeometry.of(self.network.output)

    @property
    def max_transfer_bytes(self) -> int:
        return self.max_batch * max(self.input.bytes, self.output.bytes)

    @property
    def dma_length_width(self) -> int:
        return dma_length_width(self.max_transfer_bytes)

    @property
    def clock_period_ns(self) -> float:
        return 1000.0 / self.clock_mhz

    # IP ports, as Vitis HLS names them in RTL
    @property
    def ip_ports(self) -> dict[str, str]:
        return {"in": hls_rtl_name("in"), "out": hls_rtl_name("out"), "ctrl": "s_axi_control",
                "clk": "ap_clk", "rst_n": "ap_rst_n"}

    # generated files
    @property
    def params_tcl(self) -> Path:
        return self.build_dir / "params.tcl"

    @property
    def config_header(self) -> Path:
        return self.build_dir / "ip" / "vitcod_top_config.h"

    @property
    def hls_project_dir(self) -> Path:
        return self.build_dir / "hls" / "vitcod_hls"

    @property
    def csynth_report(self) -> Path:
        return self.hls_project_dir / "solution1" / "syn" / "report" / "csynth.xml"

    @property
    def hls_top_cflags(self) -> str:
        dirs = [IP_DIR, self.config_header.parent, *self.network.include_dirs]
        return " ".join(["-std=c++14", *(f"-I{d}" for d in dirs)])

    @property
    def hls_network_cflags(self) -> str:
        return " ".join(["-std=c++14", *(f"-I{d}" for d in self.network.include_dirs)])

    def to_dict(self) -> dict[str, Any]:
        """The resolved configuration, saved as build/<board>/overlay_config.json for later steps."""
        return {
            "network": self.network.to_dict(),
            "board": self.board.name,
            "max_batch": self.max_batch,
            "clock_mhz": self.clock_mhz,
            "build_dir": str(self.build_dir),
            "ip": {"vendor": self.ip.vendor, "library": self.ip.library, "name": self.ip.name, "version": self.ip.version},
            "top": self.top, "ip_cell": self.ip_cell, "dma_cell": self.dma_cell,
            "dma_burst_beats": self.dma_burst_beats, "jobs": self.jobs,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "OverlayConfig":
        net = NetworkSpec.from_dict(data["network"], Path("/"))
        board = BoardSpec.load(data["board"])
        extra = {k: data[k] for k in ("top", "ip_cell", "dma_cell", "dma_burst_beats", "jobs")}
        return cls(network=net, board=board, max_batch=int(data["max_batch"]), clock_mhz=float(data["clock_mhz"]),
                   build_dir=Path(data["build_dir"]), ip=IpIdentity(**data["ip"]), **extra)

    @classmethod
    def load(cls, build_dir: str | Path) -> "OverlayConfig":
        path = Path(build_dir) / "overlay_config.json"
        if not path.is_file():
            raise ConfigError(f"{path} not found: run the configure step first (make -C overlay configure ...)")
        return cls.from_dict(json.loads(path.read_text()))


# ---- resource fit --------------------------------------------------------------------------------
def check_fit(estimate: Mapping[str, int | float], available: Mapping[str, int], *, board: str = "the board",
              max_utilization: float = 1.0) -> dict[str, float]:
    """Refuse a design whose resource estimate does not fit the board.

    Args:
        estimate: ``{dsp, bram_18k, lut, ff}`` used by the design (e.g. from the HLS report).
        available: the same keys, the board's totals (``BoardSpec.resources``).
        board: name used in the message.
        max_utilization: fraction of each resource the design may use (below 1.0 leaves room for
            the DMA, interconnect and routing that an HLS estimate does not count).

    Returns:
        Utilization per resource (estimate / available).

    Raises:
        ResourceFitError: one or more resources exceed ``max_utilization``; the message lists each.
        ValueError: a key is missing or a count is negative.
    """
    for name, d in (("estimate", estimate), ("available", available)):
        missing = [k for k in RESOURCE_KEYS if k not in d]
        if missing:
            raise ValueError(f"resource {name} lacks {missing}; expected keys {list(RESOURCE_KEYS)}")
        if any(d[k] < 0 for k in RESOURCE_KEYS):
            raise ValueError(f"resource {name} has negative counts: {dict(d)}")
    utilization = {k: estimate[k] / available[k] for k in RESOURCE_KEYS}
    over = [k for k in RESOURCE_KEYS if estimate[k] > available[k] * max_utilization]
    if over:
        detail = ", ".join(
            f"{k}: {estimate[k]:g} needed > {available[k] * max_utilization:g} allowed "
            f"({utilization[k]:.0%} of {available[k]})" for k in over
        )
        raise ResourceFitError(f"design does not fit {board}: {detail}. Make the model smaller or raise the reuse factor (fewer multipliers, more cycles), or pick a larger board.")
    return utilization


def read_csynth_estimate(path: str | Path) -> dict[str, int]:
    """Resource estimate ``{dsp, bram_18k, lut, ff}`` from a Vitis HLS ``csynth.xml`` report."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"HLS report {path} not found: run the ip step first")
    res = ET.parse(path).getroot().find("AreaEstimates/Resources")
    if res is None:
        raise ConfigError(f"{path}: no AreaEstimates/Resources section")
    tags = {"dsp": ("DSP", "DSP48E"), "bram_18k": ("BRAM_18K",), "lut": ("LUT",), "ff": ("FF",)}
    out = {}
    for key, names in tags.items():
        node = next((res.find(n) for n in names if res.find(n) is not None), None)
        if node is None or not (node.text or "").strip().isdigit():
            raise ConfigError(f"{path}: resource {'/'.join(names)} missing or not a number")
        out[key] = int(node.text.strip())
    return out
