# Models of the Xilinx catalog IP the overlay's block design uses: configuration parameters (with
# defaults and legal values) and the pins / interfaces an instance has for a given configuration.
# A model is what makes the stub strict: a mistyped CONFIG name, an illegal value, a pin that does
# not exist for the chosen configuration (the SG port with scatter-gather off, a PS port that is
# not enabled) all fail as they would in Vivado.
#
# Pin:        dict name, dir (I/O), type (clk/rst/intr/data), pol (low/high/any for resets),
#             optional (input that may stay unconnected), freq_mhz (clock outputs)
# Interface:  dict name, mode (master/slave), kind (aximm/axis/ddr/fixed_io), clock (pin name),
#             bytes (data width), and for AXI memory-mapped:
#               master: space {name addr_width window_base}   slave: segs {{name base range} ...}
#               route 1 on interconnect ports (addresses pass through the cell)
#             external 1: must be connected to a port of the design (DDR, FIXED_IO)
#
# These models describe only what the overlay needs; versions are those of ../xilinx_ip.tcl.

namespace eval ::stub::model {}

# vlnv -> model name
array set ::stub::xilinx_catalog {
    xilinx.com:ip:processing_system7:5.5 processing_system7
    xilinx.com:ip:zynq_ultra_ps_e:3.5    zynq_ultra_ps_e
    xilinx.com:ip:axi_dma:7.1            axi_dma
    xilinx.com:ip:smartconnect:1.0       smartconnect
    xilinx.com:ip:proc_sys_reset:5.0     proc_sys_reset
}

# The board store of Vivado 2024.1 as the overlay uses it (board parts vendor:board:part0:version;
# pynq-z2 is TUL's package, installed by hand). 1.3 of the KV260 SOM and carrier was the 2022.1 store.
# VITCOD_STUB_BOARD_STORE (space-separated board parts) replaces it, to model another installation.
set ::stub::board_store [expr {[info exists ::env(VITCOD_STUB_BOARD_STORE)] ? $::env(VITCOD_STUB_BOARD_STORE) : {
    tul.com.tw:pynq-z2:part0:1.0
    xilinx.com:zcu104:part0:1.1
    xilinx.com:kv260_som:part0:1.4
    xilinx.com:kv260_carrier:part0:1.4
}}]
# Connectors a carrier board offers (vendor:board -> names).
array set ::stub::board_connectors {
    xilinx.com:kv260_carrier som240_1_connector
}

proc ::stub::model::pin {name dir type {pol ""} {optional 0}} {
    return [dict create name $name dir $dir type $type pol $pol optional $optional]
}
proc ::stub::model::on {value} { return [expr {$value == 1}] }

# ---- processing_system7 (Zynq-7000) ---------------------------------------------------------------
set ::stub::model::params(processing_system7) [dict create \
    PCW_USE_M_AXI_GP0 0 PCW_USE_M_AXI_GP1 0 \
    PCW_USE_S_AXI_HP0 0 PCW_USE_S_AXI_HP1 0 PCW_USE_S_AXI_HP2 0 PCW_USE_S_AXI_HP3 0 \
    PCW_S_AXI_HP0_DATA_WIDTH 64 PCW_S_AXI_HP1_DATA_WIDTH 64 PCW_S_AXI_HP2_DATA_WIDTH 64 PCW_S_AXI_HP3_DATA_WIDTH 64 \
    PCW_EN_CLK0_PORT 1 PCW_EN_RST0_PORT 1 PCW_FPGA0_PERIPHERAL_FREQMHZ 50]
set ::stub::model::checks(processing_system7) [dict create \
    PCW_USE_M_AXI_GP0 {enum {0 1}} PCW_USE_M_AXI_GP1 {enum {0 1}} \
    PCW_USE_S_AXI_HP0 {enum {0 1}} PCW_USE_S_AXI_HP1 {enum {0 1}} PCW_USE_S_AXI_HP2 {enum {0 1}} PCW_USE_S_AXI_HP3 {enum {0 1}} \
    PCW_S_AXI_HP0_DATA_WIDTH {enum {32 64}} PCW_S_AXI_HP1_DATA_WIDTH {enum {32 64}} \
    PCW_S_AXI_HP2_DATA_WIDTH {enum {32 64}} PCW_S_AXI_HP3_DATA_WIDTH {enum {32 64}} \
    PCW_EN_CLK0_PORT {enum {0 1}} PCW_EN_RST0_PORT {enum {0 1}} PCW_FPGA0_PERIPHERAL_FREQMHZ {range 1 250}]
# What the board preset rule sets (the real preset comes from the board file; these are the
# values that matter to the overlay, chosen so a script that relies on them is caught).
set ::stub::model::preset(processing_system7) [dict create PCW_USE_M_AXI_GP0 1 PCW_FPGA0_PERIPHERAL_FREQMHZ 50]

proc ::stub::model::processing_system7 {cfg} {
    set pins {}
    set intfs {}
    if {[on [dict get $cfg PCW_EN_CLK0_PORT]]} {
        lappend pins [dict merge [pin FCLK_CLK0 O clk] [dict create freq_mhz [dict get $cfg PCW_FPGA0_PERIPHERAL_FREQMHZ]]]
    }
    if {[on [dict get $cfg PCW_EN_RST0_PORT]]} { lappend pins [pin FCLK_RESET0_N O rst low] }
    foreach {gp base} {0 0x40000000 1 0x80000000} {
        if {[on [dict get $cfg PCW_USE_M_AXI_GP$gp]]} {
            lappend pins [pin M_AXI_GP${gp}_ACLK I clk]
            lappend intfs [dict create name M_AXI_GP$gp mode master kind aximm clock M_AXI_GP${gp}_ACLK bytes 4 \
                space [list Data 32 $base]]
        }
    }
    foreach hp {0 1 2 3} {
        if {[on [dict get $cfg PCW_USE_S_AXI_HP$hp]]} {
            lappend pins [pin S_AXI_HP${hp}_ACLK I clk]
            lappend intfs [dict create name S_AXI_HP$hp mode slave kind aximm clock S_AXI_HP${hp}_ACLK \
                bytes [expr {[dict get $cfg PCW_S_AXI_HP${hp}_DATA_WIDTH] / 8}] \
                segs [list [list HP${hp}_DDR_LOWOCM 0x00000000 0x20000000]]]
        }
    }
    lappend intfs [dict create name DDR mode master kind ddr clock "" bytes 4 external 1]
    lappend intfs [dict create name FIXED_IO mode master kind fixed_io clock "" bytes 0 external 1]
    return [dict create pins $pins intfs $intfs]
}

# ---- zynq_ultra_ps_e (Zynq UltraScale+) -------------------------------------------------------------
set ::stub::model::params(zynq_ultra_ps_e) [dict create \
    PSU__USE__M_AXI_GP0 0 PSU__USE__M_AXI_GP1 0 PSU__USE__M_AXI_GP2 0 \
    PSU__MAXIGP0__DATA_WIDTH 128 PSU__MAXIGP1__DATA_WIDTH 128 PSU__MAXIGP2__DATA_WIDTH 128 \
    PSU__USE__S_AXI_GP2 0 PSU__USE__S_AXI_GP3 0 PSU__USE__S_AXI_GP4 0 PSU__USE__S_AXI_GP5 0 \
    PSU__SAXIGP2__DATA_WIDTH 128 PSU__SAXIGP3__DATA_WIDTH 128 PSU__SAXIGP4__DATA_WIDTH 128 PSU__SAXIGP5__DATA_WIDTH 128 \
    PSU__FPGA_PL0_ENABLE 0 PSU__NUM_FABRIC_RESETS 1 PSU__CRL_APB__PL0_REF_CTRL__FREQMHZ 100]
set ::stub::model::checks(zynq_ultra_ps_e) [dict create \
    PSU__USE__M_AXI_GP0 {enum {0 1}} PSU__USE__M_AXI_GP1 {enum {0 1}} PSU__USE__M_AXI_GP2 {enum {0 1}} \
    PSU__MAXIGP0__DATA_WIDTH {enum {32 64 128}} PSU__MAXIGP1__DATA_WIDTH {enum {32 64 128}} PSU__MAXIGP2__DATA_WIDTH {enum {32 64 128}} \
    PSU__USE__S_AXI_GP2 {enum {0 1}} PSU__USE__S_AXI_GP3 {enum {0 1}} PSU__USE__S_AXI_GP4 {enum {0 1}} PSU__USE__S_AXI_GP5 {enum {0 1}} \
    PSU__SAXIGP2__DATA_WIDTH {enum {32 64 128}} PSU__SAXIGP3__DATA_WIDTH {enum {32 64 128}} \
    PSU__SAXIGP4__DATA_WIDTH {enum {32 64 128}} PSU__SAXIGP5__DATA_WIDTH {enum {32 64 128}} \
    PSU__FPGA_PL0_ENABLE {enum {0 1}} PSU__NUM_FABRIC_RESETS {range 0 4} \
    PSU__CRL_APB__PL0_REF_CTRL__FREQMHZ {range 1 500}]
# Board presets enable PS masters the overlay does not use (HPM0/1 FPD, HPM0 LPD); each enabled
# master's clock pin must then be driven, so the script has to switch the unused ones off.
set ::stub::model::preset(zynq_ultra_ps_e) [dict create PSU__USE__M_AXI_GP0 1 PSU__USE__M_AXI_GP1 1 \
    PSU__USE__M_AXI_GP2 1 PSU__FPGA_PL0_ENABLE 1]

proc ::stub::model::zynq_ultra_ps_e {cfg} {
    set pins {}
    set intfs {}
    if {[on [dict get $cfg PSU__FPGA_PL0_ENABLE]]} {
        lappend pins [dict merge [pin pl_clk0 O clk] [dict create freq_mhz [dict get $cfg PSU__CRL_APB__PL0_REF_CTRL__FREQMHZ]]]
    }
    if {[dict get $cfg PSU__NUM_FABRIC_RESETS] >= 1} { lappend pins [pin pl_resetn0 O rst low] }
    foreach {gp intf clk base} {0 M_AXI_HPM0_FPD maxihpm0_fpd_aclk 0xA0000000 1 M_AXI_HPM1_FPD maxihpm1_fpd_aclk 0xB0000000
                                2 M_AXI_HPM0_LPD maxihpm0_lpd_aclk 0x80000000} {
        if {[on [dict get $cfg PSU__USE__M_AXI_GP$gp]]} {
            lappend pins [pin $clk I clk]
            lappend intfs [dict create name $intf mode master kind aximm clock $clk \
                bytes [expr {[dict get $cfg PSU__MAXIGP${gp}__DATA_WIDTH] / 8}] space [list Data 40 $base]]
        }
    }
    foreach {gp hp} {2 0 3 1 4 2 5 3} {
        if {[on [dict get $cfg PSU__USE__S_AXI_GP$gp]]} {
            lappend pins [pin saxihp${hp}_fpd_aclk I clk]
            lappend intfs [dict create name S_AXI_HP${hp}_FPD mode slave kind aximm clock saxihp${hp}_fpd_aclk \
                bytes [expr {[dict get $cfg PSU__SAXIGP${gp}__DATA_WIDTH] / 8}] \
                segs [list [list HP${hp}_DDR_LOW 0x00000000 0x80000000] [list HP${hp}_DDR_HIGH 0x800000000 0x800000000] \
                      [list HP${hp}_QSPI 0xC0000000 0x20000000] [list HP${hp}_LPS_OCM 0xFF000000 0x01000000]]]
        }
    }
    return [dict create pins $pins intfs $intfs]
}

# ---- axi_dma 7.1 ------------------------------------------------------------------------------------
set ::stub::model::params(axi_dma) [dict create \
    c_include_sg 1 c_sg_include_stscntrl_strm 1 c_sg_length_width 14 c_addr_width 32 \
    c_include_mm2s 1 c_include_s2mm 1 c_micro_dma 0 \
    c_m_axi_mm2s_data_width 32 c_m_axis_mm2s_tdata_width 32 c_m_axi_s2mm_data_width 32 c_s_axis_s2mm_tdata_width 32 \
    c_mm2s_burst_size 16 c_s2mm_burst_size 16]
set ::stub::model::checks(axi_dma) [dict create \
    c_include_sg {enum {0 1}} c_sg_include_stscntrl_strm {enum {0 1}} c_sg_length_width {range 8 26} \
    c_addr_width {range 32 64} c_include_mm2s {enum {0 1}} c_include_s2mm {enum {0 1}} c_micro_dma {enum {0 1}} \
    c_m_axi_mm2s_data_width {enum {32 64 128 256 512 1024}} c_m_axi_s2mm_data_width {enum {32 64 128 256 512 1024}} \
    c_m_axis_mm2s_tdata_width {enum {8 16 32 64 128 256 512 1024}} c_s_axis_s2mm_tdata_width {enum {8 16 32 64 128 256 512 1024}} \
    c_mm2s_burst_size {enum {2 4 8 16 32 64 128 256}} c_s2mm_burst_size {enum {2 4 8 16 32 64 128 256}}]
set ::stub::model::preset(axi_dma) {}

proc ::stub::model::axi_dma {cfg} {
    set sg [on [dict get $cfg c_include_sg]]
    set pins [list [pin s_axi_lite_aclk I clk] [pin axi_resetn I rst low]]
    set intfs [list [dict create name S_AXI_LITE mode slave kind aximm clock s_axi_lite_aclk bytes 4 \
        segs [list [list Reg "" 0x10000]]]]
    set aw [dict get $cfg c_addr_width]
    if {$sg} {
        lappend pins [pin m_axi_sg_aclk I clk]
        lappend intfs [dict create name M_AXI_SG mode master kind aximm clock m_axi_sg_aclk bytes 4 \
            space [list Data_SG $aw ""]]
    }
    if {[on [dict get $cfg c_include_mm2s]]} {
        lappend pins [pin m_axi_mm2s_aclk I clk] [pin mm2s_introut O intr] [pin mm2s_prmry_reset_out_n O rst low]
        lappend intfs [dict create name M_AXI_MM2S mode master kind aximm clock m_axi_mm2s_aclk \
            bytes [expr {[dict get $cfg c_m_axi_mm2s_data_width] / 8}] space [list Data_MM2S $aw ""]]
        lappend intfs [dict create name M_AXIS_MM2S mode master kind axis clock m_axi_mm2s_aclk \
            bytes [expr {[dict get $cfg c_m_axis_mm2s_tdata_width] / 8}]]
        if {$sg && [on [dict get $cfg c_sg_include_stscntrl_strm]]} {
            lappend intfs [dict create name M_AXIS_CNTRL mode master kind axis clock m_axi_mm2s_aclk bytes 4]
        }
    }
    if {[on [dict get $cfg c_include_s2mm]]} {
        lappend pins [pin m_axi_s2mm_aclk I clk] [pin s2mm_introut O intr] [pin s2mm_prmry_reset_out_n O rst low]
        lappend intfs [dict create name M_AXI_S2MM mode master kind aximm clock m_axi_s2mm_aclk \
            bytes [expr {[dict get $cfg c_m_axi_s2mm_data_width] / 8}] space [list Data_S2MM $aw ""]]
        lappend intfs [dict create name S_AXIS_S2MM mode slave kind axis clock m_axi_s2mm_aclk \
            bytes [expr {[dict get $cfg c_s_axis_s2mm_tdata_width] / 8}]]
        if {$sg && [on [dict get $cfg c_sg_include_stscntrl_strm]]} {
            lappend intfs [dict create name S_AXIS_STS mode slave kind axis clock m_axi_s2mm_aclk bytes 4]
        }
    }
    return [dict create pins $pins intfs $intfs]
}

# Checks validate_bd_design makes on an axi_dma instance.
proc ::stub::model::validate_axi_dma {cell cfg} {
    set errors {}
    foreach {mm st} {c_m_axi_mm2s_data_width c_m_axis_mm2s_tdata_width c_m_axi_s2mm_data_width c_s_axis_s2mm_tdata_width} {
        if {[dict get $cfg $mm] < [dict get $cfg $st]} {
            lappend errors "$cell: $mm ([dict get $cfg $mm]) is narrower than $st ([dict get $cfg $st])"
        }
    }
    return $errors
}

# ---- smartconnect 1.0 -------------------------------------------------------------------------------
set ::stub::model::params(smartconnect) [dict create NUM_SI 1 NUM_MI 1 NUM_CLKS 1]
set ::stub::model::checks(smartconnect) [dict create NUM_SI {range 1 16} NUM_MI {range 1 16} NUM_CLKS {range 1 1}]
set ::stub::model::preset(smartconnect) {}

proc ::stub::model::smartconnect {cfg} {
    set pins [list [pin aclk I clk] [pin aresetn I rst low]]
    set intfs {}
    for {set i 0} {$i < [dict get $cfg NUM_SI]} {incr i} {
        lappend intfs [dict create name [format S%02d_AXI $i] mode slave kind aximm clock aclk bytes 0 route 1]
    }
    for {set i 0} {$i < [dict get $cfg NUM_MI]} {incr i} {
        lappend intfs [dict create name [format M%02d_AXI $i] mode master kind aximm clock aclk bytes 0 route 1]
    }
    return [dict create pins $pins intfs $intfs]
}

# ---- proc_sys_reset 5.0 -----------------------------------------------------------------------------
set ::stub::model::params(proc_sys_reset) [dict create]
set ::stub::model::checks(proc_sys_reset) [dict create]
set ::stub::model::preset(proc_sys_reset) {}

proc ::stub::model::proc_sys_reset {cfg} {
    set pins [list [pin slowest_sync_clk I clk] [pin ext_reset_in I rst any] \
        [pin aux_reset_in I rst any 1] [pin mb_debug_sys_rst I rst high 1] [pin dcm_locked I data "" 1] \
        [pin mb_reset O rst high] [pin bus_struct_reset O rst high] [pin peripheral_reset O rst high] \
        [pin interconnect_aresetn O rst low] [pin peripheral_aresetn O rst low]]
    return [dict create pins $pins intfs {}]
}

# ---- IP exported by Vitis HLS (component.stub.tcl written by the Vitis HLS stub) ------------------
proc ::stub::model::hls_component {component} {
    return [dict create pins [dict get $component pins] intfs [dict get $component intfs]]
}
