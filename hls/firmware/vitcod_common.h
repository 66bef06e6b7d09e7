#ifndef VITCOD_COMMON_H_
#define VITCOD_COMMON_H_

// Shared pieces of the ViTCoD HLS engines (vitcod_attention.h, vitcod_headmix.h, vitcod_embed.h):
// the ap_types includes, the word type of the generated ROMs and the C-simulation operation counters.
//
// Why our own engines: hls4ml 1.3.0 cannot convert attention at all (MultiHeadAttention is an
// unsupported layer), and nothing in nnet_utils knows a fixed sparse mask. These headers follow
// the nnet_utils conventions (config structs that generated configs inherit from, functions
// templated on <data_T, res_T, CONFIG_T>, sizes only from CONFIG_T) so they plug into hls4ml as
// custom layers.

#include "ap_fixed.h"
#include "ap_int.h"

namespace vitcod {

// The element type of a generated constant table (ROM) of W-bit words. Under synthesis ap_uint<W>:
// the ROM is exactly W bits wide. In C-simulation the narrowest plain unsigned integer that holds W
// bits: the table is then constant-initialized data, where an ap_uint table needs one constructor
// call per element in the translation unit's static initializer - g++ 12 -O2/-O3 crashes (internal
// compiler error in gimple_duplicate_bb) on that initializer for a 197-token design (~60k words),
// and compiles the 65-token one much slower. The values, and every read (converted to the config's
// ap_uint word type), are the same in both.
#ifdef __SYNTHESIS__
template <int W> struct rom_uint { typedef ap_uint<W> type; };
#else
template <int W, int Bytes = (W <= 8 ? 1 : W <= 16 ? 2 : W <= 32 ? 4 : 8)> struct rom_uint;
template <int W> struct rom_uint<W, 1> { typedef unsigned char type; };
template <int W> struct rom_uint<W, 2> { typedef unsigned short type; };
template <int W> struct rom_uint<W, 4> { typedef unsigned int type; };
template <int W> struct rom_uint<W, 8> { typedef unsigned long long type; };
#endif

// Which counter an engine adds to. The head-mix engine serves both the Q/K encoder and decoder,
// so its config names the counter (headmix_config::mac_counter).
enum mac_counter_id {
    counter_dense = 0,      // dense engine: q . k MACs over the global (dense) columns, N*G*D per head
    counter_sparse = 1,     // sparse engine: q . k MACs over the CSR non-zeros, nnz_sparse*D per head
    counter_softmax = 2,    // softmax: probability multiplies e * (1/sum), one per kept entry
    counter_reciprocal = 3, // softmax: fixed-point divisions 1/sum, one per query row and head
    counter_pv = 4,         // P x V MACs, nnz_total*D per head
    counter_encoder = 5,    // head-mix MACs when used as the Q/K encoder, N*Hin*Hout*D
    counter_decoder = 6,    // head-mix MACs when used as the Q/K decoder, N*Hin*Hout*D
    counter_embed = 7,      // CLS/position embedding additions, N*E
    n_mac_counters = 8
};

#ifndef __SYNTHESIS__
// C-simulation only: operation counts, read and reset by the test harness to check the
// performance model. Never synthesized.
struct mac_counters {
    unsigned long long count[n_mac_counters];
};

// One instance shared by every translation unit (function-local static of an inline function).
inline mac_counters &counters() {
    static mac_counters instance = {{0}};
    return instance;
}

inline void reset_counters() {
    for (unsigned i = 0; i < n_mac_counters; i++)
        counters().count[i] = 0;
}

inline void count_ops(unsigned id, unsigned long long n) { counters().count[id] += n; }

#define VITCOD_COUNT(id, n) ::vitcod::count_ops((id), (n))
#else
#define VITCOD_COUNT(id, n)
#endif

} // namespace vitcod

#endif
