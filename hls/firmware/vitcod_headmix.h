#ifndef VITCOD_HEADMIX_H_
#define VITCOD_HEADMIX_H_

// ViTCoD Q/K auto-encoder engine (io_parallel): a linear map across the HEAD axis, applied to every
// token and every channel inside a head. The same engine is the ENCODER (H -> Hc = ceil(H/2)) and
// the DECODER (Hc -> H); the compressed (N, Hc*D) tensor between them is what the hardware buffers.
//
//   res[n*Hout*D + j*D + c] = (res_T)( sum_i data[n*Hin*D + i*D + c] * W[i*Hout + j] + b[j] )
//
// W is stored like the Keras kernel of shape (Hin, Hout). hls4ml has no layer for a mix across
// the head axis of a (tokens, heads*channels) tensor (a Dense would mix channels too), hence ours.
// The accumulation is exact (accum_t has all fraction bits of data*weight and of the bias and
// enough integer bits for Hin products plus the bias, chosen by vitcod.hls.engines); the only
// rounding is the final cast to res_T with res_T's own modes.

#include "vitcod_common.h"

namespace vitcod {

struct headmix_config {
    // ---- Sizes ----
    static const unsigned n_tokens = 1;    // N
    static const unsigned n_heads_in = 1;  // Hin
    static const unsigned n_heads_out = 1; // Hout
    static const unsigned head_dim = 1;    // D

    // ---- Parallelism: one token every reuse_factor cycles, Hin*Hout*D/reuse_factor multipliers.
    static const unsigned reuse_factor = 1;
    static const unsigned multiplier_limit = 1;

    // ---- Which C-simulation counter the MACs go to (counter_encoder or counter_decoder).
    static const unsigned mac_counter = counter_encoder;

    // ---- Types ----
    typedef ap_fixed<16, 6> weight_t;
    typedef ap_fixed<16, 6> bias_t;
    typedef ap_fixed<33, 13> accum_t;
};

template <class data_T, class res_T, typename CONFIG_T>
void head_mix(const data_T data[CONFIG_T::n_tokens * CONFIG_T::n_heads_in * CONFIG_T::head_dim],
              res_T res[CONFIG_T::n_tokens * CONFIG_T::n_heads_out * CONFIG_T::head_dim],
              const typename CONFIG_T::weight_t weights[CONFIG_T::n_heads_in * CONFIG_T::n_heads_out],
              const typename CONFIG_T::bias_t biases[CONFIG_T::n_heads_out]) {
    #pragma HLS ARRAY_PARTITION variable=weights complete
    #pragma HLS ARRAY_PARTITION variable=biases complete
    #pragma HLS ALLOCATION operation instances=mul limit=CONFIG_T::multiplier_limit
    static const unsigned in_stride = CONFIG_T::n_heads_in * CONFIG_T::head_dim;
    static const unsigned out_stride = CONFIG_T::n_heads_out * CONFIG_T::head_dim;
HeadMixTokens:
    for (unsigned n = 0; n < CONFIG_T::n_tokens; n++) {
        #pragma HLS PIPELINE II=CONFIG_T::reuse_factor
    HeadMixOut:
        for (unsigned j = 0; j < CONFIG_T::n_heads_out; j++) {
        HeadMixChannels:
            for (unsigned c = 0; c < CONFIG_T::head_dim; c++) {
                typename CONFIG_T::accum_t acc = biases[j];
            HeadMixIn:
                for (unsigned i = 0; i < CONFIG_T::n_heads_in; i++) {
                    acc += data[n * in_stride + i * CONFIG_T::head_dim + c] * weights[i * CONFIG_T::n_heads_out + j];
                }
                res[n * out_stride + j * CONFIG_T::head_dim + c] = (res_T)acc;
                VITCOD_COUNT(CONFIG_T::mac_counter, CONFIG_T::n_heads_in);
            }
        }
    }
}

} // namespace vitcod

#endif
