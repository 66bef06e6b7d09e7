#ifndef VITCOD_HEADMIX_STREAM_H_
#define VITCOD_HEADMIX_STREAM_H_

// The Q/K encoder/decoder (vitcod_headmix.h) in an io_stream network: one token per stream
// element (nnet::array of Hin*D values in, Hout*D out), the same arithmetic per token:
//
//   res[j*D + c] = (res_T)( sum_i data[i*D + c] * W[i*Hout + j] + b[j] )
//
// accumulated exactly in accum_t from the bias, in the order i = 0 .. Hin-1, exactly as head_mix
// does for each token, so both are bit-exact with each other and with the golden model.
// One token every reuse_factor cycles with Hin*Hout*D / reuse_factor multipliers.

#include "hls_stream.h"
#include "nnet_common.h"
#include "vitcod_headmix.h"

namespace vitcod {

template <class data_T, class res_T, typename CONFIG_T>
void head_mix_stream(hls::stream<data_T> &data, hls::stream<res_T> &res,
                     const typename CONFIG_T::weight_t weights[CONFIG_T::n_heads_in * CONFIG_T::n_heads_out],
                     const typename CONFIG_T::bias_t biases[CONFIG_T::n_heads_out]) {
    #pragma HLS ARRAY_PARTITION variable=weights complete
    #pragma HLS ARRAY_PARTITION variable=biases complete
    #pragma HLS ALLOCATION operation instances=mul limit=CONFIG_T::multiplier_limit
HeadMixStreamTokens:
    for (unsigned n = 0; n < CONFIG_T::n_tokens; n++) {
        #pragma HLS PIPELINE II=CONFIG_T::reuse_factor
        const data_T in = data.read();
        res_T out;
        PRAGMA_DATA_PACK(out)
    HeadMixStreamOut:
        for (unsigned j = 0; j < CONFIG_T::n_heads_out; j++) {
        HeadMixStreamChannels:
            for (unsigned c = 0; c < CONFIG_T::head_dim; c++) {
                typename CONFIG_T::accum_t acc = biases[j];
            HeadMixStreamIn:
                for (unsigned i = 0; i < CONFIG_T::n_heads_in; i++) {
                    acc += in[i * CONFIG_T::head_dim + c] * weights[i * CONFIG_T::n_heads_out + j];
                }
                out[j * CONFIG_T::head_dim + c] = (typename res_T::value_type)acc;
                VITCOD_COUNT(CONFIG_T::mac_counter, CONFIG_T::n_heads_in);
            }
        }
        res.write(out);
    }
}

} // namespace vitcod

#endif
