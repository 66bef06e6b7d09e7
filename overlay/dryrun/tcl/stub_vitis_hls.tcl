# Vitis HLS commands, as stubs that check their use and record what the script asks for.
# Loaded by run_stub.tcl after stub_core.tcl. Modelled: open_project, set_top, add_files,
# open_solution, set_part, create_clock, csynth_design, export_design, close_project.
#
# csynth_design does the part of synthesis that decides the IP's outside: it finds the top
# function, reads its INTERFACE pragmas and signature, and derives the RTL ports the way Vitis HLS
# names them (AXI4-Stream per axis argument, s_axi_<bundle> per AXI4-Lite bundle, ap_clk,
# ap_rst_n, interrupt). export_design writes that interface as component.stub.tcl into
# <project>/<solution>/impl/ip, where the Vivado stub's update_ip_catalog finds it - so the block
# design is checked against the C++ pragmas, not against a copy of the port names.

namespace eval ::stub {
    variable hls [dict create project "" top "" files {} solution "" flow_target "" part "" \
        clock_period "" clock_name "" csynth 0 interface {} export {}]
}

# HDL keywords Vitis HLS suffixes with _r when they name a port.
set ::stub::hdl_reserved {in out inout input output reg wire begin end signal process port type entity
    module case if else for while function task assign always buffer range}

proc ::stub::hls_get {key} { return [dict get $::stub::hls $key] }
proc ::stub::hls_set {key value} { dict set ::stub::hls $key $value }
proc ::stub::need_project {cmd} {
    if {[::stub::hls_get project] eq ""} { ::stub::fail "$cmd: no project is open (open_project first)" }
}
proc ::stub::need_solution {cmd} {
    ::stub::need_project $cmd
    if {[::stub::hls_get solution] eq ""} { ::stub::fail "$cmd: no solution is open (open_solution first)" }
}

proc open_project {args} {
    ::stub::log open_project $args
    set o [::stub::parse open_project {-reset} $args]
    set pos [dict get $o args]
    if {[llength $pos] != 1} { ::stub::fail "open_project: expected one project name, got '$pos'" }
    set dir [file normalize [lindex $pos 0]]
    if {[dict exists $o -reset]} { file delete -force $dir }
    file mkdir $dir
    ::stub::hls_set project [lindex $pos 0]
    ::stub::hls_set project_dir $dir
    return $dir
}

proc set_top {args} {
    ::stub::log set_top $args
    ::stub::need_project set_top
    set o [::stub::parse set_top {} $args]
    if {[llength [dict get $o args]] != 1} { ::stub::fail "set_top: expected one function name" }
    ::stub::hls_set top [lindex [dict get $o args] 0]
}

proc add_files {args} {
    ::stub::log add_files $args
    ::stub::need_project add_files
    set o [::stub::parse add_files {-tb -cflags= -csimflags=} $args]
    set files [::stub::flatten [dict get $o args]]
    if {![llength $files]} { ::stub::fail "add_files: no file given" }
    foreach f $files {
        if {![file isfile $f]} { ::stub::fail "add_files: file '$f' does not exist" }
        set cflags [expr {[dict exists $o -cflags] ? [dict get $o -cflags] : ""}]
        dict lappend ::stub::hls files [dict create path [file normalize $f] cflags $cflags \
            tb [dict exists $o -tb]]
    }
}

proc open_solution {args} {
    ::stub::log open_solution $args
    ::stub::need_project open_solution
    set o [::stub::parse open_solution {-reset -flow_target=} $args]
    if {[llength [dict get $o args]] != 1} { ::stub::fail "open_solution: expected one solution name" }
    set flow [expr {[dict exists $o -flow_target] ? [dict get $o -flow_target] : "vivado"}]
    if {$flow ni {vivado vitis}} { ::stub::fail "open_solution: -flow_target must be vivado or vitis, got '$flow'" }
    ::stub::hls_set solution [lindex [dict get $o args] 0]
    ::stub::hls_set flow_target $flow
}

proc set_part {args} {
    ::stub::log set_part $args
    ::stub::need_solution set_part
    set o [::stub::parse set_part {} $args]
    set part [lindex [dict get $o args] 0]
    if {![regexp {^x[a-z0-9]+(-[a-z0-9]+)*-[0-9][0-9A-Za-z-]*$} $part]} { ::stub::fail "set_part: '$part' is not a part name" }
    ::stub::hls_set part $part
}

proc create_clock {args} {
    ::stub::log create_clock $args
    ::stub::need_solution create_clock
    set o [::stub::parse create_clock {-period= -name=} $args]
    if {![dict exists $o -period] || ![string is double -strict [dict get $o -period]] || [dict get $o -period] <= 0} {
        ::stub::fail "create_clock: -period must be a positive number of ns"
    }
    ::stub::hls_set clock_period [dict get $o -period]
    ::stub::hls_set clock_name [expr {[dict exists $o -name] ? [dict get $o -name] : "default"}]
}

# ---- csynth: the IP's interface from the top function ---------------------------------------------
# Text of a source file and of the quoted includes it pulls in (searched in its folder and the -I
# folders of its cflags), each file once.
proc ::stub::source_texts {path cflags} {
    set dirs [list [file dirname $path]]
    foreach flag $cflags {
        if {[string match -I* $flag]} { lappend dirs [string range $flag 2 end] }
    }
    set todo [list $path]
    set seen {}
    set texts {}
    while {[llength $todo]} {
        set f [lindex $todo 0]
        set todo [lrange $todo 1 end]
        if {$f in $seen} continue
        lappend seen $f
        set fh [open $f]
        set text [read $fh]
        close $fh
        lappend texts $text
        foreach {- inc} [regexp -all -inline {#include\s+"([^"]+)"} $text] {
            foreach d $dirs {
                set candidate [file normalize [file join $d $inc]]
                if {[file isfile $candidate]} { lappend todo $candidate; break }
            }
        }
    }
    return $texts
}

proc ::stub::split_params {text} {
    set params {}
    set depth 0
    set cur ""
    foreach ch [split $text ""] {
        if {$ch eq "<" || $ch eq "("} { incr depth }
        if {$ch eq ">" || $ch eq ")"} { incr depth -1 }
        if {$ch eq "," && $depth == 0} {
            lappend params [string trim $cur]
            set cur ""
        } else {
            append cur $ch
        }
    }
    if {[string trim $cur] ne ""} { lappend params [string trim $cur] }
    return $params
}

proc ::stub::analyze_top {} {
    set top [::stub::hls_get top]
    set found {}
    foreach f [::stub::hls_get files] {
        if {[dict get $f tb]} continue
        set fh [open [dict get $f path]]
        set text [read $fh]
        close $fh
        if {[regexp -indices "void\\s+${top}\\s*\\((\[^)\]*)\\)\\s*\\\{" $text whole sig]} {
            lappend found [list $f $text $whole $sig]
        }
    }
    if {[llength $found] != 1} {
        ::stub::fail "csynth_design: top function '$top' must be defined in exactly one design file, found [llength $found]"
    }
    lassign [lindex $found 0] file text whole sig
    # function body: from the opening brace to its match
    set start [lindex $whole 1]
    set depth 0
    for {set i $start} {$i < [string length $text]} {incr i} {
        set ch [string index $text $i]
        if {$ch eq "\{"} { incr depth }
        if {$ch eq "\}"} { incr depth -1; if {$depth == 0} break }
    }
    set body [string range $text $start $i]
    set texts [::stub::source_texts [dict get $file path] [dict get $file cflags]]
    set alltext [join $texts "\n"]

    # arguments: name, stream?, by reference?
    set args_info {}
    foreach p [::stub::split_params [string range $text {*}$sig]] {
        if {![regexp {([A-Za-z_]\w*)\s*(\[[^\]]*\])?\s*$} $p - name]} {
            ::stub::fail "csynth_design: cannot read argument '$p' of $top"
        }
        dict set args_info $name [dict create stream [string match *hls::stream* $p] \
            ref [expr {[string first & $p] >= 0}] decl $p]
    }

    # INTERFACE pragmas
    set pragmas {}
    foreach line [split $body \n] {
        if {![regexp {^\s*#pragma\s+HLS\s+INTERFACE\s+(.*)$} $line - rest]} continue
        set kv [dict create]
        foreach tok [regexp -all -inline {\S+} $rest] {
            if {[regexp {^([A-Za-z_]+)=(.*)$} $tok - k v]} {
                dict set kv [string tolower $k] $v
            } elseif {![dict exists $kv mode]} {
                dict set kv mode $tok
            } else {
                ::stub::unsupported "csynth_design: INTERFACE pragma option '$tok' in: $line"
            }
        }
        if {![dict exists $kv port] || ![dict exists $kv mode]} {
            ::stub::fail "csynth_design: INTERFACE pragma without mode/port: $line"
        }
        lappend pragmas $kv
    }

    set streams {}
    set bundles {}
    set registers {}
    set block ""
    set block_bundle ""
    foreach kv $pragmas {
        set port [dict get $kv port]
        set mode [dict get $kv mode]
        if {$port eq "return"} {
            if {$mode in {ap_ctrl_hs ap_ctrl_chain ap_ctrl_none}} { set block $mode; continue }
            if {$mode eq "s_axilite"} { set block_bundle [dict get $kv bundle]; continue }
            ::stub::unsupported "csynth_design: INTERFACE mode=$mode port=return"
        }
        if {![dict exists $args_info $port]} {
            ::stub::fail "csynth_design: INTERFACE pragma names port '$port', which is not an argument of $top"
        }
        set arg [dict get $args_info $port]
        switch -- $mode {
            axis {
                if {![dict get $arg stream]} { ::stub::fail "csynth_design: axis port '$port' is not an hls::stream" }
                set reads [regexp -all "\\m${port}\\s*\\.\\s*read\\s*\\(" $alltext]
                set writes [regexp -all "\\m${port}\\s*\\.\\s*write\\s*\\(" $alltext]
                if {($reads > 0) == ($writes > 0)} {
                    ::stub::fail "csynth_design: cannot tell the direction of stream '$port' (reads $reads, writes $writes)"
                }
                set rtl [expr {$port in $::stub::hdl_reserved ? "${port}_r" : $port}]
                dict set streams $port [dict create rtl $rtl mode [expr {$reads ? "slave" : "master"}] \
                    bytes [expr {[::stub::axis_tdata_width $alltext $port] / 8}]]
            }
            s_axilite {
                if {[dict get $arg stream]} { ::stub::fail "csynth_design: stream '$port' cannot be s_axilite" }
                set bundle [expr {[dict exists $kv bundle] ? [dict get $kv bundle] : "control"}]
                dict set bundles $bundle 1
                if {![dict exists $kv offset]} { ::stub::fail "csynth_design: s_axilite port '$port' has no pinned offset" }
                lappend registers [dict create name $port bundle $bundle offset [format 0x%02x [dict get $kv offset]] \
                    access [expr {[dict get $arg ref] ? "ro" : "rw"}]]
            }
            default { ::stub::unsupported "csynth_design: INTERFACE mode=$mode (port $port)" }
        }
    }
    foreach name [dict keys $args_info] {
        if {![dict exists $streams $name] && [lsearch -exact [lmap r $registers {dict get $r name}] $name] < 0} {
            ::stub::fail "csynth_design: argument '$name' of $top has no INTERFACE pragma"
        }
    }
    if {$block ne "ap_ctrl_hs" || $block_bundle eq ""} {
        ::stub::fail "csynth_design: expected ap_ctrl_hs block control mapped to an s_axilite bundle (got '$block', bundle '$block_bundle')"
    }
    # register offsets: 4-byte aligned, past the control words, and an output's ap_vld word (+4)
    # free of other registers
    set used {}
    foreach r $registers {
        set off [expr {[dict get $r offset]}]
        if {$off % 4 || $off < 0x10} { ::stub::fail "csynth_design: register [dict get $r name] offset [dict get $r offset] is not valid" }
        set words [list $off]
        if {[dict get $r access] eq "ro"} { lappend words [expr {$off + 4}] }
        foreach w $words {
            if {$w in $used} { ::stub::fail "csynth_design: register [dict get $r name] overlaps another at [format 0x%02x $w]" }
            lappend used $w
        }
    }
    return [dict create top $top streams $streams bundles [dict keys $bundles] registers $registers \
        block $block block_bundle $block_bundle]
}

# TDATA bits of the ap_axiu the stream carries: `typedef ap_axiu<N or CONST, ...> name;`.
proc ::stub::axis_tdata_width {text port} {
    if {![regexp {typedef\s+ap_axiu\s*<\s*([A-Za-z_0-9]+)\s*,} $text - w]} {
        ::stub::fail "csynth_design: cannot find the ap_axiu type of stream '$port'"
    }
    if {![string is integer -strict $w]} {
        if {![regexp "\\m${w}\\s*=\\s*(\\d+)\\s*;" $text - w]} {
            ::stub::fail "csynth_design: cannot resolve the TDATA width of stream '$port'"
        }
    }
    return $w
}

proc csynth_design {args} {
    ::stub::log csynth_design $args
    ::stub::parse csynth_design {} $args
    ::stub::need_solution csynth_design
    foreach key {top part clock_period} {
        if {[::stub::hls_get $key] eq ""} { ::stub::fail "csynth_design: $key is not set" }
    }
    ::stub::hls_set interface [::stub::analyze_top]
    # The resource report the fit check reads; the stub has no estimate, so all zero.
    set report [file join [::stub::hls_get project_dir] [::stub::hls_get solution] syn report csynth.xml]
    file mkdir [file dirname $report]
    set fh [open $report w]
    puts $fh "<?xml version=\"1.0\"?>\n<!-- written by the overlay stub: no real estimate -->\n<profile><AreaEstimates><Resources>"
    puts $fh "<BRAM_18K>0</BRAM_18K><DSP>0</DSP><FF>0</FF><LUT>0</LUT><URAM>0</URAM>"
    puts $fh "</Resources></AreaEstimates></profile>"
    close $fh
    ::stub::hls_set csynth 1
}

proc export_design {args} {
    ::stub::log export_design $args
    set o [::stub::parse export_design {-format= -vendor= -library= -ipname= -version= -description= -display_name= -rtl=} $args]
    ::stub::need_solution export_design
    if {![::stub::hls_get csynth]} { ::stub::fail "export_design: run csynth_design first" }
    if {![dict exists $o -format] || [dict get $o -format] ne "ip_catalog"} {
        ::stub::fail "export_design: the stub models -format ip_catalog only"
    }
    set defaults [dict create -vendor xilinx.com -library hls -ipname [::stub::hls_get top] -version 1.0]
    set id {}
    foreach key {-vendor -library -ipname -version} {
        set v [expr {[dict exists $o $key] ? [dict get $o $key] : [dict get $defaults $key]}]
        dict set id [string range $key 1 end] $v
    }
    if {![regexp {^\d+\.\d+$} [dict get $id version]]} {
        ::stub::fail "export_design: -version must be <major>.<minor>, got '[dict get $id version]'"
    }
    foreach key {vendor library ipname} {
        if {![regexp {^[A-Za-z][A-Za-z0-9_.-]*$} [dict get $id $key]]} {
            ::stub::fail "export_design: -$key '[dict get $id $key]' is not a valid VLNV field"
        }
    }
    set vlnv [join [list [dict get $id vendor] [dict get $id library] [dict get $id ipname] [dict get $id version]] :]
    set ip_dir [file join [::stub::hls_get project_dir] [::stub::hls_get solution] impl ip]
    file mkdir $ip_dir
    # The exported interface, in the form the Vivado stub's catalog reads.
    set iface [::stub::hls_get interface]
    set pins [list [dict create name ap_clk dir I type clk pol "" optional 0] \
        [dict create name ap_rst_n dir I type rst pol low optional 0] \
        [dict create name interrupt dir O type intr pol "" optional 0]]
    set intfs {}
    foreach bundle [dict get $iface bundles] {
        lappend intfs [dict create name s_axi_$bundle mode slave kind aximm clock ap_clk bytes 4 \
            segs [list [list Reg "" 0x10000]]]
    }
    dict for {port s} [dict get $iface streams] {
        lappend intfs [dict create name [dict get $s rtl] mode [dict get $s mode] kind axis clock ap_clk \
            bytes [dict get $s bytes]]
    }
    set component [dict create vlnv $vlnv top [dict get $iface top] pins $pins intfs $intfs \
        registers [dict get $iface registers]]
    set fh [open [file join $ip_dir component.stub.tcl] w]
    puts $fh $component
    close $fh
    ::stub::hls_set export [dict create vlnv $vlnv {*}$id format ip_catalog dir $ip_dir \
        display_name [expr {[dict exists $o -display_name] ? [dict get $o -display_name] : ""}]]
    return $ip_dir
}

proc close_project {args} {
    ::stub::log close_project $args
    ::stub::parse close_project {} $args
    ::stub::need_project close_project
    ::stub::hls_set closed 1
}

proc ::stub::tool_record {} {
    set h $::stub::hls
    set files {}
    foreach f [dict get $h files] {
        lappend files [::stub::json::obj [list path [::stub::json::str [dict get $f path]] \
            cflags [::stub::json::str [dict get $f cflags]] tb [::stub::json::bool [dict get $f tb]]]]
    }
    set iface_json null
    if {[dict size [dict get $h interface]]} {
        set iface [dict get $h interface]
        set streams {}
        dict for {port s} [dict get $iface streams] {
            lappend streams $port [::stub::json::strdict [dict merge $s [dict create port $port]]]
        }
        set regs {}
        foreach r [dict get $iface registers] { lappend regs [::stub::json::strdict $r] }
        set iface_json [::stub::json::obj [list \
            top [::stub::json::str [dict get $iface top]] \
            block [::stub::json::str [dict get $iface block]] \
            block_bundle [::stub::json::str [dict get $iface block_bundle]] \
            streams [::stub::json::obj $streams] \
            registers [::stub::json::arr $regs]]]
    }
    set export_json null
    if {[dict size [dict get $h export]]} { set export_json [::stub::json::strdict [dict get $h export]] }
    return [list hls [::stub::json::obj [list \
        project [::stub::json::str [dict get $h project]] \
        top [::stub::json::str [dict get $h top]] \
        solution [::stub::json::str [dict get $h solution]] \
        flow_target [::stub::json::str [dict get $h flow_target]] \
        part [::stub::json::str [dict get $h part]] \
        clock_period [::stub::json::str [dict get $h clock_period]] \
        files [::stub::json::arr $files] \
        csynth [::stub::json::bool [dict get $h csynth]] \
        interface $iface_json \
        export $export_json]]]
}
