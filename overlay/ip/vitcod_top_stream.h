#ifndef VITCOD_TOP_STREAM_H_
#define VITCOD_TOP_STREAM_H_

// The overlay top for an hls4ml io_stream network (network.json "io_type": "io_stream"):
//     void NETWORK(hls::stream<input_t> &in, hls::stream<result_t> &out);   // one call per image
// input_t / result_t are nnet::array<T, N> (one input element per pixel, C-order pixels; result
// elements hold the image's outputs). Included by vitcod_top.h; same wire format, TLAST handling,
// registers and status bits as the io_parallel top there (run_top) - only the inside differs:
//
//   stream_pipeline (DATAFLOW):  stream_reader -> stream_network -> stream_writer
//                                      \------------ ctrl -------------/
//
// Each process loops over the batch, so image b+1 is read (and enters the network) while image b is
// still inside, and image b-1 is being written: the design's interval, not its latency, sets the
// throughput of a batch. The network process is the canonical "dataflow inside a loop" (one call per
// iteration, loop bound a function argument), so successive images overlap inside the network too.
//
// TLAST keeps the io_parallel top's behaviour word for word. What is new is how the processes agree on
// it without feedback: the network always sees whole images (it cannot be told to stop mid-image), so
//   - an image cut short by an early TLAST is padded with zeros by the reader (no word is read past
//     TLAST); the images after it are all zeros without reading;
//   - the reader sends the writer one control token per image: write its result / write zeros (an
//     incomplete image) / write nothing (after the TLAST), and whether its slot ends the packet;
//   - the writer reads every result (so the network never blocks) and writes only what the token says.
// The output words, TLAST position, batch_done, status and words_read are therefore those of run_top.
// After an early TLAST the network still computes the padded images (time only: that run is a fault).
//
// Synthesizable by construction: per-value loops with II=1 and compile-time trip counts, shift
// registers instead of variable indices, FIFO depths pinned next to the streams.

namespace vitcod {

// Control token reader -> writer, one per image (bit 0: write the slot, bit 1: with the network's result
// (else zeros), bit 2: the slot's last word carries TLAST).
typedef ap_uint<3> slot_token;
static const unsigned slot_write = 1, slot_result = 2, slot_last = 4;

// Read one image's words (never past TLAST) and stream its values as input elements; after TLAST the
// rest of the image is zeros. `taken` = words read for this image.
template <class CONFIG_T>
void read_elements(hls::stream<axis_word> &in, hls::stream<typename CONFIG_T::in_elem_t> &px, bool last_image,
                   bool &ended, unsigned &status, unsigned &taken) {
    typedef wire_geometry<CONFIG_T> geo;
    typedef typename CONFIG_T::in_elem_t elem_t;
    static const unsigned W = geo::in_width;
    static const unsigned C = elem_t::size;
    ap_uint<geo::in_per_word * W> bits = 0;
    typename CONFIG_T::in_t buf[C];
    #pragma HLS ARRAY_PARTITION variable=buf complete dim=0
    unsigned k = 0, c = 0, w = 0;
    taken = 0;
ReadValues:
    for (unsigned v = 0; v < CONFIG_T::n_in; v++) {
        #pragma HLS PIPELINE II=1
        if (k == 0) { // a fresh word for every values_per_word values
            if (!ended) {
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
                bits = word.data.range(geo::in_per_word * W - 1, 0);
            } else {
                bits = 0; // past TLAST: pad
            }
            w++;
        }
        typename CONFIG_T::in_t value;
        value.range(W - 1, 0) = bits.range(W - 1, 0);
        bits >>= W;
    Shift:
        for (unsigned i = 0; i + 1 < C; i++) {
            #pragma HLS UNROLL
            buf[i] = buf[i + 1];
        }
        buf[C - 1] = value;
        k = (k + 1 == geo::in_per_word) ? 0u : k + 1;
        if (c + 1 == C) {
            elem_t e;
        Copy:
            for (unsigned i = 0; i < C; i++) {
                #pragma HLS UNROLL
                e.data[i] = buf[i];
            }
            px.write(e);
            c = 0;
        } else {
            c++;
        }
    }
}

// Take one image's result elements (always, so the network never blocks) and, if `emit`, pack them into
// out_words words (zeros unless `result`); TLAST on the last word if `last`.
template <class CONFIG_T>
void write_elements(hls::stream<typename CONFIG_T::out_elem_t> &res, hls::stream<axis_word> &out, bool emit,
                    bool result, bool last) {
    typedef wire_geometry<CONFIG_T> geo;
    typedef typename CONFIG_T::out_elem_t elem_t;
    static const unsigned W = geo::out_width;
    static const unsigned C = elem_t::size;
    static const unsigned VPW = geo::out_per_word;
    static const unsigned tail = CONFIG_T::n_out - (geo::out_words - 1) * VPW; // values in the last word
    ap_uint<VPW * W> bits = 0;
    typename CONFIG_T::out_t buf[C];
    #pragma HLS ARRAY_PARTITION variable=buf complete dim=0
    unsigned k = 0, c = 0, w = 0;
WriteValues:
    for (unsigned v = 0; v < CONFIG_T::n_out; v++) {
        #pragma HLS PIPELINE II=1
        if (c == 0) {
            elem_t e = res.read();
        Load:
            for (unsigned i = 0; i < C; i++) {
                #pragma HLS UNROLL
                buf[i] = e.data[i];
            }
        }
        ap_uint<VPW * W> value = 0;
        if (result)
            value = buf[0].range(W - 1, 0);
    Shift:
        for (unsigned i = 0; i + 1 < C; i++) {
            #pragma HLS UNROLL
            buf[i] = buf[i + 1];
        }
        bits = (bits >> W) | (value << ((VPW - 1) * W)); // value k ends in bits [k*W, k*W+W)
        c = (c + 1 == C) ? 0u : c + 1;
        const bool final_word = (w == geo::out_words - 1);
        if (k + 1 == VPW || v + 1 == CONFIG_T::n_out) {
            axis_word word;
            word.data = final_word ? (ap_uint<VPW * W>)(bits >> ((VPW - tail) * W)) : bits;
            word.keep = -1; // all bytes valid: the DMA's S2MM channel honours TKEEP
            word.strb = -1;
            word.last = last && final_word;
            if (emit)
                out.write(word);
            bits = 0;
            k = 0;
            w++;
        } else {
            k++;
        }
    }
}

// Process 1: every word of the batch in, elements to the network, one slot token per image; the registers.
template <class CONFIG_T>
void stream_reader(hls::stream<axis_word> &in, hls::stream<typename CONFIG_T::in_elem_t> &px,
                   hls::stream<slot_token> &ctrl, unsigned n_images, unsigned status0, unsigned &batch_done,
                   unsigned &status, unsigned &words_read) {
    unsigned st = status0, done = 0, nread = 0;
    bool ended = false; // TLAST taken: the input transfer is over
ReadImages:
    for (unsigned b = 0; b < n_images; b++) {
        #pragma HLS LOOP_TRIPCOUNT min=0 max=CONFIG_T::max_batch
        const bool last_image = (b == n_images - 1);
        const bool skipped = ended; // the transfer ended before this image: its slot is not written
        unsigned taken = 0;
        read_elements<CONFIG_T>(in, px, last_image, ended, st, taken);
        nread += taken;
        const bool complete = taken == wire_geometry<CONFIG_T>::in_words;
        if (complete)
            done++;
        slot_token t = 0;
        if (!skipped)
            t = slot_write | (complete ? slot_result : 0u) | ((last_image || ended) ? slot_last : 0u);
        ctrl.write(t);
    }
    if (n_images > 0 && !ended)
        drain<CONFIG_T>(in, st, nread);
    batch_done = done;
    status = st;
    words_read = nread;
}

// Process 2: the network, once per image (dataflow inside the loop: iterations overlap).
template <class CONFIG_T>
void stream_network(hls::stream<typename CONFIG_T::in_elem_t> &px, hls::stream<typename CONFIG_T::out_elem_t> &res,
                    unsigned n_images) {
NetworkImages:
    for (unsigned b = 0; b < n_images; b++) {
        #pragma HLS LOOP_TRIPCOUNT min=0 max=CONFIG_T::max_batch
        #pragma HLS DATAFLOW
        CONFIG_T::network(px, res);
    }
}

// Process 3: one slot per image as the reader's token says.
template <class CONFIG_T>
void stream_writer(hls::stream<typename CONFIG_T::out_elem_t> &res, hls::stream<slot_token> &ctrl,
                   hls::stream<axis_word> &out, unsigned n_images) {
WriteImages:
    for (unsigned b = 0; b < n_images; b++) {
        #pragma HLS LOOP_TRIPCOUNT min=0 max=CONFIG_T::max_batch
        const slot_token t = ctrl.read();
        write_elements<CONFIG_T>(res, out, (t & slot_write) != 0, (t & slot_result) != 0, (t & slot_last) != 0);
    }
}

// The DATAFLOW region: three processes, three FIFOs. px / res are the network's own input and output FIFOs.
// ctrl: the reader may run 16 images ahead of the writer (a literal depth: no expression in the pragma).
// No depth here can deadlock: the writer waits on ctrl(b) only after the reader wrote image b whole, and
// the reader blocked on a full ctrl has already handed the network every pixel the writer waits for.
template <class CONFIG_T>
void stream_pipeline(hls::stream<axis_word> &in, hls::stream<axis_word> &out, unsigned n_images, unsigned status0,
                     unsigned &batch_done, unsigned &status, unsigned &words_read) {
    #pragma HLS DATAFLOW
    hls::stream<typename CONFIG_T::in_elem_t> px("px");
    #pragma HLS STREAM variable=px depth=2
    hls::stream<typename CONFIG_T::out_elem_t> res("res");
    #pragma HLS STREAM variable=res depth=2
    hls::stream<slot_token> ctrl("ctrl");
    #pragma HLS STREAM variable=ctrl depth=16
    stream_reader<CONFIG_T>(in, px, ctrl, n_images, status0, batch_done, status, words_read);
    stream_network<CONFIG_T>(px, res, n_images);
    stream_writer<CONFIG_T>(res, ctrl, out, n_images);
}

// The whole IP for an io_stream network: constant registers, then the pipeline over
// min(batch_count, max_batch) images (run_top's contract, see vitcod_top.h).
template <class CONFIG_T>
void run_top_stream(hls::stream<axis_word> &in, hls::stream<axis_word> &out, unsigned batch_count,
                    unsigned &batch_done, unsigned &status, unsigned &format_version, unsigned &model_id_lo,
                    unsigned &model_id_hi, unsigned &in_values, unsigned &in_words, unsigned &out_values,
                    unsigned &out_words, unsigned &max_batch, unsigned &in_type, unsigned &out_type,
                    unsigned &words_read) {
    static_assert(CONFIG_T::n_out % CONFIG_T::out_elem_t::size == 0, "output values must fill whole elements");
    write_constant_registers<CONFIG_T>(format_version, model_id_lo, model_id_hi, in_values, in_words, out_values,
                                       out_words, max_batch, in_type, out_type);
    const bool clamped = batch_count > CONFIG_T::max_batch;
    const unsigned n_images = clamped ? CONFIG_T::max_batch : batch_count;
    stream_pipeline<CONFIG_T>(in, out, n_images, clamped ? (unsigned)status_batch_clamped : 0u, batch_done, status,
                              words_read);
}

// Picks the top for the network's io_type (CONFIG_T::io_stream) at compile time.
template <class CONFIG_T, bool STREAM> struct top_select {
    template <class... R> static void run(R &... args) { run_top<CONFIG_T>(args...); }
};
template <class CONFIG_T> struct top_select<CONFIG_T, true> {
    template <class... R> static void run(R &... args) { run_top_stream<CONFIG_T>(args...); }
};

} // namespace vitcod

#endif
