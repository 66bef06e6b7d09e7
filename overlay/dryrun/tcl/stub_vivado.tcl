# Vivado (IP Integrator + project + runs) commands, as stubs that check their use against the IP
# models (ip_models.tcl) and record the design. Loaded by run_stub.tcl after stub_core.tcl.
#
# Objects are strings as in Vivado: cells "/name", pins and interface pins "/cell/pin", ports
# "/name", the project by its name, fileset sources_1, runs synth_1 / impl_1, files by path.
# get_bd_* commands that match nothing are errors unless -quiet (stricter than Vivado, which only
# warns): a mistyped pin name fails where it is written.

namespace eval ::stub {
    variable project {}
    variable user_catalog {}
    variable bd {}
    variable cells {}
    variable ports {}
    variable intf_nets {}
    variable nets {}
    variable addresses {}
    variable excluded {}
}

# ---- helpers ----------------------------------------------------------------------------------------
proc ::stub::need_project {cmd} {
    if {![dict size $::stub::project]} { ::stub::fail "$cmd: no project is open" }
}
proc ::stub::need_bd {cmd} {
    if {![dict size $::stub::bd]} { ::stub::fail "$cmd: no block design is open (create_bd_design first)" }
}
proc ::stub::proj_get {key} { return [dict get $::stub::project $key] }

proc ::stub::xpr_path {} {
    return [file join [::stub::proj_get dir] [::stub::proj_get name].xpr]
}
proc ::stub::save_project {} {
    set fh [open [::stub::xpr_path] w]
    puts $fh [list stub_project $::stub::project]
    close $fh
}

# Name of a cell / pin from an object string, with or without the leading slash.
proc ::stub::strip {ref} { return [string trimleft $ref /] }

proc ::stub::cell_iface {name} {
    set c [dict get $::stub::cells $name]
    set model [dict get $c model]
    if {$model eq "hls_component"} {
        return [::stub::model::hls_component [dict get $c component]]
    }
    return [::stub::model::$model [dict get $c cfg]]
}
proc ::stub::cell_pins {name} { return [dict get [::stub::cell_iface $name] pins] }
proc ::stub::cell_intfs {name} { return [dict get [::stub::cell_iface $name] intfs] }

proc ::stub::find_by_name {items name} {
    foreach it $items {
        if {[dict get $it name] eq $name} { return $it }
    }
    return {}
}

# {kind cell name info}: kind pin / intf_pin / port / intf_port
proc ::stub::resolve {ref want} {
    set path [::stub::strip $ref]
    set parts [split $path /]
    if {[llength $parts] == 2} {
        lassign $parts cell name
        if {![dict exists $::stub::cells $cell]} { ::stub::fail "no cell '$cell' (in '$ref')" }
        if {$want eq "intf"} {
            set it [::stub::find_by_name [::stub::cell_intfs $cell] $name]
            if {![dict size $it]} { ::stub::fail "cell '$cell' has no interface pin '$name' in its current configuration" }
            return [list intf_pin $cell $name $it]
        }
        set it [::stub::find_by_name [::stub::cell_pins $cell] $name]
        if {![dict size $it]} { ::stub::fail "cell '$cell' has no pin '$name' in its current configuration" }
        return [list pin $cell $name $it]
    }
    if {[llength $parts] == 1 && [dict exists $::stub::ports $path]} {
        set p [dict get $::stub::ports $path]
        if {($want eq "intf") != ([dict get $p kind] eq "intf")} {
            ::stub::fail "'$ref' is not a [expr {$want eq {intf} ? {interface port} : {port}}]"
        }
        return [list [expr {$want eq "intf" ? "intf_port" : "port"}] "" $path $p]
    }
    ::stub::fail "'$ref' is not a [expr {$want eq {intf} ? {bd interface pin or port} : {bd pin or port}}]"
}

proc ::stub::check_value {cell key value} {
    set model [dict get $::stub::cells $cell model]
    if {$model eq "hls_component"} { ::stub::fail "set_property: IP $cell has no parameter $key" }
    if {![dict exists $::stub::model::params($model) $key]} {
        ::stub::fail "set_property: $model has no parameter CONFIG.$key (modelled: [join [dict keys $::stub::model::params($model)] {, }])"
    }
    if {[dict exists $::stub::model::checks($model) $key]} {
        set rule [dict get $::stub::model::checks($model) $key]
        switch -- [lindex $rule 0] {
            enum {
                if {$value ni [lindex $rule 1]} { ::stub::fail "set_property: CONFIG.$key of $cell must be one of [lindex $rule 1], got '$value'" }
            }
            range {
                if {![string is double -strict $value] || $value < [lindex $rule 1] || $value > [lindex $rule 2]} {
                    ::stub::fail "set_property: CONFIG.$key of $cell must be within [lindex $rule 1]..[lindex $rule 2], got '$value'"
                }
            }
        }
    }
}

# ---- project ----------------------------------------------------------------------------------------
proc create_project {args} {
    ::stub::log create_project $args
    set o [::stub::parse create_project {-force -part=} $args]
    set pos [dict get $o args]
    if {[llength $pos] != 2} { ::stub::fail "create_project: expected <name> <dir>, got '$pos'" }
    if {![dict exists $o -part]} { ::stub::fail "create_project: -part is required by the overlay flow" }
    lassign $pos name dir
    set dir [file normalize $dir]
    if {[file exists [file join $dir $name.xpr]] && ![dict exists $o -force]} {
        ::stub::fail "create_project: project $dir/$name.xpr exists (use -force)"
    }
    file delete -force $dir
    file mkdir $dir
    set ::stub::project [dict create name $name dir $dir part [dict get $o -part] props [dict create] \
        files {} top "" runs [dict create \
            synth_1 [dict create launched 0 done 0 to_step "" progress "0%" status "Not started"] \
            impl_1 [dict create launched 0 done 0 to_step "" progress "0%" status "Not started"]]]
    ::stub::save_project
    return $name
}

proc open_project {args} {
    ::stub::log open_project $args
    set o [::stub::parse open_project {} $args]
    set xpr [lindex [dict get $o args] 0]
    if {![file isfile $xpr]} { ::stub::fail "open_project: $xpr does not exist" }
    set fh [open $xpr]
    set content [read $fh]
    close $fh
    if {[lindex $content 0] ne "stub_project"} { ::stub::fail "open_project: $xpr was not written by the stub" }
    set ::stub::project [lindex $content 1]
    return [::stub::proj_get name]
}

proc close_project {args} {
    ::stub::log close_project $args
    ::stub::parse close_project {} $args
    ::stub::need_project close_project
    ::stub::save_project
    dict set ::stub::project closed 1
}

proc current_project {args} {
    ::stub::parse current_project {} $args
    ::stub::need_project current_project
    return [::stub::proj_get name]
}

proc current_fileset {args} {
    ::stub::parse current_fileset {} $args
    return sources_1
}

proc update_ip_catalog {args} {
    ::stub::log update_ip_catalog $args
    ::stub::parse update_ip_catalog {-rebuild} $args
    ::stub::need_project update_ip_catalog
    set ::stub::user_catalog {}
    set repos {}
    if {[dict exists [::stub::proj_get props] ip_repo_paths]} { set repos [dict get [::stub::proj_get props] ip_repo_paths] }
    foreach repo $repos {
        if {![file isdirectory $repo]} { ::stub::warn "update_ip_catalog: IP repository $repo does not exist"; continue }
        foreach comp [::stub::find_components $repo] {
            set fh [open $comp]
            set component [read $fh]
            close $fh
            dict set ::stub::user_catalog [dict get $component vlnv] $component
        }
    }
}

proc ::stub::find_components {dir} {
    set found [glob -nocomplain -directory $dir -type f component.stub.tcl]
    foreach sub [glob -nocomplain -directory $dir -type d *] {
        lappend found {*}[::stub::find_components $sub]
    }
    return $found
}

proc set_property {args} {
    ::stub::log set_property $args
    set o [::stub::parse set_property {-dict=} $args]
    set pos [dict get $o args]
    if {[dict exists $o -dict]} {
        set pairs [dict get $o -dict]
        set objs [::stub::flatten $pos]
    } else {
        if {[llength $pos] < 3} { ::stub::fail "set_property: expected <name> <value> <objects>" }
        set pairs [lrange $pos 0 1]
        set objs [::stub::flatten [lrange $pos 2 end]]
    }
    if {[llength $pairs] % 2} { ::stub::fail "set_property: -dict needs name/value pairs" }
    if {![llength $objs]} { ::stub::fail "set_property: no object given" }
    foreach obj $objs {
        set cell [::stub::strip $obj]
        if {[string index $obj 0] eq "/" && [dict exists $::stub::cells $cell]} {
            foreach {k v} $pairs {
                if {![string match CONFIG.* $k]} { ::stub::unsupported "set_property: cell property $k (only CONFIG.* modelled)" }
                set key [string range $k 7 end]
                ::stub::check_value $cell $key $v
                dict set ::stub::cells $cell cfg $key $v
            }
        } elseif {[dict size $::stub::project] && $obj eq [::stub::proj_get name]} {
            foreach {k v} $pairs {
                switch -- $k {
                    board_part {
                        if {![regexp {^[\w.-]+:[\w.-]+:part0:[\d.]+$} $v]} { ::stub::fail "set_property: board_part '$v' is not vendor:board:part0:version" }
                        if {$v ni $::stub::board_store} {
                            ::stub::fail "set_property: \[Board 49-71\] the board_part definition was not found for $v (installed: $::stub::board_store)"
                        }
                    }
                    board_connections {
                        foreach {conn target} $v {
                            if {![regexp {^([\w.-]+:[\w.-]+):([\w.-]+):([\d.]+)$} $target -> board connector version]} { ::stub::fail "set_property: board connection '$target' is malformed" }
                            if {"$board:part0:$version" ni $::stub::board_store} {
                                ::stub::fail "set_property: board connection $target: board $board:part0:$version is not installed (installed: $::stub::board_store)"
                            }
                            if {![info exists ::stub::board_connectors($board)] || $connector ni $::stub::board_connectors($board)} {
                                ::stub::fail "set_property: board $board has no connector $connector"
                            }
                        }
                    }
                    ip_repo_paths {}
                    default { ::stub::unsupported "set_property: project property $k" }
                }
                dict set ::stub::project props $k $v
            }
        } elseif {$obj eq "sources_1"} {
            foreach {k v} $pairs {
                if {$k ne "top"} { ::stub::unsupported "set_property: fileset property $k" }
                dict set ::stub::project top $v
            }
            ::stub::save_project
        } else {
            ::stub::fail "set_property: unknown object '$obj'"
        }
    }
}

# Installed board parts matching glob patterns (all without one); -latest_file_version keeps the
# highest version per vendor:board:part. Matching nothing returns an empty list, as in Vivado.
proc get_board_parts {args} {
    set o [::stub::parse get_board_parts {-quiet -latest_file_version} $args]
    set patterns [dict get $o args]
    if {![llength $patterns]} { set patterns * }
    set found {}
    foreach part $::stub::board_store {
        foreach p $patterns {
            if {[string match $p $part] && $part ni $found} { lappend found $part }
        }
    }
    if {[dict exists $o -latest_file_version]} {
        set latest [dict create]
        foreach part [lsort -dictionary $found] {
            dict set latest [join [lrange [split $part :] 0 2] :] $part
        }
        set found [dict values $latest]
    }
    if {![llength $found] && ![dict exists $o -quiet]} { ::stub::warn "get_board_parts: no board part matches $patterns" }
    return $found
}

proc get_property {args} {
    set o [::stub::parse get_property {-quiet} $args]
    lassign [dict get $o args] name obj
    set obj [lindex $obj 0]
    set cell [::stub::strip $obj]
    if {[string index $obj 0] eq "/" && [dict exists $::stub::cells $cell]} {
        if {![string match CONFIG.* $name]} { ::stub::unsupported "get_property: cell property $name" }
        set key [string range $name 7 end]
        set cfg [dict get $::stub::cells $cell cfg]
        if {![dict exists $cfg $key]} { ::stub::fail "get_property: $cell has no CONFIG.$key" }
        return [dict get $cfg $key]
    }
    if {[dict size $::stub::project] && [dict exists [::stub::proj_get runs] $obj]} {
        set run [dict get [::stub::proj_get runs] $obj]
        switch -- $name {
            PROGRESS { return [dict get $run progress] }
            STATUS { return [dict get $run status] }
            DIRECTORY { return [file join [::stub::proj_get dir] [::stub::proj_get name].runs $obj] }
            STATS.WNS {
                if {![dict get $run done]} { ::stub::fail "get_property: $obj has no timing results (not run)" }
                return [expr {[info exists ::env(VITCOD_STUB_WNS)] ? $::env(VITCOD_STUB_WNS) : "0.250"}]
            }
            default { ::stub::unsupported "get_property: run property $name" }
        }
    }
    ::stub::fail "get_property: unknown object '$obj'"
}

# ---- block design -------------------------------------------------------------------------------------
proc create_bd_design {args} {
    ::stub::log create_bd_design $args
    set o [::stub::parse create_bd_design {} $args]
    ::stub::need_project create_bd_design
    set name [lindex [dict get $o args] 0]
    set file [file join [::stub::proj_get dir] [::stub::proj_get name].srcs sources_1 bd $name $name.bd]
    file mkdir [file dirname $file]
    set ::stub::bd [dict create name $name file $file validated 0 saved 0]
    dict lappend ::stub::project files $file
    ::stub::write_bd_file
    ::stub::save_project
    return $name
}

proc ::stub::write_bd_file {} {
    set fh [open [dict get $::stub::bd file] w]
    puts $fh [list stub_bd $::stub::bd]
    close $fh
}

proc create_bd_cell {args} {
    ::stub::log create_bd_cell $args
    set o [::stub::parse create_bd_cell {-type= -vlnv=} $args]
    ::stub::need_bd create_bd_cell
    if {![dict exists $o -type] || [dict get $o -type] ne "ip"} { ::stub::unsupported "create_bd_cell: only -type ip is modelled" }
    set name [lindex [dict get $o args] 0]
    if {$name eq "" || [dict exists $::stub::cells $name] || [dict exists $::stub::ports $name]} {
        ::stub::fail "create_bd_cell: cell name '$name' is empty or taken"
    }
    set vlnv [dict get $o -vlnv]
    if {[info exists ::stub::xilinx_catalog($vlnv)]} {
        set model $::stub::xilinx_catalog($vlnv)
        dict set ::stub::cells $name [dict create vlnv $vlnv model $model cfg $::stub::model::params($model) component {}]
    } elseif {[dict exists $::stub::user_catalog $vlnv]} {
        dict set ::stub::cells $name [dict create vlnv $vlnv model hls_component cfg {} \
            component [dict get $::stub::user_catalog $vlnv]]
    } else {
        set repos [expr {[dict exists [::stub::proj_get props] ip_repo_paths] ? [dict get [::stub::proj_get props] ip_repo_paths] : "(none)"}]
        ::stub::fail "create_bd_cell: IP $vlnv is not in the catalog (Xilinx IP modelled: [lsort [array names ::stub::xilinx_catalog]]; user IP found in ip_repo_paths $repos: [dict keys $::stub::user_catalog]). Did build_ip run and update_ip_catalog see it?"
    }
    return /$name
}

proc get_bd_cells {args} {
    set o [::stub::parse get_bd_cells {-quiet} $args]
    ::stub::need_bd get_bd_cells
    set patterns [::stub::flatten [dict get $o args]]
    if {![llength $patterns]} { return [lmap c [dict keys $::stub::cells] {string cat / $c}] }
    set out {}
    foreach p $patterns {
        foreach c [dict keys $::stub::cells] {
            if {[string match [::stub::strip $p] $c]} { lappend out /$c }
        }
    }
    if {![llength $out] && ![dict exists $o -quiet]} { ::stub::fail "get_bd_cells: no cell matches '$patterns'" }
    return $out
}

proc ::stub::get_pins {cmd want arglist} {
    set o [::stub::parse $cmd {-quiet -of_objects=} $arglist]
    ::stub::need_bd $cmd
    set out {}
    if {[dict exists $o -of_objects]} {
        foreach obj [::stub::flatten [dict get $o -of_objects]] {
            set cell [::stub::strip $obj]
            if {![dict exists $::stub::cells $cell]} { ::stub::fail "$cmd: -of_objects '$obj' is not a cell" }
            set items [expr {$want eq "intf" ? [::stub::cell_intfs $cell] : [::stub::cell_pins $cell]}]
            foreach it $items { lappend out /$cell/[dict get $it name] }
        }
        return $out
    }
    foreach p [::stub::flatten [dict get $o args]] {
        set parts [split [::stub::strip $p] /]
        if {[llength $parts] != 2} { ::stub::fail "$cmd: '$p' is not <cell>/<pin>" }
        lassign $parts cell pin
        if {![dict exists $::stub::cells $cell]} {
            if {[dict exists $o -quiet]} continue
            ::stub::fail "$cmd: no cell '$cell' (in '$p')"
        }
        set items [expr {$want eq "intf" ? [::stub::cell_intfs $cell] : [::stub::cell_pins $cell]}]
        set matched 0
        foreach it $items {
            if {[string match $pin [dict get $it name]]} { lappend out /$cell/[dict get $it name]; incr matched }
        }
        if {!$matched && ![dict exists $o -quiet]} {
            set what [expr {$want eq "intf" ? "interface pin" : "pin"}]
            ::stub::fail "$cmd: cell '$cell' ([dict get $::stub::cells $cell vlnv]) has no $what '$pin' in its current configuration; it has: [lmap it $items {dict get $it name}]"
        }
    }
    return $out
}
proc get_bd_pins {args} { return [::stub::get_pins get_bd_pins pin $args] }
proc get_bd_intf_pins {args} { return [::stub::get_pins get_bd_intf_pins intf $args] }

proc ::stub::get_ports {cmd kind arglist} {
    set o [::stub::parse $cmd {-quiet} $arglist]
    ::stub::need_bd $cmd
    set out {}
    foreach p [::stub::flatten [dict get $o args]] {
        foreach name [dict keys $::stub::ports] {
            if {[string match [::stub::strip $p] $name] && [dict get $::stub::ports $name kind] eq $kind} { lappend out /$name }
        }
    }
    if {![llength $out] && ![dict exists $o -quiet]} { ::stub::fail "$cmd: nothing matches '[dict get $o args]'" }
    return $out
}
proc get_bd_ports {args} { return [::stub::get_ports get_bd_ports pin $args] }
proc get_bd_intf_ports {args} { return [::stub::get_ports get_bd_intf_ports intf $args] }

# The board-preset automation rules of the two PS types; no other rule is modelled (make every AXI,
# clock and reset connection explicitly so the recorded design is complete).
proc apply_bd_automation {args} {
    ::stub::log apply_bd_automation $args
    set o [::stub::parse apply_bd_automation {-rule= -config=} $args]
    ::stub::need_bd apply_bd_automation
    set rule [dict get $o -rule]
    set config [dict get $o -config]
    set cells [::stub::flatten [dict get $o args]]
    if {[llength $cells] != 1} { ::stub::fail "apply_bd_automation: expected one target cell" }
    set cell [::stub::strip [lindex $cells 0]]
    if {![dict exists $::stub::cells $cell]} { ::stub::fail "apply_bd_automation: no cell '$cell'" }
    set model [dict get $::stub::cells $cell model]
    switch -- $rule {
        xilinx.com:bd_rule:processing_system7 {
            set allowed {make_external apply_board_preset Master Slave}
            if {$model ne "processing_system7"} { ::stub::fail "apply_bd_automation: $rule on a $model cell" }
        }
        xilinx.com:bd_rule:zynq_ultra_ps_e {
            set allowed {apply_board_preset}
            if {$model ne "zynq_ultra_ps_e"} { ::stub::fail "apply_bd_automation: $rule on a $model cell" }
        }
        default {
            ::stub::unsupported "apply_bd_automation -rule $rule: only the PS board-preset rules are modelled; connect explicitly"
        }
    }
    foreach {k v} $config {
        if {$k ni $allowed} { ::stub::unsupported "apply_bd_automation: -config key '$k' of $rule" }
    }
    if {[dict exists $config Master] && [dict get $config Master] ne "Disable" ||
        [dict exists $config Slave] && [dict get $config Slave] ne "Disable"} {
        ::stub::unsupported "apply_bd_automation: Master/Slave automation connects AXI ports implicitly; set them to Disable"
    }
    if {[dict exists $config apply_board_preset] && [dict get $config apply_board_preset] eq "1"} {
        if {![dict exists [::stub::proj_get props] board_part]} {
            ::stub::fail "apply_bd_automation: apply_board_preset needs the project's board_part"
        }
        dict set ::stub::cells $cell cfg [dict merge [dict get $::stub::cells $cell cfg] $::stub::model::preset($model)]
    }
    if {[dict exists $config make_external]} {
        foreach intf [split [dict get $config make_external] ,] {
            set intf [string trim $intf]
            set it [::stub::find_by_name [::stub::cell_intfs $cell] $intf]
            if {![dict size $it]} { ::stub::fail "apply_bd_automation: $cell has no interface $intf to make external" }
            dict set ::stub::ports $intf [dict create kind intf mode [dict get $it mode] type [dict get $it kind]]
            lappend ::stub::intf_nets [dict create name ${cell}_$intf a /$cell/$intf b /$intf]
        }
    }
}

proc ::stub::intf_net_of {ref} {
    foreach n $::stub::intf_nets {
        if {[dict get $n a] eq $ref || [dict get $n b] eq $ref} { return $n }
    }
    return {}
}

proc connect_bd_intf_net {args} {
    ::stub::log connect_bd_intf_net $args
    set o [::stub::parse connect_bd_intf_net {-intf_net=} $args]
    ::stub::need_bd connect_bd_intf_net
    set ends [::stub::flatten [dict get $o args]]
    if {[llength $ends] != 2} { ::stub::fail "connect_bd_intf_net: expected two interface objects, got '$ends'" }
    set info {}
    foreach e $ends {
        lappend info [::stub::resolve $e intf]
        set ref /[::stub::strip $e]
        if {[dict size [::stub::intf_net_of $ref]]} { ::stub::fail "connect_bd_intf_net: $ref is already connected" }
    }
    lassign $info a b
    lassign $a akind - - ainfo
    lassign $b bkind - - binfo
    set atype [expr {$akind eq "intf_pin" ? [dict get $ainfo kind] : [dict get $ainfo type]}]
    set btype [expr {$bkind eq "intf_pin" ? [dict get $binfo kind] : [dict get $binfo type]}]
    if {$atype ne $btype} { ::stub::fail "connect_bd_intf_net: cannot connect $atype [lindex $ends 0] to $btype [lindex $ends 1]" }
    if {$akind eq "intf_pin" && $bkind eq "intf_pin"} {
        if {[lsort [list [dict get $ainfo mode] [dict get $binfo mode]]] ne {master slave}} {
            ::stub::fail "connect_bd_intf_net: [lindex $ends 0] and [lindex $ends 1] must be one master and one slave"
        }
    }
    set a_ref /[::stub::strip [lindex $ends 0]]
    set b_ref /[::stub::strip [lindex $ends 1]]
    set name [expr {[dict exists $o -intf_net] ? [dict get $o -intf_net] : "[string map {/ _} [string trimleft $a_ref /]]"}]
    lappend ::stub::intf_nets [dict create name $name a $a_ref b $b_ref]
    return $name
}

proc ::stub::net_of {ref} {
    set i 0
    foreach n $::stub::nets {
        if {$ref in [dict get $n pins]} { return $i }
        incr i
    }
    return -1
}

proc connect_bd_net {args} {
    ::stub::log connect_bd_net $args
    set o [::stub::parse connect_bd_net {-net=} $args]
    ::stub::need_bd connect_bd_net
    set objs [::stub::flatten [dict get $o args]]
    if {[llength $objs] < 2} { ::stub::fail "connect_bd_net: needs at least two pins, got '$objs'" }
    set drivers {}
    set sinks {}
    foreach obj $objs {
        lassign [::stub::resolve $obj pin] kind cell name info
        set ref /[::stub::strip $obj]
        if {$kind eq "pin"} {
            set is_driver [expr {[dict get $info dir] eq "O"}]
            set type [dict get $info type]
            set pol [dict get $info pol]
        } else {
            set is_driver [expr {[dict get $info dir] eq "I"}]
            set type [dict get $info type]
            set pol ""
        }
        set entry [list $ref $type $pol]
        if {$is_driver} { lappend drivers $entry } else { lappend sinks $entry }
    }
    # A driver already on a net may gain sinks (Vivado extends the net).
    if {[llength $drivers] != 1} {
        ::stub::fail "connect_bd_net: a net needs exactly one driver, got [llength $drivers] ([lmap d $drivers {lindex $d 0}])"
    }
    lassign [lindex $drivers 0] dref dtype dpol
    foreach s $sinks {
        lassign $s sref stype spol
        if {[::stub::net_of $sref] >= 0} { ::stub::fail "connect_bd_net: $sref is already driven" }
        if {$dtype ne $stype} { ::stub::fail "connect_bd_net: $dtype driver $dref cannot drive $stype pin $sref" }
        if {$dtype eq "rst" && $spol ne "any" && $dpol ne "" && $spol ne "" && $spol ne $dpol} {
            ::stub::fail "connect_bd_net: active-$dpol reset $dref cannot drive active-$spol reset $sref"
        }
    }
    set idx [::stub::net_of $dref]
    set sink_refs [lmap s $sinks {lindex $s 0}]
    if {$idx >= 0} {
        set n [lindex $::stub::nets $idx]
        dict lappend n pins {*}$sink_refs
        lset ::stub::nets $idx $n
    } else {
        set name [expr {[dict exists $o -net] ? [dict get $o -net] : [string map {/ _} [string trimleft $dref /]]}]
        lappend ::stub::nets [dict create name $name driver $dref pins [concat [list $dref] $sink_refs]]
    }
}

# ---- addresses ----------------------------------------------------------------------------------------
# Slave segments a master interface reaches through interface nets and interconnects.
proc ::stub::reachable_segments {cell intf} {
    set out {}
    set todo [list /$cell/$intf]
    set seen {}
    while {[llength $todo]} {
        set ref [lindex $todo 0]
        set todo [lrange $todo 1 end]
        if {$ref in $seen} continue
        lappend seen $ref
        set net [::stub::intf_net_of $ref]
        if {![dict size $net]} continue
        set other [expr {[dict get $net a] eq $ref ? [dict get $net b] : [dict get $net a]}]
        set parts [split [string trimleft $other /] /]
        if {[llength $parts] != 2} continue
        lassign $parts ocell ointf
        set it [::stub::find_by_name [::stub::cell_intfs $ocell] $ointf]
        if {[dict get $it mode] ne "slave"} continue
        if {[dict exists $it route] && [dict get $it route]} {
            foreach m [::stub::cell_intfs $ocell] {
                if {[dict get $m mode] eq "master"} { lappend todo /$ocell/[dict get $m name] }
            }
        } elseif {[dict exists $it segs]} {
            foreach seg [dict get $it segs] { lappend out [list /$ocell/$ointf [lindex $seg 0] [lindex $seg 1] [lindex $seg 2]] }
        }
    }
    return $out
}

proc assign_bd_address {args} {
    ::stub::log assign_bd_address $args
    set o [::stub::parse assign_bd_address {} $args]
    ::stub::need_bd assign_bd_address
    if {[llength [dict get $o args]]} { ::stub::unsupported "assign_bd_address with explicit segments" }
    set ::stub::addresses {}
    set ::stub::excluded {}
    set assigned [dict create]
    set next [dict create]
    foreach cell [dict keys $::stub::cells] {
        foreach it [::stub::cell_intfs $cell] {
            if {[dict get $it mode] ne "master" || ![dict exists $it space]} continue
            lassign [dict get $it space] space width window
            foreach seg [::stub::reachable_segments $cell [dict get $it name]] {
                lassign $seg slave segname base range
                set segref $slave/$segname
                if {$base eq ""} {
                    if {[dict exists $assigned $segref]} {
                        set base [dict get $assigned $segref]
                    } else {
                        if {$window eq ""} { ::stub::fail "assign_bd_address: $cell/[dict get $it name] has no window for register segment $segref" }
                        set base [expr {[dict exists $next $window] ? [dict get $next $window] : $window}]
                        dict set next $window [expr {$base + $range}]
                        dict set assigned $segref $base
                    }
                }
                set entry [dict create space /$cell/$space master /$cell/[dict get $it name] segment $segref \
                    offset [format 0x%08X $base] range [format 0x%X $range]]
                if {$base + $range > (1 << $width)} {
                    lappend ::stub::excluded $entry
                } else {
                    lappend ::stub::addresses $entry
                }
            }
        }
    }
}

# ---- validation ---------------------------------------------------------------------------------------
proc ::stub::driven {ref} {
    set idx [::stub::net_of $ref]
    if {$idx < 0} { return 0 }
    return [expr {[dict get [lindex $::stub::nets $idx] driver] ne $ref}]
}

proc validate_bd_design {args} {
    ::stub::log validate_bd_design $args
    ::stub::parse validate_bd_design {-force} $args
    ::stub::need_bd validate_bd_design
    set errors {}
    foreach cell [dict keys $::stub::cells] {
        foreach p [::stub::cell_pins $cell] {
            if {[dict get $p dir] eq "I" && [dict get $p type] in {clk rst} && ![dict get $p optional] && ![::stub::driven /$cell/[dict get $p name]]} {
                lappend errors "input [dict get $p type] pin /$cell/[dict get $p name] is not driven"
            }
        }
        foreach it [::stub::cell_intfs $cell] {
            set ref /$cell/[dict get $it name]
            set net [::stub::intf_net_of $ref]
            if {[dict exists $it external] && [dict get $it external] && ![dict size $net]} {
                lappend errors "interface $ref must be made external"
            }
            if {[dict get $it mode] eq "master" && [dict get $it kind] in {aximm axis} && ![dict size $net]} {
                lappend errors "master interface $ref is not connected"
            }
            if {[dict get $it kind] eq "axis" && [dict size $net]} {
                set other [expr {[dict get $net a] eq $ref ? [dict get $net b] : [dict get $net a]}]
                if {[llength [split [string trimleft $other /] /]] != 2} continue
                lassign [split [string trimleft $other /] /] ocell ointf
                set oit [::stub::find_by_name [::stub::cell_intfs $ocell] $ointf]
                if {[dict get $oit bytes] != [dict get $it bytes]} {
                    lappend errors "AXI4-Stream $ref has TDATA [dict get $it bytes] bytes but $other has [dict get $oit bytes]"
                }
            }
        }
        set model [dict get $::stub::cells $cell model]
        if {[info commands ::stub::model::validate_$model] ne ""} {
            lappend errors {*}[::stub::model::validate_$model $cell [dict get $::stub::cells $cell cfg]]
        }
    }
    foreach n $::stub::nets {
        set types [lsort -unique [lmap r [dict get $n pins] {::stub::pin_type $r}]]
        if {[llength $types] > 1} { lappend errors "net [dict get $n name] mixes pin types $types" }
    }
    # every reachable slave segment must be addressed
    foreach cell [dict keys $::stub::cells] {
        foreach it [::stub::cell_intfs $cell] {
            if {[dict get $it mode] ne "master" || ![dict exists $it space]} continue
            foreach seg [::stub::reachable_segments $cell [dict get $it name]] {
                set segref [lindex $seg 0]/[lindex $seg 1]
                set hit 0
                foreach a [concat $::stub::addresses $::stub::excluded] {
                    if {[dict get $a master] eq "/$cell/[dict get $it name]" && [dict get $a segment] eq $segref} { set hit 1 }
                }
                if {!$hit} { lappend errors "slave segment $segref is not assigned in /$cell/[lindex [dict get $it space] 0]" }
            }
        }
    }
    if {[llength $errors]} {
        ::stub::fail "validate_bd_design failed:\n  [join $errors "\n  "]"
    }
    dict set ::stub::bd validated 1
}

proc ::stub::pin_type {ref} {
    set parts [split [string trimleft $ref /] /]
    if {[llength $parts] == 1} { return [dict get $::stub::ports [lindex $parts 0] type] }
    return [dict get [::stub::find_by_name [::stub::cell_pins [lindex $parts 0]] [lindex $parts 1]] type]
}

proc save_bd_design {args} {
    ::stub::log save_bd_design $args
    ::stub::parse save_bd_design {} $args
    ::stub::need_bd save_bd_design
    dict set ::stub::bd saved 1
    ::stub::write_bd_file
}

# ---- files, wrapper, runs -------------------------------------------------------------------------------
proc get_files {args} {
    set o [::stub::parse get_files {-quiet} $args]
    ::stub::need_project get_files
    set out {}
    foreach p [::stub::flatten [dict get $o args]] {
        foreach f [::stub::proj_get files] {
            if {[string match $p $f] || [string match $p [file tail $f]]} { lappend out $f }
        }
    }
    if {![llength $out] && ![dict exists $o -quiet]} { ::stub::fail "get_files: no project file matches '[dict get $o args]'" }
    return $out
}

proc make_wrapper {args} {
    ::stub::log make_wrapper $args
    set o [::stub::parse make_wrapper {-files= -top} $args]
    ::stub::need_project make_wrapper
    if {![dict exists $o -top]} { ::stub::unsupported "make_wrapper without -top" }
    set bd_file [lindex [dict get $o -files] 0]
    if {[file extension $bd_file] ne ".bd" || $bd_file ni [::stub::proj_get files]} {
        ::stub::fail "make_wrapper: -files must name a block design of the project, got '$bd_file'"
    }
    set fh [open $bd_file]
    set bd [lindex [read $fh] 1]
    close $fh
    if {![dict get $bd saved] || ![dict get $bd validated]} {
        ::stub::fail "make_wrapper: block design [dict get $bd name] was not validated and saved"
    }
    set name [dict get $bd name]
    set wrapper [file join [::stub::proj_get dir] [::stub::proj_get name].gen sources_1 bd $name hdl ${name}_wrapper.v]
    file mkdir [file dirname $wrapper]
    set fh [open $wrapper w]
    puts $fh "// stub wrapper of $name\nmodule ${name}_wrapper();\nendmodule"
    close $fh
    dict set ::stub::project wrapper $wrapper
    dict set ::stub::project bd_name $name
    return $wrapper
}

proc add_files {args} {
    ::stub::log add_files $args
    set o [::stub::parse add_files {-norecurse -fileset=} $args]
    ::stub::need_project add_files
    set files [::stub::flatten [dict get $o args]]
    if {![llength $files]} { ::stub::fail "add_files: no file given" }
    foreach f $files {
        if {![file isfile $f]} { ::stub::fail "add_files: '$f' does not exist" }
        dict lappend ::stub::project files [file normalize $f]
    }
    ::stub::save_project
}

proc update_compile_order {args} {
    ::stub::log update_compile_order $args
    ::stub::parse update_compile_order {-fileset=} $args
}

proc get_runs {args} {
    set o [::stub::parse get_runs {-quiet} $args]
    ::stub::need_project get_runs
    set out {}
    foreach p [::stub::flatten [dict get $o args]] {
        if {[dict exists [::stub::proj_get runs] $p]} { lappend out $p }
    }
    if {![llength $out] && ![dict exists $o -quiet]} { ::stub::fail "get_runs: no run '[dict get $o args]'" }
    return $out
}

proc ::stub::run_set {run key value} {
    set runs [::stub::proj_get runs]
    dict set runs $run $key $value
    dict set ::stub::project runs $runs
}

proc reset_run {args} {
    ::stub::log reset_run $args
    set o [::stub::parse reset_run {} $args]
    foreach run [get_runs {*}[dict get $o args]] {
        foreach {k v} {launched 0 done 0 progress "0%" status "Not started"} { ::stub::run_set $run $k $v }
    }
}

proc launch_runs {args} {
    ::stub::log launch_runs $args
    set o [::stub::parse launch_runs {-jobs= -to_step=} $args]
    ::stub::need_project launch_runs
    foreach run [get_runs {*}[dict get $o args]] {
        set top [::stub::proj_get top]
        if {$top eq "" || ![dict exists $::stub::project wrapper] || [file rootname [file tail [dict get $::stub::project wrapper]]] ne $top
            || [dict get $::stub::project wrapper] ni [::stub::proj_get files]} {
            ::stub::fail "launch_runs: the top '$top' is not the added block-design wrapper"
        }
        if {[dict exists $o -to_step]} {
            if {$run ne "impl_1" || [dict get $o -to_step] ni {opt_design place_design route_design write_bitstream}} {
                ::stub::fail "launch_runs: -to_step [dict get $o -to_step] is not valid for $run"
            }
            ::stub::run_set $run to_step [dict get $o -to_step]
        }
        if {$run eq "impl_1" && ![dict get [::stub::proj_get runs] synth_1 done]} {
            ::stub::fail "launch_runs: impl_1 before synth_1 completed (wait_on_run synth_1 first)"
        }
        ::stub::run_set $run launched 1
        ::stub::run_set $run status "Running"
    }
}

proc wait_on_run {args} {
    ::stub::log wait_on_run $args
    set o [::stub::parse wait_on_run {-timeout=} $args]
    set run [get_runs {*}[dict get $o args]]
    if {![dict get [::stub::proj_get runs] $run launched]} { ::stub::fail "wait_on_run: $run was not launched" }
    if {[info exists ::env(VITCOD_STUB_FAIL_RUN)] && $::env(VITCOD_STUB_FAIL_RUN) eq $run} {
        ::stub::run_set $run progress "0%"
        ::stub::run_set $run status "[expr {$run eq {synth_1} ? {synth_design} : {route_design}}] ERROR"
        return
    }
    set dir [file join [::stub::proj_get dir] [::stub::proj_get name].runs $run]
    file mkdir $dir
    set name [dict get $::stub::project bd_name]
    if {$run eq "synth_1"} {
        # generating the block design writes its hardware handoff
        set hwh [file join [::stub::proj_get dir] [::stub::proj_get name].gen sources_1 bd $name hw_handoff $name.hwh]
        file mkdir [file dirname $hwh]
        set fh [open $hwh w]
        puts $fh "<!-- stub hardware handoff of $name -->"
        close $fh
        ::stub::run_set $run status "synth_design Complete!"
    } else {
        set step [dict get [::stub::proj_get runs] $run to_step]
        if {$step eq "write_bitstream"} {
            set fh [open [file join $dir [::stub::proj_get top].bit] w]
            puts $fh "stub bitstream"
            close $fh
        }
        ::stub::run_set $run status "[expr {$step eq {} ? {route_design} : $step}] Complete!"
    }
    ::stub::run_set $run progress "100%"
    ::stub::run_set $run done 1
    ::stub::save_project
}

# ---- record ---------------------------------------------------------------------------------------------
proc ::stub::tool_record {} {
    set pairs {}
    if {[dict size $::stub::project]} {
        set p $::stub::project
        set runs {}
        dict for {run r} [dict get $p runs] { lappend runs $run [::stub::json::strdict $r] }
        lappend pairs project [::stub::json::obj [list \
            name [::stub::json::str [dict get $p name]] \
            dir [::stub::json::str [dict get $p dir]] \
            part [::stub::json::str [dict get $p part]] \
            props [::stub::json::strdict [dict get $p props]] \
            files [::stub::json::strs [dict get $p files]] \
            top [::stub::json::str [dict get $p top]] \
            runs [::stub::json::obj $runs]]]
    }
    lappend pairs user_catalog [::stub::json::strs [dict keys $::stub::user_catalog]]
    if {[dict size $::stub::bd]} {
        set cells {}
        dict for {name c} $::stub::cells {
            set pins {}
            foreach pin [::stub::cell_pins $name] { lappend pins [::stub::json::strdict $pin] }
            set intfs {}
            foreach it [::stub::cell_intfs $name] {
                set d [dict create]
                foreach k {name mode kind clock bytes} { dict set d $k [dict get $it $k] }
                if {[dict exists $it route]} { dict set d route [dict get $it route] }
                if {[dict exists $it space]} { dict set d space [lindex [dict get $it space] 0] }
                if {[dict exists $it segs]} { dict set d segs [join [lmap s [dict get $it segs] {lindex $s 0}] ,] }
                lappend intfs [::stub::json::strdict $d]
            }
            set extra {}
            if {[dict get $c model] eq "hls_component"} {
                set regs {}
                foreach r [dict get $c component registers] { lappend regs [::stub::json::strdict $r] }
                set extra [list registers [::stub::json::arr $regs]]
            }
            lappend cells $name [::stub::json::obj [concat [list \
                vlnv [::stub::json::str [dict get $c vlnv]] \
                model [::stub::json::str [dict get $c model]] \
                config [::stub::json::strdict [dict get $c cfg]] \
                pins [::stub::json::arr $pins] \
                intf_pins [::stub::json::arr $intfs]] $extra]]
        }
        set ports {}
        dict for {name p} $::stub::ports { lappend ports $name [::stub::json::strdict $p] }
        set inets {}
        foreach n $::stub::intf_nets { lappend inets [::stub::json::strdict $n] }
        set pnets {}
        foreach n $::stub::nets {
            lappend pnets [::stub::json::obj [list name [::stub::json::str [dict get $n name]] \
                driver [::stub::json::str [dict get $n driver]] pins [::stub::json::strs [dict get $n pins]]]]
        }
        set addrs {}
        foreach a $::stub::addresses { lappend addrs [::stub::json::strdict $a] }
        set excl {}
        foreach a $::stub::excluded { lappend excl [::stub::json::strdict $a] }
        lappend pairs bd [::stub::json::obj [list \
            name [::stub::json::str [dict get $::stub::bd name]] \
            validated [::stub::json::bool [dict get $::stub::bd validated]] \
            saved [::stub::json::bool [dict get $::stub::bd saved]] \
            cells [::stub::json::obj $cells] \
            ports [::stub::json::obj $ports] \
            intf_nets [::stub::json::arr $inets] \
            nets [::stub::json::arr $pnets] \
            addresses [::stub::json::arr $addrs] \
            excluded [::stub::json::arr $excl]]]
    }
    return $pairs
}
