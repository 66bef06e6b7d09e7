#ifndef VITCOD_LAYERNORM_H_
#define VITCOD_LAYERNORM_H_

// hls4ml 1.3.0's LayerNormalization (nnet::layernormalize, io_parallel) with ONE fix: the 1/sqrt
// table may cover variances above 1.
//
// hls4ml's table spans variances [0, 2^-table_range_power2) but computes the index with
// `(int)1 << CONFIG_T::table_range_power2` on an UNSIGNED exponent, so only ranges <= 1 work
// (table_range_power2 >= 0); a negative exponent shifts by ~2^32 (undefined behaviour) and every
// token with variance > 1 reads a wrong entry. ViT residual streams reach variances of ~10.
// Here the exponent is read as a signed int and the index is
//     index = floor(var * table_size * 2^table_range_power2), clamped to [0, table_size - 1]
// for either sign. Everything else - the config struct (hls4ml's layernorm config template), the
// table (nnet::init_invert_sqr_table, which already handles a negative exponent), the types and
// the arithmetic - is hls4ml's, line for line. For table_range_power2 >= 0 the results are identical
// to nnet::layernormalize; the vitcod hls4ml extension only calls this function when the exponent
// is negative.

#include "nnet_layernorm.h"

namespace vitcod {

template <class data_T, class res_T, typename CONFIG_T>
void layernorm_1d(data_T data[CONFIG_T::n_in / CONFIG_T::seq_len], res_T res[CONFIG_T::n_in / CONFIG_T::seq_len],
                  typename CONFIG_T::scale_t scale[CONFIG_T::n_in / CONFIG_T::seq_len],
                  typename CONFIG_T::bias_t bias[CONFIG_T::n_in / CONFIG_T::seq_len]) {
    #pragma HLS PIPELINE II=CONFIG_T::reuse_factor
    #pragma HLS ARRAY_PARTITION variable=data complete
    #pragma HLS ARRAY_PARTITION variable=res complete
    // Signed view of the range exponent (hls4ml's config stores it in an unsigned constant).
    static const int range_power2 = (int)CONFIG_T::table_range_power2;
    static const unsigned left_shift = range_power2 >= 0 ? range_power2 : 0;
    static const unsigned right_shift = range_power2 < 0 ? -range_power2 : 0;
    typename CONFIG_T::table_t deno_inver = 0;
#ifdef __HLS_SYN__
    bool initialized = false;
    typename CONFIG_T::table_t invert_sqr_table[CONFIG_T::table_size];
#else
    static bool initialized = false;
    static typename CONFIG_T::table_t invert_sqr_table[CONFIG_T::table_size];
#endif
    if (!initialized) {
        nnet::init_invert_sqr_table<CONFIG_T, CONFIG_T::table_size>(invert_sqr_table);
        initialized = true;
    }

    static const unsigned dim = CONFIG_T::n_in / CONFIG_T::seq_len;
    typename CONFIG_T::accum_t sum_cache = 0;
    typename CONFIG_T::accum_t sum_cache2 = 0;
    typename CONFIG_T::accum_t var, mean, diff;
    typename CONFIG_T::accum_t data_diff[dim];

    #pragma HLS ARRAY_PARTITION variable=data_diff complete

    const typename CONFIG_T::accum_t k_inv = 1.0 / dim;

LAYERNORM_1D_SUM:
    for (unsigned i = 0; i < dim; ++i) {
        sum_cache += static_cast<typename CONFIG_T::accum_t>(data[i]);
    }
    mean = CONFIG_T::template product<typename CONFIG_T::accum_t, typename CONFIG_T::accum_t>::product(sum_cache, k_inv);

LAYERNORM_1D_VAR:
    for (unsigned i = 0; i < dim; ++i) {
        data_diff[i] = static_cast<typename CONFIG_T::accum_t>(data[i]) - mean;
        diff = data_diff[i] * data_diff[i];
        sum_cache2 += diff;
    }
    var = CONFIG_T::template product<typename CONFIG_T::accum_t, typename CONFIG_T::accum_t>::product(sum_cache2, k_inv);

    // The fix: var * table_size * 2^range_power2 for a negative exponent too (the product of an
    // ap_fixed and an int is exact; the shift only drops fraction bits before the truncation to int).
    int index = ((var * (int)CONFIG_T::table_size) << left_shift) >> right_shift;
    if (index < 0)
        index = 0;
    if (index > (int)CONFIG_T::table_size - 1)
        index = CONFIG_T::table_size - 1;
    deno_inver = invert_sqr_table[index];

LAYERNORM_1D_RESULT:
    for (unsigned i = 0; i < dim; ++i) {
        res[i] = data_diff[i] * deno_inver * scale[i] + bias[i];
    }
}

template <class data_T, class res_T, typename CONFIG_T>
void layernormalize(data_T data[CONFIG_T::n_in], res_T res[CONFIG_T::n_in],
                    typename CONFIG_T::scale_t scale[CONFIG_T::n_in / CONFIG_T::seq_len],
                    typename CONFIG_T::bias_t bias[CONFIG_T::n_in / CONFIG_T::seq_len]) {
    static const unsigned dim = CONFIG_T::n_in / CONFIG_T::seq_len;
    data_T in_val[dim];
    res_T outval[dim];

    #pragma HLS ARRAY_PARTITION variable=scale complete
    #pragma HLS ARRAY_PARTITION variable=bias complete
    #pragma HLS ARRAY_PARTITION variable=in_val complete
    #pragma HLS ARRAY_PARTITION variable=outval complete

LAYERNORM_SEQ_LOOP:
    for (unsigned j = 0; j < CONFIG_T::seq_len; ++j) {
        #pragma HLS PIPELINE
    LAYERNORM_LOAD:
        for (unsigned i = 0; i < dim; ++i) {
            #pragma HLS UNROLL
            in_val[i] = data[j * dim + i];
        }
        layernorm_1d<data_T, res_T, CONFIG_T>(in_val, outval, scale, bias);
    LAYERNORM_STORE:
        for (unsigned i = 0; i < dim; ++i) {
            #pragma HLS UNROLL
            res[j * dim + i] = outval[i];
        }
    }
}

} // namespace vitcod

#endif
