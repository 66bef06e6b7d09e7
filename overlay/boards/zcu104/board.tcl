# ZCU104 (AMD/Xilinx): Zynq UltraScale+ XCZU7EV, PS = zynq_ultra_ps_e.
# Read by the step scripts (overlay/tcl/*.tcl) and by overlay/config.py, so keep to
# `set board(key) value` lines. Board files: xilinx.com:zcu104 (Vivado board store).
set board(name)              zcu104
set board(part)              xczu7ev-ffvc1156-2-e
set board(board_part)        xilinx.com:zcu104:part0:1.1
set board(board_connections) {}
set board(ps_family)         zynqmp
set board(hp_port)           S_AXI_HP0_FPD
set board(gp_port)           M_AXI_HPM0_FPD
set board(clock_mhz)         200
# 64-bit DMA addresses, as on every Zynq UltraScale+ board here: a 32-bit master cannot reach the PS
# DDR window above 4 GiB of address space (HP0_DDR_HIGH at 0x8_0000_0000), so its segment would be
# excluded from the address map; 64 bits keep the whole PS DDR space reachable.
set board(dma_addr_width)    64
# Device totals for the fit check (XCZU7EV; 312 BRAM36K = 624 BRAM18K).
set board(dsp)               1728
set board(bram_18k)          624
set board(lut)               230400
set board(ff)                460800
set board(uram)              96
