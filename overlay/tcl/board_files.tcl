# Board files for the block design: the board part and the board connections of board.tcl, resolved
# against the board store Vivado has installed. Sourced by block_design.tcl (Vivado only).
#
# board.tcl pins the versions of the Vivado release the flow is written for (TOOLS_VERSION); a store
# that lacks a pinned version but holds another one of the same board is used with its latest file
# version (get_board_parts -latest_file_version) and a warning, for the board part and for every
# connection's board alike, so that the SOM and its carrier never end up on different versions by
# accident. A board whose files are not installed at all stops the build, naming what to install.

# vendor:board:part0:version of an installed board, the pinned one when it is installed.
proc vitcod::installed_board_part {wanted} {
    if {[llength [get_board_parts -quiet $wanted]]} {
        return $wanted
    }
    lassign [split $wanted :] vendor name part
    set latest [get_board_parts -quiet -latest_file_version "$vendor:$name:$part:*"]
    if {![llength $latest]} {
        error "vitcod: board files $vendor:$name are not installed (board.tcl wants $wanted); install them\
 from the Vivado board store (Tools > Vivado Store > Boards, or xhub) or the board vendor's package"
    }
    set found [lindex [lsort -dictionary $latest] end]
    puts "WARNING: vitcod: board part $wanted is not installed; using $found, the latest installed version"
    return $found
}

# board(board_connections) with each connection moved to the installed version of its board:
# {connector vendor:board:connector:version ...} -> the same list, versions resolved.
proc vitcod::installed_board_connections {connections} {
    set out {}
    foreach {connector target} $connections {
        lassign [split $target :] vendor name conn version
        set part [vitcod::installed_board_part "$vendor:$name:part0:$version"]
        lappend out $connector "$vendor:$name:$conn:[lindex [split $part :] 3]"
    }
    return $out
}
