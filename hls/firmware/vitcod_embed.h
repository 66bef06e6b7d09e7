#ifndef VITCOD_EMBED_H_
#define VITCOD_EMBED_H_

// CLS token + position embedding (io_parallel), the step between the patch embedding and the
// first encoder block:
//
//   res[0, e]     = (res_T)(cls[e] + pos[0, e])
//   res[1 + n, e] = (res_T)(data[n, e] + pos[1 + n, e])      n = 0 .. N-2
//
// Flat token-major arrays: data is (N-1, E), res and pos are (N, E), cls is (E,). hls4ml has no
// layer that prepends a learned token, so this is ours. The sum is exact in accum_t (chosen by
// vitcod.hls.engines); the only rounding is the cast to res_T with res_T's own modes.

#include "vitcod_common.h"

namespace vitcod {

struct embed_config {
    // ---- Sizes ----
    static const unsigned n_tokens = 2;  // N, including the CLS token
    static const unsigned embed_dim = 1; // E

    // ---- Parallelism: one token every reuse_factor cycles.
    static const unsigned reuse_factor = 1;
    // Banks of the position table (cyclic): a token reads embed_dim entries of pos in one iteration,
    // so embed_dim banks give every bank one read per token (a memory has two ports).
    static const unsigned pos_banks = 1;

    // ---- Types ----
    typedef ap_fixed<16, 6> cls_t;
    typedef ap_fixed<16, 6> pos_t;
    typedef ap_fixed<17, 7> accum_t;
};

template <class data_T, class res_T, typename CONFIG_T>
void cls_pos_embed(const data_T data[(CONFIG_T::n_tokens - 1) * CONFIG_T::embed_dim],
                   res_T res[CONFIG_T::n_tokens * CONFIG_T::embed_dim],
                   const typename CONFIG_T::cls_t cls[CONFIG_T::embed_dim],
                   const typename CONFIG_T::pos_t pos[CONFIG_T::n_tokens * CONFIG_T::embed_dim]) {
    // Like head_mix's weights: the tables are arguments, so they can be partitioned here. pos is read
    // at n * E + e for every e of a token, so a cyclic partition by E puts each e in its own bank.
    #pragma HLS ARRAY_PARTITION variable=cls complete
    #pragma HLS ARRAY_PARTITION variable=pos cyclic factor=CONFIG_T::pos_banks dim=1
EmbedCls:
    for (unsigned e = 0; e < CONFIG_T::embed_dim; e++) {
        #pragma HLS UNROLL
        typename CONFIG_T::accum_t acc = cls[e];
        acc += pos[e];
        res[e] = (res_T)acc;
    }
    VITCOD_COUNT(counter_embed, CONFIG_T::embed_dim);
EmbedTokens:
    for (unsigned n = 1; n < CONFIG_T::n_tokens; n++) {
        #pragma HLS PIPELINE II=CONFIG_T::reuse_factor
    EmbedChannels:
        for (unsigned e = 0; e < CONFIG_T::embed_dim; e++) {
            typename CONFIG_T::accum_t acc = data[(n - 1) * CONFIG_T::embed_dim + e];
            acc += pos[n * CONFIG_T::embed_dim + e];
            res[n * CONFIG_T::embed_dim + e] = (res_T)acc;
        }
        VITCOD_COUNT(counter_embed, CONFIG_T::embed_dim);
    }
}

} // namespace vitcod

#endif
