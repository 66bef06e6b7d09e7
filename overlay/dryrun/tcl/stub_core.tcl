# Core of the Vivado / Vitis HLS stub layer: call log, strict option parsing, loud failure on
# unknown commands, and the JSON record written on exit. Loaded by run_stub.tcl before the
# tool-specific command set (stub_vivado.tcl or stub_vitis_hls.tcl).
#
# Two kinds of failure, on purpose:
#   ::stub::unsupported  - the script used a command or option the stub does not model: print the
#                          command and exit 3 at once (no record), so a script can never pass the
#                          stub check by calling something nobody looked at;
#   ::stub::fail         - a modelled command was misused (unknown pin, bad property value, wrong
#                          order): a Tcl error, as the real tool raises, which ends the run with exit 1.

namespace eval ::stub {
    variable tool ""
    variable record_path ""
    variable calls {}
    variable warnings {}
    variable finished 0
}

rename exit ::stub::real_exit

proc ::stub::init {tool record_path} {
    set ::stub::tool $tool
    set ::stub::record_path [file normalize $record_path]
    file delete -force $::stub::record_path
}

proc ::stub::log {cmd arglist} {
    lappend ::stub::calls [linsert $arglist 0 $cmd]
}

proc ::stub::warn {msg} {
    lappend ::stub::warnings $msg
    puts "STUB WARNING: $msg"
}

proc ::stub::fail {msg} {
    error "STUB ERROR: $msg"
}

proc ::stub::unsupported {msg} {
    puts stderr "STUB: UNSUPPORTED: $msg"
    puts stderr "STUB: the $::stub::tool stub does not model this; model it in overlay/dryrun/tcl/ or change the script."
    flush stderr
    ::stub::real_exit 3
}

# Tcl calls `unknown` for any command that does not exist. Let Tcl's own auto-loader resolve its
# library commands first; anything else is a tool command the stub does not model.
rename unknown ::stub::tcl_unknown
proc unknown {args} {
    set name [lindex $args 0]
    if {[auto_load $name [uplevel 1 {namespace current}]]} {
        return [uplevel 1 $args]
    }
    ::stub::unsupported "unknown command '$name' (called as: [string range $args 0 200])"
}

# The script's own `exit` writes the record (on success) and ends the run.
proc exit {{code 0}} {
    ::stub::finish $code
}

proc ::stub::finish {code} {
    if {$code == 0 && !$::stub::finished} {
        set ::stub::finished 1
        set f [open $::stub::record_path.partial w]
        puts $f [::stub::record_json]
        close $f
        file rename -force $::stub::record_path.partial $::stub::record_path
    }
    ::stub::real_exit $code
}

# Strict option parser. spec: options as "-flag" or "-option=" (takes a value).
# Returns a dict of the given options (flags -> 1) plus key `args` with the positional arguments.
proc ::stub::parse {cmd spec arglist} {
    set flags {}
    set valued {}
    foreach s $spec {
        if {[string index $s end] eq "="} {
            lappend valued [string range $s 0 end-1]
        } else {
            lappend flags $s
        }
    }
    set opts [dict create]
    set positional {}
    for {set i 0} {$i < [llength $arglist]} {incr i} {
        set a [lindex $arglist $i]
        if {[string match -* $a] && ![string is double -strict $a]} {
            if {$a in $flags} {
                dict set opts $a 1
            } elseif {$a in $valued} {
                incr i
                if {$i >= [llength $arglist]} { ::stub::fail "$cmd: option $a needs a value" }
                dict set opts $a [lindex $arglist $i]
            } else {
                ::stub::unsupported "$cmd: option '$a' (modelled options: [join [concat $flags $valued] {, }])"
            }
        } else {
            lappend positional $a
        }
    }
    dict set opts args $positional
    return $opts
}

# Flatten arguments that may each be a list of objects (as [get_bd_pins a b] returns).
proc ::stub::flatten {arglist} {
    set out {}
    foreach a $arglist {
        foreach x $a { lappend out $x }
    }
    return $out
}

# ---- JSON output ------------------------------------------------------------------------------
namespace eval ::stub::json {}
proc ::stub::json::str {s} {
    set s [string map [list \\ \\\\ \" \\\" \n \\n \r \\r \t \\t] $s]
    regsub -all {[\x00-\x1f]} $s {?} s
    return "\"$s\""
}
proc ::stub::json::obj {pairs} {
    set items {}
    foreach {k v} $pairs { lappend items "[str $k]: $v" }
    return "\{[join $items {, }]\}"
}
proc ::stub::json::arr {items} { return "\[[join $items {, }]\]" }
proc ::stub::json::strs {values} {
    set items {}
    foreach v $values { lappend items [str $v] }
    return [arr $items]
}
proc ::stub::json::strdict {d} {
    set pairs {}
    foreach k [lsort [dict keys $d]] { lappend pairs $k [str [dict get $d $k]] }
    return [obj $pairs]
}
proc ::stub::json::bool {b} { return [expr {$b ? "true" : "false"}] }

proc ::stub::record_json {} {
    set calls {}
    foreach c $::stub::calls { lappend calls [::stub::json::strs $c] }
    set pairs [list \
        tool [::stub::json::str $::stub::tool] \
        calls [::stub::json::arr $calls] \
        warnings [::stub::json::strs $::stub::warnings]]
    return [::stub::json::obj [concat $pairs [::stub::tool_record]]]
}
