# PYNQ-Z2 (TUL): Zynq-7000 XC7Z020, PS = processing_system7.
# Read by the step scripts (overlay/tcl/*.tcl) and by overlay/config.py, so keep to
# `set board(key) value` lines. Board files: tul.com.tw:pynq-z2 (TUL's board file package).
set board(name)              pynq-z2
set board(part)              xc7z020clg400-1
set board(board_part)        tul.com.tw:pynq-z2:part0:1.0
set board(board_connections) {}
set board(ps_family)         zynq7
set board(hp_port)           S_AXI_HP0
set board(gp_port)           M_AXI_GP0
set board(clock_mhz)         100
set board(dma_addr_width)    32
# Device totals for the fit check (XC7Z020).
set board(dsp)               220
set board(bram_18k)          280
set board(lut)               53200
set board(ff)                106400
set board(uram)              0   ;# Zynq-7000: no UltraRAM
