// C-simulation harness for the overlay top (not synthesized; used by tests/overlay/test_overlay_top.py).
//
//   vitcod_top_tb <batch_count> <input_words_file>
//
// The input file holds one word per line: "<hex TDATA> <TLAST 0|1>" (end it with TLAST, as every AXI DMA
// transfer ends: the IP reads up to a TLAST). The harness streams them into vitcod_top, calls it once, and
// prints on stdout:
//   reg <name> <decimal value>        for every register the IP writes
//   out <hex TDATA> <TLAST> <TKEEP> <TSTRB>
//   left_in <words not consumed>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <string>

#include "vitcod_top.h"

int main(int argc, char **argv) {
    if (argc != 3) {
        std::cerr << "usage: " << argv[0] << " <batch_count> <input_words_file>" << std::endl;
        return 2;
    }
    unsigned batch_count = (unsigned)std::strtoul(argv[1], 0, 0);
    std::ifstream file(argv[2]);
    if (!file) {
        std::cerr << "cannot open " << argv[2] << std::endl;
        return 2;
    }
    hls::stream<vitcod::axis_word> in, out;
    std::string hex;
    unsigned last;
    while (file >> hex >> last) {
        vitcod::axis_word word;
        word.data = ap_uint<64>(std::strtoull(hex.c_str(), 0, 16));
        word.keep = -1;
        word.strb = -1;
        word.last = last;
        in.write(word);
    }
    unsigned batch_done = 0xdeadbeef, status = 0xdeadbeef, format_version = 0, model_id_lo = 0, model_id_hi = 0,
             in_values = 0, in_words = 0, out_values = 0, out_words = 0, max_batch = 0, in_type = 0, out_type = 0,
             words_read = 0xdeadbeef;
    vitcod_top(in, out, batch_count, batch_done, status, format_version, model_id_lo, model_id_hi, in_values,
               in_words, out_values, out_words, max_batch, in_type, out_type, words_read);
    std::printf("reg batch_done %u\nreg status %u\nreg format_version %u\nreg model_id_lo %u\nreg model_id_hi %u\n"
                "reg in_values %u\nreg in_words %u\nreg out_values %u\nreg out_words %u\nreg max_batch %u\n"
                "reg in_type %u\nreg out_type %u\nreg words_read %u\n",
                batch_done, status, format_version, model_id_lo, model_id_hi, in_values, in_words, out_values,
                out_words, max_batch, in_type, out_type, words_read);
    while (!out.empty()) {
        vitcod::axis_word word = out.read();
        std::printf("out %016llx %u %u %u\n", (unsigned long long)word.data.to_uint64(), (unsigned)word.last,
                    (unsigned)word.keep, (unsigned)word.strb);
    }
    unsigned left = 0;
    while (!in.empty()) {
        in.read();
        left++;
    }
    std::printf("left_in %u\n", left);
    return 0;
}
