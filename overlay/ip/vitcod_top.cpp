// The Vitis HLS top of the overlay IP (set_top vitcod_top in overlay/tcl/build_ip.tcl).
// Everything model-specific comes from the generated vitcod_top_config.h
// (host/contract/header.py, written by vitcod.overlay.codegen); this file only fixes the interface: the
// register offsets below are the contract's register map (host/contract/registers.py, documented in
// vitcod_top.h); tests/overlay/test_overlay_registers.py fails if these pragmas and that table differ.
#include "vitcod_top_config.h"

void vitcod_top(hls::stream<vitcod::axis_word> &in, hls::stream<vitcod::axis_word> &out, unsigned batch_count,
                unsigned &batch_done, unsigned &status, unsigned &format_version, unsigned &model_id_lo,
                unsigned &model_id_hi, unsigned &in_values, unsigned &in_words, unsigned &out_values,
                unsigned &out_words, unsigned &max_batch, unsigned &in_type, unsigned &out_type,
                unsigned &words_read) {
#pragma HLS INTERFACE mode=axis port=in
#pragma HLS INTERFACE mode=axis port=out
#pragma HLS INTERFACE mode=s_axilite port=batch_count bundle=control offset=0x10
#pragma HLS INTERFACE mode=s_axilite port=batch_done bundle=control offset=0x18
#pragma HLS INTERFACE mode=s_axilite port=status bundle=control offset=0x20
#pragma HLS INTERFACE mode=s_axilite port=format_version bundle=control offset=0x28
#pragma HLS INTERFACE mode=s_axilite port=model_id_lo bundle=control offset=0x30
#pragma HLS INTERFACE mode=s_axilite port=model_id_hi bundle=control offset=0x38
#pragma HLS INTERFACE mode=s_axilite port=in_values bundle=control offset=0x40
#pragma HLS INTERFACE mode=s_axilite port=in_words bundle=control offset=0x48
#pragma HLS INTERFACE mode=s_axilite port=out_values bundle=control offset=0x50
#pragma HLS INTERFACE mode=s_axilite port=out_words bundle=control offset=0x58
#pragma HLS INTERFACE mode=s_axilite port=max_batch bundle=control offset=0x60
#pragma HLS INTERFACE mode=s_axilite port=in_type bundle=control offset=0x68
#pragma HLS INTERFACE mode=s_axilite port=out_type bundle=control offset=0x70
#pragma HLS INTERFACE mode=s_axilite port=words_read bundle=control offset=0x78
#pragma HLS INTERFACE mode=ap_ctrl_hs port=return
#pragma HLS INTERFACE mode=s_axilite port=return bundle=control
    vitcod::top_select<vitcod_top_config, vitcod_top_config::io_stream>::run(in, out, batch_count, batch_done, status, format_version, model_id_lo,
                                                                      model_id_hi, in_values, in_words, out_values,
                                                                      out_words, max_batch, in_type, out_type, words_read);
}
