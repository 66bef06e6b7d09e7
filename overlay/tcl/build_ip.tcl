# Step 1 (Vitis HLS): synthesize the overlay top + network into an IP-catalog IP.
#   vitis_hls -f overlay/tcl/build_ip.tcl -tclargs boards/<board>/board.tcl build/<board>/params.tcl
# Output: build/<board>/hls/<hls_project>/<solution>/impl/ip (the IP repository block_design.tcl
# uses) and .../syn/report/csynth.xml (the resource estimate the fit check reads).
source [file join [file dirname [file normalize [info script]]] common.tcl]
vitcod::load_inputs $argv

set hls_dir [vitcod::hls_dir]
file mkdir $hls_dir
cd $hls_dir

open_project -reset $params(hls_project)
set_top $params(ip_top)
# The top's include path holds overlay/ip and the generated config header; it never holds
# overlay/ip/sim (the C-simulation shim), so Vitis HLS uses its own ap_axi_sdata.h.
add_files $params(hls_top_source) -cflags $params(hls_top_cflags)
foreach src $params(hls_network_sources) {
    add_files $src -cflags $params(hls_network_cflags)
}

open_solution -reset $params(hls_solution) -flow_target vivado
set_part $board(part)
create_clock -period $params(clock_period_ns) -name default

csynth_design
export_design -format ip_catalog \
    -vendor $params(ip_vendor) -library $params(ip_library) \
    -ipname $params(ip_name) -version $params(ip_version) \
    -display_name "ViTCoD overlay top ($params(network), model $params(model_id))" \
    -description "ViTCoD sparse-attention ViT: AXI4-Stream in/out, batch of up to $params(max_batch) images"

puts "vitcod: exported $params(ip_vlnv) to [vitcod::ip_repo]"
close_project
exit
