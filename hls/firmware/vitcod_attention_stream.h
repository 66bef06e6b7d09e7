#ifndef VITCOD_ATTENTION_STREAM_H_
#define VITCOD_ATTENTION_STREAM_H_

// ViTCoD fixed-mask sparse attention, io_stream: the same layer as vitcod_attention.h (same
// arithmetic, same generated tables, bit for bit the same output), fed and drained as hls4ml token
// streams: hls::stream<nnet::array<T, heads * head_dim>>, one element per token, tokens in order.
//
// One image is one pass through a DATAFLOW region of five processes; every buffer between them has
// exactly one producer and one consumer (ping-pong memories, so image b+1 loads while image b is
// scored):
//
//   StreamLoad      N tokens, II 1: reads the q, k, v tokens; keeps K and V of the whole image
//                   (per head, [H][N][D]), q for the dense engine, q/k copies for the sparse lanes,
//                   and GATHERS the global-token K rows of every head as they pass (head h's
//                   global_slot ROM, read at the loop counter, says whether token n is its global
//                   column g).
//   StreamDense  || StreamSparse   side by side: the dense engine scores every query row against
//                   the head's G_h gathered global rows (dense_unroll columns per cycle); the sparse
//                   engine scores the CSR non-zeros, sparse_lanes per cycle, lane l reading its own
//                   ROM bank (sparse_rc_lane(l, .), the lane-interleaved table of attention_tables)
//                   and q/k copy l % sparse_copies (<= 2 lanes per copy: the memory's two ports).
//   StreamSoftmaxPv per head, the slot walk of vitcod_attention.h: row max, table exp + exact
//                   row sum, one reciprocal per row, p = e * inv and P x V (same helper functions).
//   StreamWrite     N tokens, II 1: one output token (all heads) per cycle.
//
// The arithmetic helpers (head_dot, lookup_exp, row_reciprocal, probability, unpack_slot) are the
// io_parallel engine's, so both implementations round identically; the tests compare both with
// each other and with the golden model (vitcod.hls.golden).

// vitcod_attention.h first: ap_fixed.h / ap_int.h, which nnet_types.h uses. In an hls4ml project
// this header sits in firmware/nnet_utils/ (vitcod.hls.extension registers it as a source), next
// to nnet_types.h; the engine C-simulation (vitcod.hls.engine_csim) puts hls4ml's nnet_utils on the
// include path.
#include "vitcod_attention.h"
#include "hls_stream.h"
#include "nnet_types.h"

namespace vitcod {

// Process 1: read the three token streams, one token per cycle, into the per-engine buffers.
template <class q_T, class k_T, class v_T, typename CONFIG_T>
void stream_load(hls::stream<q_T> &q, hls::stream<k_T> &k, hls::stream<v_T> &v,
                 typename q_T::value_type q_dense[CONFIG_T::n_heads][CONFIG_T::n_tokens][CONFIG_T::head_dim],
                 typename k_T::value_type k_global[CONFIG_T::n_heads][CONFIG_T::n_global_max][CONFIG_T::head_dim],
                 typename q_T::value_type
                     q_sparse[CONFIG_T::sparse_copies][CONFIG_T::n_heads][CONFIG_T::n_tokens][CONFIG_T::head_dim],
                 typename k_T::value_type
                     k_sparse[CONFIG_T::sparse_copies][CONFIG_T::n_heads][CONFIG_T::n_tokens][CONFIG_T::head_dim],
                 typename v_T::value_type v_buf[CONFIG_T::n_heads][CONFIG_T::n_tokens][CONFIG_T::head_dim]) {
    #pragma HLS INLINE off
StreamLoadTokens:
    for (unsigned n = 0; n < CONFIG_T::n_tokens; n++) {
        #pragma HLS PIPELINE II=1
        const q_T q_tok = q.read();
        const k_T k_tok = k.read();
        const v_T v_tok = v.read();
    StreamLoadHeads:
        for (unsigned h = 0; h < CONFIG_T::n_heads; h++) {
            // Head h's ROM, read at the loop counter: is token n a global column of head h, which g?
            typename CONFIG_T::global_slot_t gs = CONFIG_T::global_slot(h, n);
            const bool is_global = gs[CONFIG_T::global_index_bits];
            const unsigned g = gs.range(CONFIG_T::global_index_bits - 1, 0).to_uint();
        StreamLoadChannels:
            for (unsigned c = 0; c < CONFIG_T::head_dim; c++) {
                const unsigned e = h * CONFIG_T::head_dim + c;
                q_dense[h][n][c] = q_tok[e];
                v_buf[h][n][c] = v_tok[e];
                if (is_global) k_global[h][g][c] = k_tok[e];
            StreamLoadCopies:
                for (unsigned p = 0; p < CONFIG_T::sparse_copies; p++) {
                    q_sparse[p][h][n][c] = q_tok[e];
                    k_sparse[p][h][n][c] = k_tok[e];
                }
            }
        }
    }
}

// Process 2: the DENSE engine over all heads (as dense_engine of vitcod_attention.h, per head).
template <class q_E, class k_E, typename CONFIG_T>
void stream_dense(const q_E q_dense[CONFIG_T::n_heads][CONFIG_T::n_tokens][CONFIG_T::head_dim],
                  const k_E k_global[CONFIG_T::n_heads][CONFIG_T::n_global_max][CONFIG_T::head_dim],
                  typename CONFIG_T::score_t s_dense[CONFIG_T::n_heads][CONFIG_T::n_tokens][CONFIG_T::n_global_max]) {
    #pragma HLS INLINE off
StreamDenseHeads:
    for (unsigned h = 0; h < CONFIG_T::n_heads; h++) {
        const unsigned n_global = CONFIG_T::n_global(h);
    StreamDenseRows:
        for (unsigned i = 0; i < CONFIG_T::n_tokens; i++) {
        StreamDenseCols:
            for (unsigned g = 0; g < CONFIG_T::n_global_max; g++) {
                #pragma HLS UNROLL factor=CONFIG_T::dense_unroll
                #pragma HLS PIPELINE II=1
                if (g < n_global) {
                    s_dense[h][i][g] = head_dot<q_E, k_E, CONFIG_T>(q_dense[h][i], k_global[h][g]);
                    VITCOD_COUNT(counter_dense, CONFIG_T::head_dim);
                }
            }
        }
    }
}

// Process 3: the SPARSE engine over all heads. Lane l of trip t takes head h's non-zero t * L + l
// from ROM bank l (word h * sparse_trips_max + t), its q/k rows from copy l % sparse_copies.
template <class q_E, class k_E, typename CONFIG_T>
void stream_sparse(
    const q_E q_sparse[CONFIG_T::sparse_copies][CONFIG_T::n_heads][CONFIG_T::n_tokens][CONFIG_T::head_dim],
    const k_E k_sparse[CONFIG_T::sparse_copies][CONFIG_T::n_heads][CONFIG_T::n_tokens][CONFIG_T::head_dim],
    typename CONFIG_T::score_t s_sparse[CONFIG_T::n_heads][CONFIG_T::sparse_trips_max * CONFIG_T::sparse_lanes]) {
    #pragma HLS INLINE off
    static const unsigned tb = CONFIG_T::token_bits;
StreamSparseHeads:
    for (unsigned h = 0; h < CONFIG_T::n_heads; h++) {
        const unsigned trips = CONFIG_T::sparse_trips(h);
        const unsigned base = h * CONFIG_T::sparse_trips_max;
    StreamSparseTrips:
        for (unsigned t = 0; t < trips; t++) {
            #pragma HLS PIPELINE II=1
            #pragma HLS LOOP_TRIPCOUNT min=CONFIG_T::sparse_trips_min max=CONFIG_T::sparse_trips_max avg=CONFIG_T::sparse_trips_avg
        StreamSparseLanes:
            for (unsigned l = 0; l < CONFIG_T::sparse_lanes; l++) {
                const typename CONFIG_T::sparse_rc_t rc = CONFIG_T::sparse_rc_lane(l, base + t);
                if (rc[2 * tb]) {
                    const unsigned row = rc.range(tb - 1, 0).to_uint();
                    const unsigned col = rc.range(2 * tb - 1, tb).to_uint();
                    const unsigned copy = l % CONFIG_T::sparse_copies;
                    s_sparse[h][t * CONFIG_T::sparse_lanes + l] =
                        head_dot<q_E, k_E, CONFIG_T>(q_sparse[copy][h][row], k_sparse[copy][h][col]);
                    VITCOD_COUNT(counter_sparse, CONFIG_T::head_dim);
                }
            }
        }
    }
}

// Process 4: row softmax and P x V of every head: the slot walk of softmax_pv (vitcod_attention.h),
// with V from the image buffer and the result into the output buffer.
template <class v_E, class res_E, typename CONFIG_T>
void stream_softmax_pv(
    const typename CONFIG_T::score_t s_dense[CONFIG_T::n_heads][CONFIG_T::n_tokens][CONFIG_T::n_global_max],
    const typename CONFIG_T::score_t s_sparse[CONFIG_T::n_heads][CONFIG_T::sparse_trips_max * CONFIG_T::sparse_lanes],
    const v_E v_buf[CONFIG_T::n_heads][CONFIG_T::n_tokens][CONFIG_T::head_dim],
    res_E out_buf[CONFIG_T::n_heads][CONFIG_T::n_tokens][CONFIG_T::head_dim]) {
    #pragma HLS INLINE off
    typedef typename CONFIG_T::score_t score_t;
    typedef typename CONFIG_T::exp_t exp_t;
    typedef typename CONFIG_T::sum_t sum_t;
    typedef typename CONFIG_T::inv_t inv_t;
    typedef typename CONFIG_T::accum_t accum_t;

    score_t row_max_buf[CONFIG_T::n_tokens];
    sum_t row_sum_buf[CONFIG_T::n_tokens];
    inv_t inv_buf[CONFIG_T::n_tokens];
    accum_t acc[CONFIG_T::head_dim];
    #pragma HLS ARRAY_PARTITION variable=acc complete

StreamSoftmaxHeads:
    for (unsigned h = 0; h < CONFIG_T::n_heads; h++) {
        const unsigned n_slots = CONFIG_T::n_slots(h);
        // 1. Row maximum over the kept scores.
        score_t row_max = 0;
        bool row_has_max = false;
    StreamSoftmaxMax:
        for (unsigned it = 0; it < n_slots; it++) {
            #pragma HLS PIPELINE II=1
            #pragma HLS LOOP_TRIPCOUNT min=CONFIG_T::slots_min max=CONFIG_T::slots_max avg=CONFIG_T::slots_avg
            const slot_fields f = unpack_slot<CONFIG_T>(CONFIG_T::slot(h, it));
            const score_t s = f.dense ? s_dense[h][f.row][f.index] : s_sparse[h][f.index];
            const score_t m = (!row_has_max || s > row_max) ? s : row_max;
            if (f.row_end) {
                row_max_buf[f.row] = m;
                row_has_max = false;
            } else {
                row_max = m;
                row_has_max = true;
            }
        }
        // 2. Table exp and the exact row sum.
        sum_t row_sum = 0;
    StreamSoftmaxExpSum:
        for (unsigned it = 0; it < n_slots; it++) {
            #pragma HLS PIPELINE II=1
            #pragma HLS LOOP_TRIPCOUNT min=CONFIG_T::slots_min max=CONFIG_T::slots_max avg=CONFIG_T::slots_avg
            const slot_fields f = unpack_slot<CONFIG_T>(CONFIG_T::slot(h, it));
            const score_t s = f.dense ? s_dense[h][f.row][f.index] : s_sparse[h][f.index];
            const sum_t total = row_sum + lookup_exp<CONFIG_T>(row_max_buf[f.row], s);
            if (f.row_end) {
                row_sum_buf[f.row] = total;
                row_sum = 0;
            } else {
                row_sum = total;
            }
        }
        // 3. One reciprocal per row.
    StreamSoftmaxRecip:
        for (unsigned i = 0; i < CONFIG_T::n_tokens; i++) {
            #pragma HLS PIPELINE II=1
            inv_buf[i] = row_reciprocal<CONFIG_T>(row_sum_buf[i]);
        }
        // 4. p = e * inv and P x V, exact accumulation; the row is stored at its last kept entry.
    StreamPvInit:
        for (unsigned c = 0; c < CONFIG_T::head_dim; c++) {
            #pragma HLS UNROLL
            acc[c] = 0;
        }
    StreamSoftmaxPv:
        for (unsigned it = 0; it < n_slots; it++) {
            #pragma HLS PIPELINE II=1
            #pragma HLS LOOP_TRIPCOUNT min=CONFIG_T::slots_min max=CONFIG_T::slots_max avg=CONFIG_T::slots_avg
            const slot_fields f = unpack_slot<CONFIG_T>(CONFIG_T::slot(h, it));
            const score_t s = f.dense ? s_dense[h][f.row][f.index] : s_sparse[h][f.index];
            const exp_t e = lookup_exp<CONFIG_T>(row_max_buf[f.row], s);
            const typename CONFIG_T::prob_t p = probability<CONFIG_T>(e, inv_buf[f.row]);
            VITCOD_COUNT(counter_softmax, 1);
        StreamPvChannels:
            for (unsigned c = 0; c < CONFIG_T::head_dim; c++) {
                const accum_t total = acc[c] + p * v_buf[h][f.key][c];
                if (f.row_end) {
                    out_buf[h][f.row][c] = (res_E)total;
                    acc[c] = 0;
                } else {
                    acc[c] = total;
                }
            }
            VITCOD_COUNT(counter_pv, CONFIG_T::head_dim);
        }
    }
}

// Process 5: one output token (every head's D channels) per cycle.
template <class res_T, typename CONFIG_T>
void stream_write(const typename res_T::value_type out_buf[CONFIG_T::n_heads][CONFIG_T::n_tokens][CONFIG_T::head_dim],
                  hls::stream<res_T> &out) {
    #pragma HLS INLINE off
StreamWriteTokens:
    for (unsigned n = 0; n < CONFIG_T::n_tokens; n++) {
        #pragma HLS PIPELINE II=1
        res_T tok;
    StreamWriteHeads:
        for (unsigned h = 0; h < CONFIG_T::n_heads; h++) {
        StreamWriteChannels:
            for (unsigned c = 0; c < CONFIG_T::head_dim; c++) {
                tok[h * CONFIG_T::head_dim + c] = out_buf[h][n][c];
            }
        }
        out.write(tok);
    }
}

// The layer: N tokens of q, k, v in, N tokens out (hls4ml io_stream convention). Every buffer of
// the DATAFLOW region is declared here with its partitioning, so producer and consumer see the
// same banks: one memory per head (the loader writes a whole token per cycle), the D channels of a
// row RESHAPED into one wide word (every loop reads or writes whole rows: one access per row, and
// one memory of N x D*W bits instead of D narrow, mostly empty BRAMs), the global K rows and the
// dense scores cyclic by dense_unroll, the sparse scores cyclic by sparse_lanes.
template <class q_T, class k_T, class v_T, class res_T, typename CONFIG_T>
void attention_stream(hls::stream<q_T> &q, hls::stream<k_T> &k, hls::stream<v_T> &v, hls::stream<res_T> &out) {
    #pragma HLS DATAFLOW
    static_assert(q_T::size == CONFIG_T::embed_dim, "q token must hold n_heads * head_dim values");
    static_assert(k_T::size == CONFIG_T::embed_dim, "k token must hold n_heads * head_dim values");
    static_assert(v_T::size == CONFIG_T::embed_dim, "v token must hold n_heads * head_dim values");
    static_assert(res_T::size == CONFIG_T::embed_dim, "result token must hold n_heads * head_dim values");
    typedef typename q_T::value_type q_E;
    typedef typename k_T::value_type k_E;
    typedef typename v_T::value_type v_E;
    typedef typename res_T::value_type res_E;
    typedef typename CONFIG_T::score_t score_t;

    q_E q_dense[CONFIG_T::n_heads][CONFIG_T::n_tokens][CONFIG_T::head_dim];
    #pragma HLS ARRAY_PARTITION variable=q_dense complete dim=1
    #pragma HLS ARRAY_RESHAPE variable=q_dense complete dim=3
    k_E k_global[CONFIG_T::n_heads][CONFIG_T::n_global_max][CONFIG_T::head_dim];
    #pragma HLS ARRAY_PARTITION variable=k_global complete dim=1
    #pragma HLS ARRAY_PARTITION variable=k_global cyclic factor=CONFIG_T::dense_unroll dim=2
    #pragma HLS ARRAY_RESHAPE variable=k_global complete dim=3
    q_E q_sparse[CONFIG_T::sparse_copies][CONFIG_T::n_heads][CONFIG_T::n_tokens][CONFIG_T::head_dim];
    #pragma HLS ARRAY_PARTITION variable=q_sparse complete dim=1
    #pragma HLS ARRAY_PARTITION variable=q_sparse complete dim=2
    #pragma HLS ARRAY_RESHAPE variable=q_sparse complete dim=4
    k_E k_sparse[CONFIG_T::sparse_copies][CONFIG_T::n_heads][CONFIG_T::n_tokens][CONFIG_T::head_dim];
    #pragma HLS ARRAY_PARTITION variable=k_sparse complete dim=1
    #pragma HLS ARRAY_PARTITION variable=k_sparse complete dim=2
    #pragma HLS ARRAY_RESHAPE variable=k_sparse complete dim=4
    v_E v_buf[CONFIG_T::n_heads][CONFIG_T::n_tokens][CONFIG_T::head_dim];
    #pragma HLS ARRAY_PARTITION variable=v_buf complete dim=1
    #pragma HLS ARRAY_RESHAPE variable=v_buf complete dim=3
    score_t s_dense[CONFIG_T::n_heads][CONFIG_T::n_tokens][CONFIG_T::n_global_max];
    #pragma HLS ARRAY_PARTITION variable=s_dense cyclic factor=CONFIG_T::dense_unroll dim=3
    score_t s_sparse[CONFIG_T::n_heads][CONFIG_T::sparse_trips_max * CONFIG_T::sparse_lanes];
    #pragma HLS ARRAY_PARTITION variable=s_sparse cyclic factor=CONFIG_T::sparse_lanes dim=2
    res_E out_buf[CONFIG_T::n_heads][CONFIG_T::n_tokens][CONFIG_T::head_dim];
    #pragma HLS ARRAY_PARTITION variable=out_buf complete dim=1
    #pragma HLS ARRAY_RESHAPE variable=out_buf complete dim=3

    stream_load<q_T, k_T, v_T, CONFIG_T>(q, k, v, q_dense, k_global, q_sparse, k_sparse, v_buf);
    stream_dense<q_E, k_E, CONFIG_T>(q_dense, k_global, s_dense);
    stream_sparse<q_E, k_E, CONFIG_T>(q_sparse, k_sparse, s_sparse);
    stream_softmax_pv<v_E, res_E, CONFIG_T>(s_dense, s_sparse, v_buf, out_buf);
    stream_write<res_T, CONFIG_T>(out_buf, out);
}

} // namespace vitcod

#endif
