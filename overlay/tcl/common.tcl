# Shared by the step scripts (build_ip.tcl, block_design.tcl, bitstream.tcl): load the board
# description and the generated parameters, and small helpers. Runs in Vitis HLS, Vivado and the
# stub layer (overlay/dryrun/tcl/), so it uses plain Tcl only.
#
# Every step is invoked the same way:
#   <tool> -mode batch -source overlay/tcl/<step>.tcl -tclargs <board.tcl> <params.tcl>   (Vivado)
#   vitis_hls -f overlay/tcl/build_ip.tcl -tclargs <board.tcl> <params.tcl>
# and afterwards holds the arrays `board(...)` (boards/<board>/board.tcl) and `params(...)`
# (build/<board>/params.tcl, written by overlay/scripts/overlay_codegen.py).

namespace eval vitcod {
    variable tcl_dir [file dirname [file normalize [info script]]]
}

# Source board.tcl and params.tcl named on the command line into the global arrays.
proc vitcod::load_inputs {args_list} {
    if {[llength $args_list] != 2} {
        error "vitcod: expected -tclargs <board.tcl> <params.tcl>, got: $args_list"
    }
    lassign $args_list board_tcl params_tcl
    foreach f [list $board_tcl $params_tcl] {
        if {![file isfile $f]} {
            error "vitcod: input file $f not found (params.tcl is written by `make -C overlay configure`)"
        }
    }
    uplevel #0 [list source $board_tcl]
    uplevel #0 [list source $params_tcl]
    global board params
    vitcod::require board {name part board_part board_connections ps_family hp_port gp_port dma_addr_width}
    vitcod::require params {board build_dir ip_vlnv ip_top clock_period_ns max_batch dma_length_width}
    if {$params(board) ne $board(name)} {
        error "vitcod: params.tcl was generated for board '$params(board)', but board.tcl is '$board(name)'"
    }
}

# Fail with the missing keys of a global array.
proc vitcod::require {array_name keys} {
    upvar #0 $array_name arr
    set missing {}
    foreach k $keys {
        if {![info exists arr($k)]} { lappend missing $k }
    }
    if {[llength $missing]} {
        error "vitcod: $array_name is missing [join $missing {, }]"
    }
}

# Where each step works, all under build/<board>/.
proc vitcod::hls_dir {} { global params; return [file join $params(build_dir) hls] }
proc vitcod::ip_repo {} {
    global params
    return [file join [vitcod::hls_dir] $params(hls_project) $params(hls_solution) impl ip]
}
proc vitcod::vivado_dir {} { global params; return [file join $params(build_dir) vivado] }

# Copy build outputs into place: all sources must exist before any is copied, and each goes
# through a temporary name, so a failure never leaves a partial or mismatched set.
# pairs: {src dst src dst ...}
proc vitcod::copy_outputs {pairs} {
    foreach {src dst} $pairs {
        if {![file isfile $src]} { error "vitcod: expected build output $src does not exist" }
    }
    foreach {src dst} $pairs {
        file copy -force $src "$dst.partial"
    }
    foreach {src dst} $pairs {
        file rename -force "$dst.partial" $dst
        puts "vitcod: wrote $dst"
    }
}
