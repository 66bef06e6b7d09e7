#ifndef VITCOD_TOP_H_
#define VITCOD_TOP_H_

// The overlay's IP top: an AXI4-Stream wrapper around one hls4ml io_parallel network
//     void NETWORK(input_t in[N_IN], result_t out[N_OUT]);
// so that one AXI DMA transfer each way carries a whole batch of images. An io_stream network
// (CONFIG_T::io_stream) gets the DATAFLOW top of vitcod_top_stream.h instead, with the same wire
// format, TLAST handling and registers; top_select picks one at compile time.
//
// Wire format (version stream_format_version; defined with its numpy reference in the overlay contract,
// host/contract/packing.py - vitcod.host.contract):
//   - 64-bit TDATA words carrying raw fixed-point bits, never floats;
//   - values_per_word = floor(64 / W) values of W bits per word, value k in bits [k*W, k*W+W);
//     unused bits are zero;
//   - every image starts on a fresh word (words_per_image = ceil(N / values_per_word));
//   - TLAST on the last output word of the whole batch (and expected on the last input word).
//
// TLAST is honoured in both directions, so that neither DMA channel is ever left waiting:
//   - TLAST before the batch's last input word (a short transfer): the IP stops reading there. The
//     image it was reading, if incomplete, is not processed; its output slot is written as zeros and
//     carries TLAST, which ends the S2MM packet. batch_done counts the images read whole.
//   - no TLAST on the batch's last input word (a longer transfer, or batch_count > max_batch): the
//     IP reads and discards words until TLAST - the AXI DMA ends every MM2S transfer with it - but
//     never more than drain_limit words (the longest transfer the DMA can make).
//   status (top_status_bits) says which of these happened; words_read counts every input word taken.
//
// Control (AXI4-Lite bundle `control`, ap_ctrl_hs) - offsets are pinned in vitcod_top.cpp, checked
// against the contract's table (host/contract/registers.py, tests/overlay/test_overlay_registers.py):
//   batch_count (host writes)       images in this run, clamped to max_batch; 0 = no stream traffic,
//                                   only refresh the read-only registers (an "identify" run)
//   batch_done, status, words_read  what the last run did
//   format_version, model_id_lo/hi, in_values, in_words, out_values, out_words, max_batch,
//   in_type, out_type               constants of this build, written by every run: the types are
//                                   coded from the network's own C++ types (type_code), so the host
//                                   can refuse a description that disagrees with the compiled network
//
// Synthesizable by construction: fixed-size arrays, compile-time trip counts (the batch loop is bounded
// by CONFIG_T::max_batch, the drain loop by wire_geometry::drain_limit), no dynamic memory.

#include "ap_axi_sdata.h"
#include "ap_fixed.h"
#include "ap_int.h"
#include "hls_stream.h"

namespace vitcod {

static const unsigned axis_width = 64; // TDATA bits
typedef ap_axiu<axis_width, 0, 0, 0> axis_word;

static const unsigned stream_format_version = 2;

enum top_status_bits {
    status_tlast_early = 1,   // an input word before the batch's last one carried TLAST: reading stopped there
    status_tlast_missing = 2, // the batch's last input word did not carry TLAST: the rest was drained
    status_batch_clamped = 4, // batch_count > max_batch; only max_batch images were processed
    status_drain_limit = 8    // drain_limit words drained without a TLAST
};

// ---- type codes (the contract's type_code, host/contract/aptypes.py) ----------------------------
// bits 0-6 width, 7 signed, 8 ap_int/ap_uint, 9-18 integer bits (10-bit two's complement),
// 19-21 quantization mode, 22-24 overflow mode (indices below), 25-30 saturation bits, 31 set.
template <ap_q_mode Q> struct q_code;
template <> struct q_code<AP_TRN> { static const unsigned value = 0; };
template <> struct q_code<AP_TRN_ZERO> { static const unsigned value = 1; };
template <> struct q_code<AP_RND> { static const unsigned value = 2; };
template <> struct q_code<AP_RND_ZERO> { static const unsigned value = 3; };
template <> struct q_code<AP_RND_MIN_INF> { static const unsigned value = 4; };
template <> struct q_code<AP_RND_INF> { static const unsigned value = 5; };
template <> struct q_code<AP_RND_CONV> { static const unsigned value = 6; };
template <ap_o_mode O> struct o_code;
template <> struct o_code<AP_WRAP> { static const unsigned value = 0; };
template <> struct o_code<AP_SAT> { static const unsigned value = 1; };
template <> struct o_code<AP_SAT_ZERO> { static const unsigned value = 2; };
template <> struct o_code<AP_SAT_SYM> { static const unsigned value = 3; };
template <> struct o_code<AP_WRAP_SM> { static const unsigned value = 4; };

template <int W, int I, bool S, bool IS_INT, unsigned Q, unsigned O, int N> struct make_type_code {
    static_assert(W >= 1 && W < 128, "type width out of the code's range");
    static_assert(I >= -512 && I <= 511, "integer bits out of the code's range (-512..511)");
    static_assert(N >= 0 && N <= 63, "saturation bits out of the code's range (0..63)");
    static const unsigned value = (unsigned)W | (S ? 1u : 0u) << 7 | (IS_INT ? 1u : 0u) << 8 |
                                  ((unsigned)I & 0x3FFu) << 9 | Q << 19 | O << 22 | (unsigned)N << 25 | 1u << 31;
};

// Only ap_types travel on the stream: another type has no code (a compile error here).
template <class T> struct type_code;
template <int W, int I, ap_q_mode Q, ap_o_mode O, int N>
struct type_code<ap_fixed<W, I, Q, O, N> > : make_type_code<W, I, true, false, q_code<Q>::value, o_code<O>::value, N> {};
template <int W, int I, ap_q_mode Q, ap_o_mode O, int N>
struct type_code<ap_ufixed<W, I, Q, O, N> > : make_type_code<W, I, false, false, q_code<Q>::value, o_code<O>::value, N> {};
template <int W> struct type_code<ap_int<W> > : make_type_code<W, W, true, true, 1, 0, 0> {};
template <int W> struct type_code<ap_uint<W> > : make_type_code<W, W, false, true, 1, 0, 0> {};

// Defaults a generated `vitcod_top_config` (build/<board>/ip/vitcod_top_config.h) inherits from.
// It must also define `static void network(in_t x[n_in], out_t y[n_out])`.
struct top_config {
    static const bool io_stream = false; // an io_stream config sets it and its element types
    typedef ap_fixed<16, 6> in_t;
    typedef ap_fixed<16, 6> out_t;
    static const unsigned n_in = 1;
    static const unsigned n_out = 1;
    static const unsigned max_batch = 1;
    static const unsigned model_id_lo = 0;
    static const unsigned model_id_hi = 0;
};

// Bits a value of type T occupies on the wire (ap_fixed / ap_ufixed / ap_int / ap_uint).
template <class T> struct wire_width {
    static const unsigned value = T::width;
};

// The AXI DMA's length-register rule (the contract's dma_length_width / max_transfer_words,
// host/contract/packing.py): the build sizes the register for max_batch images, so no transfer of
// that DMA is longer than drain_limit words - the bound of the IP's drain loop.
constexpr unsigned bit_length(unsigned long long v) { return v ? 1u + bit_length(v >> 1) : 0u; }
constexpr unsigned long long max_transfer_words(unsigned long long largest_bytes) {
    return ((1ull << (bit_length(largest_bytes) > 8 ? bit_length(largest_bytes) : 8u)) - 1ull) / (axis_width / 8);
}

template <class CONFIG_T> struct wire_geometry {
    static const unsigned in_width = wire_width<typename CONFIG_T::in_t>::value;
    static const unsigned out_width = wire_width<typename CONFIG_T::out_t>::value;
    static const unsigned in_per_word = axis_width / in_width;
    static const unsigned out_per_word = axis_width / out_width;
    static const unsigned in_words = (CONFIG_T::n_in + in_per_word - 1) / in_per_word;
    static const unsigned out_words = (CONFIG_T::n_out + out_per_word - 1) / out_per_word;
    static const unsigned drain_limit = (unsigned)max_transfer_words(
        (unsigned long long)CONFIG_T::max_batch * (in_words > out_words ? in_words : out_words) * (axis_width / 8));
};

// Read one image (in_words words) from the stream and unpack it, never past TLAST. Returns whether the
// whole image was read; `ended` becomes true once a TLAST was taken; TLAST mismatches go to `status`.
template <class CONFIG_T>
bool read_image(hls::stream<axis_word> &in, typename CONFIG_T::in_t image[CONFIG_T::n_in], bool last_image,
                bool &ended, unsigned &status, unsigned &words_read) {
    typedef wire_geometry<CONFIG_T> geo;
    static const unsigned W = geo::in_width;
    unsigned taken = 0;
ReadWords:
    for (unsigned w = 0; w < geo::in_words; w++) {
        #pragma HLS PIPELINE II=1
        if (!ended) { // stop reading at TLAST: the transfer is over
            axis_word word = in.read();
            taken++;
            const bool expect_last = last_image && (w == geo::in_words - 1);
            if (word.last) {
                ended = true;
                if (!expect_last)
                    status |= status_tlast_early;
            } else if (expect_last) {
                status |= status_tlast_missing;
            }
        Unpack:
            for (unsigned k = 0; k < geo::in_per_word; k++) {
                #pragma HLS UNROLL
                unsigned idx = w * geo::in_per_word + k;
                if (idx < CONFIG_T::n_in) {
                    ap_uint<W> bits = word.data.range(k * W + W - 1, k * W);
                    image[idx].range(W - 1, 0) = bits;
                }
            }
        }
    }
    words_read += taken;
    return taken == geo::in_words;
}

// Read and discard words until TLAST, at most drain_limit of them (see the file comment).
template <class CONFIG_T> void drain(hls::stream<axis_word> &in, unsigned &status, unsigned &words_read) {
    typedef wire_geometry<CONFIG_T> geo;
    bool ended = false;
Drain:
    for (unsigned i = 0; i < geo::drain_limit; i++) {
        #pragma HLS PIPELINE II=1
        #pragma HLS LOOP_TRIPCOUNT min=1 max=geo::drain_limit
        axis_word word = in.read();
        words_read++;
        if (word.last) {
            ended = true;
            break;
        }
    }
    if (!ended)
        status |= status_drain_limit;
}

// Pack one result into out_words words and write them; TLAST only on the batch's last word.
template <class CONFIG_T>
void write_image(typename CONFIG_T::out_t image[CONFIG_T::n_out], hls::stream<axis_word> &out, bool last_image) {
    typedef wire_geometry<CONFIG_T> geo;
    static const unsigned W = geo::out_width;
WriteWords:
    for (unsigned w = 0; w < geo::out_words; w++) {
        #pragma HLS PIPELINE II=1
        axis_word word;
        word.data = 0;
    Pack:
        for (unsigned k = 0; k < geo::out_per_word; k++) {
            #pragma HLS UNROLL
            unsigned idx = w * geo::out_per_word + k;
            if (idx < CONFIG_T::n_out) {
                ap_uint<W> bits = image[idx].range(W - 1, 0);
                word.data.range(k * W + W - 1, k * W) = bits;
            }
        }
        word.keep = -1; // all bytes valid: the DMA's S2MM channel honours TKEEP
        word.strb = -1;
        word.last = last_image && (w == geo::out_words - 1);
        out.write(word);
    }
}

// The whole IP: write the constant registers, then stream min(batch_count, max_batch) images
// through the network, honouring TLAST as the file comment says.
// The constant registers both tops (io_parallel here, io_stream in vitcod_top_stream.h) publish, and
// the geometry checks they share: the host reads these to refuse a mismatched overlay.
template <class CONFIG_T>
void write_constant_registers(unsigned &format_version, unsigned &model_id_lo, unsigned &model_id_hi,
                              unsigned &in_values, unsigned &in_words, unsigned &out_values, unsigned &out_words,
                              unsigned &max_batch, unsigned &in_type, unsigned &out_type) {
    #pragma HLS INLINE
    typedef wire_geometry<CONFIG_T> geo;
    static_assert(geo::in_width >= 1 && geo::in_width <= axis_width, "input values must fit a stream word");
    static_assert(geo::out_width >= 1 && geo::out_width <= axis_width, "output values must fit a stream word");
    static_assert(CONFIG_T::max_batch >= 1, "max_batch must be at least 1");
    format_version = stream_format_version;
    model_id_lo = CONFIG_T::model_id_lo;
    model_id_hi = CONFIG_T::model_id_hi;
    in_values = CONFIG_T::n_in;
    in_words = geo::in_words;
    out_values = CONFIG_T::n_out;
    out_words = geo::out_words;
    max_batch = CONFIG_T::max_batch;
    in_type = type_code<typename CONFIG_T::in_t>::value;
    out_type = type_code<typename CONFIG_T::out_t>::value;
}

template <class CONFIG_T>
void run_top(hls::stream<axis_word> &in, hls::stream<axis_word> &out, unsigned batch_count, unsigned &batch_done,
             unsigned &status, unsigned &format_version, unsigned &model_id_lo, unsigned &model_id_hi,
             unsigned &in_values, unsigned &in_words, unsigned &out_values, unsigned &out_words,
             unsigned &max_batch, unsigned &in_type, unsigned &out_type, unsigned &words_read) {
    static_assert(wire_geometry<CONFIG_T>::drain_limit >= 1, "drain_limit must be at least 1");
    write_constant_registers<CONFIG_T>(format_version, model_id_lo, model_id_hi, in_values, in_words, out_values,
                                       out_words, max_batch, in_type, out_type);

    const bool clamped = batch_count > CONFIG_T::max_batch;
    const unsigned n_images = clamped ? CONFIG_T::max_batch : batch_count;
    unsigned st = clamped ? (unsigned)status_batch_clamped : 0u;
    unsigned done = 0, nread = 0;
    bool ended = false; // TLAST taken: the input transfer is over

    // The same directives hls4ml's io_parallel network function puts on its own arguments
    // (RESHAPE on the input, PARTITION on the output), so the two never conflict.
    typename CONFIG_T::in_t image[CONFIG_T::n_in];
    #pragma HLS ARRAY_RESHAPE variable=image complete dim=0
    typename CONFIG_T::out_t result[CONFIG_T::n_out];
    #pragma HLS ARRAY_PARTITION variable=result complete dim=0
Batch:
    for (unsigned b = 0; b < n_images; b++) {
        #pragma HLS LOOP_TRIPCOUNT min=0 max=CONFIG_T::max_batch
        const bool last_image = (b == n_images - 1);
        if (read_image<CONFIG_T>(in, image, last_image, ended, st, nread)) {
            CONFIG_T::network(image, result);
            done++;
        } else { // cut short by TLAST: not processed; its slot is zeros
        Clear:
            for (unsigned j = 0; j < CONFIG_T::n_out; j++) {
                #pragma HLS UNROLL
                result[j] = 0;
            }
        }
        write_image<CONFIG_T>(result, out, last_image || ended);
        if (ended && !last_image)
            break; // the transfer ended early: so does the output packet
    }
    if (n_images > 0 && !ended)
        drain<CONFIG_T>(in, st, nread);
    batch_done = done;
    status = st;
    words_read = nread;
}

} // namespace vitcod

#include "vitcod_top_stream.h"

// The synthesis top (defined in vitcod_top.cpp); argument order = register order.
void vitcod_top(hls::stream<vitcod::axis_word> &in, hls::stream<vitcod::axis_word> &out, unsigned batch_count,
                unsigned &batch_done, unsigned &status, unsigned &format_version, unsigned &model_id_lo,
                unsigned &model_id_hi, unsigned &in_values, unsigned &in_words, unsigned &out_values,
                unsigned &out_words, unsigned &max_batch, unsigned &in_type, unsigned &out_type,
                unsigned &words_read);

#endif
