#ifndef VITCOD_EMBED_STREAM_H_
#define VITCOD_EMBED_STREAM_H_

// CLS token + position embedding (vitcod_embed.h) in an io_stream network: N-1 patch tokens in
// (nnet::array of E values each), N tokens out, the CLS token first:
//
//   out token 0     = (res_T)(cls[e] + pos[0, e])
//   out token 1 + n = (res_T)(data token n [e] + pos[1 + n, e])      n = 0 .. N-2
//
// the same sums in accum_t and the same cast as cls_pos_embed, so both are bit-exact.

#include "hls_stream.h"
#include "nnet_common.h"
#include "vitcod_embed.h"

namespace vitcod {

template <class data_T, class res_T, typename CONFIG_T>
void cls_pos_embed_stream(hls::stream<data_T> &data, hls::stream<res_T> &res,
                          const typename CONFIG_T::cls_t cls[CONFIG_T::embed_dim],
                          const typename CONFIG_T::pos_t pos[CONFIG_T::n_tokens * CONFIG_T::embed_dim]) {
    // pos is read at n * E + e for every e of a token: E cyclic banks, one read each per token.
    #pragma HLS ARRAY_PARTITION variable=cls complete
    #pragma HLS ARRAY_PARTITION variable=pos cyclic factor=CONFIG_T::pos_banks dim=1
    res_T first;
    PRAGMA_DATA_PACK(first)
EmbedStreamCls:
    for (unsigned e = 0; e < CONFIG_T::embed_dim; e++) {
        #pragma HLS UNROLL
        typename CONFIG_T::accum_t acc = cls[e];
        acc += pos[e];
        first[e] = (typename res_T::value_type)acc;
    }
    res.write(first);
    VITCOD_COUNT(counter_embed, CONFIG_T::embed_dim);
EmbedStreamTokens:
    for (unsigned n = 1; n < CONFIG_T::n_tokens; n++) {
        #pragma HLS PIPELINE II=CONFIG_T::reuse_factor
        const data_T in = data.read();
        res_T out;
        PRAGMA_DATA_PACK(out)
    EmbedStreamChannels:
        for (unsigned e = 0; e < CONFIG_T::embed_dim; e++) {
            typename CONFIG_T::accum_t acc = in[e];
            acc += pos[n * CONFIG_T::embed_dim + e];
            out[e] = (typename res_T::value_type)acc;
        }
        res.write(out);
        VITCOD_COUNT(counter_embed, CONFIG_T::embed_dim);
    }
}

} // namespace vitcod

#endif
