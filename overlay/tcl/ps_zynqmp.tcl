# Processing system of a Zynq UltraScale+ board (zynq_ultra_ps_e). Sourced by block_design.tcl
# when board(ps_family) is zynqmp; ps_zynq7.tcl provides the same procedure for Zynq-7000.

# PS-side AXI ports: the CONFIG parameter enabling each, its data-width parameter, its clock pin.
array set vitcod::zynqmp_port {
    M_AXI_HPM0_FPD {PSU__USE__M_AXI_GP0 PSU__MAXIGP0__DATA_WIDTH maxihpm0_fpd_aclk}
    M_AXI_HPM1_FPD {PSU__USE__M_AXI_GP1 PSU__MAXIGP1__DATA_WIDTH maxihpm1_fpd_aclk}
    M_AXI_HPM0_LPD {PSU__USE__M_AXI_GP2 PSU__MAXIGP2__DATA_WIDTH maxihpm0_lpd_aclk}
    S_AXI_HP0_FPD  {PSU__USE__S_AXI_GP2 PSU__SAXIGP2__DATA_WIDTH saxihp0_fpd_aclk}
    S_AXI_HP1_FPD  {PSU__USE__S_AXI_GP3 PSU__SAXIGP3__DATA_WIDTH saxihp1_fpd_aclk}
    S_AXI_HP2_FPD  {PSU__USE__S_AXI_GP4 PSU__SAXIGP4__DATA_WIDTH saxihp2_fpd_aclk}
    S_AXI_HP3_FPD  {PSU__USE__S_AXI_GP5 PSU__SAXIGP5__DATA_WIDTH saxihp3_fpd_aclk}
}

# Create and configure the PS: board preset, only the GP master we use (a board preset may enable
# others, whose clock pins would then need driving), the HP slave for data, PL clock 0 at
# clock_mhz with its reset. Returns a dict naming the pins the rest of the design connects to.
proc vitcod::create_ps {gp_port hp_port clock_mhz hp_width} {
    foreach port [list $gp_port $hp_port] {
        if {![info exists vitcod::zynqmp_port($port)]} {
            error "vitcod: unknown Zynq UltraScale+ port $port; known: [lsort [array names vitcod::zynqmp_port]]"
        }
    }
    set name zynq_ultra_ps_e_0
    set ps [create_bd_cell -type ip -vlnv $vitcod::xilinx_ip(zynq_ultra_ps_e) $name]
    # The preset rule is the one use of automation (board file PS configuration: DDR, MIO, clocks).
    apply_bd_automation -rule xilinx.com:bd_rule:zynq_ultra_ps_e -config {apply_board_preset "1"} $ps
    set config {}
    foreach master {M_AXI_HPM0_FPD M_AXI_HPM1_FPD M_AXI_HPM0_LPD} {
        lappend config CONFIG.[lindex $vitcod::zynqmp_port($master) 0] [expr {$master eq $gp_port}]
    }
    lassign $vitcod::zynqmp_port($gp_port) gp_enable_key gp_width_key gp_aclk
    lassign $vitcod::zynqmp_port($hp_port) hp_enable_key hp_width_key hp_aclk
    lappend config CONFIG.$gp_width_key 32 \
        CONFIG.$hp_enable_key 1 \
        CONFIG.$hp_width_key $hp_width \
        CONFIG.PSU__FPGA_PL0_ENABLE 1 \
        CONFIG.PSU__NUM_FABRIC_RESETS 1 \
        CONFIG.PSU__CRL_APB__PL0_REF_CTRL__FREQMHZ $clock_mhz
    set_property -dict $config $ps
    return [dict create cell $name clk pl_clk0 resetn pl_resetn0 \
        gp $gp_port gp_aclk $gp_aclk hp $hp_port hp_aclk $hp_aclk]
}
