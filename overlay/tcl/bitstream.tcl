# Step 3 (Vivado): HDL wrapper, synthesis, implementation up to write_bitstream, and the PYNQ
# artifacts copied side by side as build/<board>/<output_name>.bit + <output_name>.hwh.
#   vivado -mode batch -source overlay/tcl/bitstream.tcl -tclargs boards/<board>/board.tcl build/<board>/params.tcl
source [file join [file dirname [file normalize [info script]]] common.tcl]
vitcod::load_inputs $argv

set bit_out [file join $params(build_dir) $params(output_name).bit]
set hwh_out [file join $params(build_dir) $params(output_name).hwh]
# Outputs of an earlier build must not survive a failed rebuild next to new parameters.
file delete -force $bit_out $hwh_out

set proj_dir [vitcod::vivado_dir]
open_project [file join $proj_dir $params(project_name).xpr]

set bd_file [get_files $params(bd_name).bd]
add_files -norecurse [make_wrapper -files $bd_file -top]
set_property top $params(bd_name)_wrapper [current_fileset]
update_compile_order -fileset sources_1

# Stop with the run's status when a run does not complete.
proc vitcod::check_run {run} {
    set progress [get_property PROGRESS [get_runs $run]]
    if {$progress ne "100%"} {
        set log [file join [get_property DIRECTORY [get_runs $run]] runme.log]
        error "vitcod: $run did not complete ([get_property STATUS [get_runs $run]], $progress); see $log"
    }
}

reset_run synth_1
launch_runs synth_1 -jobs $params(jobs)
wait_on_run synth_1
vitcod::check_run synth_1

launch_runs impl_1 -to_step write_bitstream -jobs $params(jobs)
wait_on_run impl_1
vitcod::check_run impl_1

set wns [get_property STATS.WNS [get_runs impl_1]]
if {$wns < 0} {
    error "vitcod: timing not met at $params(clock_mhz) MHz (WNS $wns ns); lower the clock (CLOCK_MHZ=...) and rebuild"
}

set bit [file join [get_property DIRECTORY [get_runs impl_1]] $params(bd_name)_wrapper.bit]
set hwh [file join $proj_dir $params(project_name).gen sources_1 bd $params(bd_name) hw_handoff $params(bd_name).hwh]
vitcod::copy_outputs [list $bit $bit_out $hwh $hwh_out]
close_project
exit
