# Kria KV260 (AMD/Xilinx): K26 SOM (XCK26) on the KV260 carrier, PS = zynq_ultra_ps_e.
# Read by the step scripts (overlay/tcl/*.tcl) and by overlay/config.py, so keep to
# `set board(key) value` lines. Board files: xilinx.com:kv260_som + kv260_carrier (Vivado board store).
# 1.4 is the version of the Vivado 2024.1 store (1.3 was 2022.1); when the installed store holds another
# version only, block_design.tcl takes the latest installed one (get_board_parts -latest_file_version)
# for the SOM and the carrier connection alike, and says so.
set board(name)              kv260
set board(part)              xck26-sfvc784-2LV-c
set board(board_part)        xilinx.com:kv260_som:part0:1.4
set board(board_connections) {som240_1_connector xilinx.com:kv260_carrier:som240_1_connector:1.4}
set board(ps_family)         zynqmp
set board(hp_port)           S_AXI_HP0_FPD
set board(gp_port)           M_AXI_HPM0_FPD
set board(clock_mhz)         200
# 64-bit DMA addresses: the K26's 4 GiB of PS DDR are mapped 2 GiB low and 2 GiB in HP0_DDR_HIGH
# (0x8_0000_0000), out of a 32-bit master's reach; PYNQ may allocate DMA buffers there.
set board(dma_addr_width)    64
# Device totals for the fit check (XCK26; 144 BRAM36K = 288 BRAM18K, 64 URAM288).
set board(dsp)               1248
set board(bram_18k)          288
set board(lut)               117120
set board(ff)                234240
set board(uram)              64
