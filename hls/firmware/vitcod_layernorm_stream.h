#ifndef VITCOD_LAYERNORM_STREAM_H_
#define VITCOD_LAYERNORM_STREAM_H_

// LayerNormalization in an io_stream network (hls4ml 1.3.0 has an io_parallel kernel only): one
// token per stream element (nnet::array of dim values), normalized by vitcod::layernorm_1d - the
// very function every io_parallel LayerNorm of the flow calls per token (vitcod_layernorm.h: the
// same mean / variance arithmetic, the same octave-indexed 1/sqrt table and index) - so the two
// designs are bit-exact by construction. One token every reuse_factor cycles.

#include "hls_stream.h"
#include "nnet_common.h"
#include "vitcod_layernorm.h"

namespace vitcod {

template <class data_T, class res_T, typename CONFIG_T>
void layernormalize_stream(hls::stream<data_T> &data, hls::stream<res_T> &res,
                           typename CONFIG_T::scale_t scale[CONFIG_T::n_in / CONFIG_T::seq_len],
                           typename CONFIG_T::bias_t bias[CONFIG_T::n_in / CONFIG_T::seq_len],
                           const typename CONFIG_T::table_t invsqrt_table[CONFIG_T::invsqrt_table_size]) {
    static const unsigned dim = CONFIG_T::n_in / CONFIG_T::seq_len;
    typename data_T::value_type in_val[dim];
    typename res_T::value_type out_val[dim];
    #pragma HLS ARRAY_PARTITION variable=scale complete
    #pragma HLS ARRAY_PARTITION variable=bias complete
    #pragma HLS ARRAY_PARTITION variable=in_val complete
    #pragma HLS ARRAY_PARTITION variable=out_val complete
LayerNormStreamTokens:
    for (unsigned j = 0; j < CONFIG_T::seq_len; ++j) {
        #pragma HLS PIPELINE II=CONFIG_T::reuse_factor
        const data_T in = data.read();
    LayerNormStreamLoad:
        for (unsigned i = 0; i < dim; ++i) {
            #pragma HLS UNROLL
            in_val[i] = in[i];
        }
        layernorm_1d<typename data_T::value_type, typename res_T::value_type, CONFIG_T>(in_val, out_val, scale, bias,
                                                                                       invsqrt_table);
        res_T out;
        PRAGMA_DATA_PACK(out)
    LayerNormStreamStore:
        for (unsigned i = 0; i < dim; ++i) {
            #pragma HLS UNROLL
            out[i] = out_val[i];
        }
        res.write(out);
    }
}

} // namespace vitcod

#endif
