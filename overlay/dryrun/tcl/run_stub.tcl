# Run a Vivado / Vitis HLS Tcl script under plain tclsh, against the stub layer, and record the
# design it builds as JSON.
#
#   tclsh overlay/dryrun/tcl/run_stub.tcl <vivado|vitis_hls> <record.json> <script.tcl> ?arg ...?
#
# The script sees ::argv / ::argc / ::argv0 as with `vivado -mode batch -source <script> -tclargs
# <args>`. Exit status: 0 and the record written; 1 when the script raised an error (a misused
# command, a failed check); 3 when it called a command or option the stub does not model; 2 usage.
# Nothing here needs Vivado: the stub models the IP Integrator and Vitis HLS commands the overlay
# scripts use (see stub_vivado.tcl, stub_vitis_hls.tcl, ip_models.tcl).

set stub_dir [file dirname [file normalize [info script]]]
if {[llength $argv] < 3 || [lindex $argv 0] ni {vivado vitis_hls}} {
    puts stderr "usage: tclsh run_stub.tcl <vivado|vitis_hls> <record.json> <script.tcl> ?arg ...?"
    exit 2
}
lassign $argv stub_tool stub_record stub_script
set stub_script [file normalize $stub_script]
set stub_args [lrange $argv 3 end]

source [file join $stub_dir stub_core.tcl]
::stub::init $stub_tool $stub_record
if {$stub_tool eq "vivado"} {
    source [file join $stub_dir ip_models.tcl]
    source [file join $stub_dir stub_vivado.tcl]
} else {
    source [file join $stub_dir stub_vitis_hls.tcl]
}

set ::argv $stub_args
set ::argc [llength $stub_args]
set ::argv0 $stub_script
unset stub_args stub_dir

if {[catch {uplevel #0 [list source $stub_script]} stub_msg stub_opts]} {
    puts stderr "STUB: $stub_script failed: $stub_msg"
    puts stderr [dict get $stub_opts -errorinfo]
    flush stderr
    ::stub::real_exit 1
}
# A script that ends without `exit` also succeeds, as in batch mode.
::stub::finish 0
