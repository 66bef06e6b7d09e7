# Step 2 (Vivado): the block design - PS, AXI DMA (no scatter-gather), the HLS IP, interconnect,
# reset and clock - connected explicitly, addressed, validated and saved.
#   vivado -mode batch -source overlay/tcl/block_design.tcl -tclargs boards/<board>/board.tcl build/<board>/params.tcl
# Output: build/<board>/vivado/<project_name>.xpr with the block design <bd_name>.
#
#   PS GP master --ctrl_interconnect--> DMA S_AXI_LITE, IP s_axi_control      (control)
#   DMA M_AXI_MM2S, M_AXI_S2MM --mem_interconnect--> PS HP slave (DDR)        (data)
#   DMA M_AXIS_MM2S --> IP input stream;  IP output stream --> DMA S_AXIS_S2MM
#   one PL clock (params(clock_mhz)) and one proc_sys_reset for everything
source [file join [file dirname [file normalize [info script]]] common.tcl]
vitcod::load_inputs $argv
source [file join $vitcod::tcl_dir xilinx_ip.tcl]
source [file join $vitcod::tcl_dir board_files.tcl]
source [file join $vitcod::tcl_dir ps_$board(ps_family).tcl]

set proj_dir [vitcod::vivado_dir]
create_project -force $params(project_name) $proj_dir -part $board(part)
set_property board_part [vitcod::installed_board_part $board(board_part)] [current_project]
if {$board(board_connections) ne ""} {
    set_property board_connections [vitcod::installed_board_connections $board(board_connections)] [current_project]
}
set_property ip_repo_paths [list [vitcod::ip_repo]] [current_project]
update_ip_catalog

create_bd_design $params(bd_name)

# ---- cells ------------------------------------------------------------------------------------
set ps [vitcod::create_ps $board(gp_port) $board(hp_port) $params(clock_mhz) $params(stream_width)]
set ps_cell [dict get $ps cell]

set rst [create_bd_cell -type ip -vlnv $vitcod::xilinx_ip(proc_sys_reset) rst_pl_clk]

set w $params(stream_width)
set dma [create_bd_cell -type ip -vlnv $vitcod::xilinx_ip(axi_dma) $params(dma_cell)]
set_property -dict [list \
    CONFIG.c_include_sg 0 \
    CONFIG.c_sg_include_stscntrl_strm 0 \
    CONFIG.c_sg_length_width $params(dma_length_width) \
    CONFIG.c_addr_width $board(dma_addr_width) \
    CONFIG.c_include_mm2s 1 \
    CONFIG.c_include_s2mm 1 \
    CONFIG.c_m_axi_mm2s_data_width $w \
    CONFIG.c_m_axis_mm2s_tdata_width $w \
    CONFIG.c_m_axi_s2mm_data_width $w \
    CONFIG.c_s_axis_s2mm_tdata_width $w \
    CONFIG.c_mm2s_burst_size $params(dma_burst_beats) \
    CONFIG.c_s2mm_burst_size $params(dma_burst_beats) \
] $dma

set ip [create_bd_cell -type ip -vlnv $params(ip_vlnv) $params(ip_cell)]

set ctrl_ic [create_bd_cell -type ip -vlnv $vitcod::xilinx_ip(smartconnect) ctrl_interconnect]
set_property -dict [list CONFIG.NUM_SI 1 CONFIG.NUM_MI 2] $ctrl_ic
set mem_ic [create_bd_cell -type ip -vlnv $vitcod::xilinx_ip(smartconnect) mem_interconnect]
set_property -dict [list CONFIG.NUM_SI 2 CONFIG.NUM_MI 1] $mem_ic

# ---- AXI connections --------------------------------------------------------------------------
proc vitcod::intf {path} { return [get_bd_intf_pins $path] }
set D $params(dma_cell)
set I $params(ip_cell)

# control: PS GP master -> DMA registers, IP registers
connect_bd_intf_net [vitcod::intf $ps_cell/[dict get $ps gp]] [vitcod::intf ctrl_interconnect/S00_AXI]
connect_bd_intf_net [vitcod::intf ctrl_interconnect/M00_AXI] [vitcod::intf $D/S_AXI_LITE]
connect_bd_intf_net [vitcod::intf ctrl_interconnect/M01_AXI] [vitcod::intf $I/$params(ip_ctrl_intf)]
# data: both DMA channels -> PS HP slave (DDR)
connect_bd_intf_net [vitcod::intf $D/M_AXI_MM2S] [vitcod::intf mem_interconnect/S00_AXI]
connect_bd_intf_net [vitcod::intf $D/M_AXI_S2MM] [vitcod::intf mem_interconnect/S01_AXI]
connect_bd_intf_net [vitcod::intf mem_interconnect/M00_AXI] [vitcod::intf $ps_cell/[dict get $ps hp]]
# streams: DMA MM2S -> IP -> DMA S2MM
connect_bd_intf_net [vitcod::intf $D/M_AXIS_MM2S] [vitcod::intf $I/$params(ip_in_intf)]
connect_bd_intf_net [vitcod::intf $I/$params(ip_out_intf)] [vitcod::intf $D/S_AXIS_S2MM]

# ---- clock and resets -------------------------------------------------------------------------
connect_bd_net [get_bd_pins $ps_cell/[dict get $ps clk]] \
    [get_bd_pins $ps_cell/[dict get $ps gp_aclk]] \
    [get_bd_pins $ps_cell/[dict get $ps hp_aclk]] \
    [get_bd_pins rst_pl_clk/slowest_sync_clk] \
    [get_bd_pins $D/s_axi_lite_aclk] \
    [get_bd_pins $D/m_axi_mm2s_aclk] \
    [get_bd_pins $D/m_axi_s2mm_aclk] \
    [get_bd_pins $I/$params(ip_clk_pin)] \
    [get_bd_pins ctrl_interconnect/aclk] \
    [get_bd_pins mem_interconnect/aclk]
connect_bd_net [get_bd_pins $ps_cell/[dict get $ps resetn]] [get_bd_pins rst_pl_clk/ext_reset_in]
connect_bd_net [get_bd_pins rst_pl_clk/peripheral_aresetn] \
    [get_bd_pins $D/axi_resetn] \
    [get_bd_pins $I/$params(ip_rstn_pin)]
connect_bd_net [get_bd_pins rst_pl_clk/interconnect_aresetn] \
    [get_bd_pins ctrl_interconnect/aresetn] \
    [get_bd_pins mem_interconnect/aresetn]

# ---- addresses, check, save ---------------------------------------------------------------------
assign_bd_address
validate_bd_design
save_bd_design
puts "vitcod: block design $params(bd_name) saved in $proj_dir"
close_project
exit
