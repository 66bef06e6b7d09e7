#ifndef VITCOD_TOP_H_
#define VITCOD_TOP_H_

// The overlay's IP top: an AXI4-Stream wrapper around one hls4ml io_parallel network
//     void NETWORK(input_t in[N_IN], result_t out[N_OUT]);
// so that one AXI DMA transfer each way carries a whole batch of images.
//
// Wire format (version stream_format_version; defined with its numpy reference in the overlay contract,
// host/contract/packing.py - vitcod.host.contract):
//   - 64-bit TDATA words carrying raw fixed-point bits, never floats;
//   - values_per_word = floor(64 / W) values of W bits per word, value k in bits [k*W, k*W+W);
//     unused bits are zero;
//   - every image starts on a fresh word (words_per_image = ceil(N / values_per_word));
//   - TLAST on the last output word of the whole batch (and expected on the last input word).
//
// Control (AXI4-Lite bundle `control`, ap_ctrl_hs) - offsets are pinned in vitcod_top.cpp, checked
// against the contract's table (host/contract/registers.py, tests/overlay/test_overlay_registers.py):
//   batch_count (host writes)       images in this run, clamped to max_batch; 0 = no stream traffic,
//                                   only refresh the read-only registers (an "identify" run)
//   batch_done, status              what the last run did (status bits: top_status_bits)
//   format_version, model_id_lo/hi, in_values, in_words, out_values, out_words, max_batch
//                                   constants of this build, written by every run
//
// Synthesizable by construction: fixed-size arrays, compile-time trip counts except the batch loop
// (bounded by CONFIG_T::max_batch), no dynamic memory.

#include "ap_axi_sdata.h"
#include "ap_fixed.h"
#include "ap_int.h"
#include "hls_stream.h"

namespace vitcod {

static const unsigned axis_width = 64; // TDATA bits
typedef ap_axiu<axis_width, 0, 0, 0> axis_word;

static const unsigned stream_format_version = 1;

enum top_status_bits {
    status_tlast_early = 1,   // an input word before the batch's last one carried TLAST
    status_tlast_missing = 2, // the batch's last input word did not carry TLAST
    status_batch_clamped = 4  // batch_count > max_batch; only max_batch images were processed
};

// Defaults a generated `vitcod_top_config` (build/<board>/ip/vitcod_top_config.h) inherits from.
// It must also define `static void network(in_t x[n_in], out_t y[n_out])`.
struct top_config {
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

template <class CONFIG_T> struct wire_geometry {
    static const unsigned in_width = wire_width<typename CONFIG_T::in_t>::value;
    static const unsigned out_width = wire_width<typename CONFIG_T::out_t>::value;
    static const unsigned in_per_word = axis_width / in_width;
    static const unsigned out_per_word = axis_width / out_width;
    static const unsigned in_words = (CONFIG_T::n_in + in_per_word - 1) / in_per_word;
    static const unsigned out_words = (CONFIG_T::n_out + out_per_word - 1) / out_per_word;
};

// Read one image (in_words words) from the stream and unpack it; flag TLAST mismatches.
template <class CONFIG_T>
void read_image(hls::stream<axis_word> &in, typename CONFIG_T::in_t image[CONFIG_T::n_in], bool last_image,
                unsigned &status) {
    typedef wire_geometry<CONFIG_T> geo;
    static const unsigned W = geo::in_width;
ReadWords:
    for (unsigned w = 0; w < geo::in_words; w++) {
        #pragma HLS PIPELINE II=1
        axis_word word = in.read();
        bool expect_last = last_image && (w == geo::in_words - 1);
        if (word.last && !expect_last)
            status |= status_tlast_early;
        if (!word.last && expect_last)
            status |= status_tlast_missing;
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
// through the network.
template <class CONFIG_T>
void run_top(hls::stream<axis_word> &in, hls::stream<axis_word> &out, unsigned batch_count, unsigned &batch_done,
             unsigned &status, unsigned &format_version, unsigned &model_id_lo, unsigned &model_id_hi,
             unsigned &in_values, unsigned &in_words, unsigned &out_values, unsigned &out_words,
             unsigned &max_batch) {
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

    const bool clamped = batch_count > CONFIG_T::max_batch;
    const unsigned n_images = clamped ? CONFIG_T::max_batch : batch_count;
    unsigned st = clamped ? (unsigned)status_batch_clamped : 0u;

    typename CONFIG_T::in_t image[CONFIG_T::n_in];
    #pragma HLS ARRAY_PARTITION variable=image complete
    typename CONFIG_T::out_t result[CONFIG_T::n_out];
    #pragma HLS ARRAY_PARTITION variable=result complete
Batch:
    for (unsigned b = 0; b < n_images; b++) {
        #pragma HLS LOOP_TRIPCOUNT min=1 max=CONFIG_T::max_batch
        const bool last_image = (b == n_images - 1);
        read_image<CONFIG_T>(in, image, last_image, st);
        CONFIG_T::network(image, result);
        write_image<CONFIG_T>(result, out, last_image);
    }
    batch_done = n_images;
    status = st;
}

} // namespace vitcod

// The synthesis top (defined in vitcod_top.cpp); argument order = register order.
void vitcod_top(hls::stream<vitcod::axis_word> &in, hls::stream<vitcod::axis_word> &out, unsigned batch_count,
                unsigned &batch_done, unsigned &status, unsigned &format_version, unsigned &model_id_lo,
                unsigned &model_id_hi, unsigned &in_values, unsigned &in_words, unsigned &out_values,
                unsigned &out_words, unsigned &max_batch);

#endif
