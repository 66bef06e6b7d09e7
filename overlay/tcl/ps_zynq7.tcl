# Processing system of a Zynq-7000 board (processing_system7). Sourced by block_design.tcl when
# board(ps_family) is zynq7; ps_zynqmp.tcl provides the same procedure for Zynq UltraScale+.

# Create and configure the PS: board preset (DDR, MIO, clocks from the board file), external DDR and
# FIXED_IO, the GP master for control, the HP slave for data, FCLK0 at clock_mhz with its reset.
# Returns a dict naming the pins the rest of the design connects to.
proc vitcod::create_ps {gp_port hp_port clock_mhz hp_width} {
    set name processing_system7_0
    set ps [create_bd_cell -type ip -vlnv $vitcod::xilinx_ip(processing_system7) $name]
    # The preset rule is the one use of automation: it applies the board file's PS configuration
    # and makes DDR / FIXED_IO external. Every AXI, clock and reset connection is made explicitly.
    apply_bd_automation -rule xilinx.com:bd_rule:processing_system7 \
        -config {make_external "FIXED_IO, DDR" apply_board_preset "1" Master "Disable" Slave "Disable"} $ps
    set_property -dict [list \
        CONFIG.PCW_USE_${gp_port} 1 \
        CONFIG.PCW_USE_${hp_port} 1 \
        CONFIG.PCW_${hp_port}_DATA_WIDTH $hp_width \
        CONFIG.PCW_EN_CLK0_PORT 1 \
        CONFIG.PCW_EN_RST0_PORT 1 \
        CONFIG.PCW_FPGA0_PERIPHERAL_FREQMHZ $clock_mhz \
    ] $ps
    return [dict create cell $name clk FCLK_CLK0 resetn FCLK_RESET0_N \
        gp $gp_port gp_aclk ${gp_port}_ACLK hp $hp_port hp_aclk ${hp_port}_ACLK]
}
