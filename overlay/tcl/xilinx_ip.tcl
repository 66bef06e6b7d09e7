# Xilinx catalog IP used by the block design, with the versions of the Vivado 2024.1 catalog
# (params(tools_version)). A different Vivado release may carry other versions: update here.
array set vitcod::xilinx_ip {
    processing_system7 xilinx.com:ip:processing_system7:5.5
    zynq_ultra_ps_e    xilinx.com:ip:zynq_ultra_ps_e:3.5
    axi_dma            xilinx.com:ip:axi_dma:7.1
    smartconnect       xilinx.com:ip:smartconnect:1.0
    proc_sys_reset     xilinx.com:ip:proc_sys_reset:5.0
}
