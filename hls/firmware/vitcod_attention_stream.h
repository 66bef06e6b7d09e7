#ifndef VITCOD_ATTENTION_STREAM_H_
#define VITCOD_ATTENTION_STREAM_H_

// ViTCoD fixed-mask sparse attention, io_stream: the same layer as vitcod_attention.h (same
// arithmetic, same generated tables, bit for bit the same output), fed and drained as hls4ml token
// streams: hls::stream<nnet::array<T, heads * head_dim>>, one element per token, tokens in order.
//
// One image is one pass through a DATAFLOW region; every buffer between its processes has exactly
// one producer and one consumer (ping-pong memories, so image b+1 loads while image b is scored):
//
//   StreamLoad      H * N iterations, II 1, one head row each (a token is read at its first head):
//                   keeps K and V of the whole image ([H][N][D], the heads stacked in depth: one
//                   memory per buffer, see stream_region), q for the dense engine, q/k copies for
//                   the sparse lanes, and GATHERS the global-token K rows of every head as they
//                   pass (head h's global_slot ROM, read at the loop counters, says whether token n
//                   is its global column g).
//   StreamDense  || StreamSparse   side by side: the dense engine scores every query row against
//                   the head's G_h gathered global rows (dense_unroll columns per cycle); the sparse
//                   engine scores the CSR non-zeros, sparse_lanes per cycle, lane l reading its own
//                   ROM bank (sparse_rc_lane(l, .), the lane-interleaved table of attention_tables)
//                   and q/k copy l % sparse_copies (<= 2 lanes per copy: the memory's two ports).
//   one lane (softmax_lanes = pv_lanes = 1, the generated config has no lane members):
//   StreamSoftmaxPv per head, the slot walks of vitcod_attention.h: row max, table exp + exact
//                   row sum, one reciprocal per row, p = e * inv and P x V (same helper functions).
//   lanes (either above 1): the same walks in two processes, so that their times overlap:
//   StreamSoftmax   per head: row max and exp-sum walks, softmax_lanes entries per cycle, 1/sum at
//                   each row end -> row max and 1/sum of every row ([H][N], to StreamPv)
//   StreamPv        per head: the P x V walk, pv_lanes entries per cycle (exp again, p = e * inv)
//   StreamWrite     H * N iterations, II 1: one head row per cycle, a token out after its last head.
//
// Lanes. A walk takes a group of L kept entries of ONE query row per iteration (L = softmax_lanes
// for the row max and exp-sum walks, pv_lanes for P x V), from a generated lane walk table
// (vitcod.hls.engines.attention_lanes: one ROM per lane, read at the loop counter; a group never
// spans two rows, padding lanes are not valid). Per iteration the lanes' values are reduced first
// (max / sum of exp / per-channel sum of p * v over the valid lanes) and then combined with the ONE
// running row state, so the loop-carried path stays one compare or one add, and the row buffers
// are read once per iteration. Ports (2 per memory): the softmax process reads score copy
// l % softmax_copies and exp ROM copy l % softmax_copies, the P x V process its own score, exp and
// V copies l % pv_copies: at most 2 lanes per copy. The q.k engines write every score copy.
// Bit-exactness of the lane split: max is exact in any order; sum_t and accum_t are EXACT
// accumulators (vitcod.hls.engines.attention_config: all fraction bits, integer bits for the whole
// row), and every partial sum a lane split forms is the sum over a SUBSET of the row's entries -
// exp values >= 0, and products p * v with p >= 0, so a subset sum lies in [0, row sum] (resp. in
// [sum(p) * min(v, 0), sum(p) * max(v, 0)], inside the row's bound) and is represented exactly: no
// partial sum rounds or overflows, and the result has the same bits whatever the order.
//
// The arithmetic helpers (head_dot, row_reciprocal, probability, unpack_slot, the exp index of
// lookup_exp) are the io_parallel engine's, so both implementations round identically; the tests
// compare both with each other and with the golden model (vitcod.hls.golden).

// vitcod_attention.h first: ap_fixed.h / ap_int.h, which nnet_types.h uses. In an hls4ml project
// this header sits in firmware/nnet_utils/ (vitcod.hls.extension registers it as a source), next
// to nnet_types.h; the engine C-simulation (vitcod.hls.engine_csim) puts hls4ml's nnet_utils on the
// include path.
#include "vitcod_attention.h"
#include "hls_stream.h"
#include "nnet_types.h"

namespace vitcod {

// ---- Lanes: the default (one lane per walk, the slot table) and the generated lane members ----

// A slot word plus its valid bit (lane walk tables; the one-lane walk sets it on every word).
struct walk_fields {
    slot_fields f;
    bool valid;
};

template <typename CONFIG_T, class walk_T> walk_fields unpack_walk(const walk_T w) {
    #pragma HLS INLINE
    walk_fields out;
    const typename CONFIG_T::slot_t word = w.range(CONFIG_T::slot_t::width - 1, 0);
    out.f = unpack_slot<CONFIG_T>(word);
    out.valid = w[CONFIG_T::slot_t::width];
    return out;
}

// One lane per walk: the slot table of vitcod_attention.h, one kept entry per iteration, one
// softmax + P x V process, one copy of every memory.
template <typename CONFIG_T> struct stream_single_lane {
    static const unsigned softmax_lanes = 1;
    static const unsigned pv_lanes = 1;
    static const unsigned softmax_copies = 1;
    static const unsigned pv_copies = 1;
    static const bool fused_reciprocal = false;
    static const unsigned softmax_trips_max = CONFIG_T::slots_max;
    static const unsigned softmax_trips_min = CONFIG_T::slots_min;
    static const unsigned softmax_trips_avg = CONFIG_T::slots_avg;
    static const unsigned pv_trips_max = CONFIG_T::slots_max;
    static const unsigned pv_trips_min = CONFIG_T::slots_min;
    static const unsigned pv_trips_avg = CONFIG_T::slots_avg;
    typedef ap_uint<CONFIG_T::slot_t::width + 1> walk_t;
    static unsigned softmax_trips(unsigned h) { return CONFIG_T::n_slots(h); }
    static unsigned pv_trips(unsigned h) { return CONFIG_T::n_slots(h); }
    static walk_t softmax_walk(unsigned /*l*/, unsigned h, unsigned t) { return with_valid(CONFIG_T::slot(h, t)); }
    static walk_t pv_walk(unsigned /*l*/, unsigned h, unsigned t) { return with_valid(CONFIG_T::slot(h, t)); }
    static typename CONFIG_T::exp_t exp_rom(unsigned /*c*/, unsigned index) { return CONFIG_T::exp_table(index); }

  private:
    static walk_t with_valid(const typename CONFIG_T::slot_t s) {
        walk_t w = s;
        w[CONFIG_T::slot_t::width] = 1;
        return w;
    }
};

template <typename T> struct lanes_void { typedef void type; };

// The lane members of a config: its own when the generator emitted them (typedef lanes_tag), else
// one lane per walk. The call keeps its form either way.
template <typename CONFIG_T, typename = void> struct stream_lanes { typedef stream_single_lane<CONFIG_T> type; };
template <typename CONFIG_T> struct stream_lanes<CONFIG_T, typename lanes_void<typename CONFIG_T::lanes_tag>::type> {
    typedef CONFIG_T type;
};

// exp(-scale * (row_max - s)) from exp ROM copy c: the index of lookup_exp (vitcod_attention.h).
template <typename CONFIG_T, typename LANES_T>
typename CONFIG_T::exp_t lane_exp(const unsigned c, const typename CONFIG_T::score_t row_max,
                                  const typename CONFIG_T::score_t s) {
    #pragma HLS INLINE
    typename CONFIG_T::exp_index_t index = row_max - s;
    return LANES_T::exp_rom(c, index.range(CONFIG_T::exp_index_t::width - 1, 0).to_uint());
}

// Process 1: read the three token streams into the per-engine buffers (V once per copy the P x V
// walk reads). Every buffer holds all heads STACKED in depth (head h's rows at h * N + n of one
// memory), so the loader writes ONE head row per iteration: H * N iterations (a perfect nest that
// HLS flattens), the three tokens read when a token's first head comes up and held in registers.
template <class q_T, class k_T, class v_T, typename CONFIG_T, unsigned VC>
void stream_load(hls::stream<q_T> &q, hls::stream<k_T> &k, hls::stream<v_T> &v,
                 typename q_T::value_type q_dense[CONFIG_T::n_heads][CONFIG_T::n_tokens][CONFIG_T::head_dim],
                 typename k_T::value_type k_global[CONFIG_T::n_heads][CONFIG_T::n_global_max][CONFIG_T::head_dim],
                 typename q_T::value_type
                     q_sparse[CONFIG_T::sparse_copies][CONFIG_T::n_heads][CONFIG_T::n_tokens][CONFIG_T::head_dim],
                 typename k_T::value_type
                     k_sparse[CONFIG_T::sparse_copies][CONFIG_T::n_heads][CONFIG_T::n_tokens][CONFIG_T::head_dim],
                 typename v_T::value_type v_buf[VC][CONFIG_T::n_heads][CONFIG_T::n_tokens][CONFIG_T::head_dim]) {
    #pragma HLS INLINE off
    // the token being distributed, held in registers (complete partition, as hls4ml's stream
    // kernels hold a token): head h's D values are an H:1 register multiplexer, never a memory read
    typename q_T::value_type q_tok[CONFIG_T::embed_dim];
    #pragma HLS ARRAY_PARTITION variable=q_tok complete
    typename k_T::value_type k_tok[CONFIG_T::embed_dim];
    #pragma HLS ARRAY_PARTITION variable=k_tok complete
    typename v_T::value_type v_tok[CONFIG_T::embed_dim];
    #pragma HLS ARRAY_PARTITION variable=v_tok complete
StreamLoadTokens:
    for (unsigned n = 0; n < CONFIG_T::n_tokens; n++) {
    StreamLoadHeads:
        for (unsigned h = 0; h < CONFIG_T::n_heads; h++) {
            #pragma HLS PIPELINE II=1
            if (h == 0) {
                const q_T q_in = q.read();
                const k_T k_in = k.read();
                const v_T v_in = v.read();
            StreamLoadHold:
                for (unsigned e = 0; e < CONFIG_T::embed_dim; e++) {
                    q_tok[e] = q_in[e];
                    k_tok[e] = k_in[e];
                    v_tok[e] = v_in[e];
                }
            }
            // Head h's ROM, read at the loop counter: is token n a global column of head h, which g?
            typename CONFIG_T::global_slot_t gs = CONFIG_T::global_slot(h, n);
            const bool is_global = gs[CONFIG_T::global_index_bits];
            const unsigned g = gs.range(CONFIG_T::global_index_bits - 1, 0).to_uint();
        StreamLoadChannels:
            for (unsigned c = 0; c < CONFIG_T::head_dim; c++) {
                const unsigned e = h * CONFIG_T::head_dim + c;
                q_dense[h][n][c] = q_tok[e];
                if (is_global) k_global[h][g][c] = k_tok[e];
            StreamLoadCopies:
                for (unsigned p = 0; p < CONFIG_T::sparse_copies; p++) {
                    q_sparse[p][h][n][c] = q_tok[e];
                    k_sparse[p][h][n][c] = k_tok[e];
                }
            StreamLoadVCopies:
                for (unsigned p = 0; p < VC; p++) v_buf[p][h][n][c] = v_tok[e];
            }
        }
    }
}

// The DENSE engine over all heads (as dense_engine of vitcod_attention.h, per head): every score
// into the A copies and, with TWO, into the B copies (one set per walk process).
template <class q_E, class k_E, typename CONFIG_T, unsigned CA, unsigned CB, bool TWO>
void dense_scores(const q_E q_dense[CONFIG_T::n_heads][CONFIG_T::n_tokens][CONFIG_T::head_dim],
                  const k_E k_global[CONFIG_T::n_heads][CONFIG_T::n_global_max][CONFIG_T::head_dim],
                  typename CONFIG_T::score_t s_a[CA][CONFIG_T::n_heads][CONFIG_T::n_tokens][CONFIG_T::n_global_max],
                  typename CONFIG_T::score_t s_b[CB][CONFIG_T::n_heads][CONFIG_T::n_tokens][CONFIG_T::n_global_max]) {
    #pragma HLS INLINE
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
                    const typename CONFIG_T::score_t s = head_dot<q_E, k_E, CONFIG_T>(q_dense[h][i], k_global[h][g]);
                StreamDenseCopies:
                    for (unsigned p = 0; p < CA; p++) s_a[p][h][i][g] = s;
                    if (TWO) {
                    StreamDenseCopiesB:
                        for (unsigned p = 0; p < CB; p++) s_b[p][h][i][g] = s;
                    }
                    VITCOD_COUNT(counter_dense, CONFIG_T::head_dim);
                }
            }
        }
    }
}

// Process 2 (one score set, one lane).
template <class q_E, class k_E, typename CONFIG_T, unsigned CA>
void stream_dense(const q_E q_dense[CONFIG_T::n_heads][CONFIG_T::n_tokens][CONFIG_T::head_dim],
                  const k_E k_global[CONFIG_T::n_heads][CONFIG_T::n_global_max][CONFIG_T::head_dim],
                  typename CONFIG_T::score_t s_a[CA][CONFIG_T::n_heads][CONFIG_T::n_tokens][CONFIG_T::n_global_max]) {
    #pragma HLS INLINE off
    dense_scores<q_E, k_E, CONFIG_T, CA, CA, false>(q_dense, k_global, s_a, s_a);
}

// Process 2 (two score sets: the softmax and the P x V processes of the lanes design).
template <class q_E, class k_E, typename CONFIG_T, unsigned CA, unsigned CB>
void stream_dense_split(
    const q_E q_dense[CONFIG_T::n_heads][CONFIG_T::n_tokens][CONFIG_T::head_dim],
    const k_E k_global[CONFIG_T::n_heads][CONFIG_T::n_global_max][CONFIG_T::head_dim],
    typename CONFIG_T::score_t s_a[CA][CONFIG_T::n_heads][CONFIG_T::n_tokens][CONFIG_T::n_global_max],
    typename CONFIG_T::score_t s_b[CB][CONFIG_T::n_heads][CONFIG_T::n_tokens][CONFIG_T::n_global_max]) {
    #pragma HLS INLINE off
    dense_scores<q_E, k_E, CONFIG_T, CA, CB, true>(q_dense, k_global, s_a, s_b);
}

// The SPARSE engine over all heads. Lane l of trip t takes head h's non-zero t * L + l from ROM
// bank l (word h * sparse_trips_max + t), its q/k rows from copy l % sparse_copies; every score
// into the A copies and, with TWO, into the B copies.
template <class q_E, class k_E, typename CONFIG_T, unsigned CA, unsigned CB, bool TWO>
void sparse_scores(
    const q_E q_sparse[CONFIG_T::sparse_copies][CONFIG_T::n_heads][CONFIG_T::n_tokens][CONFIG_T::head_dim],
    const k_E k_sparse[CONFIG_T::sparse_copies][CONFIG_T::n_heads][CONFIG_T::n_tokens][CONFIG_T::head_dim],
    typename CONFIG_T::score_t s_a[CA][CONFIG_T::n_heads][CONFIG_T::sparse_trips_max * CONFIG_T::sparse_lanes],
    typename CONFIG_T::score_t s_b[CB][CONFIG_T::n_heads][CONFIG_T::sparse_trips_max * CONFIG_T::sparse_lanes]) {
    #pragma HLS INLINE
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
                    const unsigned nz = t * CONFIG_T::sparse_lanes + l;
                    const typename CONFIG_T::score_t s =
                        head_dot<q_E, k_E, CONFIG_T>(q_sparse[copy][h][row], k_sparse[copy][h][col]);
                StreamSparseCopies:
                    for (unsigned p = 0; p < CA; p++) s_a[p][h][nz] = s;
                    if (TWO) {
                    StreamSparseCopiesB:
                        for (unsigned p = 0; p < CB; p++) s_b[p][h][nz] = s;
                    }
                    VITCOD_COUNT(counter_sparse, CONFIG_T::head_dim);
                }
            }
        }
    }
}

// Process 3 (one score set, one lane).
template <class q_E, class k_E, typename CONFIG_T, unsigned CA>
void stream_sparse(
    const q_E q_sparse[CONFIG_T::sparse_copies][CONFIG_T::n_heads][CONFIG_T::n_tokens][CONFIG_T::head_dim],
    const k_E k_sparse[CONFIG_T::sparse_copies][CONFIG_T::n_heads][CONFIG_T::n_tokens][CONFIG_T::head_dim],
    typename CONFIG_T::score_t s_a[CA][CONFIG_T::n_heads][CONFIG_T::sparse_trips_max * CONFIG_T::sparse_lanes]) {
    #pragma HLS INLINE off
    sparse_scores<q_E, k_E, CONFIG_T, CA, CA, false>(q_sparse, k_sparse, s_a, s_a);
}

// Process 3 (two score sets: the lanes design).
template <class q_E, class k_E, typename CONFIG_T, unsigned CA, unsigned CB>
void stream_sparse_split(
    const q_E q_sparse[CONFIG_T::sparse_copies][CONFIG_T::n_heads][CONFIG_T::n_tokens][CONFIG_T::head_dim],
    const k_E k_sparse[CONFIG_T::sparse_copies][CONFIG_T::n_heads][CONFIG_T::n_tokens][CONFIG_T::head_dim],
    typename CONFIG_T::score_t s_a[CA][CONFIG_T::n_heads][CONFIG_T::sparse_trips_max * CONFIG_T::sparse_lanes],
    typename CONFIG_T::score_t s_b[CB][CONFIG_T::n_heads][CONFIG_T::sparse_trips_max * CONFIG_T::sparse_lanes]) {
    #pragma HLS INLINE off
    sparse_scores<q_E, k_E, CONFIG_T, CA, CB, true>(q_sparse, k_sparse, s_a, s_b);
}

// ---- The walks of one head (inlined into the softmax / P x V processes) ----------------------

// 1. Row maximum over the kept scores: the group's maximum, then the running one; stored at the
// row end into row_max_buf and, with OUT (the lanes design), into row_max_out for the P x V process.
template <typename CONFIG_T, typename LANES_T, unsigned SC, bool OUT>
void walk_max(const unsigned h,
              const typename CONFIG_T::score_t
                  s_dense[SC][CONFIG_T::n_heads][CONFIG_T::n_tokens][CONFIG_T::n_global_max],
              const typename CONFIG_T::score_t
                  s_sparse[SC][CONFIG_T::n_heads][CONFIG_T::sparse_trips_max * CONFIG_T::sparse_lanes],
              typename CONFIG_T::score_t row_max_buf[CONFIG_T::n_tokens],
              typename CONFIG_T::score_t row_max_out[CONFIG_T::n_tokens]) {
    #pragma HLS INLINE
    typedef typename CONFIG_T::score_t score_t;
    const unsigned trips = LANES_T::softmax_trips(h);
    score_t row_max = 0;
    bool row_has_max = false;
StreamSoftmaxMax:
    for (unsigned t = 0; t < trips; t++) {
        #pragma HLS PIPELINE II=1
        #pragma HLS LOOP_TRIPCOUNT min=LANES_T::softmax_trips_min max=LANES_T::softmax_trips_max avg=LANES_T::softmax_trips_avg
        score_t group_max = 0;
        unsigned row = 0;
        bool row_end = false;
    StreamSoftmaxMaxLanes:
        for (unsigned l = 0; l < LANES_T::softmax_lanes; l++) {
            const walk_fields w = unpack_walk<CONFIG_T>(LANES_T::softmax_walk(l, h, t));
            const unsigned copy = l % SC;
            const score_t s = w.f.dense ? s_dense[copy][h][w.f.row][w.f.index] : s_sparse[copy][h][w.f.index];
            if (l == 0) { // lane 0 is always valid and carries the group's row
                group_max = s;
                row = w.f.row;
                row_end = w.f.row_end;
            } else if (w.valid && s > group_max) {
                group_max = s;
            }
        }
        const score_t m = (!row_has_max || group_max > row_max) ? group_max : row_max;
        if (row_end) {
            row_max_buf[row] = m;
            if (OUT) row_max_out[row] = m;
            row_has_max = false;
        } else {
            row_max = m;
            row_has_max = true;
        }
    }
}

// 2. Table exp and the exact row sum (the group's exact sum, then the running one); with
// fused_reciprocal the row's 1/sum at its row end (a pipelined divider: one row per cycle at most).
template <typename CONFIG_T, typename LANES_T, unsigned SC>
void walk_exp_sum(const unsigned h,
                  const typename CONFIG_T::score_t
                      s_dense[SC][CONFIG_T::n_heads][CONFIG_T::n_tokens][CONFIG_T::n_global_max],
                  const typename CONFIG_T::score_t
                      s_sparse[SC][CONFIG_T::n_heads][CONFIG_T::sparse_trips_max * CONFIG_T::sparse_lanes],
                  const typename CONFIG_T::score_t row_max_buf[CONFIG_T::n_tokens],
                  typename CONFIG_T::sum_t row_sum_buf[CONFIG_T::n_tokens],
                  typename CONFIG_T::inv_t inv_buf[CONFIG_T::n_tokens]) {
    #pragma HLS INLINE
    typedef typename CONFIG_T::score_t score_t;
    typedef typename CONFIG_T::sum_t sum_t;
    static const unsigned SL = LANES_T::softmax_lanes;
    const unsigned trips = LANES_T::softmax_trips(h);
    sum_t row_sum = 0;
StreamSoftmaxExpSum:
    for (unsigned t = 0; t < trips; t++) {
        #pragma HLS PIPELINE II=1
        #pragma HLS LOOP_TRIPCOUNT min=LANES_T::softmax_trips_min max=LANES_T::softmax_trips_max avg=LANES_T::softmax_trips_avg
        walk_fields w[SL];
        #pragma HLS ARRAY_PARTITION variable=w complete
    StreamSoftmaxExpSumWords:
        for (unsigned l = 0; l < SL; l++) w[l] = unpack_walk<CONFIG_T>(LANES_T::softmax_walk(l, h, t));
        const unsigned row = w[0].f.row;
        const score_t mx = row_max_buf[row];
        sum_t group_sum = 0;
    StreamSoftmaxExpSumLanes:
        for (unsigned l = 0; l < SL; l++) {
            const unsigned copy = l % SC;
            const score_t s = w[l].f.dense ? s_dense[copy][h][row][w[l].f.index] : s_sparse[copy][h][w[l].f.index];
            if (w[l].valid) group_sum += lane_exp<CONFIG_T, LANES_T>(copy, mx, s);
        }
        const sum_t total = row_sum + group_sum;
        if (w[0].f.row_end) {
            row_sum_buf[row] = total;
            if (LANES_T::fused_reciprocal) inv_buf[row] = row_reciprocal<CONFIG_T>(total);
            row_sum = 0;
        } else {
            row_sum = total;
        }
    }
    // 3. Without fused_reciprocal: one reciprocal per row, a loop of its own.
    if (!LANES_T::fused_reciprocal) {
    StreamSoftmaxRecip:
        for (unsigned i = 0; i < CONFIG_T::n_tokens; i++) {
            #pragma HLS PIPELINE II=1
            inv_buf[i] = row_reciprocal<CONFIG_T>(row_sum_buf[i]);
        }
    }
}

// 4. p = e * inv and P x V, exact accumulation: the group's per-channel sum, then the running one;
// the row is stored at its last group. Lane l reads score / V copy l % PC and exp ROM copy
// EXP0 + l % PC.
template <class v_E, class res_E, typename CONFIG_T, typename LANES_T, unsigned PC, unsigned EXP0>
void walk_pv(const unsigned h,
             const typename CONFIG_T::score_t
                 s_dense[PC][CONFIG_T::n_heads][CONFIG_T::n_tokens][CONFIG_T::n_global_max],
             const typename CONFIG_T::score_t
                 s_sparse[PC][CONFIG_T::n_heads][CONFIG_T::sparse_trips_max * CONFIG_T::sparse_lanes],
             const typename CONFIG_T::score_t row_max_buf[CONFIG_T::n_tokens],
             const typename CONFIG_T::inv_t inv_buf[CONFIG_T::n_tokens],
             const v_E v_buf[PC][CONFIG_T::n_heads][CONFIG_T::n_tokens][CONFIG_T::head_dim],
             res_E out_buf[CONFIG_T::n_heads][CONFIG_T::n_tokens][CONFIG_T::head_dim]) {
    #pragma HLS INLINE
    typedef typename CONFIG_T::score_t score_t;
    typedef typename CONFIG_T::accum_t accum_t;
    static const unsigned PL = LANES_T::pv_lanes;
    const unsigned trips = LANES_T::pv_trips(h);
    accum_t acc[CONFIG_T::head_dim];
    #pragma HLS ARRAY_PARTITION variable=acc complete
StreamPvInit:
    for (unsigned c = 0; c < CONFIG_T::head_dim; c++) {
        #pragma HLS UNROLL
        acc[c] = 0;
    }
StreamSoftmaxPv:
    for (unsigned t = 0; t < trips; t++) {
        #pragma HLS PIPELINE II=1
        #pragma HLS LOOP_TRIPCOUNT min=LANES_T::pv_trips_min max=LANES_T::pv_trips_max avg=LANES_T::pv_trips_avg
        walk_fields w[PL];
        #pragma HLS ARRAY_PARTITION variable=w complete
    StreamSoftmaxPvWords:
        for (unsigned l = 0; l < PL; l++) w[l] = unpack_walk<CONFIG_T>(LANES_T::pv_walk(l, h, t));
        const unsigned row = w[0].f.row;
        const score_t mx = row_max_buf[row];
        const typename CONFIG_T::inv_t inv = inv_buf[row];
        accum_t group[CONFIG_T::head_dim];
        #pragma HLS ARRAY_PARTITION variable=group complete
    StreamPvGroupInit:
        for (unsigned c = 0; c < CONFIG_T::head_dim; c++) group[c] = 0;
    StreamSoftmaxPvLanes:
        for (unsigned l = 0; l < PL; l++) {
            if (w[l].valid) {
                const unsigned copy = l % PC;
                const score_t s = w[l].f.dense ? s_dense[copy][h][row][w[l].f.index] : s_sparse[copy][h][w[l].f.index];
                const typename CONFIG_T::exp_t e = lane_exp<CONFIG_T, LANES_T>(EXP0 + copy, mx, s);
                const typename CONFIG_T::prob_t p = probability<CONFIG_T>(e, inv);
                VITCOD_COUNT(counter_softmax, 1);
            StreamPvChannels:
                for (unsigned c = 0; c < CONFIG_T::head_dim; c++) group[c] += p * v_buf[copy][h][w[l].f.key][c];
                VITCOD_COUNT(counter_pv, CONFIG_T::head_dim);
            }
        }
    StreamPvRow:
        for (unsigned c = 0; c < CONFIG_T::head_dim; c++) {
            const accum_t total = acc[c] + group[c];
            if (w[0].f.row_end) {
                out_buf[h][row][c] = (res_E)total;
                acc[c] = 0;
            } else {
                acc[c] = total;
            }
        }
    }
}

// Process 4 (one lane): row softmax and P x V of every head, the walks one after the other.
template <class v_E, class res_E, typename CONFIG_T, typename LANES_T>
void stream_softmax_pv(
    const typename CONFIG_T::score_t s_dense[1][CONFIG_T::n_heads][CONFIG_T::n_tokens][CONFIG_T::n_global_max],
    const typename CONFIG_T::score_t
        s_sparse[1][CONFIG_T::n_heads][CONFIG_T::sparse_trips_max * CONFIG_T::sparse_lanes],
    const v_E v_buf[1][CONFIG_T::n_heads][CONFIG_T::n_tokens][CONFIG_T::head_dim],
    res_E out_buf[CONFIG_T::n_heads][CONFIG_T::n_tokens][CONFIG_T::head_dim]) {
    #pragma HLS INLINE off
    typename CONFIG_T::score_t row_max_buf[CONFIG_T::n_tokens];
    typename CONFIG_T::sum_t row_sum_buf[CONFIG_T::n_tokens];
    typename CONFIG_T::inv_t inv_buf[CONFIG_T::n_tokens];
StreamSoftmaxHeads:
    for (unsigned h = 0; h < CONFIG_T::n_heads; h++) {
        walk_max<CONFIG_T, LANES_T, 1, false>(h, s_dense, s_sparse, row_max_buf, row_max_buf);
        walk_exp_sum<CONFIG_T, LANES_T, 1>(h, s_dense, s_sparse, row_max_buf, row_sum_buf, inv_buf);
        walk_pv<v_E, res_E, CONFIG_T, LANES_T, 1, 0>(h, s_dense, s_sparse, row_max_buf, inv_buf, v_buf, out_buf);
    }
}

// Process 4 (lanes): row max and exp-sum walks of every head -> row max and 1/sum per row.
template <typename CONFIG_T, typename LANES_T>
void stream_softmax(
    const typename CONFIG_T::score_t
        s_dense[LANES_T::softmax_copies][CONFIG_T::n_heads][CONFIG_T::n_tokens][CONFIG_T::n_global_max],
    const typename CONFIG_T::score_t
        s_sparse[LANES_T::softmax_copies][CONFIG_T::n_heads][CONFIG_T::sparse_trips_max * CONFIG_T::sparse_lanes],
    typename CONFIG_T::score_t row_max_out[CONFIG_T::n_heads][CONFIG_T::n_tokens],
    typename CONFIG_T::inv_t inv_out[CONFIG_T::n_heads][CONFIG_T::n_tokens]) {
    #pragma HLS INLINE off
    typename CONFIG_T::score_t row_max_buf[CONFIG_T::n_tokens];
    typename CONFIG_T::sum_t row_sum_buf[CONFIG_T::n_tokens];
StreamSoftmaxHeads:
    for (unsigned h = 0; h < CONFIG_T::n_heads; h++) {
        walk_max<CONFIG_T, LANES_T, LANES_T::softmax_copies, true>(h, s_dense, s_sparse, row_max_buf, row_max_out[h]);
        walk_exp_sum<CONFIG_T, LANES_T, LANES_T::softmax_copies>(h, s_dense, s_sparse, row_max_buf, row_sum_buf,
                                                                   inv_out[h]);
    }
}

// Process 5 (lanes): the P x V walk of every head, from the row max and 1/sum of process 4.
template <class v_E, class res_E, typename CONFIG_T, typename LANES_T>
void stream_pv(
    const typename CONFIG_T::score_t
        s_dense[LANES_T::pv_copies][CONFIG_T::n_heads][CONFIG_T::n_tokens][CONFIG_T::n_global_max],
    const typename CONFIG_T::score_t
        s_sparse[LANES_T::pv_copies][CONFIG_T::n_heads][CONFIG_T::sparse_trips_max * CONFIG_T::sparse_lanes],
    const typename CONFIG_T::score_t row_max_in[CONFIG_T::n_heads][CONFIG_T::n_tokens],
    const typename CONFIG_T::inv_t inv_in[CONFIG_T::n_heads][CONFIG_T::n_tokens],
    const v_E v_buf[LANES_T::pv_copies][CONFIG_T::n_heads][CONFIG_T::n_tokens][CONFIG_T::head_dim],
    res_E out_buf[CONFIG_T::n_heads][CONFIG_T::n_tokens][CONFIG_T::head_dim]) {
    #pragma HLS INLINE off
StreamPvHeads:
    for (unsigned h = 0; h < CONFIG_T::n_heads; h++) {
        walk_pv<v_E, res_E, CONFIG_T, LANES_T, LANES_T::pv_copies, LANES_T::softmax_copies>(
            h, s_dense, s_sparse, row_max_in[h], inv_in[h], v_buf, out_buf);
    }
}

// Last process: one head row of out_buf per iteration (the heads are stacked in one memory),
// H * N iterations; the token is written when its last head is in.
template <class res_T, typename CONFIG_T>
void stream_write(const typename res_T::value_type out_buf[CONFIG_T::n_heads][CONFIG_T::n_tokens][CONFIG_T::head_dim],
                  hls::stream<res_T> &out) {
    #pragma HLS INLINE off
    // the token being assembled, in registers (complete partition): head h's row lands through
    // write enables, never a memory write
    typename res_T::value_type row[CONFIG_T::embed_dim];
    #pragma HLS ARRAY_PARTITION variable=row complete
StreamWriteTokens:
    for (unsigned n = 0; n < CONFIG_T::n_tokens; n++) {
    StreamWriteHeads:
        for (unsigned h = 0; h < CONFIG_T::n_heads; h++) {
            #pragma HLS PIPELINE II=1
        StreamWriteChannels:
            for (unsigned c = 0; c < CONFIG_T::head_dim; c++) {
                row[h * CONFIG_T::head_dim + c] = out_buf[h][n][c];
            }
            if (h == CONFIG_T::n_heads - 1) {
                res_T tok;
            StreamWritePack:
                for (unsigned e = 0; e < CONFIG_T::embed_dim; e++) tok[e] = row[e];
                out.write(tok);
            }
        }
    }
}

// Storage of the per-image buffers below: a project whose plan binds them includes
// vitcod_attention_buffers_<impl>.h (the q/k/v copies, the gathered global K rows, out_buf:
// VITCOD_ATTENTION_BUFFER_IMPL) and / or vitcod_attention_scores_<impl>.h (the score sets:
// VITCOD_ATTENTION_SCORE_IMPL) before this header, impl = bram, lutram or uram; without them the
// tool chooses (LUTRAM when small, else BRAM). The ROMs are never bound (URAM has no initial values).
#define VITCOD_PRAGMA_(x) _Pragma(#x)
#define VITCOD_PRAGMA(x) VITCOD_PRAGMA_(x)
#ifdef VITCOD_ATTENTION_BUFFER_IMPL
#define VITCOD_BIND_BUFFER(var) VITCOD_PRAGMA(HLS BIND_STORAGE variable=var type=ram_2p impl=VITCOD_ATTENTION_BUFFER_IMPL)
#else
#define VITCOD_BIND_BUFFER(var)
#endif
#ifdef VITCOD_ATTENTION_SCORE_IMPL
#define VITCOD_BIND_SCORES(var) VITCOD_PRAGMA(HLS BIND_STORAGE variable=var type=ram_2p impl=VITCOD_ATTENTION_SCORE_IMPL)
#else
#define VITCOD_BIND_SCORES(var)
#endif

// The DATAFLOW region's buffers and processes (inlined into attention_stream). Every buffer is
// declared here with its partitioning, so producer and consumer see the same banks. The heads are
// STACKED in depth: with CONFIG_T::token_head_banks / global_head_banks = 1 (cyclic factor 1: the
// head dimension not partitioned) each buffer (each copy, each cyclic bank) is ONE memory of
// H x rows words (head h at h * rows + r, HLS linearizes [h][r]): no loop touches two heads of one
// buffer in the same iteration (the loader and the writer take one head row per iteration, the
// engines and walks one head at a time), and one memory of H * N rows costs
// ceil(H * N / 512) x ceil(D * W / 36) BRAM18K where H memories of N rows cost H x ceil(D * W / 36)
// (vitcod.hls.perf.attention_stream). The generator sets a factor to n_heads (one memory per
// head) only where that is cheaper: each head's memory small enough for LUTRAM, the stacked one
// not (vitcod.hls.engines.attention_stream.head_banks). The D channels of a row are RESHAPED
// into one wide word (every loop reads or writes whole rows: one access per row), the global K
// rows and the dense scores cyclic by dense_unroll, the sparse scores cyclic by sparse_lanes,
// each copy (dim 1) a memory of its own.
// Lanes design (primary template): two score sets (softmax_copies + pv_copies), pv_copies of V,
// row max and 1/sum passed from StreamSoftmax to StreamPv.
template <class q_T, class k_T, class v_T, class res_T, typename CONFIG_T, typename LANES_T>
struct stream_region {
    typedef typename q_T::value_type q_E;
    typedef typename k_T::value_type k_E;
    typedef typename v_T::value_type v_E;
    typedef typename res_T::value_type res_E;
    typedef typename CONFIG_T::score_t score_t;
    static const unsigned SC = LANES_T::softmax_copies;
    static const unsigned PC = LANES_T::pv_copies;

    static void run(hls::stream<q_T> &q, hls::stream<k_T> &k, hls::stream<v_T> &v, hls::stream<res_T> &out) {
        #pragma HLS INLINE
        q_E q_dense[CONFIG_T::n_heads][CONFIG_T::n_tokens][CONFIG_T::head_dim];
        #pragma HLS ARRAY_PARTITION variable=q_dense cyclic factor=CONFIG_T::token_head_banks dim=1
        #pragma HLS ARRAY_RESHAPE variable=q_dense complete dim=3
        VITCOD_BIND_BUFFER(q_dense)
        k_E k_global[CONFIG_T::n_heads][CONFIG_T::n_global_max][CONFIG_T::head_dim];
        #pragma HLS ARRAY_PARTITION variable=k_global cyclic factor=CONFIG_T::global_head_banks dim=1
        #pragma HLS ARRAY_PARTITION variable=k_global cyclic factor=CONFIG_T::dense_unroll dim=2
        #pragma HLS ARRAY_RESHAPE variable=k_global complete dim=3
        VITCOD_BIND_BUFFER(k_global)
        q_E q_sparse[CONFIG_T::sparse_copies][CONFIG_T::n_heads][CONFIG_T::n_tokens][CONFIG_T::head_dim];
        #pragma HLS ARRAY_PARTITION variable=q_sparse cyclic factor=CONFIG_T::token_head_banks dim=2
        #pragma HLS ARRAY_PARTITION variable=q_sparse complete dim=1
        #pragma HLS ARRAY_RESHAPE variable=q_sparse complete dim=4
        VITCOD_BIND_BUFFER(q_sparse)
        k_E k_sparse[CONFIG_T::sparse_copies][CONFIG_T::n_heads][CONFIG_T::n_tokens][CONFIG_T::head_dim];
        #pragma HLS ARRAY_PARTITION variable=k_sparse cyclic factor=CONFIG_T::token_head_banks dim=2
        #pragma HLS ARRAY_PARTITION variable=k_sparse complete dim=1
        #pragma HLS ARRAY_RESHAPE variable=k_sparse complete dim=4
        VITCOD_BIND_BUFFER(k_sparse)
        v_E v_buf[PC][CONFIG_T::n_heads][CONFIG_T::n_tokens][CONFIG_T::head_dim];
        #pragma HLS ARRAY_PARTITION variable=v_buf cyclic factor=CONFIG_T::token_head_banks dim=2
        #pragma HLS ARRAY_PARTITION variable=v_buf complete dim=1
        #pragma HLS ARRAY_RESHAPE variable=v_buf complete dim=4
        VITCOD_BIND_BUFFER(v_buf)
        score_t s_dense_sm[SC][CONFIG_T::n_heads][CONFIG_T::n_tokens][CONFIG_T::n_global_max];
        #pragma HLS ARRAY_PARTITION variable=s_dense_sm complete dim=1
        #pragma HLS ARRAY_PARTITION variable=s_dense_sm cyclic factor=CONFIG_T::dense_unroll dim=4
        VITCOD_BIND_SCORES(s_dense_sm)
        score_t s_dense_pv[PC][CONFIG_T::n_heads][CONFIG_T::n_tokens][CONFIG_T::n_global_max];
        #pragma HLS ARRAY_PARTITION variable=s_dense_pv complete dim=1
        #pragma HLS ARRAY_PARTITION variable=s_dense_pv cyclic factor=CONFIG_T::dense_unroll dim=4
        VITCOD_BIND_SCORES(s_dense_pv)
        score_t s_sparse_sm[SC][CONFIG_T::n_heads][CONFIG_T::sparse_trips_max * CONFIG_T::sparse_lanes];
        #pragma HLS ARRAY_PARTITION variable=s_sparse_sm complete dim=1
        #pragma HLS ARRAY_PARTITION variable=s_sparse_sm cyclic factor=CONFIG_T::sparse_lanes dim=3
        VITCOD_BIND_SCORES(s_sparse_sm)
        score_t s_sparse_pv[PC][CONFIG_T::n_heads][CONFIG_T::sparse_trips_max * CONFIG_T::sparse_lanes];
        #pragma HLS ARRAY_PARTITION variable=s_sparse_pv complete dim=1
        #pragma HLS ARRAY_PARTITION variable=s_sparse_pv cyclic factor=CONFIG_T::sparse_lanes dim=3
        VITCOD_BIND_SCORES(s_sparse_pv)
        score_t row_max[CONFIG_T::n_heads][CONFIG_T::n_tokens];
        typename CONFIG_T::inv_t inv[CONFIG_T::n_heads][CONFIG_T::n_tokens];
        res_E out_buf[CONFIG_T::n_heads][CONFIG_T::n_tokens][CONFIG_T::head_dim];
        #pragma HLS ARRAY_PARTITION variable=out_buf cyclic factor=CONFIG_T::token_head_banks dim=1
        #pragma HLS ARRAY_RESHAPE variable=out_buf complete dim=3
        VITCOD_BIND_BUFFER(out_buf)

        stream_load<q_T, k_T, v_T, CONFIG_T, PC>(q, k, v, q_dense, k_global, q_sparse, k_sparse, v_buf);
        stream_dense_split<q_E, k_E, CONFIG_T, SC, PC>(q_dense, k_global, s_dense_sm, s_dense_pv);
        stream_sparse_split<q_E, k_E, CONFIG_T, SC, PC>(q_sparse, k_sparse, s_sparse_sm, s_sparse_pv);
        stream_softmax<CONFIG_T, LANES_T>(s_dense_sm, s_sparse_sm, row_max, inv);
        stream_pv<v_E, res_E, CONFIG_T, LANES_T>(s_dense_pv, s_sparse_pv, row_max, inv, v_buf, out_buf);
        stream_write<res_T, CONFIG_T>(out_buf, out);
    }
};

// One lane: one score set, one softmax + P x V process (the walks one after the other).
template <class q_T, class k_T, class v_T, class res_T, typename CONFIG_T>
struct stream_region<q_T, k_T, v_T, res_T, CONFIG_T, stream_single_lane<CONFIG_T> > {
    typedef stream_single_lane<CONFIG_T> LANES_T;
    typedef typename q_T::value_type q_E;
    typedef typename k_T::value_type k_E;
    typedef typename v_T::value_type v_E;
    typedef typename res_T::value_type res_E;
    typedef typename CONFIG_T::score_t score_t;

    static void run(hls::stream<q_T> &q, hls::stream<k_T> &k, hls::stream<v_T> &v, hls::stream<res_T> &out) {
        #pragma HLS INLINE
        q_E q_dense[CONFIG_T::n_heads][CONFIG_T::n_tokens][CONFIG_T::head_dim];
        #pragma HLS ARRAY_PARTITION variable=q_dense cyclic factor=CONFIG_T::token_head_banks dim=1
        #pragma HLS ARRAY_RESHAPE variable=q_dense complete dim=3
        VITCOD_BIND_BUFFER(q_dense)
        k_E k_global[CONFIG_T::n_heads][CONFIG_T::n_global_max][CONFIG_T::head_dim];
        #pragma HLS ARRAY_PARTITION variable=k_global cyclic factor=CONFIG_T::global_head_banks dim=1
        #pragma HLS ARRAY_PARTITION variable=k_global cyclic factor=CONFIG_T::dense_unroll dim=2
        #pragma HLS ARRAY_RESHAPE variable=k_global complete dim=3
        VITCOD_BIND_BUFFER(k_global)
        q_E q_sparse[CONFIG_T::sparse_copies][CONFIG_T::n_heads][CONFIG_T::n_tokens][CONFIG_T::head_dim];
        #pragma HLS ARRAY_PARTITION variable=q_sparse cyclic factor=CONFIG_T::token_head_banks dim=2
        #pragma HLS ARRAY_PARTITION variable=q_sparse complete dim=1
        #pragma HLS ARRAY_RESHAPE variable=q_sparse complete dim=4
        VITCOD_BIND_BUFFER(q_sparse)
        k_E k_sparse[CONFIG_T::sparse_copies][CONFIG_T::n_heads][CONFIG_T::n_tokens][CONFIG_T::head_dim];
        #pragma HLS ARRAY_PARTITION variable=k_sparse cyclic factor=CONFIG_T::token_head_banks dim=2
        #pragma HLS ARRAY_PARTITION variable=k_sparse complete dim=1
        #pragma HLS ARRAY_RESHAPE variable=k_sparse complete dim=4
        VITCOD_BIND_BUFFER(k_sparse)
        v_E v_buf[1][CONFIG_T::n_heads][CONFIG_T::n_tokens][CONFIG_T::head_dim];
        #pragma HLS ARRAY_PARTITION variable=v_buf cyclic factor=CONFIG_T::token_head_banks dim=2
        #pragma HLS ARRAY_PARTITION variable=v_buf complete dim=1
        #pragma HLS ARRAY_RESHAPE variable=v_buf complete dim=4
        VITCOD_BIND_BUFFER(v_buf)
        score_t s_dense[1][CONFIG_T::n_heads][CONFIG_T::n_tokens][CONFIG_T::n_global_max];
        #pragma HLS ARRAY_PARTITION variable=s_dense complete dim=1
        #pragma HLS ARRAY_PARTITION variable=s_dense cyclic factor=CONFIG_T::dense_unroll dim=4
        VITCOD_BIND_SCORES(s_dense)
        score_t s_sparse[1][CONFIG_T::n_heads][CONFIG_T::sparse_trips_max * CONFIG_T::sparse_lanes];
        #pragma HLS ARRAY_PARTITION variable=s_sparse complete dim=1
        #pragma HLS ARRAY_PARTITION variable=s_sparse cyclic factor=CONFIG_T::sparse_lanes dim=3
        VITCOD_BIND_SCORES(s_sparse)
        res_E out_buf[CONFIG_T::n_heads][CONFIG_T::n_tokens][CONFIG_T::head_dim];
        #pragma HLS ARRAY_PARTITION variable=out_buf cyclic factor=CONFIG_T::token_head_banks dim=1
        #pragma HLS ARRAY_RESHAPE variable=out_buf complete dim=3
        VITCOD_BIND_BUFFER(out_buf)

        stream_load<q_T, k_T, v_T, CONFIG_T, 1>(q, k, v, q_dense, k_global, q_sparse, k_sparse, v_buf);
        stream_dense<q_E, k_E, CONFIG_T, 1>(q_dense, k_global, s_dense);
        stream_sparse<q_E, k_E, CONFIG_T, 1>(q_sparse, k_sparse, s_sparse);
        stream_softmax_pv<v_E, res_E, CONFIG_T, LANES_T>(s_dense, s_sparse, v_buf, out_buf);
        stream_write<res_T, CONFIG_T>(out_buf, out);
    }
};

// The layer: N tokens of q, k, v in, N tokens out (hls4ml io_stream convention); one lane or the
// lanes design, as the config says (stream_lanes).
template <class q_T, class k_T, class v_T, class res_T, typename CONFIG_T>
void attention_stream(hls::stream<q_T> &q, hls::stream<k_T> &k, hls::stream<v_T> &v, hls::stream<res_T> &out) {
    #pragma HLS DATAFLOW
    static_assert(q_T::size == CONFIG_T::embed_dim, "q token must hold n_heads * head_dim values");
    static_assert(k_T::size == CONFIG_T::embed_dim, "k token must hold n_heads * head_dim values");
    static_assert(v_T::size == CONFIG_T::embed_dim, "v token must hold n_heads * head_dim values");
    static_assert(res_T::size == CONFIG_T::embed_dim, "result token must hold n_heads * head_dim values");
    typedef typename stream_lanes<CONFIG_T>::type LANES_T;
    static_assert(LANES_T::softmax_copies * 2 >= LANES_T::softmax_lanes, "softmax copies: at most 2 lanes per copy");
    static_assert(LANES_T::pv_copies * 2 >= LANES_T::pv_lanes, "P x V copies: at most 2 lanes per copy");
    stream_region<q_T, k_T, v_T, res_T, CONFIG_T, LANES_T>::run(q, k, v, out);
}

} // namespace vitcod

#endif
