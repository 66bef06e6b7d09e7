"""The emulated board's hardware handoff: a ``.hwh`` generated from ``vitcod.json``.

Where this fits: :func:`vitcod.host.emulated.open_emulated` writes this file next to a placeholder
``.bit``, and ``pynq.Overlay`` parses it with pynq's own metadata parser, so that pynq binds its
real ``pynq.lib.dma.DMA`` driver to the DMA cell exactly as it does on a board.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

from .contract import READ_ONLY_REGISTERS
from .metadata import OverlayMetadata
from .overlay import AP_CTRL

DMA_BASE = 0x4040_0000
IP_BASE = 0x43C0_0000
REGISTER_SPACE = 0x1_0000


def emulation_hwh(meta: OverlayMetadata) -> str:
    """A minimal hardware handoff for the overlay ``meta`` describes, as pynq parses it.

    A ``processing_system7`` whose M_AXI_GP0 maps the DMA (``meta.dma_name``) at
    :data:`DMA_BASE` and the IP (``meta.ip_name``, type ``meta.ip_vlnv``) at :data:`IP_BASE`; the
    DMA configured as overlay/tcl/block_design.tcl configures it (no scatter-gather, 64-bit
    streams and memory-map data, ``c_sg_length_width`` from the metadata); the IP's register map
    with the ap_ctrl_hs registers and one ap_vld register after each read-only register.
    """
    root = ET.Element("EDKSYSTEM", EDWVERSION="1.2", TIMESTAMP="emulated", VIVADOVERSION="2024.1")
    ET.SubElement(root, "SYSTEMINFO", ARCH="zynq", DEVICE="7z020", NAME="vitcod", PACKAGE="clg400", SPEEDGRADE="-1")
    ET.SubElement(root, "EXTERNALPORTS")
    ET.SubElement(root, "EXTERNALINTERFACES")
    modules = ET.SubElement(root, "MODULES")

    def module(instance: str, vlnv: str, modtype: str, params: dict[str, Any], **extra: str) -> ET.Element:
        mod = ET.SubElement(modules, "MODULE", FULLNAME="/" + instance, HWVERSION=vlnv.rsplit(":", 1)[1],
                            INSTANCE=instance, IPTYPE="PERIPHERAL", IS_ENABLE="1", MODCLASS="PERIPHERAL",
                            MODTYPE=modtype, VLNV=vlnv, **extra)
        plist = ET.SubElement(mod, "PARAMETERS")
        for key, value in params.items():
            ET.SubElement(plist, "PARAMETER", NAME=key, VALUE=str(value))
        return mod

    def bus(mod: ET.Element, name: str, kind: str, width: int = 32) -> None:
        parent = mod.find("BUSINTERFACES")
        if parent is None:
            parent = ET.SubElement(mod, "BUSINTERFACES")
        ET.SubElement(parent, "BUSINTERFACE", BUSNAME=f"{mod.get('INSTANCE')}_{name}", DATAWIDTH=str(width),
                      NAME=name, TYPE=kind, VLNV="xilinx.com:interface:aximm:1.0")

    # PS: FCLK0 enabled at the design clock (IO PLL 1000 MHz / divisor0 / divisor1), GP0 and HP0.
    divisor = max(1, round(1000.0 / meta.clock_mhz))
    ps_params: dict[str, Any] = {}
    for clk in range(4):
        ps_params[f"PCW_FPGA_FCLK{clk}_ENABLE"] = int(clk == 0)
        ps_params[f"PCW_FCLK{clk}_PERIPHERAL_DIVISOR0"] = min(divisor, 63) if clk == 0 else 1
        ps_params[f"PCW_FCLK{clk}_PERIPHERAL_DIVISOR1"] = max(1, -(-divisor // 63)) if clk == 0 else 1
        ps_params[f"PCW_FPGA{clk}_PERIPHERAL_FREQMHZ"] = meta.clock_mhz if clk == 0 else 50
    ps = module("processing_system7_0", "xilinx.com:ip:processing_system7:5.5", "processing_system7", ps_params,
                IS_PL="FALSE")
    bus(ps, "M_AXI_GP0", "MASTER")
    bus(ps, "S_AXI_HP0", "SLAVE", 64)
    memmap = ET.SubElement(ps, "MEMORYMAP")
    for instance, base, slave in ((meta.dma_name, DMA_BASE, "S_AXI_LITE"), (meta.ip_name, IP_BASE, "s_axi_control")):
        ET.SubElement(memmap, "MEMRANGE", ADDRESSBLOCK="Reg", BASENAME="C_BASEADDR", BASEVALUE=f"0x{base:08X}",
                      HIGHNAME="C_HIGHADDR", HIGHVALUE=f"0x{base + REGISTER_SPACE - 1:08X}", INSTANCE=instance,
                      IS_DATA="TRUE", IS_INSTRUCTION="TRUE", MASTERBUSINTERFACE="M_AXI_GP0", MEMTYPE="REGISTER",
                      SLAVEBUSINTERFACE=slave)

    dma = module(meta.dma_name, "xilinx.com:ip:axi_dma:7.1", "axi_dma", {
        "c_include_sg": 0, "c_sg_length_width": meta.dma_length_width, "c_micro_dma": 0, "c_addr_width": 32,
        "c_include_mm2s": 1, "c_include_s2mm": 1, "c_include_mm2s_dre": 0, "c_include_s2mm_dre": 0,
        "c_m_axi_mm2s_data_width": 64, "c_m_axis_mm2s_tdata_width": 64,
        "c_m_axi_s2mm_data_width": 64, "c_s_axis_s2mm_tdata_width": 64,
        "c_mm2s_burst_size": 64, "c_s2mm_burst_size": 64,
    })
    bus(dma, "S_AXI_LITE", "SLAVE")

    addr_width = max(7, (max(meta.registers.values(), default=0) + 7).bit_length())  # as Vitis HLS sizes it
    ip = module(meta.ip_name, meta.ip_vlnv, meta.ip_vlnv.split(":")[2], {"C_S_AXI_CONTROL_ADDR_WIDTH": addr_width})
    block = ET.SubElement(ET.SubElement(ip, "ADDRESSBLOCKS"), "ADDRESSBLOCK", ACCESS="read-write",
                          INTERFACE="s_axi_control", NAME="Reg", RANGE=str(REGISTER_SPACE), USAGE="register")
    registers = ET.SubElement(block, "REGISTERS")

    def register(name: str, offset: int, access: str, description: str) -> None:
        reg = ET.SubElement(registers, "REGISTER", NAME=name)
        for key, value in (("DESCRIPTION", description), ("ADDRESS_OFFSET", str(offset)), ("SIZE", "32"),
                           ("ACCESS", access), ("IS_ENABLED", "true"), ("RESET_VALUE", "0")):
            ET.SubElement(reg, "PROPERTY", NAME=key, VALUE=value)

    register("CTRL", AP_CTRL, "read-write", "Control signals")
    register("GIER", 0x04, "read-write", "Global Interrupt Enable Register")
    register("IP_IER", 0x08, "read-write", "IP Interrupt Enable Register")
    register("IP_ISR", 0x0C, "read-write", "IP Interrupt Status Register")
    ro = [name for name in READ_ONLY_REGISTERS]
    for name, offset in sorted(meta.registers.items(), key=lambda item: item[1]):
        if name in ro:
            register(name, offset, "read-only", f"Data signal of {name}")
            register(f"{name}_ctrl", offset + 4, "read-only", f"Control signal of {name} (ap_vld)")
        else:
            register(name, offset, "write-only", f"Data signal of {name}")
    bus(ip, "s_axi_control", "SLAVE")
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8" standalone="no" ?>\n' + ET.tostring(root, encoding="unicode") + "\n"
