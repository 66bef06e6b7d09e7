#ifndef VITCOD_LAYERNORM_H_
#define VITCOD_LAYERNORM_H_

// hls4ml 1.3.0's LayerNormalization (nnet::layernormalize, io_parallel) with its 1/sqrt table
// replaced; every LayerNorm of the flow calls this kernel.
//
// What stays hls4ml's, line for line: the config struct (hls4ml's layernorm config template), the
// types, the weights, the mean / variance / normalization arithmetic and the loops.
//
// What changes, and why (the table, its index and where it comes from):
//   * hls4ml fills a local table with a float loop (nnet::init_invert_sqr_table) inside the
//     pipelined kernel; under synthesis that loop is unrolled once per entry inside a PIPELINE
//     region. Here the table is a generated constant array (vitcod.hls.engines.layernorm), passed
//     in as an argument: a ROM, read once per token.
//   * hls4ml indexes the table uniformly, floor(var * table_size * 2^table_range_power2), so the
//     smallest variance it must resolve fixes the step (the demo needed 65,536 entries), and its
//     exponent is unsigned, so ranges above 1 read wrong entries. Here the index is the variance's
//     octave and the M bits below its leading one (invsqrt_index): the same relative step for every
//     variance from 2^(top_exp - octaves) to 2^top_exp, with octaves * 2^M + 1 entries.
// The generated config (config<i>_invsqrt) adds invsqrt_top_exp, invsqrt_octaves,
// invsqrt_mantissa_bits and invsqrt_table_size to hls4ml's struct.

#include "nnet_layernorm.h"

namespace vitcod {

// The table index of a variance (vitcod.hls.engines.layernorm.InvSqrtTable.index is its model):
//   lead = leading one of var's raw bits, o = (bit of 2^top_exp) - 1 - lead
//   var >= 2^top_exp -> 2^M - 1;  var < 2^(top_exp - octaves) or 0 -> octaves * 2^M;
//   else o * 2^M + the M bits below the leading one.
// A priority encoder and one barrel shift; no loop-carried state.
template <typename CONFIG_T> unsigned invsqrt_index(const typename CONFIG_T::accum_t var) {
    #pragma HLS INLINE
    typedef typename CONFIG_T::accum_t accum_t;
    static const int width = accum_t::width;
    static const int top = (accum_t::width - accum_t::iwidth) + CONFIG_T::invsqrt_top_exp; // bit of 2^top_exp
    static const unsigned m = CONFIG_T::invsqrt_mantissa_bits;
    static const int octaves = CONFIG_T::invsqrt_octaves;
    accum_t v = var;
    ap_uint<width> raw = v.range(width - 1, 0);
    if (v < 0)
        raw = 0;
    int lead = -1;
InvSqrtLead:
    for (int b = 0; b < width; b++) {
        #pragma HLS UNROLL
        if (raw[b])
            lead = b;
    }
    const int o = top - 1 - lead;
    if (lead < 0 || o >= octaves)
        return (unsigned)octaves << m;
    if (o < 0)
        return (1u << m) - 1;
    ap_uint<width + m> wide = raw;
    wide <<= m; // raw bits lead-1 .. lead-m now sit at lead+m-1 .. lead
    const ap_uint<width + m> shifted = wide >> lead;
    return (unsigned)o * (1u << m) + shifted.range(m - 1, 0).to_uint();
}

template <class data_T, class res_T, typename CONFIG_T>
void layernorm_1d(data_T data[CONFIG_T::n_in / CONFIG_T::seq_len], res_T res[CONFIG_T::n_in / CONFIG_T::seq_len],
                  typename CONFIG_T::scale_t scale[CONFIG_T::n_in / CONFIG_T::seq_len],
                  typename CONFIG_T::bias_t bias[CONFIG_T::n_in / CONFIG_T::seq_len],
                  const typename CONFIG_T::table_t invsqrt_table[CONFIG_T::invsqrt_table_size]) {
    #pragma HLS PIPELINE II=CONFIG_T::reuse_factor
    #pragma HLS ARRAY_PARTITION variable=data complete
    #pragma HLS ARRAY_PARTITION variable=res complete
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

    const typename CONFIG_T::table_t deno_inver = invsqrt_table[invsqrt_index<CONFIG_T>(var)];

LAYERNORM_1D_RESULT:
    for (unsigned i = 0; i < dim; ++i) {
        res[i] = data_diff[i] * deno_inver * scale[i] + bias[i];
    }
}

template <class data_T, class res_T, typename CONFIG_T>
void layernormalize(data_T data[CONFIG_T::n_in], res_T res[CONFIG_T::n_in],
                    typename CONFIG_T::scale_t scale[CONFIG_T::n_in / CONFIG_T::seq_len],
                    typename CONFIG_T::bias_t bias[CONFIG_T::n_in / CONFIG_T::seq_len],
                    const typename CONFIG_T::table_t invsqrt_table[CONFIG_T::invsqrt_table_size]) {
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
        layernorm_1d<data_T, res_T, CONFIG_T>(in_val, outval, scale, bias, invsqrt_table);
    LAYERNORM_STORE:
        for (unsigned i = 0; i < dim; ++i) {
            #pragma HLS UNROLL
            res[j * dim + i] = outval[i];
        }
    }
}

} // namespace vitcod

#endif
