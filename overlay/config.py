"""Everything the overlay build needs to know, resolved once: network, board, IP identity, geometry.

Where this fits: the HLS stage hands the overlay a *network description* (``network.json``, read
by the overlay contract's :class:`~vitcod.host.contract.NetworkDescription`: the hls4ml
io_parallel function, its types and shapes, and the model identifier); ``boards/<board>/board.tcl``
describes the board. :class:`OverlayConfig` joins the two with the build choices (max batch,
clock) and derives every number the flow uses - stream geometry, DMA buffer-length width, the IP's
ports - so that :mod:`vitcod.overlay.codegen` can write them into ``params.tcl`` and the IP's config
header, and :mod:`vitcod.overlay.metadata` into ``vitcod.json``. Nothing downstream recomputes
them. The rules shared with the IP and the driver (wire format, register map, model identifier)
are the contract's (:mod:`vitcod.host.contract`), not this module's.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from ..host.contract import (DMA_LENGTH_WIDTH_MAX, OVERLAY_CONFIG_FILE, NetworkDescription, TensorMeta,
                             content_identifier, model_identifier)
from ..host.errors import MetadataError
from ..host.contract import dma_length_width as _needed_length_width

__all__ = ["BOARDS_DIR", "IP_DIR", "OVERLAY_DIR", "RESOURCE_KEYS", "TCL_DIR", "TOOLS_VERSION", "BoardSpec",
           "ConfigError", "IpIdentity", "OverlayConfig", "ResourceFitError", "available_boards", "check_fit",
           "content_identifier", "dma_length_width", "hls_rtl_name", "model_identifier", "parse_board_tcl"]

OVERLAY_DIR = Path(__file__).resolve().parent
BOARDS_DIR = OVERLAY_DIR / "boards"
IP_DIR = OVERLAY_DIR / "ip"
TCL_DIR = OVERLAY_DIR / "tcl"

TOOLS_VERSION = "2024.1"
"""Vitis HLS / Vivado release the flow is written for (PYNQ 3.x images pair with 2022.1-2024.1)."""

RESOURCE_KEYS = ("dsp", "bram_18k", "lut", "ff", "uram")
#: Resources a board.tcl may leave out (a part without URAM: 0).
OPTIONAL_RESOURCES = {"uram": 0}

# Port names Vitis HLS renames (HDL keywords get an "_r" suffix: `in` -> in_r).
_HDL_RESERVED = frozenset(
    "in out inout input output reg wire begin end signal process port type entity module case "
    "if else for while function task assign always buffer range".split()
)


class ConfigError(ValueError):
    """An input of the overlay build (board.tcl, a build option, the build folder) is missing or wrong.

    (``network.json`` problems are the contract's :class:`~vitcod.host.errors.MetadataError`.)
    """


class ResourceFitError(RuntimeError):
    """The design's resource estimate exceeds what the board offers."""


def hls_rtl_name(port: str) -> str:
    """RTL name Vitis HLS gives a C argument (``in`` -> ``in_r``)."""
    return port + "_r" if port in _HDL_RESERVED else port


# ---- board description ---------------------------------------------------------------------------
_BOARD_LINE = re.compile(r"^set\s+board\((\w+)\)\s+(\{[^{}]*\}|\"[^\"$\[\]\\]*\"|[^\s{}\"$\[\]\\;]+)\s*(?:;?\s*#.*)?$")
_BOARD_KEYS = {
    "name": str, "part": str, "board_part": str, "board_connections": str, "ps_family": str,
    "hp_port": str, "gp_port": str, "clock_mhz": float, "dma_addr_width": int,
    "dsp": int, "bram_18k": int, "lut": int, "ff": int, "uram": int,
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
            dma_addr_width=v["dma_addr_width"], resources={k: v[k] if k in v else OPTIONAL_RESOURCES[k] for k in RESOURCE_KEYS},
            tcl_path=path,
        )


# ---- DMA ---------------------------------------------------------------------------------------
def dma_length_width(max_transfer_bytes: int) -> int:
    """Smallest AXI DMA buffer-length register width (c_sg_length_width) for a transfer (the
    contract's rule: the register holds at most ``2**width - 1`` bytes).

    Raises:
        ConfigError: the transfer needs more than the DMA's 26 bits (64 MiB - 1).
    """
    width = _needed_length_width(max_transfer_bytes)
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

    network: NetworkDescription
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
    def create(cls, network: str | Path | NetworkDescription, board: str, *, max_batch: int,
               clock_mhz: float | None = None, build_dir: str | Path | None = None, **kwargs: Any) -> "OverlayConfig":
        """Resolve a build of ``network`` (a network.json path, or a description) for ``board``.

        Raises:
            MetadataError: network.json missing or refused by the contract, or its ``model_id`` is not
                the identifier of its fields (it was edited after the HLS stage wrote it).
            ConfigError: unknown board, or a build option out of range.
        """
        spec = network if isinstance(network, NetworkDescription) else NetworkDescription.load(network)
        problem = spec.identifier_problem()
        if problem:  # the IP would report an identifier no host could recompute from the description
            raise MetadataError(problem)
        board_spec = BoardSpec.load(board)
        return cls(
            network=spec, board=board_spec, max_batch=max_batch,
            clock_mhz=float(clock_mhz if clock_mhz is not None else board_spec.clock_mhz),
            build_dir=Path(build_dir if build_dir is not None else OVERLAY_DIR / "build" / board).resolve(),
            **kwargs,
        )

    # geometry
    @property
    def input(self) -> TensorMeta:
        return self.network.input

    @property
    def output(self) -> TensorMeta:
        return self.network.output

    @property
    def max_transfer_bytes(self) -> int:
        return self.max_batch * max(self.input.bytes_per_image, self.output.bytes_per_image)

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
    def synthesis_include_dirs(self) -> list[Path]:
        """The network's include folders minus any copy of ap_types (e.g. hls4ml's firmware/ap_types,
        listed by network.json files written before it was dropped there): the open-source ap_common.h
        stops at ``#error`` under __SYNTHESIS__, so Vitis HLS must find only its own headers."""
        return [d for d in self.network.include_dirs
                if d.name != "ap_types" and not (Path(d) / "ap_common.h").is_file()]

    @property
    def hls_top_cflags(self) -> str:
        dirs = [IP_DIR, self.config_header.parent, *self.synthesis_include_dirs]
        return " ".join(["-std=c++14", *(f"-I{d}" for d in dirs)])

    @property
    def hls_network_cflags(self) -> str:
        return " ".join(["-std=c++14", *(f"-I{d}" for d in self.synthesis_include_dirs)])

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
        net = NetworkDescription.from_dict(data["network"], Path("/"), where=f"{OVERLAY_CONFIG_FILE}: network")
        board = BoardSpec.load(data["board"])
        extra = {k: data[k] for k in ("top", "ip_cell", "dma_cell", "dma_burst_beats", "jobs")}
        return cls(network=net, board=board, max_batch=int(data["max_batch"]), clock_mhz=float(data["clock_mhz"]),
                   build_dir=Path(data["build_dir"]), ip=IpIdentity(**data["ip"]), **extra)

    @classmethod
    def load(cls, build_dir: str | Path) -> "OverlayConfig":
        path = Path(build_dir) / OVERLAY_CONFIG_FILE
        if not path.is_file():
            raise ConfigError(f"{path} not found: run the configure step first (make -C overlay configure ...)")
        return cls.from_dict(json.loads(path.read_text()))


# ---- resource fit --------------------------------------------------------------------------------
def utilization_of(used: float, available: float) -> float:
    """used / available; a resource the part lacks (0 available) is 0% used when unused, else inf."""
    if available:
        return used / available
    return 0.0 if not used else float("inf")


def check_fit(estimate: Mapping[str, int | float], available: Mapping[str, int], *, board: str = "the board",
              max_utilization: float = 1.0) -> dict[str, float]:
    """Refuse a design whose resource estimate does not fit the board.

    Args:
        estimate: ``{dsp, bram_18k, lut, ff[, uram]}`` used by the design (e.g. from the HLS report;
            a missing uram is 0).
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
    estimate = {**OPTIONAL_RESOURCES, **estimate}
    available = {**OPTIONAL_RESOURCES, **available}
    for name, d in (("estimate", estimate), ("available", available)):
        missing = [k for k in RESOURCE_KEYS if k not in d]
        if missing:
            raise ValueError(f"resource {name} lacks {missing}; expected keys {list(RESOURCE_KEYS)}")
        if any(d[k] < 0 for k in RESOURCE_KEYS):
            raise ValueError(f"resource {name} has negative counts: {dict(d)}")
    utilization = {k: utilization_of(estimate[k], available[k]) for k in RESOURCE_KEYS}
    over = [k for k in RESOURCE_KEYS if estimate[k] > available[k] * max_utilization]
    if over:
        detail = ", ".join(
            f"{k}: {estimate[k]:g} needed > {available[k] * max_utilization:g} allowed "
            f"({utilization[k]:.0%} of {available[k]})" for k in over
        )
        raise ResourceFitError(f"design does not fit {board}: {detail}. Make the model smaller or raise the reuse factor (fewer multipliers, more cycles), or pick a larger board.")
    return utilization
