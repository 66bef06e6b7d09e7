#ifndef VITCOD_ATTENTION_BUFFERED_H_
#define VITCOD_ATTENTION_BUFFERED_H_

// The ViTCoD attention layer in an io_stream network, through a BUFFER: read the N tokens of q, k
// and v (one hls::stream element per token, nnet::array<T, E> with E = heads * head_dim), call the
// io_parallel engine (vitcod::sparse_attention, vitcod_attention.h) on the whole image, write the N
// output tokens. The arithmetic is the io_parallel engine's, so the layer is bit-exact with the
// io_parallel design by construction; what it costs is three N x E input buffers and one output
// buffer (BRAM) and no overlap between reading, computing and writing. The streaming engine
// (vitcod::attention_stream, vitcod_attention_stream.h) has the same signature and replaces it.
//
// CONFIG_T is the layer's generated attention config; the extension derives a struct from it that
// adds sparse_rc_table(), the sparse engine's lane table (the io_parallel call passes it as an
// argument; here the signature has only the four streams).

#include "hls_stream.h"
#include "nnet_common.h"
#include "vitcod_attention.h"

namespace vitcod {

template <class q_T, class k_T, class v_T, class res_T, typename CONFIG_T>
void attention_stream_buffered(hls::stream<q_T> &q, hls::stream<k_T> &k, hls::stream<v_T> &v,
                               hls::stream<res_T> &out) {
    static const unsigned n = CONFIG_T::n_tokens;
    static const unsigned e = CONFIG_T::embed_dim;
    typename q_T::value_type q_buf[n * e];
    typename k_T::value_type k_buf[n * e];
    typename v_T::value_type v_buf[n * e];
    typename res_T::value_type res_buf[n * e];
    // One token (E values) per cycle into each buffer: E banks, one write each.
    #pragma HLS ARRAY_PARTITION variable=q_buf cyclic factor=CONFIG_T::embed_dim dim=1
    #pragma HLS ARRAY_PARTITION variable=k_buf cyclic factor=CONFIG_T::embed_dim dim=1
    #pragma HLS ARRAY_PARTITION variable=v_buf cyclic factor=CONFIG_T::embed_dim dim=1
    #pragma HLS ARRAY_PARTITION variable=res_buf cyclic factor=CONFIG_T::embed_dim dim=1
BufferedRead:
    for (unsigned t = 0; t < n; t++) {
        #pragma HLS PIPELINE II=1
        const q_T qt = q.read();
        const k_T kt = k.read();
        const v_T vt = v.read();
    BufferedReadChannels:
        for (unsigned c = 0; c < e; c++) {
            #pragma HLS UNROLL
            q_buf[t * e + c] = qt[c];
            k_buf[t * e + c] = kt[c];
            v_buf[t * e + c] = vt[c];
        }
    }
    sparse_attention<typename q_T::value_type, typename k_T::value_type, typename v_T::value_type,
                     typename res_T::value_type, CONFIG_T>(q_buf, k_buf, v_buf, res_buf, CONFIG_T::sparse_rc_table());
BufferedWrite:
    for (unsigned t = 0; t < n; t++) {
        #pragma HLS PIPELINE II=1
        res_T rt;
        PRAGMA_DATA_PACK(rt)
    BufferedWriteChannels:
        for (unsigned c = 0; c < e; c++) {
            #pragma HLS UNROLL
            rt[c] = res_buf[t * e + c];
        }
        out.write(rt);
    }
}

} // namespace vitcod

#endif
